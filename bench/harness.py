"""The side-by-side harness of `make bench`: one load generator, the processes of each stack,
their CPU and memory, and the report (ratios to the Redis floor).

Subscribers always come from bench/loadgen.mjs (node.js), never from the code under test; each
row differs only in the stack behind the socket and in its own way of publishing.
"""

from __future__ import annotations

import json
import os
import queue
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import psutil

BENCH = Path(__file__).resolve().parent
LOADGEN = BENCH / "loadgen.mjs"
#: pads each event's JSON to about 200 bytes, as in the issue's measurements
PAD = "x" * 150


class LoadGenFailed(RuntimeError):
    pass


class LoadGen:
    """One bench/loadgen.mjs process; its JSON lines arrive on a queue."""

    def __init__(self, config: dict, log_path: Path | None = None):
        self.config = config
        self._lines: queue.Queue[dict] = queue.Queue()
        self._log = open(log_path, "a") if log_path else None
        self.proc = subprocess.Popen(["node", str(LOADGEN), json.dumps(config)], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1,
                                     cwd=BENCH, start_new_session=True)
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            if self._log:
                self._log.write(line)
                self._log.flush()
            try:
                self._lines.put(json.loads(line))
            except ValueError:
                self._lines.put({"event": "output", "line": line.rstrip()})
        self._lines.put({"event": "exit", "code": self.proc.wait()})

    def wait(self, event: str, timeout: float) -> dict:
        deadline = time.monotonic() + timeout
        while True:
            try:
                message = self._lines.get(timeout=max(0.01, deadline - time.monotonic()))
            except queue.Empty:
                raise LoadGenFailed(f"loadgen {self.config['kind']}: no {event!r} within {timeout:.0f} s") from None
            if message["event"] == event:
                return message
            if message["event"] in ("error", "exit"):
                raise LoadGenFailed(f"loadgen {self.config['kind']} ended: {message}")

    def ask_report(self) -> None:
        try:
            self.proc.stdin.write("report\n")
            self.proc.stdin.flush()
        except (BrokenPipeError, OSError):
            pass

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(10)
        self.proc.stdin.close()
        self._reader.join(5)
        self.proc.stdout.close()
        if self._log:
            self._log.close()


def processes_of(*pids: int) -> list[psutil.Process]:
    """The processes with these pids and all their descendants (a Crossbar node's workers)."""
    found: dict[int, psutil.Process] = {}
    for pid in pids:
        try:
            root = psutil.Process(pid)
        except psutil.NoSuchProcess:
            continue
        for proc in [root, *root.children(recursive=True)]:
            found[proc.pid] = proc
    return list(found.values())


def label(proc: psutil.Process) -> str:
    try:
        cmdline = " ".join(proc.cmdline())
    except psutil.Error:
        return str(proc.pid)
    for needle, name in (("crossbar-worker", "worker"), ("crossbar start", "crossbar"),
                         ("redis-server", "redis"), ("daphne", "daphne")):
        if needle in cmdline:
            if name == "worker":
                kind = "router" if "router" in cmdline else "container" if "container" in cmdline else "proxy"
                wid = cmdline.split("--worker ")[-1].split()[0] if "--worker " in cmdline else ""
                return f"{kind}:{wid}" if wid else kind
            return name
    return proc.name()


@dataclass
class Usage:
    """CPU seconds per process between ``start()`` and ``stop()``, and the wall time."""

    procs: list[psutil.Process]
    cpu: dict[str, float] = field(default_factory=dict)
    wall: float = 0.0

    def _times(self) -> dict[str, float]:
        out: dict[str, float] = {}
        for proc in self.procs:
            try:
                t = proc.cpu_times()
                out[f"{label(proc)}"] = out.get(label(proc), 0.0) + t.user + t.system
            except psutil.Error:
                pass
        return out

    def start(self) -> Usage:
        self._before, self._t0 = self._times(), time.monotonic()
        return self

    def stop(self) -> Usage:
        after = self._times()
        self.wall = time.monotonic() - self._t0
        self.cpu = {name: after[name] - self._before.get(name, 0.0) for name in after}
        return self

    def percent(self) -> dict[str, float]:
        return {name: 100 * seconds / self.wall for name, seconds in sorted(self.cpu.items()) if self.wall}


