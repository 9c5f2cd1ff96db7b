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
import re
import time
import uuid
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation

from django.conf import settings
from django.urls import reverse

from shops.payments.base import (
    PaymentProvider,
    RefundResult,
    WebhookNotice,
    WebhookRejected,
    is_storable_json,
    is_storable_text,
)

logger = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-Sandbox-Signature"
EVENT_TYPES = ("payment.succeeded", "payment.failed")
TIMESTAMP_SHAPE = re.compile(r"[0-9]{1,12}")
SIGNATURE_SHAPE = re.compile(r"[0-9a-f]{64}")
EVENT_ID_MAX_LENGTH = 100  # WebhookEvent.event_id
PAYMENT_REFERENCE_MAX_LENGTH = 64  # Payment.reference


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


def _refuse_constant(name: str):
    raise ValueError(f"{name} is not a number")


def _decode_event(body: bytes) -> WebhookNotice:
    """The notice in a genuine body, or WebhookRejected: every field is checked, so what the service stores and
    compares always fits (found by fuzzing: NaN, NUL and lone surrogates broke the event row on PostgreSQL, a
    signalling-NaN amount raised on comparison, a nesting too deep raised RecursionError)."""
    try:
        payload = json.loads(body, parse_constant=_refuse_constant)  # NaN and Infinity are not JSON
    except (ValueError, RecursionError) as error:  # UnicodeDecodeError is a ValueError
        raise WebhookRejected("malformed body") from error
    if not isinstance(payload, dict) or not isinstance(payload.get("data"), dict):
        raise WebhookRejected("malformed body")
    event_id, event_type, data = payload.get("id"), payload.get("type"), payload["data"]
    reference, raw_amount = data.get("payment"), data.get("amount")
    if not (is_storable_text(event_id) and 1 <= len(event_id) <= EVENT_ID_MAX_LENGTH):
        raise WebhookRejected("malformed event id")
    if event_type not in EVENT_TYPES:
        raise WebhookRejected(f"unknown event type {event_type!r:.80}")
    if not (is_storable_text(reference) and 1 <= len(reference) <= PAYMENT_REFERENCE_MAX_LENGTH):
        raise WebhookRejected("malformed payment reference")
    # The sandbox sends the amount as a string ("12.30"); a whole number is accepted, a float never (not exact).
    if isinstance(raw_amount, bool) or not isinstance(raw_amount, str | int):
        raise WebhookRejected("malformed amount")
    try:
        amount = Decimal(str(raw_amount))
    except InvalidOperation as error:
        raise WebhookRejected("malformed amount") from error
    if not amount.is_finite():
        raise WebhookRejected("malformed amount")
    if not is_storable_json(payload):
        raise WebhookRejected("malformed body")
    return WebhookNotice(
        event_id=event_id, event_type=event_type, payment_reference=reference, amount=amount, payload=payload
    )


class SandboxProvider(PaymentProvider):
    name = "sandbox"

    def start(self, payment) -> str:
        return reverse("shops:sandbox_pay", args=[payment.reference])

    def parse_webhook(self, body: bytes, headers: Mapping[str, str]) -> WebhookNotice:
        header = headers.get(SIGNATURE_HEADER) or headers.get(SIGNATURE_HEADER.lower()) or ""
        parts = dict(part.split("=", 1) for part in header.split(",") if "=" in part)
        timestamp, given = parts.get("t", ""), parts.get("v1", "")
        # Checked by shape first: int() of a 400-digit timestamp overflows the float arithmetic below, and
        # hmac.compare_digest raises TypeError on a non-ASCII string (both found by tests/security fuzzing).
        if not (TIMESTAMP_SHAPE.fullmatch(timestamp) and SIGNATURE_SHAPE.fullmatch(given)):
            raise WebhookRejected("missing or malformed signature header")
        if abs(time.time() - int(timestamp)) > settings.PAYMENTS_WEBHOOK_TOLERANCE:
            raise WebhookRejected("timestamp outside the tolerance")
        expected = sign(body, int(timestamp)).split("v1=", 1)[1]
        if not hmac.compare_digest(expected, given):
            raise WebhookRejected("signature does not match")
        return _decode_event(body)

    def refund(self, payment, amount: Decimal, idempotency_key: str) -> RefundResult:
        # The sandbox always succeeds, and answers the same key with the same refund id.
        return RefundResult(provider_refund_id="sbx_re_" + hashlib.sha256(idempotency_key.encode()).hexdigest()[:24])
