"""The authenticator's own logic, with stand-ins (the full matrix runs against a real node in
integration: tests/integration/test_authentication.py)."""

import time
from types import SimpleNamespace

import pytest
import pytest_twisted
from autobahn.wamp.exception import ApplicationError
from twisted.internet import defer
from twisted.internet.task import Clock
from twisted.logger import Logger, formatEvent

from realtime import errors
from realtime._identity import Identity, fingerprint
from router.auth import Authenticator, NodeReadiness, origin_allowed
from router.settings import NodeSettings, SettingsError

OWN = ("http://127.0.0.1:8080", "http://localhost:8080", "https://shop.example:443", "https://any.example:*")


@pytest.mark.parametrize("origin", ["http://127.0.0.1:8080", "http://localhost:8080", "https://shop.example",
                                    "https://shop.example:443", "https://any.example:8443", "https://any.example"])
def test_origins_on_the_list_are_allowed_with_default_ports_filled_in(origin):
    assert origin_allowed(origin, OWN)


@pytest.mark.parametrize("origin", ["http://127.0.0.1:8081", "https://127.0.0.1:8080", "http://shop.example",
                                    "https://evil.shop.example", "https://shop.example.evil:443", "null", "",
                                    "http://127.0.0.1:8080/path", "http://[::1]:8080", "javascript:alert(1)",
                                    "http://127.0.0.1:99999"])
def test_everything_else_is_refused(origin):
    assert not origin_allowed(origin, OWN)


def test_origin_hosts_must_be_literal():
    with pytest.raises(SettingsError, match="literal host"):
        NodeSettings.from_env({"DJWAMP_ALLOWED_ORIGINS": "https://*.example.com:443"})


def test_the_node_is_ready_once_every_awaited_component_has_announced_itself():
    from twisted.internet.task import Clock

    from router.auth import NodeReadiness

    clock = Clock()
    readiness = NodeReadiness(["bridge", "history"], clock)
    early, late = readiness.wait(30), []
    assert not readiness.announced("history") and not early.called
    assert not readiness.announced("somebody-else"), "only the awaited components count"
    clock.advance(10)
    assert readiness.announced("bridge") and early.called and early.result is None
    readiness.wait(30).addCallback(late.append)
    assert late == [None] and not readiness.announced("bridge"), "ready once"


def test_waiting_for_a_node_that_never_gets_ready_ends_in_a_timeout():
    from twisted.internet import defer
    from twisted.internet.task import Clock

    from router.auth import NodeReadiness

    clock = Clock()
    readiness = NodeReadiness(["procedures"], clock)
    failures = []
    readiness.wait(30).addErrback(failures.append)
    clock.advance(30)
    assert failures and failures[0].check(defer.TimeoutError)
    assert readiness._waiters == [], "a waiter that gave up is forgotten"


def test_a_node_config_without_awaits_is_ready_at_once():
    from twisted.internet.task import Clock

    from router.auth import NodeReadiness

    assert NodeReadiness((), Clock()).ready


# -- the Authenticator's logic, with stand-ins for Django, the router's meta API and the clock --

class StandInPool:
    """Answers each django_access function with a canned result (or raises it)."""

    def __init__(self, **results):
        self.results, self.calls = results, []

    def run(self, fn, *args):
        self.calls.append((fn.__name__, args))
        result = self.results[fn.__name__]
        return defer.fail(result) if isinstance(result, Exception) else defer.succeed(result)


class StandInMeta:
    """The router's meta API: records calls; kill_by_authid answers the ids it closed."""

    def __init__(self, live=(), gone=()):
        self.calls, self.live, self.gone = [], list(live), set(gone)

    def __call__(self, uri, *args, **kwargs):
        self.calls.append((uri, args, kwargs))
        if uri == "wamp.session.list":
            return defer.succeed(self.live)
        if uri == "wamp.session.kill" and args[0] in self.gone:
            return defer.fail(ApplicationError(errors.NO_SUCH_SESSION))
        return defer.succeed([11, 12] if uri == "wamp.session.kill_by_authid" else None)


def identity(authid="7", role="user", key="key-1", expires_at=None):
    return Identity(authid=authid, role=role, authextra={"username": "ada"}, session_key=key, expires_at=expires_at)


