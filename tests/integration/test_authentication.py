"""The attacker's matrix: real Crossbar, real Redis, real Django sessions.

Every row is a named test. The node's Django reads the same test database as this process,
so a session created here (``force_login``) is a real session there.
"""

from __future__ import annotations

import time
import urllib.error
import urllib.request
import uuid

import pytest
import pytest_twisted
from autobahn.wamp.exception import ApplicationError
from autobahn.wamp.types import PublishOptions
from django.core import signing
from twisted.internet import threads

from realtime import errors, publish
from realtime._identity import TICKET_SALT
from tests.conftest import running_node
from tests.integration.browsers import USED_SECRETS, connect, get_ticket, login, make_user, refused
from tests.users import ACCOUNT_CHANGES
from tests.wamp import EventCollector, sleep

pytestmark = pytest.mark.django_db(transaction=True)


# -- cookies ----------------------------------------------------------------------------------

@pytest_twisted.ensureDeferred
async def test_no_cookie_connects_as_anonymous(crossbar_node):
    session = await connect(crossbar_node)
    assert session.details.authrole == "anonymous"
    assert session.details.authid.startswith("anonymous-")
    session.leave()


@pytest_twisted.ensureDeferred
async def test_valid_cookie_connects_as_that_user(crossbar_node):
    user = make_user("ada")
    _client, cookie = login(user)
    session = await connect(crossbar_node, cookie=cookie)
    assert (session.details.authrole, session.details.authid) == ("user", str(user.pk))
    assert session.details.authextra["username"] == "ada"
    assert cookie not in repr(session.details.authextra)
    session.leave()


@pytest_twisted.ensureDeferred
async def test_staff_cookie_connects_as_staff(crossbar_node):
    _client, cookie = login(make_user(staff=True))
    session = await connect(crossbar_node, cookie=cookie)
    assert session.details.authrole == "staff"
    session.leave()


@pytest.mark.parametrize("change", ACCOUNT_CHANGES.values(), ids=ACCOUNT_CHANGES.keys())
@pytest_twisted.ensureDeferred
async def test_a_cookie_from_before_an_account_change_never_signs_in_with_what_was_taken(crossbar_node, change):
    user = make_user(staff=True)
    _client, cookie = login(user)
    change(user)
    session = await connect(crossbar_node, cookie=cookie)
    # a demoted staff member is still signed in to Django, as a user; the others not at all
    demoted = change is ACCOUNT_CHANGES["staff member demoted"]
    assert session.details.authrole == ("user" if demoted else "anonymous")
    session.leave()


@pytest_twisted.ensureDeferred
async def test_forged_cookie_is_not_a_login(crossbar_node):
    forged = "x" * 32
    USED_SECRETS.append(forged)
    session = await connect(crossbar_node, cookie=forged)
    assert session.details.authrole == "anonymous"
    session.leave()


@pytest_twisted.ensureDeferred
async def test_valid_cookie_with_a_foreign_origin_is_refused(crossbar_node):
    _client, cookie = login(make_user())
    with pytest.raises(ConnectionError):  # the WebSocket upgrade itself is refused (cross-site hijacking)
        session = await connect(crossbar_node, cookie=cookie, origin="http://evil.example:80", timeout=5)
        session.leave()


@pytest_twisted.ensureDeferred
async def test_cookie_without_an_origin_header_is_ignored(crossbar_node):
    # browsers always send Origin on a WebSocket upgrade; a client that does not uses a ticket
    _client, cookie = login(make_user())
    session = await connect(crossbar_node, cookie=cookie, origin=None)
    assert session.details.authrole == "anonymous"
    session.leave()


# -- tickets ----------------------------------------------------------------------------------

@pytest_twisted.ensureDeferred
async def test_ticket_connects_as_its_user_without_a_cookie(crossbar_node, realtime_redis):
    user = make_user()
    client, _cookie = login(user)
    ticket = get_ticket(client)
    session = await connect(crossbar_node, origin=None, authmethods=["ticket"], ticket=ticket)
    assert (session.details.authrole, session.details.authid) == ("user", str(user.pk))
    session.leave()


@pytest_twisted.ensureDeferred
async def test_replayed_ticket_is_refused(crossbar_node, realtime_redis):
    client, _cookie = login(make_user())
    ticket = get_ticket(client)
    first = await connect(crossbar_node, authmethods=["ticket"], ticket=ticket)
    first.leave()
    assert await refused(connect(crossbar_node, authmethods=["ticket"], ticket=ticket)) == errors.NOT_AUTHENTICATED


