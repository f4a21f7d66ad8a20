"""publish(): what reaches the stream, and every bad input refused at the call site.

Real redis-server only; each test has its own stream key (the ``stream`` fixture).
"""

import datetime
import decimal
import re
import uuid

import pytest
from django.utils.translation import gettext_lazy

from realtime import publish, wire

ENTRY_ID = re.compile(r"\d+-\d+")


def test_publish_returns_the_stream_entry_id(stream):
    event_id = publish("public.scores", 1)

    assert isinstance(event_id, str)
    assert ENTRY_ID.fullmatch(event_id)
    assert [event.id for event in stream.events()] == [event_id]


def test_publish_writes_exactly_the_given_args_and_kwargs(stream):
    args = (1, "two", [3.5, None, True], {"nested": {"deep": ["x"]}})
    kwargs = {"text": "hi", "count": 0, "empty": {}, "unicode": "été ✓"}

    event_id = publish("public.scores", *args, **kwargs)

    event = stream.only_event()
    assert event.id == event_id
    assert event.topic == "public.scores"
    assert event.args == list(args)
    assert event.kwargs == kwargs
    assert event.eligible is None
    assert event.exclude is None


def test_publish_without_payload_sends_empty_args_and_kwargs(stream):
    publish("user.42.inbox")

    event = stream.only_event()
    assert (event.topic, event.args, event.kwargs) == ("user.42.inbox", [], {})


def test_publish_accepts_every_configured_prefix(stream):
    for topic in ("public.a", "user.1", "staff.b"):
        publish(topic)
    assert [event.topic for event in stream.events()] == ["public.a", "user.1", "staff.b"]


def test_publish_entries_are_in_call_order(stream):
    ids = [publish("public.counter", n) for n in range(20)]

    events = stream.events()
    assert [event.id for event in events] == ids
    assert [event.args for event in events] == [[n] for n in range(20)]


def test_publish_encodes_django_types_as_their_json_forms(stream):
    when = datetime.datetime(2024, 1, 2, 3, 4, 5, 678901, tzinfo=datetime.UTC)
    ident = uuid.UUID("12345678-1234-5678-1234-567812345678")

    publish(
        "public.types",
        when,
        decimal.Decimal("1.10"),
        ident,
        gettext_lazy("Hello"),
        datetime.date(2024, 1, 2),
        at=when,
        price=decimal.Decimal("-0.5"),
        label=gettext_lazy("World"),
    )

    event = stream.only_event()
    assert event.args == ["2024-01-02T03:04:05.678Z", "1.10", "12345678-1234-5678-1234-567812345678",
                          "Hello", "2024-01-02"]
    assert event.kwargs == {"at": "2024-01-02T03:04:05.678Z", "price": "-0.5", "label": "World"}


def test_publish_rejects_a_kwarg_named_topic(stream):
    # autobahn's publish(topic, ...) could never deliver it: refused here, not in the bridge
    _assert_refused(stream, ValueError, ["topic", "reserved"], "public.scores", **{"topic": "not the topic"})


def test_publish_topic_is_positional_only(stream):
    with pytest.raises(TypeError):
        publish(topic="public.scores")  # the kwarg is payload, the topic is missing
    assert stream.xlen() == 0


def test_publish_accepts_a_topic_of_the_maximum_length(stream):
    topic = "public." + "a" * (wire.MAX_TOPIC_LENGTH - len("public."))
    assert len(topic) == 255

    publish(topic)

    assert stream.only_event().topic == topic


def test_publish_payload_size_counts_utf8_bytes(stream, settings):
    # args '["ééé"]' is 4 + 6 bytes of UTF-8 (ensure_ascii=False), 7 characters
    settings.REALTIME = {**settings.REALTIME, "MAX_PAYLOAD_BYTES": 10}
    publish("public.x", "ééé")
    with pytest.raises(ValueError, match="MAX_PAYLOAD_BYTES"):
        publish("public.x", "éééé")
    assert stream.xlen() == 1


def test_publish_accepts_a_payload_exactly_at_the_limit(stream, settings):
    # '["xxxxxx"]' (10 bytes) + '{"k":"xx"}' (10 bytes) = 20 bytes
    settings.REALTIME = {**settings.REALTIME, "MAX_PAYLOAD_BYTES": 20}
    publish("public.x", "xxxxxx", k="xx")
    with pytest.raises(ValueError, match="MAX_PAYLOAD_BYTES"):
        publish("public.x", "xxxxxx", k="xxx")
    assert stream.xlen() == 1


# --- bad input: raises at the call site and writes nothing ------------------------------------

def _assert_refused(stream, exc_type, fragments, topic, /, *args, **kwargs):
    assert stream.xlen() == 0
    with pytest.raises(exc_type) as info:
        publish(topic, *args, **kwargs)
    message = str(info.value)
    for fragment in fragments:
        assert fragment in message, (fragment, message)
    assert stream.xlen() == 0
    assert not stream.client.exists(stream.key)
    return info.value


@pytest.mark.parametrize("topic", [None, 42, b"public.scores", ["public.scores"]])
def test_publish_rejects_a_topic_that_is_not_a_str(stream, topic):
    _assert_refused(stream, TypeError, ["topic must be a str", type(topic).__name__], topic, 1)


