"""Fixtures that start real processes: redis-server, the Crossbar node. All stopped by PID.

Nothing here touches the machine's Redis on 6379: every test Redis is private, on a free port.
"""

from __future__ import annotations

import contextlib
import secrets
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from router import nodeconfig
from router.processes import BRIDGE_READY_LINE, NODE_READY_LINES, ManagedProcess, free_port, start_crossbar, start_redis
from router.settings import NodeSettings

ARTIFACTS = Path(__file__).resolve().parent / "artifacts"


@dataclass
class RedisServer:
    directory: Path
    port: int
    persistent: bool = False
    proc: ManagedProcess | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> RedisServer:
        self.proc = start_redis(self.directory, port=self.port, persistent=self.persistent,
                                log_path=self.directory / "redis.log")
        return self

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.stop()
            self.proc = None

    def client(self):
        import redis

        return redis.Redis.from_url(self.url, decode_responses=True)


@dataclass
class CrossbarNode:
    cbdir: Path
    settings: NodeSettings
    env: dict[str, str]
    proc: ManagedProcess | None = None
    starts: list[ManagedProcess] = field(default_factory=list)

    @property
    def ws_url(self) -> str:
        return self.settings.ws_url

    @property
    def realm(self) -> str:
        return self.settings.realm

    def start(self, *, wait_for_bridge: bool = True) -> CrossbarNode:
        log_path = self.cbdir / f"node-{len(self.starts)}.log"
        lines = [line for line in NODE_READY_LINES if wait_for_bridge or line != BRIDGE_READY_LINE]
        self.proc = start_crossbar(self.cbdir, self.env, log_path=log_path, wait_for=lines)
        self.starts.append(self.proc)
        return self

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.stop()
            self.proc = None


def _artifact_dir(tmp_path_factory, name: str) -> Path:
    return tmp_path_factory.mktemp(name, numbered=True)


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory):
    """A private redis-server for the whole run (tests use their own stream keys or flush)."""
    server = RedisServer(_artifact_dir(tmp_path_factory, "redis"), free_port()).start()
    yield server
    server.stop()


def make_node(tmp_path_factory, redis_url: str, **overrides: str) -> CrossbarNode:
    """A node directory rendered from the same code as .crossbar/config.json, on free ports."""
    cbdir = _artifact_dir(tmp_path_factory, "node")
    env = {
        **_base_env(),
        "DJWAMP_PORT": str(free_port()),
        "DJWAMP_DJANGO_PORT": str(free_port()),
        "DJWAMP_GATEWAY_PORT": str(free_port()),
        "DJWAMP_NODE_ID": f"test-{secrets.token_hex(4)}",
        "DJWAMP_BACKEND_SECRET": secrets.token_urlsafe(24),
        "REDIS_URL": redis_url,
        "DJWAMP_REVALIDATE_INTERVAL": "2",
        **overrides,
    }
    settings = NodeSettings.from_env(env)
    nodeconfig.write(settings, cbdir)
    return CrossbarNode(cbdir, settings, env)


def _base_env() -> dict[str, str]:
    import os

    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJWAMP_", "REDIS_URL"))}
    env["PYTHONUNBUFFERED"] = "1"
    env["DJANGO_SETTINGS_MODULE"] = "django_site.settings"
    return env


@pytest.fixture(scope="session")
def test_db_path(django_db_setup, django_db_blocker) -> str:
    """The test database file, which the nodes' Django reads too (sessions, users)."""
    from django.db import connection

    return str(connection.settings_dict["NAME"])


@contextlib.contextmanager
def running_node(tmp_path_factory, redis_url: str, **env: str):
    """A started node (see make_node) that is stopped, and its logs kept, whatever happens."""
    node = make_node(tmp_path_factory, redis_url, **env)
    try:
        node.start()
        yield node
    finally:
        node.stop()
        _keep_logs(node)


@pytest.fixture(scope="session")
def crossbar_node(tmp_path_factory, redis_server, test_db_path):
    """One real Crossbar node (router + our components) for the integration tests."""
    with running_node(tmp_path_factory, redis_server.url, DJANGO_DB_PATH=test_db_path) as node:
        yield node


def _keep_logs(node: CrossbarNode) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    for log in node.cbdir.glob("node-*.log"):
        shutil.copy(log, ARTIFACTS / f"{node.cbdir.name}-{log.name}")


@pytest.fixture
def realtime_redis(settings, redis_server):
    """Point Django's REALTIME at the private Redis (stream key as in production)."""
    settings.REALTIME = {**settings.REALTIME, "REDIS_URL": redis_server.url}
    return redis_server
