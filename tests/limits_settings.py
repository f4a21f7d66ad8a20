"""Django settings for a node with small per-client limits (tests/integration/test_gateway_limits.py)."""

from django_site.settings import *  # noqa: F403

REALTIME = {**REALTIME, "MAX_CONNECTIONS_PER_IP": 3, "GATEWAY_MAX_SESSIONS": 40,  # noqa: F405
            "GATEWAY_MAX_SESSIONS_PER_COOKIE": 2, "GATEWAY_MAX_SUBSCRIPTIONS": 3}
