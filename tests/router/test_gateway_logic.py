"""The fallback gateway's stream logic in memory, on a fake clock: the grace period for a stream
to come back, the queue while it is away, and the heartbeat (router/gateway.py).

The browser's WAMP session is a stand-in that records ``leave()``, the router (``Gateway.connect``)
and the Django side (``pool``) are stand-ins too, and HTTP requests are Twisted's ``DummyRequest``.
The same against a real node: tests/integration/test_gateway.py (and test_gateway_limits.py).
"""

from __future__ import annotations

import io
import json
from types import SimpleNamespace

import pytest
import pytest_twisted
from autobahn.wamp.exception import ApplicationError
from twisted.internet import defer, task
from twisted.internet.address import IPv4Address
from twisted.logger import Logger
from twisted.web.test.requesthelper import DummyRequest

from realtime import errors
from router import gateway
from router.gateway import GRACE, HEARTBEAT, MAX_QUEUED, MAX_QUEUED_BYTES, BrowserSession, Gateway, GatewayLimits


class StandInWamp:
    """What the gateway uses of a browser's WAMP session."""

    def __init__(self):
        self.gone: defer.Deferred = defer.Deferred()
        self.attached = True
        self.left: list[str] = []

    def is_attached(self) -> bool:
        return self.attached

    def leave(self, reason: str) -> None:
        self.left.append(reason)
        self.attached = False
        if not self.gone.called:
            self.gone.callback(Closing("wamp.close.normal"))

    async def subscribe(self, handler, topic, options=None):
        return SimpleNamespace(topic=topic, unsubscribe=lambda: defer.succeed(None))


class Closing:
    def __init__(self, reason: str, message: str = ""):
        self.reason, self.message = reason, message


@pytest.fixture
def clock():
    return task.Clock()


@pytest.fixture
def gw(clock):
    instance = Gateway(reactor=clock, ws_url="ws://127.0.0.1:1/ws", realm="djwamp", origins=("http://site:80",),
                       ticket_origins=("http://site:80",), cookie_name="sessionid", allow_anonymous=True,
                       pool=None, log=Logger())
    instance.start()
    yield instance
    instance.stop()


def opened(gw: Gateway, sid: str = "sid-1") -> BrowserSession:
    """A session as ``Gateway.open`` leaves it: registered, waiting for its event stream."""
    session = BrowserSession(sid, None, StandInWamp())
    gw.sessions[sid] = session
    session.wamp.gone.addCallback(lambda closing: gw._ended(sid, closing))
    gw._await_stream(session)
    return session


class StreamRequest(DummyRequest):
    """DummyRequest keeps calling a registered producer's resumeProducing; the event stream's
    producer is a push producer, which the tests pause and resume themselves."""

    producer = None

    def registerProducer(self, producer, streaming):
        assert streaming and self.producer is None
        self.producer = producer

    def unregisterProducer(self):
        self.producer = None


def attach(gw: Gateway, sid: str = "sid-1") -> StreamRequest:
    request = StreamRequest([b"events"])
    request.args = {b"sid": [sid.encode()]}
    gw.events(request)
    return request


def event(gw: Gateway, session: BrowserSession, n: int) -> None:
    gw._push(session, "public.feed", None, [n], {})


def sse_data(request: DummyRequest) -> list[dict]:
    text = b"".join(request.written).decode()
    return [json.loads(line[len("data: "):]) for line in text.splitlines() if line.startswith("data: ")]


def test_a_session_whose_stream_never_comes_is_closed_after_the_grace_period(gw, clock):
    session = opened(gw)
    clock.advance(GRACE - 0.1)
    assert session.wamp.left == []
    clock.advance(0.2)
    assert session.wamp.left == ["wamp.close.normal"]


