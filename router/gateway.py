"""The fallback for browsers that cannot hold a WebSocket: Server-Sent Events plus POST.

Crossbar's own long-poll transport is broken in 26.x and would admit everyone as anonymous
(see docs/topics/security.md), so this gateway stands in, on the same origin under ``/rt/``
(the node's web transport proxies there). It uses only public autobahn APIs.

For each browser it holds one WAMP session *authenticated as that browser's user*: it reads
the Django session cookie (Origin checked like the WebSocket's), mints a single-use ticket
for that session and joins the router's ``/ws`` with it. So the router's authenticator,
authorizer and revocation apply exactly as over a WebSocket; the gateway decides nothing.

    POST /rt/open                         -> {"sid", "authid", "authrole", "authextra"}
    GET  /rt/events?sid=...               -> text/event-stream, one "id: <event id>" per event
    POST /rt/subscribe   {sid, topic, match?}
    POST /rt/unsubscribe {sid, topic}
    POST /rt/call        {sid, procedure, args?, kwargs?} -> {"result"} or {"error", "args", "kwargs"}

A ``sid`` works only with the cookie it was opened with, and only from an allowed Origin;
POSTs must carry ``X-Requested-With: djwamp`` (a header no cross-site form can set).

Limits (``GatewayLimits``, from ``REALTIME``; docs/topics/security.md#limits-per-client): sessions
in all, per client address and per session cookie, checked before any session is loaded or
ticket minted; subscriptions per session; and a stream the browser does not read is closed once
``MAX_QUEUED_BYTES`` wait for it (the node's proxy passes the browser's back-pressure on, see
router/crossbar_fixes.py). Refusals are 429 ``djwamp.error.rate_limited`` with ``Retry-After``.

A page on another origin (``DJWAMP_ALLOWED_ORIGINS``) opens with ``{"ticket": ...}`` from the
ticket view instead: the gateway joins with that ticket, answers with CORS headers for that
origin (never with credentials: cookies stay same-origin), and the ``sid`` is the only key.

In this module: ``Gateway`` (sessions, requests, streams; the router reached through an injected
``connect``, by default ``join_as``), the SSE framing (``sse_event``, ``sse_close``), ``_Endpoint``
(HTTP onto ``Gateway``) and ``GatewayComponent`` (starts it in the node).
"""

from __future__ import annotations

import functools
import hashlib
import json
import secrets
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from autobahn.twisted.wamp import ApplicationSession
from autobahn.twisted.websocket import WampWebSocketClientFactory
from autobahn.wamp import message
from autobahn.wamp.exception import ApplicationError, InvalidUriError, TransportLost
from autobahn.wamp.request import CallRequest
from autobahn.wamp.types import CallOptions, ComponentConfig, SubscribeOptions
from twisted.internet import defer, task, threads
from twisted.internet.endpoints import TCP4ClientEndpoint, TCP4ServerEndpoint
from twisted.logger import Logger
from twisted.web import resource, server

from realtime import errors

from . import django_access
from .auth import origin_allowed
from .backend import BackendSession
from .crossbar_fixes import FORWARDED_CHAIN
from .limits import Counts, TrustedProxies, client_key, forwarded_chain, is_local

__all__ = ["Gateway", "GatewayComponent", "GatewayLimits", "SSE_HELLO", "SSE_PING", "join_as", "sse_close",
           "sse_event"]

GRACE = 30.0          # seconds a session waits for its event stream to come back
HEARTBEAT = 15.0      # seconds between SSE comments, so proxies keep the stream open
MAX_QUEUED = 1000     # events held for a stream that is away; more and the session is dropped
MAX_QUEUED_BYTES = 1024 * 1024  # bytes held for a stream that is away or does not read; more: dropped
RETRY_AFTER = 10      # seconds, the Retry-After of a 429
MAX_BODY = 64 * 1024
MATCHES = ("exact", "prefix", "wildcard")


class RequestRefused(Exception):
    """A gateway request refused: the HTTP status, the error URI and the message of its JSON body."""

    def __init__(self, status: int, error: str, message: str):
        super().__init__(message)
        self.status, self.error, self.message = status, error, message


def _limited(message: str) -> RequestRefused:
    return RequestRefused(429, errors.RATE_LIMITED, message)