def make_authenticator(pool=None, meta=None, *, anonymous=True, ready=True, clock=None, connections=100,
                       failures=20, trusted=(), log=None):
    clock = clock or Clock()
    conf = SimpleNamespace(ALLOW_ANONYMOUS=anonymous, REVALIDATE_INTERVAL=60, MAX_CONNECTIONS_PER_IP=connections,
                           AUTH_FAILURES_PER_MINUTE=failures)
    return Authenticator(conf=conf, cookie_name="sessionid", allowed_origins=("http://site:80",),
                         cookie_origins=("http://site:80",), trusted_proxies=trusted, pool=pool or StandInPool(),
                         clock=clock, readiness=NodeReadiness(() if ready else ("bridge",), clock),
                         meta=meta or StandInMeta(), log=log or Logger())


def details(method="anonymous", *, origin="http://site:80", cookie="sessionid=key-1", session=101,
            peer="tcp4:127.0.0.1:1", forwarded=None, **more):
    headers = {k: v for k, v in (("origin", origin), ("cookie", cookie), ("x-forwarded-for", forwarded))
               if v is not None}
    return {"authmethod": method, "session": session, "transport": {"peer": peer, "http_headers_received": headers},
            **more}


@pytest_twisted.ensureDeferred
async def test_a_valid_cookie_admits_its_user_and_watches_the_session():
    pool = StandInPool(session_identity=identity())
    auth = make_authenticator(pool)
    answer = await auth.authenticate("djwamp", None, details())
    assert answer == {"role": "user", "authid": "7", "extra": {"username": "ada"}}
    assert pool.calls == [("session_identity", ("key-1",))]
    assert list(auth.admitted) == [101]


@pytest.mark.parametrize("headers", [{"origin": None}, {"origin": "http://evil:80"}])
@pytest_twisted.ensureDeferred
async def test_a_cookie_without_an_allowed_origin_is_never_read(headers):
    pool = StandInPool(session_identity=identity(), anonymous_identity=None)
    auth = make_authenticator(pool, anonymous=False)
    with pytest.raises(ApplicationError) as refused:
        await auth.authenticate("djwamp", None, details(**headers))
    assert refused.value.error == errors.NOT_AUTHENTICATED
    assert pool.calls == [] and auth.admitted == {}


@pytest_twisted.ensureDeferred
async def test_a_user_whose_pk_is_backend_is_refused():
    auth = make_authenticator(StandInPool(session_identity=identity(authid="backend")))
    with pytest.raises(ApplicationError) as refused:
        await auth.authenticate("djwamp", None, details())
    assert refused.value.error == errors.NOT_AUTHENTICATED and auth.admitted == {}


@pytest_twisted.ensureDeferred
async def test_a_failing_session_store_is_unavailable_not_anonymous():
    auth = make_authenticator(StandInPool(session_identity=RuntimeError("database down")))
    with pytest.raises(ApplicationError) as refused:
        await auth.authenticate("djwamp", None, details())
    assert refused.value.error == errors.UNAVAILABLE


@pytest_twisted.ensureDeferred
async def test_before_the_node_is_ready_an_authentication_waits_then_is_unavailable():
    clock = Clock()
    auth = make_authenticator(StandInPool(session_identity=identity()), ready=False, clock=clock)
    waiting = defer.ensureDeferred(auth.authenticate("djwamp", None, details()))
    clock.advance(Authenticator.START_WAIT - 1)
    assert not waiting.called
    failures = []
    waiting.addErrback(failures.append)
    clock.advance(1)
    assert failures[0].value.error == errors.UNAVAILABLE


@pytest_twisted.ensureDeferred
async def test_a_session_is_revalidated_at_its_django_expiry():
    clock = Clock()
    pool = StandInPool(session_identity=identity(expires_at=time.time() + 100))
    meta = StandInMeta()
    auth = make_authenticator(pool, meta, clock=clock)
    await auth.authenticate("djwamp", None, details())
    pool.results["session_identity"] = None  # the Django session has ended meanwhile
    clock.advance(101)
    assert meta.calls == [("wamp.session.kill", (101,), {"reason": errors.CLOSE_SESSION_ENDED,
                                                          "message": "Your session has ended."})]
    assert auth.admitted == {}


