from django.conf import settings
from django.shortcuts import render

from realtime._conf import get_settings


def index(request):
    conf = get_settings()
    ws_scheme = "wss" if request.is_secure() else "ws"
    return render(request, "demo/index.html", {
        "realm": conf.REALM,
        "ws_url": f"{ws_scheme}://{settings.PUBLIC_HOST}:{settings.PUBLIC_PORT}/ws",
    })
