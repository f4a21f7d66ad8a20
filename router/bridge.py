"""The bridge: Redis stream -> WAMP publications, at least once.

``StreamBridge`` is the logic (no WAMP, time injected); ``BridgeComponent`` is the
Crossbar component that runs it with the node's backend session.

Delivery rules (docs/topics/delivery.md):

- an entry is acknowledged (``XACK``) only after the router accepted its publication
  (``acknowledge=True``), or after it was dropped on purpose (malformed, too old,
  refused by the router, trimmed away);
- on every (re)start the bridge first claims everything its group left pending
  (``XAUTOCLAIM``), so a crash between publish and ack delivers again, with the same id;
- an event older than ``MAX_EVENT_AGE`` is dropped and counted, not delivered late;
- without Redis it backs off and retries; it never gives up while the node runs.
"""

from __future__ import annotations

import random
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field

import txredisapi
from autobahn.wamp.exception import ApplicationError, TransportLost
from autobahn.wamp.types import PublishOptions
from twisted.internet import defer, task, threads
from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger

from realtime import errors, wire

from .auth import REVOKE_URI
from .backend import BackendSession
from .history import HistoryWriter
from .redis_stream import Entry, NoGroup, RedisConnection, RedisDisconnected, RedisStream

__all__ = ["Backoff", "BridgeStats", "StreamBridge", "BridgeComponent"]

_REDIS_DOWN = (RedisDisconnected, txredisapi.ConnectionError, ConnectionError)


class Backoff:
    """Exponential backoff with jitter: 0.5 s, 1 s, 2 s ... up to ``maximum``."""

    def __init__(self, initial: float = 0.5, maximum: float = 10.0, factor: float = 2.0,
                 jitter: float = 0.2, rand: Callable[[], float] = random.random):
        self.initial, self.maximum, self.factor, self.jitter = initial, maximum, factor, jitter
        self._rand = rand
        self.attempt = 0

    def next_delay(self) -> float:
        delay = min(self.maximum, self.initial * self.factor ** self.attempt)
        self.attempt += 1
        return delay * (1 + self.jitter * (2 * self._rand() - 1))

    def reset(self) -> None:
        self.attempt = 0


@dataclass
class BridgeStats:
    delivered: int = 0
    expired: int = 0
    malformed: int = 0
    refused: int = 0
    trimmed: int = 0
    unaddressed: int = 0
    revocations: int = 0
    history_errors: int = 0
    redis_errors: int = 0


