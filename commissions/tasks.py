from celery import shared_task

from commissions.services import (
    commission_apply_refund,
    commission_release_due,
    commission_split_order,
    commission_sweep,
)
from config.celery import IDEMPOTENT_TASK


@shared_task(**IDEMPOTENT_TASK)
def commission_split_order_task(order_id: int | None = None) -> int:
    """Split queued orders in batches (the given one among them). Idempotent; see commissions.services."""
    return commission_split_order(order_id=order_id)


@shared_task(**IDEMPOTENT_TASK)
def commission_apply_refund_task(refund_id: int) -> None:
    commission_apply_refund(refund_id=refund_id)


@shared_task(**IDEMPOTENT_TASK)
def commission_release_due_task() -> int:
    return commission_release_due()


@shared_task
def commission_sweep_task() -> int:
    return commission_sweep()