@dataclass(frozen=True)
class GatewayLimits:
    """What the gateway holds at most (0: no limit); ``REALTIME``'s keys of the same meaning."""

    sessions: int = 10_000       # GATEWAY_MAX_SESSIONS
    per_cookie: int = 20         # GATEWAY_MAX_SESSIONS_PER_COOKIE
    per_address: int = 100       # MAX_CONNECTIONS_PER_IP (the authenticator counts WebSockets too)
    subscriptions: int = 100     # GATEWAY_MAX_SUBSCRIPTIONS
    trusted: TrustedProxies = field(default_factory=lambda: TrustedProxies.for_node(()))

    @classmethod
    def from_settings(cls, conf, trusted_proxies: tuple[str, ...]) -> GatewayLimits:
        return cls(sessions=conf.GATEWAY_MAX_SESSIONS, per_cookie=conf.GATEWAY_MAX_SESSIONS_PER_COOKIE,
                   per_address=conf.MAX_CONNECTIONS_PER_IP, subscriptions=conf.GATEWAY_MAX_SUBSCRIPTIONS,
                   trusted=TrustedProxies.for_node(trusted_proxies))


class _UserSession(ApplicationSession):
    """The router session a browser uses through the gateway (ticket auth as that user)."""

    def __init__(self, config, ticket: str | None):
        super().__init__(config)
        self._ticket = ticket
        self.joined: defer.Deferred = defer.Deferred()
        self.gone: defer.Deferred = defer.Deferred()

    def onConnect(self):
        self.join(self.config.realm, authmethods=["ticket"] if self._ticket else ["anonymous"])

    def onChallenge(self, challenge):
        return self._ticket

    def onJoin(self, details):
        self.joined.callback(details)

    def onLeave(self, details):
        if not self.joined.called:
            self.joined.errback(ApplicationError(details.reason, details.message))
        if not self.gone.called:
            self.gone.callback(details)
        super().onLeave(details)

    def onDisconnect(self):
        if not self.joined.called:
            self.joined.errback(ApplicationError(errors.UNAVAILABLE, "router unreachable"))
        if not self.gone.called:
            self.gone.callback(None)

    def call_as_sent(self, procedure: str, args: list, kwargs: dict) -> defer.Deferred:
        """CALL ``procedure`` with exactly these arguments.

        ``ApplicationSession.call(procedure, *args, **kwargs)`` takes a keyword argument named
        ``options`` as its own ``CallOptions``: a browser's ``{"options": ...}`` would never
        reach the procedure (or fail the request). This sends the CALL message the same way
        without looking into ``kwargs``; the reply is handled by autobahn as for ``call()``
        (tests/integration/test_gateway.py pins it).
        """
        if not self._transport:
            raise TransportLost()
        request_id = self._request_id_gen.next()

        def cancel(_d):
            self._transport.send(message.Cancel(request_id))

        on_reply = defer.Deferred(canceller=cancel)
        self._call_reqs[request_id] = CallRequest(request_id, procedure, on_reply, CallOptions())
        try:
            self._transport.send(message.Call(request_id, procedure, args=args, kwargs=kwargs))
        except Exception:
            self._call_reqs.pop(request_id, None)
            raise
        return on_reply


async def join_as(reactor, ws_url: str, realm: str, ticket: str | None,
                  forwarded_for: str | None = None) -> tuple[_UserSession, object]:
    """A WAMP session on the node's own WebSocket, with ``ticket`` (or anonymous): the session
    and its join details. Raises the router's ``ApplicationError`` if it refuses the join.
    ``forwarded_for`` (the browser's hops) lets the authenticator count it under the browser's
    address: the gateway joins from loopback, which the node trusts as a proxy."""
    session = _UserSession(ComponentConfig(realm=realm), ticket)
    parts = urlsplit(ws_url)
    headers = {"X-Forwarded-For": forwarded_for} if forwarded_for else None
    factory = WampWebSocketClientFactory(lambda: session, url=ws_url, headers=headers)
    await TCP4ClientEndpoint(reactor, parts.hostname, parts.port, timeout=10).connect(factory)
    return session, await session.joined.addTimeout(10, reactor)


# -- Server-Sent Events framing (https://html.spec.whatwg.org/multipage/server-sent-events.html) --

