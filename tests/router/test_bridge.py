"""StreamBridge against a real redis-server; the router is a recording publisher, time a Clock."""

from __future__ import annotations

import time

import pytest
import pytest_twisted
from autobahn.wamp.exception import ApplicationError, TransportLost
from twisted.internet import defer, reactor, task
from twisted.logger import Logger, formatEvent

from realtime import wire
from router.bridge import Backoff, StreamBridge
from router.processes import free_port
from router.redis_stream import RedisConnection, RedisStream


class Router:
    """Stands in for the WAMP session: records publications; each can be held or failed."""

    def __init__(self, hold: bool = False, fail_after: int | None = None, error: Exception | None = None):
        self.published: list[wire.Event] = []
        self.held: list[defer.Deferred] = []
        self.hold, self.fail_after, self.error = hold, fail_after, error
        self._waiters: list[tuple[int, defer.Deferred]] = []

    def __call__(self, event: wire.Event):
        if self.fail_after is not None and len(self.published) >= self.fail_after:
            return defer.fail(self.error or TransportLost())
        self.published.append(event)
        for waiter in list(self._waiters):
            if len(self.published) >= waiter[0]:
                self._waiters.remove(waiter)
                waiter[1].callback(None)
        if self.hold:
            d = defer.Deferred()
            self.held.append(d)
            return d
        return defer.succeed(None)

    async def wait_for(self, count: int, timeout: float = 10) -> None:
        if len(self.published) < count:
            d = defer.Deferred()
            self._waiters.append((count, d))
            await d.addTimeout(timeout, reactor)


def now_clock() -> task.Clock:
    clock = task.Clock()
    clock.advance(time.time())
    return clock


def add(client, key: str, topic: str = "public.t", *args, entry_id: str = "*", **kwargs) -> str:
    return client.xadd(key, wire.encode_event(topic, args, kwargs), id=entry_id)


def pending(client, key: str, group: str = "djwamp:test") -> int:
    return client.xpending(key, group)["pending"]


def make_bridge(stream, router, clock=None, **kwargs) -> StreamBridge:
    return StreamBridge(stream, router, clock=clock or now_clock(), max_age=300, block_ms=50, **kwargs)


@pytest_twisted.ensureDeferred
async def test_entry_is_acknowledged_only_after_the_router_accepted_it(client, make_stream, stream_key):
    stream = make_stream()
    router = Router(hold=True)
    bridge = make_bridge(stream, router)
    await stream.ensure_group("0-0")
    event_id = add(client, stream_key, "public.t", "hello")

    delivering = defer.ensureDeferred(bridge.deliver(await stream.read_new(10, 50)))
    assert [e.id for e in router.published] == [event_id]
    assert pending(client, stream_key) == 1 and not delivering.called

    router.held[0].callback(None)          # the router's PUBLISHED
    await delivering
    assert pending(client, stream_key) == 0
    assert bridge.stats.delivered == 1


@pytest_twisted.ensureDeferred
async def test_event_reaches_the_router_with_its_topic_args_kwargs_and_id(client, make_stream, stream_key):
    stream = make_stream()
    router = Router()
    await stream.ensure_group("0-0")
    event_id = add(client, stream_key, "public.scores", 1, "1", {"a": None}, text="1")
    await make_bridge(stream, router).deliver(await stream.read_new(10, 50))
    # txredisapi must not turn "1" into 1 (convertNumbers=False)
    assert router.published == [wire.Event(event_id, "public.scores", [1, "1", {"a": None}], {"text": "1"})]


@pytest_twisted.ensureDeferred
async def test_router_refusal_is_acknowledged_counted_and_does_not_block_the_rest(client, make_stream, stream_key):
    stream = make_stream()
    router = Router(fail_after=0, error=ApplicationError("wamp.error.not_authorized"))
    bridge = make_bridge(stream, router)
    await stream.ensure_group("0-0")
    add(client, stream_key, "public.t", 1)
    add(client, stream_key, "public.t", 2)
    await bridge.deliver(await stream.read_new(10, 50))
    assert bridge.stats.refused == 2
    assert pending(client, stream_key) == 0


@pytest_twisted.ensureDeferred
async def test_lost_router_leaves_entries_pending_and_the_next_start_delivers_them_with_the_same_id(
        client, make_stream, stream_key):
    first = make_stream("bridge-a")
    router = Router(fail_after=1)                       # accepts one, then the connection is gone
    await first.ensure_group("0-0")
    ids = [add(client, stream_key, "public.t", n) for n in range(3)]
    with pytest.raises(TransportLost):
        await make_bridge(first, router).deliver(await first.read_new(10, 50))
    assert pending(client, stream_key) == 2             # the accepted one was acknowledged

    restarted = make_stream("bridge-b")                 # a new process, even under another name
    again = Router()
    bridge = make_bridge(restarted, again)
    await bridge.recover()
    assert [e.id for e in again.published] == ids[1:]
    assert pending(client, stream_key) == 0