def test_a_stream_that_comes_back_within_the_grace_period_gets_what_was_queued(gw, clock):
    session = opened(gw)
    first = attach(gw)
    event(gw, session, 1)
    first.finish()  # the browser's connection dropped
    event(gw, session, 2)
    event(gw, session, 3)
    clock.advance(GRACE - 1)
    second = attach(gw)
    assert [e["args"] for e in sse_data(first)] == [[1]]
    assert [e["args"] for e in sse_data(second)] == [[2], [3]]
    assert not session.queue
    clock.advance(GRACE * 2)  # attached again: no expiry pending
    assert session.wamp.left == []


def test_more_than_max_queued_events_while_the_stream_is_away_close_the_session(gw, clock):
    session = opened(gw)
    for n in range(MAX_QUEUED):
        event(gw, session, n)
    assert len(session.queue) == MAX_QUEUED and session.wamp.left == []
    event(gw, session, MAX_QUEUED)
    assert session.wamp.left == ["wamp.close.normal"]


def test_attached_streams_get_a_heartbeat_comment_and_waiting_sessions_do_not(gw, clock):
    attached, waiting = opened(gw, "sid-a"), opened(gw, "sid-w")
    request = attach(gw, "sid-a")
    before = len(request.written)
    clock.advance(HEARTBEAT)
    assert request.written[before:] == [b": ping\n\n"]
    clock.advance(HEARTBEAT)
    assert request.written[before:] == [b": ping\n\n"] * 2
    assert waiting.stream is None and not waiting.queue and attached.stream is request


def test_a_second_stream_for_one_session_replaces_the_first(gw, clock):
    opened(gw)
    first = attach(gw)
    second = attach(gw)
    assert first.finished and not second.finished
    assert gw.sessions["sid-1"].stream is second


def test_the_router_closing_the_session_sends_a_close_event_and_ends_the_stream(gw, clock):
    session = opened(gw)
    request = attach(gw)
    session.wamp.gone.callback(Closing(errors.CLOSE_LOGGED_OUT, "logged out"))
    text = b"".join(request.written).decode()
    assert "event: close\ndata: " in text
    assert json.loads(text.split("event: close\ndata: ", 1)[1].split("\n", 1)[0]) == \
        {"reason": errors.CLOSE_LOGGED_OUT, "message": "logged out"}
    assert request.finished and "sid-1" not in gw.sessions


def test_stopping_the_gateway_closes_every_session(gw, clock):
    sessions = [opened(gw, f"sid-{n}") for n in range(3)]
    gw.stop()
    assert [s.wamp.left for s in sessions] == [["wamp.close.normal"]] * 3


def test_the_limits_are_what_the_docs_say():
    # docs/ref/api.md ("Lifetime", the fallback gateway) states these numbers
    assert (gateway.GRACE, gateway.HEARTBEAT, gateway.MAX_QUEUED) == (30.0, 15.0, 1000)


# -- opening a session, with stand-ins for the Django side and the router -----------------------

class StandInPool:
    def __init__(self, **results):
        self.results, self.calls = results, []

    def run(self, fn, *args):
        self.calls.append(fn.__name__)
        return defer.succeed(self.results[fn.__name__])


class StandInRouter:
    """``Gateway.connect``: records the tickets it is given; joins, refuses or is unreachable."""

    def __init__(self, outcome: object = "join"):
        self.tickets: list[str | None] = []
        self.forwarded: list[str | None] = []
        self.outcome = outcome

    async def __call__(self, ticket, forwarded_for=None):
        self.tickets.append(ticket)
        self.forwarded.append(forwarded_for)
        if isinstance(self.outcome, Exception):
            raise self.outcome
        role = "user" if ticket else "anonymous"
        return StandInWamp(), SimpleNamespace(authid="7" if ticket else "anon-1", authrole=role, authextra={})


class Request(DummyRequest):
    """DummyRequest with the cookies of twisted.web's Request."""

    received_cookies: dict = {}

    def getCookie(self, key: bytes):
        return self.received_cookies.get(key)


