"""The dynamic authorizer: decides what browser sessions may do, from REALTIME["RULES"].

Default deny. A rule that depends only on the role and the URI is answered at once (and
Crossbar may cache it); one that needs the user -- ``{user}`` in the URI, a Django
permission, a check function -- is answered per session, with the ORM work in the Django
thread pool, and never cached (Crossbar's cache is per role, not per user).
``wamp.*``, ``crossbar.*`` and ``djwamp.*`` stay closed to browsers whatever a rule says.
"""

from __future__ import annotations

from twisted.internet import threads
from twisted.logger import Logger

from realtime import errors

from . import django_bridge
from .backend import BackendSession
from .settings import AUTHORIZER_URI

__all__ = ["AuthorizerComponent"]


class AuthorizerComponent(BackendSession):
    """Registers ``djwamp.authorize`` for the router's browser roles."""

    log = Logger()

    async def onJoin(self, details) -> None:
        try:
            conf = await threads.deferToThread(django_bridge.realtime_settings)
            self.rules = conf.rules
            self.pool = django_bridge.DjangoThreadPool(size=10, name="djwamp-authorize")
            await self.register(self.authorize, AUTHORIZER_URI)
        except Exception:
            # without the authorizer every browser action fails: stop the node, loudly
            self.log.failure("djwamp authorizer could not start")
            self.leave(errors.COMPONENT_FAILED)
            return
        self.log.info("djwamp authorizer ready on {uri} ({count} rules)", uri=AUTHORIZER_URI,
                      count=len(self.rules.rules))

    async def authorize(self, session: dict, uri: str, action: str, options: dict | None = None) -> dict:
        role, authid = session.get("authrole", ""), session.get("authid")
        match = (options or {}).get("match", "exact")
        verdict = self.rules.decide(role, authid, uri, action, match)
        allowed = verdict.allow
        if not allowed and verdict.pending:
            try:
                allowed = await self.pool.run(django_bridge.user_passes, authid, verdict.pending, uri, action)
            except Exception:
                self.log.failure("authorization check failed; denying {action} on {uri}", action=action, uri=uri)
                allowed = False
        if not allowed:
            self.log.debug("denied {action} on {uri} ({match}) to {role} {authid}", action=action, uri=uri,
                           match=match, role=role, authid=authid)
        return {
            "allow": allowed,
            "cache": verdict.cacheable,
            # procedures run as the caller: they must learn who calls (issue: RPC)
            "disclose": action == "call",
        }
