import hashlib
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Literal

CENT = Decimal("0.01")


class WebhookRejected(Exception):
    """A webhook that must change nothing: bad signature, stale timestamp, malformed body."""


class ProviderError(Exception):
    """The provider refused a request or could not be reached; the message names its reason (never a secret)."""


class PaymentAlreadyPaid(ProviderError):
    """Closing was refused because the buyer has paid: query the payment and apply it instead."""


@dataclass(frozen=True)
class WebhookNotice:
    event_id: str
    # "payment.succeeded" | "payment.failed" | "payment.closed" | "payment.pending" | "refund.succeeded"
    # | "refund.failed"
    event_type: str
    payment_reference: str
    amount: Decimal
    payload: dict = field(default_factory=dict)
    # Refund notices: the merchant refund number the provider knows the refund by (`refund_reference`) ...
    refund_reference: str = ""
    # ... and whether `amount` is everything refunded on the payment so far (Alipay's refund_fee) rather than
    # this refund's own amount (WeChat Pay's amount.refund).
    amount_is_refunded_total: bool = False

    def record(self) -> dict:
        """What the apply needs of this notice, as JSON (WebhookEvent.notice); `from_record` reads it back."""
        return {
            "event_type": self.event_type,
            "payment_reference": self.payment_reference,
            "amount": str(self.amount),
            "refund_reference": self.refund_reference,
            "amount_is_refunded_total": self.amount_is_refunded_total,
        }

    @classmethod
    def from_record(cls, event_id: str, record: dict, payload: dict) -> "WebhookNotice":
        return cls(
            event_id=event_id,
            event_type=record["event_type"],
            payment_reference=record["payment_reference"],
            amount=Decimal(record["amount"]),
            payload=payload,
            refund_reference=record.get("refund_reference", ""),
            amount_is_refunded_total=record.get("amount_is_refunded_total", False),
        )


@dataclass(frozen=True)
class RefundResult:
    provider_refund_id: str
    # "succeeded": the money is on its way back; "pending": the provider confirms later (a refund notification,
    # or a query); "failed": it will not go back.
    status: Literal["succeeded", "pending", "failed"] = "succeeded"


@dataclass(frozen=True)
class Buyer:
    """What the checkout knows about the buyer's browser, for the methods that need it."""

    client_ip: str = ""  # WeChat Pay H5 (scene_info.payer_client_ip)
    openid: str = ""  # WeChat Pay JSAPI: the buyer's openid for the shop's official account


@dataclass(frozen=True)
class PaymentAction:
    """What the buyer's browser does next to pay."""

    kind: Literal["redirect", "qr", "jsapi"]
    url: str = ""  # redirect: the page to send the buyer to
    qr_text: str = ""  # qr: the text of the QR code the buyer scans with the provider's app
    jsapi_params: dict = field(default_factory=dict)  # jsapi: what WeixinJSBridge getBrandWCPayRequest takes


@dataclass(frozen=True)
class PaymentState:
    """What the provider says about a payment when asked."""

    status: Literal["pending", "succeeded", "closed"]
    amount: Decimal | None = None  # what the buyer paid, when succeeded
    provider_payment_id: str = ""  # the provider's number of the trade (transaction_id, trade_no)


@dataclass(frozen=True)
class RefundState:
    """What the provider says about one refund when asked (`refund_query`)."""

    status: Literal["succeeded", "pending", "failed"]
    amount: Decimal | None = None  # this refund's amount, as the provider has it


class PaymentProvider(ABC):
    """What the shop needs from a payment provider.

    `start` hands the buyer to the provider (`start_method` with a named method: a QR code, a redirect or a
    WeChat in-app call); the provider later reports the outcome by webhook, which `parse_webhook` verifies and
    decodes; `refund` returns money and must be idempotent on `idempotency_key`. Providers that can be asked
    (`can_query`) also `query` a payment (a notification that never came) and `close` an unpaid one.
    """

    name: str
    methods: tuple[str, ...] = ("hosted",)
    can_query = False

    @abstractmethod
    def start(self, payment) -> str:
        """Return the URL to send the buyer to, to pay `payment`."""

    def start_method(self, payment, method: str, buyer: Buyer) -> PaymentAction:
        """Open `payment` at the provider with `method` (one of `methods`); say what the buyer's browser does."""
        if method not in self.methods:
            raise ProviderError(f"{self.name} has no payment method {method!r}")
        return PaymentAction(kind="redirect", url=self.start(payment))

    @abstractmethod
    def parse_webhook(self, body: bytes, headers: Mapping[str, str]) -> WebhookNotice:
        """Verify the signature over the raw body and decode it; raise WebhookRejected if it is not genuine."""

    def webhook_reply(self, outcome: str) -> str:
        """The body that acknowledges an accepted webhook (Alipay wants the word "success")."""
        return outcome

    @abstractmethod
    def refund(self, payment, amount: Decimal, idempotency_key: str) -> RefundResult:
        """Refund `amount` of `payment`; the same key twice refunds once."""

    def refund_reference(self, idempotency_key: str) -> str:
        """The merchant refund number the provider knows the refund with this key by (in refund notices)."""
        return idempotency_key

    def query(self, payment) -> PaymentState:
        """Ask the provider how `payment` stands (ProviderError if it cannot say)."""
        raise ProviderError(f"{self.name} cannot be asked about a payment")

    def refund_query(self, payment, refund_reference: str) -> RefundState:
        """Ask the provider how the refund it knows by `refund_reference` (of `payment`) stands (ProviderError if it
        cannot say)."""
        raise ProviderError(f"{self.name} cannot be asked about a refund")

    def close(self, payment) -> None:
        """Close the unpaid `payment` at the provider so it can no longer be paid (PaymentAlreadyPaid if it was).
        A provider that cannot be asked has nothing to close: its hosted page checks the payment itself."""
        return None


def to_fen(amount: Decimal) -> int:
    """An amount in whole cents (fen), as WeChat Pay counts; ValueError if it has a fraction of a cent."""
    if amount != amount.quantize(CENT):
        raise ValueError(f"{amount} is not a whole number of cents")
    return int(amount.quantize(CENT) * 100)


def from_fen(fen: int) -> Decimal:
    return (Decimal(fen) / 100).quantize(CENT)


def merchant_refund_number(idempotency_key: str) -> str:
    """A refund's number at a gateway ("rf" and 30 hex digits of the key's SHA-256): gateways allow 64 characters of
    letters, digits and a few signs, and the key may be longer or hold others. The same key gives the same number,
    so a retried refund is refunded once."""
    return "rf" + hashlib.sha256(idempotency_key.encode()).hexdigest()[:30]


def mask(value: str) -> str:
    """An identifier fit for a log line or a stored payload: its first 4 characters ("oUpF…"), never in full."""
    return value[:4] + "…" if value else ""


def is_storable_text(value) -> bool:
    """A string PostgreSQL can store in a text or jsonb column: valid UTF-8 (no lone surrogate), no NUL."""
    if not isinstance(value, str) or "\x00" in value:
        return False
    try:
        value.encode()
    except UnicodeEncodeError:
        return False
    return True


def is_storable_json(payload) -> bool:
    """Every key and string in `payload` is storable text (walked without recursion: nesting may be deep)."""
    stack = [payload]
    while stack:
        value = stack.pop()
        if isinstance(value, dict):
            if not all(is_storable_text(key) for key in value):
                return False
            stack.extend(value.values())
        elif isinstance(value, list):
            stack.extend(value)
        elif isinstance(value, str) and not is_storable_text(value):
            return False
    return True
