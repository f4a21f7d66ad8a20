"""realtime.wire: the version-1 stream entry format shared by publish() and the bridge."""

import json

import pytest

from realtime import wire
from realtime.wire import Event, MalformedEntry, check_topic, decode_entry, encode_event, entry_timestamp_ms

MARKER = "SECRET-PAYLOAD"
ENTRY_ID = "1700000000000-3"


def _entry(**fields):
    base = {"v": "1", "topic": "public.scores"}
    base.update(fields)
    return {k: v for k, v in base.items() if v is not None}


# --- module surface ---------------------------------------------------------------------------

def test_wire_all_names_are_importable():
    for name in wire.__all__:
        assert hasattr(wire, name), name


def test_wire_constants():
    assert wire.VERSION == 1
    assert wire.EVENT_FIELDS == {"v", "topic", "args", "kwargs", "eligible", "exclude"}
    assert wire.CONTROL_FIELDS == {"v", "control", "authid", "session"}
    assert wire.RESERVED_PREFIXES == ("wamp.", "crossbar.", "djwamp.")
    assert wire.MAX_TOPIC_LENGTH == 255
    assert "options" in wire.RESERVED_KWARGS


def test_malformed_entry_is_a_value_error():
    assert issubclass(MalformedEntry, ValueError)


# --- encode / decode round trip ---------------------------------------------------------------

def test_encode_then_decode_round_trips_args_and_kwargs():
    args = [1, "two", [3.5, None, False], {"k": {"deep": []}}]
    kwargs = {"text": "hi", "n": 0, "unicode": "été ✓"}

    fields = encode_event("public.scores", args, kwargs)
    event = decode_entry(ENTRY_ID, fields)

    assert event == Event(ENTRY_ID, "public.scores", args, kwargs, None, None)


def test_encode_event_fields_are_flat_strings_with_the_version():
    fields = encode_event("public.scores", [1], {"a": "b"})

    assert fields == {"v": "1", "topic": "public.scores", "args": "[1]", "kwargs": '{"a": "b"}'}
    assert all(isinstance(k, str) and isinstance(v, str) for k, v in fields.items())


def test_encode_event_omits_empty_args_and_kwargs():
    assert encode_event("public.scores") == {"v": "1", "topic": "public.scores"}
    assert encode_event("public.scores", [], {}) == {"v": "1", "topic": "public.scores"}


def test_encode_event_uses_the_given_dumps():
    fields = encode_event("public.x", [1], {"a": 2}, dumps=lambda value: json.dumps(value, separators=(",", ":")))
    assert fields["args"] == "[1]"
    assert fields["kwargs"] == '{"a":2}'


def test_decode_defaults_missing_args_and_kwargs_to_empty():
    event = decode_entry(ENTRY_ID, {"v": "1", "topic": "public.scores"})
    assert (event.args, event.kwargs, event.eligible, event.exclude) == ([], {}, None, None)


def test_decode_accepts_bytes_keys_and_values():
    fields = encode_event("public.scores", [1, "é"], {"k": "v"}, eligible=["12"])
    as_bytes = {k.encode(): v.encode() for k, v in fields.items()}

    event = decode_entry(ENTRY_ID.encode(), as_bytes)

    assert event == Event(ENTRY_ID, "public.scores", [1, "é"], {"k": "v"}, ("12",), None)
    assert isinstance(event.id, str)


def test_decode_accepts_mixed_str_and_bytes():
    event = decode_entry(ENTRY_ID, {b"v": "1", "topic": b"public.scores", "args": b"[1]"})
    assert (event.topic, event.args) == ("public.scores", [1])


def test_decode_accepts_what_a_plain_xadd_would_write():
    # another language's publisher: compact JSON, no eligible/exclude
    fields = {"v": "1", "topic": "user.42.inbox", "args": '[{"text":"hi"}]', "kwargs": '{"n":1}'}
    event = decode_entry("1-0", fields)
    assert (event.topic, event.args, event.kwargs) == ("user.42.inbox", [{"text": "hi"}], {"n": 1})


# --- eligible / exclude ----------------------------------------------------------------------

def test_eligible_and_exclude_round_trip():
    fields = encode_event("user.42.inbox", [1], eligible=["12", "40"], exclude=["12"])

    assert json.loads(fields["eligible"]) == ["12", "40"]
    assert json.loads(fields["exclude"]) == ["12"]
    event = decode_entry(ENTRY_ID, fields)
    assert event.eligible == ("12", "40")
    assert event.exclude == ("12",)


def test_eligible_empty_list_round_trips_as_empty_tuple_not_none():
    event = decode_entry(ENTRY_ID, encode_event("public.x", eligible=[], exclude=[]))
    assert event.eligible == ()
    assert event.exclude == ()


def test_eligible_and_exclude_absent_mean_none():
    fields = encode_event("public.x")
    assert "eligible" not in fields and "exclude" not in fields
    event = decode_entry(ENTRY_ID, fields)
    assert event.eligible is None and event.exclude is None


