from django.apps import AppConfig


class CoreConfig(AppConfig):
    name = "core"
    verbose_name = "Core"

    def ready(self) -> None:
        # The SITE_URL check (core/site_url.py): webhooks, return addresses and links are built from it.
        from core import site_url  # noqa: F401
