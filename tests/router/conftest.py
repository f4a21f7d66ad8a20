import uuid

import pytest
import pytest_twisted
from twisted.internet import reactor

from router.redis_stream import RedisConnection, RedisStream


@pytest.fixture
def stream_key():
    return f"test:bridge:{uuid.uuid4().hex}"


@pytest.fixture
def redis_connection(redis_server):
    connection = RedisConnection(redis_server.url, reactor, display=redis_server.url, reply_timeout=5.0)
    pytest_twisted.blockon(connection.when_connected().addTimeout(10, reactor))
    yield connection
    pytest_twisted.blockon(connection.close())


@pytest.fixture
def make_stream(redis_connection, stream_key):
    def make(consumer: str = "bridge-a", group: str = "djwamp:test") -> RedisStream:
        return RedisStream(redis_connection, key=stream_key, group=group, consumer=consumer)
    return make


@pytest.fixture
def client(redis_server):
    """redis-py on the private test Redis (text replies)."""
    return redis_server.client()
