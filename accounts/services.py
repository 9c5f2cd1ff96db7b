"""Writes to people's accounts (the views only validate forms and call these)."""

import hashlib
import secrets
from dataclasses import dataclass
from datetime import timedelta

from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts.locks import user_lock
from accounts.models import ApiToken


class AccountError(Exception):
    """A refused change; the message is fit for the person. Nothing was changed."""


def user_update_profile(*, user, first_name: str, email: str, phone: str | None) -> None:
    """Save a person's name, email and phone (already validated and normalised by accounts.forms.ProfileForm).

    Only those three columns are written, so a password changed meanwhile is never put back. Raises AccountError
    when another account took the email or phone between validation and this save (the unique constraints).
    """
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