#: the first bytes of every stream, and the heartbeat: comments, which EventSource ignores
SSE_HELLO = b": djwamp\n\n"
SSE_PING = b": ping\n\n"


def sse_event(event_id: str | None, data: dict) -> bytes:
    """One ``message`` event; ``id`` is what EventSource sends back as Last-Event-ID."""
    return (f"id: {event_id}\n" if event_id else "").encode() + b"data: " + json.dumps(data).encode() + b"\n\n"


def sse_close(reason: str, message: str) -> bytes:
    """The ``close`` event: the router ended the session (``reason`` is its close URI)."""
    return b"event: close\ndata: " + json.dumps({"reason": reason, "message": message}).encode() + b"\n\n"


def _check_uri(uri: str, what: str, *, wildcard: bool = False) -> None:
    """A browser's topic or procedure, refused with a 400 before autobahn asserts on it."""
    try:
        message.check_or_raise_uri(uri, message=what, strict=False, allow_empty_components=wildcard,
                                   allow_none=False)
    except InvalidUriError:
        raise RequestRefused(400, errors.WAMP_INVALID_URI, f"{what} is not a valid WAMP URI") from None


@dataclass
class BrowserSession:
    sid: str
    #: the cookie the session was opened with; None for a ticket session (the sid is the key)
    cookie_fingerprint: str | None
    wamp: _UserSession
    subscriptions: dict[str, object] = field(default_factory=dict)
    queue: deque[bytes] = field(default_factory=deque)
    stream: object = None   # the open GET /events request, if any
    expiry: object = None   # DelayedCall closing the session when no stream came back
    #: the client's address as the limits count it (None: not counted, the node's own machine)
    address: str | None = None
    #: the cookie fingerprint counted against GATEWAY_MAX_SESSIONS_PER_COOKIE (None: not counted)
    counted_cookie: str | None = None
    paused: bool = False    # the stream's connection is full: the browser is not reading
    queued_bytes: int = 0


class _StreamProducer:
    """The event stream's push producer: Twisted pauses it while the browser's connection is full
    (its events then wait in the session's queue, within MAX_QUEUED and MAX_QUEUED_BYTES)."""

    def __init__(self, gateway: Gateway, session: BrowserSession):
        self.gateway, self.session = gateway, session

    def pauseProducing(self) -> None:
        self.session.paused = True

    def resumeProducing(self) -> None:
        self.session.paused = False
        self.gateway._flush(self.session)

    def stopProducing(self) -> None:
        self.session.paused = False


