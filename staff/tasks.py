import logging

from celery import shared_task

from staff.ledger_check import ledger_check

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
