"""System checks: misconfiguration is reported at start, with a hint that names the fix."""

from django.conf import settings
from django.core import checks

from ._conf import find_problems, get_settings
from ._procedures import registry
from ._rules import USER_PLACEHOLDER


@checks.register("realtime")
def check_settings(app_configs=None, **kwargs):
    return _errors(find_problems(getattr(settings, "REALTIME", {})))


@checks.register("realtime")
def check_procedures(app_configs=None, **kwargs):
    """Bad and duplicate @procedure names (realtime.E005, realtime.E006)."""
    return _errors(registry.problems)


@checks.register("realtime")
def check_browser_publications(app_configs=None, **kwargs):
    """realtime.W001: a rule lets browsers publish where Django publishes too (TOPIC_PREFIXES)."""
    if find_problems(getattr(settings, "REALTIME", {})):
        return []  # reported by check_settings
    conf = get_settings()
    warnings = []
    for rule in conf.rules.rules:
        if "publish" not in rule.allow:
            continue
        shared = [prefix for prefix in conf.TOPIC_PREFIXES if _may_publish_under(rule, prefix)]
        if shared:
            warnings.append(checks.Warning(
                f"REALTIME['RULES'][{rule.index}] lets {', '.join(sorted(rule.roles))} publish to {rule.uri!r} "
                f"({rule.match}), where Django publishes too (TOPIC_PREFIXES {', '.join(map(repr, shared))}).",
                hint="Subscribers tell the two apart only by event.publisher (null: from Django). Give browser "
                     "publications a prefix of their own that is not in TOPIC_PREFIXES, or silence this check "
                     "(SILENCED_SYSTEM_CHECKS = ['realtime.W001']) if your pages check event.publisher.",
                id="realtime.W001"))
    return warnings


def _may_publish_under(rule, prefix: str) -> bool:
    """Could some topic under ``prefix`` be published by a browser this rule allows? (Over-
    approximated past a ``{user}`` placeholder or an empty wildcard component.)"""
    if rule.match == "exact" and USER_PLACEHOLDER not in rule.uri:
        return rule.uri.startswith(prefix)
    head = rule.uri.split(USER_PLACEHOLDER, 1)[0]
    if rule.match == "wildcard":
        parts = head.split(".")
        head = ".".join(parts[:parts.index("")] if "" in parts else parts)
    return head.startswith(prefix) or prefix.startswith(head)


def _errors(problems):
    return [checks.Error(problem.msg, hint=problem.hint, id=problem.id) for problem in problems]
