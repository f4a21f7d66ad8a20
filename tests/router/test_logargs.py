"""router.logargs: log arguments built only when a line is written (docs/topics/performance.md)."""

import ast
import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from router import logargs

LOG_METHODS = {"trace", "debug", "info", "warn", "warning", "error", "critical", "failure"}


def _calls_outside_log_arguments(source: str, names) -> list[int]:
    """Lines where a replaced name is called other than inside a keyword argument of a log call."""
    tree = ast.parse(source)
    inside: set[int] = set()
    for node in ast.walk(tree):
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                and node.func.attr in LOG_METHODS):
            for keyword in node.keywords:
                inside.update(id(sub) for sub in ast.walk(keyword.value))
    return [node.lineno for node in ast.walk(tree)
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
            and node.func.id in names and id(node) not in inside]


@pytest.mark.parametrize("module_name", logargs.HOT_MODULES)
def test_the_installed_hot_modules_use_the_replaced_names_only_as_log_arguments(module_name):
    # if an upgrade of autobahn or crossbar uses hl*() or pformat() for anything but a log
    # argument, deferring them would change behaviour: drop the module from HOT_MODULES
    # read, not imported: importing crossbar here would drag its whole world into this process
    top, *rest = module_name.split(".")
    package = Path(importlib.util.find_spec(top).origin).parent
    source = package.joinpath(*rest[:-1], rest[-1] + ".py").read_text()
    replaced = set(logargs.NAMES) - set(logargs.HOT_MODULES[module_name])
    assert _calls_outside_log_arguments(source, replaced) == [], module_name


def test_a_deferred_text_formats_exactly_like_the_original():
    from autobahn.util import hltype, hlval

    cases = ((hlval, (12345,)), (hlval, ("x",)), (hltype, (test_a_deferred_text_formats_exactly_like_the_original,)))
    for fn, args in cases:
        deferred = logargs.Deferred(fn, args, {})
        assert str(deferred) == repr(deferred) == f"{deferred}" == f"{deferred}" == fn(*args)
    assert f"{logargs.Deferred(str, (7,), {}):>3}" == "  7"


def test_passthrough_formats_like_the_uncoloured_originals():
    import autobahn.util

    saved, autobahn.util._HAS_CLICK = autobahn.util._HAS_CLICK, False
    try:
        for name in logargs.PLAIN:
            fn = getattr(autobahn.util, name)
            for value in (12345, "x", 1.5, None, ("a", 1)):
                assert f"{logargs.passthrough(value)}" == fn(value), (name, value)
    finally:
        autobahn.util._HAS_CLICK = saved


def _apply_in_a_fresh_process(env_extra=None):
    code = ("import json, router.logargs as l, crossbar.router.broker as b, autobahn.util as u;"
            "patched = l.apply();"
            "print(json.dumps({'patched': patched, 'deferred': type(b.hltype(b.Broker)).__name__,"
            " 'passthrough': b.hlid is l.passthrough,"
            " 'plain': u.hl('x') == 'x', 'again': l.apply()}))")
    env = {**os.environ, **(env_extra or {})}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=env)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_apply_defers_the_hot_modules_arguments_once_per_process():
    result = _apply_in_a_fresh_process()
    assert "crossbar.router.router.pformat" in result["patched"]
    assert "autobahn.wamp.websocket.hlval" in result["patched"]
    assert "crossbar.router.broker.hltype" in result["patched"]  # crossbar._util's own hl*
    assert "autobahn.websocket.protocol.pformat" not in result["patched"]
    assert result["deferred"] == "Deferred" and result["passthrough"] and result["plain"] is True
    assert result["again"] == []


def test_djwamp_eager_log_args_leaves_them_alone():
    result = _apply_in_a_fresh_process({"DJWAMP_EAGER_LOG_ARGS": "1", "DJWAMP_CLIENT_TRACEBACKS": "1",
                                        "DJWAMP_LOG_SESSIONS": "1"})
    assert result["patched"] == [] and result["deferred"] == "str" and result["plain"] is False
    assert not result["passthrough"]


def test_a_clients_protocol_error_is_logged_in_one_short_line_other_errors_in_full():
    from autobahn.wamp.exception import InvalidUriError, ProtocolError

    shim = logargs.ClientErrorsInOneLine((ProtocolError, InvalidUriError))
    try:
        raise ProtocolError("invalid serialization of WAMP message:\n" + "x" * 1000)
    except ProtocolError:
        line = shim.format_exc()
    assert line.startswith("ProtocolError: invalid serialization of WAMP message: xxx")
    assert "\n" not in line and len(line) == logargs.ClientErrorsInOneLine.MAX
    try:
        raise KeyError("a bug of ours")
    except KeyError:
        full = shim.format_exc()
    assert full.startswith("Traceback (most recent call last):") and "KeyError" in full
    assert shim.print_exc is __import__("traceback").print_exc, "everything else is traceback's own"


def test_apply_shortens_autobahns_client_error_tracebacks_unless_told_not_to():
    assert "autobahn.wamp.websocket.traceback" in _apply_in_a_fresh_process()["patched"]
    kept = _apply_in_a_fresh_process({"DJWAMP_CLIENT_TRACEBACKS": "1"})["patched"]
    assert "autobahn.wamp.websocket.traceback" not in kept and kept


@pytest.mark.parametrize("keep", [False, True])
def test_crossbars_per_connection_info_lines_go_below_info_unless_kept(keep):
    code = ("import json, router.logargs as l, crossbar.router.router as r, crossbar.router.auth.pending as p;"
            "l.apply();"
            "name = lambda f: getattr(f, '__name__', type(f).__name__);"
            "print(json.dumps([name(r.Router.log.info), name(p.PendingAuth.log.info), name(r.Router.log.warn)]))")
    env = {**os.environ, "DJWAMP_LOG_SESSIONS": "1" if keep else ""}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=env)
    assert done.returncode == 0, done.stderr
    router_info, pending_info, router_warn = json.loads(done.stdout.strip().splitlines()[-1])
    assert (router_info == "_no_op", pending_info == "_no_op") == (not keep, not keep)
    assert router_warn != "_no_op", "warnings and errors are always logged"
