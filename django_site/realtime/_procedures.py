"""@procedure: Python functions that browsers call over WAMP, run as the caller's Django user.

Apps declare procedures in a ``procedures`` module, which ``RealtimeConfig.ready()``
autodiscovers. The router's rpc component (through router/django_access.py) registers every
name and runs each call with ``call`` (a sync procedure, in its thread pool) or ``acall`` (an
``async def``, on its event loop); both load the caller's user, enforce ``login_required`` and
``permission``, bind the arguments, and return a JSON-safe result. ``describe_error`` turns
what a call raised into the WAMP error the browser sees. No Twisted or autobahn here.
"""

from __future__ import annotations

import functools
import inspect
import json
import secrets
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from asgiref.sync import ThreadSensitiveContext, iscoroutinefunction, sync_to_async
from django.core.exceptions import NON_FIELD_ERRORS, ObjectDoesNotExist, PermissionDenied, ValidationError
from django.db import connections
from django.http import Http404

from . import _json, errors, wire
from ._conf import Problem
from ._exceptions import RealtimeError
from ._identity import active_user

__all__ = [
    "CallError",
    "CallRequest",
    "InvalidArguments",
    "LoginRequired",
    "Procedure",
    "ProcedureRegistry",
    "acall",
    "call",
    "describe_error",
    "procedure",
    "registry",
]

SIGNED_IN_ROLES = wire.SIGNED_IN_ROLES

Permission = str | Callable[[Any], bool] | None


class InvalidArguments(RealtimeError, TypeError):
    """The call's arguments do not fit the procedure's signature (found before calling it)."""


class LoginRequired(PermissionDenied):
    """An anonymous caller called a procedure declared with ``login_required=True``."""


@dataclass(frozen=True)
class CallRequest:
    """What a procedure learns about its call: its first argument, like a view's ``request``."""

    #: the caller's Django user, loaded from its WAMP authid; ``AnonymousUser`` if not signed in
    user: Any
    #: the caller's WAMP authid (the user's primary key, or ``anonymous-...``)
    authid: str | None
    #: the caller's WAMP role: ``anonymous``, ``user`` or ``staff``
    authrole: str | None
    #: the caller's WAMP session id
    session_id: int | None
    #: the procedure's name, e.g. ``demo.whoami``
    procedure: str


@dataclass(frozen=True)
class Procedure:
    """One declared procedure; ``timeout`` None means ``REALTIME["RPC_TIMEOUT"]``."""

    name: str
    func: Callable[..., Any] = field(repr=False)
    permission: Permission = None
    login_required: bool = True
    timeout: float | None = None

    @functools.cached_property
    def signature(self) -> inspect.Signature:
        return inspect.signature(self.func)

    @property
    def is_async(self) -> bool:
        return iscoroutinefunction(self.func)

    @property
    def where(self) -> str:
        return _where(self.func)


@dataclass(frozen=True)
class CallError:
    """The WAMP error a failed call answers with: safe to send to any browser."""

    uri: str
    args: list[Any]
    kwargs: dict[str, Any]


