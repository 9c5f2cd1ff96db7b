"""The accounts app's lock: a person's user row, which serialises changes that count what the person has (their
API tokens). Taken last in a transaction; the order of all locks: core/locks.py."""

from django.contrib.auth import get_user_model

from core.locks import row_lock


def user_lock(user_id: int):
    """The user's row, locked (User.DoesNotExist if there is none)."""
    return row_lock(get_user_model().objects.filter(pk=user_id))
