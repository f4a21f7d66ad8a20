"""`make run`: Redis (a private one unless REDIS_URL is set), Django and the Crossbar node,
on one origin, in the foreground; Ctrl-C stops all of it. And `python -m router node`: only
the node, next to a Django project's own runserver and Redis."""

from __future__ import annotations

import os
import re
import secrets
import signal
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path

from . import nodeconfig, ports
from .processes import ManagedProcess, ProcessFailed, start_crossbar, start_redis
from .settings import NodeSettings, SettingsError


def _shown(path: Path) -> str:
    """A path as a developer in the checkout would type it (relative when it is inside)."""
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def _say(message: str) -> None:
    print(f"djwamp: {message}", flush=True)


def _echo(name: str, only: str | None = None, hide: str | None = None):
    """Print a child's lines with its name; ``only`` keeps the lines matching a pattern, ``hide``
    drops those matching another. Each child's full output is also in its log file."""
    wanted = re.compile(only) if only else None
    unwanted = re.compile(hide) if hide else None

    def echo(line: str) -> None:
        if (wanted is None or wanted.search(line)) and (unwanted is None or not unwanted.search(line)):
            print(f"[{name}] {line}", flush=True)
    return echo


# The foreground shows what needs a developer's eye: requests, problems and djwamp's own lines;
# every child's whole output is in .run/ (docs: README, "What make run prints").
#: Redis: only trouble (its start-up banner and the overcommit notice are in .run/redis.log)
_REDIS_WORTH_SHOWING = r"(?i)\b(error|fatal|can't|cannot|failed|denied|refused)\b"
#: runserver's start-up banner, printed again at every autoreload
_DJANGO_BANNER = (r"^\s*$|^Watching for file changes|^Performing system checks|^System check identified no issues"
                  r"|^[A-Z][a-z]+ \d{2}, \d{4} - \d\d:\d\d:\d\d$|^Django version .*, using settings"
                  r"|^Starting development server at|^Quit the server with|^WARNING: This is a development server"
                  r"|^For more information on production servers see")


#: set once the runner stops its children: what they print while stopping is not news
_STOPPING = threading.Event()


class _CrossbarLines:
    """Crossbar's lines worth a developer's eye, and each one's continuation lines.

    Crossbar logs every worker, realm, role and component start at info; the foreground shows
    problems (errors, warnings, refusals, tracebacks) and nothing of a normal start.
    """

    STAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\S* \[[^]]*\] ")
    WORTH = re.compile(r"Traceback|Unhandled|CRITICAL|[Ee]rror|[Ff]ail|[Ww]arn|refused|denied|dropped|could not"
                       r"|waiting for|gone|[Ee]xception")
    #: the bridge's counters: in the node log every 60 s when they change, not news for the terminal
    QUIET = re.compile(r"\] bridge stats: ")

    def __init__(self, echo):
        self._echo = echo
        self._showing = False

    def __call__(self, line: str) -> None:
        if _STOPPING.is_set():
            return  # the workers' shutdown lines (connections lost, components stopped) are expected
        stamped = self.STAMP.match(line)
        if stamped:
            self._showing = bool(self.WORTH.search(line)) and not self.QUIET.search(line)
        if self._showing:
            self._echo(line)


def _child_env() -> dict[str, str]:
    """This environment for the children, with a backend secret for this run if none is set."""
    env = dict(os.environ)
    env.setdefault("PYTHONUNBUFFERED", "1")
    if not env.get("DJWAMP_BACKEND_SECRET"):
        # per run, never written to disk: only this node's components need it
        env["DJWAMP_BACKEND_SECRET"] = secrets.token_urlsafe(32)
    return env


def _ports_line(listeners: list[ports.Listener]) -> str:
    return "ports: " + ", ".join(f"{listener.port} {listener.name} ({listener.variable})" for listener in listeners)


def run() -> int:
    env = _child_env()
    env.setdefault("DJANGO_SETTINGS_MODULE", "django_site.settings")
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
    _say(_ports_line(ports.listeners(settings)))

    def start(started: list[ManagedProcess]) -> None:
        if env.get("REDIS_URL"):
            _say("using the Redis that REDIS_URL names")
        else:
            # On a socket in .run/, where the demo settings look when REDIS_URL is unset, so
            # `manage.py publish` in another shell reaches it; no TCP port, not the machine's Redis.
            _say(f"starting a private redis-server on {_shown(settings.dev_redis_socket)} (set REDIS_URL to use yours)")
            started.append(start_redis(settings.run_dir / "redis", unixsocket=settings.dev_redis_socket,
                                       log_path=settings.run_dir / "redis.log",
                                       echo=_echo("redis", _REDIS_WORTH_SHOWING)))

        demo_users = subprocess.run([sys.executable, "django_site/manage.py", "demo_users"], env=env,
                                    cwd=nodeconfig.REPO_ROOT, capture_output=True, text=True)
        demo_login = demo_users.stdout.strip() if demo_users.returncode == 0 else ""

        settings.run_dir.mkdir(parents=True, exist_ok=True)
        _say(f"starting Django on 127.0.0.1:{settings.django_port} (behind the node; its log: "
             f"{_shown(settings.run_dir / 'django.log')})")
        django = ManagedProcess(
            "django",
            [sys.executable, "django_site/manage.py", "runserver", f"127.0.0.1:{settings.django_port}"],
            env=env, cwd=nodeconfig.REPO_ROOT, echo=_echo("django", hide=_DJANGO_BANNER),
            log_path=settings.run_dir / "django.log",
        )
        started.append(django)
        django.wait_for(r"Quit the server with", 60)

        cbdir = settings.run_dir / "node"
        nodeconfig.write(settings, cbdir)
        node_log = settings.run_dir / "node.log"
        _say(f"starting the Crossbar node ({_shown(cbdir / 'config.json')}; its log: {_shown(node_log)})")
        started.append(start_crossbar(cbdir, env, log_path=node_log,
                                      echo=_CrossbarLines(_echo("crossbar"))))

        started.append(ManagedProcess(
            "ticker", [sys.executable, "django_site/manage.py", "demo_ticker"], env=env,
            cwd=nodeconfig.REPO_ROOT, echo=_echo("ticker")))

        if demo_login:
            _say(demo_login)
        _say(f"admin: {settings.public_url}admin/ (make a superuser: "
             f"{_shown(Path(sys.executable))} django_site/manage.py createsuperuser)")
        _say(f"ready: {settings.public_url}  (WAMP: {settings.ws_url}, realm {settings.realm}) "
             "- Ctrl-C stops everything")

    return _supervised(start)


