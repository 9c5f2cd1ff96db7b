import logging
from datetime import date

from celery import shared_task

from staff.evidence import evidence_pack_generate
from staff.ledger_check import ledger_check
from staff.reconciliation import reconciliation_run, reconciliation_runs_due
from staff.tax_reports import tax_report_generate

logger = logging.getLogger("staff.ledger")


@shared_task
def ledger_check_task() -> int:
    """Nightly: run the ledger checker; every violation is logged as an error (mailed to ADMINS in production).

    Read-only, so safe to run twice. Returns the number of violations.
    """
    results = ledger_check()
    violations = sum(result.count for result in results)
    for result in results:
        if not result.passed:
            logger.error(
                "Ledger check %s: %d violation(s). Run `manage.py check_ledger`.\n%s",
                result.name,
                result.count,
                "\n".join(result.violations),
            )
    if not violations:
        logger.info("Ledger check: every check passed.")
    return violations


@shared_task
def reconciliation_run_task(provider: str | None = None, bill_date: str | None = None) -> dict[str, str]:
    """Daily: yesterday's bills of every enabled rail against our records, and the runs that failed lately run again
    (staff.reconciliation). With `provider` and `bill_date` ("YYYY-MM-DD"), that one run (the back office's "run
    now"). Runs again safely (it replaces its open differences). Returns each run's status."""
    due = [(provider, date.fromisoformat(bill_date))] if provider and bill_date else reconciliation_runs_due()
    outcome = {}
    for name, day in due:
        run = reconciliation_run(provider=name, bill_date=day)
        outcome[f"{name} {day}"] = run.status
        if run.status != run.Status.MATCHED:
            logger.error(
                "Reconciliation of %s %s: %s. See the back office's reconciliation page.", name, day, run.status
            )
    return outcome


@shared_task(acks_late=True, reject_on_worker_lost=True)
def tax_report_generate_task(report_id: int) -> str:
    """Generate one tax report (staff.tax_reports.tax_report_generate): safe to run twice or at once (a lease on
    the report's row), and a run that never came leaves the report queued for finance to send again. Returns the
    report's status."""
    report = tax_report_generate(report_id=report_id)
    return report.status if report is not None else "missing"


@shared_task(acks_late=True, reject_on_worker_lost=True)
def evidence_pack_generate_task(pack_id: int) -> str:
    """Generate one evidence pack (staff.evidence.evidence_pack_generate): safe to run twice or at once (a lease on
    the pack's row), and a run that never came leaves the pack queued for compliance to send again. Returns the
    pack's status."""
    pack = evidence_pack_generate(pack_id=pack_id)
    return pack.status if pack is not None else "missing"