@pytest_twisted.ensureDeferred
async def test_run_claims_entries_a_crashed_consumer_left_pending_then_reads_new_ones(
        client, make_stream, stream_key):
    crashed = make_stream("bridge-a")
    await crashed.ensure_group("0-0")
    old = [add(client, stream_key, "public.t", n) for n in range(5)]
    assert len(await crashed.read_new(10, 50)) == 5     # read, never acknowledged: a SIGKILL

    router = Router()
    bridge = make_bridge(make_stream("bridge-a"), router)
    running = defer.ensureDeferred(bridge.run())
    await bridge.ready
    new = add(client, stream_key, "public.t", "new")
    await router.wait_for(6)
    bridge.stop()
    await running
    assert [e.id for e in router.published] == old + [new]
    assert pending(client, stream_key) == 0


@pytest_twisted.ensureDeferred
async def test_up_to_window_batches_are_published_before_the_oldest_is_acknowledged_in_order(
        client, make_stream, stream_key):
    stream = make_stream()
    router = Router(hold=True)
    bridge = make_bridge(stream, router, batch_size=1, window=2)
    running = defer.ensureDeferred(bridge.run())
    await bridge.ready
    ids = [add(client, stream_key, "public.t", n) for n in range(4)]
    await router.wait_for(2)                      # batch 2 went out before batch 1 was acknowledged
    deadline = time.monotonic() + 10
    while pending(client, stream_key) < 3:        # the bridge has read batch 3 and holds it back
        assert time.monotonic() < deadline, "the bridge never read ahead"
        await task.deferLater(reactor, 0.01, lambda: None)
    assert [e.id for e in router.published] == ids[:2], "no third batch while two are unacknowledged"
    assert pending(client, stream_key) == 3, "two published, the next read ahead, none acknowledged"
    router.held[0].callback(None)
    await router.wait_for(3)
    router.hold = False
    for held in router.held[1:]:
        held.callback(None)
    await router.wait_for(4)
    bridge.stop()
    await running
    assert [e.id for e in router.published] == ids
    assert pending(client, stream_key) == 0
    assert bridge.stats.delivered == 4


@pytest_twisted.ensureDeferred
async def test_events_older_than_max_age_are_dropped_counted_and_acknowledged(client, make_stream, stream_key):
    stream = make_stream()
    router = Router()
    clock = now_clock()
    bridge = make_bridge(stream, router, clock)
    await stream.ensure_group("0-0")
    add(client, stream_key, "public.t", "stale")
    clock.advance(301)                                   # the bridge was away for five minutes
    fresh = add(client, stream_key, "public.t", "fresh", entry_id=f"{int(clock.seconds() * 1000)}-0")
    await bridge.deliver(await stream.read_new(10, 50))
    assert [e.id for e in router.published] == [fresh]
    assert bridge.stats.expired == 1
    assert pending(client, stream_key) == 0


@pytest_twisted.ensureDeferred
async def test_a_new_group_starts_at_max_age_and_skips_older_entries(client, make_stream, stream_key):
    clock = now_clock()
    too_old = int((clock.seconds() - 400) * 1000)
    add(client, stream_key, "public.t", "ancient", entry_id=f"{too_old}-0")
    recent = add(client, stream_key, "public.t", "recent")
    router = Router()
    bridge = make_bridge(make_stream(), router, clock)
    running = defer.ensureDeferred(bridge.run())
    await router.wait_for(1)
    bridge.stop()
    await running
    assert [e.id for e in router.published] == [recent]
    assert bridge.stats.expired == 0                     # never read at all, not dropped one by one


@pytest_twisted.ensureDeferred
async def test_malformed_entries_are_logged_without_payload_acknowledged_and_never_wedge_the_stream(
        client, make_stream, stream_key):
    stream = make_stream()
    router = Router()
    logged: list[dict] = []
    bridge = make_bridge(stream, router, log=Logger(observer=logged.append))
    await stream.ensure_group("0-0")
    client.xadd(stream_key, {"v": "1", "topic": "public.t", "args": "[SECRET-PAYLOAD"})
    client.xadd(stream_key, {"v": "1", "topic": "public.t", "kwargs": '{"x": "SECRET-PAYLOAD"}', "extra": "1"})
    client.xadd(stream_key, {"v": "2", "topic": "public.t", "args": '["SECRET-PAYLOAD"]'})
    client.xadd(stream_key, {"v": "1", "topic": "wamp.session.kill", "args": '["SECRET-PAYLOAD"]'})
    good = add(client, stream_key, "public.t", "fine")
    await bridge.deliver(await stream.read_new(10, 50))

    assert [e.id for e in router.published] == [good]
    assert bridge.stats.malformed == 4
    assert pending(client, stream_key) == 0
    messages = [formatEvent(event) for event in logged]
    assert len([m for m in messages if "malformed" in m]) == 4
    assert not [m for m in messages if "SECRET-PAYLOAD" in m]


