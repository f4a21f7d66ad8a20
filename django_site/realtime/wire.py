"""The djwamp event wire format: one Redis stream entry per event (version 1).

This module is the single definition of what Django (``realtime.publish``) writes and what
the router's bridge reads. It is pure Python -- no Django, no Twisted, no Redis client -- so
both sides import it, and docs/ref/wire-protocol.md specifies the same thing for publishers
written in other languages (a plain ``XADD`` is enough).

An entry is a flat map of string fields::

    v        "1"                        required, the format version
    topic    "public.scores"            required, a WAMP URI
    args     '[1, "two"]'               optional, a JSON array   (default [])
    kwargs   '{"text": "hi"}'           optional, a JSON object  (default {})
    eligible '["12", "40"]'             optional, JSON array of WAMP authids: deliver only to them
    exclude  '["12"]'                   optional, JSON array of WAMP authids: never deliver to them

A *control* entry revokes access instead of carrying an event (djwamp writes these itself
when a user logs out, changes password or is deactivated)::

    v        "1"
    control  "kill_user" | "kill_session"
    authid   "42"                       the WAMP authid (the user's primary key)
    session  "9f2c..."                  kill_session only: the session's fingerprint

The event id is the entry's stream id (``<milliseconds>-<sequence>``), assigned by Redis;
its millisecond part is the publish time used for the maximum-age rule. Readers reject
entries with fields they do not know, so a newer publisher can never have a restriction
such as ``eligible`` silently ignored by an older bridge.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = [
    "VERSION",
    "FIELDS",
    "RESERVED_PREFIXES",
    "BROWSER_ROLES",
    "SIGNED_IN_ROLES",
    "URI_RE",
    "MAX_TOPIC_LENGTH",
    "RESERVED_KWARGS",
    "CONTROL_ACTIONS",
    "Event",
    "Control",
    "MalformedEntry",
    "encode_control",
    "check_topic",
    "is_valid_uri",
    "encode_event",
    "decode_entry",
    "entry_timestamp_ms",
]

VERSION = 1
EVENT_FIELDS = frozenset({"v", "topic", "args", "kwargs", "eligible", "exclude"})
CONTROL_FIELDS = frozenset({"v", "control", "authid", "session"})
FIELDS = EVENT_FIELDS | CONTROL_FIELDS
CONTROL_ACTIONS = frozenset({"kill_user", "kill_session"})

#: URI prefixes that belong to the router and to djwamp itself; nobody publishes there, and no
#: rule reaches them for a browser (the router's meta API carries other users' transport
#: details; djwamp.* is djwamp's own control plane).
RESERVED_PREFIXES = ("wamp.", "crossbar.", "djwamp.")
#: the roles djwamp.authenticate hands out to browsers ("backend" is only on the node's socket)
BROWSER_ROLES = ("anonymous", "user", "staff")
#: the browser roles of a signed-in user; any other caller is anonymous
SIGNED_IN_ROLES = ("user", "staff")
MAX_TOPIC_LENGTH = 255
#: Keyword-argument names no event may carry: autobahn's Python ``publish(topic, *args,
#: options=..., **kwargs)`` takes these for itself, so the bridge could not deliver them.
RESERVED_KWARGS = frozenset({"options", "topic"})

#: A subset of WAMP's "loose" URIs that every router accepts: dot-separated, non-empty
#: components of letters, digits, "_" and "-" (topics, procedures, realms, node ids).
URI_RE = re.compile(r"[0-9A-Za-z_\-]+(?:\.[0-9A-Za-z_\-]+)*")
_ENTRY_ID_RE = re.compile(r"(\d+)-(\d+)")


class MalformedEntry(ValueError):
    """A stream entry that is not a valid version-1 event.

    The message names what is wrong and never contains the payload.
    """


@dataclass(frozen=True, slots=True)
class Event:
    """One event as read from the stream."""

    id: str
    topic: str
    args: list[Any]
    kwargs: dict[str, Any]
    eligible: tuple[str, ...] | None = None
    exclude: tuple[str, ...] | None = None

    @property
    def timestamp_ms(self) -> int:
        """When Redis accepted the event, in milliseconds since the epoch."""
        return entry_timestamp_ms(self.id)


@dataclass(frozen=True, slots=True)
class Control:
    """A revocation read from the stream: close a user's (or one Django session's) connections."""

    id: str
    action: str
    authid: str
    session: str | None = None


def encode_control(action: str, authid: str, session: str | None = None) -> dict[str, str]:
    if action not in CONTROL_ACTIONS:
        raise ValueError(f"unknown control action {action!r}; use {sorted(CONTROL_ACTIONS)}")
    _authid("authid", authid)
    if (action == "kill_session") != (session is not None):
        raise ValueError("kill_session needs a session fingerprint, and only it takes one")
    fields = {"v": str(VERSION), "control": action, "authid": authid}
    if session is not None:
        fields["session"] = _authid("session", session)
    return fields


def is_valid_uri(value: object) -> bool:
    """True for a URI made of the characters djwamp allows (no reserved-prefix rule)."""
    return isinstance(value, str) and len(value) <= MAX_TOPIC_LENGTH and URI_RE.fullmatch(value) is not None


def check_topic(topic: object) -> str:
    """Return ``topic`` if it is a valid, non-reserved djwamp topic URI.

    Raises ``TypeError`` for a non-string and ``ValueError`` naming the rule it breaks.
    """
    if not isinstance(topic, str):
        raise TypeError(f"a topic must be a str, not {type(topic).__name__}")
    if len(topic) > MAX_TOPIC_LENGTH:
        raise ValueError(f"topic is {len(topic)} characters long; the limit is {MAX_TOPIC_LENGTH}")
    if not URI_RE.fullmatch(topic):
        raise ValueError(
            f"invalid topic {topic!r}: use dot-separated, non-empty parts of letters, digits, "
            "'_' and '-' (for example 'public.scores' or 'user.42.inbox')"
        )
    for prefix in RESERVED_PREFIXES:
        if topic.startswith(prefix) or topic == prefix[:-1]:
            raise ValueError(f"topic {topic!r} is reserved: nothing may publish under {prefix!r}")
    return topic


def encode_event(
    topic: str,
    args: Sequence[Any] = (),
    kwargs: Mapping[str, Any] | None = None,
    *,
    eligible: Sequence[str] | None = None,
    exclude: Sequence[str] | None = None,
    dumps: Callable[[Any], str] = json.dumps,
) -> dict[str, str]:
    """Build the fields of a stream entry.

    ``dumps`` turns a value into JSON text (Django passes one with its own encoder);
    its ``TypeError``/``ValueError`` propagate to the caller unchanged.
    """
    check_topic(topic)
    fields = {"v": str(VERSION), "topic": topic}
    if args:
        fields["args"] = dumps(list(args))
    if kwargs:
        reserved = RESERVED_KWARGS.intersection(kwargs)
        if reserved:
            raise ValueError(f"keyword argument(s) {', '.join(sorted(reserved))} cannot be published: "
                             "the name is reserved by WAMP client libraries")
        fields["kwargs"] = dumps(dict(kwargs))
    for name, authids in (("eligible", eligible), ("exclude", exclude)):
        if isinstance(authids, (str, bytes)):
            raise TypeError(f"{name} must be a list of authids, not a single {type(authids).__name__}")
        if authids is not None:
            fields[name] = json.dumps([_authid(name, a) for a in authids])
    return fields


def _authid(field: str, value: object) -> str:
    if not isinstance(value, str) or not value:
        raise TypeError(f"{field} must list authids as non-empty strings, got {value!r}")
    return value


def entry_timestamp_ms(entry_id: str) -> int:
    """The millisecond part of a stream id such as ``"1700000000000-0"``."""
    match = _ENTRY_ID_RE.fullmatch(entry_id)
    if match is None:
        raise MalformedEntry(f"not a stream entry id: {entry_id[:40]!r}")
    return int(match.group(1))


def decode_entry(entry_id: str | bytes, fields: Mapping[str | bytes, str | bytes], *,
                 max_payload_bytes: int | None = None) -> Event | Control:
    """Parse one stream entry, raising ``MalformedEntry`` with a payload-free reason.

    ``max_payload_bytes`` applies the publisher's size limit to entries written by other
    languages too (args and kwargs together, as UTF-8).
    """
    entry_id = _text(entry_id, "entry id")
    entry_timestamp_ms(entry_id)
    data = {_text(k, "field name"): _text(v, "field value") for k, v in fields.items()}
    if max_payload_bytes is not None:
        size = sum(len(data.get(name, "").encode("utf-8", "surrogatepass")) for name in ("args", "kwargs"))
        if size > max_payload_bytes:
            raise MalformedEntry(f"payload is {size} bytes; the limit is {max_payload_bytes}")

    if data.get("v") != str(VERSION):
        raise MalformedEntry(f"unsupported version {data.get('v', '<missing>')[:10]!r}")
    known = CONTROL_FIELDS if "control" in data else EVENT_FIELDS
    unknown = sorted(set(data) - known)
    if unknown:
        raise MalformedEntry(f"unknown field(s) {', '.join(unknown)[:80]}")
    if "control" in data:
        return _decode_control(entry_id, data)
    try:
        topic = check_topic(data.get("topic"))
    except (TypeError, ValueError) as exc:
        raise MalformedEntry(f"bad topic: {exc}") from None

    args = _json_field(data, "args", list, [])
    kwargs = _json_field(data, "kwargs", dict, {})
    if RESERVED_KWARGS.intersection(kwargs):
        raise MalformedEntry(f"kwargs use a reserved name ({', '.join(sorted(RESERVED_KWARGS))})")
    eligible = _authids_field(data, "eligible")
    exclude = _authids_field(data, "exclude")
    return Event(entry_id, topic, args, kwargs, eligible, exclude)


def _decode_control(entry_id: str, data: Mapping[str, str]) -> Control:
    action, authid, session = data["control"], data.get("authid", ""), data.get("session")
    if action not in CONTROL_ACTIONS:
        raise MalformedEntry(f"unknown control action {action[:20]!r}")
    if not authid or (action == "kill_session") != bool(session):
        raise MalformedEntry(f"{action} needs an authid{' and a session' if action == 'kill_session' else ''}")
    return Control(entry_id, action, authid, session)


def _text(value: str | bytes, what: str) -> str:
    if isinstance(value, bytes):
        try:
            return value.decode("utf-8")
        except UnicodeDecodeError:
            raise MalformedEntry(f"{what} is not UTF-8") from None
    if isinstance(value, str):
        return value
    raise MalformedEntry(f"{what} has type {type(value).__name__}")


def _json_field(data: Mapping[str, str], name: str, kind: type, default: Any) -> Any:
    if name not in data:
        return default
    try:
        value = _DECODER.decode(data[name])
    except (ValueError, RecursionError):
        # RecursionError: absurdly deep nesting must not stop the bridge
        raise MalformedEntry(f"{name} is not valid JSON") from None
    if not isinstance(value, kind):
        raise MalformedEntry(f"{name} must be a JSON {'array' if kind is list else 'object'}")
    return value


def _reject_constant(name: str) -> None:
    raise ValueError(f"{name} is not JSON")


#: one decoder for every field: ``json.loads`` with an argument builds a new one per call
_DECODER = json.JSONDecoder(parse_constant=_reject_constant)


def _authids_field(data: Mapping[str, str], name: str) -> tuple[str, ...] | None:
    if name not in data:
        return None
    authids = _json_field(data, name, list, [])
    if not all(isinstance(a, str) and a for a in authids):
        raise MalformedEntry(f"{name} must be a JSON array of non-empty strings")
    return tuple(authids)
