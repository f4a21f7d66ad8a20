"""The fallback gateway's stream logic in memory, on a fake clock: the grace period for a stream
to come back, the queue while it is away, and the heartbeat (router/gateway.py).

The browser's WAMP session is a stand-in that records ``leave()``; HTTP requests are Twisted's
``DummyRequest``. Opening a session (WAMP over a real socket) is covered against a real node in
tests/integration/test_gateway.py.
"""

from __future__ import annotations

import json

import pytest
from twisted.internet import defer, task
from twisted.logger import Logger
from twisted.web.test.requesthelper import DummyRequest

from realtime import errors
from router import gateway
from router.gateway import GRACE, HEARTBEAT, MAX_QUEUED, BrowserSession, Gateway


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


def attach(gw: Gateway, sid: str = "sid-1") -> DummyRequest:
    request = DummyRequest([b"events"])
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
    assert session.queue == []
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
    assert waiting.stream is None and waiting.queue == [] and attached.stream is request


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
