"""Event history on a real redis-server: what the bridge stores, what djwamp.history serves."""

from __future__ import annotations

import types

import pytest
import pytest_twisted
from autobahn.wamp.exception import ApplicationError

from realtime import errors, wire
from realtime._history import HistoryError, parse_history
from realtime._rules import DEFAULT_RULES, parse_rules
from router.bridge import StreamBridge
from router.history import HistoryComponent, HistoryWriter, compare_ids, history_key
from tests.router.test_bridge import Router, add, make_bridge, pending


def caller(authid: str, role: str = "user"):
    """What the router tells a procedure about its (disclosed) caller."""
    return types.SimpleNamespace(caller_authid=authid, caller_authrole=role)


@pytest.fixture
def policy():
    return parse_history({"public.feed": 3, "user.": 2})


@pytest.fixture
def component(redis_connection, stream_key, policy):
    comp = HistoryComponent.__new__(HistoryComponent)
    comp.conf = types.SimpleNamespace(STREAM=stream_key, rules=parse_rules(DEFAULT_RULES))
    comp.policy = policy
    comp.redis = redis_connection
    return comp


@pytest.fixture
def history_bridge(redis_connection, make_stream, stream_key, policy):
    writer = HistoryWriter(redis_connection, stream_key, policy, ttl=3600)
    return make_bridge(make_stream(), Router(), history=writer)


async def deliver_all(bridge: StreamBridge) -> None:
    await bridge.stream.ensure_group("0-0")
    await bridge.deliver(await bridge.stream.read_new(100, 50))


@pytest_twisted.ensureDeferred
async def test_bridge_keeps_the_latest_events_of_configured_topics_only(client, history_bridge, stream_key):
    ids = [add(client, stream_key, "public.feed", n) for n in range(5)]
    add(client, stream_key, "public.other", "x")
    await deliver_all(history_bridge)
    kept = client.xrange(history_key(stream_key, "public.feed"))
    assert [entry_id for entry_id, _ in kept] == ids[-4:]   # size + 1, with the main stream's ids
    assert not client.exists(history_key(stream_key, "public.other"))
    assert 0 < client.ttl(history_key(stream_key, "public.feed")) <= 3600
    assert pending(client, stream_key) == 0


@pytest_twisted.ensureDeferred
async def test_a_redelivered_event_is_not_stored_twice(client, history_bridge, stream_key, redis_connection, policy):
    event_id = add(client, stream_key, "public.feed", "once")
    await deliver_all(history_bridge)
    event = wire.decode_entry(event_id, client.xrange(stream_key)[0][1])
    await HistoryWriter(redis_connection, stream_key, policy, 3600).record([(event, client.xrange(stream_key)[0][1])])
    assert len(client.xrange(history_key(stream_key, "public.feed"))) == 1


@pytest_twisted.ensureDeferred
async def test_history_returns_what_came_after_an_id_with_the_original_ids(client, history_bridge, component,
                                                                           stream_key):
    ids = [add(client, stream_key, "public.feed", n, k=n) for n in range(3)]
    await deliver_all(history_bridge)
    result = await component.history("public.feed", since=ids[0], _djwamp_call_details=caller("1"))
    assert result == {"events": [{"id": ids[1], "args": [1], "kwargs": {"k": 1}},
                                 {"id": ids[2], "args": [2], "kwargs": {"k": 2}}],
                      "complete": True, "more": False}


@pytest_twisted.ensureDeferred
async def test_history_says_incomplete_when_events_after_the_id_were_trimmed(client, history_bridge, component,
                                                                            stream_key):
    ids = [add(client, stream_key, "public.feed", n) for n in range(6)]   # size 3: keeps ids[2:]
    await deliver_all(history_bridge)
    gap = await component.history("public.feed", since=ids[0], _djwamp_call_details=caller("1"))
    assert gap["complete"] is False and [e["id"] for e in gap["events"]] == ids[2:]
    # missed exactly `size` events: still complete
    fine = await component.history("public.feed", since=ids[2], _djwamp_call_details=caller("1"))
    assert fine["complete"] is True and [e["id"] for e in fine["events"]] == ids[3:]


