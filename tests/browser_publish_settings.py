"""Django settings for a node whose rules let signed-in browsers publish where Django publishes
too (tests/integration/test_browser_publish.py); realtime.W001 warns about exactly this."""

from django_site.settings import *  # noqa: F403

REALTIME = {**REALTIME, "RULES": [  # noqa: F405
    {"uri": "public.", "allow": ["subscribe"]},
    {"uri": "user.{user}.", "allow": ["subscribe"], "roles": ["user", "staff"]},
    {"uri": "public.chat.", "allow": ["subscribe", "publish"], "roles": ["user", "staff"]},
]}
SILENCED_SYSTEM_CHECKS = ["realtime.W001"]
