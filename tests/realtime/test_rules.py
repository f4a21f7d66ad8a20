"""REALTIME["RULES"]: matching, placeholders, match types, caching, validation."""

import pytest

from realtime._rules import DEFAULT_RULES, RuleError, parse_rules

DEFAULTS = parse_rules(DEFAULT_RULES)


def allows(rules, role, authid, uri, action="subscribe", match="exact"):
    verdict = rules.decide(role, authid, uri, action, match)
    assert not verdict.pending, "no user checks in these rules"
    return verdict.allow


@pytest.mark.parametrize("role", ["anonymous", "user", "staff"])
def test_everyone_may_subscribe_under_public(role):
    assert allows(DEFAULTS, role, "1", "public.scores")
    assert allows(DEFAULTS, role, "1", "public.", match="prefix")
    assert allows(DEFAULTS, role, "1", "public..goals", match="wildcard")


def test_a_user_may_subscribe_to_their_own_topics_only():
    assert allows(DEFAULTS, "user", "5", "user.5.inbox")
    assert allows(DEFAULTS, "user", "5", "user.5.", match="prefix")
    assert not allows(DEFAULTS, "user", "5", "user.6.inbox")
    assert not allows(DEFAULTS, "user", "5", "user.56.inbox")
    assert not allows(DEFAULTS, "user", "5", "user.", match="prefix")          # everybody's
    assert not allows(DEFAULTS, "user", "5", "user..inbox", match="wildcard")  # everybody's
    assert not allows(DEFAULTS, "anonymous", "anonymous-1", "user.anonymous-1.x")


def test_staff_topics_are_for_staff():
    assert allows(DEFAULTS, "staff", "1", "staff.alerts")
    assert not allows(DEFAULTS, "user", "1", "staff.alerts")


@pytest.mark.parametrize("uri, action, match", [
    ("public.scores", "publish", "exact"),
    ("public.scores", "call", "exact"),
    ("public.scores", "register", "exact"),
    ("publicity", "subscribe", "exact"),
    ("public", "subscribe", "prefix"),       # would cover "publicity"
    ("", "subscribe", "prefix"),             # everything
    ("..x", "subscribe", "wildcard"),
    ("wamp.session.list", "call", "exact"),
    ("wamp.session.on_join", "subscribe", "exact"),
    ("djwamp.control.revoke", "call", "exact"),
    ("crossbar.node", "call", "exact"),
])
def test_everything_else_is_denied(uri, action, match):
    assert not allows(DEFAULTS, "staff", "1", uri, action, match)


def test_unknown_roles_are_denied():
    assert not allows(DEFAULTS, "backend", "x", "public.x")
    assert not allows(DEFAULTS, "", None, "public.x")


def test_exact_rules_never_cover_prefix_or_wildcard_subscriptions():
    rules = parse_rules([{"uri": "chat.lobby", "allow": ["subscribe", "publish"]}])
    assert allows(rules, "user", "1", "chat.lobby")
    assert allows(rules, "user", "1", "chat.lobby", "publish")
    assert not allows(rules, "user", "1", "chat.lobby", match="prefix")       # chat.lobbyX
    assert not allows(rules, "user", "1", "chat.lobby.x")


def test_wildcard_rules_match_one_component_per_gap():
    rules = parse_rules([{"uri": "chat..messages", "match": "wildcard", "allow": ["subscribe"]}])
    assert allows(rules, "user", "1", "chat.42.messages")
    assert allows(rules, "user", "1", "chat..messages", match="wildcard")
    assert not allows(rules, "user", "1", "chat.42.members")
    assert not allows(rules, "user", "1", "chat.42.messages.x")
    assert not allows(rules, "user", "1", "chat.", match="prefix")
    assert not allows(rules, "user", "1", "..messages", match="wildcard")


def test_placeholder_in_the_middle_of_a_uri():
    rules = parse_rules([{"uri": "user.{user}.inbox", "allow": ["subscribe"], "roles": ["user"]}])
    assert allows(rules, "user", "7", "user.7.inbox")
    assert not allows(rules, "user", "7", "user.8.inbox")
    assert not allows(rules, "user", "7", "user..inbox", match="wildcard")


def test_rules_with_permissions_or_checks_are_left_pending_for_the_user_check():
    rules = parse_rules([
        {"uri": "chat.", "allow": ["publish"], "permission": "chat.add_message"},
        {"uri": "game.", "allow": ["publish"], "check": "game.rules.can_publish", "roles": ["user"]},
    ])
    chat = rules.decide("user", "1", "chat.lobby", "publish")
    assert (chat.allow, [r.uri for r in chat.pending], chat.cacheable) == (False, ["chat."], False)
    game = rules.decide("anonymous", "a", "game.x", "publish")
    assert (game.allow, game.pending, game.cacheable) == (False, (), True)


