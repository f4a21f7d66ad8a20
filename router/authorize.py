"""The dynamic authorizer: decides what browser sessions may do. Default deny.

Until rules come from Django settings, the built-in rule lets every browser role subscribe
to topics under ``public.``; nothing else is allowed. ``wamp.*`` and ``crossbar.*`` (the
meta API, which carries other users' transport details) are refused whatever a rule says.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from twisted.logger import Logger

from .backend import BackendSession
from .settings import AUTHORIZER_URI

__all__ = ["ACTIONS", "TopicRule", "TopicRules", "DEFAULT_RULES", "AuthorizerComponent"]

ACTIONS = frozenset({"subscribe", "publish", "call", "register"})
_ROUTER_PREFIXES = ("wamp.", "crossbar.")


@dataclass(frozen=True)
class TopicRule:
    """Allow ``actions`` on URIs starting with ``prefix`` to sessions with one of ``roles``."""

    prefix: str
    actions: frozenset[str]
    roles: frozenset[str]

    def __post_init__(self) -> None:
        unknown = self.actions - ACTIONS
        if unknown:
            raise ValueError(f"unknown action(s) {sorted(unknown)}; use {sorted(ACTIONS)}")
        if not self.prefix.endswith("."):
            raise ValueError(f"a rule prefix ends with '.', got {self.prefix!r}")

    def allows(self, role: str, uri: str, action: str) -> bool:
        return action in self.actions and role in self.roles and uri.startswith(self.prefix)


class TopicRules:
    def __init__(self, rules: Iterable[TopicRule]):
        self.rules = tuple(rules)

    def allows(self, role: str, uri: str, action: str) -> bool:
        if uri.startswith(_ROUTER_PREFIXES):
            return False
        return any(rule.allows(role, uri, action) for rule in self.rules)


DEFAULT_RULES = TopicRules([
    TopicRule("public.", frozenset({"subscribe"}), frozenset({"anonymous", "user", "staff"})),
])


class AuthorizerComponent(BackendSession):
    """Registers ``djwamp.authorize`` for the router's browser roles."""

    log = Logger()
    rules = DEFAULT_RULES

    async def onJoin(self, details) -> None:
        try:
            await self.register(self.authorize, AUTHORIZER_URI)
        except Exception:
            # without the authorizer every browser action fails: stop the node, loudly
            self.log.failure("djwamp authorizer could not register {uri}", uri=AUTHORIZER_URI)
            self.leave("djwamp.error.authorizer_failed")
            return
        self.log.info("djwamp authorizer ready on {uri}", uri=AUTHORIZER_URI)

    def authorize(self, session: dict, uri: str, action: str, options: dict | None = None) -> dict:
        allowed = self.rules.allows(session.get("authrole", ""), uri, action)
        if not allowed:
            self.log.debug("denied {action} on {uri} to role {role}", action=action, uri=uri,
                           role=session.get("authrole"))
        # These decisions depend on role and URI only, so Crossbar may cache them (its cache
        # is keyed by role and URI, never by user: user-dependent rules must not set cache).
        return {"allow": allowed, "cache": True, "disclose": False}
