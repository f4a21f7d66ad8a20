"""``manage.py demo_users``: the demo's sign-in users (development only)."""

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

DEMO_USERS = ("alice", "bob")
DEMO_PASSWORD = "djwamp-demo"


class Command(BaseCommand):
    help = f"Create the demo users {', '.join(DEMO_USERS)} (password {DEMO_PASSWORD!r}); DEBUG only."

    def handle(self, **options):
        if not settings.DEBUG:
            raise CommandError("demo users have a published password: refusing with DEBUG off")
        model = get_user_model()
        for username in DEMO_USERS:
            user = model._default_manager.filter(username=username).first()
            if user is None:
                # created with its password in one save: a password *change* would revoke the
                # user's connections (there are none yet) and count in the bridge's stats
                model._default_manager.create_user(username, password=DEMO_PASSWORD)
            elif not user.check_password(DEMO_PASSWORD):
                user.set_password(DEMO_PASSWORD)
                user.save()
        self.stdout.write(f"demo login: {' or '.join(DEMO_USERS)} / {DEMO_PASSWORD}")
