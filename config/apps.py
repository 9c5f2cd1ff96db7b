from django.apps import AppConfig


class ProjectConfig(AppConfig):
    """The project itself as an app (settings, URLs, the Celery app): installed for its `runserver` command, the
    development server that also runs the beat schedule in the embedded default (config/scheduler.py), and for the
    deployment checks it registers (config/checks.py)."""

    name = "config"
    verbose_name = "Project"

    def ready(self) -> None:
        from config import checks  # noqa: F401  (registers the checks with Django's check framework)
