from django.apps import AppConfig


class ExercisesConfig(AppConfig):
    """Guided labs from fixtures/labs/*.toml and each learner's progress through them."""

    name = "messaging_lab.exercises"
    label = "exercises"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # The labs runtime knows nothing of exercises; it asks this hook for a lab's guide.
        from messaging_lab.exercises.services import guide_for_lab
        from messaging_lab.labs.runtime import runtime

        runtime.guide_loader = guide_for_lab
