"""The rpc component's logic: admission bound, timeouts on an injected clock, error mapping,
the asyncio loop thread, and the authorizer's answer for procedure names."""

from __future__ import annotations

import asyncio
import threading
from dataclasses import dataclass

import pytest
import pytest_twisted
from autobahn.wamp.exception import ApplicationError
from autobahn.wamp.types import ComponentConfig
from twisted.internet import defer, reactor, task, threads
from twisted.logger import Logger

from realtime import errors
from realtime._procedures import CallError
from realtime._rules import parse_rules
from router.authorize import AuthorizerComponent
from router.rpc import EventLoopThread, ProcedureRunner, Work


@dataclass(frozen=True)
class FakeProcedure:
    name: str = "shop.add"
    timeout: float | None = None


class Starts:
    """Stands in for the pool: each call's Work, fired by the test."""

    def __init__(self):
        self.calls: list[tuple] = []
        self.works: list[Work] = []
        self.stopped: list[int] = []

    def __call__(self, procedure, args, kwargs, caller) -> Work:
        index = len(self.works)
        self.calls.append((procedure.name, args, kwargs, caller))
        self.works.append(Work(defer.Deferred(), stop=lambda: self.stopped.append(index)))
        return self.works[-1]

    def finish(self, index: int, result=None) -> None:
        self.works[index].done.callback(result)

    def crash(self, index: int, exc: BaseException) -> None:
        self.works[index].done.errback(exc)


def describe(exc: BaseException) -> CallError:
    if isinstance(exc, LookupError):
        return CallError(errors.NOT_FOUND, ["not found"], {})
    return CallError(errors.INTERNAL, ["internal error (error id e1)"], {"error_id": "e1"})


@pytest.fixture
def log_events():
    return []


@pytest.fixture
def clock():
    return task.Clock()


@pytest.fixture
def starts():
    return Starts()


@pytest.fixture
def runner(starts, clock, log_events):
    return ProcedureRunner(starts, clock=clock, limit=2, default_timeout=30.0, describe_error=describe,
                           log=Logger(observer=log_events.append))


def run(runner, procedure=FakeProcedure(), *args, **kwargs) -> defer.Deferred:
    return defer.ensureDeferred(runner.run(procedure, list(args), kwargs, {"authid": "7", "authrole": "user",
                                                                            "session_id": 1}))


def failure_of(d: defer.Deferred) -> ApplicationError:
    failures = []
    d.addErrback(failures.append)
    assert failures, "the call has not failed"
    return failures[0].value


def texts(log_events) -> list[str]:
    from twisted.logger import formatEvent

    return [formatEvent(event) for event in log_events]


def test_a_call_gets_its_result_and_the_caller(runner, starts):
    d = run(runner, FakeProcedure(), 1, b=2)
    assert starts.calls == [("shop.add", [1], {"b": 2}, {"authid": "7", "authrole": "user", "session_id": 1})]
    starts.finish(0, 3)
    assert d.result == 3
    assert runner.in_flight == 0


def test_calls_beyond_the_limit_are_refused_at_once_with_busy(runner, starts, log_events):
    first, second = run(runner), run(runner)
    refused = run(runner)
    assert failure_of(refused).error == errors.BUSY
    assert len(starts.calls) == 2 and runner.in_flight == 2
    starts.finish(0)
    assert first.called and not second.called
    later = run(runner)  # a place is free again
    assert not later.called and len(starts.calls) == 3
    assert [t for t in texts(log_events) if "saturated" in t or "again" in t] == [
        "procedures saturated: 2 calls in flight; refusing calls such as shop.add until some finish",
        "procedures accept calls again (1 refused as busy)",
    ]


def test_a_timeout_answers_at_once_but_the_call_keeps_its_place_until_it_ends(runner, starts, clock):
    d = run(runner, FakeProcedure(timeout=5))
    clock.advance(4.9)
    assert not d.called
    clock.advance(0.2)
    error = failure_of(d)
    assert error.error == errors.TIMEOUT and error.kwargs == {"timeout": 5}
    assert starts.stopped == [0]
    assert runner.in_flight == 1  # the thread still runs
    starts.finish(0, "too late")
    assert runner.in_flight == 0


def test_the_default_timeout_applies_when_the_procedure_has_none(runner, clock):
    d = run(runner)
    clock.advance(29.9)
    assert not d.called
    clock.advance(0.2)
    assert failure_of(d).error == errors.TIMEOUT


def test_a_crash_answers_the_mapped_error_and_logs_the_traceback_with_its_id(runner, starts, log_events):
    d = run(runner)
    starts.crash(0, RuntimeError("secret detail"))
    error = failure_of(d)
    assert (error.error, error.args, error.kwargs) == (errors.INTERNAL, ("internal error (error id e1)",),
                                                       {"error_id": "e1"})
    [event] = [e for e in log_events if "log_failure" in e]
    assert "error id e1" in texts([event])[0] and event["log_failure"].check(RuntimeError)


def test_expected_errors_are_answered_without_a_traceback_in_the_log(runner, starts, log_events):
    d = run(runner)
    starts.crash(0, LookupError("no row 12"))
    assert failure_of(d).error == errors.NOT_FOUND
    assert not [e for e in log_events if "log_failure" in e]


def test_a_crash_after_the_timeout_is_still_logged(runner, starts, clock, log_events):
    d = run(runner, FakeProcedure(timeout=1))
    clock.advance(2)
    failure_of(d)
    starts.crash(0, RuntimeError("late"))
    assert any("after its caller stopped waiting" in t for t in texts(log_events))
    assert runner.in_flight == 0