class Gateway:
    """The gateway's sessions, requests and streams. ``connect(ticket)`` joins the router as a
    browser (default: ``join_as`` on ``ws_url``); tests give it a stand-in and a fake clock."""

    def __init__(self, *, reactor, ws_url: str, realm: str, origins: tuple[str, ...],
                 ticket_origins: tuple[str, ...], cookie_name: str, allow_anonymous: bool, pool, log: Logger,
                 connect: Callable[[str | None, str | None], Awaitable[tuple[object, object]]] | None = None,
                 limits: GatewayLimits | None = None):
        self.connect = connect or functools.partial(join_as, reactor, ws_url, realm)
        self.limits = limits or GatewayLimits()
        self._by_address = Counts(self.limits.per_address)
        self._by_cookie = Counts(self.limits.per_cookie)
        self._opening = 0  # opens past the limits' checks, not yet in self.sessions
        self.reactor, self.origins = reactor, origins
        self.ticket_origins = ticket_origins
        self.cookie_name, self.allow_anonymous, self.pool, self.log = cookie_name, allow_anonymous, pool, log
        self.sessions: dict[str, BrowserSession] = {}
        self._heartbeat = task.LoopingCall(self._ping)
        self._heartbeat.clock = reactor

    def start(self) -> None:
        self._heartbeat.start(HEARTBEAT, now=False)

    def stop(self) -> None:
        if self._heartbeat.running:
            self._heartbeat.stop()
        for sid in list(self.sessions):
            self._close(sid, "gateway stopping")

    # -- requests -----------------------------------------------------------------------------

    @staticmethod
    def _check_origin(request, origins: tuple[str, ...], *, require_origin: bool = True) -> None:
        # Browsers send Origin on every POST and on cross-origin GETs, not on a same-origin
        # EventSource: there, a missing Origin is fine (the sid is a secret bound to the cookie)
        origin = request.getHeader("origin")
        if (origin is None and require_origin) or (origin is not None and not origin_allowed(origin, origins)):
            raise RequestRefused(403, errors.NOT_AUTHENTICATED, "origin not allowed")

    def _cookie(self, request, *, require_origin: bool = True) -> str:
        self._check_origin(request, self.origins, require_origin=require_origin)
        return (request.getCookie(self.cookie_name.encode()) or b"").decode("latin-1")

    def cors_origin(self, request) -> str | None:
        """The Origin to name in Access-Control-Allow-Origin (ticket pages on other origins)."""
        origin = request.getHeader("origin")
        return origin if origin is not None and origin_allowed(origin, self.ticket_origins) else None

    def _body(self, request) -> dict:
        if request.getHeader("x-requested-with") != "djwamp":
            raise RequestRefused(403, errors.NOT_AUTHENTICATED, "missing X-Requested-With: djwamp")
        raw = request.content.read(MAX_BODY + 1)
        if len(raw) > MAX_BODY:
            raise RequestRefused(413, errors.WAMP_INVALID_ARGUMENT, "request too large")
        try:
            body = json.loads(raw or b"{}")
        except (ValueError, RecursionError):  # RecursionError: "[[[[..." nested past the parser's limit
            raise RequestRefused(400, errors.WAMP_INVALID_ARGUMENT, "body must be JSON") from None
        if not isinstance(body, dict):
            raise RequestRefused(400, errors.WAMP_INVALID_ARGUMENT, "body must be a JSON object")
        return body

    def _session(self, request, sid: object, *, require_origin: bool = True) -> BrowserSession:
        session = self.sessions.get(sid) if isinstance(sid, str) else None
        if session is not None and session.cookie_fingerprint is None:
            self._check_origin(request, self.ticket_origins, require_origin=require_origin)
            return session
        cookie = self._cookie(request, require_origin=require_origin)
        if session is None or not secrets.compare_digest(session.cookie_fingerprint, _fingerprint(cookie)):
            raise RequestRefused(404, errors.NOT_AUTHENTICATED, "no such session")
        return session

    def _client(self, request) -> tuple[str, str | None]:
        """The browser's hops as the node's proxy passed them on, and the address limits count
        (None for the node's own machine)."""
        peer = getattr(request.getClientAddress(), "host", None) or "unknown"
        chain = forwarded_chain(request.getHeader(FORWARDED_CHAIN.decode()), peer)
        key = client_key(chain, self.limits.trusted)
        return ", ".join(chain), None if is_local(key) else key

    def _hold(self, address: str | None, binding: str | None) -> None:
        """Count an opening session against the limits, or refuse it (nothing counted)."""
        if self.limits.sessions and len(self.sessions) + self._opening >= self.limits.sessions:
            raise _limited("the real-time service is full")
        if address is not None and not self._by_address.take(address):
            raise _limited("too many connections from this address")
        if binding is not None and not self._by_cookie.take(binding):
            if address is not None:
                self._by_address.give_back(address)
            raise _limited("too many sessions for this browser")
        self._opening += 1

    def _release(self, address: str | None, binding: str | None) -> None:
        if address is not None:
            self._by_address.give_back(address)
        if binding is not None:
            self._by_cookie.give_back(binding)

    async def open(self, request) -> dict:
        body = self._body(request)
        hops, address = self._client(request)
        if "ticket" in body:
            # a page elsewhere, with a ticket from the ticket view: the router checks it
            self._check_origin(request, self.ticket_origins)
            ticket, binding = body["ticket"], None
            if not isinstance(ticket, str) or not ticket:
                raise RequestRefused(400, errors.WAMP_INVALID_ARGUMENT, "ticket must be a string")
        else:  # the browser's cookie: validated below, once the limits let it in
            cookie = self._cookie(request)
            binding = _fingerprint(cookie)
        # a cookie-less request is limited by its address only: all of them share one fingerprint
        counted = binding if binding is not None and cookie else None
        self._hold(address, counted)
        try:
            if binding is not None:
                identity = await self.pool.run(django_access.session_identity, cookie) if cookie else None
                if identity is None and not self.allow_anonymous:
                    raise RequestRefused(403, errors.NOT_AUTHENTICATED, "sign in first")
                ticket = None
                if identity is not None:
                    ticket = await self.pool.run(django_access.mint_ticket, identity.session_key, identity.authid)
            try:
                wamp, details = await self.connect(ticket, hops)
            except ApplicationError as exc:
                if exc.error == errors.RATE_LIMITED:
                    raise _limited(exc.args[0] if exc.args else "too many connections") from None
                raise RequestRefused(403, exc.error, "the router refused the session") from None
            except Exception:
                raise RequestRefused(503, errors.UNAVAILABLE, "real-time service unavailable") from None
        except BaseException:
            self._release(address, counted)
            raise
        finally:
            self._opening -= 1
        sid = secrets.token_urlsafe(24)
        session = BrowserSession(sid, binding, wamp, address=address, counted_cookie=counted)
        self.sessions[sid] = session
        wamp.gone.addCallback(lambda closing: self._ended(sid, closing))
        self._await_stream(session)
        return {"sid": sid, "authid": details.authid, "authrole": details.authrole,
                "authextra": details.authextra or {}}

    def events(self, request) -> object:
        session = self._session(request, request.args.get(b"sid", [b""])[0].decode("latin-1"), require_origin=False)
        if session.stream is not None:
            _end_stream(session.stream)
        if session.expiry is not None and session.expiry.active():
            session.expiry.cancel()
        request.setHeader(b"content-type", b"text/event-stream; charset=utf-8")
        request.setHeader(b"cache-control", b"no-store")
        request.setHeader(b"x-accel-buffering", b"no")
        request.write(SSE_HELLO)
        session.stream, session.paused = request, False
        request.registerProducer(_StreamProducer(self, session), True)
        request.notifyFinish().addBoth(lambda _: self._stream_gone(session, request))
        self._flush(session)
        return server.NOT_DONE_YET

    async def subscribe(self, request) -> dict:
        body = self._body(request)
        session = self._session(request, body.get("sid"))
        topic, match = body.get("topic"), body.get("match")
        if not isinstance(topic, str) or topic in session.subscriptions:
            raise RequestRefused(400, errors.WAMP_INVALID_ARGUMENT, "topic missing or already subscribed")
        if match is not None and match not in MATCHES:
            raise RequestRefused(400, errors.WAMP_INVALID_ARGUMENT, "match is one of exact, prefix, wildcard")
        _check_uri(topic, "topic", wildcard=match == "wildcard")
        if self.limits.subscriptions and len(session.subscriptions) >= self.limits.subscriptions:
            raise _limited("too many subscriptions for this session")
        options = SubscribeOptions(match=match, details_arg="_djwamp_details") if match else \
            SubscribeOptions(details_arg="_djwamp_details")

        def on_event(*args, _djwamp_details=None, **kwargs):
            self._push(session, topic, _djwamp_details, args, kwargs)

        session.subscriptions[topic] = None  # a placeholder while the router answers: counted, not doubled
        try:
            subscription = await session.wamp.subscribe(on_event, topic, options=options)
        except BaseException:
            session.subscriptions.pop(topic, None)
            raise
        if topic in session.subscriptions:
            session.subscriptions[topic] = subscription
        else:  # unsubscribed while the router answered
            await subscription.unsubscribe()
        return {"topic": topic}

    async def unsubscribe(self, request) -> dict:
        body = self._body(request)
        session = self._session(request, body.get("sid"))
        subscription = session.subscriptions.pop(body.get("topic"), None)
        if subscription is not None:
            await subscription.unsubscribe()
        return {}

    async def call(self, request) -> dict:
        body = self._body(request)
        session = self._session(request, body.get("sid"))
        procedure, args, kwargs = body.get("procedure"), body.get("args", []), body.get("kwargs", {})
        if not isinstance(procedure, str) or not isinstance(args, list) or not isinstance(kwargs, dict):
            raise RequestRefused(400, errors.WAMP_INVALID_ARGUMENT, "procedure, args (list), kwargs (object)")
        _check_uri(procedure, "procedure")
        result = await session.wamp.call_as_sent(procedure, args, kwargs)
        if hasattr(result, "results") or hasattr(result, "kwresults"):
            return {"result": {"args": list(result.results), "kwargs": result.kwresults}}
        return {"result": result}

    # -- the event stream -----------------------------------------------------------------------

    def _push(self, session: BrowserSession, topic: str, details, args, kwargs) -> None:
        publisher = None
        if getattr(details, "publisher_authid", None) is not None:
            publisher = {"authid": details.publisher_authid, "authrole": details.publisher_authrole}
        chunk = sse_event(getattr(details, "transaction_hash", None),
                          {"topic": details.topic or topic if details else topic, "subscription": topic,
                           "args": list(args), "kwargs": kwargs, "publisher": publisher})
        if session.stream is not None and not session.paused and not session.queue:
            session.stream.write(chunk)
        elif len(session.queue) < MAX_QUEUED and session.queued_bytes + len(chunk) <= MAX_QUEUED_BYTES:
            session.queue.append(chunk)
            session.queued_bytes += len(chunk)
        else:
            self._close(session.sid, "too many events waiting: the stream is away or not read")

    def _flush(self, session: BrowserSession) -> None:
        """Write what waits while the stream is there and its connection takes more."""
        while session.queue and session.stream is not None and not session.paused:
            chunk = session.queue.popleft()
            session.queued_bytes -= len(chunk)
            session.stream.write(chunk)  # may pause the producer: the loop stops there

    def _ping(self) -> None:
        for session in list(self.sessions.values()):
            if session.stream is not None and not session.paused:
                session.stream.write(SSE_PING)

    def _stream_gone(self, session: BrowserSession, request) -> None:
        if session.stream is request:
            session.stream, session.paused = None, False
            _end_stream(request)
            self._await_stream(session)

    def _await_stream(self, session: BrowserSession) -> None:
        session.expiry = self.reactor.callLater(GRACE, self._close, session.sid, "no event stream")

    def _ended(self, sid: str, closing) -> None:
        """The router closed the user's session (revoked, expired) or the link broke."""
        session = self.sessions.pop(sid, None)
        if session is None:
            return
        if session.expiry is not None and session.expiry.active():
            session.expiry.cancel()
        self._release(session.address, session.counted_cookie)
        reason = getattr(closing, "reason", None) or errors.UNAVAILABLE
        if session.stream is not None:
            session.stream.write(sse_close(reason, getattr(closing, "message", "") or ""))
            _end_stream(session.stream)

    def _close(self, sid: str, why: str) -> None:
        session = self.sessions.get(sid)
        if session is not None:
            self.log.debug("gateway closing {sid_start}...: {why}", sid_start=sid[:6], why=why)
            if session.wamp.is_attached():
                session.wamp.leave("wamp.close.normal")
            else:
                self._ended(sid, None)


