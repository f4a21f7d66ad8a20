"""publish(..., on_commit=True) and publish_on_commit(): written after commit, never on rollback."""

import pytest
from django.db import transaction

from realtime import publish, publish_on_commit

pytestmark = pytest.mark.django_db(transaction=True)


class Rollback(Exception):
    pass


def _deferred_publish(how):
    """The two spellings of a deferred publish, with the same signature."""
    if how == "flag":
        return lambda topic, *args, **kwargs: publish(topic, *args, on_commit=True, **kwargs)
    return publish_on_commit


both_spellings = pytest.mark.parametrize("how", ["flag", "helper"])


@both_spellings
def test_on_commit_publish_writes_nothing_until_the_transaction_commits(stream, how):
    deferred = _deferred_publish(how)
    with transaction.atomic():
        result = deferred("public.order", 7, status="paid")
        assert result is None
        assert stream.xlen() == 0

    event = stream.only_event()
    assert (event.topic, event.args, event.kwargs) == ("public.order", [7], {"status": "paid"})


@both_spellings
def test_on_commit_publish_writes_nothing_on_rollback(stream, how):
    deferred = _deferred_publish(how)
    with pytest.raises(Rollback):
        with transaction.atomic():
            deferred("public.order", 7)
            raise Rollback

    assert stream.xlen() == 0
    # a later, committed transaction does not resurrect the rolled-back event
    with transaction.atomic():
        pass
    assert stream.xlen() == 0


@both_spellings
def test_on_commit_publish_in_a_rolled_back_savepoint_is_discarded(stream, how):
    deferred = _deferred_publish(how)
    with transaction.atomic():
        deferred("public.kept", 1)
        with pytest.raises(Rollback):
            with transaction.atomic():
                deferred("public.dropped", 2)
                raise Rollback
        assert stream.xlen() == 0

    assert [event.topic for event in stream.events()] == ["public.kept"]


@both_spellings
def test_on_commit_publish_sends_events_in_call_order_after_commit(stream, how):
    deferred = _deferred_publish(how)
    with transaction.atomic():
        for n in range(5):
            deferred("public.seq", n)
        assert stream.xlen() == 0

    assert [event.args for event in stream.events()] == [[n] for n in range(5)]


@both_spellings
def test_on_commit_publish_still_validates_immediately_inside_the_transaction(stream, how):
    deferred = _deferred_publish(how)
    with transaction.atomic():
        with pytest.raises(ValueError, match="reserved"):
            deferred("wamp.x", 1)
        with pytest.raises(ValueError, match="TOPIC_PREFIXES"):
            deferred("other.x", 1)
        with pytest.raises(TypeError, match="public.x"):
            deferred("public.x", object())
        with pytest.raises(ValueError, match="options"):
            deferred("public.x", options=1)
        with pytest.raises(TypeError):
            deferred(None)
        deferred("public.good", 1)

    # only the valid call was queued; none of the refused ones reached Redis at commit
    assert [event.topic for event in stream.events()] == ["public.good"]


@both_spellings
def test_on_commit_publish_checks_the_payload_limit_immediately(stream, settings, how):
    settings.REALTIME = {**settings.REALTIME, "MAX_PAYLOAD_BYTES": 50}
    deferred = _deferred_publish(how)
    with transaction.atomic():
        with pytest.raises(ValueError, match="MAX_PAYLOAD_BYTES"):
            deferred("public.big", "x" * 100)
    assert stream.xlen() == 0


@both_spellings
def test_on_commit_publish_outside_a_transaction_publishes_at_once(stream, how):
    # autocommit: there is nothing to wait for, as with Django's own transaction.on_commit
    result = _deferred_publish(how)("public.now", 1)

    assert result is None
    assert stream.only_event().args == [1]


def test_on_commit_false_inside_a_transaction_publishes_at_once(stream):
    with transaction.atomic():
        event_id = publish("public.now", 1)
        assert stream.xlen() == 1
    assert stream.only_event().id == event_id
