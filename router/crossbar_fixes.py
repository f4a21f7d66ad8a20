"""Fixes to Crossbar that the node's workers apply when their first component starts.

**A receiver that vanishes during a fan-out must not cost the others the event.** Crossbar's
broker sends an event to its receivers in a loop and catches only ``PayloadExceededError``.
A receiver whose WebSocket has just closed (a ping timeout, a reset) but whose session is not
detached yet still has a transport; sending to it raises ``autobahn.exception.Disconnected``,
which ends the loop: the receivers after it in that chunk, and every later chunk, never get
the event, and the "Unhandled error in Deferred" traceback is all that is said. Measured here:
``tests/integration/test_wamp_abuse.py`` drops a subscriber by ping timeout in the middle of
100 events/s and saw it.

``Router.send`` already skips a receiver whose transport is gone; ``apply()`` makes it skip,
the same way, one whose transport is closing.

**A proxied request must not put the browser's cookies in the log.** Crossbar's reverse proxy
(the node's ``/`` to Django and ``/rt/`` to the fallback gateway) logs every request it
forwards at ``info``, with all its headers: the session cookie and the CSRF token of every page
view. ``apply()`` sets that logger to ``warn``, whatever ``DJWAMP_LOG_SESSIONS`` says.
``tests/integration/test_authentication.py`` sends a signed-in page view and a gateway request
through the node and searches its log for the cookie.
"""

from __future__ import annotations

__all__ = ["apply"]

_applied = False


def apply() -> bool:
    """Apply both fixes once per process; False if already done."""
    global _applied
    if _applied:
        return False
    _applied = True
    _skip_closing_receivers()
    _no_request_headers_in_the_log()
    return True


def _no_request_headers_in_the_log() -> None:
    from crossbar.webservice.base import ExtReverseProxyResource

    # its two info lines per request: "forwarding incoming HTTP request" and the headers
    ExtReverseProxyResource.log.set_log_level("warn")


def _skip_closing_receivers() -> None:
    from autobahn.exception import Disconnected
    from autobahn.wamp.exception import TransportLost
    from crossbar.router.router import Router

    original = Router.send

    def send(self, session, msg):
        try:
            original(self, session, msg)
        except (Disconnected, TransportLost):
            self.log.debug("skip sending msg - transport closing")

    send.__wrapped__ = original
    send.__doc__ = original.__doc__
    Router.send = send