@pytest_twisted.ensureDeferred
async def test_revalidation_closes_changed_roles_forgets_departed_sessions_and_keeps_the_rest():
    pool = StandInPool(session_identity=identity())
    meta = StandInMeta(live=[101, 102])
    auth = make_authenticator(pool, meta)
    for session in (101, 102, 103):
        await auth.authenticate("djwamp", None, details(session=session))
    pool.results["session_identity"] = identity(role="staff")  # promoted: 101 and 102 must sign in again
    await auth.revalidate_all()
    kills = [args[0] for uri, args, _kw in meta.calls if uri == "wamp.session.kill"]
    assert kills == [101, 102] and auth.admitted == {}, "103 had left: forgotten, not killed"


@pytest_twisted.ensureDeferred
async def test_kill_session_closes_only_that_browser_and_a_session_already_gone_counts_as_closed():
    pool = StandInPool(session_identity=identity())
    meta = StandInMeta(gone={101})
    auth = make_authenticator(pool, meta)
    await auth.authenticate("djwamp", None, details(session=101))
    await auth.authenticate("djwamp", None, details(session=102))
    pool.results["session_identity"] = identity(key="key-2")  # the same user in another browser
    await auth.authenticate("djwamp", None, details(session=103))
    assert await auth.revoke("kill_session", "7", fingerprint("key-1")) == 2
    assert sorted(args[0] for uri, args, _kw in meta.calls if uri == "wamp.session.kill") == [101, 102]
    assert list(auth.admitted) == [103]


@pytest_twisted.ensureDeferred
async def test_kill_user_closes_every_session_of_the_user_through_the_router():
    auth = make_authenticator(StandInPool(session_identity=identity()))
    await auth.authenticate("djwamp", None, details(session=101))
    assert await auth.revoke("kill_user", "7") == 2  # what kill_by_authid answered
    assert auth.meta.calls[-1][0] == "wamp.session.kill_by_authid" and auth.admitted == {}


@pytest.mark.parametrize("action, authid", [("kill_user", "backend"), ("explode", "7")])
@pytest_twisted.ensureDeferred
async def test_revocations_the_authenticator_cannot_carry_out_are_invalid_arguments(action, authid):
    auth = make_authenticator()
    with pytest.raises(ApplicationError) as refused:
        await auth.revoke(action, authid)
    assert refused.value.error == errors.WAMP_INVALID_ARGUMENT and auth.meta.calls == []


# -- limits per client address (router/limits.py) --------------------------------------------

ATTACKER = "tcp4:203.0.113.7:40000"
BAD_TICKET = (None, "bad signature")


def ticket(session=101, peer=ATTACKER, **more):
    return details("ticket", cookie=None, origin=None, session=session, peer=peer, ticket="T-secret", **more)


async def outcome(auth, attempt) -> str:
    """What the client sees: the role it got, or the error URI it was refused with."""
    try:
        return (await auth.authenticate("djwamp", None, attempt))["role"]
    except ApplicationError as exc:
        return exc.error


@pytest_twisted.ensureDeferred
async def test_an_address_is_refused_after_its_failed_sign_ins_until_its_bucket_refills():
    clock = Clock()
    pool = StandInPool(ticket_identity=BAD_TICKET)
    auth = make_authenticator(pool, clock=clock, failures=3)
    assert [await outcome(auth, ticket()) for _ in range(4)] == [errors.NOT_AUTHENTICATED] * 3 + [errors.RATE_LIMITED]
    with pytest.raises(ApplicationError) as refused:
        await auth.authenticate("djwamp", None, ticket())
    assert refused.value.args[0] == "too many failed sign-ins from this address, try again later"
    clock.advance(60 / 3)  # three a minute: one attempt back
    pool.results["ticket_identity"] = (identity(), "")
    assert await outcome(auth, ticket()) == "user"


@pytest_twisted.ensureDeferred
async def test_a_limited_attempt_never_reaches_the_pool_so_no_ticket_is_redeemed():
    pool = StandInPool(ticket_identity=BAD_TICKET)
    auth = make_authenticator(pool, failures=2)
    for _ in range(2):
        await outcome(auth, ticket())
    pool.results["ticket_identity"] = (identity(), "")  # a valid ticket, after the guesses
    assert await outcome(auth, ticket()) == errors.RATE_LIMITED
    assert len(pool.calls) == 2


