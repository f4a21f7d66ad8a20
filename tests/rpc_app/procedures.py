"""Test procedures, run inside the test nodes (a separate process from pytest).

What a test needs to observe inside the node -- how many calls ran at once -- is kept in
module state and read back through another procedure.
"""

from __future__ import annotations

import asyncio
import threading
import time

from django.contrib.auth import get_user_model
from django.core.exceptions import ObjectDoesNotExist, PermissionDenied, ValidationError
from django.db import transaction
from django.http import Http404

from realtime import CallRequest, procedure, publish

from . import SECRET


class Concurrency:
    """How many calls are inside ``tests.rpc.busy`` right now, and the most there ever were."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.now = 0
        self.most = 0

    def __enter__(self) -> None:
        with self._lock:
            self.now += 1
            self.most = max(self.most, self.now)

    def __exit__(self, *exc_info) -> None:
        with self._lock:
            self.now -= 1

    def reset(self) -> int:
        with self._lock:
            most, self.most = self.most, self.now
            return most


concurrency = Concurrency()


@procedure("tests.rpc.add", login_required=False)
def add(request: CallRequest, a, b):
    return a + b


@procedure("tests.rpc.caller", login_required=False)
def caller(request: CallRequest) -> dict:
    user = request.user
    return {"authid": request.authid, "authrole": request.authrole, "session_id": request.session_id,
            "procedure": request.procedure, "user_pk": user.pk, "authenticated": user.is_authenticated}


@procedure("tests.rpc.members_only")
def members_only(request: CallRequest) -> str:
    return request.user.get_username()


@procedure("tests.rpc.staff_only", permission=lambda user: user.is_staff)
def staff_only(request: CallRequest) -> str:
    return "staff"


@procedure("tests.rpc.needs_perm", permission="auth.delete_user")
def needs_perm(request: CallRequest) -> str:
    return "allowed"


@procedure("tests.rpc.raise", login_required=False)
def raise_(request: CallRequest, kind: str):
    if kind == "validation":
        raise ValidationError("That will not do.")
    if kind == "validation_dict":
        raise ValidationError({"title": ["Too long."], "__all__": ["Try again."]})
    if kind == "permission":
        raise PermissionDenied("you are not the owner")
    if kind == "does_not_exist":
        raise ObjectDoesNotExist("no such thing")
    if kind == "http404":
        raise Http404("no such page")
    if kind == "type_error_inside":
        return len(42)  # a bug inside the procedure: internal, not invalid_argument
    raise RuntimeError(f"unexpected {kind!r}")


@procedure("tests.rpc.crash", login_required=False)
def crash(request: CallRequest):
    raise RuntimeError(f"cannot connect: {SECRET}")


@procedure("tests.rpc.sleep", login_required=False, timeout=1)
def sleep(request: CallRequest, seconds: float) -> float:
    time.sleep(seconds)
    return seconds


@procedure("tests.rpc.async_sleep", login_required=False, timeout=1)
async def async_sleep(request: CallRequest, seconds: float) -> float:
    await asyncio.sleep(seconds)
    return seconds


@procedure("tests.rpc.async_wait", login_required=False)
async def async_wait(request: CallRequest, seconds: float) -> float:
    await asyncio.sleep(seconds)
    return seconds


@procedure("tests.rpc.busy", login_required=False)
def busy(request: CallRequest, seconds: float) -> str:
    with concurrency:
        time.sleep(seconds)
    return "done"


@procedure("tests.rpc.most_at_once", login_required=False)
def most_at_once(request: CallRequest) -> int:
    """The most calls that were inside tests.rpc.busy at once since the last reading."""
    return concurrency.reset()


@procedure("tests.rpc.username", login_required=False)
def username(request: CallRequest, pk: int) -> str:
    return get_user_model().objects.get(pk=pk).get_username()


@procedure("tests.rpc.async_username", login_required=False)
async def async_username(request: CallRequest, pk: int) -> dict:
    user = await get_user_model().objects.aget(pk=pk)
    return {"username": user.get_username(), "caller": request.user.pk}


@procedure("tests.rpc.announce", login_required=False)
def announce(request: CallRequest, topic: str, text: str, *, rollback: bool = False) -> None:
    with transaction.atomic():
        publish(topic, text, on_commit=True)
        if rollback:
            transaction.set_rollback(True)


@procedure("tests.rpc.echo", login_required=False)
def echo(request: CallRequest, *args, **kwargs) -> dict:
    """What arrived, as it arrived (a kwarg named ``options`` included)."""
    return {"args": list(args), "kwargs": kwargs}


@procedure("tests.rpc.environment", login_required=False)
def environment(request: CallRequest, name: str) -> dict:
    """Whether ``name`` is in this process's environment, and in a child process's."""
    import os
    import subprocess
    import sys

    child = subprocess.run([sys.executable, "-c", f"import os; print({name!r} in os.environ)"],
                           capture_output=True, text=True, timeout=30)
    return {"here": name in os.environ, "child": child.stdout.strip() == "True"}
