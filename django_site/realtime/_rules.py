"""Authorization rules: who may subscribe, publish, call or register what. Default deny.

Rules come from ``REALTIME["RULES"]`` (docs/ref/settings.md). This module is pure logic:
matching a requested URI (with its WAMP match type) against the rules, and telling whether
a decision may be cached by Crossbar. Checks that need the Django user (a permission, a
callable) are evaluated by the caller, off the reactor thread.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from . import wire

__all__ = [
    "ACTIONS",
    "BROWSER_ROLES",
    "MATCH_TYPES",
    "USER_PLACEHOLDER",
    "DEFAULT_RULES",
    "Rule",
    "RuleSet",
    "RuleError",
    "parse_rules",
]

ACTIONS = ("subscribe", "publish", "call", "register")
BROWSER_ROLES = wire.BROWSER_ROLES
MATCH_TYPES = ("exact", "prefix", "wildcard")
USER_PLACEHOLDER = "{user}"
#: Never reachable by a browser role, whatever a rule says (wire.RESERVED_PREFIXES says why)
FORBIDDEN_PREFIXES = wire.RESERVED_PREFIXES

DEFAULT_RULES: tuple[dict, ...] = (
    {"uri": "public.", "allow": ["subscribe"]},
    {"uri": "user.{user}.", "allow": ["subscribe"], "roles": ["user", "staff"]},
    {"uri": "staff.", "allow": ["subscribe"], "roles": ["staff"]},
)

_RULE_KEYS = {"uri", "match", "allow", "roles", "permission", "check"}


class RuleError(ValueError):
    """A rule in REALTIME["RULES"] that cannot be used; the message names it and the fix."""


@dataclass(frozen=True)
class Rule:
    uri: str
    match: str
    allow: frozenset[str]
    roles: frozenset[str]
    permissions: tuple[str, ...] = ()
    check: str | None = None
    index: int = 0

    @property
    def needs_user(self) -> bool:
        """True when the answer depends on who the caller is, not only on the role."""
        return bool(self.permissions or self.check) or USER_PLACEHOLDER in self.uri

    def _pattern(self, authid: str | None) -> str | None:
        if USER_PLACEHOLDER not in self.uri:
            return self.uri
        if not authid or not wire.is_valid_uri(authid) or "." in authid:
            return None
        return self.uri.replace(USER_PLACEHOLDER, authid)

    def covers(self, authid: str | None, uri: str, match: str) -> bool:
        """Does every URI the request could touch fall under this rule (for this caller)?"""
        if self.check and match != "exact":
            # a check function judges one URI; a pattern subscription would slip past it
            # (under "chat.", the prefix "chat.4" also covers rooms 40, 41, ...)
            return False
        pattern = self._pattern(authid)
        return pattern is not None and _covers(self.match, pattern, uri, match)

    def could_cover(self, uri: str, match: str) -> bool:
        """Could this rule cover the request for *some* caller (placeholder as a wildcard)?"""
        if USER_PLACEHOLDER not in self.uri:
            return _covers(self.match, self.uri, uri, match)
        pattern = self.uri.replace(USER_PLACEHOLDER, "")
        return _covers("wildcard" if self.match == "exact" else self.match + "-loose", pattern, uri, match)


@dataclass(frozen=True)
class Verdict:
    """The role-and-URI part of a decision.

    ``allow`` is final when ``pending`` is empty; otherwise the request is allowed if any rule
    in ``pending`` passes its user checks. ``cacheable`` says whether Crossbar may keep the
    final answer for every session of this role (its cache ignores the user and match type).
    """

    allow: bool
    pending: tuple[Rule, ...]
    cacheable: bool


class RuleSet:
    def __init__(self, rules: Iterable[Rule]):
        self.rules = tuple(rules)

    def decide(self, role: str, authid: str | None, uri: str, action: str, match: str = "exact") -> Verdict:
        if uri.startswith(FORBIDDEN_PREFIXES) or match not in MATCH_TYPES or action not in ACTIONS:
            return Verdict(False, (), False)
        if match == "wildcard" and uri.split(".")[0] == "":
            # "..on_join" would match wamp.session.on_join: never for a browser
            return Verdict(False, (), False)
        candidates = [r for r in self.rules if action in r.allow and role in r.roles]
        pending = []
        for rule in candidates:
            if rule.covers(authid, uri, match):
                if not (rule.permissions or rule.check):
                    return Verdict(True, (), self._cacheable(candidates, uri))
                pending.append(rule)
        return Verdict(False, tuple(pending), not pending and self._cacheable(candidates, uri))

    @staticmethod
    def _cacheable(candidates: Sequence[Rule], uri: str) -> bool:
        # Crossbar caches per (role, uri, action): only when no user-dependent rule could be
        # involved and the answer is the same for every match type.
        if any(rule.needs_user and any(rule.could_cover(uri, m) for m in MATCH_TYPES) for rule in candidates):
            return False
        answers = {any(rule.covers(None, uri, m) for rule in candidates) for m in MATCH_TYPES}
        return len(answers) == 1


def _components(uri: str) -> list[str]:
    return uri.split(".")


def _covers(rule_match: str, pattern: str, uri: str, match: str) -> bool:
    """Whether all URIs matched by (uri, match) are matched by (pattern, rule_match)."""
    loose = rule_match.endswith("-loose")
    rule_match = rule_match.removesuffix("-loose")
    if rule_match == "exact":
        return match == "exact" and uri == pattern
    if rule_match == "prefix":
        if loose:
            # the placeholder left an empty component: compare component-wise up to the prefix
            head = _components(pattern.rstrip("."))
            parts = _components(uri)
            if len(parts) <= len(head):
                return False
            return all(h == "" and p != "" or h == p for h, p in zip(head, parts, strict=False))
        if not uri.startswith(pattern):
            return False
        if match == "wildcard":
            # the requested pattern's fixed part must stay under the prefix
            head = len(_components(pattern.rstrip(".")))
            return all(_components(uri)[:head])
        return True
    # wildcard rule: same number of components; an empty rule component matches any one
    rule_parts, parts = _components(pattern), _components(uri)
    if match == "prefix" or len(rule_parts) != len(parts):
        return False
    return all(r == "" and (p != "" or match == "wildcard") or r == p for r, p in zip(rule_parts, parts, strict=True))


def parse_rules(raw: object) -> RuleSet:
    """Validate ``REALTIME["RULES"]``; raises ``RuleError`` naming the rule and the fix."""
    if not isinstance(raw, (list, tuple)):
        raise RuleError(f"RULES must be a list of dicts, not {type(raw).__name__}")
    return RuleSet(_parse_rule(index, item) for index, item in enumerate(raw))


def _parse_rule(index: int, item: object) -> Rule:
    where = f"RULES[{index}]"
    if not isinstance(item, Mapping):
        raise RuleError(f"{where} must be a dict like {{'uri': 'public.', 'allow': ['subscribe']}}")
    unknown = sorted(set(item) - _RULE_KEYS)
    if unknown:
        raise RuleError(f"{where} has unknown key(s) {', '.join(map(str, unknown))}; use {sorted(_RULE_KEYS)}")
    uri = item.get("uri")
    if not isinstance(uri, str) or not uri:
        raise RuleError(f"{where} needs a 'uri' such as 'public.' or 'user.{{user}}.'")
    match = item.get("match", "prefix" if uri.endswith(".") else "exact")
    if match not in MATCH_TYPES:
        raise RuleError(f"{where}: match must be one of {', '.join(MATCH_TYPES)}, not {match!r}")
    _check_pattern(where, uri, match)
    allow = _string_list(where, "allow", item.get("allow"), required=True)
    bad_actions = sorted(set(allow) - set(ACTIONS))
    if bad_actions:
        raise RuleError(f"{where}: unknown action(s) {', '.join(bad_actions)}; use {', '.join(ACTIONS)}")
    roles = _string_list(where, "roles", item.get("roles", list(BROWSER_ROLES)), required=True)
    bad_roles = sorted(set(roles) - set(BROWSER_ROLES))
    if bad_roles:
        raise RuleError(f"{where}: unknown role(s) {', '.join(bad_roles)}; rules apply to {', '.join(BROWSER_ROLES)}")
    if USER_PLACEHOLDER in uri and "anonymous" in roles:
        raise RuleError(f"{where}: a rule with {USER_PLACEHOLDER} needs a signed-in user; "
                        "set 'roles': ['user', 'staff']")
    permission = item.get("permission", ())
    permissions = (permission,) if isinstance(permission, str) else permission
    permissions = _string_list(where, "permission", list(permissions), required=False)
    for perm in permissions:
        if perm.count(".") != 1:
            raise RuleError(f"{where}: permission {perm!r} must look like 'app_label.codename'")
    check = item.get("check")
    if check is not None and (not isinstance(check, str) or "." not in check):
        raise RuleError(f"{where}: check must be a dotted path to a function (user, uri, action) -> bool")
    return Rule(uri, match, frozenset(allow), frozenset(roles), tuple(permissions), check, index)


def _check_pattern(where: str, uri: str, match: str) -> None:
    if uri.startswith(FORBIDDEN_PREFIXES):
        raise RuleError(f"{where}: {uri!r} is reserved (wamp., crossbar., djwamp.); no rule can open it")
    body = uri[:-1] if match == "prefix" else uri
    if body.split(".")[0] in ("", USER_PLACEHOLDER):
        raise RuleError(f"{where}: {uri!r} must start with a fixed component (a pattern open at the start "
                        "would also match wamp., crossbar. and djwamp. URIs)")
    if match == "prefix" and not uri.endswith("."):
        raise RuleError(f"{where}: a prefix rule ends with '.', e.g. {uri + '.'!r} (else {uri!r} would also "
                        f"cover {uri + 'x'!r})")
    parts = body.split(".")
    for part in parts:
        if USER_PLACEHOLDER in part and part != USER_PLACEHOLDER:
            raise RuleError(f"{where}: {USER_PLACEHOLDER} must be a whole URI component, as in 'user.{{user}}.inbox'")
    concrete = ".".join("x" if part in (USER_PLACEHOLDER, "") and match == "wildcard" or part == USER_PLACEHOLDER
                        else part for part in parts)
    if not wire.is_valid_uri(concrete):
        raise RuleError(f"{where}: {uri!r} is not a valid URI pattern for match={match!r}")


def _string_list(where: str, key: str, value: object, *, required: bool) -> list[str]:
    if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) for v in value) or (required and not value):
        raise RuleError(f"{where}: {key!r} must be a {'non-empty ' if required else ''}list of strings")
    return list(value)
