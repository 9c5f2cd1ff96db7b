"""Payment providers behind one interface, chosen by settings.PAYMENT_PROVIDER."""

from django.conf import settings
from django.utils.module_loading import import_string

from shops.payments.base import PaymentProvider, RefundResult, WebhookNotice, WebhookRejected

__all__ = ["PaymentProvider", "RefundResult", "WebhookNotice", "WebhookRejected", "get_provider"]


def get_provider(name: str | None = None) -> PaymentProvider:
    """The provider called `name` (default: settings.PAYMENT_PROVIDER). KeyError if it is not configured."""
    name = name or settings.PAYMENT_PROVIDER
    path = settings.PAYMENT_PROVIDERS[name]
    return import_string(path)()
