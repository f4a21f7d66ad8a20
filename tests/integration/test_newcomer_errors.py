"""The errors a newcomer provokes first answer in one line that names the fix, never a traceback."""

from __future__ import annotations

import os
import socket
import subprocess
import sys

import pytest

from router.processes import free_port
from router.settings import REPO_ROOT


def _env(**overrides: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJWAMP_", "REDIS_URL", "DJANGO_"))}
    env.update(PYTHONUNBUFFERED="1", **overrides)
    return env


def _one_line(result: subprocess.CompletedProcess) -> str:
    lines = [line for line in (result.stdout + result.stderr).splitlines() if line.strip()]
    assert "Traceback" not in result.stderr
    assert len(lines) == 1, lines
    return lines[0]


CASES = {
    "a topic outside TOPIC_PREFIXES": (["publish", "nope.hello", "{}"], {},
                                       ["not under REALTIME['TOPIC_PREFIXES']", "add its prefix"]),
    "a payload that is not JSON": (["publish", "public.hello", "{bad"], {}, ["the payload is not valid JSON"]),
    # REDIS_URL names a port nothing listens on (free_port closed its probe)
    "Redis gone": (["publish", "public.hello", "{}"], {}, ["did not take the event", "Connection refused"]),
    "production settings without SECRET_KEY": (["check"], {"DJANGO_DEBUG": "0"},
                                               ["DJANGO_SECRET_KEY must be set", "export DJANGO_SECRET_KEY="]),
    "production settings with the published development key": (
        ["check"], {"DJANGO_DEBUG": "0", "DJANGO_SECRET_KEY": "django-insecure-djwamp-development-only"},
        ["is a published development key", "export DJANGO_SECRET_KEY="]),
    "a port that is not a number": (["check"], {"DJWAMP_PORT": "80x"},
                                    ["DJWAMP_PORT='80x' is not an integer", "unset it"]),
}


@pytest.mark.parametrize("argv, env, says", CASES.values(), ids=CASES.keys())
def test_manage_py_answers_in_one_line(argv, env, says, tmp_path):
    result = subprocess.run([sys.executable, "django_site/manage.py", *argv], cwd=REPO_ROOT,
                            env=_env(REDIS_URL=f"redis://127.0.0.1:{free_port()}/0", **env),
                            capture_output=True, text=True, timeout=120)
    assert result.returncode != 0
    line = _one_line(result)
    for words in says:
        assert words in line


def _runner(tmp_path, **env: str) -> subprocess.CompletedProcess:
    env = {"DJWAMP_PORT": str(free_port()), "DJWAMP_DJANGO_PORT": str(free_port()),
           "DJWAMP_GATEWAY_PORT": str(free_port()), **env}
    return subprocess.run([sys.executable, "-m", "router", "run"], cwd=REPO_ROOT,
                          env=_env(DJWAMP_RUN_DIR=str(tmp_path / "run"), DJANGO_DB_PATH=str(tmp_path / "db.sqlite3"),
                                   **env),
                          capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize("taken", ["DJWAMP_PORT", "DJWAMP_DJANGO_PORT", "DJWAMP_GATEWAY_PORT"])
def test_make_run_on_a_taken_port_names_it_and_its_holder_and_starts_nothing(taken, tmp_path):
    ports = {name: str(free_port()) for name in ("DJWAMP_PORT", "DJWAMP_DJANGO_PORT", "DJWAMP_GATEWAY_PORT")}
    with socket.socket() as holder:
        holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        holder.bind(("127.0.0.1", int(ports[taken])))
        holder.listen(1)
        result = _runner(tmp_path, **ports)
    assert result.returncode == 2
    line = _one_line(result)
    assert f"port {ports[taken]} on 127.0.0.1 ({taken}:" in line
    assert f"is taken by pid {os.getpid()} (" in line  # this test process holds it
    assert f"set {taken}" in line
    assert not (tmp_path / "run").exists()  # no Redis, no node directory: nothing was started


def test_make_run_refuses_two_settings_on_one_port(tmp_path):
    port = str(free_port())
    result = _runner(tmp_path, DJWAMP_PORT=port, DJWAMP_GATEWAY_PORT=port)
    assert result.returncode == 2
    assert _one_line(result) == f"djwamp: DJWAMP_GATEWAY_PORT and DJWAMP_PORT are both {port}; " \
                                "give DJWAMP_GATEWAY_PORT a port of its own"


def test_make_run_refuses_a_second_run_on_the_same_private_redis(tmp_path):
    # what a second `make run` in one checkout (other ports, same .run/) would have broken
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    with socket.socket(socket.AF_UNIX) as first:
        first.bind(str(run_dir / "redis.sock"))
        first.listen(1)
        result = _runner(tmp_path)
    assert result.returncode == 2
    line = _one_line(result)
    assert "serves the private Redis socket" in line and "DJWAMP_RUN_DIR" in line


def test_make_run_on_an_address_this_machine_does_not_have_says_so_and_starts_nothing(tmp_path):
    # 192.0.2.1 is TEST-NET-1 (RFC 5737): never an address of this machine
    result = _runner(tmp_path, DJWAMP_BIND="192.0.2.1")
    assert result.returncode == 2
    line = _one_line(result)
    assert line.startswith("djwamp: cannot listen on 192.0.2.1:") and "check DJWAMP_BIND / DJWAMP_HOST" in line
    assert not (tmp_path / "run").exists()
