"""The built-in sandbox provider: a hosted page where the buyer pays or declines, then a
signed webhook to the shop's webhook endpoint, as a real provider sends it.

Signature header: `X-Sandbox-Signature: t=<unix time>,v1=<hex HMAC-SHA256 of "<t>.<raw body>">`
with settings.PAYMENTS_SANDBOX_SECRET; webhooks older or newer than
settings.PAYMENTS_WEBHOOK_TOLERANCE seconds are refused.
"""

import hashlib
import hmac
import json
import logging
import time
import uuid
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation

from django.conf import settings
from django.urls import reverse

from shops.payments.base import PaymentProvider, RefundResult, WebhookNotice, WebhookRejected

logger = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-Sandbox-Signature"
EVENT_TYPES = ("payment.succeeded", "payment.failed")


def sign(body: bytes, timestamp: int, secret: str | None = None) -> str:
    secret = secret if secret is not None else settings.PAYMENTS_SANDBOX_SECRET
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def build_webhook(payment, outcome: str, *, now: float | None = None) -> tuple[bytes, dict[str, str]]:
    """The body and headers the sandbox sends for `payment` ("succeeded" or "failed")."""
    body = json.dumps(
        {
            "id": f"evt_{uuid.uuid4().hex}",
            "type": f"payment.{outcome}",
            "created": int(now or time.time()),
            "data": {"payment": payment.reference, "amount": str(payment.amount), "currency": settings.CURRENCY},
        },
        separators=(",", ":"),
    ).encode()
    return body, {SIGNATURE_HEADER: sign(body, int(now or time.time())), "Content-Type": "application/json"}


def send_webhook(payment, outcome: str) -> None:
    """What the sandbox's servers do when the buyer pays or declines: send the signed webhook, retrying."""
    from shops.tasks import sandbox_webhook_deliver_task

    body, headers = build_webhook(payment, outcome)
    try:
        sandbox_webhook_deliver_task.delay(payment.notify_url, body.decode(), headers)
    except Exception:  # an eager run that gave up: the buyer's order page keeps showing "awaiting payment"
        logger.exception("sandbox webhook for %s could not be delivered to %s", payment.reference, payment.notify_url)


class SandboxProvider(PaymentProvider):
    name = "sandbox"

    def start(self, payment) -> str:
        return reverse("shops:sandbox_pay", args=[payment.reference])

    def parse_webhook(self, body: bytes, headers: Mapping[str, str]) -> WebhookNotice:
        header = headers.get(SIGNATURE_HEADER) or headers.get(SIGNATURE_HEADER.lower()) or ""
        parts = dict(part.split("=", 1) for part in header.split(",") if "=" in part)
        try:
            timestamp = int(parts["t"])
            given = parts["v1"]
        except (KeyError, ValueError) as error:
            raise WebhookRejected("missing or malformed signature header") from error
        if abs(time.time() - timestamp) > settings.PAYMENTS_WEBHOOK_TOLERANCE:
            raise WebhookRejected("timestamp outside the tolerance")
        expected = sign(body, timestamp).split("v1=", 1)[1]
        if not hmac.compare_digest(expected, given):
            raise WebhookRejected("signature does not match")
        try:
            payload = json.loads(body)
            event_type = payload["type"]
            data = payload["data"]
            notice = WebhookNotice(
                event_id=str(payload["id"]),
                event_type=event_type,
                payment_reference=str(data["payment"]),
                amount=Decimal(str(data["amount"])),
                payload=payload,
            )
        except (ValueError, KeyError, TypeError, InvalidOperation) as error:
            raise WebhookRejected("malformed body") from error
        if event_type not in EVENT_TYPES:
            raise WebhookRejected(f"unknown event type {event_type!r}")
        return notice

    def refund(self, payment, amount: Decimal, idempotency_key: str) -> RefundResult:
        # The sandbox always succeeds, and answers the same key with the same refund id.
        return RefundResult(provider_refund_id="sbx_re_" + hashlib.sha256(idempotency_key.encode()).hexdigest()[:24])
