"""The whole stack for a real browser: Redis, Django (runserver), the Crossbar node.

Each piece is its own process (not `make run`), so a test can kill and restart the node.
Chromium is Debian's (/usr/bin/chromium), driven by Playwright; no browser is downloaded.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass

import pytest

from router.processes import ManagedProcess, free_port
from router.settings import REPO_ROOT
from tests.conftest import ARTIFACTS, CrossbarNode, RedisServer, _keep_logs, make_node

CHROMIUM = os.environ.get("DJWAMP_CHROMIUM", "/usr/bin/chromium")
# what the machine's closed network and a root user need (see the env notes)
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@dataclass
class Stack:
    url: str
    node: CrossbarNode
    redis: RedisServer
    django: ManagedProcess
    env: dict

    def manage(self, *args: str) -> str:
        result = subprocess.run([sys.executable, "django_site/manage.py", *args], env=self.env, cwd=REPO_ROOT,
                                capture_output=True, text=True, timeout=120)
        assert result.returncode == 0, result.stderr
        return result.stdout


@pytest.fixture(scope="session")
def stack(tmp_path_factory):
    if not shutil.which(CHROMIUM) and not os.path.exists(CHROMIUM):
        pytest.fail(f"{CHROMIUM} is missing: `make test` installs Debian's chromium package")
    work = tmp_path_factory.mktemp("e2e")
    redis = RedisServer(work / "redis", free_port()).start()
    node = make_node(tmp_path_factory, redis.url, DJANGO_DB_PATH=str(work / "db.sqlite3"))
    env = node.env
    django = None
    try:
        stack = Stack(f"http://127.0.0.1:{node.settings.port}", node, redis, None, env)
        stack.manage("migrate", "--noinput")
        stack.manage("demo_users")
        django = ManagedProcess("django", [sys.executable, "django_site/manage.py", "runserver", "--noreload",
                                           f"127.0.0.1:{node.settings.django_port}"],
                                env=env, cwd=REPO_ROOT, log_path=work / "django.log")
        django.wait_for("Quit the server with", 60)
        stack.django = django
        node.start()
        yield stack
    finally:
        node.stop()
        _keep_logs(node)
        if django is not None:
            django.stop()
        redis.stop()


@pytest.fixture(scope="session")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def publisher(settings, stack):
    """publish() from this test process into the stack's Redis."""
    settings.REALTIME = {**settings.REALTIME, "REDIS_URL": stack.redis.url}
    from realtime import publish

    return publish


#: what a browser without WebSocket (or behind a proxy that drops it) looks like to a page
NO_WEBSOCKET = "Object.defineProperty(window, 'WebSocket', {value: undefined, configurable: false});"


@pytest.fixture
def new_page(browser, stack):
    """``new_page(user, path, websocket=True)``: a connected page in a fresh browser context;
    ``page.tab()`` opens another connected tab in the same context (same cookies)."""
    contexts = []

    def make(user: str | None = None, path: str = "/", *, websocket: bool = True):
        context = browser.new_context()
        contexts.append(context)
        if not websocket:
            context.add_init_script(NO_WEBSOCKET)

        def tab(at: str = path):
            page = context.new_page()
            page.set_default_timeout(15_000)
            page.goto(stack.url + at)
            wait_connected(page)
            return page

        first = context.new_page()
        if user:
            sign_in(first, stack, user)
        first.close()
        page = tab()
        page.tab = tab
        return page

    yield make
    for context in contexts:
        context.close()


def sign_in(page, stack, username: str, password: str = "djwamp-demo") -> None:
    page.goto(stack.url + "/accounts/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", password)
    page.click("#sign-in")
    page.wait_for_url(stack.url + "/")


def wait_connected(page, timeout: float = 15_000) -> None:
    page.wait_for_selector('body[data-realtime-state="connected"]', state="attached", timeout=timeout)


def screenshot(page, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / name), full_page=True)
