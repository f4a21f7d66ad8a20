"""Fixtures for the Django-side tests: a private stream key on the private redis-server.

Every test starts with REALTIME["REDIS_URL"] pointing at a port where nothing listens, so a
test that forgets to ask for a Redis fails fast instead of reaching the machine's Redis.
"""

from __future__ import annotations

from dataclasses import dataclass
from uuid import uuid4

import pytest

from realtime import wire
from router.processes import free_port


@pytest.fixture(autouse=True)
def _no_default_redis(settings):
    settings.REALTIME = {**settings.REALTIME, "REDIS_URL": f"redis://127.0.0.1:{free_port()}/0"}


@dataclass
class Stream:
    key: str
    client: object  # redis.Redis with decode_responses=True

    def xlen(self) -> int:
        return self.client.xlen(self.key)

    def events(self) -> list[wire.Event]:
        return [wire.decode_entry(entry_id, fields) for entry_id, fields in self.client.xrange(self.key)]

    def only_event(self) -> wire.Event:
        events = self.events()
        assert len(events) == 1, events
        return events[0]


@pytest.fixture
def stream(settings, redis_server):
    """REALTIME pointed at the private Redis, with a stream key no other test uses."""
    key = f"test:{uuid4().hex}"
    settings.REALTIME = {**settings.REALTIME, "REDIS_URL": redis_server.url, "STREAM": key}
    client = redis_server.client()
    try:
        yield Stream(key, client)
    finally:
        client.delete(key)
        client.close()
