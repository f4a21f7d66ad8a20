"""Revocation: logging out, a password change, deactivation or deletion closes that user's
WAMP connections, on every node, through the stream the bridge reads.

Signals send a control entry once the transaction commits. Failing to reach Redis never
breaks the logout or the save: it is logged, and the router's periodic re-validation of
every connected session (``REVALIDATE_INTERVAL``) closes the connection a little later.
"""

from __future__ import annotations

import logging

import redis
from django.contrib.auth import get_user_model
from django.contrib.auth.signals import user_logged_out
from django.db import transaction
from django.db.models.signals import post_delete, post_save, pre_save

from . import wire
from ._conf import get_settings
from ._identity import fingerprint
from ._publish import redis_client

logger = logging.getLogger("realtime.revocation")

_REVOKE_ATTR = "_realtime_revoke_connections"


def connect_signals() -> None:
    user_model = get_user_model()
    user_logged_out.connect(_logged_out, dispatch_uid="realtime.revocation.logged_out")
    pre_save.connect(_before_save, sender=user_model, dispatch_uid="realtime.revocation.pre_save")
    post_save.connect(_after_save, sender=user_model, dispatch_uid="realtime.revocation.post_save")
    post_delete.connect(_deleted, sender=user_model, dispatch_uid="realtime.revocation.post_delete")


def revoke_user(user_pk: object) -> None:
    """Close every WAMP connection of this user (on commit of the current transaction)."""
    _send_on_commit(wire.encode_control("kill_user", str(user_pk)))


def revoke_session(user_pk: object, session_key: str) -> None:
    """Close the WAMP connections that came from this Django session only."""
    _send_on_commit(wire.encode_control("kill_session", str(user_pk), fingerprint(session_key)))


def _logged_out(sender, request=None, user=None, **kwargs) -> None:
    if user is None or request is None:
        return
    session_key = getattr(getattr(request, "session", None), "session_key", None)
    if session_key and not _session_key_changes_on_save():
        revoke_session(user.pk, session_key)
    else:
        # signed-cookie sessions get a new key whenever they are saved: the key this logout
        # sees may not be the one a WebSocket connected with, so close all of the user's
        revoke_user(user.pk)


def _session_key_changes_on_save() -> bool:
    from django.conf import settings

    return settings.SESSION_ENGINE == "django.contrib.sessions.backends.signed_cookies"


def _before_save(sender, instance, raw=False, update_fields=None, **kwargs) -> None:
    # a flag left by an earlier save whose write failed must not fire on this one
    setattr(instance, _REVOKE_ATTR, False)
    if raw or instance.pk is None:
        return
    watched = [name for name in ("password", "is_active", "is_staff") if _is_field(sender, name)]
    if update_fields is not None:
        watched = [name for name in watched if name in update_fields]
    if not watched:
        return
    old = sender._default_manager.filter(pk=instance.pk).values(*watched).first()
    if old is None:
        return
    password_changed = "password" in old and old["password"] != instance.password
    deactivated = old.get("is_active") and not getattr(instance, "is_active", True)
    # a demoted staff member must not keep the staff role on open connections
    demoted = old.get("is_staff") and not getattr(instance, "is_staff", False)
    setattr(instance, _REVOKE_ATTR, bool(password_changed or deactivated or demoted))


def _after_save(sender, instance, created=False, **kwargs) -> None:
    if getattr(instance, _REVOKE_ATTR, False):
        setattr(instance, _REVOKE_ATTR, False)
        revoke_user(instance.pk)


def _deleted(sender, instance, **kwargs) -> None:
    revoke_user(instance.pk)


def _is_field(model, name: str) -> bool:
    try:
        return model._meta.get_field(name).concrete
    except Exception:
        return False


def _send_on_commit(fields: dict[str, str]) -> None:
    transaction.on_commit(lambda: _send(fields), robust=True)


def _send(fields: dict[str, str]) -> None:
    conf = get_settings()
    try:
        redis_client(conf).xadd(conf.STREAM, fields, maxlen=conf.STREAM_MAXLEN, approximate=True)
    except redis.RedisError as exc:
        logger.warning("could not send %s for user %s to Redis at %s (%s); the router's re-validation "
                       "will close the connections within REALTIME['REVALIDATE_INTERVAL']",
                       fields["control"], fields["authid"], conf.redis_display, exc)
