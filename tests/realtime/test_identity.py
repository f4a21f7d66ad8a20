"""identity_from_session_key() and fingerprint(): who a Django session cookie stands for.

The answer must be Django's own (active user, unchanged password, live session) while never
touching the session: Django's get_user() flushes a session whose password hash is stale; a
WebSocket upgrade must not.
"""

import datetime
import json
import re
from importlib import import_module

import pytest
from django.conf import settings as django_settings
from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
from django.contrib.sessions.models import Session
from django.core import signing
from django.core.cache import caches
from django.db import connection
from django.test import override_settings
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from realtime._identity import Identity, fingerprint, identity_from_session_key
from tests.users import ACCOUNT_CHANGES, login, make_user

pytestmark = pytest.mark.django_db

DB = "django.contrib.sessions.backends.db"
CACHE = "django.contrib.sessions.backends.cache"
CACHED_DB = "django.contrib.sessions.backends.cached_db"
SIGNED_COOKIES = "django.contrib.sessions.backends.signed_cookies"
ALL_ENGINES = [DB, CACHE, CACHED_DB, SIGNED_COOKIES]
STORED_ENGINES = [DB, CACHE, CACHED_DB]  # those where logging out destroys the session

HEX32 = re.compile(r"[0-9a-f]{32}")


@pytest.fixture(autouse=True)
def _fast_hasher(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def engine(request, settings):
    settings.SESSION_ENGINE = request.param
    return request.param


def stored_session(engine: str, key: str):
    """What the session store holds for ``key`` (database row and cache entry)."""
    row = cached = None
    if engine in (DB, CACHED_DB):
        row = Session.objects.filter(session_key=key).values_list("session_data", "expire_date").first()
    if engine in (CACHE, CACHED_DB):
        cached = caches[django_settings.SESSION_CACHE_ALIAS].get(import_module(engine).KEY_PREFIX + key)
    return row, cached


def assert_no_writes(queries):
    statements = [q["sql"] for q in queries]
    assert all(sql.lstrip().upper().startswith("SELECT") for sql in statements), statements


# --- a valid session -------------------------------------------------------------------------


@pytest.mark.parametrize("engine", ALL_ENGINES, indirect=True)
def test_a_logged_in_user_is_role_user_with_their_pk_as_authid(engine):
    user = make_user("alice")
    _client, key = login(user)

    identity = identity_from_session_key(key)

    assert isinstance(identity, Identity)
    assert identity.role == "user"
    assert identity.authid == str(user.pk)
    assert identity.authextra["username"] == "alice"
    assert identity.authextra["is_staff"] is False
    assert identity.authextra["authenticated"] is True
    assert identity.session_key == key


@pytest.mark.parametrize("engine", ALL_ENGINES, indirect=True)
def test_authextra_holds_no_password_hash_and_no_session_key(engine):
    user = make_user()
    _client, key = login(user)

    identity = identity_from_session_key(key)

    sent = json.dumps(identity.authextra)  # authextra goes to the browser: JSON, no secrets
    assert user.password not in sent
    assert user.get_session_auth_hash() not in sent
    assert key not in sent
    assert not {"password", "session_key", "sessionid", HASH_SESSION_KEY} & set(identity.authextra)
    assert key not in repr(identity)


def test_a_staff_user_is_role_staff():
    user = make_user("bob", staff=True)
    _client, key = login(user)

    identity = identity_from_session_key(key)

    assert identity.role == "staff"
    assert identity.authid == str(user.pk)
    assert identity.authextra["is_staff"] is True


def test_an_explicit_expiry_date_is_reported_as_expires_at():
    user = make_user()
    client, key = login(user)
    session = client.session
    when = timezone.now() + datetime.timedelta(hours=1)
    session.set_expiry(when)
    session.save()

    identity = identity_from_session_key(key)

    assert identity.expires_at == pytest.approx(when.timestamp(), abs=1)


# --- no identity -----------------------------------------------------------------------------


@pytest.mark.parametrize("key", [
    None,
    "",
    "x",
    "abc",
    "0" * 32,
    "zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz",
    "' OR 1=1 --",
    "k" * 5000,
    "é" * 40,
    "a" * 31 + "\x00",
    "not:a:signed:cookie",
], ids=lambda key: repr(key)[:20])
@pytest.mark.parametrize("engine", ALL_ENGINES, indirect=True)
def test_no_identity_for_an_empty_or_garbage_key(engine, key):
    make_user()

    assert identity_from_session_key(key) is None


def test_no_identity_for_a_key_that_looks_valid_but_was_never_issued():
    user = make_user()
    _client, key = login(user)
    forged = key[:-1] + ("a" if key[-1] != "a" else "b")

    assert identity_from_session_key(forged) is None


def test_no_identity_for_a_signed_cookie_session_forged_with_another_key(settings):
    settings.SESSION_ENGINE = SIGNED_COOKIES
    user = make_user()
    _client, real = login(user)
    data = signing.loads(real, salt="django.contrib.sessions.backends.signed_cookies")
    assert data[SESSION_KEY] == str(user.pk)
    forged = signing.dumps(data, key="not-the-secret-key", salt="django.contrib.sessions.backends.signed_cookies",
                           compress=True)

    assert identity_from_session_key(real) is not None
    assert identity_from_session_key(forged) is None


def test_no_identity_for_a_session_without_a_user():
    store = import_module(DB).SessionStore()
    store["cart"] = [1, 2]
    store.save()

    assert identity_from_session_key(store.session_key) is None


def test_no_identity_for_a_session_without_the_password_hash():
    user = make_user()
    store = import_module(DB).SessionStore()
    store[SESSION_KEY] = str(user.pk)
    store[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
    store.save()

    assert identity_from_session_key(store.session_key) is None


def test_no_identity_when_the_session_backend_is_no_longer_configured(settings):
    user = make_user()
    _client, key = login(user)
    settings.AUTHENTICATION_BACKENDS = ["django.contrib.auth.backends.AllowAllUsersModelBackend"]

    assert identity_from_session_key(key) is None


@pytest.mark.parametrize("engine", ALL_ENGINES, indirect=True)
def test_a_refused_session_is_neither_modified_nor_deleted(engine):
    user = make_user()
    _client, key = login(user)
    user.set_password("a-new-password-2")
    user.save()
    before = stored_session(engine, key)

    with CaptureQueriesContext(connection) as queries:
        assert identity_from_session_key(key) is None

    assert_no_writes(queries)
    assert stored_session(engine, key) == before
    if engine in (DB, CACHED_DB):
        assert before[0] is not None  # Django's get_user() would have deleted this row
        assert Session.objects.filter(session_key=key).exists()
    if engine in (CACHE, CACHED_DB):
        assert before[1] is not None


@pytest.mark.parametrize("engine", ALL_ENGINES, indirect=True)
def test_a_valid_session_is_neither_modified_nor_deleted(engine):
    user = make_user()
    _client, key = login(user)
    before = stored_session(engine, key)

    with CaptureQueriesContext(connection) as queries:
        assert identity_from_session_key(key) is not None

    assert_no_writes(queries)
    assert stored_session(engine, key) == before


@pytest.mark.parametrize("engine", STORED_ENGINES, indirect=True)
def test_no_identity_after_logout(engine):
    user = make_user()
    client, key = login(user)
    assert identity_from_session_key(key) is not None

    client.logout()

    assert identity_from_session_key(key) is None


def test_no_identity_for_an_expired_session_and_the_row_is_left_alone():
    user = make_user()
    _client, key = login(user)
    assert identity_from_session_key(key) is not None
    past = timezone.now() - datetime.timedelta(seconds=1)
    Session.objects.filter(session_key=key).update(expire_date=past)

    assert identity_from_session_key(key) is None
    assert Session.objects.filter(session_key=key).exists()


@pytest.mark.parametrize("change", ACCOUNT_CHANGES.values(), ids=ACCOUNT_CHANGES.keys())
@pytest.mark.parametrize("engine", ALL_ENGINES, indirect=True)
def test_after_an_account_change_the_session_gives_no_identity_or_a_lesser_one(engine, change):
    user = make_user(staff=True)
    _client, key = login(user)
    assert identity_from_session_key(key).role == "staff"

    change(user)

    identity = identity_from_session_key(key)
    if change is ACCOUNT_CHANGES["staff member demoted"]:
        assert identity.role == "user"
    else:
        assert identity is None


def test_a_deleted_users_session_stays_in_the_store():
    # identity_from_session_key only reads: the session row is Django's to expire
    user = make_user()
    _client, key = login(user)
    user.delete()
    assert identity_from_session_key(key) is None
    assert Session.objects.filter(session_key=key).exists()


# --- SECRET_KEY rotation ---------------------------------------------------------------------


def _login_under_old_secret():
    user = make_user()
    with override_settings(SECRET_KEY="old-secret-key-for-djwamp-tests", SECRET_KEY_FALLBACKS=[]):
        _client, key = login(user)
        assert identity_from_session_key(key) is not None
    return user, key


def test_a_session_made_under_a_fallback_secret_key_still_resolves():
    user, key = _login_under_old_secret()

    with override_settings(SECRET_KEY="new-secret-key-for-djwamp-tests",
                           SECRET_KEY_FALLBACKS=["old-secret-key-for-djwamp-tests"]):
        identity = identity_from_session_key(key)

    assert identity is not None
    assert identity.authid == str(user.pk)


def test_a_session_made_under_a_retired_secret_key_does_not_resolve():
    _user, key = _login_under_old_secret()

    with override_settings(SECRET_KEY="new-secret-key-for-djwamp-tests", SECRET_KEY_FALLBACKS=[]):
        assert identity_from_session_key(key) is None


# --- fingerprint -----------------------------------------------------------------------------


def test_fingerprint_is_stable_for_a_key():
    assert fingerprint("a1b2c3d4e5f6a7b8c9d0e1f2a3b4c5d6") == fingerprint("a1b2c3d4e5f6a7b8c9d0e1f2a3b4c5d6")


def test_fingerprint_differs_between_keys():
    keys = [f"session{n:025d}" for n in range(50)]
    assert len({fingerprint(key) for key in keys}) == len(keys)


@pytest.mark.parametrize("key", ["a1b2c3d4e5f6a7b8c9d0e1f2a3b4c5d6", "x" * 200, "abc"])
def test_fingerprint_is_32_hex_characters_and_does_not_contain_the_key(key):
    value = fingerprint(key)

    assert HEX32.fullmatch(value)
    assert key not in value
    assert key[:8] not in value


def test_identity_fingerprint_is_the_fingerprint_of_its_session():
    user = make_user()
    _client, key = login(user)

    identity = identity_from_session_key(key)

    assert identity.fingerprint == fingerprint(key)


def test_a_database_session_reports_its_stored_expiry_not_a_fresh_lifetime():
    _client, key = login(make_user())
    earlier = timezone.now() + datetime.timedelta(minutes=5)
    Session.objects.filter(session_key=key).update(expire_date=earlier)
    identity = identity_from_session_key(key)
    assert identity.expires_at == pytest.approx(earlier.timestamp(), abs=1)


def test_a_failing_session_store_raises_instead_of_saying_no_session(settings):
    # "the store is down" must not read as "the session is invalid": that would close every
    # signed-in connection at the next re-validation (the authenticator answers "unavailable")
    from django.db import DatabaseError

    settings.SESSION_ENGINE = "tests.realtime.unreachable_sessions"
    with pytest.raises(DatabaseError):
        identity_from_session_key("a" * 32)
