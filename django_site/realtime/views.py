"""The ticket view: a short-lived, single-use credential for clients that cannot send the
session cookie on the WebSocket (another origin, a native app, a fallback transport)."""

from django.http import JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_POST

from . import errors
from ._conf import get_settings
from ._exceptions import RedisUnavailable
from ._identity import issue_ticket


@never_cache
@require_POST
def ticket(request):
    """``POST`` (CSRF-protected) -> ``{"ticket", "expires_in", "realm"}``."""
    conf = get_settings()
    if not request.user.is_authenticated and not conf.ALLOW_ANONYMOUS:
        return JsonResponse({"error": errors.NOT_AUTHENTICATED, "message": "Log in first."}, status=403)
    try:
        token, seconds = issue_ticket(request)
    except RedisUnavailable:
        return JsonResponse({"error": errors.UNAVAILABLE,
                             "message": "Real-time service unavailable, try again."}, status=503)
    return JsonResponse({"ticket": token, "expires_in": seconds, "realm": conf.REALM})
