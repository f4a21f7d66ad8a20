"""@procedure on the Django side: declaring, the registry and its checks, running a call as the
caller's user, binding arguments, and the exception -> WAMP error mapping."""

from __future__ import annotations

import asyncio
import datetime
import decimal
import uuid

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AnonymousUser, Permission
from django.core.exceptions import ObjectDoesNotExist, PermissionDenied, ValidationError
from django.core.management import call_command
from django.core.management.base import SystemCheckError
from django.http import Http404

from realtime import CallRequest, _procedures, errors, procedure
from realtime._procedures import (
    InvalidArguments,
    LoginRequired,
    ProcedureRegistry,
    acall,
    call,
    check_access,
    describe_error,
)
from realtime.checks import check_procedures
from tests.users import make_user


@pytest.fixture
def registry():
    return ProcedureRegistry()


def echo(request, *args, **kwargs):
    return {"args": list(args), "kwargs": kwargs}


# -- declaring ----------------------------------------------------------------------------------

def test_the_decorator_returns_the_function_unchanged_and_registers_it(registry):
    @registry.procedure("shop.add")
    def add(request, a, b):
        return a + b

    assert add(None, 1, 2) == 3
    declared = registry.get("shop.add")
    assert (declared.func, declared.permission, declared.login_required, declared.timeout) == (add, None, True, None)
    assert not declared.is_async
    assert "shop.add" in registry and len(registry) == 1 and registry.names() == {"shop.add"}


def test_async_functions_are_recognised(registry):
    @registry.procedure("shop.fetch", login_required=False, timeout=2.5, permission="shop.view_item")
    async def fetch(request):
        return 1

    declared = registry.get("shop.fetch")
    assert declared.is_async
    assert (declared.login_required, declared.timeout, declared.permission) == (False, 2.5, "shop.view_item")


def test_the_public_decorator_fills_the_default_registry(monkeypatch, registry):
    monkeypatch.setattr(_procedures, "registry", registry)

    @procedure("shop.ping")
    def ping(request):
        return "pong"

    assert registry.get("shop.ping").func is ping


@pytest.mark.parametrize("kwargs, error, message", [
    ({"permission": "delete_user"}, ValueError, "app_label.codename"),
    ({"permission": 42}, TypeError, "permission"),
    ({"timeout": 0}, ValueError, "timeout"),
    ({"timeout": True}, ValueError, "timeout"),
    ({"login_required": "yes"}, TypeError, "login_required"),
])
def test_bad_decorator_arguments_fail_at_import_naming_the_function(registry, kwargs, error, message):
    with pytest.raises(error, match=message) as info:
        registry.procedure("shop.add", **kwargs)(echo)
    assert "test_procedures.echo" in str(info.value)


def test_forgetting_the_name_is_a_clear_type_error(registry):
    with pytest.raises(TypeError, match=r"@procedure\('app.name'\)"):
        registry.procedure(echo)


def test_a_function_without_a_request_parameter_is_refused(registry):
    def nothing():
        return None

    with pytest.raises(TypeError, match="CallRequest as its first argument"):
        registry.procedure("shop.nothing")(nothing)


@pytest.mark.parametrize("name, reserved", [("wamp.session.list", True), ("djwamp.authorize", True),
                                            ("crossbar.x", True), ("djwamp", True), ("two..dots", False),
                                            ("spaces are bad", False), ("", False), ("x" * 256, False)])
def test_invalid_names_are_reported_as_e006_and_not_registered(registry, name, reserved):
    registry.procedure(name)(echo)
    assert name not in registry
    [problem] = registry.problems
    assert problem.id == "realtime.E006"
    assert repr(name) in problem.msg and "test_procedures.echo" in problem.msg
    assert ("reserved prefix" in problem.msg) == reserved
    assert "shop.cart.add" in problem.hint


def test_duplicate_names_are_reported_as_e005_naming_both_functions(registry):
    def first(request):
        return 1

    def second(request):
        return 2

    registry.procedure("shop.add")(first)
    registry.procedure("shop.add")(second)
    assert registry.get("shop.add").func is first
    [problem] = registry.problems
    assert problem.id == "realtime.E005"
    assert "first" in problem.msg and "second" in problem.msg and "app label" in problem.hint


def test_declaring_the_same_function_again_is_not_a_duplicate(registry):
    registry.procedure("shop.echo")(echo)
    registry.procedure("shop.echo")(echo)  # its module imported again, e.g. reloaded
    assert registry.problems == [] and registry.get("shop.echo").func is echo


def test_system_checks_report_the_registrys_problems_with_hints(monkeypatch, registry):
    monkeypatch.setattr("realtime.checks.registry", registry)
    registry.procedure("djwamp.mine")(echo)
    registry.procedure("shop.a")(echo)
    registry.procedure("shop.a")(lambda request: None)
    found = check_procedures()
    assert [(e.id, bool(e.hint)) for e in found] == [("realtime.E006", True), ("realtime.E005", True)]
    with pytest.raises(SystemCheckError, match="realtime.E005"):
        call_command("check")


