"""realtime.errors is the one list of djwamp's URIs: code names its constants, the docs and the
browser client agree with it."""

from __future__ import annotations

import ast
import re
from pathlib import Path

from realtime import errors

ROOT = Path(__file__).resolve().parents[2]
ERRORS_PY = ROOT / "django_site" / "realtime" / "errors.py"
ERRORS_MD = ROOT / "docs" / "ref" / "errors.md"
URI = re.compile(r"\b(?:djwamp\.(?:error|close)|wamp\.error)\.[a-z_]+\b")


def constants() -> dict[str, tuple[str, str | None]]:
    """Each constant of errors.py: its value and the docstring that follows it."""
    body = ast.parse(ERRORS_PY.read_text()).body
    found = {}
    for node, after in zip(body, [*body[1:], None], strict=True):
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str):
            [target] = node.targets
            doc = after.value.value if isinstance(after, ast.Expr) and isinstance(after.value, ast.Constant) else None
            found[target.id] = (node.value.value, doc)
    return found


def test_every_constant_is_exported_documented_and_distinct():
    found = constants()
    assert sorted(found) == sorted(errors.__all__)
    assert all(doc for _uri, doc in found.values()), [name for name, (_u, doc) in found.items() if not doc]
    uris = [uri for uri, _doc in found.values()]
    assert len(uris) == len(set(uris))
    assert all(URI.fullmatch(uri) for uri in uris)
    assert {name: getattr(errors, name) for name in errors.__all__} == {n: u for n, (u, _d) in found.items()}


#: Crossbar's own refusals, which the reference explains but djwamp never sends
CROSSBAR_ONLY = {"wamp.error.no_auth_method", "wamp.error.authorization_failed",
                 "wamp.error.procedure_exists_with_different_invocation_policy"}


def test_the_reference_lists_exactly_these_uris():
    documented = set(URI.findall(ERRORS_MD.read_text())) - CROSSBAR_ONLY
    defined = {uri for uri, _doc in constants().values()}
    assert documented == defined, {"in errors.md only": documented - defined, "in errors.py only": defined - documented}


def _string_constants(path: Path) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text())
    docstrings = {id(node.body[0].value) for node in ast.walk(tree)
                  if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef)
                  and node.body and isinstance(node.body[0], ast.Expr)}
    return [(node.lineno, node.value) for node in ast.walk(tree)
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings]


def test_code_names_the_constants_instead_of_spelling_the_uris():
    spelled = []
    for path in [*(ROOT / "router").glob("*.py"), *(ROOT / "django_site" / "realtime").rglob("*.py")]:
        if path == ERRORS_PY:
            continue
        spelled += [f"{path.relative_to(ROOT)}:{line}: {text}" for line, text in _string_constants(path)
                    if URI.search(text)]
    assert spelled == []


def test_the_browser_client_uses_the_same_uris():
    source = "\n".join(path.read_text() for path in (ROOT / "autobahn_js" / "src").glob("*.js"))
    used = set(URI.findall(source))
    assert used, "the client names no URI?"
    assert used <= {uri for uri, _doc in constants().values()}, used
    assert {errors.OFFLINE, errors.CLIENT, errors.CLOSE_LOGGED_OUT, errors.CLOSE_REVOKED,
            errors.CLOSE_SESSION_ENDED} <= used
