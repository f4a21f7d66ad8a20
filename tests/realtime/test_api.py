"""The public surface of the realtime app: what ``__all__`` promises, and the exception tree."""

import realtime
from realtime import RealtimeError, RedisUnavailable


def test_all_lists_exactly_the_public_api():
    assert sorted(realtime.__all__) == ["CallRequest", "RealtimeError", "RedisUnavailable", "procedure", "publish",
                                        "publish_on_commit"]
    assert len(realtime.__all__) == len(set(realtime.__all__))


def test_every_name_in_all_is_importable():
    namespace = {}
    exec("from realtime import *", namespace)
    for name in realtime.__all__:
        assert namespace[name] is getattr(realtime, name)


def test_redis_unavailable_is_a_realtime_error_and_a_connection_error():
    assert issubclass(RedisUnavailable, RealtimeError)
    assert issubclass(RedisUnavailable, ConnectionError)
    exc = RedisUnavailable("Redis at redis://127.0.0.1:1/0 did not take the event")
    assert isinstance(exc, RealtimeError)
    assert isinstance(exc, ConnectionError)
    assert isinstance(exc, OSError)


def test_version_is_a_string():
    assert isinstance(realtime.__version__, str)
    assert realtime.__version__
