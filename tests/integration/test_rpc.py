"""Browsers call Django procedures: real Crossbar, Redis and Django, plain autobahn clients.

The test procedures live in tests/rpc_app, installed only in this module's nodes
(DJWAMP_EXTRA_APPS); the demo's procedures are served by every node.
"""

from __future__ import annotations

import re
import time
import uuid

import pytest
import pytest_twisted
from autobahn.wamp.exception import ApplicationError
from django.contrib.auth.models import Permission
from twisted.internet import defer
from twisted.internet.threads import deferToThread

from demo.models import ChatMessage
from realtime import errors
from tests.conftest import running_node
from tests.integration.browsers import connect, login, make_user
from tests.rpc_app import SECRET
from tests.wamp import EventCollector, sleep

pytestmark = pytest.mark.django_db(transaction=True)

WORKERS = 4


@pytest.fixture(scope="module")
def rpc_node(tmp_path_factory, redis_server, test_db_path):
    """Few threads and a deep queue: 200 calls at once all run, never more than WORKERS together."""
    with running_node(tmp_path_factory, redis_server.url, DJANGO_DB_PATH=test_db_path,
                      DJWAMP_EXTRA_APPS="tests.rpc_app", DJWAMP_RPC_WORKERS=str(WORKERS),
                      DJWAMP_RPC_QUEUE="250") as node:
        yield node


@pytest.fixture(scope="module")
def tiny_node(tmp_path_factory, redis_server, test_db_path):
    """One thread and one place in the queue: the third call at once is one too many."""
    with running_node(tmp_path_factory, redis_server.url, DJANGO_DB_PATH=test_db_path,
                      DJWAMP_EXTRA_APPS="tests.rpc_app", DJWAMP_RPC_WORKERS="1", DJWAMP_RPC_QUEUE="1") as node:
        yield node


async def as_user(node, *, staff: bool = False, user=None):
    user = user or make_user(staff=staff)
    _client, cookie = login(user)
    return user, await connect(node, cookie=cookie)


async def call_error(session, procedure: str, *args, **kwargs) -> ApplicationError:
    with pytest.raises(ApplicationError) as info:
        await session.call(procedure, *args, **kwargs)
    return info.value


# -- who calls ----------------------------------------------------------------------------------

@pytest_twisted.ensureDeferred
async def test_demo_whoami_answers_an_anonymous_caller(crossbar_node):
    session = await connect(crossbar_node)
    assert await session.call("demo.whoami") == {"username": None, "authenticated": False, "is_staff": False}
    session.leave()


@pytest.mark.parametrize("staff", [False, True])
@pytest_twisted.ensureDeferred
async def test_demo_whoami_answers_a_signed_in_user_and_staff(crossbar_node, staff):
    user, session = await as_user(crossbar_node, staff=staff)
    assert await session.call("demo.whoami") == {"username": user.username, "authenticated": True,
                                                 "is_staff": staff}
    session.leave()


@pytest_twisted.ensureDeferred
async def test_procedure_sees_the_callers_authid_role_session_and_user(rpc_node):
    user, session = await as_user(rpc_node)
    seen = await session.call("tests.rpc.caller")
    assert seen == {"authid": str(user.pk), "authrole": "user", "session_id": session.details.session,
                    "procedure": "tests.rpc.caller", "user_pk": user.pk, "authenticated": True}
    session.leave()


@pytest_twisted.ensureDeferred
async def test_anonymous_caller_is_djangos_anonymous_user(rpc_node):
    session = await connect(rpc_node)
    seen = await session.call("tests.rpc.caller")
    assert seen["authrole"] == "anonymous" and seen["authid"] == session.details.authid
    assert (seen["user_pk"], seen["authenticated"]) == (None, False)
    session.leave()


# -- login_required and permissions -------------------------------------------------------------

@pytest.mark.parametrize("procedure, uri", [
    ("tests.rpc.members_only", errors.PERMISSION_DENIED),       # login_required (the default)
    ("tests.rpc.needs_perm", errors.PERMISSION_DENIED),         # a permission implies a user
    ("tests.rpc.no_such_procedure", errors.NOT_AUTHORIZED),     # not a procedure: the rules say no
])
@pytest_twisted.ensureDeferred
async def test_what_an_anonymous_caller_is_refused(rpc_node, procedure, uri):
    session = await connect(rpc_node)
    assert (await call_error(session, procedure)).error == uri
    session.leave()


