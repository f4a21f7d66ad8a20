"""The router's one way into Django.

Sets Django up once per process and runs ORM/session work in a dedicated, bounded thread
pool, closing stale database connections around each call, so the reactor thread never
blocks on the database. Nothing else in router/ imports Django or the realtime app's
Django-dependent modules (``realtime.wire`` and ``realtime.errors`` are pure and shared).
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from twisted.internet import reactor as default_reactor
from twisted.internet.defer import Deferred
from twisted.internet.threads import deferToThreadPool
from twisted.python.threadpool import ThreadPool

__all__ = [
    "setup",
    "realtime_settings",
    "session_cookie_name",
    "session_identity",
    "ticket_identity",
    "anonymous_identity",
    "user_passes",
    "procedure_registry",
    "procedure_names",
    "call_procedure",
    "call_procedure_async",
    "procedure_error",
    "DjangoThreadPool",
]

T = TypeVar("T")
_setup_lock = threading.Lock()
_is_set_up = False
logger = logging.getLogger("realtime.router")


def setup() -> None:
    """Configure Django (``DJANGO_SETTINGS_MODULE``, default the demo site) once per process."""
    global _is_set_up
    with _setup_lock:
        if _is_set_up:
            return
        if not os.environ.get("DJANGO_SETTINGS_MODULE"):
            # the repository's demo site; a real site sets its own (see the tutorial)
            logger.warning("DJANGO_SETTINGS_MODULE is not set: the node uses django_site.settings (the demo)")
            os.environ["DJANGO_SETTINGS_MODULE"] = "django_site.settings"
        import django

        django.setup()
        _is_set_up = True


def realtime_settings():
    """Django's validated ``REALTIME`` settings (``realtime._conf.RealtimeSettings``)."""
    setup()
    from realtime._conf import get_settings

    return get_settings()


def session_cookie_name() -> str:
    setup()
    from django.conf import settings

    return settings.SESSION_COOKIE_NAME


def session_key_from_cookie_header(header: str, cookie_name: str) -> str | None:
    """The session cookie's value, parsed the way Django parses request cookies (one odd
    cookie in the header does not hide the others, unlike the standard library's parser)."""
    from django.http.cookie import parse_cookie

    return parse_cookie(header).get(cookie_name)


def session_identity(session_key: str):
    """``Identity`` of a valid session's active user, or ``None``. Call in the pool."""
    from realtime._identity import identity_from_session_key

    return identity_from_session_key(session_key)


def mint_ticket(session_key: str, authid: str | None) -> str:
    """A single-use ticket for that session's user (or anonymous). Call in the pool."""
    from realtime._identity import mint_ticket as mint

    return mint(session_key, authid)[0]


def ticket_identity(token: object):
    """``(Identity, "")`` for a good ticket, ``(None, reason)`` for a refused one. Call in the pool."""
    from realtime._identity import TicketRefused, redeem_ticket

    try:
        return redeem_ticket(token), ""
    except TicketRefused as exc:
        return None, str(exc)


def anonymous_identity():
    from realtime._identity import anonymous_identity as make

    return make()


def user_passes(authid: str, rules: Sequence[Any], uri: str, action: str) -> bool:
    """Whether the active user ``authid`` passes the permission/check of any of ``rules``."""
    from django.utils.module_loading import import_string

    from realtime._identity import active_user

    user = active_user(authid)
    if user is None:
        return False
    for rule in rules:
        if rule.permissions and not user.has_perms(rule.permissions):
            continue
        if rule.check is not None:
            try:
                if not import_string(rule.check)(user, uri, action):
                    continue
            except Exception:
                # a failing check denies; the traceback stays in the server log
                logger.exception("REALTIME['RULES'][%d] check %s failed", rule.index, rule.check)
                continue
        return True
    return False


def procedure_registry():
    """Every ``@procedure`` of the installed apps (``realtime._procedures.ProcedureRegistry``).

    Raises ``ImproperlyConfigured`` naming the problems the system checks report (duplicate or
    invalid names): a node must not serve a name whose meaning is ambiguous.
    """
    setup()
    from django.core.exceptions import ImproperlyConfigured

    from realtime._procedures import registry

    if registry.problems:
        raise ImproperlyConfigured(" ".join(f"{p.msg} {p.hint} ({p.id})" for p in registry.problems))
    return registry


def procedure_names() -> frozenset[str]:
    """The names browsers may call (the rpc component serves them)."""
    setup()
    from realtime._procedures import registry

    return registry.names()


def call_procedure(procedure, args: list, kwargs: dict, **caller: Any) -> Any:
    """Run a sync procedure for one call. Call in the pool."""
    from realtime._procedures import call

    return call(procedure, args, kwargs, **caller)


def call_procedure_async(procedure, args: list, kwargs: dict, **caller: Any):
    """The coroutine that runs an ``async def`` procedure for one call, on an asyncio loop."""
    from realtime._procedures import acall

    return acall(procedure, args, kwargs, **caller)


def procedure_error(exc: BaseException):
    """``realtime._procedures.CallError`` (uri, args, kwargs) for what a call raised."""
    from realtime._procedures import describe_error

    return describe_error(exc)


class DjangoThreadPool:
    """A bounded pool for Django work; each call gets fresh-enough DB connections."""

    def __init__(self, size: int = 10, reactor=default_reactor, name: str = "djwamp-django"):
        self._reactor = reactor
        self._pool = ThreadPool(minthreads=0, maxthreads=size, name=name)
        self._pool.start()
        reactor.addSystemEventTrigger("during", "shutdown", self.stop)

    def run(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> Deferred[T]:
        setup()
        return deferToThreadPool(self._reactor, self._pool, _with_fresh_connections, fn, args, kwargs)

    def stop(self) -> None:
        if self._pool.started:
            self._pool.stop()


def _with_fresh_connections(fn: Callable[..., T], args: tuple, kwargs: dict) -> T:
    from django.db import close_old_connections

    close_old_connections()
    try:
        return fn(*args, **kwargs)
    finally:
        close_old_connections()
