"""The Crossbar node configuration, generated from ``NodeSettings``.

Crossbar substitutes environment variables in only a few places (ports, ticket secrets),
not in realm names or origin lists, so the config is rendered here from one settings object.
``.crossbar/config.json`` is this rendering for the default settings (``make node-config``;
a test keeps it in sync); the dev runner and the tests render into their own node directory.
The backend secret is never written to disk: the file names the variable and Crossbar reads it.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .settings import AUTHENTICATOR_URI, AUTHORIZER_URI, BACKEND_AUTHID, BROWSER_ROLES, REPO_ROOT, NodeSettings

__all__ = ["REPO_ROOT", "BACKEND_SOCKET", "ROUTER_COMPONENTS", "BRIDGE_COMPONENT", "CONTAINER_COMPONENTS",
           "components", "render", "write"]

#: The router's private transport for the node's own components (relative to the node dir).
BACKEND_SOCKET = "backend.sock"

#: In the router worker itself: what every connection and every action waits on. Crossbar starts
#: a router worker's components before its transports, so the WebSocket port opens only once
#: they answer; their calls are function calls, not messages over a socket.
ROUTER_COMPONENTS = (
    ("authenticator", "router.auth.AuthenticatorComponent"),
    ("authorizer", "router.authorize.AuthorizerComponent"),
)
#: The bridge: embedded in the router by default (``DJWAMP_BRIDGE_WORKER=router``), where its
#: publications are function calls into the broker instead of CBOR messages over the backend
#: socket (docs/topics/performance.md, lever 9); ``container`` puts it beside the others below.
BRIDGE_COMPONENT = ("bridge", "router.bridge.BridgeComponent")
#: In a container worker, over the backend socket: what runs Django code for a while,
#: kept off the router's core.
CONTAINER_COMPONENTS = (
    ("history", "router.history.HistoryComponent"),
    ("gateway", "router.gateway.GatewayComponent"),
    ("procedures", "router.rpc.ProcedureComponent"),
)


def components(settings: NodeSettings) -> tuple[tuple[tuple[str, str], ...], tuple[tuple[str, str], ...]]:
    """The (router worker, container worker) components of a node with these settings."""
    if settings.bridge_worker == "router":
        return (*ROUTER_COMPONENTS, BRIDGE_COMPONENT), CONTAINER_COMPONENTS
    return ROUTER_COMPONENTS, (BRIDGE_COMPONENT, *CONTAINER_COMPONENTS)


_ALL_ACTIONS = {"call": True, "register": True, "publish": True, "subscribe": True}


#: what the workers import from by default: this checkout and its demo site (``make run``, tests)
DEFAULT_PYTHONPATH = (REPO_ROOT, REPO_ROOT / "django_site")


def render(settings: NodeSettings, cbdir: Path, pythonpath: Sequence[Path] = DEFAULT_PYTHONPATH) -> dict[str, Any]:
    """The node's config.json; ``pythonpath``: the directories the workers import from (as paths
    relative to ``cbdir``), e.g. a Django project's own directory instead of the demo site."""
    cbdir = Path(cbdir).resolve()
    in_router, in_container = components(settings)
    worker_options = {
        "pythonpath": [_relative(Path(path).resolve(), cbdir) for path in pythonpath],
        "env": {"inherit": True},
    }
    backend_client = {
        "type": "rawsocket",
        "endpoint": {"type": "unix", "path": BACKEND_SOCKET},
        "serializer": "cbor",
    }
    return {
        "$schema": "https://raw.githubusercontent.com/crossbario/crossbar/master/crossbar.json",
        "version": 2,
        "controller": {},
        "workers": [
            {
                "type": "router",
                "id": "router",
                "options": worker_options,
                # Started (and joined) before any transport listens: no browser can arrive
                # while authentication or authorization is not there yet.
                "components": [
                    {"type": "class", "id": name, "classname": classname, "realm": settings.realm,
                     "role": "backend", "extra": _embedded_extra(name, in_container)}
                    for name, classname in in_router
                ],
                "realms": [
                    {
                        "name": settings.realm,
                        "roles": [
                            # Browsers: every action is decided by djwamp.authorize (default deny).
                            *({"name": role, "authorizer": AUTHORIZER_URI} for role in BROWSER_ROLES),
                            # The node's own components and server-side clients.
                            {
                                "name": "backend",
                                "permissions": [
                                    {
                                        "uri": "",
                                        "match": "prefix",
                                        "allow": _ALL_ACTIONS,
                                        # browsers never learn the bridge's session or role
                                        "disclose": {"caller": False, "publisher": False},
                                        "cache": True,
                                    }
                                ],
                            },
                        ],
                    }
                ],
                "transports": [
                    {
                        "type": "web",
                        "id": "web",
                        "endpoint": {"type": "tcp", "interface": settings.bind, "port": settings.port},
                        "paths": {
                            # Pages come from Django, on the same origin as the WebSocket.
                            "/": {"type": "reverseproxy", "host": "127.0.0.1", "port": settings.django_port},
                            # the no-WebSocket fallback: SSE + POST, served by the gateway component
                            "rt": {"type": "reverseproxy", "host": "127.0.0.1", "port": settings.gateway_port},
                            "ws": {
                                "type": "websocket",
                                "serializers": ["json", "msgpack", "cbor"],
                                "options": {
                                    "allowed_origins": list(settings.allowed_origins),
                                    "allow_null_origin": False,
                                    "max_message_size": 1048576,
                                    "auto_ping_interval": 10000,
                                    "auto_ping_timeout": 5000,
                                },
                                # Both ask djwamp.authenticate: "anonymous" carries the session
                                # cookie of the upgrade request, "ticket" a ticket from Django.
                                "auth": {
                                    method: {"type": "dynamic", "authenticator": AUTHENTICATOR_URI}
                                    for method in ("anonymous", "ticket")
                                },
                            },
                        },
                    },
                    {
                        "type": "rawsocket",
                        "id": "backend",
                        "endpoint": {"type": "unix", "path": BACKEND_SOCKET},
                        "serializers": ["cbor", "json"],
                        "auth": {
                            "ticket": {
                                "type": "static",
                                "principals": {
                                    BACKEND_AUTHID: {"ticket": "${DJWAMP_BACKEND_SECRET}", "role": "backend"}
                                },
                            }
                        },
                    },
                ],
            },
            {
                "type": "container",
                "id": "components",
                "options": {
                    **worker_options,
                    # A component that stops takes the node down with it, so that a process
                    # manager restarts everything instead of a router running without a bridge.
                    "shutdown": "shutdown-on-any-component-stopped",
                },
                "components": [
                    {
                        "type": "class",
                        "id": name,
                        "classname": classname,
                        "realm": settings.realm,
                        "transport": backend_client,
                    }
                    for name, classname in in_container
                ],
            },
        ],
    }


def _embedded_extra(name: str, in_container: Sequence[tuple[str, str]]) -> dict[str, Any]:
    extra: dict[str, Any] = {"embedded": True}
    if name == "authenticator":
        # browsers are admitted once these have started (router/auth.py)
        extra["awaits"] = [component for component, _ in in_container]
    return extra


def write(settings: NodeSettings, cbdir: Path, pythonpath: Sequence[Path] = DEFAULT_PYTHONPATH) -> Path:
    cbdir = Path(cbdir)
    cbdir.mkdir(parents=True, exist_ok=True)
    # the node's key, its pid file and the backend socket live here: nobody else may enter
    cbdir.chmod(0o700)
    path = cbdir / "config.json"
    path.write_text(json.dumps(render(settings, cbdir, pythonpath), indent=2) + "\n")
    return path


def _relative(path: Path, start: Path) -> str:
    return os.path.relpath(path, start)
