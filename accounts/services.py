"""Writes to people's accounts (the views only validate forms and call these)."""

import hashlib
import secrets
from dataclasses import dataclass
from datetime import timedelta

from allauth.account.models import EmailAddress
from allauth.socialaccount.models import SocialAccount
from django.contrib.auth import get_user_model
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from accounts.identity import identity_retain
from accounts.locks import user_lock
from accounts.models import ApiToken, Identity

WECHAT_PROVIDER = "weixin"  # allauth's provider id (accounts.wechat_login)
LOGIN_AT_SESSION_KEY = "login_at"  # when this session last logged in (accounts.signals)


class AccountError(Exception):
    """A refused change; the message is fit for the person. Nothing was changed."""


def user_update_profile(*, user, first_name: str, email: str, phone: str | None) -> None:
    """Save a person's name, email and phone (already validated and normalised by accounts.forms.ProfileForm).

    Only those three columns are written, so a password changed meanwhile is never put back. Raises AccountError
    when another account took the email or phone between validation and this save (the unique constraints).
    """
    if (
        not phone
        and user.phone
        and not (email and user.has_usable_password())
        and not user_login_methods(user)["wechat"]
    ):
        raise AccountError(str(LAST_WAY_REFUSED))
    user.first_name, user.email, user.phone = first_name, email, phone
    try:
        with transaction.atomic():
            user.save(update_fields=["first_name", "email", "phone"])
    except IntegrityError:
        user.refresh_from_db()
        raise AccountError(_("Another account already uses this email address or phone number.")) from None


# --- API tokens -------------------------------------------------------------------

API_TOKEN_PREFIX_LENGTH = 8
API_TOKENS_PER_USER = 20
# Writing last_used_at on every request would turn each API read into a write; once a minute is enough to see use.
API_TOKEN_USE_RESOLUTION = timedelta(minutes=1)


def api_token_hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


@dataclass(frozen=True)
class CreatedToken:
    token: ApiToken
    key: str  # the plain key: shown once, never stored


@transaction.atomic
def token_create(*, user, name: str) -> CreatedToken:
    """Make an API token for `user`; the result carries the plain key, which nobody can read again later.

    Raises AccountError when the name is empty or the person already has API_TOKENS_PER_USER active tokens.
    """
    name = (name or "").strip()
    if not name:
        raise AccountError(_("Give the token a name."))
    user_lock(user.pk)  # serialise the count per person
    if ApiToken.objects.filter(user=user, revoked_at__isnull=True).count() >= API_TOKENS_PER_USER:
        raise AccountError(_("You have too many active tokens; revoke one first."))
    key = secrets.token_urlsafe(32)
    token = ApiToken.objects.create(
        user=user, name=name[:60], prefix=key[:API_TOKEN_PREFIX_LENGTH], key_hash=api_token_hash(key)
    )
    return CreatedToken(token=token, key=key)


def token_revoke(*, user, token_id: int) -> ApiToken:
    """Revoke one of `user`'s tokens (idempotent). Raises ApiToken.DoesNotExist for another person's token."""
    token = ApiToken.objects.get(user=user, pk=token_id)
    ApiToken.objects.filter(pk=token.pk, revoked_at__isnull=True).update(revoked_at=timezone.now())
    token.refresh_from_db()
    return token


def user_tokens_revoke_all(*, user) -> int:
    """Revoke every active API token of `user` at once (idempotent); return how many were active.

    Called when the password changes (accounts.signals): a key made under the old password must not outlive it.
    """
    return ApiToken.objects.filter(user=user, revoked_at__isnull=True).update(revoked_at=timezone.now())


def token_authenticate(key: str) -> ApiToken | None:
    """The active token whose key is `key` (with its user), else None; notes when it was last used."""
    if not key:
        return None
    token = ApiToken.objects.select_related("user").filter(key_hash=api_token_hash(key)).first()
    if token is None or not token.is_active or not token.user.is_active:
        return None
    now = timezone.now()
    if token.last_used_at is None or now - token.last_used_at >= API_TOKEN_USE_RESOLUTION:
        ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
        token.last_used_at = now
    return token


# --- Ways to log in (issue #23) ---------------------------------------------------------------------------------


def user_login_methods(user) -> dict:
    """How `user` can log in now: "password" (an email with a usable password), "phone" (a number on file: a code
    by SMS, and the password too if there is one) and "wechat" (how many WeChat identities are bound)."""
    return {
        "password": bool(user.email) and user.has_usable_password(),
        "phone": bool(user.phone),
        "wechat": SocialAccount.objects.filter(user_id=user.pk, provider=WECHAT_PROVIDER).count(),
    }


