"""Payout providers behind one interface, chosen by settings.PAYOUT_PROVIDER.

A provider pays withdrawals (`send`, `send_many`) and answers each with a PayoutResult: paid, failed (the money
returns to the member's balance) or pending (the answer comes later). Payout rails (WeChat Pay 商家转账, Alipay
transfers) also make a transfer at the rail for each withdrawal: their results carry its state (TransferState),
which payouts.services records as a Transfer and follows until it is final, through the rail's notifications
(`parse_notification`) and queries (`transfer_query`), cancelling what waits too long (`transfer_cancel`).
"""

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from django.conf import settings
from django.utils.module_loading import import_string
from django.utils.translation import gettext as _


@dataclass(frozen=True)
class TransferState:
    """What a payout rail says about one transfer (the fields of payouts.models.Transfer)."""

    rail: str
    number: str  # ours at the rail: the withdrawal's idempotency key
    state: str  # the rail's word (WAIT_USER_CONFIRM, SUCCESS, FAIL, DEALING …)
    rail_reference: str = ""  # the rail's number (transfer_bill_no, order_id)
    package_info: str = ""  # WeChat Pay: what the payee's WeChat needs to confirm receipt
    fail_reason: str = ""  # the rail's code (OVERDUE_CLOSE, PAYEE_USER_INFO_ERROR …)
    confirm_by: datetime | None = None  # WeChat Pay: unconfirmed past this, the bill is closed


@dataclass(frozen=True)
class PayoutResult:
    status: str  # "paid" | "failed" | "pending" (the provider answers later, e.g. staff upload a bank's result)
    reference: str = ""
    reason: str = ""
    transfer: TransferState | None = None  # payout rails: the transfer as the rail answered for it


@dataclass(frozen=True)
class TransferNotice:
    """A payout rail's verified notification about one transfer."""

    event_id: str
    transfer: TransferState
    amount: Decimal
    payee: str  # the openid (or account) it was paid to, to match against the withdrawal's
    payload: dict


class PayoutProvider:
    name: str
    # A payout rail: its transfers are recorded (Transfer) and followed until final (payouts.services).
    follows_transfers = False

    def send(self, withdrawal, idempotency_key: str) -> PayoutResult:
        """Pay `withdrawal`. The same key twice must never pay twice: it returns the first answer."""
        raise NotImplementedError

    def send_many(self, withdrawals) -> dict[int, PayoutResult]:
        """Pay several, each with its own idempotency key; {withdrawal id: result}. Providers with a batch
        API override this."""
        return {w.pk: self.send(w, idempotency_key=w.idempotency_key) for w in withdrawals}

    def transfer_query(self, transfer) -> TransferState | None:
        """How the rail says `transfer` (a payouts.models.Transfer) stands; None if the rail has no such transfer
        (it was never made: sending it again with the same number is safe). ProviderError if it cannot say."""
        raise NotImplementedError

    def transfer_cancel(self, transfer) -> TransferState:
        """Ask the rail to cancel a transfer that is not final (WeChat Pay: one the payee has not confirmed)."""
        raise NotImplementedError

    def transfer_result(self, state: TransferState) -> PayoutResult:
        """The withdrawal's result for a transfer in `state`: paid, failed (with the reason shown to the member and
        to finance) or pending."""
        raise NotImplementedError

    def parse_notification(self, body: bytes, headers) -> TransferNotice:
        """Verify and decode a rail's notification; WebhookRejected if it is not genuine."""
        raise NotImplementedError

    def payee_of(self, withdrawal) -> str:
        """Who the withdrawal pays at this rail (an openid, an account), to match a notification against."""
        return ""


def rail_reason(rail: str, reasons: dict[str, str], code: str, message: str = "") -> str:
    """The reason shown to the member and to finance when `rail` ("WeChat Pay", "Alipay") fails a transfer with
    `code`: the sentence `reasons` has for it (translated), or the rail's own message; the code kept for finance."""
    known = reasons.get(code)
    if known:
        return f"{_(known)} ({rail}: {code})"
    detail = f": {message[:120]}" if message else ""
    return _("%(rail)s refused the transfer (%(code)s)%(detail)s") % {
        "rail": rail,
        "code": code or "?",
        "detail": detail,
    }


def get_payout_provider(name: str | None = None) -> PayoutProvider:
    name = name or settings.PAYOUT_PROVIDER
    return import_string(settings.PAYOUT_PROVIDERS[name])()
