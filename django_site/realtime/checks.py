"""System checks: misconfiguration is reported at start, with a hint that names the fix."""

from django.conf import settings
from django.core import checks

from ._conf import find_problems
from ._procedures import registry


@checks.register("realtime")
def check_settings(app_configs=None, **kwargs):
    return _errors(find_problems(getattr(settings, "REALTIME", {})))


@checks.register("realtime")
def check_procedures(app_configs=None, **kwargs):
    """Bad and duplicate @procedure names (realtime.E005, realtime.E006)."""
    return _errors(registry.problems)


def _errors(problems):
    return [checks.Error(problem.msg, hint=problem.hint, id=problem.id) for problem in problems]
