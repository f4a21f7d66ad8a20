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

**A proxied request must keep the hops before it.** Crossbar's reverse proxy replaces any
``X-Forwarded-For`` with the address that connected to it, so the fallback gateway behind it
could not tell browsers behind nginx apart (router/limits.py counts sessions per client). The
proxy now also sends ``X-Djwamp-Forwarded-For``: the ``X-Forwarded-For`` it received followed by
that address, always rewritten, so a browser cannot set it.

**A proxied response must not outrun its browser.** Twisted's proxy client writes whatever the
proxied server sends into the browser's request without flow control: a browser that does not
read its event stream (``/rt/events``) would grow the router's buffers without bound while the
gateway saw nothing. The proxy client's connection is now the browser request's producer: when
the browser's connection is full, the proxy stops reading from the gateway (or Django), the
gateway's own connection fills, and the gateway holds the events within its limits and then
closes the session. ``tests/integration/test_gateway_limits.py`` checks both through a real node.
"""

from __future__ import annotations

__all__ = ["apply"]

_applied = False


def apply() -> bool:
    """Apply the fixes once per process; False if already done."""
    global _applied
    if _applied:
        return False
    _applied = True
    _skip_closing_receivers()
    _no_request_headers_in_the_log()
    _forward_the_hops()
    _proxy_back_pressure()
    return True


def _no_request_headers_in_the_log() -> None:
    from crossbar.webservice.base import ExtReverseProxyResource
    from twisted.web.proxy import ProxyClientFactory

    # its two info lines per request: "forwarding incoming HTTP request" and the headers
    ExtReverseProxyResource.log.set_log_level("warn")
    # and Twisted's "Starting factory" / "Stopping factory" around every proxied request
    ProxyClientFactory.noisy = False


#: the header the gateway reads the client's hops from (see the module docstring)
FORWARDED_CHAIN = b"X-Djwamp-Forwarded-For"


def _forward_the_hops() -> None:
    from crossbar.webservice.base import ExtReverseProxyResource

    original = ExtReverseProxyResource.render

    def render(self, request):
        received = request.requestHeaders.getRawHeaders(b"x-forwarded-for") or []
        peer = (getattr(request.getClientAddress(), "host", None) or "unknown").encode("ascii", "replace")
        request.requestHeaders.setRawHeaders(FORWARDED_CHAIN, [b", ".join([*received, peer])])
        return original(self, request)

    render.__wrapped__ = original
    ExtReverseProxyResource.render = render


def _proxy_back_pressure() -> None:
    from twisted.web.proxy import ProxyClient

    made, ended = ProxyClient.connectionMade, ProxyClient.handleResponseEnd

    def connectionMade(self):
        made(self)
        if getattr(self.father, "producer", True) is None and not self.father.finished:
            # paused while the browser's connection is full; closed if the browser goes
            self.father.registerProducer(self.transport, True)

    def handleResponseEnd(self):
        father = self.father
        if not self._finished and getattr(father, "_disconnected", False):
            # the browser went (which, with the producer, also ends this connection): there is
            # nothing to finish, and Twisted's finish() would raise on a lost request
            self._finished = True
            self.transport.loseConnection()
            return
        if not self._finished and getattr(father, "producer", None) is self.transport:
            father.unregisterProducer()
        ended(self)

    connectionMade.__wrapped__, handleResponseEnd.__wrapped__ = made, ended
    ProxyClient.connectionMade, ProxyClient.handleResponseEnd = connectionMade, handleResponseEnd


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
