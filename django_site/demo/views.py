from django.contrib.auth.decorators import login_required
from django.http import JsonResponse
from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.http import require_POST

from realtime import publish


def index(request):
    # ?auth=ticket shows the other way in: a ticket from the ticket view instead of the cookie
    auth = "ticket" if request.GET.get("auth") == "ticket" else "cookie"
    return render(request, "demo/index.html", {"realtime_auth": auth})


@login_required
@require_POST
def notify_me(request):
    """Publish a notification to the signed-in user's own topic, from Django."""
    event_id = publish(f"user.{request.user.pk}.notifications",
                       {"text": f"Hello {request.user.get_username()}!", "at": timezone.now()})
    return JsonResponse({"id": event_id})