@pytest_twisted.ensureDeferred
async def test_history_pages_with_limit_and_more(client, history_bridge, component, stream_key):
    ids = [add(client, stream_key, "public.feed", n) for n in range(3)]
    await deliver_all(history_bridge)
    first = await component.history("public.feed", since=f"{int(ids[0].split('-')[0]) - 1}-0", limit=2,
                                    _djwamp_call_details=caller("1"))
    assert first["more"] is True and len(first["events"]) == 2


@pytest_twisted.ensureDeferred
async def test_history_without_since_gives_the_latest_events_in_order(client, history_bridge, component, stream_key):
    ids = [add(client, stream_key, "public.feed", n) for n in range(3)]
    await deliver_all(history_bridge)
    latest = await component.history("public.feed", limit=2, _djwamp_call_details=caller("x", "anonymous"))
    assert [e["id"] for e in latest["events"]] == ids[1:]


@pytest_twisted.ensureDeferred
async def test_history_asks_the_same_permission_as_subscribing(client, history_bridge, component, stream_key):
    add(client, stream_key, "user.7.inbox", "for 7")
    await deliver_all(history_bridge)
    mine = await component.history("user.7.inbox", _djwamp_call_details=caller("7"))
    assert [e["args"] for e in mine["events"]] == [["for 7"]]
    with pytest.raises(ApplicationError) as refused:
        await component.history("user.7.inbox", _djwamp_call_details=caller("8"))
    assert refused.value.error == errors.NOT_AUTHORIZED


@pytest_twisted.ensureDeferred
async def test_history_hides_events_addressed_to_other_users(client, history_bridge, component, stream_key):
    client.xadd(stream_key, wire.encode_event("public.feed", ["for 1"], eligible=["1"]))
    client.xadd(stream_key, wire.encode_event("public.feed", ["not for 1"], exclude=["1"]))
    await deliver_all(history_bridge)
    seen_by_1 = await component.history("public.feed", _djwamp_call_details=caller("1"))
    seen_by_2 = await component.history("public.feed", _djwamp_call_details=caller("2"))
    assert [e["args"] for e in seen_by_1["events"]] == [["for 1"]]
    assert [e["args"] for e in seen_by_2["events"]] == [["not for 1"]]


@pytest.mark.parametrize("kwargs, uri", [
    ({"topic": "public.nohistory"}, errors.NO_HISTORY),
    ({"topic": "staff.nohistory"}, errors.NOT_AUTHORIZED),  # permission first: no hint what is kept
    ({"topic": "not a topic"}, "wamp.error.invalid_argument"),
    ({"topic": "public.feed", "since": "yesterday"}, "wamp.error.invalid_argument"),
    ({"topic": "public.feed", "limit": 0}, "wamp.error.invalid_argument"),
    ({"topic": "public.feed", "limit": 10_000}, "wamp.error.invalid_argument"),
])
@pytest_twisted.ensureDeferred
async def test_bad_history_requests_are_refused_with_a_clear_uri(component, kwargs, uri):
    with pytest.raises(ApplicationError) as refused:
        await component.history(_djwamp_call_details=caller("1"), **kwargs)
    assert refused.value.error == uri


def test_history_policy_matches_exact_topics_then_the_longest_prefix():
    policy = parse_history({"user.": 5, "user.1.": 7, "public.feed": 100})
    assert (policy.size_for("public.feed"), policy.size_for("user.1.x"), policy.size_for("user.2.x")) == (100, 7, 5)
    assert policy.size_for("public.feed.x") is None and not parse_history({})


@pytest.mark.parametrize("raw", [["public."], {"public.": 0}, {"wamp.": 5}, {"a b": 5}, {"public.": True},
                                 {"public.": 100_000}])
def test_bad_history_settings_are_refused(raw):
    with pytest.raises(HistoryError):
        parse_history(raw)


def test_event_ids_compare_numerically():
    assert compare_ids("10-0", "9-0") == 1 and compare_ids("5-1", "5-1") == 0 and compare_ids("5-0", "5-1") == -1
