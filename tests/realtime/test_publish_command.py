"""``manage.py publish TOPIC [JSON] [--kwargs JSON_OBJECT]``."""

import io
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

REPO_ROOT = Path(__file__).resolve().parents[2]


def _run(*argv):
    out = io.StringIO()
    call_command("publish", *argv, stdout=out)
    return out.getvalue()


def _refused(stream, *argv):
    with pytest.raises(CommandError) as info:
        _run(*argv)
    assert stream.xlen() == 0
    return str(info.value)


def test_publish_command_prints_the_id_and_sends_the_json_as_one_arg(stream):
    output = _run("public.hello", '{"text": "hi"}')

    event = stream.only_event()
    assert output.strip() == event.id
    assert output.endswith("\n")
    assert (event.topic, event.args, event.kwargs) == ("public.hello", [{"text": "hi"}], {})


@pytest.mark.parametrize("payload, expected", [("[1, 2]", [[1, 2]]), ('"hi"', ["hi"]), ("3", [3]),
                                               ("null", [None])])
def test_publish_command_sends_any_json_value_as_the_single_arg(stream, payload, expected):
    _run("public.hello", payload)
    assert stream.only_event().args == expected


def test_publish_command_without_json_sends_an_empty_event(stream):
    _run("public.hello")
    event = stream.only_event()
    assert (event.args, event.kwargs) == ([], {})


def test_publish_command_kwargs_option_sends_kwargs(stream):
    output = _run("public.hello", "--kwargs", '{"n": 1}')

    event = stream.only_event()
    assert output.strip() == event.id
    assert (event.args, event.kwargs) == ([], {"n": 1})


def test_publish_command_sends_json_and_kwargs_together(stream):
    _run("user.42.inbox", '{"text": "hi"}', "--kwargs", '{"n": 1, "text": "x"}')

    event = stream.only_event()
    assert (event.topic, event.args, event.kwargs) == ("user.42.inbox", [{"text": "hi"}], {"n": 1, "text": "x"})


def test_publish_command_rejects_bad_json_with_a_clear_message(stream):
    message = _refused(stream, "public.hello", "{not json")
    assert "the payload is not valid JSON" in message
    assert "{not json" in message


def test_publish_command_rejects_bad_kwargs_json(stream):
    message = _refused(stream, "public.hello", "--kwargs", "{nope")
    assert "--kwargs is not valid JSON" in message


@pytest.mark.parametrize("kwargs_json", ["[1, 2]", '"text"', "1", "null"])
def test_publish_command_rejects_kwargs_that_is_not_an_object(stream, kwargs_json):
    message = _refused(stream, "public.hello", "--kwargs", kwargs_json)
    assert "--kwargs must be a JSON object" in message


def test_publish_command_rejects_a_reserved_topic(stream):
    message = _refused(stream, "wamp.session.kill", '{"text": "hi"}')
    assert "reserved" in message
    assert "wamp." in message


def test_publish_command_rejects_a_topic_outside_topic_prefixes(stream):
    assert "TOPIC_PREFIXES" in _refused(stream, "other.hello", "1")


def test_publish_command_rejects_a_malformed_topic(stream):
    assert "invalid topic" in _refused(stream, "public..hello", "1")


def test_publish_command_rejects_a_reserved_kwarg(stream):
    assert "options" in _refused(stream, "public.hello", "--kwargs", '{"options": {}}')


def test_publish_command_rejects_a_payload_over_the_limit(stream, settings):
    settings.REALTIME = {**settings.REALTIME, "MAX_PAYLOAD_BYTES": 10}
    assert "MAX_PAYLOAD_BYTES" in _refused(stream, "public.hello", '"' + "x" * 50 + '"')


def test_publish_command_reports_redis_unavailable_as_a_command_error(settings):
    # the autouse fixture points REDIS_URL at a port where nothing listens
    settings.REALTIME = {**settings.REALTIME, "REDIS_TIMEOUT": 0.5}
    with pytest.raises(CommandError, match="did not take the event"):
        _run("public.hello", "1")


def test_publish_command_refuses_kwargs_named_on_commit(stream):
    with pytest.raises(CommandError, match="on_commit"):
        _run("public.hello", "--kwargs", '{"on_commit": true}')
    assert stream.xlen() == 0


def test_manage_py_publish_with_bad_json_exits_non_zero_without_a_traceback(redis_server):
    env = {k: v for k, v in os.environ.items() if not k.startswith("DJWAMP_")}
    env["REDIS_URL"] = redis_server.url
    env["DJANGO_SETTINGS_MODULE"] = "django_site.settings"

    result = subprocess.run(
        [sys.executable, "django_site/manage.py", "publish", "public.hello", "{not json"],
        cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=120,
    )

    assert result.returncode != 0
    assert "the payload is not valid JSON" in result.stderr
    assert "Traceback" not in result.stderr
    assert result.stdout == ""