@pytest_twisted.ensureDeferred
async def test_neither_a_sign_in_nor_our_own_failure_spends_an_attempt():
    pool = StandInPool(ticket_identity=(identity(), ""))
    auth = make_authenticator(pool, failures=2)
    assert [await outcome(auth, ticket(session=s)) for s in range(10)] == ["user"] * 10
    pool.results["ticket_identity"] = RuntimeError("database down")
    assert [await outcome(auth, ticket()) for _ in range(5)] == [errors.UNAVAILABLE] * 5
    pool.results["ticket_identity"] = BAD_TICKET
    assert [await outcome(auth, ticket()) for _ in range(3)] == [errors.NOT_AUTHENTICATED] * 2 + [errors.RATE_LIMITED]


@pytest_twisted.ensureDeferred
async def test_refused_origins_and_refused_anonymous_visitors_spend_attempts_too():
    auth = make_authenticator(anonymous=False, failures=2)
    first = details(peer=ATTACKER, origin="http://evil:80")
    second = details(peer=ATTACKER, cookie=None)
    assert [await outcome(auth, a) for a in (first, second, second)] == [errors.NOT_AUTHENTICATED] * 2 + [
        errors.RATE_LIMITED]


class PendingPool:
    """Identifications that answer only when the test says so (to have some in flight at once)."""

    def __init__(self):
        self.pending: list[defer.Deferred] = []

    def run(self, fn, *args):
        self.pending.append(defer.Deferred())
        return self.pending[-1]


@pytest_twisted.ensureDeferred
async def test_guesses_in_flight_at_once_cannot_outrun_the_budget():
    # failures are spent when the pool answers: without a cap, 1000 guesses sent at once would all start
    pool = PendingPool()
    auth = make_authenticator(pool, failures=2)
    attempts = [defer.ensureDeferred(outcome(auth, ticket(session=s))) for s in range(5)]
    assert len(pool.pending) == 2
    assert [a.result for a in attempts[2:]] == [errors.RATE_LIMITED] * 3
    for answer in pool.pending:
        answer.callback(BAD_TICKET)
    assert [a.result for a in attempts[:2]] == [errors.NOT_AUTHENTICATED] * 2
    assert len(auth.identifying) == 0, "nothing stays in flight"


@pytest_twisted.ensureDeferred
async def test_an_address_holds_at_most_its_sessions_and_gets_one_back_when_one_leaves():
    pool = StandInPool(session_identity=identity())
    auth = make_authenticator(pool, connections=2)
    assert [await outcome(auth, details(session=s, peer=ATTACKER)) for s in (1, 2, 3)] == [
        "user", "user", errors.RATE_LIMITED]
    with pytest.raises(ApplicationError) as refused:
        await auth.authenticate("djwamp", None, details(session=3, peer=ATTACKER))
    assert refused.value.args[0] == "too many connections from this address"
    assert len(pool.calls) == 2, "a full address is refused before its cookie or ticket is looked at"
    assert await outcome(auth, details(session=4, peer="tcp4:203.0.113.8:1")) == "user"
    auth.forget(1)
    auth.forget(1)  # on_leave twice, or for sessions never counted (the node's own): harmless
    auth.forget(999)
    assert await outcome(auth, details(session=5, peer=ATTACKER)) == "user"
    assert auth.connections.held("203.0.113.7") == 2 and sorted(auth.held) == [2, 4, 5]


@pytest_twisted.ensureDeferred
async def test_anonymous_sessions_count_too():
    auth = make_authenticator(StandInPool(), connections=1)
    assert await outcome(auth, details(session=1, peer=ATTACKER, cookie=None)) == "anonymous"
    assert await outcome(auth, details(session=2, peer=ATTACKER, cookie=None)) == errors.RATE_LIMITED
    assert list(auth.held) == [1] and auth.admitted == {}


@pytest_twisted.ensureDeferred
async def test_sessions_that_filled_the_address_while_another_was_identified_refuse_it():
    pool = PendingPool()
    auth = make_authenticator(pool, connections=1)
    first, second = (defer.ensureDeferred(outcome(auth, details(session=s, peer=ATTACKER))) for s in (1, 2))
    for answer in pool.pending:
        answer.callback(identity())
    assert (first.result, second.result) == ("user", errors.RATE_LIMITED)
    assert list(auth.held) == [1] and list(auth.admitted) == [1], "the refused one is neither counted nor watched"


