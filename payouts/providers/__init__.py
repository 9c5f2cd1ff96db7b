"""Payout providers behind one interface, chosen by settings.PAYOUT_PROVIDER."""

from dataclasses import dataclass

from django.conf import settings
from django.utils.module_loading import import_string


@dataclass(frozen=True)
class PayoutResult:
    status: str  # "paid" | "failed" | "pending" (the provider answers later, e.g. staff upload a bank's result)
    reference: str = ""
    reason: str = ""


class PayoutProvider:
    name: str

    def send(self, withdrawal, idempotency_key: str) -> PayoutResult:
        """Pay `withdrawal`. The same key twice must never pay twice: it returns the first answer."""
        raise NotImplementedError

    def send_many(self, withdrawals) -> dict[int, PayoutResult]:
        """Pay several, each with its own idempotency key; {withdrawal id: result}. Providers with a batch
        API override this."""
        return {w.pk: self.send(w, idempotency_key=w.idempotency_key) for w in withdrawals}


def get_payout_provider(name: str | None = None) -> PayoutProvider:
    name = name or settings.PAYOUT_PROVIDER
    return import_string(settings.PAYOUT_PROVIDERS[name])()
