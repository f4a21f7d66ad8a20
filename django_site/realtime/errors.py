"""Every URI a WAMP client can see from djwamp, in one place (docs/ref/errors.md).

Pure constants, shared by the Django side, the router and (as literals, checked by a test) the
browser client. Each has its docstring: when a client sees it. Messages that go with them never
say more than the URI does: no detail that would help an attacker, no traceback. A test fails if
code spells one of these URIs out instead of naming its constant, or if docs/ref/errors.md and
this module disagree.
"""

__all__ = [
    "BUSY", "CLIENT", "CLOSE_LOGGED_OUT", "CLOSE_REVOKED", "CLOSE_SESSION_ENDED", "COMPONENT_FAILED",
    "INTERNAL", "INVALID_ARGUMENT", "INVALID_EVENT", "NOT_AUTHENTICATED", "NOT_AUTHORIZED", "NOT_FOUND",
    "NO_HISTORY", "NO_SUCH_SESSION", "OFFLINE", "PERMISSION_DENIED", "RATE_LIMITED", "TIMEOUT", "UNAVAILABLE",
    "WAMP_INVALID_ARGUMENT", "WAMP_INVALID_URI",
]

# --- joining ------------------------------------------------------------------------------------

NOT_AUTHENTICATED = "djwamp.error.not_authenticated"
"""The router refused to open the session (no valid Django session or ticket); the ticket view's
403; the fallback gateway's 403 and 404."""

UNAVAILABLE = "djwamp.error.unavailable"
"""Redis, the session store or the database failed, or the node is still starting after 30 s:
try again later. Also from ``djwamp.history``, the ticket view (503) and the gateway (503, 500)."""

RATE_LIMITED = "djwamp.error.rate_limited"
"""A limit of docs/topics/security.md#limits was reached: the client's address holds
``MAX_CONNECTIONS_PER_IP`` sessions or failed to authenticate too often, its session cookie holds
``GATEWAY_MAX_SESSIONS_PER_COOKIE`` fallback sessions, or the gateway is full. The router's
refusal of a session, the gateway's 429 (with ``Retry-After``). The client retries with backoff."""

# --- actions ------------------------------------------------------------------------------------

NOT_AUTHORIZED = "wamp.error.not_authorized"
"""Crossbar's own URI: ``djwamp.authorize`` refused a subscribe, publish, call or register; also
``djwamp.history`` for a topic the caller may not subscribe to."""

WAMP_INVALID_ARGUMENT = "wamp.error.invalid_argument"
"""The standard WAMP URI for arguments that cannot be used: ``djwamp.history``'s arguments, a
fallback gateway request (400, 413, 405), a revocation the authenticator cannot carry out."""

WAMP_INVALID_URI = "wamp.error.invalid_uri"
"""The standard WAMP URI: a fallback gateway request named a topic or procedure that is not a
valid WAMP URI (400)."""

NO_SUCH_SESSION = "wamp.error.no_such_session"
"""Crossbar's meta API: the session to kill has already gone. The authenticator takes it as done;
no client sees it from djwamp."""

NO_HISTORY = "djwamp.error.no_history"
"""``djwamp.history``: this topic keeps no history (``REALTIME["HISTORY"]``), so a gap cannot be
filled."""

# --- why the router closed a session ------------------------------------------------------------

CLOSE_LOGGED_OUT = "djwamp.close.logged_out"
"""Close reason: the session's Django session logged out."""

CLOSE_REVOKED = "djwamp.close.revoked"
"""Close reason: the user's password changed, or they were deactivated, deleted or lost
``is_staff``."""

CLOSE_SESSION_ENDED = "djwamp.close.session_ended"
"""Close reason: the Django session expired or became invalid."""

# --- calling a procedure (@procedure): args[0] is safe to show, details are in kwargs -----------

INVALID_ARGUMENT = "djwamp.error.invalid_argument"
"""Bad arguments or a ``ValidationError``: kwargs ``{"messages"}`` or ``{"errors"}``."""

PERMISSION_DENIED = "djwamp.error.permission_denied"
"""``login_required``, a missing ``permission``, or ``PermissionDenied``."""

NOT_FOUND = "djwamp.error.not_found"
"""``ObjectDoesNotExist`` or ``Http404``."""

TIMEOUT = "djwamp.error.timeout"
"""The procedure ran longer than its timeout."""

BUSY = "djwamp.error.busy"
"""Every worker busy and the queue full: retry later."""

INTERNAL = "djwamp.error.internal"
"""Any other exception; kwargs ``{"error_id"}`` names it in the node's log."""

# --- from the browser client itself (autobahn_js/src), never from a server -----------------------

OFFLINE = "djwamp.error.offline"
"""The browser client is offline, not opened yet, or not connected within ``callTimeout``."""

CLIENT = "djwamp.error.client"
"""A failure inside the browser client (an error without a WAMP URI, an unexpected challenge,
``auth: "ticket"`` without a ``ticketUrl``)."""

# --- inside the node only -----------------------------------------------------------------------

INVALID_EVENT = "djwamp.error.invalid_event"
"""An event autobahn could not put on the wire; the bridge logs it and counts it as refused."""

COMPONENT_FAILED = "djwamp.error.component_failed"
"""One of the node's own components stopped (it takes the node down with it)."""
