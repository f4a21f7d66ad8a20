"""The benchmarks reuse the test fixtures that start real processes (redis-server, a node)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from router.processes import ManagedProcess, ProcessFailed, free_port
from tests.conftest import crossbar_node, realtime_redis, redis_server, test_db_path  # noqa: F401

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
    yield f"ws://127.0.0.1:{port}/bench/"
    proc.stop()
