"""Release: pending commission becomes available once its sale is final and the hold period has passed."""

from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from commissions.models import CommissionEntry
from commissions.services.external import external_release_due
from shops.locks import orders_lock
from shops.models import Order

Entry = CommissionEntry

RELEASE_CHUNK = 500  # orders locked and released per transaction


def commission_release_due(*, now=None) -> int:
    """Make pending entries available once their order is completed and the hold period has passed.

    `now` is the moment the hold is measured at (tests and the demo pass a later one to let the hold pass);
    `released_at` is when the money actually became available, so it is stamped with the real clock, never a
    moment in the future: the statement dates each credit by it and the payouts cover entries in its order.

    Returns how many entries were released. Works order by order under the order row's lock (RELEASE_CHUNK
    orders per transaction, locked in id order), the lock a refund's reversals are written under: a refund
    applied at the same moment is either released with the original (its pending reversal is seen) or comes
    after it (and finds the original released: a clawback). Without the lock the release could make the
    original available while a refund that had read it as pending wrote a pending reversal beside it: the
    member could withdraw the refunded share, and if the order was then refunded in full that reversal stayed
    on hold for ever, leaving the member paid for goods that came back.
    """
    now = now or timezone.now()
    released_at = min(now, timezone.now())
    cutoff = now - timedelta(days=settings.COMMISSION_HOLD_DAYS)
    pending = Entry.objects.filter(status=Entry.Status.PENDING)
    due = pending.filter(order__status=Order.Status.COMPLETED, order__completed_at__lte=cutoff)
    released, after = 0, 0
    while True:
        order_ids = list(
            due.filter(order_id__gt=after)
            .order_by("order_id")
            .values_list("order_id", flat=True)
            .distinct()[:RELEASE_CHUNK]
        )
        if not order_ids:
            return released + external_release_due(now=now)  # sales on external networks (issue #12)
        with transaction.atomic():
            # Re-read under the lock: an order refunded meanwhile is no longer completed and is left alone.
            locked = orders_lock(
                Order.objects.filter(pk__in=order_ids, status=Order.Status.COMPLETED, completed_at__lte=cutoff),
                "pk",
                flat=True,
            )
            released += pending.filter(order_id__in=locked).update(
                status=Entry.Status.AVAILABLE, released_at=released_at
            )
        after = order_ids[-1]
