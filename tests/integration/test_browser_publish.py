"""A browser's publication names its publisher; Django's events never do (issue 15: no forged
"server" events). Through a real node whose rules let signed-in browsers publish under
``public.chat.``, where Django publishes too (tests/browser_publish_settings.py)."""

from __future__ import annotations

import json

import pytest
import pytest_twisted
from autobahn.wamp.types import PublishOptions, SubscribeOptions
from twisted.internet import defer, reactor

from realtime import publish
from tests.conftest import running_node
from tests.integration.browsers import connect, login, make_user
from tests.integration.test_gateway import next_event, post, stream

pytestmark = pytest.mark.django_db(transaction=True)

TOPIC = "public.chat.lobby"


@pytest.fixture(scope="module")
def publishing_node(tmp_path_factory, redis_server, test_db_path):
    with running_node(tmp_path_factory, redis_server.url, DJANGO_DB_PATH=test_db_path,
                      DJANGO_SETTINGS_MODULE="tests.browser_publish_settings") as node:
        yield node


class Received:
    def __init__(self):
        self.events: list[tuple[list, object]] = []
        self.waiting: defer.Deferred | None = None

    def __call__(self, *args, details=None, **kwargs):
        self.events.append((list(args), details))
        if self.waiting is not None and not self.waiting.called:
            self.waiting.callback(None)

    async def next(self):
        if not self.events:
            self.waiting = defer.Deferred()
            await self.waiting.addTimeout(20, reactor)
        return self.events.pop(0)


@pytest_twisted.ensureDeferred
async def test_subscribers_can_tell_a_browser_publication_from_djangos(publishing_node, realtime_redis):
    alice, bob = make_user(), make_user()
    _c, alice_cookie = login(alice)
    _c, bob_cookie = login(bob)
    publisher = await connect(publishing_node, cookie=alice_cookie)
    subscriber = await connect(publishing_node, cookie=bob_cookie)
    received = Received()
    await subscriber.subscribe(received, TOPIC, options=SubscribeOptions(details_arg="details"))
    # over the fallback too
    _s, opened = post(publishing_node, "open", cookie=bob_cookie)[:2]
    events = stream(publishing_node, opened["sid"], cookie=bob_cookie)
    assert post(publishing_node, "subscribe", {"sid": opened["sid"], "topic": TOPIC}, cookie=bob_cookie)[0] == 200
    try:
        await publisher.publish(TOPIC, "from alice", options=PublishOptions(acknowledge=True))
        args, details = await received.next()
        assert args == ["from alice"]
        assert (details.publisher_authid, details.publisher_authrole) == (str(alice.pk), "user")
        sse = json.loads(next_event(events)["data"])
        assert sse["args"] == ["from alice"] and sse["publisher"] == {"authid": str(alice.pk), "authrole": "user"}

        # a browser cannot hide who it is: a PUBLISH asking not to be disclosed (WAMP's disclose_me,
        # which autobahn-python does not send, so the message is written by hand) changes nothing
        transport = publisher._transport
        raw = [16, 4242, {"disclose_me": False}, TOPIC, ["hidden?"]]
        objects = transport._serializer._serializer
        transport.sendMessage(objects.serialize(raw), objects.BINARY)
        args, details = await received.next()
        assert args == ["hidden?"] and details.publisher_authid == str(alice.pk)
        assert json.loads(next_event(events)["data"])["publisher"] == {"authid": str(alice.pk), "authrole": "user"}

        publish(TOPIC, "from django")
        args, details = await received.next()
        assert args == ["from django"]
        assert (details.publisher, details.publisher_authid, details.publisher_authrole) == (None, None, None)
        sse = json.loads(next_event(events)["data"])
        assert sse["args"] == ["from django"] and sse["publisher"] is None
    finally:
        events.close()
        publisher.leave()
        subscriber.leave()
