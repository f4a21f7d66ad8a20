"""Browser-like sessions for the integration tests: real Django users, real session cookies.

The node's Django reads the same test database as this process, so a session created here
(``force_login``) is a real session there. Tests that use these need
``pytest.mark.django_db(transaction=True)``.
"""

from __future__ import annotations

import uuid

from django.conf import settings
from django.contrib.auth import get_user_model
from django.test import Client

from tests.wamp import connect_ws

#: every cookie and ticket value the tests used; none may appear in a node's log
USED_SECRETS: list[str] = []


def make_user(username: str | None = None, *, staff: bool = False, active: bool = True):
    return get_user_model().objects.create_user(username or f"u{uuid.uuid4().hex[:10]}", password="pw-Secret-123",
                                                is_staff=staff, is_active=active)


def login(user) -> tuple[Client, str]:
    client = Client()
    client.force_login(user)
    cookie = client.cookies[settings.SESSION_COOKIE_NAME].value
    USED_SECRETS.append(cookie)
    return client, cookie


def own_origin(node) -> str:
    return f"http://127.0.0.1:{node.settings.port}"


async def connect(node, *, cookie: str | None = None, origin: str | None = "own", **kwargs):
    """A WebSocket session as a browser on the node's own origin opens it (with ``cookie``)."""
    headers = {"Cookie": f"{settings.SESSION_COOKIE_NAME}={cookie}"} if cookie else {}
    return await connect_ws(node.ws_url, node.realm, origin=own_origin(node) if origin == "own" else origin,
                            headers=headers, **kwargs)
