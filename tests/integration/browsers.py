"""Browser-like sessions for the integration tests: real Django users, real session cookies.

The node's Django reads the same test database as this process, so a session created here
(``force_login``) is a real session there. Tests that use these need
``pytest.mark.django_db(transaction=True)``.
"""

from __future__ import annotations

import pytest
from autobahn.wamp.exception import ApplicationError
from django.conf import settings

from tests.users import USED_SECRETS, login, make_user
from tests.wamp import connect_ws

__all__ = ["USED_SECRETS", "connect", "get_ticket", "login", "make_user", "own_origin", "refused"]


def own_origin(node) -> str:
    return f"http://127.0.0.1:{node.settings.port}"


async def connect(node, *, cookie: str | None = None, origin: str | None = "own", **kwargs):
    """A WebSocket session as a browser on the node's own origin opens it (with ``cookie``)."""
    headers = {"Cookie": f"{settings.SESSION_COOKIE_NAME}={cookie}"} if cookie else {}
    return await connect_ws(node.ws_url, node.realm, origin=own_origin(node) if origin == "own" else origin,
                            headers=headers, **kwargs)


def get_ticket(client) -> str:
    """A ticket from the ticket view for ``client``'s session (recorded in ``USED_SECRETS``)."""
    response = client.post("/realtime/ticket/")
    assert response.status_code == 200, response.content
    ticket = response.json()["ticket"]
    USED_SECRETS.append(ticket)
    return ticket


async def refused(coro) -> str:
    """The error URI the router refused a session with (a session that got in fails the test)."""
    with pytest.raises(ApplicationError) as info:
        session = await coro
        session.leave()
    return info.value.error
