"""The signature on every webhook request (Stripe's scheme): `X-Signature: t=<unix time>,v1=<hex>`, where the hex is
HMAC-SHA256 with the endpoint's secret over "<t>.<raw body>". After a rotation a second `v1=` carries the signature
with the previous secret until it expires. docs/webhooks.md shows the receiver's side; `signature_verify` is the
same check, used by the tests' receiver."""

import hashlib
import hmac
import json
import time

SIGNATURE_HEADER = "X-Signature"
DEFAULT_TOLERANCE_SECONDS = 300


def payload_body(payload: dict) -> bytes:
    """The exact bytes sent: compact, keys sorted, UTF-8 (the same for every attempt of a delivery)."""
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":"), sort_keys=True).encode()


def signature_compute(secret: str, timestamp: int, body: bytes) -> str:
    return hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()


def signature_header(secrets: list[str], timestamp: int, body: bytes) -> str:
    return ",".join([f"t={timestamp}", *(f"v1={signature_compute(s, timestamp, body)}" for s in secrets if s)])


def signature_verify(
    secret: str, header: str, body: bytes, *, tolerance: int = DEFAULT_TOLERANCE_SECONDS, now: float | None = None
) -> bool:
    """True if `header` signs `body` with `secret` and its time is within `tolerance` seconds of now."""
    timestamp, signatures = None, []
    for part in (header or "").split(","):
        name, _, value = part.strip().partition("=")
        if name == "t" and value.isdigit():
            timestamp = int(value)
        elif name == "v1":
            signatures.append(value)
    if timestamp is None or not signatures:
        return False
    if abs((time.time() if now is None else now) - timestamp) > tolerance:
        return False
    expected = signature_compute(secret, timestamp, body)
    return any(hmac.compare_digest(expected, candidate) for candidate in signatures)