@pytest.mark.parametrize("name", ["eligible", "exclude"])
@pytest.mark.parametrize("bad", [[""], [12], [None], ["ok", 3]])
def test_encode_event_rejects_authids_that_are_not_non_empty_strings(name, bad):
    with pytest.raises(TypeError, match=name):
        encode_event("public.x", **{name: bad})


@pytest.mark.parametrize("name", ["eligible", "exclude"])
@pytest.mark.parametrize("value", ['{"a": "b"}', '"12"', "12", "null", "not json",
                                   f'["{MARKER}", 1]', f'["{MARKER}", ""]'])
def test_decode_rejects_bad_authid_lists(name, value):
    with pytest.raises(MalformedEntry, match=name) as info:
        decode_entry(ENTRY_ID, _entry(**{name: value}))
    assert MARKER not in str(info.value)


# --- decode rejects malformed entries, never echoing the payload -------------------------------

MALFORMED = {
    "unknown field": ({"extra": MARKER}, "unknown field"),
    "missing version": ({"v": None, "args": f'["{MARKER}"]'}, "version"),
    "unsupported version": ({"v": "2", "args": f'["{MARKER}"]'}, "version"),
    "empty version": ({"v": "", "args": f'["{MARKER}"]'}, "version"),
    "missing topic": ({"topic": None, "args": f'["{MARKER}"]'}, "topic"),
    "bad topic": ({"topic": "public..x", "args": f'["{MARKER}"]'}, "topic"),
    "reserved topic": ({"topic": "wamp.session.kill", "args": f'["{MARKER}"]'}, "reserved"),
    "too long topic": ({"topic": "public." + "a" * 300, "args": f'["{MARKER}"]'}, "topic"),
    "invalid JSON args": ({"args": f'["{MARKER}"'}, "args is not valid JSON"),
    "invalid JSON kwargs": ({"kwargs": f'{{"a": {MARKER}}}'}, "kwargs is not valid JSON"),
    "args is an object": ({"args": f'{{"a": "{MARKER}"}}'}, "args must be a JSON array"),
    "args is a string": ({"args": f'"{MARKER}"'}, "args must be a JSON array"),
    "args is null": ({"args": "null"}, "args must be a JSON array"),
    "kwargs is an array": ({"kwargs": f'["{MARKER}"]'}, "kwargs must be a JSON object"),
    "kwargs is a number": ({"kwargs": "1"}, "kwargs must be a JSON object"),
    "reserved kwarg": ({"kwargs": f'{{"options": "{MARKER}"}}'}, "reserved"),
    "non-UTF-8 value": ({"args": f'["{MARKER}\xff"]'.encode("latin-1")}, "not UTF-8"),
    "non-UTF-8 field name": ({b"\xff" + MARKER.encode(): "1"}, "not UTF-8"),
    "value of a wrong type": ({"args": 12345}, "type int"),
}


@pytest.mark.parametrize("fields, reason", MALFORMED.values(), ids=MALFORMED.keys())
def test_decode_rejects_malformed_entries_without_echoing_the_payload(fields, reason):
    with pytest.raises(MalformedEntry) as info:
        decode_entry(ENTRY_ID, _entry(**{k: v for k, v in fields.items() if isinstance(k, str)})
                     | {k: v for k, v in fields.items() if isinstance(k, bytes)})
    message = str(info.value)
    assert reason in message
    assert MARKER not in message
    assert MARKER not in repr(info.value)


@pytest.mark.parametrize("entry_id", ["", "abc", "1700000000000", "1700000000000-", "-1-0",
                                      "1-0-0", "1.5-0", " 1-0", "1-0\n", f"{MARKER}-0"])
def test_decode_rejects_a_bad_entry_id(entry_id):
    with pytest.raises(MalformedEntry, match="entry id"):
        decode_entry(entry_id, _entry(args=f'["{MARKER}"]'))


def test_decode_rejects_an_entry_id_that_is_not_utf8():
    with pytest.raises(MalformedEntry, match="entry id is not UTF-8"):
        decode_entry(b"\xff-0", _entry())


def test_decode_bad_entry_id_message_is_truncated():
    with pytest.raises(MalformedEntry) as info:
        decode_entry("x" * 1000, _entry())
    assert len(str(info.value)) < 100


def test_decode_unknown_field_names_are_truncated():
    with pytest.raises(MalformedEntry) as info:
        decode_entry(ENTRY_ID, _entry(**{"z" * 500: "1"}))
    assert len(str(info.value)) < 150


def test_decode_rejects_deeply_nested_json_as_malformed():
    with pytest.raises(MalformedEntry):
        decode_entry(ENTRY_ID, _entry(args="[" * 100_000))


def test_decode_rejects_nan_and_infinity_which_are_not_json():
    for text in ("[NaN]", "[Infinity]", '{"x": -Infinity}'):
        with pytest.raises(MalformedEntry):
            decode_entry(ENTRY_ID, _entry(args=text) if text.startswith("[") else _entry(kwargs=text))


