"""settings.REALTIME: defaults, validation (system checks and get_settings), cache reset."""

import io

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.core.management import call_command
from django.core.management.base import SystemCheckError
from django.test import override_settings

from realtime._conf import find_problems, get_settings
from realtime.checks import check_settings

EXPECTED_DEFAULTS = {
    "REALM": "djwamp",
    "REDIS_URL": "redis://localhost:6379/0",
    "REDIS_TIMEOUT": 2.0,
    "STREAM": "djwamp:events",
    "STREAM_MAXLEN": 100_000,
    "MAX_PAYLOAD_BYTES": 65536,
    "MAX_EVENT_AGE": 300.0,
    "TOPIC_PREFIXES": ("public.", "user.", "staff."),
    # the limits per client, as docs/topics/security.md#limits-per-client states them
    "MAX_CONNECTIONS_PER_IP": 100,
    "AUTH_FAILURES_PER_MINUTE": 20,
    "GATEWAY_MAX_SESSIONS": 10_000,
    "GATEWAY_MAX_SESSIONS_PER_COOKIE": 20,
    "GATEWAY_MAX_SUBSCRIPTIONS": 100,
}


def _as_dict(conf):
    return {name: getattr(conf, name) for name in EXPECTED_DEFAULTS}


def _ids(errors):
    return [error.id for error in errors]


# --- values -----------------------------------------------------------------------------------

def test_get_settings_defaults_when_realtime_is_not_set(settings):
    del settings.REALTIME
    assert _as_dict(get_settings()) == EXPECTED_DEFAULTS


def test_get_settings_defaults_when_realtime_is_empty(settings):
    settings.REALTIME = {}
    assert _as_dict(get_settings()) == EXPECTED_DEFAULTS
    assert check_settings() == []


def test_get_settings_merges_the_given_keys_over_the_defaults(settings):
    settings.REALTIME = {"STREAM": "my:events", "REDIS_TIMEOUT": 1, "TOPIC_PREFIXES": ["game."]}

    conf = get_settings()

    assert conf.STREAM == "my:events"
    assert conf.REDIS_TIMEOUT == 1
    assert conf.TOPIC_PREFIXES == ("game.",)
    assert conf.REALM == "djwamp"
    assert conf.MAX_PAYLOAD_BYTES == 65536


def test_get_settings_is_read_only(settings):
    conf = get_settings()
    with pytest.raises(AttributeError):
        conf.STREAM = "other"


def test_redis_display_hides_credentials(settings):
    settings.REALTIME = {"REDIS_URL": "redis://user:s3cretpass@redis.example:6380/2"}
    assert get_settings().redis_display == "redis://***@redis.example:6380/2"

    settings.REALTIME = {"REDIS_URL": "redis://:s3cretpass@redis.example/0"}
    assert get_settings().redis_display == "redis://***@redis.example/0"

    settings.REALTIME = {"REDIS_URL": "redis://redis.example:6380/2"}
    assert get_settings().redis_display == "redis://redis.example:6380/2"


def test_the_project_settings_pass_the_realtime_checks():
    assert check_settings() == []


# --- E001: not a dict ---------------------------------------------------------------------------

@pytest.mark.parametrize("value", ["redis://localhost:6379/0", None, [("STREAM", "x")], 1])
def test_realtime_that_is_not_a_dict_is_e001(settings, value):
    settings.REALTIME = value

    errors = check_settings()

    assert _ids(errors) == ["realtime.E001"]
    assert type(value).__name__ in errors[0].msg
    with pytest.raises(ImproperlyConfigured, match="realtime.E001"):
        get_settings()


# --- E002: unknown key -----------------------------------------------------------------------

def test_unknown_key_is_e002_with_a_did_you_mean_hint(settings):
    settings.REALTIME = {"REDIS_URLS": "redis://127.0.0.1:1/0"}

    errors = check_settings()

    assert _ids(errors) == ["realtime.E002"]
    assert "REDIS_URLS" in errors[0].msg
    assert errors[0].hint == "Did you mean 'REDIS_URL'?"


