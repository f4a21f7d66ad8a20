"""Revocation: logout, a password change, deactivation or deletion writes one control entry
to the stream once the transaction commits; nothing else does, and Redis being down never
breaks the logout.
"""

import logging
import time

import pytest
from django.contrib.auth import get_user_model
from django.db import IntegrityError, transaction
from django.utils import timezone

from realtime import wire
from realtime._identity import fingerprint
from router.processes import free_port
from tests.users import ACCOUNT_CHANGES, login, make_user

pytestmark = pytest.mark.django_db(transaction=True)


class Rollback(Exception):
    pass


@pytest.fixture(autouse=True)
def _fast_hasher(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def only_control(stream) -> wire.Control:
    entries = stream.events()
    assert len(entries) == 1, entries
    assert isinstance(entries[0], wire.Control), entries
    return entries[0]


# --- what writes a control entry --------------------------------------------------------------


def test_creating_and_logging_in_a_user_writes_nothing(stream):
    user = make_user()
    login(user)

    assert stream.xlen() == 0


def test_logout_writes_one_kill_session_for_that_session(stream):
    user = make_user()
    client, key = login(user)
    assert stream.xlen() == 0

    client.logout()

    control = only_control(stream)
    assert control.action == "kill_session"
    assert control.authid == str(user.pk)
    assert control.session == fingerprint(key)


def test_the_kill_session_entry_does_not_carry_the_session_key(stream):
    user = make_user()
    client, key = login(user)

    client.logout()

    ((_entry_id, fields),) = stream.client.xrange(stream.key)
    assert not any(key in value for value in fields.values())


def test_logging_out_one_session_names_only_that_session(stream):
    user = make_user()
    first, first_key = login(user)
    _second, second_key = login(user)

    first.logout()

    control = only_control(stream)
    assert control.session == fingerprint(first_key) != fingerprint(second_key)


@pytest.mark.parametrize("change", ACCOUNT_CHANGES.values(), ids=ACCOUNT_CHANGES.keys())
def test_an_account_change_writes_kill_user(stream, change):
    user = make_user(staff=True)
    pk = user.pk

    change(user)

    control = only_control(stream)
    assert (control.action, control.authid, control.session) == ("kill_user", str(pk), None)


@pytest.mark.parametrize("change", ACCOUNT_CHANGES.values(), ids=ACCOUNT_CHANGES.keys())
def test_an_account_change_rolled_back_writes_nothing(stream, change):
    user = make_user(staff=True)

    with pytest.raises(Rollback), transaction.atomic():
        change(user)
        raise Rollback

    assert stream.xlen() == 0


# --- what writes nothing ---------------------------------------------------------------------


def test_saving_last_login_only_writes_nothing(stream):
    user = make_user()

    user.last_login = timezone.now()
    user.save(update_fields=["last_login"])

    assert stream.xlen() == 0


def test_changing_the_name_writes_nothing(stream):
    user = make_user()

    user.first_name = "Alicia"
    user.save()

    assert stream.xlen() == 0


def test_saving_an_unchanged_user_twice_writes_nothing(stream):
    user = make_user()

    user.save()
    user.save()

    assert stream.xlen() == 0


def test_reactivating_a_user_writes_nothing(stream):
    user = make_user(is_active=False)

    user.is_active = True
    user.save()

    assert stream.xlen() == 0


def test_a_change_inside_a_committed_transaction_is_written_only_after_commit(stream):
    user = make_user()

    with transaction.atomic():
        user.is_active = False
        user.save()
        assert stream.xlen() == 0
        with transaction.atomic():  # a savepoint commits into the outer transaction only
            user.set_password("a-new-password-2")
            user.save()
        assert stream.xlen() == 0

    controls = stream.events()
    assert [(c.action, c.authid) for c in controls] == [("kill_user", str(user.pk))] * 2


def test_an_unrelated_save_after_a_revoking_save_writes_nothing_more(stream):
    user = make_user()
    user.is_active = False
    user.save()
    assert stream.xlen() == 1

    user.first_name = "Alicia"
    user.save()

    assert stream.xlen() == 1


def test_an_unrelated_save_after_a_failed_revoking_save_writes_nothing(stream):
    make_user("bob")
    user = make_user("alice")
    user.username = "bob"  # the UPDATE fails on the unique username...
    user.is_active = False  # ...after pre_save saw a deactivation
    with pytest.raises(IntegrityError), transaction.atomic():
        user.save()
    user.refresh_from_db()
    assert user.is_active and stream.xlen() == 0

    user.last_login = timezone.now()
    user.save(update_fields=["last_login"])

    assert stream.xlen() == 0, stream.events()


# --- Redis down ------------------------------------------------------------------------------


@pytest.mark.timeout(60)
def test_logout_with_redis_down_succeeds_and_logs_a_warning_without_the_session_key(settings, caplog):
    user = make_user()
    client, key = login(user)
    settings.REALTIME = {**settings.REALTIME, "REDIS_URL": f"redis://127.0.0.1:{free_port()}/0",
                         "REDIS_TIMEOUT": 0.5}
    caplog.set_level(logging.WARNING)

    started = time.monotonic()
    client.logout()  # raises nothing

    assert time.monotonic() - started < 10
    warnings = [r for r in caplog.records if r.name == "realtime.revocation" and r.levelno == logging.WARNING]
    assert len(warnings) == 1, caplog.records
    message = warnings[0].getMessage()
    assert "kill_session" in message
    assert str(user.pk) in message
    assert key not in message
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], caplog.records


@pytest.mark.timeout(60)
def test_a_password_change_with_redis_down_is_saved_and_logged(settings, caplog):
    user = make_user()
    settings.REALTIME = {**settings.REALTIME, "REDIS_URL": f"redis://127.0.0.1:{free_port()}/0",
                         "REDIS_TIMEOUT": 0.5}
    caplog.set_level(logging.WARNING)

    user.set_password("a-new-password-2")
    user.save()

    user.refresh_from_db()
    assert user.check_password("a-new-password-2")
    assert [r.name for r in caplog.records if r.levelno >= logging.WARNING] == ["realtime.revocation"]


def test_promoting_to_staff_writes_nothing(stream):
    user = make_user()
    user.is_staff = True
    user.save()
    assert stream.xlen() == 0


def test_logout_with_signed_cookie_sessions_closes_all_of_the_users_connections(stream, settings):
    # that engine re-signs (re-keys) the session on every save: the key at logout may not be
    # the one a WebSocket connected with
    settings.SESSION_ENGINE = "django.contrib.sessions.backends.signed_cookies"
    user = make_user()
    client, _cookie = login(user)
    client.logout()
    assert only_control(stream).action == "kill_user"


def test_the_demo_users_command_revokes_nothing_when_it_creates_or_keeps_users(stream, settings):
    # `make run` runs it at every start: creating the users is not a password change
    import io

    from django.core.management import call_command

    settings.DEBUG = True
    call_command("demo_users", stdout=io.StringIO())
    call_command("demo_users", stdout=io.StringIO())
    assert stream.events() == []
    # a demo user whose password someone changed gets it back: that is a change, and revokes
    alice = get_user_model().objects.get(username="alice")
    alice.set_password("changed")
    alice.save()
    call_command("demo_users", stdout=io.StringIO())
    assert [entry.authid for entry in stream.events()] == [str(alice.pk)] * 2
