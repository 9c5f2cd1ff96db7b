"""The project's settings as a production deployment extends them with its own payment provider (README, "Running
it in production shape"): `from config.settings import *`, then the provider's class in PAYMENT_PROVIDERS."""

from config.settings import *  # noqa: F403
from shops.payments.base import PaymentProvider


class BankProvider(PaymentProvider):
    """Stands for a real provider's integration; the deployment checks only need it configured."""

    name = "bank"

    def start(self, payment):
        raise NotImplementedError

    def parse_webhook(self, body, headers):
        raise NotImplementedError

    def refund(self, payment, amount, idempotency_key):
        raise NotImplementedError


PAYMENT_PROVIDERS = {**PAYMENT_PROVIDERS, "bank": "tests.security.production_settings.BankProvider"}  # noqa: F405
