"""The dynamic authorizer: decides what browser sessions may do, from REALTIME["RULES"].

Default deny. The names of registered ``@procedure`` functions may be called by every browser
role whatever the rules say (the rpc component enforces each procedure's own login_required
and permission) and registered by none. For any other URI, a rule that depends only on the
role and the URI is answered at once (and Crossbar may cache it); one that needs the user --
``{user}`` in the URI, a Django permission, a check function -- is answered per session, with
the ORM work in the Django thread pool, and never cached (Crossbar's cache is per role, not
per user).
``wamp.*``, ``crossbar.*`` and ``djwamp.*`` stay closed to browsers whatever a rule says.
"""

from __future__ import annotations

from twisted.internet import threads
from twisted.logger import Logger

from . import django_access
from .backend import BackendSession
from .history import HISTORY_URI
from .settings import AUTHORIZER_URI

__all__ = ["AuthorizerComponent"]


class AuthorizerComponent(BackendSession):
    """Registers ``djwamp.authorize`` for the router's browser roles."""

    log = Logger()
    # without the authorizer every browser action fails: a failed start stops the node
    component_name = "authorizer"

    async def start(self) -> None:
        conf = await threads.deferToThread(django_access.realtime_settings)
        self.rules = conf.rules
        # djwamp.history is answered like a procedure: any browser may call it, none register it;
        # the history component itself checks the caller may subscribe to the topic asked for
        self.procedures = frozenset(await threads.deferToThread(django_access.procedure_names)) | {HISTORY_URI}
        self.pool = django_access.DjangoThreadPool(size=10, name="djwamp-authorize")
        await self.register(self.authorize, AUTHORIZER_URI)
        self.log.info("djwamp authorizer ready on {uri} ({count} rules, {procedures} procedures)",
                      uri=AUTHORIZER_URI, count=len(self.rules.rules), procedures=len(self.procedures))

    async def authorize(self, session: dict, uri: str, action: str, options: dict | None = None) -> dict:
        if uri in self.procedures and action in ("call", "register"):
            return self.procedure_decision(action)
        role, authid = session.get("authrole", ""), session.get("authid")
        match = (options or {}).get("match", "exact")
        verdict = self.rules.decide(role, authid, uri, action, match)
        allowed = verdict.allow
        if not allowed and verdict.pending:
            try:
                allowed = await self.pool.run(django_access.user_passes, authid, verdict.pending, uri, action)
            except Exception:
                self.log.failure("authorization check failed; denying {action} on {uri}", action=action, uri=uri)
                allowed = False
        if not allowed:
            self.log.debug("denied {action} on {uri} ({match}) to {role} {authid}", action=action, uri=uri,
                           match=match, role=role, authid=authid)
        return {
            "allow": allowed,
            "cache": verdict.cacheable,
            # a browser's publication names its publisher to subscribers (Django's, from the bridge,
            # never do: an event without a publisher is from the server). Only Django's own
            # procedures (and djwamp.history) learn who calls, above: a callee that a rule lets a
            # browser register would learn other users' session ids and authids
            "disclose": allowed and action == "publish",
        }

    @staticmethod
    def procedure_decision(action: str) -> dict:
        """Call: yes, with the caller disclosed (the procedure runs as that user). Register: never;
        a browser's roundrobin registration would be handed a share of other users' calls.
        Both depend on the URI alone, so Crossbar may cache them."""
        allowed = action == "call"
        return {"allow": allowed, "cache": True, "disclose": allowed}