def test_apps_procedures_modules_are_autodiscovered():
    assert {"demo.whoami", "demo.chat.send"} <= _procedures.registry.names()
    assert _procedures.registry.problems == []
    assert check_procedures() == []


# -- who calls ----------------------------------------------------------------------------------

@pytest.fixture
def seen(registry):
    """A procedure that keeps the CallRequest it was given."""
    requests: list[CallRequest] = []

    @registry.procedure("shop.seen", login_required=False)
    def keep(request):
        requests.append(request)
        return None

    return requests


def run(registry, name, *args, caller=None, **kwargs):
    return call(registry.get(name), list(args), kwargs, **(caller or {}))


@pytest.mark.django_db
def test_a_signed_in_caller_is_loaded_as_its_django_user(registry, seen):
    user = make_user()
    run(registry, "shop.seen", caller={"authid": str(user.pk), "authrole": "user", "session_id": 77})
    [request] = seen
    assert request == CallRequest(user=user, authid=str(user.pk), authrole="user", session_id=77,
                                  procedure="shop.seen")


@pytest.mark.django_db
@pytest.mark.parametrize("authrole, authid", [
    ("anonymous", "anonymous-0f3a"),
    ("anonymous", "1"),              # an anonymous session never becomes user 1, whatever its authid
    ("backend", "backend"),
    (None, None),                    # the caller was not disclosed
    ("user", "999999"),              # deleted since the session opened
    ("user", "not-a-pk"),
])
def test_any_other_caller_is_the_anonymous_user(registry, seen, authrole, authid):
    make_user()
    run(registry, "shop.seen", caller={"authid": authid, "authrole": authrole})
    assert isinstance(seen[0].user, AnonymousUser)


@pytest.mark.django_db
def test_a_deactivated_user_calls_as_anonymous(registry, seen):
    user = make_user(is_active=False)
    run(registry, "shop.seen", caller={"authid": str(user.pk), "authrole": "user"})
    assert isinstance(seen[0].user, AnonymousUser)


# -- access -------------------------------------------------------------------------------------

def declared(registry, **options):
    return registry.add(f"shop.p{len(registry)}", echo, **options)


def test_login_required_refuses_the_anonymous_user(registry):
    with pytest.raises(LoginRequired):
        check_access(declared(registry), AnonymousUser())
    check_access(declared(registry, login_required=False), AnonymousUser())


@pytest.mark.django_db
def test_a_permission_string_is_checked_with_has_perm(registry):
    proc = declared(registry, permission="auth.delete_user")
    user = make_user()
    with pytest.raises(PermissionDenied):
        check_access(proc, user)
    user.user_permissions.add(Permission.objects.get(content_type__app_label="auth", codename="delete_user"))
    check_access(proc, get_user_model().objects.get(pk=user.pk))  # a fresh object: permissions are cached


@pytest.mark.django_db
def test_a_permission_function_gets_the_user(registry):
    proc = declared(registry, permission=lambda user: user.username == "ada")
    check_access(proc, make_user("ada"))
    with pytest.raises(PermissionDenied):
        check_access(proc, make_user("bob"))


def test_a_permission_function_may_admit_anonymous_callers(registry):
    check_access(declared(registry, login_required=False, permission=lambda user: True), AnonymousUser())


@pytest.mark.django_db
def test_access_is_checked_before_the_arguments(registry):
    # a caller who may not call learns nothing about the signature
    registry.procedure("shop.members")(lambda request, a: a)
    with pytest.raises(LoginRequired):
        run(registry, "shop.members", 1, unexpected=2)


# -- arguments and results ----------------------------------------------------------------------

@pytest.fixture
def add(registry):
    @registry.procedure("shop.add", login_required=False)
    def add(request, a, b=0, *, c=0):
        return a + b + c

    return add


@pytest.mark.django_db
@pytest.mark.parametrize("args, kwargs", [((), {}), ((1, 2, 3), {}), ((1,), {"d": 1}), ((1,), {"a": 1}),
                                          ((), {"request": 1, "a": 1})])
def test_arguments_that_do_not_fit_are_invalid_before_the_call(registry, add, args, kwargs):
    with pytest.raises(InvalidArguments) as info:
        run(registry, "shop.add", *args, **kwargs)
    assert str(info.value).startswith("shop.add: ")


@pytest.mark.django_db
def test_arguments_that_fit_reach_the_procedure(registry, add):
    assert run(registry, "shop.add", 1, 2, c=3) == 6
    assert run(registry, "shop.add", a=1) == 1


@pytest.mark.django_db
def test_a_type_error_inside_the_procedure_is_not_an_argument_error(registry):
    @registry.procedure("shop.buggy", login_required=False)
    def buggy(request, a):
        return len(a)

    with pytest.raises(TypeError) as info:
        run(registry, "shop.buggy", 42)
    assert not isinstance(info.value, InvalidArguments)
    assert describe_error(info.value, error_id=lambda: "x").uri == errors.INTERNAL