def _ways_left(methods: dict) -> int:
    return int(methods["password"]) + int(methods["phone"]) + methods["wechat"]


LAST_WAY_REFUSED = gettext_lazy("This is your last way to log in, so it cannot be removed. Add another way first.")


@transaction.atomic
def user_unbind_phone(*, user) -> None:
    """Take the phone number off the account. Refused (AccountError, nothing changed) when it is the last way to
    log in: a member must never be locked out of their money."""
    locked = user_lock(user.pk)
    methods = user_login_methods(locked)
    if not methods["phone"]:
        return
    if _ways_left({**methods, "phone": False}) < 1:
        raise AccountError(str(LAST_WAY_REFUSED))
    locked.phone = None
    locked.save(update_fields=["phone"])
    user.phone = None


def user_can_unbind_wechat(*, user, account_id: int) -> None:
    """Raise AccountError if unbinding this WeChat identity would leave `user` no way to log in; SocialAccount.
    DoesNotExist if it is not theirs."""
    SocialAccount.objects.get(pk=account_id, user_id=user.pk, provider=WECHAT_PROVIDER)
    methods = user_login_methods(user)
    if _ways_left({**methods, "wechat": methods["wechat"] - 1}) < 1:
        raise AccountError(str(LAST_WAY_REFUSED))


@transaction.atomic
def user_unbind_wechat(*, user, account_id: int) -> None:
    """Unbind one WeChat identity from the account, under the user's lock (two unbinds at once cannot both pass the
    check). Refused (AccountError) when it is the last way to log in. Never touches the WeChat payee of payouts."""
    locked = user_lock(user.pk)
    user_can_unbind_wechat(user=locked, account_id=account_id)
    SocialAccount.objects.filter(pk=account_id, user_id=user.pk).delete()


@transaction.atomic
def user_bind_phone(*, user, phone: str) -> None:
    """Put a phone number (E.164, proven by a code) on the account. AccountError if another account has it."""
    locked = user_lock(user.pk)
    if get_user_model().objects.filter(phone=phone).exclude(pk=user.pk).exists():
        raise AccountError(_("Another account already uses this phone number."))
    locked.phone = phone
    try:
        with transaction.atomic():
            locked.save(update_fields=["phone"])
    except IntegrityError:
        raise AccountError(_("Another account already uses this phone number.")) from None
    user.phone = phone


@transaction.atomic
def user_create_by_phone(*, phone: str, first_name: str):
    """A new account that logs in by phone (no email, no password yet). AccountError if the number is taken."""
    User = get_user_model()
    if User.objects.filter(phone=phone).exists():
        raise AccountError(_("An account with this phone number already exists. Log in instead."))
    try:
        with transaction.atomic():
            return User.objects.create_user(email=None, password=None, phone=phone, first_name=first_name)
    except IntegrityError:
        raise AccountError(_("An account with this phone number already exists. Log in instead.")) from None


# --- Closing an account (issue #24, docs/privacy.md) -------------------------------------------------------------


def user_close(*, user, retain_until) -> dict:
    """Close `user`'s account: every way in removed, the personal fields emptied; returns what was removed.

    The caller (members.services.member_close) holds the transaction and the rows above the user's; the user row is
    locked here, last (core/locks.py). The account stays as a row (the ledger, the orders and the audit rows point at
    it), deactivated: `is_active` off and an unusable password, so Django's backends refuse it and every session it
    had ends at its next request (the session's auth hash is the password's). WeChat bindings and allauth's email
    rows are deleted, API tokens revoked. The identity (实名), if any, is kept until `retain_until` (the law's records:
    withholding and the platform's tax report), then `accounts.identity.identities_erase_due` erases it.
    Idempotent: closing a closed account changes nothing more.
    """
    user = user_lock(user.pk)
    removed = {
        "wechat": SocialAccount.objects.filter(user_id=user.pk).delete()[0],
        "tokens": user_tokens_revoke_all(user=user),
        "email": bool(user.email),
        "phone": bool(user.phone),
    }
    EmailAddress.objects.filter(user_id=user.pk).delete()
    user.first_name = ""
    user.last_name = ""
    user.email = None
    user.phone = None
    user.is_active = False
    user.set_unusable_password()
    user.save(update_fields=["first_name", "last_name", "email", "phone", "is_active", "password"])
    identity = Identity.objects.filter(user_id=user.pk, erased_at__isnull=True).first()
    if identity is not None:
        identity_retain(identity=identity, until=retain_until)
    removed["identity_kept_until"] = retain_until.isoformat() if identity is not None else None
    return removed
