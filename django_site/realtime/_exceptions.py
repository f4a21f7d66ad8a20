"""One exception tree for everything djwamp raises on the Django side."""


class RealtimeError(Exception):
    """Base class of djwamp's own errors (bad input raises ``TypeError``/``ValueError``)."""


class RedisUnavailable(RealtimeError, ConnectionError):
    """Redis did not confirm an event within ``REALTIME["REDIS_TIMEOUT"]``.

    When the connection failed the event was not written; when Redis took the command but
    its reply timed out, it may have been. The message names the server, never its password.
    """
