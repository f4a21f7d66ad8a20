"""The browser bundle Django serves is the build of autobahn_js/src (so Python-only users
need no node), and the template tag puts it and its configuration in a page."""

import json
import re
import shutil
import subprocess

import pytest
from django.template import Context, Template, TemplateSyntaxError
from django.test import RequestFactory

from router.settings import REPO_ROOT

CLIENT = REPO_ROOT / "autobahn_js"
BUNDLE = REPO_ROOT / "django_site" / "realtime" / "static" / "realtime" / "djwamp.js"


def test_committed_bundle_is_the_build_of_the_client_source(tmp_path):
    if not (CLIENT / "node_modules").exists():
        pytest.fail("autobahn_js/node_modules is missing: `make test` runs npm ci")
    out = tmp_path / "djwamp.js"
    subprocess.run([shutil.which("npx") or "npx", "esbuild", "src/index.js", "--bundle", "--format=iife",
                    "--global-name=djwamp", "--target=es2019", "--minify", "--legal-comments=inline",
                    f"--outfile={out}"], cwd=CLIENT, check=True, capture_output=True, timeout=120)
    assert out.read_bytes() == BUNDLE.read_bytes(), "run `make client` and commit the bundle"


def test_build_script_and_this_test_agree_on_the_esbuild_options():
    script = json.loads((CLIENT / "package.json").read_text())["scripts"]["build"]
    assert "--minify --legal-comments=inline" in script and "--global-name=djwamp" in script


def render(source: str, request=None) -> str:
    return Template("{% load realtime %}" + source).render(Context({"request": request}))


def test_template_tag_renders_the_bundle_and_the_configuration(settings):
    html = render("{% realtime_client %}", RequestFactory().get("/"))
    assert '<script src="/static/realtime/djwamp.js"></script>' in html
    config = json.loads(re.search(r'<script id="djwamp-config" type="application/json">(.*?)</script>', html).group(1))
    assert config == {"realm": "djwamp", "auth": "cookie", "ticketUrl": "/realtime/ticket/"}


def test_ticket_mode_carries_the_csrf_token_for_the_ticket_view():
    html = render('{% realtime_client auth="ticket" url="wss://rt.example.com/ws" %}', RequestFactory().get("/"))
    config = json.loads(re.search(r'type="application/json">(.*?)</script>', html).group(1))
    assert config["auth"] == "ticket" and config["url"] == "wss://rt.example.com/ws" and config["csrfToken"]


def test_template_tag_refuses_an_unknown_auth_mode():
    with pytest.raises(TemplateSyntaxError, match="cookie.*ticket"):
        render('{% realtime_client auth="password" %}')


def test_cookie_mode_works_without_the_ticket_url(settings):
    settings.ROOT_URLCONF = "tests.client.urls_without_realtime"
    html = render("{% realtime_client %}", RequestFactory().get("/"))
    config = json.loads(re.search(r'type="application/json">(.*?)</script>', html).group(1))
    assert "ticketUrl" not in config
    with pytest.raises(TemplateSyntaxError, match="realtime.urls"):
        render('{% realtime_client auth="ticket" %}', RequestFactory().get("/"))
