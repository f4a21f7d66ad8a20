"""The rpc component: registers every Django ``@procedure`` and runs its calls off the reactor.

Sync procedures run in a bounded ``DjangoThreadPool`` (``RPC_WORKERS`` threads), ``async def``
ones on one asyncio event loop in a thread of its own. At most ``RPC_WORKERS + RPC_QUEUE``
calls are in flight; the next one is refused at once with ``djwamp.error.busy`` instead of
queueing without bound. A call that outlives its timeout is answered ``djwamp.error.timeout``
but keeps its place in that count until it really ends: a thread cannot be interrupted.

``ProcedureRunner`` is the logic (admission, timeout, errors; time injected);
``ProcedureComponent`` is the Crossbar component that feeds it the router's invocations.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

from autobahn.wamp.exception import ApplicationError
from autobahn.wamp.types import RegisterOptions
from twisted.internet import defer, threads
from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger
from twisted.python.failure import Failure

from realtime import errors

from . import django_access
from .backend import BackendSession

__all__ = ["Work", "EventLoopThread", "ProcedureRunner", "ProcedureComponent", "DETAILS_ARG"]

#: The keyword argument that carries autobahn's CallDetails into our endpoint. Not "details":
#: autobahn overwrites a caller's keyword argument of the same name, so a procedure could
#: never take a parameter called ``details``.
DETAILS_ARG = "_djwamp_call_details"


def _nothing() -> None:
    return None


@dataclass
class Work:
    """One call under way: ``done`` fires with its outcome when it has really finished."""

    done: defer.Deferred
    #: asks it to stop early (an asyncio task is cancelled; a thread cannot be)
    stop: Callable[[], None] = _nothing


class EventLoopThread:
    """One asyncio event loop in a thread of its own, for ``async def`` procedures."""

    def __init__(self, reactor, name: str = "djwamp-rpc-asyncio"):
        self._reactor = reactor
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name=name, daemon=True)
        self._thread.start()
        reactor.addSystemEventTrigger("during", "shutdown", self.stop)

    def submit(self, coro: Coroutine) -> Work:
        """Run ``coro`` as a task on the loop; ``done`` fires (in the reactor) when the task ends."""
        done: defer.Deferred = defer.Deferred()
        task: list[asyncio.Task] = []

        def report(finished: asyncio.Task) -> None:
            if finished.cancelled():
                outcome = Failure(defer.CancelledError())
            elif finished.exception() is not None:
                exc = finished.exception()
                outcome = Failure(exc, type(exc), exc.__traceback__)
            else:
                outcome = finished.result()
            fire = done.errback if isinstance(outcome, Failure) else done.callback
            self._reactor.callFromThread(fire, outcome)

        def start() -> None:
            task.append(self.loop.create_task(coro))
            task[0].add_done_callback(report)

        # call_soon_threadsafe keeps order: the task exists by the time a stop runs
        self.loop.call_soon_threadsafe(start)
        return Work(done, lambda: self.loop.call_soon_threadsafe(lambda: task[0].cancel()))

    def stop(self, timeout: float = 5.0) -> None:
        if not self._thread.is_alive():
            return

        async def shutdown() -> None:
            pending = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for running in pending:
                running.cancel()
            if pending:
                await asyncio.wait(pending, timeout=timeout)
            self.loop.stop()

        asyncio.run_coroutine_threadsafe(shutdown(), self.loop)
        self._thread.join(timeout + 1)
        if not self._thread.is_alive():
            self.loop.close()


@dataclass
class ProcedureRunner:
    """Runs calls: refuses beyond ``limit`` in flight, answers a timeout, maps errors."""

    #: starts one call: (procedure, args, kwargs, caller) -> Work
    start: Callable[[Any, list, dict, dict], Work]
    clock: IReactorTime
    limit: int
    default_timeout: float
    #: what a call raised -> realtime._procedures.CallError
    describe_error: Callable[[BaseException], Any] = django_access.procedure_error
    log: Logger = field(default_factory=Logger)

    def __post_init__(self) -> None:
        self.in_flight = 0
        self._rejected = 0

    async def run(self, procedure, args: list, kwargs: dict, caller: dict) -> Any:
        if self.in_flight >= self.limit:
            self._reject(procedure)
        self.in_flight += 1
        try:
            work = self.start(procedure, args, kwargs, caller)
        except Exception:
            work = Work(defer.fail())  # answered and counted like a call that crashed
        answer: defer.Deferred = defer.Deferred()
        work.done.addBoth(self._finished, procedure, answer)
        timeout = procedure.timeout or self.default_timeout
        answer.addTimeout(timeout, self.clock)
        try:
            return await answer
        except defer.TimeoutError:
            work.stop()
            self.log.warn("procedure {procedure} timed out after {timeout} s", procedure=procedure.name,
                          timeout=timeout)
            raise ApplicationError(errors.TIMEOUT, f"{procedure.name} did not finish within {timeout:g} s",
                                   timeout=timeout) from None
        except defer.CancelledError:
            work.stop()  # the caller cancelled, or the router gave up on the call
            raise

    def _reject(self, procedure) -> None:
        if not self._rejected:
            self.log.warn("procedures saturated: {count} calls in flight; refusing calls such as {procedure} "
                          "until some finish", count=self.in_flight, procedure=procedure.name)
        self._rejected += 1
        raise ApplicationError(errors.BUSY, "the server is busy; try again in a moment")

    def _finished(self, outcome: Any, procedure, answer: defer.Deferred) -> None:
        self.in_flight -= 1
        if self._rejected and self.in_flight < self.limit:
            self.log.info("procedures accept calls again ({count} refused as busy)", count=self._rejected)
            self._rejected = 0
        if answer.called:
            # timed out or cancelled already: the caller has its answer; a late crash still counts
            if isinstance(outcome, Failure) and not outcome.check(defer.CancelledError):
                self.log.failure("procedure {procedure} failed after its caller stopped waiting",
                                 failure=outcome, procedure=procedure.name)
            return
        if isinstance(outcome, Failure):
            answer.errback(self._as_wamp_error(procedure, outcome))
        else:
            answer.callback(outcome)

    def _as_wamp_error(self, procedure, failure: Failure) -> ApplicationError:
        error = self.describe_error(failure.value)
        if error.uri == errors.INTERNAL:
            self.log.failure("procedure {procedure} failed: error id {error_id}", failure=failure,
                             procedure=procedure.name, error_id=error.kwargs["error_id"])
        else:
            self.log.debug("procedure {procedure} answered {uri}", procedure=procedure.name, uri=error.uri)
        return ApplicationError(error.uri, *error.args, **error.kwargs)


class ProcedureComponent(BackendSession):
    """Registers each ``@procedure`` once (``invoke: roundrobin``, so several nodes may serve it)."""

    log = Logger()
    # a node that cannot serve its procedures stops instead of refusing every call
    component_name = "procedures"

    async def start(self) -> None:
        from twisted.internet import reactor

        conf = await threads.deferToThread(django_access.realtime_settings)
        procedures = list(await threads.deferToThread(django_access.procedure_registry))
        self.pool = django_access.DjangoThreadPool(size=conf.RPC_WORKERS, name="djwamp-rpc")
        self.event_loop = EventLoopThread(reactor) if any(p.is_async for p in procedures) else None
        self.runner = ProcedureRunner(self._start_call, clock=reactor, limit=conf.RPC_WORKERS + conf.RPC_QUEUE,
                                      default_timeout=conf.RPC_TIMEOUT, log=self.log)
        options = RegisterOptions(invoke="roundrobin", details_arg=DETAILS_ARG)
        for procedure in procedures:
            await self.register(self._endpoint(procedure), procedure.name, options=options)
        self.log.info("djwamp procedures ready ({count} registered; {workers} threads, queue {queue}, "
                      "timeout {timeout} s)", count=len(procedures), workers=conf.RPC_WORKERS,
                      queue=conf.RPC_QUEUE, timeout=conf.RPC_TIMEOUT)

    def _endpoint(self, procedure) -> Callable:
        async def invoke(*args: Any, **kwargs: Any) -> Any:
            details = kwargs.pop(DETAILS_ARG)
            caller = {"session_id": details.caller, "authid": details.caller_authid,
                      "authrole": details.caller_authrole}
            return await self.runner.run(procedure, list(args), kwargs, caller)

        return invoke

    def _start_call(self, procedure, args: list, kwargs: dict, caller: dict) -> Work:
        if procedure.is_async:
            return self.event_loop.submit(django_access.call_procedure_async(procedure, args, kwargs, **caller))
        return Work(self.pool.run(django_access.call_procedure, procedure, args, kwargs, **caller))

    def onUserError(self, fail, msg) -> None:
        # Our answers are ApplicationErrors already logged (or not worth it) by the runner;
        # autobahn's default would log each with its message, which may quote the caller's input.
        if isinstance(getattr(fail, "value", None), ApplicationError):
            return
        super().onUserError(fail, msg)
