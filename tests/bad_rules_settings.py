"""Django settings for a node whose embedded components cannot start (tests/integration/test_startup.py)."""

from django_site.settings import *  # noqa: F403

REALTIME = {**REALTIME, "RULES": [{"topic": "public.", "match": "sideways", "allow": ["subscribe"]}]}  # noqa: F405
