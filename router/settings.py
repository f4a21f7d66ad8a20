"""The node's settings: one frozen object built from the environment.

The Crossbar config (router/nodeconfig.py), the components and the dev runner all read
these through ``NodeSettings.from_env()``, never ``os.environ`` directly. Django-side
settings (Redis URL, stream, limits) live in Django's ``REALTIME`` and reach the router
through router/django_access.py.
"""

from __future__ import annotations

import ipaddress
import os
import re
import socket
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from realtime.wire import BROWSER_ROLES, URI_RE

__all__ = ["NodeSettings", "SettingsError", "BACKEND_AUTHID", "AUTHORIZER_URI", "AUTHENTICATOR_URI",
           "BROWSER_ROLES", "REPO_ROOT"]

BACKEND_AUTHID = "backend"
AUTHORIZER_URI = "djwamp.authorize"
AUTHENTICATOR_URI = "djwamp.authenticate"

REPO_ROOT = Path(__file__).resolve().parent.parent


class SettingsError(ValueError):
    """An environment variable has a value the node cannot use."""


@dataclass(frozen=True)
class NodeSettings:
    host: str = "127.0.0.1"
    #: the interface the node listens on (DJWAMP_BIND, default: DJWAMP_HOST)
    bind: str = "127.0.0.1"
    port: int = 8080
    realm: str = "djwamp"
    django_port: int = 8081
    #: the no-WebSocket fallback (router/gateway.py), proxied at /rt/ (DJWAMP_GATEWAY_PORT)
    gateway_port: int = 8082
    node_id: str = field(default_factory=lambda: _clean_name(socket.gethostname()))
    #: origins that may open the WebSocket at all (Crossbar checks at the upgrade)
    allowed_origins: tuple[str, ...] = ()
    #: origins whose session cookie counts (default: the site's own); others need a ticket
    cookie_origins: tuple[str, ...] = ()
    backend_secret: str = field(default="", repr=False)
    #: proxies whose X-Forwarded-For names the client (DJWAMP_TRUSTED_PROXIES; router/limits.py)
    trusted_proxies: tuple[str, ...] = ("127.0.0.1", "::1")
    #: where the dev runner keeps its node directory and its private Redis socket
    run_dir: Path = REPO_ROOT / ".run"
    #: the worker the bridge runs in (DJWAMP_BRIDGE_WORKER): "router" (embedded, publishing by
    #: function call) or "container" (over the backend socket); router/nodeconfig.py
    bridge_worker: str = "router"

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> NodeSettings:
        env = os.environ if environ is None else environ
        port = _port(env, "DJWAMP_PORT", 8080)
        host = env.get("DJWAMP_HOST", "127.0.0.1")
        realm = env.get("DJWAMP_REALM", "djwamp")
        if not URI_RE.fullmatch(realm):
            raise SettingsError(f"DJWAMP_REALM={realm!r} is not a valid realm name (e.g. 'djwamp')")
        node_id = env.get("DJWAMP_NODE_ID") or _clean_name(socket.gethostname())
        if not URI_RE.fullmatch(node_id):
            raise SettingsError(f"DJWAMP_NODE_ID={node_id!r}: use letters, digits, '_', '-' and '.'")
        own = tuple(dict.fromkeys(f"http://{h}:{port}" for h in (host, "127.0.0.1", "localhost")))
        origins = _origins(env, "DJWAMP_ALLOWED_ORIGINS") or own
        cookie_origins = _origins(env, "DJWAMP_COOKIE_ORIGINS") or own
        return cls(
            host=host,
            bind=env.get("DJWAMP_BIND") or host,
            port=port,
            realm=realm,
            django_port=_port(env, "DJWAMP_DJANGO_PORT", port + 1),
            gateway_port=_port(env, "DJWAMP_GATEWAY_PORT", port + 2),
            node_id=node_id,
            allowed_origins=origins,
            cookie_origins=cookie_origins,
            backend_secret=env.get("DJWAMP_BACKEND_SECRET", ""),
            trusted_proxies=_networks(env, "DJWAMP_TRUSTED_PROXIES", ("127.0.0.1", "::1")),
            run_dir=Path(env.get("DJWAMP_RUN_DIR") or REPO_ROOT / ".run").resolve(),
            bridge_worker=_choice(env, "DJWAMP_BRIDGE_WORKER", ("router", "container")),
        )

    @property
    def dev_redis_socket(self) -> Path:
        """The private Redis of `make run`; the demo settings use it when REDIS_URL is unset."""
        return self.run_dir / "redis.sock"

    @property
    def public_url(self) -> str:
        return f"http://{self.host}:{self.port}/"

    @property
    def ws_url(self) -> str:
        return f"ws://{self.host}:{self.port}/ws"

    def require_backend_secret(self) -> str:
        if len(self.backend_secret) < 16:
            raise SettingsError(
                "DJWAMP_BACKEND_SECRET must be set to a random string of at least 16 characters "
                "(the node's components authenticate with it); `make run` generates one"
            )
        return self.backend_secret


def _origins(env: Mapping[str, str], name: str) -> tuple[str, ...]:
    origins = tuple(o.strip() for o in env.get(name, "").split(",") if o.strip())
    for origin in origins:
        if not re.fullmatch(r"https?://[^/:*]+:(\d+|\*)", origin):
            raise SettingsError(f"{name} entry {origin!r}: write scheme://host:port with a literal host "
                                "(Crossbar needs the port, e.g. https://example.com:443; the port may be *)")
    return origins


def _networks(env: Mapping[str, str], name: str, default: tuple[str, ...]) -> tuple[str, ...]:
    raw = env.get(name)
    if raw is None:
        return default
    networks = tuple(n.strip() for n in raw.split(",") if n.strip())
    for network in networks:
        try:
            ipaddress.ip_network(network, strict=False)
        except ValueError:
            raise SettingsError(f"{name} entry {network!r} is not an IP address or network "
                                "(e.g. 10.0.0.5 or 10.0.0.0/8)") from None
    return networks


def _choice(env: Mapping[str, str], name: str, choices: tuple[str, ...]) -> str:
    """One of ``choices``; the first when unset."""
    raw = env.get(name) or choices[0]
    if raw not in choices:
        raise SettingsError(f"{name}={raw!r}: use one of {', '.join(choices)}")
    return raw


def _port(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        port = int(raw)
    except ValueError:
        raise SettingsError(f"{name}={raw!r} is not a port number") from None
    if not 0 < port < 65536:
        raise SettingsError(f"{name}={port} is outside 1-65535")
    return port


def _clean_name(name: str) -> str:
    return re.sub(r"[^0-9A-Za-z_\-.]", "-", name).strip(".") or "node"
