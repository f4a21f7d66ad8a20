"""The stacks of `make bench`, each started once per run from real processes and stopped by PID.

They reuse the test fixtures (a private redis-server, a djwamp node on free ports); Crossbar
alone and the Channels app get their own processes here.
"""

from __future__ import annotations

import json
import os
import secrets
import sys
import time
from pathlib import Path

import pytest

from bench.harness import Row
from router.processes import NODE_READY_LINE, ManagedProcess, ProcessFailed, free_port, start_crossbar
from tests.conftest import realtime_redis, redis_server, running_node, test_db_path  # noqa: F401

#: ``BENCH_DJWAMP_X=v make bench`` starts the bench's djwamp nodes with ``DJWAMP_X=v`` (to compare
#: a lever such as ``DJWAMP_FRAME_CACHE=0`` in the same run of the other rows); the test fixtures
#: give nodes no ``DJWAMP_*`` variable of the caller's environment
NODE_ENV = {name[len("BENCH_"):]: value for name, value in os.environ.items() if name.startswith("BENCH_DJWAMP_")}


@pytest.fixture(scope="session")
def crossbar_node(tmp_path_factory, redis_server, test_db_path):  # noqa: F811
    """The djwamp node of the djwamp rows (``make run``'s config, on free ports)."""
    with running_node(tmp_path_factory, redis_server.url, DJANGO_DB_PATH=test_db_path, **NODE_ENV) as node:
        yield node

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def channels_server(redis_server, tmp_path_factory):  # noqa: F811
    """daphne serving bench/channels_app.py on a free port, its channel layer on the private Redis."""
    port = free_port()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("DJWAMP_", "REDIS_URL"))},
        "PYTHONUNBUFFERED": "1",
        "PYTHONPATH": os.pathsep.join([str(ROOT / "django_site"), str(ROOT)]),
        "DJANGO_SETTINGS_MODULE": "bench.channels_settings",
        "BENCH_CHANNELS_REDIS_URL": redis_server.url,
    }
    argv = [str(Path(sys.executable).with_name("daphne")), "-b", "127.0.0.1", "-p", str(port),
            "bench.channels_app:application"]
    log = tmp_path_factory.mktemp("daphne") / "daphne.log"
    proc = ManagedProcess("daphne", argv, env=env, cwd=ROOT, log_path=log)
    try:
        proc.wait_for(r"Listening on TCP address", 30)
    except ProcessFailed:
        proc.stop()
        raise
    proc.url = f"ws://127.0.0.1:{port}/bench/"
    yield proc
    proc.stop()


@pytest.fixture(scope="session")
def crossbar_alone(tmp_path_factory):
    """A bare Crossbar router: one realm, anonymous may do anything, WebSocket at /ws.

    Same router worker, serializers and log level as a djwamp node, without djwamp's
    components: the ceiling of the router itself.
    """
    cbdir = tmp_path_factory.mktemp("crossbar-alone")
    port = free_port()
    config = {
        "version": 2,
        "controller": {},
        "workers": [{
            "type": "router",
            "id": "router",
            "realms": [{"name": "bench", "roles": [{"name": "anonymous", "permissions": [{
                "uri": "", "match": "prefix", "cache": True,
                "allow": {"call": True, "register": True, "publish": True, "subscribe": True},
                "disclose": {"caller": False, "publisher": False}}]}]}],
            "transports": [{
                "type": "web", "id": "web",
                "endpoint": {"type": "tcp", "interface": "127.0.0.1", "port": port},
                "paths": {"ws": {"type": "websocket", "serializers": ["json", "msgpack", "cbor"],
                                 "options": {"auto_ping_interval": 10000, "auto_ping_timeout": 5000}}},
            }],
        }],
    }
    (cbdir / "config.json").write_text(json.dumps(config, indent=2))
    proc = start_crossbar(cbdir, dict(os.environ), log_path=cbdir / "node.log", wait_for=[NODE_READY_LINE])
    proc.url = f"ws://127.0.0.1:{port}/ws"
    yield proc
    proc.stop()


