from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class PayoutsConfig(AppConfig):
    name = "payouts"
    verbose_name = _("Payouts")

    def ready(self):
        from payouts.approvals import approval_actions_register

        approval_actions_register()  # a withdrawal above FOUR_EYES_THRESHOLD needs two people (four eyes)
