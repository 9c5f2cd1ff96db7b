from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class ShopsConfig(AppConfig):
    name = "shops"
    verbose_name = _("Shops and orders")

    def ready(self):
        from shops.approvals import approval_actions_register

        approval_actions_register()  # a change of owner needs two people (four eyes)