def test_only_decisions_that_depend_on_role_and_uri_alone_are_cacheable():
    assert DEFAULTS.decide("anonymous", "a", "public.x", "subscribe").cacheable
    assert DEFAULTS.decide("user", "5", "staff.x", "subscribe").cacheable          # denied for every user
    # allowed for user 5, denied for user 6: Crossbar's per-role cache must not keep either
    assert not DEFAULTS.decide("user", "5", "user.5.inbox", "subscribe").cacheable
    assert not DEFAULTS.decide("user", "6", "user.5.inbox", "subscribe").cacheable
    # the answer differs by match type, which Crossbar's cache key ignores
    exact_only = parse_rules([{"uri": "chat.lobby", "allow": ["subscribe"]}])
    assert not exact_only.decide("user", "1", "chat.lobby", "subscribe").cacheable


@pytest.mark.parametrize("raw, message", [
    ("public.", "must be a list"),
    ([["public."]], "must be a dict"),
    ([{"allow": ["subscribe"]}], "needs a 'uri'"),
    ([{"uri": "public."}], "'allow' must be a non-empty list"),
    ([{"uri": "public.", "allow": ["read"]}], "unknown action"),
    ([{"uri": "public.", "allow": ["subscribe"], "roles": ["admin"]}], "unknown role"),
    ([{"uri": "public.", "allow": ["subscribe"], "rolez": ["user"]}], "unknown key"),
    ([{"uri": "public", "match": "prefix", "allow": ["subscribe"]}], "ends with '.'"),
    ([{"uri": "wamp.", "allow": ["call"]}], "reserved"),
    ([{"uri": "djwamp.control.revoke", "allow": ["call"]}], "reserved"),
    ([{"uri": "user.{user}.", "allow": ["subscribe"]}], "needs a signed-in user"),
    ([{"uri": "user.x{user}.", "allow": ["subscribe"], "roles": ["user"]}], "whole URI component"),
    ([{"uri": "a b.", "allow": ["subscribe"]}], "not a valid URI pattern"),
    ([{"uri": "public.", "allow": ["subscribe"], "match": "regex"}], "match must be one of"),
    ([{"uri": "public.", "allow": ["subscribe"], "permission": "add_message"}], "app_label.codename"),
    ([{"uri": "public.", "allow": ["subscribe"], "check": "nodots"}], "dotted path"),
])
def test_bad_rules_are_refused_with_the_rule_and_the_fix(raw, message):
    with pytest.raises(RuleError, match=message):
        parse_rules(raw)


def test_bad_rules_fail_the_system_checks():
    from realtime._conf import find_problems

    problems = find_problems({"RULES": [{"uri": "public", "match": "prefix", "allow": ["subscribe"]}]})
    assert [p.id for p in problems] == ["realtime.E004"]
    assert "RULES[0]" in problems[0].msg


def test_a_check_function_judges_exact_uris_only():
    # under "chat.", a prefix subscription "chat.4" would also cover rooms 40, 41, ...
    rules = parse_rules([{"uri": "chat.", "allow": ["subscribe"], "check": "demo.rules.may_read"}])
    assert [r.uri for r in rules.decide("user", "1", "chat.4", "subscribe").pending] == ["chat."]
    assert rules.decide("user", "1", "chat.4", "subscribe", "prefix").pending == ()
    assert rules.decide("user", "1", "chat..x", "subscribe", "wildcard").pending == ()


def test_patterns_open_at_the_start_are_refused_and_never_allowed():
    for uri, match in (("..", "wildcard"), ("..on_join", "wildcard"), ("{user}.inbox", "exact")):
        with pytest.raises(RuleError, match="fixed component"):
            parse_rules([{"uri": uri, "match": match, "allow": ["subscribe"], "roles": ["user"]}])
    assert not allows(DEFAULTS, "staff", "1", "..on_join", match="wildcard")


def test_a_check_path_that_cannot_be_imported_fails_the_system_checks():
    from realtime._conf import find_problems

    problems = find_problems({"RULES": [{"uri": "chat.", "allow": ["subscribe"], "check": "nowhere.at_all"}]})
    assert [p.id for p in problems] == ["realtime.E004"] and "cannot be imported" in problems[0].msg
