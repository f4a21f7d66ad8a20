"""`make run` as a newcomer uses it: one command, one origin, publish from another shell."""

import os
import signal
import subprocess
import sys
import urllib.request

import psutil
import pytest
import pytest_twisted
from twisted.internet.threads import deferToThread

from router.processes import ManagedProcess, free_port
from router.settings import REPO_ROOT
from tests.wamp import EventCollector, connect_ws


@pytest.fixture
def dev_stack(tmp_path):
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJWAMP_", "REDIS_URL"))}
    env.update(DJWAMP_PORT=str(port), DJWAMP_DJANGO_PORT=str(free_port()), DJWAMP_GATEWAY_PORT=str(free_port()),
               DJWAMP_RUN_DIR=str(tmp_path / "run"),
               DJANGO_DB_PATH=str(tmp_path / "db.sqlite3"), PYTHONUNBUFFERED="1")
    runner = ManagedProcess("make-run", [sys.executable, "-m", "router", "run"], env=env, cwd=REPO_ROOT,
                            log_path=tmp_path / "run.log")
    try:
        runner.wait_for(rf"djwamp: ready: http://127\.0\.0\.1:{port}/", 120)
        yield runner, env, port
    finally:
        runner.stop()


@pytest_twisted.ensureDeferred
async def test_one_command_serves_django_and_wamp_on_one_origin_and_publish_reaches_a_subscriber(dev_stack):
    runner, env, port = dev_stack
    page = await deferToThread(lambda: urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=10).read())
    assert b"djwamp demo" in page and b"realtime/djwamp.js" in page

    session = await connect_ws(f"ws://127.0.0.1:{port}/ws", "djwamp", origin=f"http://127.0.0.1:{port}")
    events = EventCollector()
    await events.subscribe(session, "public.hello")

    # another shell: no REDIS_URL, the demo settings find the runner's private Redis
    result = await deferToThread(subprocess.run,
                                 [sys.executable, "django_site/manage.py", "publish", "public.hello", '{"text": "hi"}'],
                                 env=env, cwd=REPO_ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    event_id = result.stdout.strip()

    assert await events.wait_for(1) == [(event_id, [{"text": "hi"}], {})]
    session.leave()


def test_ctrl_c_stops_every_process_the_runner_started(dev_stack):
    runner, _env, _port = dev_stack
    children = psutil.Process(runner.pid).children(recursive=True)
    names = " ".join(" ".join(child.cmdline()) for child in children)
    assert "redis-server" in names and "crossbar" in names and "runserver" in names
    os.kill(runner.pid, signal.SIGINT)
    assert runner.proc.wait(60) == 0
    gone, alive = psutil.wait_procs(children, timeout=30)
    assert not alive, f"left running: {[p.pid for p in alive]}"
    assert "stopping" in runner.output()
