from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class NetworksConfig(AppConfig):
    """External affiliate networks (全网CPS): connectors, the products members share from them, the orders the
    networks report, and their commission split through the same ledger."""

    default_auto_field = "django.db.models.BigAutoField"
    name = "networks"
    verbose_name = _("External networks")