@pytest.fixture
def row_redis(redis_server):  # noqa: F811
    client = redis_server.client()
    channel = f"bench.{secrets.token_hex(4)}"
    return Row("redis", "redis", redis_server.url, channel, pids=lambda: [redis_server.proc.pid],
               publish=lambda payload: client.publish(channel, json.dumps(payload)))


@pytest.fixture
def row_crossbar(crossbar_alone):
    return Row("crossbar", "wamp", crossbar_alone.url, "bench.fanout", realm="bench",
               pids=lambda: [crossbar_alone.pid],
               wamp_publisher={"url": crossbar_alone.url, "realm": "bench"})


def _djwamp_publish(topic):
    from realtime import publish

    return lambda payload: publish(topic, payload)


@pytest.fixture
def row_djwamp_ws(crossbar_node, realtime_redis):  # noqa: F811
    topic = f"public.bench.ws{secrets.token_hex(4)}"
    return Row("djwamp-ws", "wamp", crossbar_node.ws_url, topic, realm=crossbar_node.realm,
               pids=lambda: [crossbar_node.proc.pid, realtime_redis.proc.pid], publish=_djwamp_publish(topic))


@pytest.fixture
def second_node(tmp_path_factory, redis_server, test_db_path):  # noqa: F811
    """Another djwamp node on the same Redis and database: its bridge reads the stream in its
    own consumer group, so every event reaches both routers.

    Started for the 2-node row only and stopped after it: left running, its bridge and router
    would process every event of the single-node rows too (on the same two cores), which made
    the full run's djwamp WebSocket row ~35 % slower than the same row run alone. Measured only
    once its new group has caught up with the stream (a new group starts MAX_EVENT_AGE back).
    """
    with running_node(tmp_path_factory, redis_server.url, DJANGO_DB_PATH=test_db_path, **NODE_ENV) as node:
        _caught_up(redis_server.client(), f"djwamp:{node.settings.node_id}")
        yield node


def _caught_up(client, group: str, timeout_s: float = 60.0) -> None:
    from realtime._conf import get_settings

    stream = get_settings().STREAM
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        info = {g["name"]: g for g in client.xinfo_groups(stream)} if client.exists(stream) else {}
        g = info.get(group)
        if g is not None and g.get("lag") == 0 and g.get("pending") == 0:
            return
        time.sleep(0.1)  # polling Redis for an observable state, not waiting a guessed time
    raise TimeoutError(f"the second node's consumer group {group} did not catch up in {timeout_s:.0f} s")


@pytest.fixture
def row_djwamp_2nodes(crossbar_node, second_node, realtime_redis):  # noqa: F811
    """djwamp WebSocket on two nodes, the subscribers split between them (one router core each)."""
    topic = f"public.bench.two{secrets.token_hex(4)}"
    return Row("djwamp-2nodes", "wamp", crossbar_node.ws_url, topic, realm=crossbar_node.realm,
               urls=[crossbar_node.ws_url, second_node.ws_url],
               pids=lambda: [crossbar_node.proc.pid, second_node.proc.pid, realtime_redis.proc.pid],
               publish=_djwamp_publish(topic))


@pytest.fixture
def row_djwamp_sse(crossbar_node, realtime_redis):  # noqa: F811
    topic = f"public.bench.sse{secrets.token_hex(4)}"
    port = crossbar_node.settings.port
    return Row("djwamp-sse", "sse", f"http://127.0.0.1:{port}/rt/", topic, origin=f"http://127.0.0.1:{port}",
               pids=lambda: [crossbar_node.proc.pid, realtime_redis.proc.pid], publish=_djwamp_publish(topic))


@pytest.fixture
def row_channels(channels_server, redis_server):  # noqa: F811
    """The usual Channels way from sync Django code: async_to_sync(layer.group_send) per event."""
    from asgiref.sync import async_to_sync
    from channels_redis.core import RedisChannelLayer

    send = async_to_sync(RedisChannelLayer(hosts=[redis_server.url]).group_send)
    return Row("channels", "ws-json", channels_server.url, "bench",
               pids=lambda: [channels_server.pid, redis_server.proc.pid],
               publish=lambda payload: send("bench", {"type": "bench.event", "data": payload}))
