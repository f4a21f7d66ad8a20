"""Django publish() -> Redis -> bridge -> real Crossbar node -> a plain autobahn subscriber."""

import datetime
import decimal
import uuid

import pytest
import pytest_twisted
from autobahn.wamp.exception import ApplicationError
from autobahn.wamp.types import SubscribeOptions

from realtime import publish
from tests.wamp import EventCollector, connect_ws, sleep


@pytest.fixture
def topic():
    return f"public.test.{uuid.uuid4().hex[:12]}"


@pytest_twisted.ensureDeferred
async def test_subscriber_receives_exactly_the_published_args_and_kwargs(crossbar_node, realtime_redis, topic):
    session = await connect_ws(crossbar_node.ws_url, crossbar_node.realm)
    events = EventCollector()
    await events.subscribe(session, topic)

    first = publish(topic, {"text": "hi"})
    second = publish(topic, 1, "two", [3], n="1", when=datetime.date(2026, 11, 24),
                     price=decimal.Decimal("9.99"))
    third = publish(topic)

    received = await events.wait_for(3)
    assert received[0] == (first, [{"text": "hi"}], {})
    # "1" stays a string, Django's encoder formats dates and decimals
    assert received[1] == (second, [1, "two", [3]], {"n": "1", "when": "2026-11-24", "price": "9.99"})
    assert received[2] == (third, [], {})
    session.leave()


@pytest_twisted.ensureDeferred
async def test_thousand_events_arrive_in_order_and_none_is_lost(crossbar_node, realtime_redis, topic):
    session = await connect_ws(crossbar_node.ws_url, crossbar_node.realm)
    events = EventCollector()
    await events.subscribe(session, topic)

    ids = [publish(topic, n) for n in range(1000)]

    received = await events.wait_for(1000, timeout=60)
    assert [args[0] for _, args, _ in received] == list(range(1000))
    assert [event_id for event_id, _, _ in received] == ids
    session.leave()


@pytest_twisted.ensureDeferred
async def test_event_published_before_anyone_subscribed_is_not_replayed_to_later_subscribers(
        crossbar_node, realtime_redis, topic):
    early = await connect_ws(crossbar_node.ws_url, crossbar_node.realm)
    marker = EventCollector()
    await marker.subscribe(early, topic)
    publish(topic, "before")
    await marker.wait_for(1)

    late = await connect_ws(crossbar_node.ws_url, crossbar_node.realm)
    events = EventCollector()
    await events.subscribe(late, topic)
    publish(topic, "after")
    await events.wait_for(1)
    await marker.wait_for(2)
    assert [args for _, args, _ in events.events] == [["after"]]
    early.leave()
    late.leave()


@pytest_twisted.ensureDeferred
async def test_anonymous_may_subscribe_only_under_public(crossbar_node):
    session = await connect_ws(crossbar_node.ws_url, crossbar_node.realm)
    assert session.details.authrole == "anonymous"
    for topic in ("user.1.inbox", "staff.alerts", "publicity", "wamp.session.on_join"):
        with pytest.raises(ApplicationError) as refused:
            await session.subscribe(lambda *a, **k: None, topic)
        assert refused.value.error == "wamp.error.not_authorized", topic
    session.leave()


@pytest_twisted.ensureDeferred
async def test_anonymous_may_not_publish_call_or_register(crossbar_node):
    session = await connect_ws(crossbar_node.ws_url, crossbar_node.realm)
    with pytest.raises(ApplicationError) as publish_refused:
        await session.publish("public.hello", "spoofed", options=_ack())
    assert publish_refused.value.error == "wamp.error.not_authorized"
    for procedure in ("wamp.session.list", "wamp.session.kill_by_authid", "djwamp.authorize"):
        with pytest.raises(ApplicationError) as call_refused:
            await session.call(procedure)
        assert call_refused.value.error == "wamp.error.not_authorized", procedure
    with pytest.raises(ApplicationError) as register_refused:
        await session.register(lambda: None, "public.rpc")
    assert register_refused.value.error == "wamp.error.not_authorized"
    session.leave()


@pytest_twisted.ensureDeferred
async def test_foreign_origin_is_refused_and_own_origin_accepted(crossbar_node):
    own = f"http://127.0.0.1:{crossbar_node.settings.port}"
    session = await connect_ws(crossbar_node.ws_url, crossbar_node.realm, origin=own)
    session.leave()
    with pytest.raises(ConnectionError):  # the upgrade is refused before WAMP
        await connect_ws(crossbar_node.ws_url, crossbar_node.realm, origin="http://evil.example:80", timeout=5)


@pytest_twisted.ensureDeferred
async def test_events_for_other_topics_are_not_delivered(crossbar_node, realtime_redis, topic):
    session = await connect_ws(crossbar_node.ws_url, crossbar_node.realm)
    events = EventCollector()
    await events.subscribe(session, topic)
    publish(topic + "x", "other")
    publish(topic, "mine")
    await events.wait_for(1)
    await sleep(0.3)
    assert [args for _, args, _ in events.events] == [["mine"]]
    session.leave()


def _ack():
    from autobahn.wamp.types import PublishOptions

    return PublishOptions(acknowledge=True)


@pytest_twisted.ensureDeferred
async def test_an_event_autobahn_cannot_send_is_refused_and_the_node_keeps_delivering(
        crossbar_node, realtime_redis, topic):
    # another language wrote kwargs that collide with autobahn's publish(topic, ...) signature
    session = await connect_ws(crossbar_node.ws_url, crossbar_node.realm)
    events = EventCollector()
    await events.subscribe(session, topic)
    realtime_redis.client().xadd("djwamp:events", {"v": "1", "topic": topic, "kwargs": '{"topic": "x"}'})
    after = publish(topic, "after")
    assert await events.wait_for(1) == [(after, ["after"], {})]
    session.leave()


@pytest_twisted.ensureDeferred
async def test_subscribers_do_not_learn_who_published(crossbar_node, realtime_redis, topic):
    session = await connect_ws(crossbar_node.ws_url, crossbar_node.realm)
    seen = []
    await session.subscribe(lambda *a, details=None, **k: seen.append(details), topic,
                            options=SubscribeOptions(details_arg="details"))
    publish(topic, "x")
    events = EventCollector()
    await events.subscribe(session, topic)
    publish(topic, "y")
    await events.wait_for(1)
    assert seen and all(d.publisher is None and d.publisher_authid is None for d in seen)
    session.leave()
