"""publish(): validate an event at the call site, then XADD it to the Redis stream."""

from __future__ import annotations

import functools
import uuid
from collections.abc import Iterable
from typing import Any

import redis
from django.db import transaction
from redis.backoff import NoBackoff
from redis.retry import Retry

from . import _json, wire
from ._conf import RealtimeSettings, get_settings
from ._exceptions import RedisUnavailable

#: keyword arguments publish() takes for itself; an event's kwargs cannot use these names
OWN_KWARGS = ("on_commit", "users", "exclude_users")


def publish(topic: str, /, *args: Any, on_commit: bool = False, users: Iterable[Any] | None = None,
            exclude_users: Iterable[Any] | None = None, **kwargs: Any) -> str | None:
    """Publish an event to every browser subscribed to ``topic``.

    ``args`` and ``kwargs`` reach subscribers exactly as given, after a JSON round trip
    with Django's encoder (dates, decimals, UUIDs, lazy strings). Returns the event id.

    ``users`` delivers only to the connections of these users (user objects or primary
    keys; an empty list reaches nobody); ``exclude_users`` never to theirs. Subscribing is
    still decided by the rules: this narrows who receives, it does not open a topic.

    With ``on_commit=True`` the event is validated now and written when the current
    database transaction commits (never if it rolls back); the call then returns ``None``.

    Raises ``TypeError``/``ValueError`` for a bad topic or payload, and
    ``RedisUnavailable`` when Redis does not take the event within ``REDIS_TIMEOUT``.
    """
    if not isinstance(on_commit, bool):
        raise TypeError(f"publish(on_commit=...) takes True or False, not {on_commit!r} "
                        "(a payload keyword argument cannot be named on_commit)")
    conf = get_settings()
    fields = _encode(conf, topic, args, kwargs, _authids("users", users), _authids("exclude_users", exclude_users))
    if on_commit:
        transaction.on_commit(functools.partial(_xadd, conf, fields))
        return None
    return _xadd(conf, fields)


def publish_on_commit(topic: str, /, *args: Any, users: Iterable[Any] | None = None,
                      exclude_users: Iterable[Any] | None = None, **kwargs: Any) -> None:
    """``publish(topic, *args, on_commit=True, **kwargs)``: send once the transaction commits."""
    publish(topic, *args, on_commit=True, users=users, exclude_users=exclude_users, **kwargs)


def _authids(name: str, users: Iterable[Any] | None) -> list[str] | None:
    """WAMP authids (primary keys as strings) of users given as objects or primary keys."""
    if users is None:
        return None
    if isinstance(users, (str, bytes)) or not isinstance(users, Iterable):
        raise TypeError(f"publish({name}=...) takes a list of users or primary keys, not {type(users).__name__}")
    authids = []
    for user in users:
        pk = getattr(user, "pk", user)
        if pk is None or isinstance(pk, (bool, float)) or not isinstance(pk, (int, str, uuid.UUID)) or pk == "":
            raise TypeError(f"publish({name}=...): {user!r} is neither a saved user nor a primary key")
        authids.append(str(pk))
    return authids


def _encode(conf: RealtimeSettings, topic: object, args: tuple, kwargs: dict,
            eligible: list[str] | None = None, exclude: list[str] | None = None) -> dict[str, str]:
    wire.check_topic(topic)
    if not topic.startswith(conf.TOPIC_PREFIXES):
        raise ValueError(
            f"topic {topic!r} is not under REALTIME['TOPIC_PREFIXES'] "
            f"({', '.join(conf.TOPIC_PREFIXES)}); add its prefix there if it is intended"
        )
    try:
        fields = wire.encode_event(topic, args, kwargs, eligible=eligible, exclude=exclude, dumps=_json.dumps)
        size = sum(len(fields.get(name, "").encode()) for name in ("args", "kwargs"))
    except (TypeError, ValueError) as exc:
        # TypeError or ValueError (a lone surrogate: UnicodeEncodeError) with the topic named
        kind = TypeError if isinstance(exc, TypeError) else ValueError
        raise kind(f"publish({topic!r}): {exc}") from exc
    except RecursionError:
        # json.dumps recurses per level: a cycle is a ValueError, absurd depth lands here
        raise ValueError(f"publish({topic!r}): the payload is nested too deeply to encode") from None
    if size > conf.MAX_PAYLOAD_BYTES:
        raise ValueError(
            f"publish({topic!r}): the payload is {size} bytes of JSON; the limit is "
            f"REALTIME['MAX_PAYLOAD_BYTES'] = {conf.MAX_PAYLOAD_BYTES}. Publish an id and let "
            "the browser fetch the data instead."
        )
    return fields


def _xadd(conf: RealtimeSettings, fields: dict[str, str]) -> str:
    try:
        entry_id = redis_client(conf).xadd(
            conf.STREAM, fields, maxlen=conf.STREAM_MAXLEN, approximate=True
        )
    except redis.RedisError as exc:
        raise RedisUnavailable(
            f"Redis at {conf.redis_display} did not take the event for {fields['topic']!r} "
            f"(timeout {conf.REDIS_TIMEOUT} s): {exc}"
        ) from exc
    return entry_id.decode() if isinstance(entry_id, bytes) else entry_id


def redis_client(conf: RealtimeSettings) -> redis.Redis:
    """The process's client for ``REALTIME["REDIS_URL"]`` (fork-safe: redis-py re-pools per PID)."""
    return _client(conf.REDIS_URL, conf.REDIS_TIMEOUT)


@functools.cache
def _client(url: str, timeout: float) -> redis.Redis:
    # One retry, on connection errors only: it replaces a pooled connection that a Redis
    # restart closed, and cannot write an event twice (a timed-out XADD is not retried).
    return redis.Redis.from_url(
        url,
        socket_timeout=timeout,
        socket_connect_timeout=timeout,
        retry=Retry(NoBackoff(), 1, supported_errors=(redis.ConnectionError,)),
        retry_on_timeout=False,
        health_check_interval=30,
    )
