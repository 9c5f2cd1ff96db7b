from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class NotificationsConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "members.notifications"
    label = "notifications"  # its tables and migrations keep the name they were made with
    verbose_name = _("Notifications")

    def ready(self) -> None:
        from members.notifications import receivers

        receivers.connect()
