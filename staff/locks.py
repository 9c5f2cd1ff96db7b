"""The back office's locks: a tax report's row while it is queued again (staff.tax_reports). The order of all locks:
core/locks.py (the back office's own rows come after every app's, and nothing locks them with another)."""

from core.locks import row_lock
from staff.models import TaxReport


def tax_report_lock(report_id: int) -> TaxReport:
    """The tax report's row, locked (TaxReport.DoesNotExist if there is none)."""
    return row_lock(TaxReport.objects.filter(pk=report_id))
