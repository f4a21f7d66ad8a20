"""The base of the node's own components: they join with the backend role (ticket auth)."""

from __future__ import annotations

from autobahn.twisted.wamp import ApplicationSession
from autobahn.wamp.types import Challenge

from .settings import BACKEND_AUTHID, NodeSettings


class BackendSession(ApplicationSession):
    """An ``ApplicationSession`` that authenticates as ``backend`` with DJWAMP_BACKEND_SECRET."""

    def onConnect(self) -> None:
        self._node_settings = NodeSettings.from_env()
        self._node_settings.require_backend_secret()
        self.join(self.config.realm, authmethods=["ticket"], authid=BACKEND_AUTHID)

    def onChallenge(self, challenge: Challenge) -> str:
        if challenge.method != "ticket":
            raise ValueError(f"the router asked for {challenge.method!r}; backend sessions use ticket")
        return self._node_settings.backend_secret
