"""``{% load realtime %}{% realtime_client %}``: the browser client and its configuration."""

from django import template
from django.middleware.csrf import get_token
from django.templatetags.static import static
from django.urls import NoReverseMatch, reverse
from django.utils.html import format_html, json_script

from .._conf import get_settings

register = template.Library()


@register.simple_tag(takes_context=True)
def realtime_client(context, auth: str = "cookie", url: str | None = None):
    """The bundle, plus ``<script id="djwamp-config">`` that ``djwamp.connect()`` reads.

    ``auth="cookie"`` (same origin: the session cookie travels with the WebSocket) or
    ``"ticket"`` (another origin: a ticket from the ticket view, sent with the CSRF token).
    ``url`` defaults to ``/ws`` on the page's own origin.
    """
    if auth not in ("cookie", "ticket"):
        raise template.TemplateSyntaxError(f'realtime_client auth must be "cookie" or "ticket", not {auth!r}')
    request = context.get("request")
    config = {"realm": get_settings().REALM, "auth": auth}
    try:
        config["ticketUrl"] = reverse("realtime:ticket")
    except NoReverseMatch:
        if auth == "ticket":
            raise template.TemplateSyntaxError(
                'realtime_client auth="ticket" needs path("realtime/", include("realtime.urls")) in your URLconf'
            ) from None
    if url:
        config["url"] = url
    if auth == "ticket" and request is not None:
        config["csrfToken"] = get_token(request)
    return format_html('<script src="{}"></script>\n{}', static("realtime/djwamp.js"),
                       json_script(config, "djwamp-config"))