@dataclass
class StreamBridge:
    """Moves events from one consumer group of the stream into the router."""

    stream: RedisStream
    #: publishes one event (or carries out one control entry); fires when the router accepted it
    publish: Callable[[wire.Event | wire.Control], Awaitable[object]]
    clock: IReactorTime
    max_age: float
    max_payload_bytes: int | None = None
    #: keeps the latest events of the topics REALTIME["HISTORY"] names (None: no history)
    history: HistoryWriter | None = None
    batch_size: int = 100
    #: batches published before the oldest of them must be acknowledged by the router
    window: int = 4
    block_ms: int = 1000
    backoff: Backoff = field(default_factory=Backoff)
    log: Logger = field(default_factory=Logger)
    stats: BridgeStats = field(default_factory=BridgeStats)

    def __post_init__(self) -> None:
        self._stopping = False
        self._sleeping: defer.Deferred | None = None
        #: fires once the bridge has its group and has recovered pending entries
        self.ready: defer.Deferred[None] = defer.Deferred()

    async def run(self) -> None:
        """Deliver until ``stop()``; Redis outages are waited out with backoff."""
        while not self._stopping:
            try:
                await self._start()
                await self._deliver_new()
            except NoGroup:
                self.log.warn("bridge: the stream or its consumer group is gone; creating it again")
            except (*_REDIS_DOWN, txredisapi.ResponseError) as exc:
                # Down, restarting (LOADING) or refusing (e.g. WRONGTYPE): keep the node up,
                # retry with backoff, and say so in the log.
                if self._stopping:
                    break
                self.stats.redis_errors += 1
                delay = self.backoff.next_delay()
                if isinstance(exc, txredisapi.ResponseError):
                    self.log.error("bridge: Redis answered {error}; retry in {delay:.1f} s",
                                   error=str(exc), delay=delay)
                else:
                    self.log.warn("bridge waiting for Redis ({error}); retry in {delay:.1f} s",
                                  error=str(exc), delay=delay)
                await self._sleep(delay)

    async def _deliver_new(self) -> None:
        """Read and deliver until ``stop()``, keeping Redis and the router busy at once.

        The read for batch N+1 goes out before batch N is published, so Redis's round trip
        hides behind the router's work; and up to ``window`` batches are published before the
        oldest must be acknowledged, so the router works while the bridge decodes. Order is
        kept: a batch is published only after the one before it was (the router handles one
        session's messages in order). Entries read but not delivered when something fails
        stay pending in the group; ``recover()`` delivers them on the next start.
        """
        reading = defer.ensureDeferred(self.stream.read_new(self.batch_size, self.block_ms))
        in_flight: deque[defer.Deferred] = deque()
        try:
            while not self._stopping:
                entries = await reading
                reading = defer.ensureDeferred(self.stream.read_new(self.batch_size, self.block_ms))
                in_flight.append(defer.ensureDeferred(self._settle(*await self._send(entries))))
                while len(in_flight) >= self.window or (in_flight and in_flight[0].called):
                    await in_flight.popleft()
            while in_flight:
                await in_flight.popleft()
        finally:
            # their entries stay pending for recover(); a second failure is not news
            reading.addErrback(lambda _failure: None)
            for settling in in_flight:
                settling.addErrback(lambda _failure: None)

    def stop(self) -> None:
        self._stopping = True
        if self._sleeping is not None and not self._sleeping.called:
            self._sleeping.cancel()

    async def _start(self) -> None:
        start_id = f"{self._oldest_wanted_ms()}-0"
        if await self.stream.ensure_group(start_id):
            self.log.info("bridge created consumer group {group} from {start}", group=self.stream.group,
                          start=start_id)
        await self.recover()
        self.backoff.reset()
        if not self.ready.called:
            self.ready.callback(None)

    async def recover(self) -> None:
        """Deliver every entry the group left pending (a crash between publish and ack)."""
        cursor = "0-0"
        while True:
            cursor, entries = await self.stream.claim(0, cursor, self.batch_size)
            if entries:
                self.log.info("bridge recovering {count} pending entries", count=len(entries))
                await self.deliver(entries)
            if cursor == "0-0":
                return

    async def deliver(self, entries: list[Entry]) -> None:
        """Publish a batch in order, then acknowledge what is done with.

        Publications go out back to back on one session (the router keeps their order);
        a lost router connection propagates after the finished entries were acknowledged.
        """
        await self._settle(*await self._send(entries))

    async def _send(self, entries: list[Entry]):
        """Decode, record history, publish; returns what ``_settle`` needs once acknowledged."""
        done: list[str] = []
        events: list[wire.Event | wire.Control] = []
        fields_of: dict[str, dict] = {}
        now_ms = int(self.clock.seconds() * 1000)
        oldest_ms = self._oldest_wanted_ms()
        for entry_id, fields in entries:
            if fields is None:
                self.stats.trimmed += 1
                done.append(entry_id)
                continue
            try:
                event = wire.decode_entry(entry_id, fields, max_payload_bytes=self.max_payload_bytes)
            except wire.MalformedEntry as exc:
                self.stats.malformed += 1
                self.log.warn("bridge dropped malformed entry {id}: {reason}", id=entry_id, reason=str(exc))
                done.append(entry_id)
                continue
            if isinstance(event, wire.Control):
                # revocations are never too old: a late kill is still a kill
                events.append(event)
                continue
            if event.timestamp_ms < oldest_ms:
                self.stats.expired += 1
                self.log.debug("bridge dropped {id} on {topic}: {age:.0f} s old", id=entry_id,
                               topic=event.topic, age=(now_ms - event.timestamp_ms) / 1000)
                done.append(entry_id)
                continue
            if event.eligible is not None and not event.eligible:
                # nobody is eligible; WAMP would read an empty list as "no restriction"
                self.stats.unaddressed += 1
                done.append(entry_id)
                continue
            events.append(event)
            fields_of[event.id] = fields

        # History first: a client that reconnects between the two finds the event in the
        # history (and de-duplicates it if it also arrives live) instead of missing it.
        await self._record_history([e for e in events if isinstance(e, wire.Event)], fields_of)
        published = defer.DeferredList(
            [defer.maybeDeferred(self.publish, event) for event in events], consumeErrors=True
        )
        return done, events, published

    async def _settle(self, done: list[str], events: list, published: defer.DeferredList) -> None:
        """Count the router's answers, acknowledge what is done with, raise a lost connection."""
        results = await published
        lost = None
        for event, (ok, outcome) in zip(events, results, strict=True):
            if ok:
                if isinstance(event, wire.Control):
                    self.stats.revocations += 1
                else:
                    self.stats.delivered += 1
                done.append(event.id)
            elif outcome.check(ApplicationError):
                self.stats.refused += 1
                self.log.warn("refused {id} ({what}): {error}", id=event.id,
                              what=getattr(event, "topic", None) or getattr(event, "action", "?"),
                              error=outcome.value.error)
                done.append(event.id)
            elif lost is None:
                lost = outcome
        await self.stream.ack(done)
        if lost is not None:
            lost.raiseException()

    async def _record_history(self, events: list[wire.Event], fields_of: dict[str, dict]) -> None:
        if self.history is None:
            return
        wanted = [(event, fields_of[event.id]) for event in events if self.history.wants(event.topic)]
        try:
            await self.history.record(wanted)
        except Exception as exc:
            # history is a convenience for reconnecting clients: never redeliver over it
            self.stats.history_errors += 1
            self.log.error("bridge could not store history for {count} events: {error}", count=len(wanted),
                           error=str(exc))

    def _oldest_wanted_ms(self) -> int:
        return max(0, int((self.clock.seconds() - self.max_age) * 1000))

    async def _sleep(self, seconds: float) -> None:
        self._sleeping = task.deferLater(self.clock, seconds, lambda: None)
        try:
            await self._sleeping
        except defer.CancelledError:
            pass
        finally:
            self._sleeping = None


