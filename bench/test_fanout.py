"""Fan-out side by side, in one run: latency, throughput and connections for every stack.

Rows: a raw Redis pub/sub floor, Crossbar alone (a WAMP publisher straight into a bare router),
djwamp over WebSocket (``realtime.publish()`` -> Redis stream -> bridge -> router), the same on
two nodes sharing the Redis (subscribers split between them), djwamp over the SSE fallback, and
Django Channels (``group_send`` -> a consumer's WebSocket, daphne + channels-redis). The
subscribers of every row are the same node.js load generator (bench/loadgen.mjs). Reported as
ratios to the floor (tests/artifacts/bench-fanout.md); never asserted: a benchmark is a
measurement, not a test.

    make bench                                   # every row, every scenario
    make bench PYTEST_ARGS="-k 'throughput and djwamp'"
"""

from __future__ import annotations

import os
import time

import pytest

from bench.harness import RESULTS, Row, measure, rss_bytes
from tests.conftest import ARTIFACTS

pytestmark = [pytest.mark.bench, pytest.mark.django_db(transaction=True)]

#: scenario sizes (BENCH_SCALE=0.1 gives a quick smoke run of the harness itself)
SCALE = float(os.environ.get("BENCH_SCALE", "1"))
LATENCY = {"connections": max(2, int(100 * SCALE)), "rate": 100, "seconds": max(2, 10 * SCALE)}
THROUGHPUT = {"connections": 10, "count": max(200, int(20_000 * SCALE)), "timeout_s": 60}
CONNECTIONS = {"connections": max(20, int(2000 * SCALE))}
ROWS = ["redis", "crossbar", "djwamp-ws", "djwamp-2nodes", "djwamp-sse", "channels"]
NAMES = {"redis": "Redis pub/sub (floor)", "crossbar": "Crossbar alone", "djwamp-ws": "djwamp WebSocket",
         "djwamp-2nodes": "djwamp WebSocket, 2 nodes", "djwamp-sse": "djwamp SSE fallback",
         "channels": "Django Channels"}


@pytest.fixture
def row(request) -> Row:
    return request.getfixturevalue(f"row_{request.param.replace('-', '_')}")


@pytest.fixture(scope="session")
def log_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("bench-logs")


@pytest.mark.parametrize("row", ROWS, indirect=True)
def test_latency(row, log_dir):
    """100 subscribers, 100 msg/s, ~200-byte JSON: publish-to-handler latency."""
    count = int(LATENCY["rate"] * LATENCY["seconds"])
    measure("latency", row, connections=LATENCY["connections"], count=count, rate=LATENCY["rate"],
            timeout_s=LATENCY["seconds"] + 30, log_dir=log_dir)


@pytest.mark.parametrize("row", ROWS, indirect=True)
def test_throughput(row, log_dir):
    """10 subscribers, 20,000 events as fast as the row's publisher goes; within 60 s."""
    measure("throughput", row, connections=THROUGHPUT["connections"], count=THROUGHPUT["count"], rate=0,
            timeout_s=THROUGHPUT["timeout_s"], log_dir=log_dir)


@pytest.mark.parametrize("row", ROWS, indirect=True)
def test_connections(row, log_dir):
    """2,000 idle subscribed connections: RSS growth per connection over every process of the
    stack, then one broadcast: the time until all of them have it."""
    procs = row.processes()
    before = rss_bytes(procs)

    def grown():
        time.sleep(1.0)  # let the stack finish its per-session work (logging, timers) before reading RSS
        return {"rss_before": before, "rss_after": rss_bytes(row.processes())}

    result = measure("connections", row, connections=CONNECTIONS["connections"], count=1, rate=0, timeout_s=60,
                     log_dir=log_dir, before_publish=grown)
    connected = result.report["subscribers"]
    result.extra["kib_per_connection"] = (result.extra["rss_after"] - before) / 1024 / max(1, connected)


def test_report():
    report = render(RESULTS)
    print("\n" + report)
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / "bench-fanout.md").write_text(report + "\n")
    profiles = render_profiles(RESULTS)
    if profiles:
        (ARTIFACTS / "bench-profile.md").write_text(profiles + "\n")
        print("\n" + profiles)


