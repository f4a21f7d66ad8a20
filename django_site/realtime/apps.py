from django.apps import AppConfig
from django.utils.module_loading import autodiscover_modules


class RealtimeConfig(AppConfig):
    name = "realtime"
    verbose_name = "djwamp real-time"

    def ready(self) -> None:
        from . import checks  # noqa: F401  (registers the system checks)
        from ._revocation import connect_signals

        connect_signals()
        # each installed app's procedures.py declares its @procedure functions
        autodiscover_modules("procedures")
