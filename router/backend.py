"""The base of the node's own components.

Two kinds run in a node (router/nodeconfig.py): components embedded in the router worker
(the authenticator, the authorizer and, by default, the bridge: the router hands them its
sessions directly, with the ``backend`` role) and components in the container worker, which
join over the backend unix socket with ticket auth as ``backend``. Either way a component that cannot work stops the
node: a process manager restarts a whole node, never half of one.

A container component that has started says so on ``ready_topic(node_id)``; the
authenticator admits browsers only once every container component has (router/auth.py), so
that a browser admitted during start-up finds history and procedures there.
"""

from __future__ import annotations

import gc
import os

from autobahn.twisted.wamp import ApplicationSession
from autobahn.wamp.types import Challenge, PublishOptions
from twisted.internet.error import ReactorNotRunning
from twisted.logger import Logger

from realtime import errors

from . import crossbar_fixes, fanout, logargs
from .settings import BACKEND_AUTHID, NodeSettings

_stopping = False
_watching = False
_settings: NodeSettings | None = None


def _process_settings(forget_secret: bool) -> NodeSettings:
    """This process's node settings, read from the environment once.

    ``forget_secret`` (the container worker): then take ``DJWAMP_BACKEND_SECRET`` out of the
    environment, so that what Django code runs there (every ``@procedure``) and the processes it
    starts do not find the key to the ``backend`` role in ``os.environ``.
    """
    global _settings
    if _settings is None:
        _settings = NodeSettings.from_env()
        _settings.require_backend_secret()
    if forget_secret:
        os.environ.pop("DJWAMP_BACKEND_SECRET", None)
    return _settings


def freeze_heap() -> None:
    """Take what start-up built out of the garbage collector's sight.

    A worker starts with a couple of hundred thousand long-lived objects (modules, classes,
    Django, Crossbar): each full collection walked all of them, a 140 ms pause in the router
    in the middle of a fan-out (docs/topics/performance.md). ``gc.freeze()`` moves them to a
    permanent generation, so a full collection walks only what came later. Called once a
    component has started, and again when the node is ready.
    """
    gc.collect()
    gc.freeze()


def ready_topic(node_id: str) -> str:
    """Where the node's container components announce, by name, that they have started."""
    return f"djwamp.node.{node_id}.component_ready"


def _note_stopping() -> None:
    global _stopping
    _stopping = True


def _watch_shutdown() -> None:
    global _watching
    from twisted.internet import reactor

    if not _watching:
        _watching = True
        reactor.addSystemEventTrigger("before", "shutdown", _note_stopping)


class BackendSession(ApplicationSession):
    """An ``ApplicationSession`` of the node: does its work in ``start()``.

    In the container it authenticates as ``backend`` with DJWAMP_BACKEND_SECRET; if ``start()``
    fails the component leaves, which stops the node (shutdown-on-any-component-stopped).
    Embedded in the router (``extra["embedded"]``), a failed start fails the router worker's
    start-up, and a component that leaves later stops the router worker, and with it the node:
    a router must not keep accepting browsers it can no longer authenticate.
    """

    log = Logger()
    #: how the log names the component: "djwamp <component_name> could not start"
    component_name = "component"

    @property
    def embedded(self) -> bool:
        return bool((self.config.extra or {}).get("embedded"))

    async def onJoin(self, details) -> None:
        if self.embedded:
            _watch_shutdown()
        try:
            await self.start()
            if not self.embedded:
                freeze_heap()
                await self.publish(ready_topic(self._node_settings.node_id), self.component_name,
                                   options=PublishOptions(acknowledge=True))
        except Exception:
            # Crossbar only logs an exception from onJoin; leaving stops the whole node
            # instead of running without this component
            self.log.failure("djwamp {component} could not start", component=self.component_name)
            self.leave(errors.COMPONENT_FAILED)

    async def start(self) -> None:
        """Register, subscribe, start the component's work."""

    def onConnect(self) -> None:
        # the first component of each worker process: before any browser traffic
        crossbar_fixes.apply()
        fanout.apply()
        patched = logargs.apply()
        if patched:
            self.log.debug("djwamp: {count} changes to what autobahn and Crossbar log", count=len(patched))
        self._node_settings = _process_settings(forget_secret=not self.embedded)
        # embedded, the router admits the session with the role of its config (no challenge)
        self.join(self.config.realm, authmethods=["ticket"], authid=BACKEND_AUTHID)

    def onChallenge(self, challenge: Challenge) -> str:
        if challenge.method != "ticket":
            raise ValueError(f"the router asked for {challenge.method!r}; backend sessions use ticket")
        return self._node_settings.backend_secret

    def onLeave(self, details) -> None:
        super().onLeave(details)
        if self.embedded:
            self._stop_router_worker(details)

    def _stop_router_worker(self, details) -> None:
        from twisted.internet import reactor

        if not reactor.running or _stopping:
            return  # the worker is stopping anyway (node shutdown): nothing to say
        self.log.error("djwamp {component} left the router ({reason}); stopping the node",
                       component=self.component_name, reason=details.reason)
        try:
            reactor.stop()
        except ReactorNotRunning:
            pass
