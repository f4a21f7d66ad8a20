"""docs/howto/add-to-an-existing-project.md, followed step by step on a fresh startproject.

The how-to marks each block with what to do with it (``<!-- howto: run -->``, ``append FILE``,
``start NAME "ready text"``, ``expect NAME``, ``skip``); this test does exactly that, with the
commands as written. Only the ports differ (free ones, through the ``DJWAMP_*PORT`` variables and
in the one command that names a port) and Redis is the tests' private one (``REDIS_URL``, which
the how-to's settings read).
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from router.processes import ManagedProcess, free_port
from router.settings import REPO_ROOT

HOWTO = REPO_ROOT / "docs" / "howto" / "add-to-an-existing-project.md"
STEP = re.compile(r"<!-- howto: (?P<action>\w+)(?P<arg>[^>]*?) -->\n```\w*\n(?P<body>.*?)```", re.S)


def steps() -> list[tuple[str, str, str]]:
    return [(m["action"], m["arg"].strip(), m["body"]) for m in STEP.finditer(HOWTO.read_text())]


def test_the_howto_marks_every_command_block():
    # a block without a marker would be a step this test silently skips
    text = HOWTO.read_text()
    fenced = re.findall(r"```(sh|python)\n", text)
    assert len(fenced) == sum(1 for action, _arg, _body in steps() if action != "expect")
    assert [action for action, _arg, _body in steps()].count("expect") == 1


@pytest.fixture
def project_env(tmp_path, redis_server):
    ports = {"node": free_port(), "django": free_port(), "gateway": free_port()}
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("DJWAMP_", "REDIS_URL", "DJANGO_")) and k != "PYTHONPATH"}
    env.update(PATH=os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")]),
               REDIS_URL=redis_server.url, PYTHONUNBUFFERED="1",
               DJWAMP_PORT=str(ports["node"]), DJWAMP_DJANGO_PORT=str(ports["django"]),
               DJWAMP_GATEWAY_PORT=str(ports["gateway"]),
               DJWAMP_NODE_ID=f"howto-{ports['node']}")
    return env, ports


def _with_ports(command: str, ports: dict[str, int]) -> str:
    return command.replace("127.0.0.1:8081", f"127.0.0.1:{ports['django']}")


def test_following_the_howto_on_a_fresh_project_delivers_a_published_event(tmp_path, project_env):
    env, ports = project_env
    cwd = tmp_path
    started: dict[str, ManagedProcess] = {}
    published: list[str] = []
    try:
        for action, arg, body in steps():
            if action == "skip":
                continue
            if action == "run":
                for line in filter(None, (raw.strip() for raw in body.splitlines())):
                    if line.startswith("cd "):
                        cwd = cwd / line[3:]
                        continue
                    result = subprocess.run(shlex.split(_with_ports(line, ports)), cwd=cwd, env=env,
                                            capture_output=True, text=True, timeout=180)
                    assert result.returncode == 0, f"{line}\n{result.stdout}\n{result.stderr}"
                    if "manage.py publish" in line:
                        published.append(result.stdout.strip())
            elif action == "append":
                with open(cwd / arg, "a") as target:
                    target.write("\n" + body)
            elif action == "start":
                name, ready = arg.split(" ", 1)
                command = _with_ports(body.strip(), ports)
                started[name] = ManagedProcess(name, shlex.split(command), env=env, cwd=cwd,
                                               log_path=tmp_path / f"{name}.log")
                started[name].wait_for(re.escape(ready.strip('"')), 180)
            elif action == "expect":
                for line in filter(None, body.splitlines()):
                    # the how-to shows an example id; the real one is the one publish printed
                    pattern = re.escape(line).replace(re.escape("1732441234567-0"), r"(\d+-\d+)")
                    got = started[arg].wait_for(pattern, 30)
                    assert re.search(pattern, got)[1] == published[-1]
            else:
                raise AssertionError(f"unknown how-to step {action!r}")

        assert set(started) == {"django", "node", "listener"}
        # the project's own pages, through the node, from the project's own runserver
        page = urllib.request.urlopen(f"http://127.0.0.1:{ports['node']}/admin/login/", timeout=10).read()
        assert b"Django administration" in page
        node_output = started["node"].output()
        assert "djwamp: settings: mysite.settings;" in node_output
        assert (cwd / ".crossbar" / "config.json").exists()
    finally:
        for proc in reversed(started.values()):
            proc.stop()


def test_node_outside_a_project_says_what_to_set(tmp_path, project_env):
    env, _ports = project_env
    result = subprocess.run([sys.executable, "-m", "router", "node"], cwd=tmp_path, env=env,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert result.stdout.strip() == ("djwamp: set DJANGO_SETTINGS_MODULE to your project's settings "
                                     "(e.g. mysite.settings), or run this in the directory of your manage.py")
    assert not (tmp_path / ".crossbar").exists()


def test_node_with_settings_that_fail_their_checks_starts_nothing(tmp_path, project_env):
    env, _ports = project_env
    subprocess.run(["django-admin", "startproject", "mysite"], cwd=tmp_path, env=env, check=True, timeout=60)
    project = tmp_path / "mysite"
    with open(project / "mysite" / "settings.py", "a") as settings:
        settings.write('\nINSTALLED_APPS += ["realtime"]\nREALTIME = {"HISTORY": {"public.": 0}}\n')
    result = subprocess.run([sys.executable, "-m", "router", "node"], cwd=project, env=env,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert "Traceback" not in result.stdout + result.stderr
    assert result.stdout.startswith("djwamp: `manage.py check` with DJANGO_SETTINGS_MODULE=mysite.settings failed:")
    assert "realtime.E007" in result.stdout
    assert not (project / ".crossbar").exists()


def test_node_with_a_cbdir_that_is_a_file_says_so_and_starts_nothing(tmp_path, project_env):
    env, _ports = project_env
    subprocess.run(["django-admin", "startproject", "mysite"], cwd=tmp_path, env=env, check=True, timeout=60)
    project = tmp_path / "mysite"
    (project / "notes.txt").write_text("not a directory")
    result = subprocess.run([sys.executable, "-m", "router", "node", "--cbdir", "notes.txt"], cwd=project,
                            env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and "Traceback" not in result.stdout + result.stderr
    assert result.stdout.splitlines()[-1] == ("djwamp: cannot write the node's config into notes.txt: "
                                              "File exists; give --cbdir a directory")
