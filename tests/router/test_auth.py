"""The authenticator's own logic, with stand-ins (the full matrix runs against a real node in
integration: tests/integration/test_authentication.py)."""

import time
from types import SimpleNamespace

import pytest
import pytest_twisted
from autobahn.wamp.exception import ApplicationError
from twisted.internet import defer
from twisted.internet.task import Clock
from twisted.logger import Logger

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


def make_authenticator(pool=None, meta=None, *, anonymous=True, ready=True, clock=None):
    clock = clock or Clock()
    conf = SimpleNamespace(ALLOW_ANONYMOUS=anonymous, REVALIDATE_INTERVAL=60)
    return Authenticator(conf=conf, cookie_name="sessionid", allowed_origins=("http://site:80",),
                         cookie_origins=("http://site:80",), pool=pool or StandInPool(), clock=clock,
                         readiness=NodeReadiness(() if ready else ("bridge",), clock), meta=meta or StandInMeta(),
                         log=Logger())


def details(method="anonymous", *, origin="http://site:80", cookie="sessionid=key-1", session=101, **more):
    headers = {k: v for k, v in (("origin", origin), ("cookie", cookie)) if v is not None}
    return {"authmethod": method, "session": session, "transport": {"peer": "tcp4:127.0.0.1:1",
                                                                     "http_headers_received": headers}, **more}


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
