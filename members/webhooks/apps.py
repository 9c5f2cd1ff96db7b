from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class WebhooksConfig(AppConfig):
    """Outbound webhooks: listens to the domain apps' announcements (shops, commissions, payouts signals) and
    delivers signed events to the endpoints members and staff registered."""

    name = "members.webhooks"
    label = "webhooks"  # its tables and migrations keep the name they were made with
    verbose_name = _("Webhooks")
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from members.webhooks import receivers

        receivers.connect()
