import logging

from celery import shared_task

from accounts.identity import identities_erase_due

logger = logging.getLogger(__name__)


@shared_task
def identities_erase_due_task() -> int:
    """Daily: erase the identities of closed accounts whose retention period ended (settings.RECORDS_RETENTION_YEARS).
    Idempotent; returns how many were erased."""
    erased = identities_erase_due()
    if erased:
        logger.info("Erased %s identities of closed accounts after the retention period.", erased)
    return erased
