"""Redis unreachable or unresponsive: RedisUnavailable within a bounded time, never a hang.

The time bounds are no-hang checks (REDIS_TIMEOUT is 0.5 s, the assertion allows 10 s).
"""

import socket
import time
import traceback

import pytest

from realtime import RealtimeError, RedisUnavailable, publish
from router.processes import free_port

NO_HANG_SECONDS = 10
PASSWORD = "s3cretpass"


@pytest.fixture
def silent_server():
    """A TCP server that accepts connections (kernel backlog) and never reads or answers."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen(8)
    try:
        yield sock.getsockname()[1]
    finally:
        sock.close()


def _point_at(settings, url):
    settings.REALTIME = {**settings.REALTIME, "REDIS_URL": url, "REDIS_TIMEOUT": 0.5}


def _publish_expecting_unavailable(topic="public.x"):
    started = time.monotonic()
    with pytest.raises(RedisUnavailable) as info:
        publish(topic, 1, text="hello")
    elapsed = time.monotonic() - started
    assert elapsed < NO_HANG_SECONDS, elapsed
    return info.value


@pytest.mark.timeout(60)
def test_publish_raises_redis_unavailable_when_nothing_listens(settings):
    port = free_port()
    _point_at(settings, f"redis://127.0.0.1:{port}/0")

    exc = _publish_expecting_unavailable("public.down")

    message = str(exc)
    assert f"127.0.0.1:{port}" in message
    assert "public.down" in message
    assert "0.5" in message
    assert isinstance(exc, RealtimeError)
    assert isinstance(exc, ConnectionError)


@pytest.mark.timeout(60)
def test_publish_raises_redis_unavailable_when_the_server_never_answers(settings, silent_server):
    _point_at(settings, f"redis://127.0.0.1:{silent_server}/0")

    exc = _publish_expecting_unavailable("public.silent")

    assert f"127.0.0.1:{silent_server}" in str(exc)
    assert "public.silent" in str(exc)


@pytest.mark.timeout(60)
def test_publish_keeps_raising_redis_unavailable_on_every_call(settings, silent_server):
    _point_at(settings, f"redis://127.0.0.1:{silent_server}/0")
    for _ in range(2):
        _publish_expecting_unavailable()


@pytest.mark.timeout(60)
def test_redis_unavailable_message_hides_the_password(settings):
    port = free_port()
    _point_at(settings, f"redis://djuser:{PASSWORD}@127.0.0.1:{port}/0")

    exc = _publish_expecting_unavailable()

    message = str(exc)
    assert PASSWORD not in message
    assert "djuser" not in message
    assert f"redis://***@127.0.0.1:{port}/0" in message
    assert PASSWORD not in repr(exc)
    assert PASSWORD not in "".join(traceback.format_exception(exc))


@pytest.mark.timeout(60)
def test_redis_unavailable_message_hides_the_password_when_the_server_never_answers(settings, silent_server):
    _point_at(settings, f"redis://djuser:{PASSWORD}@127.0.0.1:{silent_server}/0")

    exc = _publish_expecting_unavailable()

    assert PASSWORD not in str(exc)
    assert f"redis://***@127.0.0.1:{silent_server}/0" in str(exc)


@pytest.mark.timeout(60)
def test_redis_unavailable_message_hides_the_password_when_redis_refuses_it(settings, redis_server):
    # the private server has no such user: AUTH fails, which is also "Redis did not take it"
    url = redis_server.url.replace("redis://", f"redis://djuser:{PASSWORD}@")
    _point_at(settings, url)

    exc = _publish_expecting_unavailable()

    assert PASSWORD not in str(exc)
    assert "djuser" not in str(exc)
    assert f"redis://***@127.0.0.1:{redis_server.port}/0" in str(exc)
    assert PASSWORD not in "".join(traceback.format_exception(exc))


@pytest.mark.timeout(60)
def test_publish_works_again_once_redis_is_reachable(stream, settings):
    good = settings.REALTIME
    _point_at(settings, f"redis://127.0.0.1:{free_port()}/0")
    _publish_expecting_unavailable()

    settings.REALTIME = good
    event_id = publish("public.back", 1)

    assert stream.only_event().id == event_id


@pytest.mark.django_db
def test_a_view_that_publishes_still_answers_when_redis_is_unreachable(settings):
    """The demo's notify button with Redis down: a 503 with a JSON error within the bound, no 500."""
    from django.urls import reverse

    from realtime import errors
    from tests.users import login, make_user

    _point_at(settings, f"redis://127.0.0.1:{free_port()}/0")
    client, _cookie = login(make_user())
    started = time.monotonic()
    response = client.post(reverse("notify-me"))
    assert time.monotonic() - started < NO_HANG_SECONDS
    assert response.status_code == 503
    assert response.json() == {"error": errors.UNAVAILABLE, "message": "Notifications are unavailable, try again."}
