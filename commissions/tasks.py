from celery import shared_task

from commissions.services import (
    commission_apply_refund,
    commission_release_due,
    commission_split_order,
    commission_sweep,
    external_lines_apply_run,
)
from commissions.services.plans import policy_options_sync
from commissions.services.risk import risk_rescore_members
from commissions.simulation import plan_simulation_run
from core.task_helpers import IDEMPOTENT_TASK


@shared_task(**IDEMPOTENT_TASK)
def commission_split_order_task(order_id: int | None = None) -> int:
    """Split queued orders in batches (the given one among them). Idempotent; see commissions.services."""
    return commission_split_order(order_id=order_id)


@shared_task(**IDEMPOTENT_TASK)
def commission_apply_refund_task(refund_id: int) -> None:
    commission_apply_refund(refund_id=refund_id)


@shared_task(**IDEMPOTENT_TASK)
def commission_release_due_task() -> int:
    return commission_release_due()  # staff.jobs records the run for the overview


@shared_task
def commission_sweep_task() -> int:
    return commission_sweep()


@shared_task(**IDEMPOTENT_TASK)
def external_lines_apply_task() -> int:
    """Write the external lines the networks marked for the ledger, a batch a run. Sent after the networks' commit
    and run by the beat every minute (which finds lines whose message was lost). Idempotent; see
    commissions.services.external."""
    return external_lines_apply_run()


@shared_task
def plan_simulation_run_task(simulation_id: int) -> None:
    """Replay a plan simulation. A second delivery finds it no longer queued and does nothing; an error marks it
    failed. Not acks_late: a redelivered long replay would only find its row already `running`."""
    plan_simulation_run(simulation_id=simulation_id)


@shared_task(**IDEMPOTENT_TASK)
def risk_rescore_members_task() -> dict[str, int]:
    """The nightly re-score of the member rules (commissions.services.risk): new flags per rule. Idempotent."""
    return risk_rescore_members()


@shared_task(**IDEMPOTENT_TASK)
def policy_options_sync_task() -> int | None:
    """Run by the beat every minute: a policy version published for later puts its attribution options in force at
    checkout once it starts. Idempotent."""
    policy = policy_options_sync()
    return policy.version if policy else None
