"""The authenticator's own logic (the full matrix runs against a real node in integration)."""

import pytest
import pytest_twisted
from autobahn.wamp.exception import ApplicationError

from router.auth import SessionAuthenticator, origin_allowed
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
    authenticator = SessionAuthenticator.__new__(SessionAuthenticator)
    authenticator.admitted = {}
    with pytest.raises(ApplicationError, match="invalid_argument"):
        await authenticator.revoke("kill_user", "backend")
