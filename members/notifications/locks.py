"""Row locks on the notifications' own tables (claims of queued work: SKIP LOCKED, so they never wait)."""

from core.locks import rows_lock
from members.notifications.models import Delivery, NotificationEvent


def events_claim(limit: int) -> list[int]:
    """Lock up to `limit` events not yet fanned out that no other run holds; return their ids."""
    todo = NotificationEvent.objects.filter(fanned_out_at__isnull=True)
    return rows_lock(todo, "pk", flat=True, limit=limit, skip_locked=True)


def deliveries_claim(queryset, limit: int) -> list[int]:
    """Lock up to `limit` of the deliveries of `queryset` that no other run holds; return their ids."""
    return rows_lock(queryset, "pk", flat=True, limit=limit, skip_locked=True)


__all__ = ["Delivery", "deliveries_claim", "events_claim"]
