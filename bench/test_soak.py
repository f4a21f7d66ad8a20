"""A soak: many connections, a steady stream of events for a while, nothing lost, nothing grows.

2,000 WebSocket connections to one djwamp node, spread over 20 topics (100 browsers per topic, as
pages of a site follow different things), 100 events/s published with ``realtime.publish()``
for 60 s (5 per topic per second: 10,000 deliveries/s). Then: delivered, lost and duplicates
(exact, per subscriber), latency percentiles, and the RSS of every process of the stack when the
connections were up and at the end. Writes tests/artifacts/soak.md; the figures of a run are in
docs/topics/delivery.md.

    make soak
    SOAK_SECONDS=600 make soak        # longer

Loss, duplicates and growth of a node process beyond ``MAX_GROWTH`` fail it; time never does.
Redis is reported, not judged: it grows as the stream fills up to ``STREAM_MAXLEN`` (100,000
entries by default), which is data, not a leak.
"""

from __future__ import annotations

import os
import secrets

import psutil
import pytest

from bench.harness import Row, label, measure, processes_of
from tests.conftest import ARTIFACTS

pytestmark = [pytest.mark.soak, pytest.mark.django_db(transaction=True)]

CONNECTIONS = int(os.environ.get("SOAK_CONNECTIONS", "2000"))
TOPICS = 20
RATE = 100
SECONDS = int(os.environ.get("SOAK_SECONDS", "60"))
#: how much a process of the stack may grow between "connected" and "done"
MAX_GROWTH = 0.10


@pytest.fixture(scope="session")
def log_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("soak-logs")


def _rss_by_process(pids) -> dict[str, int]:
    rss = {}
    for proc in processes_of(*pids):
        try:
            rss[f"{label(proc)} ({proc.pid})"] = proc.memory_info().rss
        except psutil.Error:  # a process that is gone has no RSS to report
            continue
    return rss


def test_soak(crossbar_node, realtime_redis, log_dir):
    from realtime import publish

    tag = secrets.token_hex(3)
    topics = [f"public.soak{tag}.t{i}" for i in range(TOPICS)]

    def pids():
        return [crossbar_node.proc.pid, realtime_redis.proc.pid]

    row = Row("djwamp-ws", "wamp", crossbar_node.ws_url, topics[0], realm=crossbar_node.realm, topics=topics,
              pids=pids, publish=lambda payload: publish(topics[payload["n"] % TOPICS], payload))
    start: dict[str, int] = {}

    def connected():
        start.update(_rss_by_process(pids()))
        return {}

    count = RATE * SECONDS
    result = measure("soak", row, connections=CONNECTIONS, count=count, rate=RATE, timeout_s=SECONDS + 60,
                     log_dir=log_dir, before_publish=connected)
    end = _rss_by_process(pids())
    report = result.report
    lat = report["latency_ms"]
    lines = [
        f"### Soak: {report['subscribers']:,} connections over {TOPICS} topics, {RATE} events/s for {SECONDS} s",
        "",
        "| delivered | lost | duplicates | p50 ms | p95 ms | p99 ms | max ms |",
        "|---|---|---|---|---|---|---|",
        f"| {report['delivered']:,} of {report['expected_per_subscriber'] * report['subscribers']:,} "
        f"| {report['lost']:,} | {report['duplicates']:,} | {lat['p50']:.1f} | {lat['p95']:.1f} "
        f"| {lat['p99']:.1f} | {lat['max']:.1f} |",
        "",
        "| process | RSS connected, MiB | RSS at the end, MiB | growth | CPU |",
        "|---|---|---|---|---|",
    ]
    growth = {}
    for name, before in sorted(start.items()):
        after = end.get(name)
        if after is None:
            continue
        growth[name] = after / before - 1
        cpu = result.usage.get(name.split(" (")[0])
        lines.append(f"| {name} | {before / 2**20:.1f} | {after / 2**20:.1f} | {growth[name]:+.1%} "
                     f"| {f'{cpu:.0f} %' if cpu is not None else '-'} |")
    from django.conf import settings

    stream = settings.REALTIME.get("STREAM", "djwamp:events")
    lines += ["", f"Redis holds the stream `{stream}`: {realtime_redis.client().xlen(stream):,} entries "
              f"(capped at STREAM_MAXLEN)."]
    text = "\n".join(lines)
    print("\n" + text)
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / "soak.md").write_text(text + "\n")
    assert report["subscribers"] == CONNECTIONS and result.extra["connect_failed"] == 0
    assert (report["lost"], report["duplicates"], report["malformed"]) == (0, 0, 0)
    grown = {name: f"{g:+.1%}" for name, g in growth.items() if g > MAX_GROWTH and not name.startswith("redis")}
    assert not grown, f"processes grew more than {MAX_GROWTH:.0%}: {grown}"