def _end_stream(request) -> None:
    """Finish an event stream (if it is not finished yet), its producer unregistered first."""
    if getattr(request, "_disconnected", False):
        request.producer = None  # the connection went, and its channel with it: nothing to unregister
        return
    if getattr(request, "producer", None) is not None:
        request.unregisterProducer()
    if not request.finished:
        request.finish()


def _fingerprint(cookie: str) -> str:
    return hashlib.sha256(b"djwamp-gateway:" + cookie.encode("latin-1", "replace")).hexdigest()


class _Endpoint(resource.Resource):
    isLeaf = True

    def __init__(self, gateway: Gateway, name: str):
        super().__init__()
        self.gateway, self.name = gateway, name

    def render(self, request):
        request.setHeader(b"vary", b"Origin")
        origin = self.gateway.cors_origin(request)
        if origin is not None:
            # no Access-Control-Allow-Credentials: a cookie never crosses origins here
            request.setHeader(b"access-control-allow-origin", origin.encode())
        if request.method not in (b"GET", b"HEAD", b"POST", b"OPTIONS"):
            # twisted.web would answer 501 (a server error) with an HTML page
            request.setHeader(b"allow", b"GET, POST, OPTIONS")
            return self._fail(request, RequestRefused(405, errors.WAMP_INVALID_ARGUMENT, "use GET or POST"))
        return super().render(request)

    def render_OPTIONS(self, request):
        if self.gateway.cors_origin(request) is None:
            return self._fail(request, RequestRefused(403, errors.NOT_AUTHENTICATED, "origin not allowed"))
        request.setResponseCode(204)
        request.setHeader(b"access-control-allow-methods", b"GET, POST")
        request.setHeader(b"access-control-allow-headers", b"Content-Type, X-Requested-With")
        request.setHeader(b"access-control-max-age", b"600")
        return b""

    def render_GET(self, request):
        if self.name != "events":
            return self._fail(request, RequestRefused(405, errors.WAMP_INVALID_ARGUMENT, "use POST"))
        try:
            return self.gateway.events(request)
        except RequestRefused as refused:
            return self._fail(request, refused)

    def render_POST(self, request):
        if self.name == "events":
            return self._fail(request, RequestRefused(405, errors.WAMP_INVALID_ARGUMENT, "use GET"))
        handler = getattr(self.gateway, self.name)
        request.notifyFinish().addErrback(lambda _: setattr(request, "djwamp_gone", True))
        d = defer.ensureDeferred(handler(request))
        d.addCallbacks(lambda body: self._reply(request, 200, body), lambda f: self._failure(request, f))
        return server.NOT_DONE_YET

    def _failure(self, request, failure) -> None:
        if failure.check(RequestRefused):
            refused = failure.value
            if refused.status == 429:
                request.setHeader(b"retry-after", str(RETRY_AFTER).encode())
            return self._reply(request, refused.status, {"error": refused.error, "message": refused.message})
        if failure.check(ApplicationError):
            exc = failure.value
            return self._reply(request, 200, {"error": exc.error, "args": list(exc.args), "kwargs": exc.kwargs})
        self.gateway.log.failure("gateway request failed", failure=failure)
        return self._reply(request, 500, {"error": errors.UNAVAILABLE, "message": "try again"})

    def _fail(self, request, refused: RequestRefused) -> bytes:
        request.setResponseCode(refused.status)
        request.setHeader(b"content-type", b"application/json")
        return json.dumps({"error": refused.error, "message": refused.message}).encode()

    @staticmethod
    def _reply(request, status: int, body: dict) -> None:
        if request.finished or getattr(request, "djwamp_gone", False):
            return
        request.setResponseCode(status)
        request.setHeader(b"content-type", b"application/json")
        request.setHeader(b"cache-control", b"no-store")
        request.write(json.dumps(body).encode())
        request.finish()


