from celery import shared_task

from core.task_helpers import IDEMPOTENT_TASK
from payouts.models import PayoutBatch
from payouts.services import (
    payout_batch_send,
    payout_batches_run,
    payout_transfers_sync,
    withdrawal_accounts_erase_due,
)


@shared_task(**IDEMPOTENT_TASK)
def payout_batches_run_task() -> int:
    """Periodic: batch approved withdrawals and send them. Idempotent per withdrawal (state + provider key)."""
    return payout_batches_run()


@shared_task(**IDEMPOTENT_TASK)
def payout_batch_send_task(batch_id: int) -> dict:
    batch = PayoutBatch.objects.filter(pk=batch_id).first()
    return payout_batch_send(batch=batch) if batch else {}


@shared_task(**IDEMPOTENT_TASK)
def payout_transfers_sync_task() -> dict:
    """Periodic: ask the payout rails about the transfers not yet final (a lost notification, a payee who never
    confirms). Idempotent: a final transfer never changes, a withdrawal's result applies once."""
    return payout_transfers_sync()


@shared_task
def withdrawal_accounts_erase_due_task() -> int:
    """Daily, after the identities' erasure: mask the payout accounts saved with the withdrawals of people whose
    identity was erased after the retention period (payouts.services.withdrawal_accounts_erase_due). Idempotent."""
    return withdrawal_accounts_erase_due()
