from django.apps import AppConfig


class RealtimeConfig(AppConfig):
    name = "realtime"
    verbose_name = "djwamp real-time"

    def ready(self) -> None:
        from . import checks  # noqa: F401  (registers the system checks)
        from ._revocation import connect_signals

        connect_signals()
