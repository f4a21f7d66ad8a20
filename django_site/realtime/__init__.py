"""djwamp's Django app: publish events to browsers through Redis and a Crossbar.io router,
and declare procedures that browsers call (``@procedure``).

The public API is what ``__all__`` lists; ``_``-prefixed modules are private. This package
never imports Twisted, crossbar or txredisapi: request code stays synchronous and cheap.
"""

from ._exceptions import RealtimeError, RedisUnavailable
from ._procedures import CallRequest, procedure
from ._publish import publish, publish_on_commit

__version__ = "0.1.0"

__all__ = [
    "CallRequest",
    "RealtimeError",
    "RedisUnavailable",
    "procedure",
    "publish",
    "publish_on_commit",
]
