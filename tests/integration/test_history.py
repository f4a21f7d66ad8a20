"""djwamp.history through a real node: a reconnecting client gets what it missed."""

import pytest
import pytest_twisted
from autobahn.wamp.exception import ApplicationError

from realtime import errors, publish
from tests.wamp import EventCollector, connect_ws

pytestmark = pytest.mark.django_db(transaction=True)


@pytest_twisted.ensureDeferred
async def test_a_client_that_was_away_gets_the_missed_events_with_their_ids(crossbar_node, realtime_redis):
    session = await connect_ws(crossbar_node.ws_url, crossbar_node.realm)
    events = EventCollector()
    await events.subscribe(session, "public.feed")
    seen = publish("public.feed", "seen")
    await events.wait_for(1)
    session.leave()

    missed = [publish("public.feed", "missed", n) for n in range(3)]

    again = await connect_ws(crossbar_node.ws_url, crossbar_node.realm)
    result = await again.call("djwamp.history", "public.feed", since=seen)
    assert [e["id"] for e in result["events"]] == missed
    assert result["events"][0]["args"] == ["missed", 0]
    assert result["complete"] is True
    again.leave()


@pytest_twisted.ensureDeferred
async def test_history_needs_the_permission_to_subscribe(crossbar_node, realtime_redis):
    session = await connect_ws(crossbar_node.ws_url, crossbar_node.realm)
    with pytest.raises(ApplicationError) as refused:
        await session.call("djwamp.history", "user.1.notifications")
    assert refused.value.error == errors.NOT_AUTHORIZED
    with pytest.raises(ApplicationError) as nothing:
        await session.call("djwamp.history", "public.not-kept")
    assert nothing.value.error == errors.NO_HISTORY
    session.leave()