class ProcedureRegistry:
    """Procedure names and functions. Bad or duplicate names are kept as problems for the
    system checks (realtime.E005, realtime.E006) instead of failing the import."""

    def __init__(self) -> None:
        self._procedures: dict[str, Procedure] = {}
        self.problems: list[Problem] = []

    def procedure(self, name: str, *, permission: Permission = None, login_required: bool = True,
                  timeout: float | None = None) -> Callable[[Callable], Callable]:
        """Decorator form of ``add``; returns the function unchanged."""
        if not isinstance(name, str):
            raise TypeError("@procedure needs the procedure's name: @procedure('app.name')")

        def decorate(func: Callable) -> Callable:
            self.add(name, func, permission=permission, login_required=login_required, timeout=timeout)
            return func

        return decorate

    def add(self, name: str, func: Callable, *, permission: Permission = None, login_required: bool = True,
            timeout: float | None = None) -> Procedure | None:
        """Declare ``func`` as the procedure ``name``; ``None`` if the name is refused."""
        _check_declaration(func, permission, login_required, timeout)
        try:
            wire.check_topic(name)  # the same rules as topics: valid, and not reserved
        except (TypeError, ValueError):
            why = ("it is under a reserved prefix (wamp., crossbar., djwamp.)" if wire.is_valid_uri(name) else
                   "it is not dot-separated parts of letters, digits, '_' and '-' (at most 255 characters)")
            self.problems.append(Problem(
                "realtime.E006", f"@procedure({name!r}) on {_where(func)} has an invalid name: {why}.",
                "Use dot-separated parts of letters, digits, '_' and '-', outside wamp., crossbar. and "
                "djwamp., such as 'shop.cart.add'."))
            return None
        first = self._procedures.get(name)
        if first is not None and first.where != _where(func):
            self.problems.append(Problem(
                "realtime.E005", f"@procedure({name!r}) is declared twice: on {first.where} and on {_where(func)}.",
                "Rename one of them; starting names with the app label ('shop.add') keeps apps apart."))
            return None
        # the same function again (its module imported twice, or reloaded) replaces itself
        declared = Procedure(name, func, permission, login_required, timeout)
        self._procedures[name] = declared
        return declared

    def get(self, name: str) -> Procedure:
        return self._procedures[name]

    def names(self) -> frozenset[str]:
        return frozenset(self._procedures)

    def __iter__(self) -> Iterator[Procedure]:
        return iter(list(self._procedures.values()))

    def __len__(self) -> int:
        return len(self._procedures)

    def __contains__(self, name: object) -> bool:
        return name in self._procedures


#: the procedures of this process, filled by autodiscovery of the apps' ``procedures`` modules
registry = ProcedureRegistry()


def procedure(name: str, *, permission: Permission = None, login_required: bool = True,
              timeout: float | None = None) -> Callable[[Callable], Callable]:
    """Declare a function that browsers may call as the WAMP procedure ``name``.

    The function (plain or ``async def``) receives a ``CallRequest`` first, then the call's
    positional and keyword arguments. Its return value goes back as JSON (Django's encoder).

    ``login_required`` (default True) refuses anonymous callers; ``permission`` is a Django
    permission (``"app.codename"``) or a callable ``(user) -> bool``; ``timeout`` overrides
    ``REALTIME["RPC_TIMEOUT"]`` (seconds). Refusals are ``djwamp.error.permission_denied``.
    """
    return registry.procedure(name, permission=permission, login_required=login_required, timeout=timeout)


def _check_declaration(func: object, permission: object, login_required: object, timeout: object) -> None:
    """Mistakes in the decorator's arguments fail at import, naming the function."""
    if not callable(func):
        raise TypeError(f"@procedure decorates a function, not {type(func).__name__}")
    where = _where(func)
    if not isinstance(login_required, bool):
        raise TypeError(f"@procedure on {where}: login_required takes True or False")
    if isinstance(permission, str):
        if permission.count(".") != 1:
            raise ValueError(f"@procedure on {where}: permission {permission!r} must look like 'app_label.codename'")
    elif permission is not None and not callable(permission):
        raise TypeError(f"@procedure on {where}: permission is 'app_label.codename' or a function (user) -> bool")
    if timeout is not None and (isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or timeout <= 0):
        raise ValueError(f"@procedure on {where}: timeout is a number of seconds greater than 0, or None")
    if not any(p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD, p.VAR_POSITIONAL)
               for p in inspect.signature(func).parameters.values()):
        raise TypeError(f"@procedure on {where}: the function must take the CallRequest as its first "
                        "argument, e.g. def add(request, a, b)")


def _where(func: object) -> str:
    return f"{getattr(func, '__module__', '?')}.{getattr(func, '__qualname__', repr(func))}"


# -- running a call ---------------------------------------------------------------------------

def call(procedure: Procedure, args: list, kwargs: dict, *, session_id: int | None = None,
         authid: str | None = None, authrole: str | None = None) -> Any:
    """Run a sync procedure for one call, in a worker thread whose DB connections the caller
    freshens (router/django_access.py's pool does). Returns the JSON-safe result."""
    bound = _prepare(procedure, args, kwargs, session_id, authid, authrole)
    return _json_safe(procedure.func(*bound.args, **bound.kwargs))


