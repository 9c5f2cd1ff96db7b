"""Logging in, signing up and binding a phone with a one-time code by SMS (issue #23).

A small flow on the SMS port (core.sms) and the shared code store (core.one_time_codes), not allauth's phone
login: allauth's phone support keeps its own verified-phone state through adapter hooks and its own pages and
stages, while our User already has one E.164 `phone` column that the password login, the profile and staff's
screens read; a code is one more way to prove the same column (docs/accounts.md).

- `login_code_send(phone, client, purpose)`: a 6-digit code, valid LOGIN_CODE_SECONDS (5 minutes), at most
  LOGIN_CODE_ATTEMPTS tries; limited per phone (RATE_LIMIT_LOGIN_CODE) and per client address
  (RATE_LIMIT_LOGIN_CODE_IP), both counted whether or not the number has an account. To log in, a code is sent only
  to a number with an account; to sign up or bind, only to a number without one; the page says the same either way,
  so it never tells who has an account.
- `login_code_check(phone, code, purpose)`: the code is used up when right.

Numbers are logged masked (core.sms.phone_masked), codes never.
"""

import logging
from dataclasses import dataclass

from django.conf import settings
from django.contrib.auth import get_user_model
from django.utils.translation import gettext as _

from core.one_time_codes import code_check, code_forget, code_issue, code_key
from core.ratelimit import rate_limit_exceeded
from core.sms import SmsError, phone_masked, sms_send

logger = logging.getLogger(__name__)

LOGIN, SIGNUP, BIND = "login", "signup", "bind"
PURPOSES = (LOGIN, SIGNUP, BIND)


@dataclass(frozen=True)
class CodeSent:
    retry_after: int = 0  # seconds, when a limit refused it
    failed: bool = False  # the SMS provider could not send it


def _scope(purpose: str) -> str:
    if purpose not in PURPOSES:
        raise ValueError(f"unknown purpose {purpose!r}")
    return f"accounts:login-code:{purpose}"


def _should_send(phone: str, purpose: str) -> bool:
    has_account = get_user_model().objects.filter(phone=phone, is_active=True).exists()
    return has_account if purpose == LOGIN else not get_user_model().objects.filter(phone=phone).exists()


def login_code_send(*, phone: str, client: str, purpose: str = LOGIN) -> CodeSent:
    """Send a new code to `phone` (E.164) when `purpose` fits the number (see the module's notes); `client` is the
    keyed client address (core.ratelimit.ip_key). Both limits count every request."""
    scope = _scope(purpose)
    retry = rate_limit_exceeded("login_code_ip", client, settings.RATE_LIMIT_LOGIN_CODE_IP)
    retry = retry or rate_limit_exceeded("login_code", code_key("phone", phone), settings.RATE_LIMIT_LOGIN_CODE)
    if retry:
        return CodeSent(retry_after=retry)
    if not _should_send(phone, purpose):
        logger.info("login code (%s) asked for %s: not sent, it does not fit the number", purpose, phone_masked(phone))
        return CodeSent()
    seconds = settings.LOGIN_CODE_SECONDS
    code = code_issue(scope=scope, phone=phone, seconds=seconds)
    minutes = max(1, seconds // 60)
    text = _("Your login code is %(code)s, valid for %(minutes)s minutes. Never share it: we never ask for it.") % {
        "code": code,
        "minutes": minutes,
    }
    try:
        sms_send(phone=phone, template="otp", params=(code, str(minutes)), text=text)
    except SmsError as error:
        code_forget(scope=scope, phone=phone)
        logger.warning("login code to %s not sent: %s", phone_masked(phone), error)
        return CodeSent(failed=True)
    return CodeSent()


def login_code_check(*, phone: str, code: str, purpose: str = LOGIN) -> bool:
    """Whether `code` is the code last sent to `phone` for `purpose`, still valid, within its tries (used up)."""
    return code_check(
        scope=_scope(purpose),
        phone=phone,
        code=code,
        seconds=settings.LOGIN_CODE_SECONDS,
        attempts=settings.LOGIN_CODE_ATTEMPTS,
    )
