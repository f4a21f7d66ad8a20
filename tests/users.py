"""Real Django users and signed-in test clients, for every test module (one definition).

``login()`` records each session cookie in ``USED_SECRETS``: the integration tests search the
node logs for every one of them (none may appear).
"""

from __future__ import annotations

import uuid

from django.conf import settings
from django.contrib.auth import get_user_model
from django.test import Client

__all__ = ["ACCOUNT_CHANGES", "USED_SECRETS", "login", "make_user", "password_of"]

#: every cookie and ticket value the tests used; none may appear in a node's log
USED_SECRETS: list[str] = []


def password_of(username: str) -> str:
    """The password ``make_user`` gives ``username``."""
    return f"pw-{username}-Secret-1"


def make_user(username: str | None = None, *, staff: bool = False, active: bool = True, **extra):
    """A saved user (a unique name unless ``username``) with the password ``password_of(name)``."""
    username = username or f"u{uuid.uuid4().hex[:10]}"
    extra.setdefault("is_staff", staff)
    extra.setdefault("is_active", active)
    return get_user_model().objects.create_user(username, password=password_of(username), **extra)


def login(user, **client_kwargs) -> tuple[Client, str]:
    """A test client signed in as ``user``, and its session cookie's value."""
    client = Client(**client_kwargs)
    client.force_login(user)
    cookie = client.cookies[settings.SESSION_COOKIE_NAME].value
    USED_SECRETS.append(cookie)
    return client, cookie


def _change_password(user) -> None:
    user.set_password("a-new-password-2")
    user.save()


def _change_password_with_update_fields(user) -> None:
    user.set_password("a-new-password-2")
    user.save(update_fields=["password"])


def _deactivate(user) -> None:
    user.is_active = False
    user.save()


def _demote(user) -> None:
    user.is_staff = False
    user.save()


#: what ends a (staff) user's right to the sessions they have: revocation writes kill_user for
#: each, and none of their cookies or tickets signs them in afterwards
ACCOUNT_CHANGES = {
    "password changed": _change_password,
    "password changed with update_fields": _change_password_with_update_fields,
    "deactivated": _deactivate,
    "staff member demoted": _demote,
    "deleted": lambda user: user.delete(),
}
