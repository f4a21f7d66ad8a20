"""Publish-to-delivery latency, side by side in one run: a raw Redis floor, djwamp over
WebSocket, djwamp over the SSE fallback, and Django Channels (group_send -> a consumer's
WebSocket, daphne + channels-redis on the same private Redis). Reported as ratios to the floor;
never asserted. Every row comes from the same run; docs/ref/client.md quotes one such run.

    make bench
"""

from __future__ import annotations

import json
import statistics
import threading
import time
import urllib.request

import pytest
import pytest_twisted
from twisted.internet.threads import deferToThread

from realtime import publish
from tests.wamp import EventCollector, connect_ws

pytestmark = [pytest.mark.bench, pytest.mark.django_db(transaction=True)]

N = 300
GAP = 0.005  # seconds between events: latency, not throughput
RESULTS: dict[str, list[float]] = {}


def summary(samples: list[float]) -> tuple[float, float, float]:
    ordered = sorted(samples)
    return (statistics.median(ordered) * 1000, ordered[int(len(ordered) * 0.95) - 1] * 1000,
            ordered[-1] * 1000)


def test_floor_redis_xadd_to_blocking_xread(redis_server):
    key = "bench:floor"
    reader, writer = redis_server.client(), redis_server.client()
    latencies: list[float] = []

    def read():
        last = "0-0"  # from the start of a fresh key: no need to be blocked before the first XADD
        while len(latencies) < N:
            for _key, entries in reader.xread({key: last}, block=2000) or []:
                for entry_id, fields in entries:
                    latencies.append(time.perf_counter() - float(fields["t"]))
                    last = entry_id

    thread = threading.Thread(target=read)
    thread.start()
    for n in range(N):
        writer.xadd(key, {"n": str(n), "t": repr(time.perf_counter())})
        time.sleep(GAP)
    thread.join(30)
    RESULTS["Redis XADD -> XREAD (floor)"] = latencies


@pytest_twisted.ensureDeferred
async def test_djwamp_publish_to_websocket_subscriber(crossbar_node, realtime_redis):
    session = await connect_ws(crossbar_node.ws_url, crossbar_node.realm)
    received: dict[str, float] = {}
    events = EventCollector()
    original = events.__call__

    def stamp(*args, details=None, **kwargs):
        received[details.transaction_hash] = time.perf_counter()
        original(*args, details=details, **kwargs)

    await session.subscribe(stamp, "public.bench", options=_details())
    sent: dict[str, float] = {}

    def publish_all():
        for n in range(N):
            start = time.perf_counter()
            sent[publish("public.bench", n)] = start
            time.sleep(GAP)

    await deferToThread(publish_all)
    await events.wait_for(N, timeout=60)
    RESULTS["djwamp publish() -> WebSocket"] = [received[i] - sent[i] for i in sent]
    session.leave()


def test_djwamp_publish_to_sse_fallback(crossbar_node, realtime_redis):
    base = f"http://127.0.0.1:{crossbar_node.settings.port}/rt/"
    origin = f"http://127.0.0.1:{crossbar_node.settings.port}"

    def post(path, body):
        request = urllib.request.Request(base + path, data=json.dumps(body).encode(), method="POST",
                                         headers={"Origin": origin, "X-Requested-With": "djwamp"})
        with urllib.request.urlopen(request, timeout=15) as response:
            return json.loads(response.read())

    sid = post("open", {})["sid"]
    stream = urllib.request.urlopen(f"{base}events?sid={sid}", timeout=30)
    post("subscribe", {"sid": sid, "topic": "public.bench-sse"})
    received: dict[str, float] = {}

    def read():
        while len(received) < N:
            line = stream.readline().decode()
            if line.startswith("id: "):
                received[line[4:].strip()] = time.perf_counter()

    thread = threading.Thread(target=read)
    thread.start()
    sent: dict[str, float] = {}
    for n in range(N):
        start = time.perf_counter()
        sent[publish("public.bench-sse", n)] = start
        time.sleep(GAP)
    thread.join(60)
    stream.close()
    RESULTS["djwamp publish() -> SSE fallback"] = [received[i] - sent[i] for i in sent if i in received]


def test_channels_group_send_to_websocket(channels_server, redis_server):
    """The usual Channels way from sync Django code: async_to_sync(layer.group_send) per event.

    The layer is configured as in bench/channels_settings.py; each async_to_sync call runs in a
    fresh event loop, as it does from a Django view, so that cost is part of the number.
    """
    from asgiref.sync import async_to_sync
    from channels_redis.core import RedisChannelLayer
    from websockets.sync.client import connect

    layer = RedisChannelLayer(hosts=[redis_server.url])
    send = async_to_sync(layer.group_send)
    latencies: list[float] = []
    with connect(channels_server, open_timeout=15) as ws:
        assert json.loads(ws.recv(timeout=15)) == {"ready": True}  # joined the group

        def read():
            while len(latencies) < N:
                message = json.loads(ws.recv(timeout=30))
                latencies.append(time.perf_counter() - message["t"])

        thread = threading.Thread(target=read)
        thread.start()
        for n in range(N):
            send("bench", {"type": "bench.event", "t": time.perf_counter(), "n": n})
            time.sleep(GAP)
        thread.join(60)
    assert len(latencies) == N  # every event arrived (a count, not a timing)
    RESULTS["Channels group_send -> WebSocket"] = latencies


def test_report():
    floor = summary(RESULTS["Redis XADD -> XREAD (floor)"])[0]
    lines = [f"{'path':36} {'p50 ms':>8} {'p95 ms':>8} {'max ms':>8} {'p50 / floor':>12}"]
    for name, samples in RESULTS.items():
        p50, p95, top = summary(samples)
        lines.append(f"{name:36} {p50:8.2f} {p95:8.2f} {top:8.2f} {p50 / floor:12.1f}")
    report = "\n".join(lines)
    print("\n" + report)
    from tests.conftest import ARTIFACTS

    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / "bench-latency.txt").write_text(report + "\n")


def _details():
    from autobahn.wamp.types import SubscribeOptions

    return SubscribeOptions(details_arg="details")