@pytest_twisted.ensureDeferred
async def test_login_required_admits_a_signed_in_user(rpc_node):
    user, session = await as_user(rpc_node)
    assert await session.call("tests.rpc.members_only") == user.username
    session.leave()


@pytest_twisted.ensureDeferred
async def test_permission_function_refuses_a_user_and_admits_staff(rpc_node):
    _user, session = await as_user(rpc_node)
    assert (await call_error(session, "tests.rpc.staff_only")).error == errors.PERMISSION_DENIED
    _staff, staff_session = await as_user(rpc_node, staff=True)
    assert await staff_session.call("tests.rpc.staff_only") == "staff"
    session.leave()
    staff_session.leave()


@pytest_twisted.ensureDeferred
async def test_django_permission_is_checked_for_the_caller(rpc_node):
    _without, session = await as_user(rpc_node)
    assert (await call_error(session, "tests.rpc.needs_perm")).error == errors.PERMISSION_DENIED
    granted = make_user()
    granted.user_permissions.add(Permission.objects.get(content_type__app_label="auth", codename="delete_user"))
    _user, granted_session = await as_user(rpc_node, user=granted)
    assert await granted_session.call("tests.rpc.needs_perm") == "allowed"
    session.leave()
    granted_session.leave()


@pytest.mark.parametrize("staff", [False, True])
@pytest_twisted.ensureDeferred
async def test_browsers_cannot_register_a_procedure_name(rpc_node, staff):
    # a second roundrobin registration would be handed a share of other users' calls
    from autobahn.wamp.types import RegisterOptions

    _user, session = await as_user(rpc_node, staff=staff)
    with pytest.raises(ApplicationError) as denied:
        await session.register(lambda *a, **kw: "hijacked", "demo.whoami",
                               options=RegisterOptions(invoke="roundrobin"))
    assert denied.value.error == errors.NOT_AUTHORIZED
    # Crossbar 26.10 answers a refused register that also conflicts with the existing
    # registration's policy with the conflict (dealer.processRegister does not return after
    # the refusal); either way nothing is registered
    with pytest.raises(ApplicationError) as denied:
        await session.register(lambda *a, **kw: "hijacked", "demo.whoami")
    assert denied.value.error in (errors.NOT_AUTHORIZED, "wamp.error.procedure_exists_with_different_invocation_policy")
    answers = await defer.gatherResults([session.call("demo.whoami") for _ in range(8)])
    assert "hijacked" not in answers
    session.leave()


# -- errors -------------------------------------------------------------------------------------

@pytest.mark.parametrize("kind, uri, kwargs", [
    ("validation", errors.INVALID_ARGUMENT, {"messages": ["That will not do."]}),
    ("validation_dict", errors.INVALID_ARGUMENT, {"errors": {"title": ["Too long."], "__all__": ["Try again."]}}),
    ("permission", errors.PERMISSION_DENIED, {}),
    ("does_not_exist", errors.NOT_FOUND, {}),
    ("http404", errors.NOT_FOUND, {}),
])
@pytest_twisted.ensureDeferred
async def test_django_exceptions_map_to_documented_error_uris(rpc_node, kind, uri, kwargs):
    session = await connect(rpc_node)
    error = await call_error(session, "tests.rpc.raise", kind)
    assert (error.error, error.kwargs) == (uri, kwargs)
    assert isinstance(error.args[0], str) and error.args[0]
    # what the procedure said to the server (not the browser) stays on the server
    assert not re.search(r"owner|no such", repr(error.args))
    session.leave()


@pytest.mark.parametrize("args, kwargs", [((1,), {}), ((1, 2, 3), {}), ((1, 2), {"c": 3}), ((), {"request": 1})])
@pytest_twisted.ensureDeferred
async def test_arguments_that_do_not_fit_the_signature_are_invalid_argument(rpc_node, args, kwargs):
    session = await connect(rpc_node)
    error = await call_error(session, "tests.rpc.add", *args, **kwargs)
    assert error.error == errors.INVALID_ARGUMENT
    assert error.kwargs["messages"] and "tests.rpc.add" in error.kwargs["messages"][0]
    assert await session.call("tests.rpc.add", 1, b=2) == 3
    session.leave()