def test_encode_refuses_a_single_string_as_the_authid_list():
    with pytest.raises(TypeError, match="list of authids"):
        encode_event("public.x", eligible="12")


# --- entry ids and timestamps ---------------------------------------------------------------

def test_entry_timestamp_ms_is_the_millisecond_part_of_the_id():
    assert entry_timestamp_ms("1700000000000-0") == 1_700_000_000_000
    assert entry_timestamp_ms("1700000000123-42") == 1_700_000_000_123
    assert entry_timestamp_ms("0-1") == 0


def test_event_timestamp_ms_comes_from_its_id():
    event = decode_entry("1700000000456-7", _entry())
    assert event.timestamp_ms == 1_700_000_000_456


@pytest.mark.parametrize("entry_id", ["", "1700000000000", "a-b", "1-", "-1", "1-2-3"])
def test_entry_timestamp_ms_rejects_a_bad_id(entry_id):
    with pytest.raises(MalformedEntry):
        entry_timestamp_ms(entry_id)


# --- topics ----------------------------------------------------------------------------------

@pytest.mark.parametrize("topic", ["public.scores", "user.42.inbox", "chat.room-1", "a", "A_b.c-D.9",
                                   "public." + "a" * 248])
def test_check_topic_accepts_valid_uris(topic):
    assert check_topic(topic) == topic


@pytest.mark.parametrize("topic", [None, 1, b"public.scores", ["public.scores"]])
def test_check_topic_rejects_a_non_str(topic):
    with pytest.raises(TypeError, match="str"):
        check_topic(topic)


@pytest.mark.parametrize("topic", ["", "a..b", ".a", "a.", "public.has space", "public.#", "public.x#",
                                   "public.*", "public.x\n", "public.é", "public/x", "public.a:b"])
def test_check_topic_rejects_malformed_uris(topic):
    with pytest.raises(ValueError, match="invalid topic"):
        check_topic(topic)


def test_check_topic_rejects_a_topic_longer_than_255_characters():
    with pytest.raises(ValueError, match="255"):
        check_topic("public." + "a" * 249)


@pytest.mark.parametrize("topic", ["wamp.session.get", "crossbar.node", "djwamp.bridge", "wamp.a.b"])
def test_check_topic_rejects_reserved_prefixes(topic):
    with pytest.raises(ValueError, match="reserved"):
        check_topic(topic)


def test_encode_event_validates_the_topic():
    with pytest.raises(ValueError, match="reserved"):
        encode_event("wamp.x")
    with pytest.raises(TypeError):
        encode_event(None)


def test_encode_event_rejects_a_reserved_kwarg_name():
    with pytest.raises(ValueError, match="options"):
        encode_event("public.x", [], {"options": {}})


# --- control entries ---------------------------------------------------------------------------

def test_control_entries_round_trip():
    fields = wire.encode_control("kill_session", "42", "f1ngerprint")
    assert decode_entry(ENTRY_ID, fields) == wire.Control(ENTRY_ID, "kill_session", "42", "f1ngerprint")
    assert decode_entry(ENTRY_ID, wire.encode_control("kill_user", "42")) == wire.Control(ENTRY_ID, "kill_user", "42")


@pytest.mark.parametrize("fields", [
    {"v": "1", "control": "reboot", "authid": "1"},
    {"v": "1", "control": "kill_user"},
    {"v": "1", "control": "kill_session", "authid": "1"},
    {"v": "1", "control": "kill_user", "authid": "1", "topic": "public.x"},
])
def test_malformed_control_entries_are_rejected(fields):
    with pytest.raises(MalformedEntry):
        decode_entry(ENTRY_ID, fields)


def test_encode_control_validates_its_arguments():
    with pytest.raises(ValueError):
        wire.encode_control("kill_session", "1")
    with pytest.raises(ValueError):
        wire.encode_control("kill_user", "1", "extra")
    with pytest.raises(ValueError):
        wire.encode_control("shutdown", "1")


def test_shared_constants_have_one_home():
    # roles, reserved prefixes and the URI pattern are defined in realtime.wire only
    from pathlib import Path

    from realtime import _procedures, _rules
    from router import settings as node_settings

    assert node_settings.BROWSER_ROLES is _rules.BROWSER_ROLES is wire.BROWSER_ROLES
    assert _rules.FORBIDDEN_PREFIXES is wire.RESERVED_PREFIXES
    assert _procedures.SIGNED_IN_ROLES is wire.SIGNED_IN_ROLES
    assert set(wire.SIGNED_IN_ROLES) < set(wire.BROWSER_ROLES)
    root = Path(__file__).resolve().parents[2]
    literals = ('"anonymous", "user", "staff"', '"wamp.", "crossbar.", "djwamp."', r'[0-9A-Za-z_\-]+(?:\.')
    for path in [*(root / "router").glob("*.py"), *(root / "django_site" / "realtime").rglob("*.py")]:
        if path.name != "wire.py":
            text = path.read_text()
            assert not [literal for literal in literals if literal in text], path
