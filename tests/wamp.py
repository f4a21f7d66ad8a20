"""Plain autobahn clients for the tests: what a browser or a server-side client would be.

No djwamp code on the client side: these sessions see exactly what any WAMP client sees.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from autobahn.twisted.rawsocket import WampRawSocketClientFactory
from autobahn.twisted.wamp import ApplicationSession
from autobahn.twisted.websocket import WampWebSocketClientFactory
from autobahn.wamp.exception import ApplicationError
from autobahn.wamp.types import ComponentConfig, SubscribeOptions
from twisted.internet import defer, reactor
from twisted.internet.endpoints import TCP4ClientEndpoint, UNIXClientEndpoint

from router.nodeconfig import BACKEND_SOCKET
from router.settings import BACKEND_AUTHID


class ClientSession(ApplicationSession):
    """Joins with the given auth; ``joined`` fires with the session or fails with the reason."""

    def __init__(self, config, *, authmethods=None, authid=None, ticket=None):
        super().__init__(config)
        self._authmethods, self._authid, self._ticket = authmethods, authid, ticket
        self.joined: defer.Deferred = defer.Deferred()
        self.left: defer.Deferred = defer.Deferred()  # fires with the CloseDetails
        self.closed: defer.Deferred = defer.Deferred()

    def onConnect(self):
        self.join(self.config.realm, authmethods=self._authmethods, authid=self._authid)

    def onChallenge(self, challenge):
        return self._ticket

    def onJoin(self, details):
        self.details = details
        self.joined.callback(self)

    def onLeave(self, details):
        if not self.joined.called:
            self.joined.errback(ApplicationError(details.reason, details.message))
        if not self.left.called:
            self.left.callback(details)
        super().onLeave(details)

    def onDisconnect(self):
        if not self.joined.called:
            self.joined.errback(ConnectionError("disconnected before joining"))
        if not self.closed.called:
            self.closed.callback(None)


async def connect_ws(url: str, realm: str, *, origin: str | None = None, headers: dict | None = None,
                     authmethods=None, authid=None, ticket=None, timeout: float = 15) -> ClientSession:
    """Open a WebSocket to the node and join ``realm``."""
    session = ClientSession(ComponentConfig(realm=realm), authmethods=authmethods, authid=authid, ticket=ticket)
    factory = WampWebSocketClientFactory(lambda: session, url=url, origin=origin, headers=headers or {})
    parts = urlsplit(url)
    endpoint = TCP4ClientEndpoint(reactor, parts.hostname, parts.port, timeout=timeout)
    return await _join(session, await endpoint.connect(factory), timeout)


async def connect_backend(cbdir, realm: str, secret: str, timeout: float = 15) -> ClientSession:
    """Join through the node's private unix socket as the backend role (like our components)."""
    session = ClientSession(ComponentConfig(realm=realm), authmethods=["ticket"], authid=BACKEND_AUTHID,
                            ticket=secret)
    endpoint = UNIXClientEndpoint(reactor, str(cbdir / BACKEND_SOCKET), timeout=timeout)
    return await _join(session, await endpoint.connect(WampRawSocketClientFactory(lambda: session)), timeout)


async def _join(session: ClientSession, protocol, timeout: float) -> ClientSession:
    def closed(result):
        if not session.joined.called:
            session.joined.errback(ConnectionError("the router closed the connection before the session joined"))
        return result

    closing = getattr(protocol, "is_closed", None)
    if closing is not None:
        closing.addBoth(closed)
    return await session.joined.addTimeout(timeout, reactor)


class EventCollector:
    """A subscription handler that keeps (event id, args, kwargs) and can be waited on."""

    def __init__(self):
        self.events: list[tuple[str | None, list, dict]] = []
        self._waiters: list[tuple[object, defer.Deferred]] = []

    def __call__(self, *args, details=None, **kwargs):
        self.events.append((details.transaction_hash if details else None, list(args), kwargs))
        for waiter in list(self._waiters):
            done, d = waiter
            if done(self.events) and not d.called:
                self._waiters.remove(waiter)
                d.callback(self.events)

    @property
    def ids(self) -> list[str | None]:
        return [event[0] for event in self.events]

    async def wait_until(self, done, what: str, timeout: float = 20) -> list:
        """Wait until ``done(events)`` is true (checked on every event)."""
        if done(self.events):
            return self.events
        d: defer.Deferred = defer.Deferred()
        self._waiters.append((done, d))
        try:
            return await d.addTimeout(timeout, reactor)
        except defer.TimeoutError:
            raise AssertionError(f"{what}: not within {timeout} s ({len(self.events)} events received)") from None

    async def wait_for(self, count: int, timeout: float = 20) -> list:
        return await self.wait_until(lambda events: len(events) >= count, f"{count} events", timeout)

    async def wait_for_ids(self, ids, timeout: float = 60) -> list:
        wanted = set(ids)
        return await self.wait_until(lambda events: wanted <= {e[0] for e in events},
                                     f"all of {len(wanted)} event ids", timeout)

    async def subscribe(self, session: ApplicationSession, topic: str, **options):
        return await session.subscribe(self, topic, options=SubscribeOptions(details_arg="details", **options))


async def sleep(seconds: float) -> None:
    """For 'nothing else arrives' checks only, never for readiness."""
    from twisted.internet import task

    await task.deferLater(reactor, seconds, lambda: None)
