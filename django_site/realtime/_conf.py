"""The one accessor for djwamp's settings: ``settings.REALTIME``, read lazily and validated."""

from __future__ import annotations

import difflib
import functools
from dataclasses import dataclass, fields
from urllib.parse import urlsplit

from django.conf import settings as django_settings
from django.core.exceptions import ImproperlyConfigured
from django.core.signals import setting_changed
from django.dispatch import receiver

from . import _history, _rules, wire

DEFAULTS = {
    "REALM": "djwamp",
    "REDIS_URL": "redis://localhost:6379/0",
    "REDIS_TIMEOUT": 2.0,
    "STREAM": "djwamp:events",
    "STREAM_MAXLEN": 100_000,
    "MAX_PAYLOAD_BYTES": 64 * 1024,
    "MAX_EVENT_AGE": 300.0,
    "TOPIC_PREFIXES": ("public.", "user.", "staff."),
    "ALLOW_ANONYMOUS": True,
    "RULES": _rules.DEFAULT_RULES,
    "HISTORY": {},
    "HISTORY_TTL": 86400,
    "TICKET_MAX_AGE": 30,
    "REVALIDATE_INTERVAL": 60.0,
    "RPC_WORKERS": 16,
    "RPC_QUEUE": 64,
    "RPC_TIMEOUT": 30.0,
    "MAX_CONNECTIONS_PER_IP": 100,
    "AUTH_FAILURES_PER_MINUTE": 20,
    "GATEWAY_MAX_SESSIONS": 10_000,
    "GATEWAY_MAX_SESSIONS_PER_COOKIE": 20,
    "GATEWAY_MAX_SUBSCRIPTIONS": 100,
}


@dataclass(frozen=True, eq=False)
class RealtimeSettings:
    """``settings.REALTIME`` merged over the defaults; see docs/ref/settings.md."""

    REALM: str
    REDIS_URL: str
    REDIS_TIMEOUT: float
    STREAM: str
    STREAM_MAXLEN: int
    MAX_PAYLOAD_BYTES: int
    MAX_EVENT_AGE: float
    TOPIC_PREFIXES: tuple[str, ...]
    ALLOW_ANONYMOUS: bool
    RULES: tuple[dict, ...]
    HISTORY: dict
    HISTORY_TTL: int
    TICKET_MAX_AGE: int
    REVALIDATE_INTERVAL: float
    RPC_WORKERS: int
    RPC_QUEUE: int
    RPC_TIMEOUT: float
    MAX_CONNECTIONS_PER_IP: int
    AUTH_FAILURES_PER_MINUTE: int
    GATEWAY_MAX_SESSIONS: int
    GATEWAY_MAX_SESSIONS_PER_COOKIE: int
    GATEWAY_MAX_SUBSCRIPTIONS: int

    @functools.cached_property
    def history(self) -> _history.HistoryPolicy:
        """``HISTORY`` parsed (validated by the system checks)."""
        return _history.parse_history(self.HISTORY)

    @functools.cached_property
    def rules(self) -> _rules.RuleSet:
        """``RULES`` parsed (validated by the system checks, so this does not fail at run time)."""
        return _rules.parse_rules(self.RULES)

    @property
    def redis_display(self) -> str:
        """The Redis URL without credentials, for messages and logs."""
        return redact_url(self.REDIS_URL)


@dataclass(frozen=True)
class Problem:
    id: str
    msg: str
    hint: str


def redact_url(url: str) -> str:
    """``url`` with any user and password replaced by ``***``."""
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url
    return parts._replace(netloc="***@" + parts.netloc.rpartition("@")[2]).geturl()


def _positive_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0


def _positive_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


def _non_negative_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _uri(value: object) -> bool:
    try:
        wire.check_topic(value)
    except (TypeError, ValueError):
        return False
    return True


def _topic_prefix(value: object) -> bool:
    return isinstance(value, str) and value.endswith(".") and _uri(value[:-1])


