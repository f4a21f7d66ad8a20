"""The authenticator's own logic (the full matrix runs against a real node in integration)."""

import pytest
import pytest_twisted
from autobahn.wamp.exception import ApplicationError

from router.auth import AuthenticatorComponent, origin_allowed
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


@pytest_twisted.ensureDeferred
async def test_the_components_own_authid_can_never_be_revoked():
    authenticator = AuthenticatorComponent.__new__(AuthenticatorComponent)
    authenticator.admitted = {}
    with pytest.raises(ApplicationError, match="invalid_argument"):
        await authenticator.revoke("kill_user", "backend")


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