class _QuietSite(server.Site):
    """No access log: twisted.web would write a line per request into the node's log, and the
    line of ``GET /events?sid=...`` names the session's secret (for a ticket session, its only key)."""

    def log(self, request) -> None:
        pass


class GatewayComponent(BackendSession):
    """Runs the SSE/POST gateway inside the node, on DJWAMP_GATEWAY_PORT (loopback only)."""

    log = Logger()
    component_name = "gateway"

    async def start(self) -> None:
        from twisted.internet import reactor

        conf = await threads.deferToThread(django_access.realtime_settings)
        node = self._node_settings
        self.gateway = Gateway(
            reactor=reactor, ws_url=f"ws://127.0.0.1:{node.port}/ws", realm=self.config.realm,
            origins=node.cookie_origins, ticket_origins=node.allowed_origins,
            cookie_name=await threads.deferToThread(django_access.session_cookie_name),
            allow_anonymous=conf.ALLOW_ANONYMOUS, pool=django_access.DjangoThreadPool(size=4, name="djwamp-gateway"),
            log=self.log, limits=GatewayLimits.from_settings(conf, node.trusted_proxies))
        root = resource.Resource()
        for name in ("open", "events", "subscribe", "unsubscribe", "call"):
            root.putChild(name.encode(), _Endpoint(self.gateway, name))
        site = _QuietSite(root)
        site.displayTracebacks = False
        self._port = await TCP4ServerEndpoint(reactor, node.gateway_port, interface="127.0.0.1").listen(site)
        self.gateway.start()
        self.log.info("djwamp gateway ready on /rt/ (127.0.0.1:{port})", port=node.gateway_port)

    def onLeave(self, details) -> None:
        if getattr(self, "gateway", None) is not None:
            self.gateway.stop()
            self._port.stopListening()
        super().onLeave(details)