@pytest.mark.django_db
def test_results_come_back_as_json_with_djangos_encoder(registry):
    @registry.procedure("shop.values", login_required=False)
    def values(request):
        return {"when": datetime.date(2025, 1, 2), "price": decimal.Decimal("1.50"), "pair": (1, 2),
                "id": uuid.UUID(int=1), 3: "key"}

    assert run(registry, "shop.values") == {"when": "2025-01-02", "price": "1.50", "pair": [1, 2],
                                            "id": "00000000-0000-0000-0000-000000000001", "3": "key"}


@pytest.mark.django_db
def test_a_result_json_cannot_hold_is_an_error_of_the_procedure(registry):
    registry.procedure("shop.bad", login_required=False)(lambda request: object())
    with pytest.raises(TypeError) as info:
        run(registry, "shop.bad")
    assert describe_error(info.value, error_id=lambda: "x").uri == errors.INTERNAL


@pytest.mark.django_db(transaction=True)
def test_an_async_procedure_runs_as_the_caller_with_the_orm(registry):
    user = make_user("ada")

    @registry.procedure("shop.async_whoami")
    async def whoami(request, greeting):
        fetched = await get_user_model().objects.aget(pk=request.user.pk)
        return f"{greeting}, {fetched.username}"

    result = asyncio.run(acall(registry.get("shop.async_whoami"), ["hello"], {}, authid=str(user.pk),
                               authrole="user", session_id=1))
    assert result == "hello, ada"


@pytest.mark.django_db(transaction=True)
def test_an_async_procedure_is_refused_and_bound_like_a_sync_one(registry):
    @registry.procedure("shop.async_add")
    async def add(request, a, b):
        return a + b

    proc = registry.get("shop.async_add")
    with pytest.raises(LoginRequired):
        asyncio.run(acall(proc, [1, 2], {}, authid="anonymous-1", authrole="anonymous"))
    user = make_user()
    with pytest.raises(InvalidArguments):
        asyncio.run(acall(proc, [1], {}, authid=str(user.pk), authrole="user"))
    assert asyncio.run(acall(proc, [1, 2], {}, authid=str(user.pk), authrole="user")) == 3


# -- exception -> WAMP error --------------------------------------------------------------------

@pytest.mark.parametrize("exc, uri, args, kwargs", [
    (InvalidArguments("shop.add: missing a required argument: 'a'"), errors.INVALID_ARGUMENT,
     ["invalid arguments: shop.add: missing a required argument: 'a'"],
     {"messages": ["shop.add: missing a required argument: 'a'"]}),
    (ValidationError("Too long."), errors.INVALID_ARGUMENT, ["Too long."], {"messages": ["Too long."]}),
    (ValidationError(["One.", "Two."]), errors.INVALID_ARGUMENT, ["One.; Two."], {"messages": ["One.", "Two."]}),
    (ValidationError("At most %(n)s.", params={"n": 5}), errors.INVALID_ARGUMENT, ["At most 5."],
     {"messages": ["At most 5."]}),
    (ValidationError({"title": ["Too long."], "__all__": ["Try again."]}), errors.INVALID_ARGUMENT,
     ["title: Too long.; Try again."], {"errors": {"title": ["Too long."], "__all__": ["Try again."]}}),
    (LoginRequired(), errors.PERMISSION_DENIED, ["sign in to call this procedure"], {}),
    (PermissionDenied("only the owner, alice@example.com"), errors.PERMISSION_DENIED, ["permission denied"], {}),
    (get_user_model().DoesNotExist("User matching query does not exist."), errors.NOT_FOUND, ["not found"], {}),
    (ObjectDoesNotExist(), errors.NOT_FOUND, ["not found"], {}),
    (Http404("No Order matches id 12"), errors.NOT_FOUND, ["not found"], {}),
    (RuntimeError("password=hunter2"), errors.INTERNAL, ["internal error (error id ab12)"], {"error_id": "ab12"}),
    (TypeError("unsupported operand"), errors.INTERNAL, ["internal error (error id ab12)"], {"error_id": "ab12"}),
    (KeyError("secret"), errors.INTERNAL, ["internal error (error id ab12)"], {"error_id": "ab12"}),
])
def test_describe_error_maps_each_exception_to_its_documented_uri(exc, uri, args, kwargs):
    error = describe_error(exc, error_id=lambda: "ab12")
    assert (error.uri, error.args, error.kwargs) == (uri, args, kwargs)


def test_internal_errors_get_a_fresh_unguessable_id():
    ids = {describe_error(RuntimeError()).kwargs["error_id"] for _ in range(50)}
    assert len(ids) == 50 and all(len(i) == 12 for i in ids)


def test_every_procedure_error_uri_is_a_djwamp_error():
    for name in ("INVALID_ARGUMENT", "PERMISSION_DENIED", "NOT_FOUND", "TIMEOUT", "BUSY", "INTERNAL"):
        assert getattr(errors, name) == f"djwamp.error.{name.lower()}"
