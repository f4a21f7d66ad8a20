"""Redis Streams for the bridge, over txredisapi.

txredisapi predates streams, so the commands go through ``execute_command`` and their
replies are parsed here, in one place. Replies are text (``convertNumbers=False``: a
payload of ``"1"`` must stay a string).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

import txredisapi
from twisted.internet import defer
from twisted.internet.endpoints import HostnameEndpoint, UNIXClientEndpoint, wrapClientTLS
from twisted.internet.ssl import optionsForClientTLS
from twisted.python.failure import Failure

__all__ = [
    "Entry",
    "NoGroup",
    "RedisConnection",
    "RedisStream",
    "RedisDisconnected",
    "parse_entries",
    "parse_entry",
    "parse_autoclaim",
]

#: (entry id, fields) -- fields is None for an entry that was trimmed away while pending.
Entry = tuple[str, "dict[str, str] | None"]


class RedisDisconnected(ConnectionError):
    """No connection to Redis right now (txredisapi keeps reconnecting in the background)."""


class NoGroup(Exception):
    """The stream or the consumer group is gone (e.g. Redis restarted without persistence)."""


class RedisConnection:
    """One reconnecting connection to the server a ``redis://``/``rediss://``/``unix://`` URL names.

    Commands fail at once with ``RedisDisconnected`` while disconnected, instead of queueing
    until Redis comes back: the caller decides how to back off.
    """

    def __init__(self, url: str, reactor, *, display: str, reply_timeout: float, connect_timeout: float = 5.0):
        parts = urlsplit(url)
        self._reactor = reactor
        #: the URL without credentials, for messages and logs
        self.display = display
        if parts.scheme == "unix":
            endpoint = UNIXClientEndpoint(reactor, unquote(parts.path), timeout=connect_timeout)
            dbid = _dbid(parts.query)
        elif parts.scheme in ("redis", "rediss"):
            host = parts.hostname or "localhost"
            endpoint = HostnameEndpoint(reactor, host, parts.port or 6379, timeout=connect_timeout)
            if parts.scheme == "rediss":
                endpoint = wrapClientTLS(optionsForClientTLS(host), endpoint)
            dbid = int(parts.path.strip("/") or 0)
        else:
            raise ValueError(f"unsupported Redis URL scheme {parts.scheme!r} (use redis, rediss or unix)")
        self._factory = txredisapi.RedisFactory(
            uuid=self.display,
            dbid=dbid,
            poolsize=1,
            isLazy=True,
            password=unquote(parts.password) if parts.password else None,
            username=unquote(parts.username) if parts.username else None,
            replyTimeout=reply_timeout,
            convertNumbers=False,
        )
        # The factory's first-connection Deferred is not ours to wait on; keep its failure quiet.
        self._factory.deferred.addErrback(lambda _failure: None)
        self._factory.startConnecting(endpoint)

    @property
    def connected(self) -> bool:
        return any(conn.connected for conn in self._factory.pool)

    def when_connected(self) -> defer.Deferred:
        """Fires once a connection is up and has selected its database, so that ``execute`` works.

        Cancelling it is safe (txredisapi's own waiter is not). txredisapi hands a new
        connection to its waiters *before* it adds it to the pool that ``execute`` uses (and may
        do so before its ``AUTH``/``SELECT`` are answered); answering the waiter at once made the
        bridge's first command fail with "not connected" at every start. So this fires once the
        connection is ready, one reactor turn later.
        """
        ours: defer.Deferred = defer.Deferred()
        if self.connected:
            ours.callback(None)
            return ours

        def settle(result):
            if ours.called:
                return
            if isinstance(result, Failure):
                ours.errback(result)
            else:
                self._reactor.callLater(0, lambda: ours.called or ours.callback(None))

        self._factory.getConnection(peek=True).addCallback(lambda conn: conn.whenConnected()).addBoth(settle)
        return ours

    def execute(self, *args: str | int) -> defer.Deferred:
        for conn in self._factory.pool:
            if conn.connected:
                return conn.execute_command(*args)
        return defer.fail(RedisDisconnected(f"not connected to Redis at {self.display}"))

    def close(self) -> defer.Deferred:
        return self._factory.disconnect()


def _dbid(query: str) -> int:
    for item in query.split("&"):
        if item.startswith("db="):
            return int(item[3:])
    return 0


@dataclass
class RedisStream:
    """One consumer in one consumer group of one stream.

    ``XREADGROUP ... BLOCK`` holds its connection until an entry comes or the block ends;
    give the stream a ``reader`` of its own so that acknowledgements (and anything else on
    ``connection``, such as history writes) never wait behind a blocked read.
    """

    connection: RedisConnection
    key: str
    group: str
    consumer: str
    #: the connection blocking reads go over (default: ``connection``)
    reader: RedisConnection | None = None

    async def ensure_group(self, start_id: str) -> bool:
        """Create the group (and the stream) reading from ``start_id``; False if it existed."""
        try:
            await self._call("XGROUP", "CREATE", self.key, self.group, start_id, "MKSTREAM")
        except txredisapi.ResponseError as exc:
            if "BUSYGROUP" in str(exc):
                return False
            raise
        return True

    async def read_new(self, count: int, block_ms: int) -> list[Entry]:
        """Entries never delivered to this group; waits up to ``block_ms`` for the first."""
        reply = await self._call(
            "XREADGROUP", "GROUP", self.group, self.consumer,
            "COUNT", count, "BLOCK", block_ms, "STREAMS", self.key, ">",
            via=self.reader,
        )
        return parse_entries(reply)

    async def claim(self, min_idle_ms: int, start: str, count: int) -> tuple[str, list[Entry]]:
        """Take over pending entries idle for ``min_idle_ms`` (from any consumer of the group).

        Returns the cursor for the next call ("0-0" when the scan is complete) and the entries.
        """
        reply = await self._call(
            "XAUTOCLAIM", self.key, self.group, self.consumer, min_idle_ms, start, "COUNT", count
        )
        return parse_autoclaim(reply)

    async def ack(self, ids: Sequence[str]) -> int:
        if not ids:
            return 0
        return int(await self._call("XACK", self.key, self.group, *ids))

    async def _call(self, *args: str | int, via: RedisConnection | None = None):
        try:
            return await (via or self.connection).execute(*args)
        except txredisapi.ResponseError as exc:
            if "NOGROUP" in str(exc):
                raise NoGroup(str(exc)) from None
            raise


def parse_entries(reply) -> list[Entry]:
    """Parse an ``XREADGROUP`` reply: ``[[key, [[id, [f, v, ...]], ...]]]`` or nil."""
    if not reply:
        return []
    entries: list[Entry] = []
    for _key, stream_entries in reply:
        entries.extend(parse_entry(item) for item in stream_entries or ())
    return entries


def parse_autoclaim(reply) -> tuple[str, list[Entry]]:
    """Parse ``XAUTOCLAIM``: ``[cursor, [[id, fields], ...]]`` (+ ``[deleted ids]`` on Redis 7)."""
    cursor, claimed = reply[0], reply[1]
    entries = [parse_entry(item) for item in claimed or ()]
    if len(reply) > 2:
        entries.extend((entry_id, None) for entry_id in reply[2] or ())
    return cursor, entries


def parse_entry(item) -> Entry:
    """One ``[id, [field, value, ...]]`` item of a stream reply."""
    entry_id, flat = item[0], item[1]
    if flat is None:
        return entry_id, None
    return entry_id, dict(zip(flat[0::2], flat[1::2], strict=False))  # a field without a value is dropped