@pytest_twisted.ensureDeferred
async def test_a_type_error_inside_a_procedure_is_internal_not_invalid_argument(rpc_node):
    session = await connect(rpc_node)
    error = await call_error(session, "tests.rpc.raise", "type_error_inside")
    assert error.error == errors.INTERNAL
    session.leave()


@pytest_twisted.ensureDeferred
async def test_a_crash_does_not_leak_its_message_and_its_error_id_is_in_the_node_log(rpc_node):
    session = await connect(rpc_node)
    error = await call_error(session, "tests.rpc.crash")
    assert error.error == errors.INTERNAL
    assert set(error.kwargs) == {"error_id"}
    error_id = error.kwargs["error_id"]
    assert error_id in error.args[0]
    assert SECRET not in repr((error.error, error.args, error.kwargs)) and "Traceback" not in repr(error.args)
    line = await deferToThread(rpc_node.proc.wait_for, re.escape(error_id), 10)
    assert "tests.rpc.crash" in line
    # the server keeps the traceback, message included, for whoever reads the log (its lines
    # come after the error id's, and may not have been read yet)
    await deferToThread(rpc_node.proc.wait_for, re.escape(f"RuntimeError: cannot connect: {SECRET}"), 10)
    session.leave()


# -- time and load ------------------------------------------------------------------------------

@pytest.mark.parametrize("procedure", ["tests.rpc.sleep", "tests.rpc.async_sleep"])
@pytest_twisted.ensureDeferred
async def test_a_procedure_that_outlives_its_timeout_answers_timeout(rpc_node, procedure):
    session = await connect(rpc_node)
    started = time.monotonic()
    error = await call_error(session, procedure, 2.5)  # both declare timeout=1
    assert error.error == errors.TIMEOUT
    assert 0.9 < time.monotonic() - started < 2.0
    assert await session.call(procedure, 0) == 0
    session.leave()


@pytest_twisted.ensureDeferred
async def test_200_concurrent_calls_complete_and_the_pool_never_exceeds_its_bound(rpc_node):
    session = await connect(rpc_node)
    await session.call("tests.rpc.most_at_once")  # start counting now
    results = await defer.gatherResults([session.call("tests.rpc.busy", 0.01) for _ in range(200)],
                                        consumeErrors=True)
    assert results == ["done"] * 200
    assert await session.call("tests.rpc.most_at_once") == WORKERS
    session.leave()


@pytest_twisted.ensureDeferred
async def test_a_saturated_pool_answers_busy_at_once(tiny_node):
    session = await connect(tiny_node)
    running = session.call("tests.rpc.busy", 1.0)
    queued = session.call("tests.rpc.busy", 0.1)
    started = time.monotonic()
    error = await call_error(session, "tests.rpc.busy", 0.1)
    assert error.error == errors.BUSY
    assert time.monotonic() - started < 0.5
    assert await running == "done" and await queued == "done"
    assert await session.call("tests.rpc.busy", 0) == "done"  # the places are free again
    session.leave()


@pytest_twisted.ensureDeferred
async def test_a_timed_out_call_keeps_its_thread_until_it_finishes(tiny_node):
    session = await connect(tiny_node)
    assert (await call_error(session, "tests.rpc.sleep", 2.5)).error == errors.TIMEOUT
    # its thread sleeps on for ~1.5 s: one call may wait in the queue, a second one is too many
    queued = session.call("tests.rpc.busy", 0)
    assert (await call_error(session, "tests.rpc.busy", 0)).error == errors.BUSY
    assert await queued == "done"
    session.leave()


@pytest_twisted.ensureDeferred
async def test_a_call_its_caller_gives_up_on_is_cancelled_and_frees_its_place(tiny_node):
    from autobahn.wamp.types import CallOptions

    session = await connect(tiny_node)
    error = await call_error(session, "tests.rpc.async_wait", 60, options=CallOptions(timeout=1))
    assert error.error == "wamp.error.canceled"
    await sleep(0.2)  # the router's INTERRUPT reaches the node; the task is cancelled at once
    # had the wait run on, it would hold one of the two places: one of these would be busy
    assert await defer.gatherResults([session.call("tests.rpc.busy", 0.2) for _ in range(2)]) == ["done"] * 2
    session.leave()


# -- the database and publishing ----------------------------------------------------------------

