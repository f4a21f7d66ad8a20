"""The authorizer's rules: default deny, browsers subscribe under public. only, never wamp.*."""

import pytest

from router.authorize import DEFAULT_RULES, AuthorizerComponent, TopicRule, TopicRules


@pytest.mark.parametrize("role", ["anonymous", "user", "staff"])
def test_browser_roles_may_subscribe_under_public(role):
    assert DEFAULT_RULES.allows(role, "public.scores", "subscribe")
    assert DEFAULT_RULES.allows(role, "public.a.b.c", "subscribe")


@pytest.mark.parametrize("uri, action", [
    ("public.scores", "publish"),
    ("public.scores", "call"),
    ("public.scores", "register"),
    ("publicity", "subscribe"),
    ("public", "subscribe"),
    ("user.1.inbox", "subscribe"),
    ("wamp.session.list", "call"),
    ("wamp.session.on_join", "subscribe"),
    ("crossbar.node", "call"),
    ("djwamp.authorize", "call"),
])
def test_everything_else_is_denied(uri, action):
    assert not DEFAULT_RULES.allows("anonymous", uri, action)


def test_unknown_roles_are_denied():
    assert not DEFAULT_RULES.allows("", "public.scores", "subscribe")
    assert not DEFAULT_RULES.allows("backend", "public.scores", "subscribe")


def test_router_meta_api_is_refused_even_if_a_rule_allows_it():
    rules = TopicRules([TopicRule("wamp.", frozenset({"call", "subscribe"}), frozenset({"anonymous"}))])
    assert not rules.allows("anonymous", "wamp.session.list", "call")


def test_rules_are_validated():
    with pytest.raises(ValueError, match="unknown action"):
        TopicRule("public.", frozenset({"read"}), frozenset({"anonymous"}))
    with pytest.raises(ValueError, match="ends with '.'"):
        TopicRule("public", frozenset({"subscribe"}), frozenset({"anonymous"}))


def test_authorize_procedure_answers_in_crossbars_format():
    component = AuthorizerComponent.__new__(AuthorizerComponent)
    allowed = component.authorize({"authrole": "anonymous", "authid": "x"}, "public.a", "subscribe", {})
    denied = component.authorize({"authrole": "anonymous", "authid": "x"}, "user.1.a", "subscribe", {})
    assert allowed == {"allow": True, "cache": True, "disclose": False}
    assert denied == {"allow": False, "cache": True, "disclose": False}
