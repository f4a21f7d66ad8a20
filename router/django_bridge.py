"""The router's one way into Django.

Sets Django up once per process and runs ORM/session work in a dedicated, bounded thread
pool, closing stale database connections around each call, so the reactor thread never
blocks on the database. Nothing else in router/ imports Django.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from typing import Any, TypeVar

from twisted.internet import reactor as default_reactor
from twisted.internet.defer import Deferred
from twisted.internet.threads import deferToThreadPool
from twisted.python.threadpool import ThreadPool

__all__ = ["setup", "realtime_settings", "DjangoThreadPool"]

T = TypeVar("T")
_setup_lock = threading.Lock()
_is_set_up = False


def setup() -> None:
    """Configure Django (``DJANGO_SETTINGS_MODULE``, default the demo site) once per process."""
    global _is_set_up
    with _setup_lock:
        if _is_set_up:
            return
        os.environ.setdefault("DJANGO_SETTINGS_MODULE", "django_site.settings")
        import django

        django.setup()
        _is_set_up = True


def realtime_settings():
    """Django's validated ``REALTIME`` settings (``realtime._conf.RealtimeSettings``)."""
    setup()
    from realtime._conf import get_settings

    return get_settings()


class DjangoThreadPool:
    """A bounded pool for Django work; each call gets fresh-enough DB connections."""

    def __init__(self, size: int = 10, reactor=default_reactor, name: str = "djwamp-django"):
        self._reactor = reactor
        self._pool = ThreadPool(minthreads=0, maxthreads=size, name=name)
        self._pool.start()
        self._shutdown = reactor.addSystemEventTrigger("during", "shutdown", self.stop)

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