@pytest_twisted.ensureDeferred
async def test_pending_entry_trimmed_from_the_stream_is_acknowledged_and_counted(client, make_stream, stream_key):
    stream = make_stream()
    await stream.ensure_group("0-0")
    gone = add(client, stream_key, "public.t", "gone")
    await stream.read_new(10, 50)                        # pending, then MAXLEN trims it away
    client.xdel(stream_key, gone)
    bridge = make_bridge(stream, Router())
    await bridge.recover()
    assert bridge.stats.trimmed == 1
    assert pending(client, stream_key) == 0


@pytest_twisted.ensureDeferred
async def test_stream_deleted_while_running_is_recreated_and_delivery_continues(client, make_stream, stream_key):
    router = Router()
    logged: list[dict] = []
    bridge = make_bridge(make_stream(), router, log=Logger(observer=logged.append))
    running = defer.ensureDeferred(bridge.run())
    await bridge.ready
    add(client, stream_key, "public.t", 1)
    await router.wait_for(1)
    client.delete(stream_key)                            # e.g. Redis restarted without persistence
    second = add(client, stream_key, "public.t", 2)
    await router.wait_for(2)
    bridge.stop()
    await running
    assert router.published[-1].id == second
    assert any("gone" in formatEvent(e) for e in logged)


@pytest_twisted.ensureDeferred
async def test_bridge_backs_off_on_the_injected_clock_while_redis_is_down():
    clock = task.Clock()
    nowhere = RedisConnection(f"redis://127.0.0.1:{free_port()}/0", reactor, display="nowhere",
                              reply_timeout=1)
    stream = RedisStream(nowhere, key="k", group="g", consumer="c")
    bridge = StreamBridge(stream, Router(), clock=clock, max_age=300,
                          backoff=Backoff(initial=0.5, maximum=4, rand=lambda: 0.5),
                          log=Logger(observer=lambda e: None))
    running = defer.ensureDeferred(bridge.run())
    assert bridge.stats.redis_errors == 1
    for delay, attempts in [(0.5, 2), (1, 3), (2, 4), (4, 5), (4, 6)]:
        clock.advance(delay - 0.01)
        assert bridge.stats.redis_errors == attempts - 1, "retried before its delay"
        clock.advance(0.01)
        assert bridge.stats.redis_errors == attempts
    bridge.stop()
    await running
    assert not bridge.ready.called
    await nowhere.close()


def test_backoff_grows_to_its_maximum_with_bounded_jitter_and_resets():
    backoff = Backoff(initial=0.5, maximum=10, factor=2, jitter=0.2, rand=lambda: 0.5)
    assert [backoff.next_delay() for _ in range(7)] == [0.5, 1, 2, 4, 8, 10, 10]
    backoff.reset()
    assert backoff.next_delay() == 0.5
    low, high = Backoff(rand=lambda: 0.0), Backoff(rand=lambda: 1.0)
    assert low.next_delay() == pytest.approx(0.4) and high.next_delay() == pytest.approx(0.6)


@pytest_twisted.ensureDeferred
async def test_event_addressed_to_an_empty_user_list_reaches_nobody(client, make_stream, stream_key):
    # WAMP reads an empty eligible list as "no restriction": the bridge must not publish it
    stream = make_stream()
    router = Router()
    bridge = make_bridge(stream, router)
    await stream.ensure_group("0-0")
    client.xadd(stream_key, wire.encode_event("public.t", ["private"], eligible=[]))
    await bridge.deliver(await stream.read_new(10, 50))
    assert router.published == []
    assert bridge.stats.unaddressed == 1
    assert pending(client, stream_key) == 0


@pytest_twisted.ensureDeferred
async def test_oversized_entry_from_another_language_is_dropped_as_malformed(client, make_stream, stream_key):
    stream = make_stream()
    router = Router()
    bridge = make_bridge(stream, router, max_payload_bytes=1000)
    await stream.ensure_group("0-0")
    client.xadd(stream_key, {"v": "1", "topic": "public.t", "args": '["' + "x" * 2000 + '"]'})
    ok = add(client, stream_key, "public.t", "small")
    await bridge.deliver(await stream.read_new(10, 50))
    assert [e.id for e in router.published] == [ok]
    assert bridge.stats.malformed == 1


@pytest_twisted.ensureDeferred
async def test_a_connection_is_usable_as_soon_as_when_connected_fires(redis_server):
    # txredisapi queues a connection before its SELECT: the first command after the wait used to
    # fail with "not connected", so every node start logged "bridge waiting for Redis"
    from router.redis_stream import RedisConnection

    for url in (redis_server.url, redis_server.url.rstrip("0") + "3"):
        connection = RedisConnection(url, reactor, display=url, reply_timeout=5.0)
        try:
            await connection.when_connected().addTimeout(10, reactor)
            assert connection.connected
            assert await connection.execute("PING") == "PONG"
        finally:
            await connection.close()
