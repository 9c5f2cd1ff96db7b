"""The networks app's locks: a network, a report import, and the reported order lines.

A sync reads each window under the network's row lock (a second sync of the network skips rather than waits); a
file import holds its own row (its lease), then the network's. Each reported line is recorded under the line's row
lock, lines in (order id, line id) order in both, so the two never deadlock. The ledger's keeper (commissions) claims
marked lines with SKIP LOCKED (`external_orders_marked_claim`), so it never waits on them either. The order of all
locks: core/locks.py.
"""

from django.db.models import QuerySet

from core.locks import row_lock, rows_lock
from networks.models import ExternalOrder, Network, ReportImport


def network_lock(network_id: int, *, skip_locked: bool = False) -> Network | None:
    """The network's row, locked; None if there is none, or, with `skip_locked`, if another transaction holds it."""
    locked = rows_lock(Network.objects.filter(pk=network_id), limit=1, skip_locked=skip_locked)
    return locked[0] if locked else None


def report_import_lock(imports: QuerySet[ReportImport]) -> ReportImport | None:
    """The import that `imports` (the caller's filter: its id, and the lease it must still hold) matches, locked;
    None if it matches none."""
    locked = rows_lock(imports, limit=1)
    return locked[0] if locked else None


def external_order_lock(line_id: int) -> ExternalOrder:
    """The reported line's row, locked (ExternalOrder.DoesNotExist if there is none)."""
    return row_lock(ExternalOrder.objects.filter(pk=line_id))


def external_order_line_lock(*, network: Network, external_order_id: str, line_id: str) -> ExternalOrder | None:
    """The line a report names (network, order id, line id), locked; None if it is not recorded yet."""
    lines = ExternalOrder.objects.filter(network=network, external_order_id=external_order_id, line_id=line_id)
    locked = rows_lock(lines, limit=1)
    return locked[0] if locked else None


def external_orders_lock(
    lines: QuerySet[ExternalOrder], *fields: str, flat: bool = False, skip_locked: bool = False
) -> list:
    """Lock the lines that `lines` (the caller's filter) matches, in id order, now; return them, or with `fields`
    their values. `skip_locked` leaves out the lines another transaction holds (a sync or an import writing them)."""
    return rows_lock(lines, *fields, flat=flat, skip_locked=skip_locked)


def external_orders_marked_claim(limit: int) -> list[ExternalOrder]:
    """Up to `limit` lines marked for the ledger, in id order, locked until the transaction ends; lines another
    transaction holds (a sync, an import or another claim writing them) are skipped, never waited for."""
    return rows_lock(ExternalOrder.objects.filter(ledger_marked_at__isnull=False), limit=limit, skip_locked=True)