@pytest_twisted.ensureDeferred
async def test_x_forwarded_for_counts_from_a_trusted_proxy_and_is_ignored_from_anyone_else():
    auth = make_authenticator(StandInPool(session_identity=identity()), connections=1, trusted=("10.0.0.0/8",))
    # the node's own machine (the fallback gateway, a local nginx) and configured proxies are believed
    assert await outcome(auth, details(session=1, forwarded="203.0.113.7")) == "user"
    assert await outcome(auth, details(session=2, forwarded=["198.51.100.1, 203.0.113.7"])) == errors.RATE_LIMITED
    assert await outcome(auth, details(session=3, peer="tcp4:10.1.2.3:1", forwarded="203.0.113.7")) == \
        errors.RATE_LIMITED
    # an untrusted peer is the client, whatever it claims
    assert await outcome(auth, details(session=4, peer="tcp4:198.51.100.9:1", forwarded="203.0.113.50")) == "user"
    assert await outcome(auth, details(session=5, peer="tcp4:198.51.100.9:2", forwarded="203.0.113.51")) == \
        errors.RATE_LIMITED
    assert {key for key, _since in auth.held.values()} == {"203.0.113.7", "198.51.100.9"}


@pytest.mark.parametrize("peer", ["tcp4:127.0.0.1:1", "tcp6:::1:1", "unix:/run/djwamp.sock"])
@pytest_twisted.ensureDeferred
async def test_clients_on_the_nodes_own_machine_are_never_limited_nor_counted(peer):
    pool = StandInPool(ticket_identity=BAD_TICKET, session_identity=identity())
    auth = make_authenticator(pool, connections=1, failures=1)
    assert [await outcome(auth, ticket(peer=peer)) for _ in range(5)] == [errors.NOT_AUTHENTICATED] * 5
    assert [await outcome(auth, details(session=s, peer=peer)) for s in range(5)] == ["user"] * 5
    assert auth.held == {} and len(auth.failures) == 0


@pytest_twisted.ensureDeferred
async def test_zero_turns_both_limits_off_and_keeps_nothing_per_session():
    pool = StandInPool(ticket_identity=BAD_TICKET, session_identity=identity())
    auth = make_authenticator(pool, connections=0, failures=0)
    assert {await outcome(auth, ticket()) for _ in range(50)} == {errors.NOT_AUTHENTICATED}
    assert {await outcome(auth, details(session=s, peer=ATTACKER)) for s in range(50)} == {"user"}
    assert auth.held == {} and len(auth.failures) == 0


@pytest_twisted.ensureDeferred
async def test_revalidation_gives_back_the_sessions_that_authenticated_but_never_joined():
    clock = Clock()
    meta = StandInMeta(live=[1])
    auth = make_authenticator(StandInPool(), meta, clock=clock, connections=2)
    for session in (1, 2):  # 2's transport dropped before WELCOME: it never joins, no on_leave comes
        await outcome(auth, details(session=session, peer=ATTACKER, cookie=None))
    await auth.revalidate_all()
    assert sorted(auth.held) == [1, 2], "a session authenticated a moment ago may be about to join"
    clock.advance(Authenticator.JOIN_GRACE + 1)
    await auth.revalidate_all()
    assert list(auth.held) == [1] and auth.connections.held("203.0.113.7") == 1
    assert meta.calls[-1] == ("wamp.session.list", (["anonymous", "user", "staff"],), {})


@pytest_twisted.ensureDeferred
async def test_a_limited_address_gets_one_log_line_a_minute_and_no_ticket_is_ever_logged():
    events = []
    clock = Clock()
    auth = make_authenticator(StandInPool(ticket_identity=BAD_TICKET), clock=clock, failures=1,
                              log=Logger(observer=events.append))
    for _ in range(6):
        await outcome(auth, ticket())
    limited = [formatEvent(e) for e in events if e["log_format"].startswith("rate-limited")]
    assert limited == ["rate-limited 203.0.113.7: too many failed sign-ins from this address, try again later "
                       "(may retry in 60 s)"]
    clock.advance(61)  # one more guess, refused, and the address is limited again: a new line
    for _ in range(2):
        await outcome(auth, ticket())
    limited = [formatEvent(e) for e in events if e["log_format"].startswith("rate-limited")]
    assert len(limited) == 2 and limited[1].endswith("; 4 more refused since the last such line")
    assert not any("T-secret" in formatEvent(e) for e in events)
