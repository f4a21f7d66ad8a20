from django.contrib.auth.decorators import login_required
from django.http import JsonResponse
from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.http import require_POST

from realtime import RedisUnavailable, errors, publish


def index(request):
    # ?auth=ticket shows the other way in: a ticket from the ticket view instead of the cookie
    auth = "ticket" if request.GET.get("auth") == "ticket" else "cookie"
    return render(request, "demo/index.html", {"realtime_auth": auth})


@login_required
@require_POST
def notify_me(request):
    """Publish a notification to the signed-in user's own topic, from Django.

    With Redis down, ``publish()`` raises ``RedisUnavailable`` within about ``REDIS_TIMEOUT``:
    the request still gets an answer (503), not a server error."""
    try:
        event_id = publish(f"user.{request.user.pk}.notifications",
                           {"text": f"Hello {request.user.get_username()}!", "at": timezone.now()})
    except RedisUnavailable:
        return JsonResponse({"error": errors.UNAVAILABLE, "message": "Notifications are unavailable, try again."},
                            status=503)
    return JsonResponse({"id": event_id})
