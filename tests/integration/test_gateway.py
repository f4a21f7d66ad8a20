"""The no-WebSocket fallback (SSE + POST) through a real node: same auth, same rules."""

from __future__ import annotations

import json
import urllib.error
import urllib.request

import pytest
from django.conf import settings

from realtime import errors, publish
from tests.integration.browsers import login, make_user, own_origin

pytestmark = pytest.mark.django_db(transaction=True)


def post(node, path, body=None, *, cookie=None, origin="own", header=True):
    request = urllib.request.Request(f"http://127.0.0.1:{node.settings.port}/rt/{path}",
                                     data=json.dumps(body or {}).encode(), method="POST")
    if origin:
        request.add_header("Origin", own_origin(node) if origin == "own" else origin)
    if header:
        request.add_header("X-Requested-With", "djwamp")
    if cookie:
        request.add_header("Cookie", f"{settings.SESSION_COOKIE_NAME}={cookie}")
    try:
        with urllib.request.urlopen(request, timeout=15) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as refused:
        with refused:
            return refused.code, json.loads(refused.read() or b"{}")


def stream(node, sid, *, cookie=None):
    request = urllib.request.Request(f"http://127.0.0.1:{node.settings.port}/rt/events?sid={sid}")
    if cookie:
        request.add_header("Cookie", f"{settings.SESSION_COOKIE_NAME}={cookie}")
    return urllib.request.urlopen(request, timeout=15)


def next_event(response) -> dict:
    fields = {}
    while True:
        line = response.readline().decode().rstrip("\n")
        if line.startswith(":"):
            continue
        if not line:
            if fields:
                return fields
            continue
        name, _, value = line.partition(": ")
        fields[name] = value


def test_a_signed_in_browser_gets_its_events_with_ids_over_server_sent_events(crossbar_node, realtime_redis):
    user = make_user()
    _client, cookie = login(user)
    status, opened = post(crossbar_node, "open", cookie=cookie)
    assert status == 200 and (opened["authrole"], opened["authid"]) == ("user", str(user.pk))
    events = stream(crossbar_node, opened["sid"], cookie=cookie)
    assert post(crossbar_node, "subscribe", {"sid": opened["sid"], "topic": f"user.{user.pk}.inbox"},
                cookie=cookie) == (200, {"topic": f"user.{user.pk}.inbox"})
    event_id = publish(f"user.{user.pk}.inbox", {"text": "over SSE"})
    received = next_event(events)
    assert received["id"] == event_id
    assert json.loads(received["data"])["args"] == [{"text": "over SSE"}]
    events.close()


def test_the_router_still_decides_what_a_fallback_session_may_do(crossbar_node):
    user, other = make_user(), make_user()
    _client, cookie = login(user)
    _status, opened = post(crossbar_node, "open", cookie=cookie)
    status, refused = post(crossbar_node, "subscribe", {"sid": opened["sid"], "topic": f"user.{other.pk}.inbox"},
                           cookie=cookie)
    assert refused["error"] == errors.NOT_AUTHORIZED
    _status, called = post(crossbar_node, "call", {"sid": opened["sid"], "procedure": "wamp.session.list"},
                           cookie=cookie)
    assert called["error"] == errors.NOT_AUTHORIZED


def test_a_foreign_origin_or_a_missing_csrf_header_is_refused(crossbar_node):
    _client, cookie = login(make_user())
    assert post(crossbar_node, "open", cookie=cookie, origin="http://evil.example")[0] == 403
    assert post(crossbar_node, "open", cookie=cookie, origin=None)[0] == 403
    assert post(crossbar_node, "open", cookie=cookie, header=False)[0] == 403


def test_a_session_id_is_useless_without_its_cookie(crossbar_node):
    _a, alice_cookie = login(make_user())
    _b, bob_cookie = login(make_user())
    _status, opened = post(crossbar_node, "open", cookie=alice_cookie)
    for cookie in (bob_cookie, None):
        status, body = post(crossbar_node, "subscribe", {"sid": opened["sid"], "topic": "public.feed"}, cookie=cookie)
        assert (status, body["error"]) == (404, errors.NOT_AUTHENTICATED)
    with pytest.raises(urllib.error.HTTPError) as refused:
        stream(crossbar_node, opened["sid"], cookie=bob_cookie)
    assert refused.value.code == 404
    refused.value.close()


def test_logout_closes_the_fallback_stream_with_the_reason(crossbar_node, realtime_redis):
    client, cookie = login(make_user())
    _status, opened = post(crossbar_node, "open", cookie=cookie)
    events = stream(crossbar_node, opened["sid"], cookie=cookie)
    client.logout()
    closing = next_event(events)
    assert closing["event"] == "close" and json.loads(closing["data"])["reason"] == errors.CLOSE_LOGGED_OUT
    events.close()


def localhost_origin(node) -> str:
    """Another origin of the same site that the default DJWAMP_ALLOWED_ORIGINS admit."""
    return f"http://localhost:{node.settings.port}"


def ticket_for(client) -> str:
    response = client.post("/realtime/ticket/")
    assert response.status_code == 200, response.content
    return response.json()["ticket"]