def node(cbdir: Path | None = None) -> int:
    """``python -m router node``: only the Crossbar node, for a Django project of your own.

    Run it in the project's directory (where ``manage.py`` is), next to your own ``runserver``
    on ``DJWAMP_DJANGO_PORT`` and your own Redis (``REALTIME["REDIS_URL"]``). It renders the
    node's config into ``cbdir`` (default ``.crossbar/`` there), gives the components the
    project on their path and your settings, checks the ports and ``manage.py check`` first, and
    runs Crossbar in the foreground.
    """
    project = Path.cwd()
    env = _child_env()
    if not env.get("DJANGO_SETTINGS_MODULE"):
        found = _settings_of_manage_py(project / "manage.py")
        if found is None:
            _say("set DJANGO_SETTINGS_MODULE to your project's settings (e.g. mysite.settings), or run this "
                 "in the directory of your manage.py")
            return 2
        env["DJANGO_SETTINGS_MODULE"] = found
    # the components import the project the way manage.py does: from its directory
    env["PYTHONPATH"] = os.pathsep.join([str(project), *filter(None, [env.get("PYTHONPATH")])])
    try:
        settings = NodeSettings.from_env(env)
        ports.check(settings, django=False)
    except (SettingsError, ports.PortTaken) as exc:
        _say(str(exc))
        return 2
    check = subprocess.run([sys.executable, "-m", "django", "check"], env=env, cwd=project,
                           capture_output=True, text=True)
    if check.returncode != 0:
        problem = (check.stderr.strip() or check.stdout.strip()).splitlines()
        # system check errors are already one per line; an import error's last line says it
        shown = problem if problem and not problem[0].startswith("Traceback") else problem[-1:]
        _say(f"`manage.py check` with DJANGO_SETTINGS_MODULE={env['DJANGO_SETTINGS_MODULE']} failed:")
        for line in shown:
            print(f"  {line}", flush=True)
        return 2

    cbdir = (cbdir or project / ".crossbar").resolve()
    try:
        nodeconfig.write(settings, cbdir, pythonpath=[project])
    except OSError as exc:
        _say(f"cannot write the node's config into {_shown(cbdir)}: {exc.strerror}; give --cbdir a directory")
        return 2
    node_log = cbdir / "node.log"
    _say(f"settings: {env['DJANGO_SETTINGS_MODULE']}; {_ports_line(ports.listeners(settings, django=False))}")
    _say(f"starting the Crossbar node ({_shown(cbdir / 'config.json')}; its log: {_shown(node_log)})")

    def start(started: list[ManagedProcess]) -> None:
        started.append(start_crossbar(cbdir, env, log_path=node_log, echo=_CrossbarLines(_echo("crossbar"))))
        django = f"127.0.0.1:{settings.django_port}"
        if ports.is_free("127.0.0.1", settings.django_port):
            _say(f"nothing listens on {django} yet: start your Django there "
                 f"(python manage.py runserver {django}); the node forwards / to it")
        _say(f"ready: {settings.public_url}  (WAMP: {settings.ws_url}, realm {settings.realm}; pages from "
             f"Django on {django}) - Ctrl-C stops the node")

    return _supervised(start)


def _settings_of_manage_py(manage_py: Path) -> str | None:
    """The settings module a ``manage.py`` sets by default (``startproject`` writes one)."""
    try:
        match = re.search(r"""os\.environ\.setdefault\(\s*["']DJANGO_SETTINGS_MODULE["']\s*,\s*["']([\w.]+)["']""",
                          manage_py.read_text())
    except OSError:
        return None
    return match.group(1) if match else None


def _supervised(start: Callable[[list[ManagedProcess]], None]) -> int:
    """Run ``start(started)``, which starts processes into ``started`` and says it is ready; then
    wait for a signal (0) or for one of them to exit (1). They are all stopped, whatever happens."""
    started: list[ManagedProcess] = []
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, lambda *_: stop.set())
    try:
        start(started)
        return _supervise(started, stop)
    except ProcessFailed as exc:
        _say(str(exc))
        return 1
    except KeyboardInterrupt:
        return 0
    finally:
        _stop_all(started)


def _supervise(started: list[ManagedProcess], stop: threading.Event) -> int:
    """Wait for a signal (0), or for one of the processes to exit (1)."""
    while not stop.is_set():
        for proc in started:
            if not proc.running():
                _say(f"{proc.name} exited with code {proc.proc.returncode}; stopping")
                return 1
        stop.wait(0.5)
    return 0


def _stop_all(started: list[ManagedProcess]) -> None:
    _STOPPING.set()
    if started:
        _say("stopping")
    for proc in reversed(started):
        proc.stop()
