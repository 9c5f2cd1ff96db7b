from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal


class WebhookRejected(Exception):
    """A webhook that must change nothing: bad signature, stale timestamp, malformed body."""


@dataclass(frozen=True)
class WebhookNotice:
    event_id: str
    event_type: str  # "payment.succeeded" | "payment.failed"
    payment_reference: str
    amount: Decimal
    payload: dict = field(default_factory=dict)


@dataclass(frozen=True)
class RefundResult:
    provider_refund_id: str


class PaymentProvider(ABC):
    """What the shop needs from a payment provider.

    `start` hands the buyer to the provider; the provider later reports the
    outcome by webhook, which `parse_webhook` verifies and decodes; `refund`
    returns money and must be idempotent on `idempotency_key`.
    """

    name: str

    @abstractmethod
    def start(self, payment) -> str:
        """Return the URL to send the buyer to, to pay `payment`."""

    @abstractmethod
    def parse_webhook(self, body: bytes, headers: Mapping[str, str]) -> WebhookNotice:
        """Verify the signature over the raw body and decode it; raise WebhookRejected if it is not genuine."""

    @abstractmethod
    def refund(self, payment, amount: Decimal, idempotency_key: str) -> RefundResult:
        """Refund `amount` of `payment`; the same key twice refunds once."""
