from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class ShopsConfig(AppConfig):
    name = "shops"
    verbose_name = _("Shops and orders")

    def ready(self) -> None:
        # The SITE_URL check (config/site_url.py): payments build their webhook and return URLs from it.
        from config import site_url  # noqa: F401