_VALIDATORS = {
    "REALM": (wire.is_valid_uri, "a realm name such as 'djwamp'"),
    "REDIS_URL": (lambda v: isinstance(v, str) and urlsplit(v).scheme in {"redis", "rediss", "unix"},
                  "a redis://, rediss:// or unix:// URL"),
    "REDIS_TIMEOUT": (_positive_number, "a number of seconds greater than 0"),
    "STREAM": (lambda v: isinstance(v, str) and bool(v), "a non-empty Redis key"),
    "STREAM_MAXLEN": (_positive_int, "a whole number of entries greater than 0"),
    "MAX_PAYLOAD_BYTES": (_positive_int, "a whole number of bytes greater than 0"),
    "MAX_EVENT_AGE": (_positive_number, "a number of seconds greater than 0"),
    "TOPIC_PREFIXES": (lambda v: isinstance(v, (list, tuple)) and bool(v) and all(map(_topic_prefix, v)),
                       "a non-empty list of URI prefixes ending in '.', such as ['public.', 'user.']"),
    "ALLOW_ANONYMOUS": (lambda v: isinstance(v, bool), "True or False"),
    "TICKET_MAX_AGE": (_positive_int, "a whole number of seconds greater than 0 (tickets are short-lived: 30)"),
    "HISTORY_TTL": (_positive_int, "a whole number of seconds greater than 0 (a topic's history is dropped "
                                   "after that long without events)"),
    "REVALIDATE_INTERVAL": (_positive_number, "a number of seconds greater than 0"),
    "RPC_WORKERS": (_positive_int, "a whole number of threads greater than 0 (default 16)"),
    "RPC_QUEUE": (_non_negative_int, "a whole number of calls, 0 or more (default 64)"),
    "RPC_TIMEOUT": (_positive_number, "a number of seconds greater than 0 (default 30)"),
    "MAX_CONNECTIONS_PER_IP": (_non_negative_int, "a whole number of sessions, 0 for no limit (default 100)"),
    "AUTH_FAILURES_PER_MINUTE": (_non_negative_int, "a whole number of failed authentications, 0 for no limit "
                                                    "(default 20)"),
    "GATEWAY_MAX_SESSIONS": (_non_negative_int, "a whole number of sessions, 0 for no limit (default 10000)"),
    "GATEWAY_MAX_SESSIONS_PER_COOKIE": (_non_negative_int, "a whole number of sessions, 0 for no limit "
                                                           "(default 20)"),
    "GATEWAY_MAX_SUBSCRIPTIONS": (_non_negative_int, "a whole number of subscriptions, 0 for no limit "
                                                     "(default 100)"),
}


def find_problems(value: object) -> list[Problem]:
    """Everything wrong with a REALTIME value; empty when it is usable."""
    if not isinstance(value, dict):
        return [Problem("realtime.E001", f"REALTIME must be a dict, not {type(value).__name__}.",
                        "Set REALTIME = {...} in your settings, or remove it to use the defaults.")]
    problems = []
    for key in sorted(set(value) - set(DEFAULTS)):
        close = difflib.get_close_matches(str(key), DEFAULTS, n=1)
        hint = f"Did you mean {close[0]!r}?" if close else f"Known keys: {', '.join(DEFAULTS)}."
        problems.append(Problem("realtime.E002", f"REALTIME has an unknown key {key!r}.", hint))
    for key, (is_valid, expected) in _VALIDATORS.items():
        if key in value and not is_valid(value[key]):
            shown = redact_url(value[key]) if key == "REDIS_URL" and isinstance(value[key], str) else value[key]
            problems.append(Problem("realtime.E003", f"REALTIME[{key!r}] is {shown!r}.", f"Use {expected}."))
    if "HISTORY" in value:
        try:
            _history.parse_history(value["HISTORY"])
        except _history.HistoryError as exc:
            problems.append(Problem("realtime.E007", f"REALTIME['HISTORY'] is not usable: {exc}.",
                                    "Map topics or prefixes ending in '.' to a number of events, e.g. "
                                    "{'public.feed': 100, 'user.': 20}."))
    if "RULES" in value:
        try:
            rules = _rules.parse_rules(value["RULES"])
        except _rules.RuleError as exc:
            problems.append(Problem("realtime.E004", f"REALTIME['RULES'] is not usable: {exc}.",
                                    "Each rule is a dict with 'uri' and 'allow', see docs/ref/settings.md#rules."))
        else:
            problems.extend(_unimportable_checks(rules))
    return problems


def _unimportable_checks(rules: _rules.RuleSet) -> list[Problem]:
    from django.utils.module_loading import import_string

    problems = []
    for rule in rules.rules:
        if rule.check is None:
            continue
        try:
            import_string(rule.check)
        except Exception as exc:  # ImportError, or the module itself failing as it loads
            problems.append(Problem("realtime.E004", f"REALTIME['RULES'][{rule.index}] check {rule.check!r} "
                                    f"cannot be imported ({exc}).",
                                    "Point 'check' at a function (user, uri, action) -> bool."))
    return problems


@functools.cache
def get_settings() -> RealtimeSettings:
    """The validated settings; raises ``ImproperlyConfigured`` naming the first problem."""
    configured = getattr(django_settings, "REALTIME", {})
    problems = find_problems(configured)
    if problems:
        first = problems[0]
        raise ImproperlyConfigured(f"{first.msg} {first.hint} ({first.id})")
    merged = {**DEFAULTS, **configured}
    merged["TOPIC_PREFIXES"] = tuple(merged["TOPIC_PREFIXES"])
    merged["RULES"] = tuple(merged["RULES"])
    return RealtimeSettings(**{f.name: merged[f.name] for f in fields(RealtimeSettings)})


@receiver(setting_changed)
def _reset(*, setting: str, **_kwargs: object) -> None:
    if setting == "REALTIME":
        get_settings.cache_clear()