class BridgeComponent(BackendSession):
    """Runs a ``StreamBridge`` for this node inside the Crossbar node."""

    log = Logger()
    STATS_INTERVAL = 60.0
    # a router that silently delivers nothing is worse than a node that stops
    component_name = "bridge"

    async def start(self) -> None:
        from twisted.internet import reactor

        from . import django_access

        conf = await threads.deferToThread(django_access.realtime_settings)
        if conf.REALM != self.config.realm:
            raise ValueError(f"Django's REALTIME['REALM'] is {conf.REALM!r} but the node serves "
                             f"{self.config.realm!r}; set both from DJWAMP_REALM")
        node_id = self._node_settings.node_id
        self._redis = RedisConnection(conf.REDIS_URL, reactor, display=conf.redis_display,
                                      reply_timeout=conf.REDIS_TIMEOUT + 5.0)
        # blocking reads get a connection of their own: acks and history never wait behind them
        self._reader = RedisConnection(conf.REDIS_URL, reactor, display=conf.redis_display,
                                       reply_timeout=conf.REDIS_TIMEOUT + 5.0)
        stream = RedisStream(self._redis, key=conf.STREAM, group=f"djwamp:{node_id}", consumer=node_id,
                             reader=self._reader)
        history = HistoryWriter(self._redis, conf.STREAM, conf.history, conf.HISTORY_TTL) if conf.history else None
        self.bridge = StreamBridge(stream, self._deliver, clock=reactor, max_age=conf.MAX_EVENT_AGE,
                                   max_payload_bytes=conf.MAX_PAYLOAD_BYTES, history=history, log=self.log)
        await self.register(self._stats, f"djwamp.bridge.{node_id}.stats")
        self.bridge.ready.addCallback(lambda _: self.log.info(
            "djwamp bridge ready: {stream} -> realm {realm} (group {group}, Redis {redis})",
            stream=conf.STREAM, realm=self.config.realm, group=stream.group, redis=conf.redis_display))
        try:
            # a moment for the first connection, so a normal start logs no "waiting for Redis"
            # (a DeferredList: cancelled by the timeout it fires with the failures, not a FirstError)
            await defer.DeferredList([self._redis.when_connected(), self._reader.when_connected()],
                                     consumeErrors=True).addTimeout(conf.REDIS_TIMEOUT, reactor)
        except defer.TimeoutError:
            pass
        self._running = defer.ensureDeferred(self.bridge.run())
        self._running.addErrback(self._crashed)
        self._reporting = task.LoopingCall(self._report)
        self._reporting.clock = reactor
        self._reporting.start(self.STATS_INTERVAL, now=False)

    def _deliver(self, item: wire.Event | wire.Control):
        if isinstance(item, wire.Control):
            return self.call(REVOKE_URI, item.action, item.authid, item.session)
        return self._publish_event(item)

    def _publish_event(self, event: wire.Event):
        options = PublishOptions(
            acknowledge=True,
            transaction_hash=event.id,
            eligible_authid=list(event.eligible) if event.eligible is not None else None,
            exclude_authid=list(event.exclude) if event.exclude is not None else None,
        )
        try:
            return self.publish(event.topic, *event.args, options=options, **event.kwargs)
        except TransportLost:
            raise
        except Exception as exc:
            # autobahn refused the message itself: the event can never be sent, so it is
            # refused like a router refusal (acknowledged, counted), not retried forever
            return defer.fail(ApplicationError(errors.INVALID_EVENT, type(exc).__name__))

    def _stats(self) -> dict[str, int]:
        return asdict(self.bridge.stats)

    def _report(self) -> None:
        stats = self._stats()
        if stats != getattr(self, "_reported", None):
            self._reported = stats
            self.log.info("bridge stats: {stats}", stats=stats)

    def _crashed(self, failure) -> None:
        self.log.failure("djwamp bridge stopped on an unexpected error", failure=failure)
        if self.is_attached():
            self.leave(errors.COMPONENT_FAILED)

    def onLeave(self, details) -> None:
        if getattr(self, "_reporting", None) is not None and self._reporting.running:
            self._reporting.stop()
        bridge = getattr(self, "bridge", None)
        if bridge is not None:
            bridge.stop()
            self._redis.close()
            self._reader.close()
        super().onLeave(details)
