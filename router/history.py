"""Event history: what a reconnecting client missed, under the same permission as subscribing.

The bridge keeps, for each topic that ``REALTIME["HISTORY"]`` names, a small Redis stream of
its latest events, with the same ids as the main stream (so a client's last id is a cursor
there too, and a redelivered event cannot be stored twice). ``djwamp.history`` serves it:

    call("djwamp.history", topic, since=None, limit=100)
      -> {"events": [{"id", "args", "kwargs"}, ...], "complete": bool, "more": bool}

``complete`` is false when events after ``since`` were already trimmed away: the client
then tells the page that the gap was too large to fill.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import txredisapi
from autobahn.wamp.exception import ApplicationError
from autobahn.wamp.types import CallDetails, RegisterOptions
from twisted.internet import defer, threads
from twisted.logger import Logger

from realtime import errors, wire

from . import django_access
from .backend import BackendSession
from .redis_stream import RedisConnection, parse_entry

__all__ = ["HISTORY_URI", "history_key", "HistoryWriter", "HistoryComponent", "compare_ids"]

HISTORY_URI = "djwamp.history"
MAX_LIMIT = 500


def history_key(stream_key: str, topic: str) -> str:
    return f"{stream_key}:history:{topic}"


def compare_ids(a: str, b: str) -> int:
    (am, as_), (bm, bs) = (tuple(map(int, x.split("-"))) for x in (a, b))
    return (am > bm or (am == bm and as_ > bs)) - (am < bm or (am == bm and as_ < bs))


class HistoryWriter:
    """Appends delivered events to their topic's history (called by the bridge)."""

    def __init__(self, connection: RedisConnection, stream_key: str, policy, ttl: int):
        self.connection, self.stream_key, self.policy, self.ttl = connection, stream_key, policy, ttl

    def wants(self, topic: str) -> bool:
        return self.policy.size_for(topic) is not None

    async def record(self, events: Iterable[tuple[wire.Event, Mapping[str, str]]]) -> None:
        commands = []
        for event, fields in events:
            size = self.policy.size_for(event.topic)
            if size is None:
                continue
            key = history_key(self.stream_key, event.topic)
            flat = [item for pair in fields.items() for item in pair]
            commands.append(defer.ensureDeferred(self._append(key, size, event.id, flat)))
            commands.append(self.connection.execute("EXPIRE", key, self.ttl))
        if commands:
            # sent back to back on one connection (pipelined), awaited together
            await defer.gatherResults(commands, consumeErrors=True)

    async def _append(self, key: str, size: int, entry_id: str, flat: list[str]) -> None:
        try:
            # one more than asked: a client whose last id is the oldest kept can tell nothing is missing
            await self.connection.execute("XADD", key, "MAXLEN", size + 1, entry_id, *flat)
        except txredisapi.ResponseError as exc:
            # stored already: a redelivery after a crash, or another node's bridge
            if "equal or smaller" not in str(exc):
                raise


class HistoryComponent(BackendSession):
    """Registers ``djwamp.history`` for browsers; checks the caller may subscribe to the topic."""

    log = Logger()
    component_name = "history"

    async def start(self) -> None:
        from twisted.internet import reactor

        self.conf = await threads.deferToThread(django_access.realtime_settings)
        self.policy = self.conf.history
        self.redis = RedisConnection(self.conf.REDIS_URL, reactor, display=self.conf.redis_display,
                                     reply_timeout=self.conf.REDIS_TIMEOUT)
        self.pool = django_access.DjangoThreadPool(size=4, name="djwamp-history")
        # details under a name no caller's keyword argument can take over
        await self.register(self.history, HISTORY_URI,
                            options=RegisterOptions(details_arg="_djwamp_call_details", invoke="roundrobin"))
        self.log.info("djwamp history ready on {uri} ({topics})", uri=HISTORY_URI,
                      topics="on" if self.policy else "no topics configured")

    async def history(self, topic, since=None, limit=100, _djwamp_call_details: CallDetails | None = None) -> dict:
        details = _djwamp_call_details
        topic, since, limit = self._check_arguments(topic, since, limit)
        role, authid = details.caller_authrole, details.caller_authid
        # permission first: which topics keep a history is not for everyone to learn
        if not await self._may_subscribe(role, authid, topic):
            raise ApplicationError(errors.NOT_AUTHORIZED, "not authorized")
        size = self.policy.size_for(topic)
        if size is None:
            raise ApplicationError(errors.NO_HISTORY, f"{topic} keeps no history")
        key = history_key(self.conf.STREAM, topic)
        try:
            if since is None:
                newest = await self.redis.execute("XREVRANGE", key, "+", "-", "COUNT", min(limit, size))
                raw = list(reversed(newest or []))
                more, complete = False, True
            else:
                raw = await self.redis.execute("XRANGE", key, f"({since}", "+", "COUNT", limit + 1) or []
                more = len(raw) > limit
                raw = raw[:limit]
                complete = await self._nothing_trimmed_after(key, since)
        except (txredisapi.RedisError, ConnectionError):
            raise ApplicationError(errors.UNAVAILABLE, "history is unavailable, try again") from None
        events = [self._visible(entry, authid) for entry in map(parse_entry, raw)]
        return {"events": [e for e in events if e is not None], "complete": complete, "more": more}

    @staticmethod
    def _check_arguments(topic, since, limit):
        try:
            wire.check_topic(topic)
        except (TypeError, ValueError):
            raise ApplicationError(errors.WAMP_INVALID_ARGUMENT, "topic must be a topic URI") from None
        if since is not None and not (isinstance(since, str) and _is_entry_id(since)):
            raise ApplicationError(errors.WAMP_INVALID_ARGUMENT, "since must be an event id or null")
        if not isinstance(limit, int) or isinstance(limit, bool) or not 0 < limit <= MAX_LIMIT:
            raise ApplicationError(errors.WAMP_INVALID_ARGUMENT, f"limit must be 1..{MAX_LIMIT}")
        return topic, since, limit

    async def _may_subscribe(self, role: str | None, authid: str | None, topic: str) -> bool:
        verdict = self.conf.rules.decide(role or "", authid, topic, "subscribe", "exact")
        if verdict.allow:
            return True
        if verdict.pending:
            return await self.pool.run(django_access.user_passes, authid, verdict.pending, topic, "subscribe")
        return False

    async def _nothing_trimmed_after(self, key: str, since: str) -> bool:
        """Whether every event after ``since`` is still there: ``since`` itself is still kept
        (or older than everything kept but newer than nothing trimmed). The writer keeps one
        event more than the topic's size, so missing exactly ``size`` events is still complete."""
        oldest = await self.redis.execute("XRANGE", key, "-", "+", "COUNT", 1)
        if not oldest:
            return False  # expired or never written: whatever came after `since` is gone
        return compare_ids(since, oldest[0][0]) >= 0

    @staticmethod
    def _visible(entry, authid: str | None) -> dict | None:
        entry_id, fields = entry
        try:
            event = wire.decode_entry(entry_id, fields or {})
        except wire.MalformedEntry:
            return None
        if event.eligible is not None and authid not in event.eligible:
            return None
        if event.exclude is not None and authid in event.exclude:
            return None
        return {"id": event.id, "args": event.args, "kwargs": event.kwargs}

    def onLeave(self, details) -> None:
        if getattr(self, "redis", None) is not None:
            self.redis.close()
        super().onLeave(details)


def _is_entry_id(value: str) -> bool:
    try:
        wire.entry_timestamp_ms(value)
    except wire.MalformedEntry:
        return False
    return True
