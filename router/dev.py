"""`make run`: Redis (a private one unless REDIS_URL is set), Django and the Crossbar node,
on one origin, in the foreground; Ctrl-C stops all of it."""

from __future__ import annotations

import os
import re
import secrets
import signal
import subprocess
import sys
import threading

from . import nodeconfig, ports
from .processes import ManagedProcess, ProcessFailed, start_crossbar, start_redis
from .settings import NodeSettings, SettingsError



def _say(message: str) -> None:
    print(f"djwamp: {message}", flush=True)


def _echo(name: str, only: str | None = None):
    """Print a child's lines with its name; ``only`` keeps the lines matching a pattern."""
    wanted = re.compile(only) if only else None

    def echo(line: str) -> None:
        if wanted is None or wanted.search(line):
            print(f"[{name}] {line}", flush=True)
    return echo


# Crossbar logs every session at info level; a developer needs ours, warnings and errors.
_CROSSBAR_WORTH_SHOWING = r"djwamp|bridge|router refused|[Ee]rror|Traceback|[Ww]arn|[Ff]ailed|denied|critical"


def run() -> int:
    env = dict(os.environ)
    env.setdefault("PYTHONUNBUFFERED", "1")
    env.setdefault("DJANGO_SETTINGS_MODULE", "django_site.settings")
    if not env.get("DJWAMP_BACKEND_SECRET"):
        # per run, never written to disk: only this node's components need it
        env["DJWAMP_BACKEND_SECRET"] = secrets.token_urlsafe(32)
    try:
        settings = NodeSettings.from_env(env)
    except SettingsError as exc:
        _say(f"configuration error: {exc}")
        return 2
    env["DJWAMP_DJANGO_PORT"] = str(settings.django_port)
    try:
        # before anything starts: a taken port is one line here, not a traceback after Redis and Django
        ports.check(settings, redis_socket=None if env.get("REDIS_URL") else settings.dev_redis_socket)
    except ports.PortTaken as exc:
        _say(str(exc))
        return 2
    _say("ports: " + ", ".join(f"{listener.port} {listener.purpose} ({listener.variable})"
                               for listener in ports.listeners(settings)))

    started: list[ManagedProcess] = []
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, lambda *_: stop.set())
    try:
        if env.get("REDIS_URL"):
            _say("using the Redis that REDIS_URL names")
        else:
            # On a socket in .run/, where the demo settings look when REDIS_URL is unset, so
            # `manage.py publish` in another shell reaches it; no TCP port, not the machine's Redis.
            _say(f"starting a private redis-server on {settings.dev_redis_socket} (set REDIS_URL to use yours)")
            started.append(start_redis(settings.run_dir / "redis", unixsocket=settings.dev_redis_socket,
                                       log_path=settings.run_dir / "redis.log", echo=_echo("redis", r" # ")))

        demo_users = subprocess.run([sys.executable, "django_site/manage.py", "demo_users"], env=env,
                                    cwd=nodeconfig.REPO_ROOT, capture_output=True, text=True)
        demo_login = demo_users.stdout.strip() if demo_users.returncode == 0 else ""

        _say(f"starting Django on 127.0.0.1:{settings.django_port} (behind the node)")
        django = ManagedProcess(
            "django",
            [sys.executable, "django_site/manage.py", "runserver", f"127.0.0.1:{settings.django_port}"],
            env=env, cwd=nodeconfig.REPO_ROOT, echo=_echo("django"),
        )
        started.append(django)
        django.wait_for(r"Quit the server with", 60)

        cbdir = settings.run_dir / "node"
        nodeconfig.write(settings, cbdir)
        node_log = settings.run_dir / "node.log"
        _say(f"starting the Crossbar node ({cbdir}/config.json; full log in {node_log})")
        started.append(start_crossbar(cbdir, env, log_path=node_log,
                                      echo=_echo("crossbar", _CROSSBAR_WORTH_SHOWING)))

        started.append(ManagedProcess(
            "ticker", [sys.executable, "django_site/manage.py", "demo_ticker"], env=env,
            cwd=nodeconfig.REPO_ROOT, echo=_echo("ticker")))

        if demo_login:
            _say(demo_login)
        _say(f"ready: {settings.public_url}  (WAMP: {settings.ws_url}, realm {settings.realm}) "
             "- Ctrl-C stops everything")
        while not stop.is_set():
            for proc in started:
                if not proc.running():
                    _say(f"{proc.name} exited with code {proc.proc.returncode}; stopping")
                    return 1
            stop.wait(0.5)
        return 0
    except ProcessFailed as exc:
        _say(str(exc))
        return 1
    except KeyboardInterrupt:
        return 0
    finally:
        if started:
            _say("stopping")
        for proc in reversed(started):
            proc.stop()
