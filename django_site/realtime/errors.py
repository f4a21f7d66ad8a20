"""Every URI a WAMP client can see from djwamp, in one place (docs/ref/errors.md).

Pure constants, shared by the Django side and the router. Messages that go with them never
say more than the URI does: no detail that would help an attacker, no traceback.
"""

# Authentication (the router refuses to open the session)
NOT_AUTHENTICATED = "djwamp.error.not_authenticated"
# Authorization (Crossbar's own URI, returned when djwamp.authorize says no)
NOT_AUTHORIZED = "wamp.error.not_authorized"
# Redis or Django is unreachable; try again later
UNAVAILABLE = "djwamp.error.unavailable"
# An event that autobahn could not put on the wire (logged; the publisher is not told)
INVALID_EVENT = "djwamp.error.invalid_event"

# djwamp.history: this topic keeps no history (REALTIME["HISTORY"]), so a gap cannot be filled
NO_HISTORY = "djwamp.error.no_history"

# Why the router closed a session
CLOSE_LOGGED_OUT = "djwamp.close.logged_out"        # its Django session logged out
CLOSE_REVOKED = "djwamp.close.revoked"              # password changed, user deactivated or deleted
CLOSE_SESSION_ENDED = "djwamp.close.session_ended"  # the Django session expired or became invalid

# Why one of the node's own components stopped (it takes the node down with it)
COMPONENT_FAILED = "djwamp.error.component_failed"

# Calling a procedure (@procedure); the message in args[0] is safe to show, details in kwargs
INVALID_ARGUMENT = "djwamp.error.invalid_argument"    # bad arguments or ValidationError: {"messages"} / {"errors"}
PERMISSION_DENIED = "djwamp.error.permission_denied"  # login_required, permission, or PermissionDenied
NOT_FOUND = "djwamp.error.not_found"                  # ObjectDoesNotExist or Http404
TIMEOUT = "djwamp.error.timeout"                      # the procedure ran longer than its timeout
BUSY = "djwamp.error.busy"                            # every worker busy and the queue full: retry later
INTERNAL = "djwamp.error.internal"                    # any other exception: {"error_id"} names it in the log