def render_profiles(results) -> str:
    """BENCH_PROFILE=1: the top functions of each process, per scenario and row."""
    out = []
    for r in results:
        for proc, prof in sorted(r.extra.get("profile", {}).items()):
            out += [f"### {r.scenario} / {NAMES[r.row]} / {proc} ({prof['samples']:,} samples)", "",
                    "| inclusive % | function | | own % | function |", "|---|---|---|---|---|"]
            rows = max(len(prof["inclusive"]), len(prof["own"]))
            for i in range(rows):
                inc = prof["inclusive"][i] if i < len(prof["inclusive"]) else ("", "")
                own = prof["own"][i] if i < len(prof["own"]) else ("", "")
                out.append(f"| {inc[1]} | `{inc[0]}` | | {own[1]} | `{own[0]}` |")
            out.append("")
    return "\n".join(out)


def render(results) -> str:
    by = {(r.scenario, r.row): r for r in results}

    def floor(scenario):
        return by.get((scenario, "redis"))

    def fmt(value, digits=1):
        return "-" if value is None else f"{value:,.{digits}f}"

    def cpu(r):
        return ", ".join(f"{name} {pct:.0f}%" for name, pct in r.usage.items() if pct >= 1) or "-"

    def harness_cpu(r):
        # the load generator and the publisher share the two cores with the stack
        return ", ".join(f"{name} {pct:.0f}%" for name, pct in r.extra.get("harness_cpu", {}).items()) or "-"

    def delivered(r):
        rep = r.report
        want = rep["expected_per_subscriber"] * rep["subscribers"]
        pct = 100 * rep["delivered"] / want if want else 0
        return f"{pct:.1f} % (lost {rep['lost']:,}, dup {rep['duplicates']:,})"

    out = []
    lat_floor = floor("latency")
    out += ["### Latency: 100 subscribers x 100 msg/s, ~200-byte JSON", "",
            "| stack | p50 ms | p99 ms | max ms | p99 / floor | delivered | CPU (stack) |",
            "|---|---|---|---|---|---|---|"]
    for name in ROWS:
        r = by.get(("latency", name))
        if r:
            lat = r.report["latency_ms"]
            ratio = lat["p99"] / lat_floor.report["latency_ms"]["p99"] if lat_floor and lat["p99"] else None
            out.append(f"| {NAMES[name]} | {fmt(lat['p50'])} | {fmt(lat['p99'])} | {fmt(lat['max'])} | "
                       f"{fmt(ratio)}x | {delivered(r)} | {cpu(r)} |")
    out += ["", f"### Throughput: 10 subscribers, {THROUGHPUT['count']:,} events as fast as the publisher goes", "",
            "| stack | deliveries/s | / floor | / Crossbar alone | / Channels | published events/s "
            "| complete in 60 s | delivered | CPU (stack) | CPU (harness) |",
            "|---|---|---|---|---|---|---|---|---|---|"]

    def rate_of(name):
        r = by.get(("throughput", name))
        return r.extra.get("deliveries_per_s") if r else None

    for name in ROWS:
        r = by.get(("throughput", name))
        if r:
            rate = rate_of(name)
            ratios = [fmt(rate / base, 2) if rate and base else "-"
                      for base in (rate_of("redis"), rate_of("crossbar"), rate_of("channels"))]
            complete = "yes" if r.report["why"] == "complete" else "no"
            out.append(f"| {NAMES[name]} | {fmt(rate, 0)} | {' | '.join(ratios)} | "
                       f"{fmt(r.extra.get('published_per_s'), 0)} | {complete} | {delivered(r)} | {cpu(r)} | "
                       f"{harness_cpu(r)} |")
    c_floor = floor("connections")
    out += ["", f"### Connections: {CONNECTIONS['connections']:,} idle subscribed connections, then one broadcast", "",
            "| stack | connected | connecting took, s | KiB / connection | broadcast to all, ms | / floor "
            "| delivered |",
            "|---|---|---|---|---|---|---|"]
    for name in ROWS:
        r = by.get(("connections", name))
        if r:
            ms = r.report["latency_ms"]["max"]
            ratio = ms / c_floor.report["latency_ms"]["max"] if c_floor and ms else None
            failed = r.extra.get("connect_failed")
            out.append(f"| {NAMES[name]} | {r.report['subscribers']:,}{f' ({failed} refused)' if failed else ''} | "
                       f"{fmt(r.extra.get('connect_seconds'), 2)} | {fmt(r.extra.get('kib_per_connection'))} | "
                       f"{fmt(ms)} | {fmt(ratio)}x | {delivered(r)} |")
    return "\n".join(out)
