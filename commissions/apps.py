from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class CommissionsConfig(AppConfig):
    name = "commissions"
    verbose_name = _("Commissions")

    def ready(self):
        from commissions.approvals import approval_actions_register
        from commissions.receivers import receivers_connect

        receivers_connect()  # the ports of shops (orders paid, refunds) and networks (lines marked)
        approval_actions_register()  # plan activation and policy publication need two people (four eyes)
