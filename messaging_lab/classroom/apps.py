from django.apps import AppConfig


class ClassroomConfig(AppConfig):
    """Instructor-led classes: join codes, follow mode, pushed questions, pause all, the class dashboard."""

    name = "messaging_lab.classroom"
    label = "classroom"
    default_auto_field = "django.db.models.BigAutoField"
