"""The fallback gateway's limits through a real node (tests/limits_settings.py: 3 sessions per
address, 2 per cookie, 40 in all, 3 subscriptions per session), and a stream nobody reads.

The clients are on 127.0.0.1, which is never limited by address; "browsers" elsewhere send
``X-Forwarded-For`` as a proxy in front of the node would (loopback is a trusted proxy). The
same limits in memory: tests/router/test_gateway_logic.py.
"""

from __future__ import annotations

import json
import socket
import urllib.error
import urllib.request

import psutil
import pytest
from django.conf import settings

from realtime import errors, publish
from tests.conftest import running_node
from tests.integration.browsers import login, make_user, own_origin
from tests.integration.test_gateway import next_event, stream

pytestmark = pytest.mark.django_db(transaction=True)

#: every gateway session id this module was given: none may appear in the node's log
SIDS: list[str] = []


@pytest.fixture(scope="module")
def limited_node(tmp_path_factory, redis_server, test_db_path):
    with running_node(tmp_path_factory, redis_server.url, DJANGO_DB_PATH=test_db_path,
                      DJANGO_SETTINGS_MODULE="tests.limits_settings") as node:
        yield node


def post(node, path, body=None, *, cookie=None, address=None):
    request = urllib.request.Request(f"http://127.0.0.1:{node.settings.port}/rt/{path}",
                                     data=json.dumps(body or {}).encode(), method="POST")
    request.add_header("Origin", own_origin(node))
    request.add_header("X-Requested-With", "djwamp")
    if address:
        request.add_header("X-Forwarded-For", address)
    if cookie:
        request.add_header("Cookie", f"{settings.SESSION_COOKIE_NAME}={cookie}")
    try:
        with urllib.request.urlopen(request, timeout=15) as response:
            body = json.loads(response.read())
            if "sid" in body:
                SIDS.append(body["sid"])
            return response.status, body, response.headers
    except urllib.error.HTTPError as refused:
        with refused:
            return refused.code, json.loads(refused.read() or b"{}"), refused.headers


def test_sessions_per_address_are_capped_with_a_429_that_says_when_to_retry(limited_node):
    opened = [post(limited_node, "open", address="203.0.113.7") for _ in range(3)]
    assert [status for status, _body, _h in opened] == [200, 200, 200]
    status, body, headers = post(limited_node, "open", address="203.0.113.7")
    assert (status, body["error"], body["message"]) == \
        (429, errors.RATE_LIMITED, "too many connections from this address")
    assert headers["Retry-After"] == "10"
    # another address, and an address the "browser" made up left of its proxy's entry: not this one
    assert post(limited_node, "open", address="203.0.113.8")[0] == 200
    assert post(limited_node, "open", address="10.9.9.9, 203.0.113.7")[0] == 429


def test_a_browser_cannot_name_its_own_hops(limited_node):
    """The node's proxy rewrites X-Djwamp-Forwarded-For (router/crossbar_fixes.py): a client that
    sends one does not move to another address."""
    for _ in range(3):
        assert post(limited_node, "open", address="203.0.113.60")[0] == 200
    request = urllib.request.Request(f"http://127.0.0.1:{limited_node.settings.port}/rt/open", data=b"{}",
                                     method="POST")
    for name, value in (("Origin", own_origin(limited_node)), ("X-Requested-With", "djwamp"),
                        ("X-Forwarded-For", "203.0.113.60"), ("X-Djwamp-Forwarded-For", "192.0.2.250")):
        request.add_header(name, value)
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=15)
    with refused.value:
        assert refused.value.code == 429


def test_sessions_per_cookie_are_capped_whatever_the_address(limited_node):
    client, cookie = login(make_user())
    assert post(limited_node, "open", cookie=cookie, address="198.51.100.1")[0] == 200
    assert post(limited_node, "open", cookie=cookie, address="198.51.100.2")[0] == 200
    status, body, _h = post(limited_node, "open", cookie=cookie, address="198.51.100.3")
    assert (status, body["message"]) == (429, "too many sessions for this browser")
    # the user signs out: their sessions end, and their places are free again
    client.logout()
    _client, fresh = login(make_user())
    assert post(limited_node, "open", cookie=fresh, address="198.51.100.3")[0] == 200


def test_subscriptions_per_session_are_capped(limited_node):
    _status, opened, _h = post(limited_node, "open", address="198.51.100.20")
    answers = [post(limited_node, "subscribe", {"sid": opened["sid"], "topic": f"public.t{n}"},
                    address="198.51.100.20")[:2] for n in range(4)]
    assert [status for status, _body in answers] == [200, 200, 200, 429]
    assert answers[3][1]["message"] == "too many subscriptions for this session"


