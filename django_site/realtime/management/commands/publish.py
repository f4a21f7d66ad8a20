"""``manage.py publish TOPIC [JSON]``: publish one event from the shell."""

import json

from django.core.management.base import BaseCommand, CommandError

from realtime import RealtimeError, publish
from realtime._publish import OWN_KWARGS


class Command(BaseCommand):
    help = (
        "Publish one event to the browsers subscribed to TOPIC. JSON, if given, is sent as the "
        "event's single positional argument; --kwargs sends a JSON object as keyword arguments. "
        "Prints the event id."
    )

    def add_arguments(self, parser):
        parser.add_argument("topic", help="a topic URI such as public.hello")
        parser.add_argument("payload", nargs="?", metavar="JSON", help='the payload as JSON, e.g. \'{"text": "hi"}\'')
        parser.add_argument("--kwargs", dest="kwargs_json", metavar="JSON_OBJECT",
                            help="a JSON object sent as the event's keyword arguments")

    def handle(self, *, topic, payload: str | None, kwargs_json: str | None, **options):
        args = [] if payload is None else [_parse("the payload", payload)]
        kwargs = {} if kwargs_json is None else _parse("--kwargs", kwargs_json)
        if not isinstance(kwargs, dict):
            raise CommandError("--kwargs must be a JSON object, e.g. '{\"text\": \"hi\"}'")
        taken = sorted(set(kwargs) & set(OWN_KWARGS))
        if taken:
            raise CommandError(f"--kwargs cannot contain {', '.join(taken)}: publish() takes these names for itself")
        try:
            event_id = publish(topic, *args, **kwargs)
        except (TypeError, ValueError, RealtimeError) as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(event_id)


def _parse(what: str, text: str):
    try:
        return json.loads(text)
    except ValueError as exc:
        raise CommandError(f"{what} is not valid JSON ({exc}): {text[:80]!r}") from exc
