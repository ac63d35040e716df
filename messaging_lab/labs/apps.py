from django.apps import AppConfig


class LabsConfig(AppConfig):
    """Lab sessions: the engine runtime, the live view over WebSockets, and the controls."""

    name = "messaging_lab.labs"
    label = "labs"
    default_auto_field = "django.db.models.BigAutoField"