@pytest_twisted.ensureDeferred
async def test_tampered_ticket_is_refused(crossbar_node, realtime_redis):
    client, _cookie = login(make_user())
    ticket = get_ticket(client)
    middle = len(ticket) // 2
    tampered = ticket[:middle] + ("A" if ticket[middle] != "A" else "B") + ticket[middle + 1:]
    assert await refused(connect(crossbar_node, authmethods=["ticket"], ticket=tampered)) == errors.NOT_AUTHENTICATED


@pytest_twisted.ensureDeferred
async def test_expired_ticket_is_refused(crossbar_node, realtime_redis):
    user = make_user()
    client, _cookie = login(user)
    get_ticket(client)  # a real one, so only the age differs

    class Yesterday(signing.TimestampSigner):
        def timestamp(self):
            return signing.b62_encode(int(time.time()) - 86400)

    nonce = uuid.uuid4().hex
    realtime_redis.client().set(f"djwamp:ticket:{nonce}", client.session.session_key, ex=60)
    stale = Yesterday(salt=TICKET_SALT).sign_object({"n": nonce, "u": str(user.pk)})
    USED_SECRETS.append(stale)
    assert await refused(connect(crossbar_node, authmethods=["ticket"], ticket=stale)) == errors.NOT_AUTHENTICATED


@pytest_twisted.ensureDeferred
async def test_ticket_of_a_session_that_logged_out_is_refused(crossbar_node, realtime_redis):
    client, _cookie = login(make_user())
    ticket = get_ticket(client)
    client.logout()
    assert await refused(connect(crossbar_node, authmethods=["ticket"], ticket=ticket)) == errors.NOT_AUTHENTICATED


@pytest_twisted.ensureDeferred
async def test_ticket_is_not_valid_for_another_session_of_the_same_browser(crossbar_node, realtime_redis):
    # the ticket belongs to the session it came from: logging in as someone else ends it
    client, _cookie = login(make_user())
    ticket = get_ticket(client)
    client.force_login(make_user())
    assert await refused(connect(crossbar_node, authmethods=["ticket"], ticket=ticket)) == errors.NOT_AUTHENTICATED


@pytest_twisted.ensureDeferred
async def test_garbage_ticket_is_refused(crossbar_node):
    assert await refused(connect(crossbar_node, authmethods=["ticket"], ticket="garbage")) == errors.NOT_AUTHENTICATED


# -- authorization ----------------------------------------------------------------------------

@pytest_twisted.ensureDeferred
async def test_user_receives_their_own_notifications(crossbar_node, realtime_redis):
    user = make_user()
    _client, cookie = login(user)
    session = await connect(crossbar_node, cookie=cookie)
    events = EventCollector()
    await events.subscribe(session, f"user.{user.pk}.inbox")
    event_id = publish(f"user.{user.pk}.inbox", {"text": "hello"})
    assert await events.wait_for(1) == [(event_id, [{"text": "hello"}], {})]
    session.leave()


@pytest_twisted.ensureDeferred
async def test_user_a_cannot_subscribe_to_user_b_even_after_b_subscribed_first(crossbar_node, realtime_redis):
    alice, bob = make_user(), make_user()
    _a, alice_cookie = login(alice)
    _b, bob_cookie = login(bob)
    bob_session = await connect(crossbar_node, cookie=bob_cookie)
    bob_events = EventCollector()
    await bob_events.subscribe(bob_session, f"user.{bob.pk}.inbox")   # allowed, and must not be cached

    alice_session = await connect(crossbar_node, cookie=alice_cookie)
    alice_events = EventCollector()
    for topic, match in ((f"user.{bob.pk}.inbox", "exact"), ("user.", "prefix"), ("user..inbox", "wildcard")):
        with pytest.raises(ApplicationError) as denied:
            await alice_events.subscribe(alice_session, topic, match=match)
        assert denied.value.error == errors.NOT_AUTHORIZED, topic

    publish(f"user.{bob.pk}.inbox", "for bob")
    await bob_events.wait_for(1)
    await sleep(0.3)
    assert alice_events.events == []
    alice_session.leave()
    bob_session.leave()


