"""POST /realtime/ticket/ and redeem_ticket(): a short-lived, single-use WAMP credential.

Real redis-server (the ``stream`` fixture points REALTIME at the private one).
"""

import base64
import json
import secrets
import time

import pytest
from django.conf import settings as django_settings
from django.core import signing
from django.test import Client
from django.urls import reverse

from realtime._conf import get_settings
from realtime._exceptions import RedisUnavailable
from realtime._identity import _TICKET_KEY, TICKET_SALT, TicketRefused, redeem_ticket
from router.processes import free_port
from tests.users import ACCOUNT_CHANGES, login, make_user

pytestmark = pytest.mark.django_db

URL = "/realtime/ticket/"


@pytest.fixture(autouse=True)
def _fast_hasher(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def realtime(settings, **values):
    settings.REALTIME = {**settings.REALTIME, **values}


def get_ticket(client) -> str:
    response = client.post(URL)
    assert response.status_code == 200, response.content
    return response.json()["ticket"]


def different_char(c: str) -> str:
    return "B" if c == "A" else "A"


# --- the view --------------------------------------------------------------------------------


def test_the_url_is_named_realtime_ticket():
    assert reverse("realtime:ticket") == URL


def test_a_logged_in_user_gets_a_ticket_as_json(stream, settings):
    realtime(settings, TICKET_MAX_AGE=17)
    client, _key = login(make_user())

    response = client.post(URL)

    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    body = response.json()
    assert set(body) == {"ticket", "expires_in", "realm"}
    assert isinstance(body["ticket"], str) and body["ticket"]
    assert body["expires_in"] == 17 == get_settings().TICKET_MAX_AGE
    assert body["realm"] == get_settings().REALM


def test_the_default_expires_in_is_ticket_max_age(stream):
    client, _key = login(make_user())

    body = client.post(URL).json()

    assert body["expires_in"] == get_settings().TICKET_MAX_AGE == 30


def test_the_ticket_response_is_never_cached(stream):
    client, _key = login(make_user())

    response = client.post(URL)

    cache_control = response["Cache-Control"]
    assert "no-store" in cache_control or "max-age=0" in cache_control, cache_control


def test_the_ticket_nonce_lives_in_redis_no_longer_than_the_ticket(stream, settings):
    realtime(settings, TICKET_MAX_AGE=17)
    client, key = login(make_user())

    token = get_ticket(client)

    nonce = signing.loads(token, salt=TICKET_SALT)["n"]
    ttl = stream.client.ttl(_TICKET_KEY.format(nonce))
    assert 0 < ttl <= 17
    assert stream.client.get(_TICKET_KEY.format(nonce)) == key


def test_get_is_405(stream):
    client, _key = login(make_user())

    response = client.get(URL)

    assert response.status_code == 405


def test_post_without_a_csrf_token_is_403(stream):
    client, _key = login(make_user(), enforce_csrf_checks=True)

    response = client.post(URL)

    assert response.status_code == 403


def test_post_with_a_csrf_token_is_accepted(stream):
    """The control for the test above: the same client, with a token, gets its ticket."""
    client, _key = login(make_user(), enforce_csrf_checks=True)
    token = secrets.token_hex(16)  # 32 characters, a valid unmasked secret
    client.cookies[django_settings.CSRF_COOKIE_NAME] = token

    response = client.post(URL, headers={"X-CSRFToken": token})

    assert response.status_code == 200, response.content


def test_anonymous_gets_a_ticket_when_anonymous_is_allowed(stream, settings):
    realtime(settings, ALLOW_ANONYMOUS=True)

    response = Client().post(URL)

    assert response.status_code == 200
    identity = redeem_ticket(response.json()["ticket"])
    assert identity.role == "anonymous"
    assert identity.authid.startswith("anonymous-")
    assert identity.authextra.get("authenticated") is False
    assert identity.session_key is None


def test_anonymous_is_403_when_anonymous_is_not_allowed(stream, settings):
    realtime(settings, ALLOW_ANONYMOUS=False)

    response = Client().post(URL)

    assert response.status_code == 403
    assert response.json()["error"] == "djwamp.error.not_authenticated"
    assert "ticket" not in response.json()


def test_a_logged_in_user_gets_a_ticket_when_anonymous_is_not_allowed(stream, settings):
    realtime(settings, ALLOW_ANONYMOUS=False)
    client, _key = login(make_user())

    assert client.post(URL).status_code == 200


def test_an_anonymous_ticket_is_refused_once_anonymous_access_is_turned_off(stream, settings):
    realtime(settings, ALLOW_ANONYMOUS=True)
    token = get_ticket(Client())
    realtime(settings, ALLOW_ANONYMOUS=False)

    with pytest.raises(TicketRefused):
        redeem_ticket(token)


@pytest.mark.timeout(60)
@pytest.mark.parametrize("who", ["user", "anonymous"])
def test_redis_down_is_503_json_without_a_traceback(settings, who):
    port = free_port()
    realtime(settings, REDIS_URL=f"redis://127.0.0.1:{port}/0", REDIS_TIMEOUT=0.5, ALLOW_ANONYMOUS=True)
    client = login(make_user())[0] if who == "user" else Client()

    started = time.monotonic()
    response = client.post(URL)

    assert time.monotonic() - started < 10
    assert response.status_code == 503
    assert response["Content-Type"] == "application/json"
    body = response.json()
    assert body["error"] == "djwamp.error.unavailable"
    text = response.content.decode()
    assert "Traceback" not in text
    assert 'File "' not in text
    assert "Error" not in text  # no exception class names (ConnectionError, RedisUnavailable...)
    assert str(port) not in text  # nor where Redis lives


# --- redeem_ticket ---------------------------------------------------------------------------


def test_a_ticket_redeems_to_the_user_of_its_session(stream):
    user = make_user("bob", is_staff=True)
    client, key = login(user)

    identity = redeem_ticket(get_ticket(client))

    assert identity.role == "staff"
    assert identity.authid == str(user.pk)
    assert identity.authextra["username"] == "bob"
    assert identity.session_key == key


def test_a_ticket_works_once(stream):
    client, _key = login(make_user())
    token = get_ticket(client)

    assert redeem_ticket(token).role == "user"
    with pytest.raises(TicketRefused):
        redeem_ticket(token)


def test_each_ticket_is_its_own(stream):
    client, _key = login(make_user())
    first, second = get_ticket(client), get_ticket(client)

    assert first != second
    assert redeem_ticket(second).role == "user"
    assert redeem_ticket(first).role == "user"


def test_a_tampered_ticket_is_refused(stream):
    client, _key = login(make_user())
    token = get_ticket(client)
    middle = len(token) // 2
    while token[middle] == ":":
        middle += 1
    tampered = token[:middle] + different_char(token[middle]) + token[middle + 1:]
    assert tampered != token and len(tampered) == len(token)

    with pytest.raises(TicketRefused):
        redeem_ticket(tampered)
    assert redeem_ticket(token).role == "user"  # the refusal did not spend the real one


def test_a_tampered_signature_is_refused(stream):
    client, _key = login(make_user())
    token = get_ticket(client)
    tampered = token[:-1] + different_char(token[-1])

    with pytest.raises(TicketRefused):
        redeem_ticket(tampered)


def test_a_ticket_signed_with_another_salt_is_refused(stream):
    client, key = login(make_user())
    nonce = signing.loads(get_ticket(client), salt=TICKET_SALT)["n"]

    forged = signing.dumps({"n": nonce, "u": client.session["_auth_user_id"]}, compress=False)

    with pytest.raises(TicketRefused):
        redeem_ticket(forged)


class _PastSigner(signing.TimestampSigner):
    age = 0

    def timestamp(self):
        return signing.b62_encode(int(time.time()) - self.age)


def _signed_at(age: int, nonce: str, authid: str | None) -> str:
    signer = _PastSigner(salt=TICKET_SALT)
    signer.age = age
    return signer.sign_object({"n": nonce, "u": authid}, compress=False)


def _stored_nonce(stream, session_key: str) -> str:
    """Store a nonce as issue_ticket does."""
    nonce = secrets.token_urlsafe(18)
    stream.client.set(_TICKET_KEY.format(nonce), session_key or "-", ex=get_settings().TICKET_MAX_AGE)
    return nonce


def test_a_hand_made_ticket_within_its_age_is_accepted(stream):
    """The control for the expiry test: the construction itself is a valid ticket."""
    user = make_user()
    _client, key = login(user)

    token = _signed_at(5, _stored_nonce(stream, key), str(user.pk))

    assert redeem_ticket(token).authid == str(user.pk)


def test_an_expired_ticket_is_refused(stream):
    user = make_user()
    _client, key = login(user)

    token = _signed_at(get_settings().TICKET_MAX_AGE + 5, _stored_nonce(stream, key), str(user.pk))

    with pytest.raises(TicketRefused, match="expired"):
        redeem_ticket(token)


def test_a_ticket_whose_nonce_is_unknown_is_refused(stream):
    user = make_user()
    _client, _key = login(user)

    token = signing.dumps({"n": secrets.token_urlsafe(18), "u": str(user.pk)}, salt=TICKET_SALT, compress=False)

    with pytest.raises(TicketRefused):
        redeem_ticket(token)


def test_a_ticket_naming_another_user_than_its_session_is_refused(stream):
    alice, mallory = make_user("alice"), make_user("mallory")
    _client, alice_key = login(alice)

    token = signing.dumps({"n": _stored_nonce(stream, alice_key), "u": str(mallory.pk)},
                          salt=TICKET_SALT, compress=False)

    with pytest.raises(TicketRefused):
        redeem_ticket(token)


def test_a_ticket_is_refused_once_its_session_logged_out(stream):
    client, _key = login(make_user())
    token = get_ticket(client)

    client.logout()

    with pytest.raises(TicketRefused):
        redeem_ticket(token)


@pytest.mark.parametrize("change", ACCOUNT_CHANGES.values(), ids=ACCOUNT_CHANGES.keys())
def test_a_ticket_from_before_an_account_change_never_signs_in_with_what_was_taken(stream, change):
    user = make_user(staff=True)
    client, _key = login(user)
    token = get_ticket(client)

    change(user)

    if change is ACCOUNT_CHANGES["staff member demoted"]:
        # still signed in to Django, as a user: the ticket gives that, never staff
        assert redeem_ticket(token).role == "user"
    else:
        with pytest.raises(TicketRefused):
            redeem_ticket(token)


@pytest.mark.parametrize("token", [
    None,
    42,
    b"bytes-ticket",
    ["a", "list"],
    {"n": "x", "u": "1"},
    "",
    "t" * 10 * 1024,
    "not-a-ticket",
    "a:b:c",
], ids=lambda token: f"{type(token).__name__}-{len(token) if hasattr(token, '__len__') else token}")
def test_a_non_ticket_is_refused(stream, token):
    with pytest.raises(TicketRefused):
        redeem_ticket(token)


def test_a_huge_ticket_built_on_a_real_one_is_refused(stream):
    client, _key = login(make_user())
    token = get_ticket(client)

    with pytest.raises(TicketRefused):
        redeem_ticket(token + "x" * 10 * 1024)
    assert redeem_ticket(token).role == "user"


def test_the_ticket_does_not_contain_the_session_key(stream):
    user = make_user()
    client, key = login(user)

    token = get_ticket(client)

    assert key not in token
    payload = token.split(":")[0]
    decoded = base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)).decode()
    assert key not in decoded
    assert json.loads(decoded) == signing.loads(token, salt=TICKET_SALT)
    assert set(json.loads(decoded)) == {"n", "u"}
    assert json.loads(decoded)["u"] == str(user.pk)


@pytest.mark.timeout(60)
def test_redeeming_with_redis_down_raises_redis_unavailable_not_ticket_refused(stream, settings):
    user = make_user()
    _client, key = login(user)
    token = _signed_at(0, _stored_nonce(stream, key), str(user.pk))
    realtime(settings, REDIS_URL=f"redis://127.0.0.1:{free_port()}/0", REDIS_TIMEOUT=0.5)

    with pytest.raises(RedisUnavailable):
        redeem_ticket(token)
