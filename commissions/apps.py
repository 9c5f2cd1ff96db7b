from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class CommissionsConfig(AppConfig):
    name = "commissions"
    verbose_name = _("Commissions")

    def ready(self):
        from commissions.receivers import receivers_connect

        receivers_connect()  # the ports of shops (orders paid, refunds) and networks (lines marked)
