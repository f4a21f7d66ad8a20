"""``manage.py demo_ticker``: publish a tick to ``public.feed`` every few seconds.

A periodic publisher without Celery: any long-running process can call publish().
"""

import time

from django.core.management.base import BaseCommand
from django.utils import timezone

from realtime import RealtimeError, publish


class Command(BaseCommand):
    help = "Publish a tick to public.feed every --interval seconds until interrupted."

    def add_arguments(self, parser):
        parser.add_argument("--interval", type=float, default=3.0)

    def handle(self, *, interval: float, **options):
        count = 0
        while True:
            count += 1
            now = timezone.now()
            try:
                publish("public.feed", {"text": f"tick {count} at {now:%H:%M:%S}", "n": count, "at": now})
            except RealtimeError as exc:  # Redis restarting: skip a tick, keep going
                self.stderr.write(f"tick {count} not published: {exc}")
            time.sleep(interval)