@pytest_twisted.ensureDeferred
async def test_private_event_for_some_users_reaches_only_them(crossbar_node, realtime_redis):
    alice, bob = make_user(), make_user()
    sessions, collectors = [], []
    for user in (alice, bob):
        _c, cookie = login(user)
        session = await connect(crossbar_node, cookie=cookie)
        events = EventCollector()
        await events.subscribe(session, "public.room")
        sessions.append(session)
        collectors.append(events)
    publish("public.room", "for alice", users=[alice])
    publish("public.room", "not for alice", exclude_users=[alice])
    publish("public.room", "for nobody", users=[])
    publish("public.room", "for all")
    await collectors[0].wait_for(2)
    await collectors[1].wait_for(2)
    assert [args for _, args, _ in collectors[0].events] == [["for alice"], ["for all"]]
    assert [args for _, args, _ in collectors[1].events] == [["not for alice"], ["for all"]]
    for session in sessions:
        session.leave()


@pytest_twisted.ensureDeferred
async def test_user_cannot_publish_where_no_rule_allows(crossbar_node):
    user = make_user()
    _client, cookie = login(user)
    session = await connect(crossbar_node, cookie=cookie)
    for topic in (f"user.{user.pk}.inbox", "public.scores", "staff.alerts"):
        with pytest.raises(ApplicationError) as denied:
            await session.publish(topic, "spoof", options=PublishOptions(acknowledge=True))
        assert denied.value.error == errors.NOT_AUTHORIZED, topic
    session.leave()


@pytest.mark.parametrize("staff", [False, True])
@pytest_twisted.ensureDeferred
async def test_browsers_cannot_reach_the_meta_api_or_djwamp_internals(crossbar_node, staff):
    _client, cookie = login(make_user(staff=staff))
    session = await connect(crossbar_node, cookie=cookie)
    for procedure in ("wamp.session.list", "wamp.session.get", "wamp.session.kill_by_authid",
                      "djwamp.control.revoke", "djwamp.authenticate"):
        with pytest.raises(ApplicationError) as denied:
            await session.call(procedure)
        assert denied.value.error == errors.NOT_AUTHORIZED, procedure
    with pytest.raises(ApplicationError):
        await session.subscribe(lambda *a: None, "wamp.session.on_join")
    session.leave()


# -- revocation -------------------------------------------------------------------------------

@pytest_twisted.ensureDeferred
async def test_logout_closes_the_open_connection_within_a_second(crossbar_node, realtime_redis):
    client, cookie = login(make_user())
    session = await connect(crossbar_node, cookie=cookie)
    client.logout()
    details = await session.left.addTimeout(1.0, _reactor())
    assert details.reason == errors.CLOSE_LOGGED_OUT


@pytest_twisted.ensureDeferred
async def test_logout_leaves_the_users_other_browser_connected(crossbar_node, realtime_redis):
    user = make_user()
    laptop, laptop_cookie = login(user)
    _phone, phone_cookie = login(user)
    on_laptop = await connect(crossbar_node, cookie=laptop_cookie)
    on_phone = await connect(crossbar_node, cookie=phone_cookie)
    laptop.logout()
    await on_laptop.left.addTimeout(1.0, _reactor())
    await sleep(0.3)
    assert not on_phone.left.called
    on_phone.leave()


@pytest.mark.parametrize("change", ["password", "deactivate", "delete"])
@pytest_twisted.ensureDeferred
async def test_account_changes_close_every_connection_of_the_user(crossbar_node, realtime_redis, change):
    user = make_user()
    sessions = []
    for _ in range(2):
        _client, cookie = login(user)
        sessions.append(await connect(crossbar_node, cookie=cookie))
    if change == "password":
        user.set_password("changed-Secret-789")
        user.save()
    elif change == "deactivate":
        user.is_active = False
        user.save()
    else:
        user.delete()
    for session in sessions:
        details = await session.left.addTimeout(1.0, _reactor())
        assert details.reason == errors.CLOSE_REVOKED


@pytest_twisted.ensureDeferred
async def test_session_deleted_behind_our_back_is_closed_by_revalidation(crossbar_node, realtime_redis):
    # e.g. `clearsessions`, or a session store flushed without a logout signal
    from django.contrib.sessions.models import Session

    _client, cookie = login(make_user())
    session = await connect(crossbar_node, cookie=cookie)
    Session.objects.filter(session_key=cookie).delete()
    # the node re-validates every REVALIDATE_INTERVAL (2 s for the test node)
    details = await session.left.addTimeout(10, _reactor())
    assert details.reason == errors.CLOSE_SESSION_ENDED


@pytest_twisted.ensureDeferred
async def test_connection_closes_when_its_django_session_expires(crossbar_node, realtime_redis):
    client, cookie = login(make_user())
    session_store = client.session
    session_store.set_expiry(3)      # seconds from now, as a "remember me: no" login might
    session_store.save()
    session = await connect(crossbar_node, cookie=cookie)
    assert not session.left.called
    details = await session.left.addTimeout(10, _reactor())
    assert details.reason == errors.CLOSE_SESSION_ENDED


