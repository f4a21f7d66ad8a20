from django.conf import settings
from django.db import models


class ChatMessage(models.Model):
    """One message of the demo chat (sent with the ``demo.chat.send`` procedure)."""

    room = models.SlugField(max_length=50)
    author = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL,
                               related_name="chat_messages")
    text = models.CharField(max_length=500)
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created", "pk"]
        indexes = [models.Index(fields=["room", "created"])]

    def __str__(self) -> str:
        return f"{self.room}: {self.text[:40]}"

    def as_event(self) -> dict:
        """What the room's subscribers receive, and what ``demo.chat.send`` returns."""
        return {
            "id": self.pk,
            "room": self.room,
            "author": self.author.get_username() if self.author else None,
            "text": self.text,
            "created": self.created,
        }
