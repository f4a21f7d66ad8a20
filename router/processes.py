"""Child processes for the dev runner and the test fixtures: start, wait for a log line, stop.

Readiness is an event (a line the process prints), never a fixed sleep. Every process runs
in its own process group and is stopped by PID: SIGTERM, then SIGKILL if it lingers.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

__all__ = [
    "ProcessFailed",
    "ManagedProcess",
    "free_port",
    "start_redis",
    "start_crossbar",
    "crossbar_executable",
    "NODE_READY_LINE",
    "NODE_READY_LINES",
    "BRIDGE_READY_LINE",
]

NODE_READY_LINE = "Ok, local node configuration ran successfully"
AUTHENTICATOR_READY_LINE = "djwamp authenticator ready"
AUTHORIZER_READY_LINE = "djwamp authorizer ready"
BRIDGE_READY_LINE = "djwamp bridge ready"
PROCEDURES_READY_LINE = "djwamp procedures ready"
HISTORY_READY_LINE = "djwamp history ready"
GATEWAY_READY_LINE = "djwamp gateway ready"
#: what a node prints once browsers can connect, events flow and procedures answer
NODE_READY_LINES = (NODE_READY_LINE, AUTHENTICATOR_READY_LINE, AUTHORIZER_READY_LINE, BRIDGE_READY_LINE,
                    PROCEDURES_READY_LINE, HISTORY_READY_LINE, GATEWAY_READY_LINE)
_ANSI = re.compile(r"\x1b\[[0-9;]*m")


class ProcessFailed(RuntimeError):
    """A child process exited or did not become ready; the message ends with its last output."""


class ManagedProcess:
    """A child process whose output is collected (and optionally echoed and written to a file)."""

    def __init__(self, name: str, argv: Sequence[str], *, env: Mapping[str, str] | None = None,
                 cwd: str | os.PathLike | None = None, log_path: Path | None = None,
                 echo: Callable[[str], None] | None = None):
        self.name = name
        self.argv = list(argv)
        self.lines: list[str] = []
        self._changed = threading.Condition()
        self._log = open(log_path, "a", encoding="utf-8") if log_path else None
        self._echo = echo
        self.proc = subprocess.Popen(
            self.argv, env=dict(env) if env is not None else None, cwd=cwd,
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            start_new_session=True, text=True, errors="replace", bufsize=1,
        )
        self._reader = threading.Thread(target=self._read, name=f"{name}-output", daemon=True)
        self._reader.start()

    @property
    def pid(self) -> int:
        return self.proc.pid

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for raw in self.proc.stdout:
            line = _ANSI.sub("", raw.rstrip("\n"))
            if self._log:
                self._log.write(line + "\n")
                self._log.flush()
            if self._echo:
                self._echo(line)
            with self._changed:
                self.lines.append(line)
                self._changed.notify_all()
        self.proc.stdout.close()
        with self._changed:
            self._changed.notify_all()

    def wait_for(self, pattern: str | re.Pattern, timeout: float, *, start: int = 0) -> str:
        """Block until a line from index ``start`` on matches; return it.

        Raises ``ProcessFailed`` if the process exits first or ``timeout`` passes.
        """
        regex = re.compile(pattern) if isinstance(pattern, str) else pattern
        deadline = time.monotonic() + timeout
        index = start
        with self._changed:
            while True:
                while index < len(self.lines):
                    if regex.search(self.lines[index]):
                        return self.lines[index]
                    index += 1
                if self.proc.poll() is not None and not self._reader.is_alive():
                    raise ProcessFailed(self._describe(f"exited with code {self.proc.returncode} "
                                                       f"before printing {regex.pattern!r}"))
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise ProcessFailed(self._describe(f"did not print {regex.pattern!r} "
                                                       f"within {timeout:.0f} s"))
                self._changed.wait(min(remaining, 0.5))

    def output(self) -> str:
        with self._changed:
            return "\n".join(self.lines)

    def _describe(self, what: str) -> str:
        with self._changed:
            tail = "\n".join(self.lines[-40:])
        return f"{self.name} (pid {self.pid}) {what}; last output:\n{tail}"

    def running(self) -> bool:
        return self.proc.poll() is None

    def kill(self, sig: int = signal.SIGKILL) -> None:
        """Send ``sig`` to the whole process group."""
        try:
            os.killpg(self.pid, sig)
        except ProcessLookupError:
            pass

    def stop(self, timeout: float = 15.0) -> int | None:
        """SIGTERM the process group, SIGKILL it after ``timeout``; return the exit code."""
        if self.running():
            self.kill(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill(signal.SIGKILL)
                self.proc.wait(5)
        # children that outlived the leader (e.g. a crossbar worker) go too
        self.kill(signal.SIGKILL)
        self._reader.join(5)
        if self._log:
            self._log.close()
            self._log = None
        return self.proc.returncode


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def start_redis(directory: Path, *, port: int = 0, unixsocket: Path | None = None, persistent: bool = False,
                timeout: float = 20.0, log_path: Path | None = None,
                echo: Callable[[str], None] | None = None) -> ManagedProcess:
    """A private redis-server on 127.0.0.1:``port`` and/or a unix socket (mode 700).

    ``persistent`` keeps an append-only file in ``directory``, so a restart keeps the data.
    """
    executable = shutil.which("redis-server")
    if executable is None:
        raise ProcessFailed("redis-server is not on PATH: install Debian's redis-server package "
                            "(`make` does) or set REDIS_URL to a Redis you run")
    directory.mkdir(parents=True, exist_ok=True)
    argv = [executable, "--port", str(port), "--bind", "127.0.0.1", "--dir", str(directory),
            "--save", "", "--daemonize", "no", "--protected-mode", "yes"]
    if unixsocket is not None:
        argv += ["--unixsocket", str(unixsocket), "--unixsocketperm", "700"]
    argv += ["--appendonly", "yes", "--appendfsync", "always"] if persistent else ["--appendonly", "no"]
    proc = ManagedProcess(f"redis:{port or unixsocket}", argv, log_path=log_path, echo=echo)
    try:
        proc.wait_for(r"(?i)ready to accept connections", timeout)
    except ProcessFailed:
        proc.stop()
        raise
    return proc


def crossbar_executable() -> str:
    beside = Path(sys.executable).with_name("crossbar")
    found = str(beside) if beside.exists() else shutil.which("crossbar")
    if not found:
        raise ProcessFailed("crossbar is not installed: pip install -e '.[router]' (make does)")
    return found


def start_crossbar(cbdir: Path, env: Mapping[str, str], *, timeout: float = 90.0,
                   log_path: Path | None = None, echo: Callable[[str], None] | None = None,
                   wait_for: Sequence[str] = NODE_READY_LINES) -> ManagedProcess:
    """``crossbar start`` on ``cbdir``; returns once every line of ``wait_for`` was printed."""
    argv = [crossbar_executable(), "start", "--cbdir", str(cbdir), "--loglevel", "info", "--color", "false"]
    proc = ManagedProcess("crossbar", argv, env=env, log_path=log_path, echo=echo)
    try:
        for line in wait_for:
            proc.wait_for(re.escape(line), timeout)
    except ProcessFailed:
        proc.stop()
        raise
    return proc
