"""A buyer's one-time code (issue #22): prove you hold a phone, then see the orders placed with it.

- `phone_code_send`: a 6-digit code by SMS (the SMS port, `core.sms`), only to a number that has orders (the page
  says the same either way, so it tells no one which numbers bought here). Limited per phone
  (RATE_LIMIT_PHONE_CODE) and per client address (RATE_LIMIT_PHONE_CODE_IP), so the page can neither flood a
  phone with texts nor run up the SMS bill.
- `phone_code_check`: the code is kept only as a keyed hash (HMAC with SECRET_KEY) in the cache, for
  PHONE_CODE_SECONDS (10 minutes), and may be tried PHONE_CODE_ATTEMPTS times (5), counted atomically; the right
  code is used up at once. A new code replaces the old one (core.one_time_codes, shared with logging in by SMS).

The session then holds the phone for PHONE_SESSION_SECONDS (`buyer_phone_verified`); nothing else is stored.
"""

import logging
import time
from dataclasses import dataclass

from django.conf import settings
from django.utils.translation import gettext as _

from core.one_time_codes import code_check, code_forget, code_issue, code_key
from core.ratelimit import rate_limit_exceeded
from core.sms import SmsError, phone_masked, sms_send
from shops.models import Order

logger = logging.getLogger(__name__)

SESSION_KEY = "buyer_phone"
PHONE_SESSION_SECONDS = 30 * 60


@dataclass(frozen=True)
class CodeSent:
    retry_after: int = 0  # seconds, when a limit refused it
    failed: bool = False  # the SMS provider could not send it


SCOPE = "shops:phone-code"


def _key(phone: str) -> str:
    return code_key(SCOPE, phone)


def phone_code_send(*, phone: str, client: str) -> CodeSent:
    """Send a new code to `phone` (E.164) if it has orders; `client` is the keyed client address
    (core.ratelimit.ip_key). Counts against both limits whether or not the phone has orders."""
    retry = rate_limit_exceeded("phone_code_ip", client, settings.RATE_LIMIT_PHONE_CODE_IP)
    retry = retry or rate_limit_exceeded("phone_code", _key(phone), settings.RATE_LIMIT_PHONE_CODE)
    if retry:
        return CodeSent(retry_after=retry)
    if not Order.objects.filter(buyer_phone=phone).exists():
        logger.info("one-time code asked for %s, which has no orders: none sent", phone_masked(phone))
        return CodeSent()
    seconds = settings.PHONE_CODE_SECONDS
    code = code_issue(scope=SCOPE, phone=phone, seconds=seconds)
    minutes = max(1, seconds // 60)
    text = _("Your code is %(code)s. It lets you see your orders for %(minutes)s minutes. Never share it.") % {
        "code": code,
        "minutes": minutes,
    }
    try:
        sms_send(phone=phone, template="otp", params=(code, str(minutes)), text=text)
    except SmsError as error:
        code_forget(scope=SCOPE, phone=phone)
        logger.warning("one-time code to %s not sent: %s", phone_masked(phone), error)
        return CodeSent(failed=True)
    return CodeSent()


def phone_code_check(*, phone: str, code: str) -> bool:
    """Whether `code` is the code last sent to `phone`, still valid, within its attempts. The right code is used up."""
    return code_check(
        scope=SCOPE,
        phone=phone,
        code=code,
        seconds=settings.PHONE_CODE_SECONDS,
        attempts=settings.PHONE_CODE_ATTEMPTS,
    )


def buyer_phone_remember(session, phone: str) -> None:
    session.cycle_key()  # a new session id once the phone is proven (no fixation)
    session[SESSION_KEY] = {"phone": phone, "until": int(time.time()) + PHONE_SESSION_SECONDS}


def buyer_phone_verified(session) -> str | None:
    """The phone this browser proved it holds, while that lasts; else None."""
    held = session.get(SESSION_KEY)
    if not held or held.get("until", 0) < time.time():
        return None
    return held.get("phone")
