"""Django settings for the benchmark's Channels app only (bench/channels_app.py, run by daphne).

The demo site's settings plus Channels and a Redis channel layer on the benchmark's private
redis-server (BENCH_CHANNELS_REDIS_URL, set by the fixture). django_site/ is not touched.
"""

import os

from django_site.settings import *  # noqa: F401,F403
from django_site.settings import INSTALLED_APPS

INSTALLED_APPS = [*INSTALLED_APPS, "channels"]
ASGI_APPLICATION = "bench.channels_app.application"
CHANNEL_LAYERS = {
    "default": {
        "BACKEND": "channels_redis.core.RedisChannelLayer",
        "CONFIG": {"hosts": [os.environ["BENCH_CHANNELS_REDIS_URL"]]},
    },
}
