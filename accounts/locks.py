"""The accounts app's lock: a person's user row, which serialises changes that count what the person has (their
API tokens). Taken last in a transaction; the order of all locks: core/locks.py."""

from django.contrib.auth import get_user_model

from accounts.models import ApprovalRequest, Identity
from core.locks import row_lock, rows_lock


def user_lock(user_id: int):
    """The user's row, locked (User.DoesNotExist if there is none)."""
    return row_lock(get_user_model().objects.filter(pk=user_id))


def identity_lock(identity_id: int) -> Identity:
    """A member's identity row, locked: its status, its values and its re-encryption change one at a time."""
    return row_lock(Identity.objects.filter(pk=identity_id))


def identities_lock_after(last_pk: int, limit: int) -> list[Identity]:
    """The next `limit` identities after `last_pk`, locked in primary-key order (a re-encryption batch)."""
    return rows_lock(Identity.objects.filter(pk__gt=last_pk), limit=limit)


def approval_request_lock(request_id: int) -> ApprovalRequest:
    """An approval request's row, locked: deciding it (and the change it approves) happens once. Taken before
    anything the approved change locks, since only the approval itself ever locks this row (core/locks.py)."""
    return row_lock(ApprovalRequest.objects.filter(pk=request_id))


def identities_due_lock(identities, limit: int) -> list[Identity]:
    """The first `limit` identities of `identities` (the caller's filter), locked in primary-key order."""
    return rows_lock(identities, limit=limit)