def test_unknown_key_without_a_close_match_lists_the_known_keys(settings):
    settings.REALTIME = {"COMPLETELY_DIFFERENT": 1}

    errors = check_settings()

    assert _ids(errors) == ["realtime.E002"]
    assert "Known keys" in errors[0].hint
    for key in EXPECTED_DEFAULTS:
        assert key in errors[0].hint


def test_every_unknown_key_is_reported(settings):
    settings.REALTIME = {"STREAMS": "x", "TIMEOUT": 1, "STREAM": "ok"}
    assert _ids(check_settings()) == ["realtime.E002", "realtime.E002"]


# --- E003: bad values ------------------------------------------------------------------------

BAD_VALUES = [
    ("REDIS_TIMEOUT", 0),
    ("REDIS_TIMEOUT", -1),
    ("REDIS_TIMEOUT", "2"),
    ("REDIS_TIMEOUT", True),
    ("REDIS_TIMEOUT", float("nan")),
    ("STREAM_MAXLEN", "10"),
    ("STREAM_MAXLEN", 0),
    ("STREAM_MAXLEN", 10.5),
    ("MAX_PAYLOAD_BYTES", 0),
    ("MAX_PAYLOAD_BYTES", "64k"),
    ("MAX_EVENT_AGE", 0),
    ("TOPIC_PREFIXES", ["public"]),
    ("TOPIC_PREFIXES", []),
    ("TOPIC_PREFIXES", "public."),
    ("TOPIC_PREFIXES", ["public.", "bad prefix."]),
    ("TOPIC_PREFIXES", [".public."]),
    ("REDIS_URL", "http://x"),
    ("REDIS_URL", "localhost:6379"),
    ("REDIS_URL", None),
    ("STREAM", ""),
    ("STREAM", None),
    ("REALM", "bad realm"),
    ("REALM", ""),
]


@pytest.mark.parametrize("key, value", BAD_VALUES)
def test_bad_value_is_e003_naming_the_key(settings, key, value):
    settings.REALTIME = {key: value}

    errors = check_settings()

    assert _ids(errors) == ["realtime.E003"]
    assert repr(key) in errors[0].msg
    assert errors[0].hint.startswith("Use ")
    with pytest.raises(ImproperlyConfigured, match="realtime.E003") as info:
        get_settings()
    assert key in str(info.value)


@pytest.mark.parametrize("key, value", [
    ("REDIS_URL", "rediss://h:6380/0"),
    ("REDIS_URL", "unix:///tmp/redis.sock"),
    ("REDIS_TIMEOUT", 0.1),
    ("REDIS_TIMEOUT", 3),
    ("TOPIC_PREFIXES", ("a.", "b.c.")),
    ("MAX_EVENT_AGE", 1),
])
def test_good_values_pass(settings, key, value):
    settings.REALTIME = {key: value}
    assert check_settings() == []
    assert getattr(get_settings(), key) == (tuple(value) if isinstance(value, list) else value)


def test_all_problems_are_reported_at_once(settings):
    settings.REALTIME = {"REDIS_URLS": "x", "REDIS_TIMEOUT": 0, "STREAM_MAXLEN": "10"}
    assert _ids(check_settings()) == ["realtime.E002", "realtime.E003", "realtime.E003"]


# --- manage.py check, get_settings --------------------------------------------------------------

@pytest.mark.parametrize("realtime, error_id", [
    ({"REDIS_URLS": "redis://127.0.0.1:1/0"}, "realtime.E002"),
    ({"REDIS_TIMEOUT": 0}, "realtime.E003"),
    ("not a dict", "realtime.E001"),
])
def test_check_command_fails_naming_the_error_id(settings, realtime, error_id):
    settings.REALTIME = realtime
    with pytest.raises(SystemCheckError, match=error_id):
        call_command("check")


def test_check_command_error_includes_the_hint(settings):
    settings.REALTIME = {"REDIS_URLS": "redis://127.0.0.1:1/0"}
    with pytest.raises(SystemCheckError, match="Did you mean 'REDIS_URL'"):
        call_command("check")


def test_check_command_passes_with_the_project_settings():
    out = io.StringIO()
    call_command("check", stdout=out)
    assert "no issues" in out.getvalue()