def rss_bytes(procs: Iterable[psutil.Process]) -> int:
    total = 0
    for proc in procs:
        try:
            total += proc.memory_info().rss
        except psutil.Error:
            pass
    return total


@dataclass
class Row:
    """One stack: how the load generator subscribes to it, and how it publishes."""

    name: str
    kind: str
    url: str
    topic: str
    pids: Callable[[], list[int]]
    #: publishes one event payload (a Python publisher: realtime.publish, PUBLISH, group_send)
    publish: Callable[[dict], object] | None = None
    realm: str | None = None
    origin: str | None = None
    #: the loadgen config of a WAMP publisher, instead of ``publish`` (Crossbar alone)
    wamp_publisher: dict | None = None
    #: several nodes: subscriber i connects to ``urls[i % len(urls)]``
    urls: list[str] | None = None
    #: several topics (WAMP rows): subscriber i follows ``topics[i % T]``, event n goes to
    #: ``topics[n % T]`` (``publish`` must do that), so each subscriber expects count / T events
    topics: list[str] | None = None

    def subscriber_config(self, connections: int, expected: int, timeout_s: float) -> dict:
        topics = self.topics or [self.topic]
        if expected % len(topics):
            raise ValueError(f"{expected} events do not split evenly over {len(topics)} topics")
        return {"kind": self.kind, "url": self.url, "urls": self.urls or [self.url], "topic": self.topic,
                "topics": topics, "realm": self.realm, "origin": self.origin, "connections": connections,
                "expected": expected // len(topics), "timeout_s": timeout_s}

    def processes(self) -> list[psutil.Process]:
        return processes_of(*self.pids())


def run_publisher(row: Row, count: int, rate: float, log_dir: Path) -> tuple[float, float, float]:
    """Publish events 0..count-1 (``rate`` per second, 0 = as fast as it goes).

    Returns its start time, how many seconds publishing took (one thread, one call per
    event: at ``rate=0`` that bounds what any row can deliver) and the CPU seconds it used.
    """
    # CLOCK_MONOTONIC, as the load generator's clock (bench/loadgen.mjs): never stepped
    start = time.monotonic()
    t0 = time.perf_counter()
    if row.wamp_publisher is not None:
        pub = LoadGen({**row.wamp_publisher, "kind": "wamp-pub", "topic": row.topic, "count": count,
                       "rate": rate, "pad": len(PAD)}, log_dir / f"{row.name}-publisher.log")
        usage = Usage([psutil.Process(pub.proc.pid)]).start()
        try:
            pub.wait("report", 120)
            usage.stop()
        finally:
            pub.stop()
        return start, time.perf_counter() - t0, sum(usage.cpu.values())
    cpu0 = time.thread_time()
    for n in range(count):
        if rate:
            delay = t0 + n / rate - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
        row.publish({"n": n, "t": time.monotonic(), "pad": PAD})
    return start, time.perf_counter() - t0, time.thread_time() - cpu0


class Profiler:
    """py-spy on every Python process of a stack while a scenario runs (``BENCH_PROFILE=1``).

    Writes one collapsed-stack file per process (``<label>.folded``, for flamegraph.pl or
    speedscope) and returns the top functions by inclusive and by own time, which is what
    docs/topics/performance.md quotes.
    """

    def __init__(self, procs: list[psutil.Process], out_dir: Path, rate: int = 200):
        self.out_dir = out_dir
        self.spies: list[tuple[str, Path, subprocess.Popen]] = []
        venv_spy = Path(sys.executable).with_name("py-spy")
        py_spy = str(venv_spy) if venv_spy.exists() else shutil.which("py-spy") or "py-spy"
        out_dir.mkdir(parents=True, exist_ok=True)
        for proc in procs:
            name = label(proc)
            if name in ("redis", "node"):
                continue
            path = out_dir / f"{name.replace(':', '-')}.folded"
            spy = subprocess.Popen([py_spy, "record", "--pid", str(proc.pid), "--rate", str(rate), "--format", "raw",
                                    "--output", str(path), "--nonblocking"],
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
            self.spies.append((name, path, spy))

    def stop(self) -> dict[str, dict]:
        for _, _, spy in self.spies:
            if spy.poll() is None:
                spy.send_signal(signal.SIGINT)
        summary = {}
        for name, path, spy in self.spies:
            try:
                spy.wait(30)
            except subprocess.TimeoutExpired:
                spy.kill()
                spy.wait()
            if path.exists():
                summary[name] = top_functions(path)
        return summary


def top_functions(folded: Path, n: int = 15) -> dict:
    """Inclusive and own sample shares per function (``name (file)``) from a collapsed-stack file."""
    inclusive: dict[str, int] = {}
    own: dict[str, int] = {}
    total = 0
    for line in folded.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        samples = int(count)
        total += samples
        frames = [_frame(f) for f in stack.split(";")]
        for frame in set(frames):
            inclusive[frame] = inclusive.get(frame, 0) + samples
        own[frames[-1]] = own.get(frames[-1], 0) + samples

    def top(counts):
        return [(frame, round(100 * c / total, 1)) for frame, c in sorted(counts.items(), key=lambda kv: -kv[1])[:n]]

    return {"samples": total, "inclusive": top(inclusive), "own": top(own)}


def _frame(frame: str) -> str:
    # py-spy frames look like "sendMessage (autobahn/websocket/protocol.py:2083)"
    name, _, where = frame.partition(" (")
    path = where.rsplit(":", 1)[0]
    for marker in ("site-packages/", "lib/python3"):
        if marker in path:
            path = path.split(marker, 1)[1]
    return f"{name} ({path.rstrip(')')})"


@dataclass
class Result:
    scenario: str
    row: str
    report: dict
    usage: dict[str, float]
    extra: dict = field(default_factory=dict)


RESULTS: list[Result] = []
#: BENCH_PROFILE=1: py-spy every Python process of the stack during each scenario
PROFILE = os.environ.get("BENCH_PROFILE", "") not in ("", "0")


def measure(scenario: str, row: Row, *, connections: int, count: int, rate: float, timeout_s: float,
            log_dir: Path, before_publish: Callable[[], dict] | None = None) -> Result:
    """Subscribe ``connections`` to the row, publish ``count`` events, collect the report."""
    gen = LoadGen(row.subscriber_config(connections, count, timeout_s), log_dir / f"{scenario}-{row.name}.log")
    try:
        ready = gen.wait("ready", 300)
        extra = {"connect_seconds": ready.get("seconds"), "connect_failed": ready["failed"],
                 "connect_errors": ready.get("errors")}
        if before_publish is not None:
            extra.update(before_publish())
        procs = row.processes()
        usage = Usage(procs).start()
        # the harness's own share of the cores: the load generator, and the publisher below
        subscribers = Usage([psutil.Process(gen.proc.pid)]).start()
        machine = psutil.cpu_times()
        profiler = Profiler(procs, log_dir / f"profile-{scenario}-{row.name}") if PROFILE else None
        published_at, publishing_s, publisher_cpu = run_publisher(row, count, rate, log_dir)
        extra["published_per_s"] = count / max(1e-9, publishing_s)
        report = gen.wait("report", timeout_s + 30)
        usage.stop()
        subscribers.stop()
        machine_after = psutil.cpu_times()
        if subscribers.wall:
            extra["harness_cpu"] = {"load generator": 100 * sum(subscribers.cpu.values()) / subscribers.wall,
                                    "publisher": 100 * publisher_cpu / subscribers.wall,
                                    # of all cores (100 % per core), what nobody used
                                    "machine idle": 100 * (machine_after.idle - machine.idle) / subscribers.wall}
        if profiler is not None:
            extra["profile"] = profiler.stop()
        extra["published_at"] = published_at
        if report["last_recv"]:
            extra["deliveries_per_s"] = report["delivered"] / max(1e-9, report["last_recv"] - published_at)
    finally:
        gen.stop()
    result = Result(scenario, row.name, report, usage.percent(), extra)
    RESULTS.append(result)
    return result
