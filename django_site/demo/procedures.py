"""The demo's procedures, called from the browser (djwamp autodiscovers this module)."""

from django.core.exceptions import ValidationError
from django.core.validators import validate_slug
from django.db import transaction

from realtime import CallRequest, procedure, publish

from .models import ChatMessage

MAX_TEXT = ChatMessage._meta.get_field("text").max_length
MAX_ROOM = ChatMessage._meta.get_field("room").max_length


@procedure("demo.whoami", login_required=False)
def whoami(request: CallRequest) -> dict:
    """Who the server thinks is calling: anyone may ask."""
    user = request.user
    return {
        "username": user.get_username() if user.is_authenticated else None,
        "authenticated": user.is_authenticated,
        "is_staff": user.is_staff,
    }


@procedure("demo.chat.send", login_required=True)
def send_chat_message(request: CallRequest, room: str, text: str) -> dict:
    """Store a message in ``room`` and publish it to ``public.chat.<room>`` once committed.

    Returns the stored message: ``{"id", "room", "author", "text", "created"}``, the same
    object the room's subscribers receive as the event's first argument.
    """
    errors = {}
    if not isinstance(room, str) or not room or len(room) > MAX_ROOM:
        errors["room"] = [f"Name a room in at most {MAX_ROOM} characters."]
    else:
        try:
            validate_slug(room)
        except ValidationError as exc:
            errors["room"] = exc.messages
    text = text.strip() if isinstance(text, str) else ""
    if not text:
        errors["text"] = ["Write a message."]
    elif len(text) > MAX_TEXT:
        errors["text"] = [f"Keep messages to {MAX_TEXT} characters (this one has {len(text)})."]
    if errors:
        raise ValidationError(errors)

    with transaction.atomic():
        message = ChatMessage.objects.create(room=room, author=request.user, text=text)
        # subscribers must be able to fetch what they are told about: publish after COMMIT
        publish(f"public.chat.{room}", message.as_event(), on_commit=True)
    return message.as_event()