@pytest.mark.parametrize("topic", [
    "", "a..b", ".a", "a.", "public.", "public..x", ".public.x", "public.has space", " public.x",
    "public.x ", "public.#", "public.x#y", "public.*", "public.x\n", "public.é", "public/x",
])
def test_publish_rejects_a_malformed_topic_uri(stream, topic):
    _assert_refused(stream, ValueError, ["invalid topic", repr(topic)], topic, 1)


def test_publish_rejects_a_topic_longer_than_255_characters(stream):
    topic = "public." + "a" * (256 - len("public."))
    _assert_refused(stream, ValueError, ["256", "255"], topic, 1)


@pytest.mark.parametrize("topic", ["wamp.session.get", "crossbar.node.x", "djwamp.internal", "wamp.x"])
def test_publish_rejects_reserved_topic_prefix(stream, topic):
    # checked before TOPIC_PREFIXES (which cannot name a reserved prefix: see test_settings)
    _assert_refused(stream, ValueError, ["reserved", topic.split(".")[0] + "."], topic, 1)


@pytest.mark.parametrize("topic", ["other.x", "publicity.x", "users.1", "public", "Public.x"])
def test_publish_rejects_a_topic_outside_topic_prefixes(stream, topic):
    _assert_refused(stream, ValueError, ["TOPIC_PREFIXES", repr(topic)], topic, 1)


def test_publish_topic_prefixes_follow_settings(stream, settings):
    settings.REALTIME = {**settings.REALTIME, "TOPIC_PREFIXES": ["game."]}
    _assert_refused(stream, ValueError, ["TOPIC_PREFIXES", "game."], "public.x", 1)
    publish("game.move", 1)
    assert stream.only_event().topic == "game.move"


@pytest.mark.parametrize("args, kwargs", [
    ((object(),), {}),
    ((), {"value": object()}),
    (({1, 2},), {}),
    ((b"bytes",), {}),
    (({("tuple", "key"): 1},), {}),
])
def test_publish_rejects_a_payload_that_is_not_json_serializable(stream, args, kwargs):
    _assert_refused(stream, TypeError, ["publish('public.x')"], "public.x", *args, **kwargs)


@pytest.mark.parametrize("value", [float("nan"), float("inf"), float("-inf")])
def test_publish_rejects_non_finite_floats(stream, value):
    _assert_refused(stream, ValueError, ["publish('public.x')"], "public.x", [1, value])


def test_publish_rejects_a_circular_payload(stream):
    loop = []
    loop.append(loop)
    _assert_refused(stream, ValueError, ["publish('public.x')", "ircular"], "public.x", loop)


def test_publish_rejects_a_lone_surrogate_without_writing(stream):
    # json.dumps(ensure_ascii=False) keeps it; it is not UTF-8-encodable, so it can't be sent
    _assert_refused(stream, ValueError, [], "public.x", "\ud800")


def test_publish_rejects_a_payload_over_max_payload_bytes(stream, settings):
    settings.REALTIME = {**settings.REALTIME, "MAX_PAYLOAD_BYTES": 100}
    exc = _assert_refused(stream, ValueError, ["MAX_PAYLOAD_BYTES", "100", "public.big"], "public.big", "x" * 200)
    assert "x" * 50 not in str(exc)  # the payload itself is not echoed


def test_publish_counts_args_and_kwargs_together_against_the_limit(stream, settings):
    settings.REALTIME = {**settings.REALTIME, "MAX_PAYLOAD_BYTES": 100}
    _assert_refused(stream, ValueError, ["MAX_PAYLOAD_BYTES"], "public.big", "a" * 60, b="b" * 60)


def test_publish_rejects_a_kwarg_named_options(stream):
    _assert_refused(stream, ValueError, ["options", "reserved", "publish('public.x')"], "public.x", 1, options={})


def test_a_refused_call_does_not_prevent_the_next_publish(stream):
    for bad in [lambda: publish("wamp.x"), lambda: publish("public.x", object()),
                lambda: publish("public.x", float("nan")), lambda: publish("public.x", options=1),
                lambda: publish(None)]:
        with pytest.raises((TypeError, ValueError)):
            bad()

    event_id = publish("public.after", "ok")

    event = stream.only_event()
    assert (event.id, event.topic, event.args) == (event_id, "public.after", ["ok"])


def test_stream_maxlen_caps_the_stream_approximately(stream, settings):
    settings.REALTIME = {**settings.REALTIME, "STREAM_MAXLEN": 100}

    for n in range(1000):
        publish("public.flood", n)

    length = stream.xlen()
    assert 100 <= length < 500
    # the newest entries are the ones kept
    last = stream.client.xrevrange(stream.key, count=1)[0]
    assert wire.decode_entry(*last).args == [999]


def test_publish_to_some_users_writes_their_authids(stream, django_user_model, db):
    ada = django_user_model.objects.create_user("ada")
    publish("user.1.x", "hi", users=[ada, 7, "8"], exclude_users=[9])
    event = stream.only_event()
    assert (event.eligible, event.exclude) == ((str(ada.pk), "7", "8"), ("9",))


def test_publish_to_an_empty_user_list_is_an_event_for_nobody(stream):
    publish("public.x", "hi", users=[])
    assert stream.only_event().eligible == ()


@pytest.mark.parametrize("users", ["ada", 5, [None], [1.5], [True], [object()]])
def test_publish_rejects_users_that_are_not_users_or_primary_keys(stream, users):
    _assert_refused(stream, TypeError, ["users"], "public.x", "hi", users=users)
