"""Generated bad input (hypothesis): publish() and the stream decoder under thousands of cases.

- ``publish()`` either returns an id whose entry decodes to exactly what was given (after the
  JSON round trip), or raises ``TypeError``/``ValueError`` and writes nothing.
- ``wire.decode_entry()`` (what the bridge runs on every entry, from any producer in any
  language) either returns an event or a control entry, or raises ``MalformedEntry``: never
  anything that would stop the bridge.

Against the private redis-server. ``HYPOTHESIS_PROFILE=thorough`` runs ten times as many cases.
"""

from __future__ import annotations

import json
import math
import os

import pytest
from django.core.serializers.json import DjangoJSONEncoder
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from realtime import publish, wire

settings.register_profile("ci", max_examples=1000, deadline=None,
                          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
settings.register_profile("thorough", max_examples=10_000, deadline=None,
                          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

PART = st.text(st.sampled_from("abcXYZ019_-"), min_size=1, max_size=8)
#: topics near the rules: good ones, reserved and foreign prefixes, empty parts, odd characters
TOPICS = st.one_of(
    st.builds(lambda p, rest: p + ".".join(rest), st.sampled_from(["public.", "user.", "staff."]),
              st.lists(PART, min_size=1, max_size=4)),
    st.builds(lambda p, rest: p + ".".join(rest),
              st.sampled_from(["wamp.", "crossbar.", "djwamp.", "other.", "", ".", "public..", "Public."]),
              st.lists(PART, max_size=3)),
    st.text(max_size=300),
    st.builds(lambda n: "public." + "a" * n, st.integers(200, 300)),
    st.sampled_from([None, 1, b"public.x", ["public.x"], "public.x.", "public.x y", "public.é"]),
)
JSON_LEAVES = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False, allow_infinity=False),
                        st.text(max_size=20))
JSON_VALUES = st.recursive(JSON_LEAVES, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)), max_leaves=20)
#: what a caller might pass that JSON cannot carry
NOT_JSON = st.one_of(st.sampled_from([math.nan, math.inf, -math.inf, b"bytes", object(), {1, 2}, "\ud800"]),
                     st.builds(lambda depth: _nested(depth), st.integers(2_000, 3_000)),
                     st.builds(lambda n: "x" * n, st.integers(70_000, 80_000)))
VALUES = st.one_of(JSON_VALUES, NOT_JSON, st.lists(st.one_of(JSON_VALUES, NOT_JSON), max_size=3))
KWARG_NAMES = st.one_of(st.text(min_size=1, max_size=10), st.sampled_from(["options", "topic", "users", "_x"]))


def _nested(depth: int) -> list:
    value: list = []
    for _ in range(depth):
        value = [value]
    return value


def _round_trip(value):
    return json.loads(json.dumps(value, cls=DjangoJSONEncoder))


@given(topic=TOPICS, args=st.lists(VALUES, max_size=3),
       kwargs=st.dictionaries(KWARG_NAMES.filter(lambda k: k not in ("on_commit", "users", "exclude_users")),
                              VALUES, max_size=3))
def test_publish_either_writes_exactly_what_was_given_or_refuses_and_writes_nothing(stream, topic, args, kwargs):
    before = stream.xlen()
    try:
        event_id = publish(topic, *args, **kwargs)
    except (TypeError, ValueError):
        assert stream.xlen() == before, "a refused event must not reach Redis"
        return
    entry_id, fields = stream.client.xrange(stream.key, event_id, event_id)[0]
    event = wire.decode_entry(entry_id, fields)
    assert (event.topic, event.args, event.kwargs) == (topic, _round_trip(list(args)), _round_trip(kwargs))


FIELD_NAMES = st.sampled_from(["v", "topic", "args", "kwargs", "eligible", "exclude", "control", "authid",
                               "session", "extra", ""])
FIELD_VALUES = st.one_of(
    st.sampled_from(["1", "2", "", "public.x", "djwamp.x", "[]", "{}", "[1]", '{"a": 1}', "null", "NaN",
                     '["a"]', '[""]', "[1, 2", "kill_user", "kill_session", "42", '{"options": 1}']),
    st.text(max_size=30),
    st.binary(max_size=30),
    st.builds(lambda n: "[" * n + "]" * n, st.integers(500, 5_000)),
)
ENTRY_IDS = st.one_of(st.sampled_from(["1700000000000-0", "0-1", "x", "", "1-", "-1"]),
                      st.builds(lambda a, b: f"{a}-{b}", st.integers(0, 2**64), st.integers(0, 2**64)),
                      st.binary(max_size=20))


@given(entry_id=ENTRY_IDS, fields=st.dictionaries(st.one_of(FIELD_NAMES, st.binary(max_size=5)), FIELD_VALUES,
                                                    max_size=6))
def test_any_stream_entry_decodes_or_is_malformed_never_anything_else(entry_id, fields):
    try:
        decoded = wire.decode_entry(entry_id, fields, max_payload_bytes=65_536)
    except wire.MalformedEntry:
        return
    assert isinstance(decoded, (wire.Event, wire.Control))


@given(topic=TOPICS, args=st.lists(JSON_VALUES, max_size=3))
def test_what_publish_writes_the_bridge_decodes(topic, args):
    # the Python publisher and the decoder agree on every topic and payload they both accept
    try:
        fields = wire.encode_event(topic, args, {})
    except (TypeError, ValueError):
        return
    event = wire.decode_entry("1700000000000-0", fields)
    assert (event.topic, event.args) == (topic, _round_trip(args))


@pytest.mark.parametrize("depth", [1_000, 100_000])
def test_a_payload_nested_too_deeply_is_a_value_error_at_the_call_site(stream, depth):
    with pytest.raises(ValueError, match="nested too deeply|recursion"):
        publish("public.deep", _nested(depth))
    assert stream.xlen() == 0
