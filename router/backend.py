"""The base of the node's own components: they join with the backend role (ticket auth)."""

from __future__ import annotations

from autobahn.twisted.wamp import ApplicationSession
from autobahn.wamp.types import Challenge
from twisted.logger import Logger

from realtime import errors

from .settings import BACKEND_AUTHID, NodeSettings


class BackendSession(ApplicationSession):
    """An ``ApplicationSession`` that authenticates as ``backend`` with DJWAMP_BACKEND_SECRET.

    Subclasses do their work in ``start()``; if it fails, the component leaves, which stops
    the node.
    """

    log = Logger()
    #: how the log names the component: "djwamp <component_name> could not start"
    component_name = "component"

    async def onJoin(self, details) -> None:
        try:
            await self.start()
        except Exception:
            # Crossbar only logs an exception from onJoin; leaving stops the whole node
            # (shutdown-on-any-component-stopped) instead of running without this component
            self.log.failure("djwamp {component} could not start", component=self.component_name)
            self.leave(errors.COMPONENT_FAILED)

    async def start(self) -> None:
        """Register, subscribe, start the component's work."""

    def onConnect(self) -> None:
        self._node_settings = NodeSettings.from_env()
        self._node_settings.require_backend_secret()
        self.join(self.config.realm, authmethods=["ticket"], authid=BACKEND_AUTHID)

    def onChallenge(self, challenge: Challenge) -> str:
        if challenge.method != "ticket":
            raise ValueError(f"the router asked for {challenge.method!r}; backend sessions use ticket")
        return self._node_settings.backend_secret
