"""Who a WAMP client is, in Django's terms: from a session cookie or from a ticket.

Called by the router's authenticator (in its Django thread pool), never by request code,
except ``issue_ticket`` which the ticket view uses. Nothing here mutates a session: Django's
own ``get_user()`` would flush or re-key it, which a WebSocket upgrade must not do.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from importlib import import_module

import redis
from django.conf import settings
from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY, get_user_model, load_backend
from django.core import signing
from django.core.exceptions import ValidationError
from django.utils.crypto import constant_time_compare, salted_hmac

from ._conf import get_settings
from ._exceptions import RealtimeError, RedisUnavailable
from ._publish import redis_client

__all__ = ["Identity", "TicketRefused", "active_user", "anonymous_identity", "fingerprint",
           "identity_from_session_key", "issue_ticket", "redeem_ticket"]

TICKET_SALT = "djwamp.ticket"
_TICKET_KEY = "djwamp:ticket:{}"
_MAX_TOKEN_LENGTH = 1024


class TicketRefused(RealtimeError):
    """A ticket that is expired, tampered with, replayed or whose session has ended.

    The reason is for the server log; the client is told only that it was refused.
    """


@dataclass(frozen=True)
class Identity:
    role: str
    authid: str
    authextra: dict = field(default_factory=dict)
    #: the Django session this identity came from; kept in the router's memory, never sent
    session_key: str | None = field(default=None, repr=False)
    #: when that session expires (epoch seconds), if it does
    expires_at: float | None = None

    @property
    def fingerprint(self) -> str | None:
        return fingerprint(self.session_key) if self.session_key else None


def fingerprint(session_key: str) -> str:
    """A stable, non-reversible name for a Django session (safe to log and to send)."""
    return salted_hmac("djwamp.session-fingerprint", session_key, algorithm="sha256").hexdigest()[:32]


def anonymous_identity() -> Identity:
    return Identity("anonymous", f"anonymous-{secrets.token_hex(8)}", {"authenticated": False})


def active_user(authid: object):
    """The active user whose primary key is the WAMP ``authid``, or ``None``."""
    model = get_user_model()
    try:
        user = model._default_manager.get(pk=model._meta.pk.to_python(authid))
    except (model.DoesNotExist, ValidationError, ValueError, TypeError):
        return None
    return user if getattr(user, "is_active", True) else None


def identity_from_session_key(session_key: str) -> Identity | None:
    """The signed-in, active user of a valid session, or ``None`` -- as Django itself decides."""
    if not session_key or len(session_key) > 4096:
        return None
    store = import_module(settings.SESSION_ENGINE).SessionStore(session_key)
    # A bad or tampered key loads as an empty session; an unreachable database or cache
    # raises, and must: "the session store is down" is not "this session is invalid".
    data = store.load()
    user = _session_user(data)
    if user is None:
        return None
    return Identity(
        role="staff" if user.is_staff else "user",
        authid=str(user.pk),
        authextra={
            "authenticated": True,
            "username": user.get_username(),
            "name": user.get_full_name() if hasattr(user, "get_full_name") else user.get_username(),
            "is_staff": bool(user.is_staff),
        },
        session_key=session_key,
        expires_at=_expires_at(store, data),
    )


def _expires_at(store, data: dict) -> float | None:
    """When the session ends (epoch seconds), as exactly as its engine can tell.

    A database-backed store knows its row's expiry date; for the others, Django computes
    one from the session's lifetime, which is an upper bound (the periodic re-validation
    catches an earlier end).
    """
    model = getattr(store, "model", None)
    if model is not None and hasattr(store, "_get_session_from_db"):
        row = model.objects.filter(session_key=store.session_key).values_list("expire_date", flat=True).first()
        if row is not None:
            return row.timestamp()
    if data.get("_session_expiry") is None and settings.SESSION_EXPIRE_AT_BROWSER_CLOSE:
        return None
    return store.get_expiry_date().timestamp()


def _session_user(data: dict):
    try:
        user_id = get_user_model()._meta.pk.to_python(data[SESSION_KEY])
        backend_path = data[BACKEND_SESSION_KEY]
    except (KeyError, ValidationError, TypeError, ValueError):
        return None
    if backend_path not in settings.AUTHENTICATION_BACKENDS:
        return None
    user = load_backend(backend_path).get_user(user_id)
    if user is None or not getattr(user, "is_active", True):
        return None
    if hasattr(user, "get_session_auth_hash"):
        # the session dies with a password change, as in django.contrib.auth.get_user()
        stored = data.get(HASH_SESSION_KEY)
        if not stored or not _hash_matches(user, stored):
            return None
    return user


def _hash_matches(user, stored: str) -> bool:
    if constant_time_compare(stored, user.get_session_auth_hash()):
        return True
    # the hook custom user models override (Django 5.1+), as django.contrib.auth.get_user() uses
    fallbacks = getattr(user, "get_session_auth_fallback_hash", None)
    return fallbacks is not None and any(constant_time_compare(stored, candidate) for candidate in fallbacks())


def issue_ticket(request) -> tuple[str, int]:
    """A signed, single-use ticket for the request's user (or anonymous); returns (ticket, seconds)."""
    user = request.user
    if user.is_authenticated:
        if not request.session.session_key:
            request.session.save()
        return mint_ticket(request.session.session_key, str(user.pk))
    return mint_ticket("", None)


def mint_ticket(session_key: str, authid: str | None) -> tuple[str, int]:
    """A ticket for the user ``authid`` of ``session_key`` (``None``, "": anonymous).

    The caller vouches that the session belongs to that user (the ticket view and the
    fallback gateway both checked it); redeeming checks it again.
    """
    conf = get_settings()
    nonce = secrets.token_urlsafe(18)
    try:
        redis_client(conf).set(_TICKET_KEY.format(nonce), session_key or "-", ex=conf.TICKET_MAX_AGE)
    except redis.RedisError as exc:
        raise RedisUnavailable(f"Redis at {conf.redis_display} could not store the ticket: {exc}") from exc
    token = signing.dumps({"n": nonce, "u": authid}, salt=TICKET_SALT, compress=False)
    return token, conf.TICKET_MAX_AGE


def redeem_ticket(token: object) -> Identity:
    """The identity a ticket stands for; raises ``TicketRefused``. A ticket works once."""
    conf = get_settings()
    if not isinstance(token, str) or not token or len(token) > _MAX_TOKEN_LENGTH:
        raise TicketRefused("not a ticket")
    try:
        data = signing.loads(token, salt=TICKET_SALT, max_age=conf.TICKET_MAX_AGE)
    except signing.SignatureExpired:
        raise TicketRefused("expired") from None
    except signing.BadSignature:
        raise TicketRefused("bad signature") from None
    if not isinstance(data, dict) or not isinstance(data.get("n"), str):
        raise TicketRefused("bad content")
    try:
        stored = redis_client(conf).getdel(_TICKET_KEY.format(data["n"]))
    except redis.RedisError as exc:
        raise RedisUnavailable(f"Redis at {conf.redis_display} could not check the ticket: {exc}") from exc
    if stored is None:
        raise TicketRefused("already used or unknown")
    if data.get("u") is None:
        if not conf.ALLOW_ANONYMOUS:
            raise TicketRefused("anonymous access is disabled")
        return anonymous_identity()
    identity = identity_from_session_key(stored.decode() if isinstance(stored, bytes) else stored)
    if identity is None or identity.authid != data["u"]:
        raise TicketRefused("its session has ended")
    return identity
