"""System checks: misconfiguration is reported at start, with a hint that names the fix."""

from django.conf import settings
from django.core import checks

from ._conf import find_problems


@checks.register("realtime")
def check_settings(app_configs=None, **kwargs):
    return [
        checks.Error(problem.msg, hint=problem.hint, id=problem.id)
        for problem in find_problems(getattr(settings, "REALTIME", {}))
    ]