@pytest_twisted.ensureDeferred
async def test_procedures_see_committed_data(rpc_node):
    user = make_user("before")
    session = await connect(rpc_node)
    assert await session.call("tests.rpc.username", user.pk) == "before"
    user.username = "after"
    user.save()
    assert await session.call("tests.rpc.username", user.pk) == "after"
    assert (await call_error(session, "tests.rpc.username", 10**9)).error == errors.NOT_FOUND
    session.leave()


@pytest_twisted.ensureDeferred
async def test_async_procedures_use_the_orm_and_know_the_caller(rpc_node):
    caller, session = await as_user(rpc_node)
    other = make_user()
    assert await session.call("tests.rpc.async_username", other.pk) == {"username": other.username,
                                                                         "caller": caller.pk}
    assert (await call_error(session, "tests.rpc.async_username", 10**9)).error == errors.NOT_FOUND
    session.leave()


@pytest_twisted.ensureDeferred
async def test_publish_on_commit_from_a_procedure_reaches_a_subscriber(rpc_node, realtime_redis):
    topic = f"public.rpc.{uuid.uuid4().hex}"
    session = await connect(rpc_node)
    events = EventCollector()
    await events.subscribe(session, topic)
    await session.call("tests.rpc.announce", topic, "rolled back", rollback=True)
    await session.call("tests.rpc.announce", topic, "committed")
    await events.wait_for(1)
    await sleep(0.3)
    assert [args for _id, args, _kwargs in events.events] == [["committed"]]
    session.leave()


# -- the demo chat ------------------------------------------------------------------------------

@pytest_twisted.ensureDeferred
async def test_demo_chat_send_stores_the_message_and_publishes_it_to_the_room(crossbar_node, realtime_redis):
    room = f"room-{uuid.uuid4().hex[:8]}"
    user, session = await as_user(crossbar_node)
    events = EventCollector()
    await events.subscribe(session, f"public.chat.{room}")
    sent = await session.call("demo.chat.send", room, "  hello, room  ")
    assert {k: sent[k] for k in ("room", "author", "text")} == {"room": room, "author": user.username,
                                                                "text": "hello, room"}
    stored = ChatMessage.objects.get(pk=sent["id"])
    assert (stored.room, stored.author, stored.text) == (room, user, "hello, room")
    [(_id, args, _kwargs)] = await events.wait_for(1)
    assert args == [sent]
    session.leave()


@pytest.mark.parametrize("room, text, fields", [
    ("lobby", "   ", {"text"}),
    ("lobby", "x" * 501, {"text"}),
    ("no spaces allowed", "hi", {"room"}),
    ("", "", {"room", "text"}),
])
@pytest_twisted.ensureDeferred
async def test_demo_chat_send_validates_room_and_text(crossbar_node, room, text, fields):
    _user, session = await as_user(crossbar_node)
    error = await call_error(session, "demo.chat.send", room, text)
    assert error.error == errors.INVALID_ARGUMENT
    assert set(error.kwargs["errors"]) == fields
    session.leave()


@pytest_twisted.ensureDeferred
async def test_demo_chat_send_needs_a_signed_in_user(crossbar_node):
    session = await connect(crossbar_node)
    assert (await call_error(session, "demo.chat.send", "lobby", "hi")).error == errors.PERMISSION_DENIED
    assert not ChatMessage.objects.filter(room="lobby", text="hi").exists()
    session.leave()


def test_a_keyword_argument_named_options_reaches_the_procedure_through_the_fallback(rpc_node):
    # autobahn's call() would take it as its own CallOptions
    from tests.integration.test_gateway import post

    _client, cookie = login(make_user())
    _status, opened = post(rpc_node, "open", cookie=cookie)
    kwargs = {"options": {"colour": "red"}, "details": 1}
    status, called = post(rpc_node, "call", {"sid": opened["sid"], "procedure": "tests.rpc.echo",
                                             "args": ["a"], "kwargs": kwargs}, cookie=cookie)
    assert (status, called) == (200, {"result": {"args": ["a"], "kwargs": kwargs}})


@pytest_twisted.ensureDeferred
async def test_procedures_do_not_find_the_backend_secret_in_their_environment(rpc_node):
    session = await connect(rpc_node)
    try:
        found = await session.call("tests.rpc.environment", "DJWAMP_BACKEND_SECRET")
        assert found == {"here": False, "child": False}
        assert (await session.call("tests.rpc.environment", "DJANGO_SETTINGS_MODULE"))["here"] is True
    finally:
        session.leave()
