"""One exception tree for everything djwamp raises on the Django side."""


class RealtimeError(Exception):
    """Base class of djwamp's own errors (bad input raises ``TypeError``/``ValueError``)."""


class RedisUnavailable(RealtimeError, ConnectionError):
    """Redis did not accept an event within ``REALTIME["REDIS_TIMEOUT"]``.

    The event was not published. The message names the server (never its password).
    """