def test_a_call_that_fails_to_start_is_internal_and_frees_its_place(starts, clock, log_events):
    def broken(*args):
        raise RuntimeError("pool is gone")

    runner = ProcedureRunner(broken, clock=clock, limit=1, default_timeout=1.0, describe_error=describe,
                             log=Logger(observer=log_events.append))
    assert failure_of(run(runner)).error == errors.INTERNAL
    assert runner.in_flight == 0


def test_a_cancelled_call_stops_its_work(runner, starts):
    d = run(runner)
    d.cancel()
    assert starts.stopped == [0]
    failure_of(d)
    starts.finish(0)
    assert runner.in_flight == 0


# -- the asyncio loop thread --------------------------------------------------------------------

@pytest.fixture
def loop_thread():
    thread = EventLoopThread(reactor, name="test-rpc-loop")
    yield thread
    thread.stop()


@pytest_twisted.ensureDeferred
async def test_the_event_loop_thread_runs_coroutines_off_the_reactor_thread(loop_thread):
    async def where():
        await asyncio.sleep(0)
        return threading.current_thread().name

    assert await loop_thread.submit(where()).done == "test-rpc-loop"


@pytest_twisted.ensureDeferred
async def test_the_event_loop_thread_reports_an_exception_with_its_traceback(loop_thread):
    async def crash():
        raise KeyError("boom")

    with pytest.raises(KeyError):
        await loop_thread.submit(crash()).done


@pytest_twisted.ensureDeferred
async def test_stopping_work_on_the_event_loop_cancels_the_task(loop_thread):
    started, cleaned = threading.Event(), threading.Event()

    async def long():
        started.set()
        try:
            await asyncio.sleep(60)
        finally:
            cleaned.set()

    work = loop_thread.submit(long())
    await threads.deferToThread(started.wait, 5)
    work.stop()
    with pytest.raises(defer.CancelledError):
        await work.done.addTimeout(5, reactor)
    assert cleaned.is_set()


def test_stopping_the_event_loop_thread_cancels_what_still_runs():
    thread = EventLoopThread(reactor, name="test-rpc-stop")
    cancelled = threading.Event()

    async def forever():
        try:
            await asyncio.sleep(60)
        except asyncio.CancelledError:
            cancelled.set()
            raise

    work = thread.submit(forever())
    work.done.addErrback(lambda f: None)  # fired through the reactor, which this test does not spin
    thread.stop()
    assert cancelled.is_set() and thread.loop.is_closed()


# -- the authorizer and procedure names ---------------------------------------------------------

@pytest.fixture
def authorizer():
    component = AuthorizerComponent(ComponentConfig(realm="djwamp"))
    component.rules = parse_rules([{"uri": "public.", "allow": ["subscribe", "call"]},
                                   {"uri": "peer.", "allow": ["register", "call"], "roles": ["user"]},
                                   {"uri": "chat.", "allow": ["subscribe", "publish"]}])
    component.procedures = frozenset({"shop.add"})
    return component


@pytest.mark.parametrize("role", ["anonymous", "user", "staff"])
@pytest_twisted.ensureDeferred
async def test_every_browser_role_may_call_a_procedure_whatever_the_rules(authorizer, role):
    decision = await authorizer.authorize({"authrole": role, "authid": "1"}, "shop.add", "call", {})
    assert decision == {"allow": True, "cache": True, "disclose": True}


@pytest_twisted.ensureDeferred
async def test_no_browser_may_register_a_procedure_name(authorizer):
    decision = await authorizer.authorize({"authrole": "staff", "authid": "1"}, "shop.add", "register",
                                          {"match": "exact"})
    assert decision["allow"] is False and decision["cache"] is True


@pytest_twisted.ensureDeferred
async def test_other_names_stay_governed_by_the_rules(authorizer):
    session = {"authrole": "user", "authid": "1"}
    assert (await authorizer.authorize(session, "shop.remove", "call", {}))["allow"] is False
    assert (await authorizer.authorize(session, "public.echo", "call", {}))["allow"] is True
    assert (await authorizer.authorize(session, "shop.add", "subscribe", {}))["allow"] is False


@pytest_twisted.ensureDeferred
async def test_only_djangos_own_procedures_learn_who_calls(authorizer):
    # a browser that a rule lets register "peer.*" must not learn its callers' session ids
    session = {"authrole": "user", "authid": "1"}
    assert await authorizer.authorize(session, "peer.chat", "register", {"match": "exact"}) == \
        {"allow": True, "cache": True, "disclose": False}
    assert await authorizer.authorize(session, "peer.chat", "call", {}) == \
        {"allow": True, "cache": True, "disclose": False}
    assert (await authorizer.authorize(session, "shop.add", "call", {}))["disclose"] is True


@pytest_twisted.ensureDeferred
async def test_a_browser_publication_names_its_publisher_and_nothing_else_discloses(authorizer):
    # subscribers tell a browser's event from Django's (the bridge's are never disclosed)
    session = {"authrole": "user", "authid": "1"}
    assert await authorizer.authorize(session, "chat.lobby", "publish", {}) == \
        {"allow": True, "cache": True, "disclose": True}
    assert (await authorizer.authorize(session, "chat.lobby", "subscribe", {}))["disclose"] is False
    assert await authorizer.authorize(session, "public.feed", "publish", {}) == \
        {"allow": False, "cache": True, "disclose": False}