def open_request(body: bytes = b"{}", *, origin: str | None = "http://site:80", cookie: str | None = "key-1",
                 requested_with: str | None = "djwamp") -> DummyRequest:
    request = Request([b"open"])
    request.method = b"POST"
    request.content = io.BytesIO(body)
    for name, value in (("origin", origin), ("x-requested-with", requested_with)):
        if value is not None:
            request.requestHeaders.setRawHeaders(name, [value])
    if cookie is not None:
        request.received_cookies = {b"sessionid": cookie.encode()}
    return request


def gateway_with(clock, router, pool=None, *, anonymous=True) -> Gateway:
    return Gateway(reactor=clock, ws_url="ws://127.0.0.1:1/ws", realm="djwamp", origins=("http://site:80",),
                   ticket_origins=("http://site:80", "https://app.example:443"), cookie_name="sessionid",
                   allow_anonymous=anonymous, pool=pool or StandInPool(), log=Logger(), connect=router)


@pytest_twisted.ensureDeferred
async def test_a_signed_in_cookie_joins_with_a_ticket_minted_for_its_session(clock):
    user = SimpleNamespace(session_key="key-1", authid="7")
    pool = StandInPool(session_identity=user, mint_ticket="ticket-for-7")
    router = StandInRouter()
    gw = gateway_with(clock, router, pool)
    answer = await gw.open(open_request())
    assert router.tickets == ["ticket-for-7"] and pool.calls == ["session_identity", "mint_ticket"]
    assert answer["authid"] == "7" and answer["authrole"] == "user"
    session = gw.sessions[answer["sid"]]
    assert session.cookie_fingerprint == gateway._fingerprint("key-1")  # the sid works only with this cookie


@pytest_twisted.ensureDeferred
async def test_without_a_valid_session_it_joins_anonymous_or_refuses_when_anonymous_is_off(clock):
    router = StandInRouter()
    answer = await gateway_with(clock, router, StandInPool(session_identity=None)).open(open_request())
    assert router.tickets == [None] and answer["authrole"] == "anonymous"
    with pytest.raises(gateway.RequestRefused) as refused:
        await gateway_with(clock, router, StandInPool(session_identity=None), anonymous=False).open(open_request())
    assert (refused.value.status, refused.value.error) == (403, errors.NOT_AUTHENTICATED)


@pytest.mark.parametrize("outcome, status, error", [
    (ApplicationError(errors.NOT_AUTHENTICATED, "authentication failed"), 403, errors.NOT_AUTHENTICATED),
    (ConnectionRefusedError(), 503, errors.UNAVAILABLE),
])
@pytest_twisted.ensureDeferred
async def test_a_router_that_refuses_or_cannot_be_reached_is_a_clear_http_error(clock, outcome, status, error):
    gw = gateway_with(clock, StandInRouter(outcome), StandInPool(session_identity=None))
    with pytest.raises(gateway.RequestRefused) as refused:
        await gw.open(open_request())
    assert (refused.value.status, refused.value.error) == (status, error) and gw.sessions == {}


@pytest.mark.parametrize("request_kwargs, body, status", [
    ({"origin": "http://evil:80"}, b"{}", 403),
    ({"origin": None}, b"{}", 403),
    ({"requested_with": None}, b"{}", 403),
    ({}, b"[1]", 400),
    ({}, b"{not json", 400),
    ({}, b"x" * (gateway.MAX_BODY + 1), 413),
    ({"origin": "https://app.example:443"}, b'{"ticket": 5}', 400),
    ({"origin": "http://evil:80"}, b'{"ticket": "t"}', 403),
])
@pytest_twisted.ensureDeferred
async def test_requests_it_cannot_use_never_reach_the_router(clock, request_kwargs, body, status):
    router = StandInRouter()
    with pytest.raises(gateway.RequestRefused) as refused:
        await gateway_with(clock, router).open(open_request(body, **request_kwargs))
    assert refused.value.status == status and router.tickets == []