def test_ten_thousand_opens_from_one_address_are_refused_and_hold_nothing(limited_node):
    """The attacker's loop: POST /rt/open as fast as it goes, from one address."""
    rss_before = _rss_kib(limited_node.proc.pid)
    statuses: dict[int, int] = {}
    connection = None
    for _ in range(10_000):
        status = _open_on(limited_node, connection_holder := [connection])
        connection = connection_holder[0]
        statuses[status] = statuses.get(status, 0) + 1
    connection.close()
    assert statuses.get(200, 0) <= 3 and statuses[429] >= 9_997 and set(statuses) <= {200, 429}
    grown = _rss_kib(limited_node.proc.pid) - rss_before
    assert grown < 50 * 1024, f"the node grew by {grown} KiB answering 10,000 refused opens"
    # and nobody else noticed: a browser elsewhere opens and gets its events
    _status, opened, _h = post(limited_node, "open", address="192.0.2.44")
    assert _status == 200


def test_a_stream_that_is_never_read_is_closed_and_the_others_get_everything(limited_node, realtime_redis):
    topic = "public.slow"
    _s, reader, _h = post(limited_node, "open", address="192.0.2.1")
    _s, sleeper, _h = post(limited_node, "open", address="192.0.2.2")
    for opened, address in ((reader, "192.0.2.1"), (sleeper, "192.0.2.2")):
        assert post(limited_node, "subscribe", {"sid": opened["sid"], "topic": topic}, address=address)[0] == 200
    events = stream(limited_node, reader["sid"])
    # the sleeper: a connection with a small receive buffer that reads nothing after its request
    sleepy = socket.socket()
    sleepy.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sleepy.connect(("127.0.0.1", limited_node.settings.port))
    sleepy.sendall(f"GET /rt/events?sid={sleeper['sid']} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())
    payload = {"blob": "x" * 60_000}
    published, closed = 0, False
    try:
        while published < 2_000 and not closed:  # 2,000 x 60 KB = 120 MB: far past any buffer
            for _ in range(20):
                publish(topic, payload)
                published += 1
            for _ in range(20):
                assert json.loads(next_event(events)["data"])["args"] == [payload]
            # the sleeper's session, asked through the gateway: 404 once it is closed
            status, _body, _h = post(limited_node, "unsubscribe", {"sid": sleeper["sid"], "topic": "public.probe"},
                                     address="192.0.2.2")
            closed = status == 404
    finally:
        sleepy.close()
        events.close()
    assert closed, f"the never-reading stream was still open after {published} events of 60 KB"
    # closed once the socket buffers on the way and the gateway's 1 MiB queue were full (~10 MB here)
    assert published * 60_000 < 60 * 1024 * 1024, f"closed only after {published} events of 60 KB"


def _open_on(node, holder: list) -> int:
    """One POST /rt/open on a kept-alive connection (reopened if the server closed it)."""
    import http.client

    body = b"{}"
    headers = {"Origin": own_origin(node), "X-Requested-With": "djwamp", "X-Forwarded-For": "203.0.113.99",
               "Content-Type": "application/json"}
    for _attempt in range(2):
        if holder[0] is None:
            holder[0] = http.client.HTTPConnection("127.0.0.1", node.settings.port, timeout=15)
        try:
            holder[0].request("POST", "/rt/open", body=body, headers=headers)
            response = holder[0].getresponse()
            response.read()
            return response.status
        except (http.client.HTTPException, ConnectionError):
            holder[0].close()
            holder[0] = None
    raise AssertionError("the node stopped answering")


def _rss_kib(pid: int) -> int:
    """RSS of the node's processes (controller, router, container)."""
    root = psutil.Process(pid)
    return sum(proc.memory_info().rss for proc in [root, *root.children(recursive=True)]) // 1024


def test_sessions_in_all_are_capped(limited_node):
    """Last in this module: it fills the gateway. From 127.0.0.1 itself, which no address limit
    counts, opens go on until the gateway is full (GATEWAY_MAX_SESSIONS, 40 here)."""
    answers = [post(limited_node, "open")[:2] for _ in range(41)]
    statuses = [status for status, _body in answers]
    assert statuses[-1] == 429 and 200 in statuses and statuses.index(429) <= 40
    assert set(statuses[statuses.index(429):]) == {429}
    assert answers[-1][1] == {"error": errors.RATE_LIMITED, "message": "the real-time service is full"}


def test_the_node_logged_no_unhandled_error_and_no_line_per_refusal(limited_node):
    """Last: every refusal above, the stream that was closed and the browsers that went left no
    traceback in the node's log, no session id (stream URLs carry it), and the 10,000 refused
    opens did not write a line each."""
    log = (limited_node.cbdir / "node-0.log").read_text()
    assert "Unhandled" not in log and "Traceback" not in log
    assert SIDS and not [sid for sid in SIDS if sid in log], "a session id (a secret) is in the node's log"
    assert "ProxyClientFactory" not in log  # Twisted logged "Starting factory" around every proxied request
    assert len(log.splitlines()) < 5_000, "the node wrote a line per request"