def test_get_settings_raises_improperly_configured_naming_the_first_problem(settings):
    settings.REALTIME = {"REDIS_URLS": "x", "REDIS_TIMEOUT": 0}
    with pytest.raises(ImproperlyConfigured) as info:
        get_settings()
    message = str(info.value)
    assert "REDIS_URLS" in message
    assert "Did you mean 'REDIS_URL'?" in message
    assert "(realtime.E002)" in message


def test_publish_with_bad_settings_raises_improperly_configured(settings):
    from realtime import publish

    settings.REALTIME = {**settings.REALTIME, "STREAM_MAXLEN": "10"}
    with pytest.raises(ImproperlyConfigured, match="STREAM_MAXLEN"):
        publish("public.x", 1)


# --- cache and setting_changed -------------------------------------------------------------------

def test_get_settings_is_cached_until_the_setting_changes(settings):
    settings.REALTIME = {"STREAM": "first"}
    first = get_settings()
    assert get_settings() is first

    settings.REALTIME = {"STREAM": "second"}
    assert get_settings().STREAM == "second"


def test_override_settings_resets_the_cached_value_on_enter_and_exit(settings):
    settings.REALTIME = {"STREAM": "outer"}
    assert get_settings().STREAM == "outer"

    with override_settings(REALTIME={"STREAM": "inner"}):
        assert get_settings().STREAM == "inner"

    assert get_settings().STREAM == "outer"


def test_a_bad_override_does_not_stick_after_it_ends(settings):
    settings.REALTIME = {"STREAM": "good"}
    with override_settings(REALTIME={"REDIS_TIMEOUT": 0}):
        with pytest.raises(ImproperlyConfigured):
            get_settings()
    assert get_settings().STREAM == "good"


def test_other_settings_changes_do_not_reset_realtime(settings):
    first = get_settings()
    settings.DEBUG = not settings.DEBUG
    assert get_settings() is first


@pytest.mark.parametrize("prefix", ["wamp.", "crossbar.", "djwamp."])
def test_topic_prefixes_cannot_name_a_reserved_prefix(prefix):
    problems = find_problems({"TOPIC_PREFIXES": ["public.", prefix]})
    assert [p.id for p in problems] == ["realtime.E003"]


# -- realtime.W001: browsers allowed to publish where Django publishes ---------------------------

@pytest.mark.parametrize(("rule", "warned"), [
    ({"uri": "public.chat.", "allow": ["subscribe", "publish"]}, True),       # under TOPIC_PREFIXES' public.
    ({"uri": "public.chat.lobby", "match": "exact", "allow": ["publish"]}, True),
    ({"uri": "public.", "allow": ["publish"], "roles": ["staff"]}, True),      # all of public.
    ({"uri": "user.{user}.", "allow": ["publish"], "roles": ["user"]}, True),
    ({"uri": "public..typing", "match": "wildcard", "allow": ["publish"]}, True),
    ({"uri": "chat.", "allow": ["subscribe", "publish"]}, False),             # a prefix of its own
    ({"uri": "chat..typing", "match": "wildcard", "allow": ["publish"]}, False),
    ({"uri": "public.chat.", "allow": ["subscribe"]}, False),                 # no publish
    ({"uri": "publicity.", "allow": ["publish"]}, False),
])
def test_a_rule_that_lets_browsers_publish_where_django_does_is_w001(settings, rule, warned):
    from realtime.checks import check_browser_publications

    settings.REALTIME = {"RULES": [{"uri": "public.", "allow": ["subscribe"]}, rule]}
    found = check_browser_publications()
    assert _ids(found) == (["realtime.W001"] if warned else [])
    if warned:
        assert "RULES'][1]" in found[0].msg and "event.publisher" in found[0].hint


def test_w001_is_a_warning_that_does_not_stop_check(settings):
    settings.REALTIME = {"RULES": [{"uri": "public.chat.", "allow": ["subscribe", "publish"]}]}
    out = io.StringIO()
    call_command("check", stdout=out, stderr=out)
    assert "realtime.W001" in out.getvalue()
