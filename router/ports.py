"""The ports and sockets a node (and `make run`) listens on: named, and checked before anything starts.

A port that is taken used to show up as a Crossbar or runserver traceback after Redis and Django
had already started. ``check()`` tries each one first and says, in one line, which port, what it
is for, who holds it when that can be known, and which variable moves it.
"""

from __future__ import annotations

import errno
import os
import socket
from dataclasses import dataclass
from pathlib import Path

from .settings import NodeSettings

__all__ = ["Listener", "PortTaken", "check", "holder", "is_free", "listeners"]


class PortTaken(RuntimeError):
    """A port or socket the node needs is in use or cannot be bound; the message names the fix."""


@dataclass(frozen=True)
class Listener:
    host: str
    port: int
    #: what listens there, in a word
    name: str
    #: what listens there, for a person
    purpose: str
    #: the environment variable that moves it
    variable: str


def listeners(settings: NodeSettings, *, django: bool = True) -> list[Listener]:
    """Every TCP port the node listens on (and ``make run``'s Django, with ``django``)."""
    found = [
        Listener(settings.bind, settings.port, "node", "the node's pages and WebSocket", "DJWAMP_PORT"),
        Listener("127.0.0.1", settings.gateway_port, "fallback gateway",
                 "the fallback gateway, behind the node at /rt/", "DJWAMP_GATEWAY_PORT"),
    ]
    if django:
        found.insert(1, Listener("127.0.0.1", settings.django_port, "Django", "Django, behind the node",
                                 "DJWAMP_DJANGO_PORT"))
    return found


def check(settings: NodeSettings, *, django: bool = True, redis_socket: Path | None = None) -> None:
    """Raise ``PortTaken`` for the first port (or the private Redis socket) that is not free."""
    wanted = listeners(settings, django=django)
    seen: dict[int, Listener] = {}
    for listener in wanted:
        if listener.port in seen:
            other = seen[listener.port]
            raise PortTaken(f"{listener.variable} and {other.variable} are both {listener.port}; "
                            f"give {listener.variable} a port of its own")
        seen[listener.port] = listener
    for listener in wanted:
        problem = _bind_problem(listener.host, listener.port)
        if problem is None:
            continue
        moves = listener.variable if listener.variable == "DJWAMP_PORT" else \
            f"{listener.variable} (or DJWAMP_PORT, which moves all three)"
        if problem == errno.EADDRINUSE:
            held = holder(listener.port)
            who = f" by pid {held[0]} ({held[1]})" if held else ""
            raise PortTaken(f"port {listener.port} on {listener.host} ({listener.variable}: {listener.purpose}) "
                            f"is taken{who}; stop that or set {moves} to a free port")
        if problem == errno.EACCES:
            raise PortTaken(f"port {listener.port} ({listener.variable}: {listener.purpose}) needs privileges "
                            f"this process does not have; set {moves} to a port above 1023")
        raise PortTaken(f"cannot listen on {listener.host}:{listener.port} ({listener.variable}: {listener.purpose}): "
                        f"{os.strerror(problem)}; check DJWAMP_BIND / DJWAMP_HOST")
    if redis_socket is not None and _unix_socket_answers(redis_socket):
        raise PortTaken(f"another process serves the private Redis socket {redis_socket} (a second `make run` "
                        "in this checkout?); stop it, or set DJWAMP_RUN_DIR to another directory")


def holder(port: int) -> tuple[int, str] | None:
    """The pid and command line of the process listening on TCP ``port`` of this machine.

    Read from Linux's /proc; None where that cannot be known (another OS, another user's process).
    """
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            rows = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            fields = row.split()
            if len(fields) > 9 and fields[3] == "0A" and int(fields[1].rsplit(":", 1)[1], 16) == port:  # LISTEN
                inodes.add(f"socket:[{fields[9]}]")
    if not inodes:
        return None
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            for fd in (proc / "fd").iterdir():
                if os.readlink(fd) in inodes:
                    command = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
                    return int(proc.name), command.strip()[:120]
        except OSError:
            continue
    return None


def is_free(host: str, port: int) -> bool:
    """Whether ``host:port`` can be listened on now."""
    return _bind_problem(host, port) is None


def _bind_problem(host: str, port: int) -> int | None:
    """None if ``host:port`` can be listened on now, else the errno (as Twisted binds: SO_REUSEADDR)."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror:
        return errno.EADDRNOTAVAIL
    family, _, _, _, address = infos[0]
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(address)
            sock.listen(1)
        except OSError as exc:
            return exc.errno or errno.EADDRINUSE
    return None


def _unix_socket_answers(path: Path) -> bool:
    if not path.exists():
        return False
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(1.0)
        try:
            sock.connect(str(path))
        except OSError:
            return False  # a stale socket file of a Redis that has exited: redis-server replaces it
    return True
