"""`make run` as a newcomer uses it: one command, one origin, publish from another shell."""

import os
import re
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
    # as `make run` does first
    subprocess.run([sys.executable, "django_site/manage.py", "migrate", "--noinput", "--verbosity", "0"],
                   env=env, cwd=REPO_ROOT, check=True, timeout=120)
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


#: every line a clean start prints, each explained in the README ("What make run prints")
CLEAN_START = [r"djwamp: ports: \d+ node \(DJWAMP_PORT\), \d+ Django \(DJWAMP_DJANGO_PORT\), "
               r"\d+ fallback gateway \(DJWAMP_GATEWAY_PORT\)$",
               r"djwamp: starting a private redis-server on \S+redis\.sock \(set REDIS_URL to use yours\)$",
               r"djwamp: starting Django on 127\.0\.0\.1:\d+ \(behind the node; its log: \S+django\.log\)$",
               r"djwamp: starting the Crossbar node \(\S+config\.json; its log: \S+node\.log\)$",
               r"djwamp: demo login: alice or bob / djwamp-demo$",
               r"djwamp: admin: http://127\.0\.0\.1:\d+/admin/ "
               r"\(make a superuser: \S+ django_site/manage\.py createsuperuser\)$",
               r"djwamp: ready: http://127\.0\.0\.1:\d+/  "
               r"\(WAMP: ws://127\.0\.0\.1:\d+/ws, realm djwamp\) - Ctrl-C stops everything$"]


def test_a_clean_start_prints_its_own_lines_and_nothing_else(dev_stack):
    runner, _env, _port = dev_stack
    lines = runner.output().splitlines()
    ready = next(i for i, line in enumerate(lines) if line.startswith("djwamp: ready: "))
    assert len(lines[: ready + 1]) == len(CLEAN_START), lines[: ready + 1]
    for pattern, line in zip(CLEAN_START, lines[: ready + 1], strict=True):
        assert re.match(pattern, line), line


def test_the_foreground_shows_crossbar_problems_with_their_tracebacks_and_hides_routine_lines():
    from router.dev import _CrossbarLines

    shown: list[str] = []
    lines = _CrossbarLines(shown.append)
    stamp = "2026-12-04T21:09:37+0000 [Container   27313] "
    for line in [stamp + 'Realm "realm001" (category="standalone", name="djwamp") started',
                 "{'authorizer': 'djwamp.authorize', 'id': 'role001', 'name': 'anonymous'}",
                 stamp + "djwamp bridge ready: djwamp:events -> realm djwamp",
                 stamp + "bridge stats: {'delivered': 20, 'redis_errors': 1}",
                 stamp + "bridge waiting for Redis (not connected to Redis at unix:///x); retry in 0.6 s",
                 stamp + "Unhandled error in Deferred:",
                 "Traceback (most recent call last):",
                 '  File "x.py", line 1, in <module>',
                 stamp + "djwamp node ready: every component has started; admitting browsers"]:
        lines(line)
    assert shown == [stamp + "bridge waiting for Redis (not connected to Redis at unix:///x); retry in 0.6 s",
                     stamp + "Unhandled error in Deferred:", "Traceback (most recent call last):",
                     '  File "x.py", line 1, in <module>']


def test_the_private_redis_dying_stops_the_stack_without_a_traceback(dev_stack):
    runner, _env, _port = dev_stack
    [redis] = [child for child in psutil.Process(runner.pid).children(recursive=True)
               if "redis-server" in " ".join(child.cmdline())]
    redis.kill()
    assert runner.proc.wait(60) == 1
    after_ready = runner.output().split("Ctrl-C stops everything", 1)[1]
    # the runner says what exited; the bridge and the ticker, each in a line, what they saw
    assert re.search(r"^djwamp: redis:\S+redis\.sock exited with code -9; stopping$", after_ready, re.M), after_ready
    assert "Traceback" not in after_ready


def test_a_second_make_run_on_the_same_ports_stops_before_starting_anything(dev_stack):
    _runner, env, port = dev_stack
    second = subprocess.run([sys.executable, "-m", "router", "run"], env=env, cwd=REPO_ROOT,
                            capture_output=True, text=True, timeout=60)
    assert second.returncode == 2
    assert second.stdout.splitlines() == [second.stdout.strip()]  # one line
    line = second.stdout.strip()
    assert line.startswith(f"djwamp: port {port} on 127.0.0.1 (DJWAMP_PORT: the node's pages and WebSocket) "
                           "is taken by pid ")
    assert "crossbar" in line and line.endswith("; stop that or set DJWAMP_PORT to a free port")