@pytest_twisted.ensureDeferred
async def test_logout_closes_connections_on_every_node(crossbar_node, members_only_node, realtime_redis):
    client, cookie = login(make_user())
    on_first = await connect(crossbar_node, cookie=cookie)
    on_second = await connect(members_only_node, cookie=cookie)
    client.logout()
    for session in (on_first, on_second):
        details = await session.left.addTimeout(1.0, _reactor())
        assert details.reason == errors.CLOSE_LOGGED_OUT


def _reactor():
    from twisted.internet import reactor

    return reactor


# -- with anonymous access disabled -----------------------------------------------------------

@pytest.fixture(scope="module")
def members_only_node(tmp_path_factory, redis_server, test_db_path):
    with running_node(tmp_path_factory, redis_server.url, DJANGO_DB_PATH=test_db_path,
                      DJWAMP_ALLOW_ANONYMOUS="0") as node:
        yield node


@pytest_twisted.ensureDeferred
async def test_without_anonymous_access_no_cookie_is_refused(members_only_node):
    assert await refused(connect(members_only_node)) == errors.NOT_AUTHENTICATED


@pytest_twisted.ensureDeferred
async def test_without_anonymous_access_an_inactive_users_cookie_is_refused(members_only_node):
    user = make_user()
    _client, cookie = login(user)
    user.is_active = False
    user.save()
    assert await refused(connect(members_only_node, cookie=cookie)) == errors.NOT_AUTHENTICATED


@pytest_twisted.ensureDeferred
async def test_without_anonymous_access_a_valid_cookie_still_connects(members_only_node):
    _client, cookie = login(make_user())
    session = await connect(members_only_node, cookie=cookie)
    assert session.details.authrole == "user"
    session.leave()


# -- nothing secret in any log ----------------------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_requests_the_node_proxies_never_put_their_cookies_in_its_log(crossbar_node):
    # Crossbar's reverse proxy logged every forwarded request's headers at info: the session
    # cookie of every page view (/ -> Django) and fallback request (/rt/ -> the gateway)
    _client, cookie = login(make_user())
    origin = f"http://127.0.0.1:{crossbar_node.settings.port}"
    headers = {"Cookie": f"sessionid={cookie}", "Origin": origin, "X-Requested-With": "djwamp",
               "Content-Type": "application/json"}

    def browse():
        for path, body in (("/", None), ("/rt/open", b"{}")):
            request = urllib.request.Request(origin + path, data=body, headers=headers)
            try:
                urllib.request.urlopen(request, timeout=10).read()
            except urllib.error.HTTPError:
                pass  # no Django behind the test node: a 502 still went through the proxy

    await threads.deferToThread(browse)
    await _logged_so_far(crossbar_node)
    assert cookie not in crossbar_node.proc.output()


async def _logged_so_far(node) -> None:
    """Return once the node's log holds everything it was sent before: a refusal the router
    worker logs, after whatever came before it."""
    seen = len(node.proc.lines)
    assert await refused(connect(node, ticket="not-a-ticket", authmethods=["ticket"])) == errors.NOT_AUTHENTICATED
    await threads.deferToThread(node.proc.wait_for, "refused ticket session", 30, start=seen)


@pytest_twisted.ensureDeferred
async def test_no_cookie_or_ticket_appears_in_any_node_log(crossbar_node, members_only_node, realtime_redis):
    # its own cookie, ticket and forged cookie, refused and accepted, on both nodes; and every
    # secret that tests run before it used (in any order, there may be none)
    client, cookie = login(make_user())
    ticket = get_ticket(client)
    forged = uuid.uuid4().hex
    USED_SECRETS.append(forged)
    for node in (crossbar_node, members_only_node):
        (await connect(node, cookie=cookie)).leave()
    anonymous = await connect(crossbar_node, cookie=forged)  # a cookie of no session: anonymous
    assert anonymous.details.authrole == "anonymous"
    anonymous.leave()
    assert await refused(connect(members_only_node, cookie=forged)) == errors.NOT_AUTHENTICATED
    (await connect(crossbar_node, authmethods=["ticket"], ticket=ticket)).leave()
    for node in (crossbar_node, members_only_node):
        await _logged_so_far(node)
    logs = crossbar_node.proc.output() + members_only_node.proc.output()
    leaked = [secret[:8] + "..." for secret in USED_SECRETS if secret in logs]
    assert not leaked, f"secrets in the node logs: {leaked}"
