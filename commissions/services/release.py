"""Release: pending commission becomes available once its sale is final and the hold period has passed (our own
orders once completed, external lines once their network settled them)."""

from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from commissions.holds import held_entries
from commissions.models import CommissionEntry
from commissions.services.announce import EntryChanges
from networks.locks import external_orders_lock
from networks.models import ExternalOrder
from shops.locks import orders_lock
from shops.models import Order

Entry = CommissionEntry

RELEASE_CHUNK = 500  # sales (orders, external lines) locked and released per transaction


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

    def lock_still_due(order_ids: list[int]) -> list[int]:
        # Re-read under the lock: an order refunded meanwhile is no longer completed and is left alone.
        orders = Order.objects.filter(pk__in=order_ids, status=Order.Status.COMPLETED, completed_at__lte=cutoff)
        return orders_lock(orders, "pk", flat=True)

    released = _release_sale_by_sale(due, "order_id", lock_still_due, released_at)
    return released + external_release_due(now=now)  # sales on external networks (issue #12)


def external_release_due(*, now=None) -> int:
    """Release the pending entries of settled external lines whose hold has passed; return how many entries.

    Line by line under the line's row lock (the lock a reported change is applied under), so a change arriving at
    the same moment is written either before the release (and released with it) or after it.
    """
    now = now or timezone.now()
    released_at = min(now, timezone.now())  # when the money became available: never in the future
    cutoff = now - timedelta(days=settings.COMMISSION_HOLD_DAYS)
    due = Entry.objects.filter(
        status=Entry.Status.PENDING,
        external_line__status=ExternalOrder.Status.SETTLED,
        external_line__settled_at__lte=cutoff,
    )

    def lock_still_due(line_ids: list[int]) -> list[int]:
        # Lines being written by a sync, an import or the ledger right now are skipped (no deadlock with their lock
        # order); the next hourly run releases them.
        lines = ExternalOrder.objects.filter(
            pk__in=line_ids, status=ExternalOrder.Status.SETTLED, settled_at__lte=cutoff
        )
        return external_orders_lock(lines, "pk", flat=True, skip_locked=True)

    return _release_sale_by_sale(due, "external_line_id", lock_still_due, released_at)


def _release_sale_by_sale(due, sale: str, lock_still_due, released_at) -> int:
    """Release the `due` pending entries a sale (`sale`: their order's or external line's id column) at a time:
    RELEASE_CHUNK sales per transaction in id order, each chunk's sales locked and re-read by `lock_still_due`
    (their ids in, the ids still due out). Returns how many entries were released; each transaction announces the
    ids it released after its commit (`commissions.signals`: "available").

    Entries an open risk flag holds (`commissions.holds.held_entries`) are left pending, read under the same
    locks (a resolution locks the orders first), until staff release or reverse them."""
    due = due.exclude(held_entries())
    released, after = 0, 0
    while True:
        sale_ids = list(
            due.filter(**{f"{sale}__gt": after}).order_by(sale).values_list(sale, flat=True).distinct()[:RELEASE_CHUNK]
        )
        if not sale_ids:
            return released
        with transaction.atomic():
            locked = lock_still_due(sale_ids)
            # The ids first, under the sales' locks (no entry of a locked sale changes meanwhile), then the update.
            ids = list(
                Entry.objects.filter(status=Entry.Status.PENDING, **{f"{sale}__in": locked})
                .exclude(held_entries())
                .values_list("pk", flat=True)
            )
            released += Entry.objects.filter(pk__in=ids).update(status=Entry.Status.AVAILABLE, released_at=released_at)
            EntryChanges(available=ids).announce()
        after = sale_ids[-1]