async def acall(procedure: Procedure, args: list, kwargs: dict, *, session_id: int | None = None,
                authid: str | None = None, authrole: str | None = None) -> Any:
    """Run an ``async def`` procedure for one call, on the running event loop.

    As under Django's ASGI handler, the call's sync work (loading the user, the procedure's own
    ``sync_to_async`` and async ORM calls) runs in one thread of its own; that thread's
    database connections are closed when the call ends, since the thread goes away with it.
    """
    async with ThreadSensitiveContext():
        try:
            bound = await sync_to_async(_prepare)(procedure, args, kwargs, session_id, authid, authrole)
            result = await procedure.func(*bound.args, **bound.kwargs)
        finally:
            await sync_to_async(connections.close_all)()
    return _json_safe(result)


def _prepare(procedure: Procedure, args: list, kwargs: dict, session_id: int | None, authid: str | None,
             authrole: str | None) -> inspect.BoundArguments:
    from django.contrib.auth.models import AnonymousUser  # models: not importable before apps are ready

    user = active_user(authid) if authrole in SIGNED_IN_ROLES and authid else None
    request = CallRequest(user or AnonymousUser(), authid, authrole, session_id, procedure.name)
    check_access(procedure, request.user)
    return bind(procedure, request, args, kwargs)


def check_access(procedure: Procedure, user: Any) -> None:
    """Raise ``LoginRequired`` or ``PermissionDenied`` unless ``user`` may call ``procedure``."""
    if procedure.login_required and not user.is_authenticated:
        raise LoginRequired
    permission = procedure.permission
    if permission is None:
        return
    allowed = user.has_perm(permission) if isinstance(permission, str) else permission(user)
    if not allowed:
        raise PermissionDenied


def bind(procedure: Procedure, request: CallRequest, args: list, kwargs: dict) -> inspect.BoundArguments:
    """The call's arguments bound to the signature, checked before the call, so that a
    ``TypeError`` raised inside the procedure is never mistaken for a bad call."""
    try:
        return procedure.signature.bind(request, *args, **kwargs)
    except TypeError as exc:
        raise InvalidArguments(f"{procedure.name}: {exc}") from None


def _json_safe(value: Any) -> Any:
    """``value`` after a JSON round trip with Django's encoder, as ``publish()`` sends events."""
    return json.loads(_json.dumps(value))


# -- errors -----------------------------------------------------------------------------------

def new_error_id() -> str:
    return secrets.token_hex(6)


def describe_error(exc: BaseException, *, error_id: Callable[[], str] = new_error_id) -> CallError:
    """The WAMP error for what a call raised. Only what the procedure meant to tell the caller
    (validation messages) is passed on; anything unexpected becomes ``INTERNAL`` with a fresh
    ``error_id`` for the server log, and its message stays on the server."""
    if isinstance(exc, InvalidArguments):
        return CallError(errors.INVALID_ARGUMENT, [f"invalid arguments: {exc}"], {"messages": [str(exc)]})
    if isinstance(exc, ValidationError):
        return _validation_error(exc)
    if isinstance(exc, LoginRequired):
        return CallError(errors.PERMISSION_DENIED, ["sign in to call this procedure"], {})
    if isinstance(exc, PermissionDenied):
        return CallError(errors.PERMISSION_DENIED, ["permission denied"], {})
    if isinstance(exc, (ObjectDoesNotExist, Http404)):
        return CallError(errors.NOT_FOUND, ["not found"], {})
    ident = error_id()
    return CallError(errors.INTERNAL, [f"internal error (error id {ident})"], {"error_id": ident})


def _validation_error(exc: ValidationError) -> CallError:
    if hasattr(exc, "error_dict"):
        by_field = {name: [str(m) for m in messages] for name, messages in exc.message_dict.items()}
        summary = "; ".join(m if name == NON_FIELD_ERRORS else f"{name}: {m}"
                            for name, messages in by_field.items() for m in messages)
        return CallError(errors.INVALID_ARGUMENT, [summary], {"errors": by_field})
    messages = [str(m) for m in exc.messages]
    return CallError(errors.INVALID_ARGUMENT, ["; ".join(messages)], {"messages": messages})
