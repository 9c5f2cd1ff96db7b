from celery import shared_task

from commissions.services import commission_apply_refund, commission_split_order
from config.celery import IDEMPOTENT_TASK


@shared_task(**IDEMPOTENT_TASK)
def commission_split_order_task(order_id: int) -> None:
    commission_split_order(order_id=order_id)


@shared_task(**IDEMPOTENT_TASK)
def commission_apply_refund_task(refund_id: int) -> None:
    commission_apply_refund(refund_id=refund_id)
