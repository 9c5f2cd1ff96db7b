"""Writes to people's accounts (the views only validate forms and call these)."""

from django.db import IntegrityError, transaction
from django.utils.translation import gettext as _


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
