"""Crashes and outages: the bridge delivers every event at least once, with its id."""

from __future__ import annotations

import os
import signal
import threading
import time

import psutil
import pytest
import pytest_twisted
from twisted.internet.threads import deferToThread

from realtime import RedisUnavailable, publish
from router.processes import free_port
from tests.conftest import RedisServer, running_node
from tests.wamp import EventCollector, connect_ws


@pytest.fixture(scope="module")
def durable_redis(tmp_path_factory):
    """A Redis that keeps its data across a restart (append-only file), on a fixed free port."""
    server = RedisServer(tmp_path_factory.mktemp("durable-redis"), free_port(), persistent=True).start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def node(tmp_path_factory, durable_redis):
    with running_node(tmp_path_factory, durable_redis.url) as node:
        yield node


@pytest.fixture
def durable_settings(settings, durable_redis):
    settings.REALTIME = {**settings.REALTIME, "REDIS_URL": durable_redis.url, "REDIS_TIMEOUT": 1.0}


def _payloads_by_id(events):
    by_id = {}
    for event_id, args, kwargs in events:
        assert by_id.setdefault(event_id, (args, kwargs)) == (args, kwargs), f"duplicate {event_id} differs"
    return by_id


@pytest_twisted.ensureDeferred
async def test_redis_restart_bridge_reconnects_and_loses_nothing(node, durable_redis, durable_settings):
    session = await connect_ws(node.ws_url, node.realm)
    events = EventCollector()
    await events.subscribe(session, "public.outage")
    before = [publish("public.outage", "before", n) for n in range(20)]
    await events.wait_for_ids(before)

    durable_redis.stop()
    started = time.monotonic()
    with pytest.raises(RedisUnavailable):
        publish("public.outage", "during")
    assert time.monotonic() - started < 10, "publish() must fail within a bounded time, not hang"

    durable_redis.start()
    after = [publish("public.outage", "after", n) for n in range(20)]
    received = await events.wait_for_ids(before + after, timeout=60)
    by_id = _payloads_by_id(received)
    assert [by_id[i] for i in after] == [(["after", n], {}) for n in range(20)]
    session.leave()


@pytest_twisted.ensureDeferred
async def test_redis_restarted_while_publishing_every_returned_id_is_delivered(node, durable_redis,
                                                                               durable_settings):
    # every publish() either returned an id that then arrives, or raised RedisUnavailable
    topic = "public.restart"
    session = await connect_ws(node.ws_url, node.realm)
    events = EventCollector()
    await events.subscribe(session, topic)
    returned: dict[str, int] = {}
    refused: list[int] = []
    other: list[BaseException] = []
    restarted = threading.Event()

    def publish_until_well_after_the_restart():
        n, after = 0, 0
        while after < 300:
            try:
                returned[publish(topic, n)] = n
            except RedisUnavailable:
                refused.append(n)
            except Exception as exc:  # noqa: BLE001 -- the assertion below names it
                other.append(exc)
            n += 1
            after += restarted.is_set()
            time.sleep(0.001)

    publishing = deferToThread(publish_until_well_after_the_restart)
    await events.wait_for(100, timeout=60)
    durable_redis.proc.kill(signal.SIGKILL)            # appendfsync always: nothing acknowledged is lost
    durable_redis.proc.proc.wait(10)
    durable_redis.stop()
    durable_redis.start()
    restarted.set()
    await publishing
    assert other == [], f"publish() raised something else than RedisUnavailable: {other[:3]}"
    assert refused, "the restart happened while publishing (some calls must have been refused)"
    received = await events.wait_for_ids(list(returned), timeout=120)
    by_id = _payloads_by_id(received)
    assert all(by_id[event_id] == ([n], {}) for event_id, n in returned.items())
    session.leave()


def _bridge_worker(node) -> psutil.Process:
    """The worker process the bridge runs in (router/nodeconfig.py, DJWAMP_BRIDGE_WORKER)."""
    controller = {"router": "RouterController", "container": "ContainerController"}[node.settings.bridge_worker]
    for child in psutil.Process(node.proc.pid).children(recursive=True):
        if controller in " ".join(child.cmdline()):
            return child
    raise AssertionError(f"the node has no {node.settings.bridge_worker} worker")


@pytest.fixture
def node_with_bridge_in(request, tmp_path_factory, durable_redis):
    """A node of its own whose bridge runs in the worker the test names (DJWAMP_BRIDGE_WORKER)."""
    with running_node(tmp_path_factory, durable_redis.url, DJWAMP_BRIDGE_WORKER=request.param) as node:
        yield node


@pytest.mark.parametrize("node_with_bridge_in, killed, count", [
    ("router", "bridge-worker", 3000), ("container", "bridge-worker", 3000), ("router", "node", 10_000),
], indirect=["node_with_bridge_in"], ids=["router-worker", "container-worker", "node"])
@pytest_twisted.ensureDeferred
async def test_killed_mid_stream_every_event_arrives_after_the_restart(node_with_bridge_in, durable_redis,
                                                                      durable_settings, killed, count):
    # SIGKILL of the worker that runs the bridge (either placement), or of the whole node
    node = node_with_bridge_in
    topic = f"public.crash-{killed}-{node.settings.node_id}"   # a new node reads the stream from MAX_EVENT_AGE back
    first = await connect_ws(node.ws_url, node.realm)
    events = EventCollector()
    await events.subscribe(first, topic)

    published: list[str] = []

    def publish_all():
        for n in range(count):
            published.append(publish(topic, n))

    publishing = deferToThread(publish_all)
    await events.wait_for(200, timeout=60)
    if killed == "bridge-worker":
        os.kill(_bridge_worker(node).pid, signal.SIGKILL)               # the bridge dies mid-stream
    else:
        node.proc.kill(signal.SIGKILL)                                   # every process of the node
    await publishing                                                    # the rest lands in Redis meanwhile
    assert len(published) == count
    # Crossbar takes the whole node down when a worker dies (a process manager restarts it)
    await deferToThread(node.proc.proc.wait, 60)
    node.stop()

    # Restart with Redis away, so the subscriber is back before the bridge can deliver:
    # then nothing is published into an empty router, and Redis coming back is exercised too.
    durable_redis.stop()
    node.start(wait_for_bridge=False)
    second = await connect_ws(node.ws_url, node.realm)
    await events.subscribe(second, topic)
    durable_redis.start()

    received = await events.wait_for_ids(published, timeout=120)
    by_id = _payloads_by_id(received)
    assert [by_id[event_id] for event_id in published] == [([n], {}) for n in range(count)]   # lost = 0
    # duplicates only with the same id: no event arrived a second time under an id of its own
    assert set(by_id) == set(published), f"{len(set(by_id) - set(published))} events under unknown ids"
    node.proc.wait_for("djwamp bridge ready", 5)
    second.leave()
