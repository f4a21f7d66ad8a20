"""What the node's workers log, at what cost: lazy arguments, short client errors, no chatter.

The largest avoidable cost of the router was its log arguments. Autobahn and Crossbar pass
highlighted values to their debug and trace lines --
``self.log.trace("...", session=hlval(session_id), func=hltype(self.send))`` -- and Python
evaluates those arguments before the logger drops the line. Profiled under fan-out
(docs/topics/performance.md) about a third of the router's CPU went to ``click.style``,
``hl*`` and ``pprint.pformat`` for lines nobody saw: several per delivered event.

For those, ``apply()`` changes two things, in the process it runs in (each worker calls it as
its first component starts):

- ``autobahn.util`` stops colouring (``_HAS_CLICK = False``): ``hl*`` return plain text. The
  node's log is a file or a pipe, where ANSI codes are noise anyway.
- In the modules on the delivery path (``HOT_MODULES``), ``hl``, ``hlval`` and ``hlid`` are
  replaced by a function that returns its argument: uncoloured, they only turn it into text,
  which formatting the line does anyway. ``hltype``, ``hluserid``, ``hlflag`` and ``pformat``
  are replaced by versions that return a ``Deferred`` text: the original call runs when (and
  only if) the line is formatted. Those modules use these names only as log arguments; a test
  checks that in the installed versions, so an upgrade that changes it fails ``make test``
  instead of a log line.

Nothing else in their behaviour changes. Set ``DJWAMP_EAGER_LOG_ARGS=1`` to leave them alone.

``apply()`` also shortens one kind of line: for every malformed message a client sends (bad
JSON, a URI it cannot parse) autobahn's ``WampWebSocketProtocol`` logs a full traceback at
``critical`` before it closes that connection, so anyone could fill the node's log with them.
Those become one line, ``ProtocolError: <reason>`` (at most 300 characters); tracebacks of
every other exception stay as they are. ``DJWAMP_CLIENT_TRACEBACKS=1`` keeps them whole.

And it moves Crossbar's per-connection lines below ``info``: for every browser that connects
Crossbar logs four to six ``info`` lines (the HELLO, the authenticator session, the attach with
the user's authextra, the detach), several of them ``pformat``-ed dictionaries. The loggers of
``SESSION_LOGGERS`` log from ``warn`` up; ``DJWAMP_LOG_SESSIONS=1`` keeps them at ``info``.
"""

from __future__ import annotations

import importlib
import os
import pprint
import sys
import traceback
from collections.abc import Callable

__all__ = ["HOT_MODULES", "NAMES", "PLAIN", "ClientErrorsInOneLine", "Deferred", "apply", "passthrough"]

#: the argument builders replaced (autobahn.util's, crossbar._util's and pprint.pformat)
NAMES = ("hl", "hltype", "hlval", "hlid", "hluserid", "hlflag", "pformat")
#: those that, uncoloured, only make text of their first argument: replaced by ``passthrough``
PLAIN = ("hl", "hlval", "hlid")
#: modules of autobahn and crossbar that run per message or per delivery, with the names
#: they use for something other than a log argument (left as they are)
HOT_MODULES = {
    "autobahn.wamp.websocket": (),
    "autobahn.websocket.protocol": ("pformat",),  # Timings.__str__ returns pformat(...)
    "autobahn.twisted.websocket": (),
    "crossbar.router.broker": (),
    "crossbar.router.router": (),
    "crossbar.router.session": (),
    "crossbar.router.role": (),
    "crossbar.router.dealer": (),
}

#: Crossbar classes whose loggers write lines per connection at info: (module, class)
SESSION_LOGGERS = (
    ("crossbar.router.router", "Router"),
    ("crossbar.router.protocol", "WampWebSocketServerProtocol"),
    ("crossbar.router.auth.pending", "PendingAuth"),
    ("crossbar.router.auth.anonymous", "PendingAuthAnonymous"),
    ("crossbar.router.auth.ticket", "PendingAuthTicket"),
)

_applied = False


class Deferred:
    """The text ``fn(*args, **kwargs)``, computed when it is formatted."""

    __slots__ = ("_fn", "_args", "_kwargs")

    def __init__(self, fn: Callable[..., str], args: tuple, kwargs: dict):
        self._fn, self._args, self._kwargs = fn, args, kwargs

    def __str__(self) -> str:
        return self._fn(*self._args, **self._kwargs)

    __repr__ = __str__

    def __format__(self, spec: str) -> str:
        return format(str(self), spec)


def _deferring(fn: Callable[..., str]) -> Callable[..., Deferred]:
    def deferred(*args, **kwargs) -> Deferred:
        return Deferred(fn, args, kwargs)

    deferred.__name__ = deferred.__qualname__ = fn.__name__
    deferred.__wrapped__ = fn
    return deferred


def passthrough(value, *_style, **_more):
    """``hl(value, ...)`` without colour, minus the work: ``"{x}"`` formats ``value`` the same."""
    return value


class ClientErrorsInOneLine:
    """Stands in for ``traceback`` in ``autobahn.wamp.websocket``: see the module docstring."""

    MAX = 300

    def __init__(self, client_errors: tuple[type[BaseException], ...]):
        self.client_errors = client_errors

    def __getattr__(self, name):
        return getattr(traceback, name)

    def format_exc(self, limit=None, chain=True) -> str:
        exc = sys.exc_info()[1]
        if isinstance(exc, self.client_errors):
            text = " ".join(f"{type(exc).__name__}: {exc}".split())
            return text if len(text) <= self.MAX else text[: self.MAX - 1] + "…"
        return traceback.format_exc(limit, chain)


def _shorten_client_errors() -> bool:
    if os.environ.get("DJWAMP_CLIENT_TRACEBACKS", "") not in ("", "0"):
        return False
    import autobahn.wamp.websocket
    from autobahn.wamp.exception import InvalidUriError, ProtocolError

    autobahn.wamp.websocket.traceback = ClientErrorsInOneLine((ProtocolError, InvalidUriError))
    return True


def _quiet_session_lines() -> list[str]:
    if os.environ.get("DJWAMP_LOG_SESSIONS", "") not in ("", "0"):
        return []
    quieted = []
    for module_name, class_name in SESSION_LOGGERS:
        try:
            logger = getattr(importlib.import_module(module_name), class_name).log
        except (ImportError, AttributeError):
            continue
        logger._set_log_level("warn")
        quieted.append(f"{module_name}.{class_name}.log")
    return quieted


def apply() -> list[str]:
    """Apply the changes once per process; returns what was patched (for the log)."""
    global _applied
    if _applied:
        return []
    _applied = True
    patched = ["autobahn.wamp.websocket.traceback"] if _shorten_client_errors() else []
    patched += _quiet_session_lines()
    if os.environ.get("DJWAMP_EAGER_LOG_ARGS", "") not in ("", "0"):
        return patched
    import autobahn.util

    autobahn.util._HAS_CLICK = False
    sources = [autobahn.util, pprint]
    try:
        sources.append(importlib.import_module("crossbar._util"))
    except ImportError:
        pass
    # the original functions, whichever module a hot module imported them from
    replacements = {}
    for source in sources:
        for name in NAMES:
            fn = getattr(source, name, None)
            if callable(fn):
                replacements[fn] = passthrough if name in PLAIN else _deferring(fn)
    for module_name, kept in HOT_MODULES.items():
        try:
            module = importlib.import_module(module_name)
        except ImportError:
            continue
        for name in NAMES:
            current = getattr(module, name, None)
            if name not in kept and current in replacements:
                setattr(module, name, replacements[current])
                patched.append(f"{module_name}.{name}")
    return patched
