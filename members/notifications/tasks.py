from celery import shared_task

from core.task_helpers import IDEMPOTENT_TASK
from members.notifications.services import (
    deliveries_send_due,
    entries_collect,
    notifications_requested,
    notifications_run,
    notifications_sweep,
    rules_change_collect,
)


@shared_task(**IDEMPOTENT_TASK)
def notifications_run_task() -> int:
    """Collect, fan out and send a batch (notifications.services). Idempotent by unique keys and claims."""
    return notifications_run()


@shared_task(**IDEMPOTENT_TASK)
def notifications_entries_task(entry_ids: list[int], change: str) -> int:
    """The events of ledger entries a transaction announced; then a run sends them."""
    made = entries_collect(entry_ids=entry_ids, change=change)
    notifications_requested()
    return made


@shared_task(**IDEMPOTENT_TASK)
def rules_change_task(kind: str, version: int) -> int:
    """Tell every member of a plan or policy version scheduled to take effect later; then a run sends it."""
    made = rules_change_collect(kind=kind, version=version)
    notifications_requested()
    return made


@shared_task(**IDEMPOTENT_TASK)
def notifications_send_task() -> int:
    """Send the deliveries that are due (the retries after a failure)."""
    return deliveries_send_due()


@shared_task
def notifications_sweep_task() -> int:
    return notifications_sweep()