def test_a_page_on_another_origin_opens_the_fallback_with_a_ticket(crossbar_node, realtime_redis):
    user = make_user()
    client, _cookie = login(user)
    status, opened = post(crossbar_node, "open", {"ticket": ticket_for(client)}, origin=localhost_origin(crossbar_node))
    assert status == 200 and (opened["authrole"], opened["authid"]) == ("user", str(user.pk))
    # no cookie travels cross-origin: the sid alone is the key, from an allowed origin only
    assert post(crossbar_node, "subscribe", {"sid": opened["sid"], "topic": f"user.{user.pk}.inbox"},
                origin=localhost_origin(crossbar_node))[0] == 200
    assert post(crossbar_node, "subscribe", {"sid": opened["sid"], "topic": "public.feed"},
                origin="http://evil.example:80")[0] == 403


def test_a_ticket_from_a_foreign_origin_or_a_bad_ticket_is_refused(crossbar_node, realtime_redis):
    client, _cookie = login(make_user())
    assert post(crossbar_node, "open", {"ticket": ticket_for(client)}, origin="http://evil.example:80")[0] == 403
    status, body = post(crossbar_node, "open", {"ticket": "forged"}, origin=localhost_origin(crossbar_node))
    assert (status, body["error"]) == (403, errors.NOT_AUTHENTICATED)


def test_cors_answers_allowed_origins_only_and_never_with_credentials(crossbar_node):
    url = f"http://127.0.0.1:{crossbar_node.settings.port}/rt/open"
    for origin, allowed in ((localhost_origin(crossbar_node), True), ("http://evil.example", False)):
        request = urllib.request.Request(url, method="OPTIONS", headers={
            "Origin": origin, "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type, x-requested-with"})
        try:
            with urllib.request.urlopen(request, timeout=15) as response:
                status, headers = response.status, response.headers
        except urllib.error.HTTPError as refused:
            with refused:
                status, headers = refused.code, refused.headers
        assert (status == 204) is allowed
        assert (headers.get("Access-Control-Allow-Origin") == origin) is allowed
        assert headers.get("Access-Control-Allow-Credentials") is None


def test_bad_subscribe_and_call_requests_get_a_400_and_the_session_goes_on(crossbar_node):
    _client, cookie = login(make_user())
    _status, opened = post(crossbar_node, "open", cookie=cookie)
    sid = opened["sid"]
    for body, error in (({"topic": "public.feed", "match": "regex"}, "wamp.error.invalid_argument"),
                        ({"topic": "public.feed", "match": ["prefix"]}, "wamp.error.invalid_argument"),
                        ({"topic": "public feed"}, "wamp.error.invalid_uri"),
                        ({"topic": "public..feed", "match": "prefix"}, "wamp.error.invalid_uri")):
        status, refused = post(crossbar_node, "subscribe", {"sid": sid, **body}, cookie=cookie)
        assert (status, refused["error"]) == (400, error), body
    for procedure in ("tests rpc add", "tests..rpc", ""):
        status, refused = post(crossbar_node, "call", {"sid": sid, "procedure": procedure}, cookie=cookie)
        assert (status, refused["error"]) == (400, "wamp.error.invalid_uri"), procedure
    # nothing above cost the session anything
    assert post(crossbar_node, "subscribe", {"sid": sid, "topic": "public.feed", "match": "prefix"},
                cookie=cookie) == (200, {"topic": "public.feed"})
    status, called = post(crossbar_node, "call", {"sid": sid, "procedure": "demo.whoami"}, cookie=cookie)
    assert status == 200 and called["result"]["authenticated"] is True



def raw_request(node, method: str, path: str, body: bytes | None = None, *, cookie=None):
    request = urllib.request.Request(f"http://127.0.0.1:{node.settings.port}/rt/{path}", data=body, method=method)
    request.add_header("Origin", own_origin(node))
    request.add_header("X-Requested-With", "djwamp")
    request.add_header("Content-Type", "application/json")
    if cookie:
        request.add_header("Cookie", f"{settings.SESSION_COOKIE_NAME}={cookie}")
    try:
        with urllib.request.urlopen(request, timeout=15) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as refused:
        with refused:
            return refused.code, refused.read()


@pytest.mark.parametrize("body, status", [
    (b"not json", 400), (b"[1, 2]", 400), (b'"text"', 400), (b"\xff\xfe", 400), (b"{", 400),
    (b"[" * 60_000, 400), (b'{"sid": "' + b"x" * (70 * 1024) + b'"}', 413),
    (b'{"sid": 1, "topic": ["public.feed"]}', 404), (b'{"sid": null}', 404),
], ids=["text", "array", "string", "not-utf8", "truncated", "deep", "huge", "wrong-types", "null-sid"])
def test_a_bad_request_body_is_a_4xx_with_a_json_error_and_no_traceback(crossbar_node, body, status):
    _client, cookie = login(make_user())
    got, raw = raw_request(crossbar_node, "POST", "subscribe", body, cookie=cookie)
    assert got == status, raw[:200]
    assert json.loads(raw)["error"].startswith(("wamp.error.", "djwamp.error.")) and b"Traceback" not in raw


@pytest.mark.parametrize("method, path, status", [
    ("GET", "open", 405), ("PUT", "subscribe", 405), ("DELETE", "call", 405), ("POST", "events", 405),
    ("POST", "nothing-here", 404), ("PATCH", "open", 405),
])
def test_a_wrong_method_or_path_is_refused(crossbar_node, method, path, status):
    got, raw = raw_request(crossbar_node, method, path, b"{}" if method != "GET" else None)
    assert got == status, raw[:200]
    assert b"Traceback" not in raw


def test_the_gateway_logged_no_traceback_for_any_of_it(crossbar_node):
    output = crossbar_node.proc.output()
    assert "gateway request failed" not in output
    assert "Traceback" not in output and "Unhandled" not in output