@pytest_twisted.ensureDeferred
async def test_a_page_elsewhere_opens_with_its_ticket_and_the_sid_is_the_only_key(clock):
    router = StandInRouter()
    gw = gateway_with(clock, router)
    answer = await gw.open(open_request(b'{"ticket": "t-1"}', origin="https://app.example:443", cookie=None))
    assert router.tickets == ["t-1"] and gw.sessions[answer["sid"]].cookie_fingerprint is None


def test_sse_framing():
    assert gateway.sse_event("1-0", {"a": 1}) == b'id: 1-0\ndata: {"a": 1}\n\n'
    assert gateway.sse_event(None, {}) == b"data: {}\n\n"
    assert gateway.sse_close("djwamp.close.revoked", "m") == \
        b'event: close\ndata: {"reason": "djwamp.close.revoked", "message": "m"}\n\n'


# -- limits: sessions in all, per address, per cookie; subscriptions; a stream nobody reads ------

def limited_gateway(clock, router=None, **limits) -> Gateway:
    user = SimpleNamespace(session_key="key-1", authid="7")
    return Gateway(reactor=clock, ws_url="ws://127.0.0.1:1/ws", realm="djwamp", origins=("http://site:80",),
                   ticket_origins=("http://site:80",), cookie_name="sessionid", allow_anonymous=True,
                   pool=StandInPool(session_identity=user, mint_ticket="ticket-for-7"), log=Logger(),
                   connect=router or StandInRouter(), limits=GatewayLimits(**limits))


def from_client(hops: str | None, cookie: str | None = "key-1") -> DummyRequest:
    """A request as the node's proxy forwards it: from loopback, with the hops it saw."""
    request = open_request(cookie=cookie)
    request.client = IPv4Address("TCP", "127.0.0.1", 40000)
    if hops is not None:
        request.requestHeaders.setRawHeaders("x-djwamp-forwarded-for", [hops])
    return request


async def refused_open(gw: Gateway, request) -> gateway.RequestRefused:
    with pytest.raises(gateway.RequestRefused) as refused:
        await gw.open(request)
    return refused.value


@pytest_twisted.ensureDeferred
async def test_sessions_per_address_are_capped_before_anything_is_loaded_or_minted(clock):
    router = StandInRouter()
    gw = limited_gateway(clock, router, per_address=2, per_cookie=0)
    first = await gw.open(from_client("203.0.113.7, 127.0.0.1", cookie="a"))
    await gw.open(from_client("203.0.113.7, 127.0.0.1", cookie="b"))
    calls = len(gw.pool.calls)
    refused = await refused_open(gw, from_client("203.0.113.7, 127.0.0.1", cookie="c"))
    assert (refused.status, refused.error, refused.message) == \
        (429, errors.RATE_LIMITED, "too many connections from this address")
    assert len(gw.pool.calls) == calls and len(router.tickets) == 2  # no session loaded, no ticket minted
    await gw.open(from_client("203.0.113.8, 127.0.0.1", cookie="d"))  # another address
    # the browser passed its hops on to the router, which counts them too
    assert router.forwarded[0] == "203.0.113.7, 127.0.0.1, 127.0.0.1"
    gw.sessions[first["sid"]].wamp.leave("wamp.close.normal")  # one leaves: room for one more
    await gw.open(from_client("203.0.113.7, 127.0.0.1", cookie="e"))


@pytest_twisted.ensureDeferred
async def test_hops_a_browser_wrote_itself_do_not_move_it_to_another_address(clock):
    gw = limited_gateway(clock, per_address=1, per_cookie=0)
    await gw.open(from_client("10.1.1.1, 203.0.113.7, 127.0.0.1", cookie="a"))
    refused = await refused_open(gw, from_client("10.2.2.2, 203.0.113.7, 127.0.0.1", cookie="b"))
    assert refused.status == 429


@pytest_twisted.ensureDeferred
async def test_the_node_own_machine_is_not_limited_by_address(clock):
    gw = limited_gateway(clock, per_address=1, per_cookie=0)
    for n in range(5):
        await gw.open(from_client(None, cookie=f"k{n}"))  # make run, a test: 127.0.0.1 itself
    assert len(gw.sessions) == 5 and len(gw._by_address) == 0


