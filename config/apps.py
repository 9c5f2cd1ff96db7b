from django.apps import AppConfig


class ProjectConfig(AppConfig):
    """The project itself as an app (settings, URLs, the Celery app): installed for its `runserver` command, the
    development server that also runs the beat schedule in the embedded default (config/scheduler.py)."""

    name = "config"
    verbose_name = "Project"