@pytest_twisted.ensureDeferred
async def test_sessions_per_cookie_and_in_all_are_capped(clock):
    gw = limited_gateway(clock, per_cookie=2, sessions=3)
    for _ in range(2):
        await gw.open(from_client("203.0.113.1, 127.0.0.1", cookie="same"))
    refused = await refused_open(gw, from_client("203.0.113.2, 127.0.0.1", cookie="same"))
    assert (refused.status, refused.message) == (429, "too many sessions for this browser")
    # without a cookie only the address counts (every cookie-less request has the same fingerprint)
    await gw.open(from_client("203.0.113.3, 127.0.0.1", cookie=None))
    refused = await refused_open(gw, from_client("203.0.113.4, 127.0.0.1", cookie="other"))
    assert (refused.status, refused.message) == (429, "the real-time service is full")
    assert gw._by_address.held("203.0.113.4") == 0  # a refusal counts nothing


@pytest.mark.parametrize("outcome, status", [
    (ApplicationError(errors.RATE_LIMITED, "too many connections from this address"), 429),
    (ApplicationError(errors.NOT_AUTHENTICATED, "authentication failed"), 403),
    (ConnectionRefusedError(), 503),
])
@pytest_twisted.ensureDeferred
async def test_an_open_the_router_refuses_gives_its_place_back(clock, outcome, status):
    gw = limited_gateway(clock, StandInRouter(outcome), per_address=1, per_cookie=1, sessions=1)
    refused = await refused_open(gw, from_client("203.0.113.7, 127.0.0.1"))
    assert refused.status == status
    assert (len(gw._by_address), len(gw._by_cookie), gw._opening, gw.sessions) == (0, 0, 0, {})


def test_a_429_says_when_to_retry():
    request = open_request()
    gateway._Endpoint(None, "open")._failure(request, defer.fail(gateway._limited("full")).result)
    assert request.responseCode == 429
    assert request.responseHeaders.getRawHeaders(b"retry-after") == [str(gateway.RETRY_AFTER).encode()]


@pytest_twisted.ensureDeferred
async def test_subscriptions_per_session_are_capped(clock):
    gw = limited_gateway(clock, subscriptions=2)
    sid = (await gw.open(from_client(None)))["sid"]

    def subscribe(topic):
        request = open_request(json.dumps({"sid": sid, "topic": topic}).encode())
        return gw.subscribe(request)

    await subscribe("public.a")
    await subscribe("public.b")
    with pytest.raises(gateway.RequestRefused) as refused:
        await subscribe("public.c")
    assert (refused.value.status, refused.value.message) == (429, "too many subscriptions for this session")


def test_a_stream_the_browser_does_not_read_holds_its_events_then_ends_the_session(gw, clock):
    session = opened(gw)
    request = attach(gw)
    request.producer.pauseProducing()  # the browser's connection is full
    written = len(request.written)
    event(gw, session, 1)
    event(gw, session, 2)
    clock.advance(HEARTBEAT)
    assert len(request.written) == written and len(session.queue) == 2  # nothing written, not even a ping
    request.producer.resumeProducing()  # it read again: the queue goes out, in order
    assert [e["args"] for e in sse_data(request)] == [[1], [2]] and not session.queue
    event(gw, session, 3)
    assert [e["args"] for e in sse_data(request)][-1] == [3]  # and new events are written at once

    request.producer.pauseProducing()
    big = "x" * 60_000
    for _ in range(MAX_QUEUED_BYTES // 60_000):
        gw._push(session, "public.feed", None, [big], {})
    assert session.wamp.left == []
    gw._push(session, "public.feed", None, [big], {})  # past MAX_QUEUED_BYTES
    assert session.wamp.left == ["wamp.close.normal"] and request.finished and request.producer is None
