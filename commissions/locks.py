"""The commission app's locks: the settings (policy and plans) and claims on the split queue.

Policy and plan changes take one advisory lock first, then read: a concurrent publish has either committed or not
started, so a plan can never be activated against a policy that a concurrent change has just made it break. The
order rows the ledger writes under are the shops app's (`shops.locks.orders_lock`); the order of all locks:
core/locks.py.
"""

from commissions.models import CommissionPlan, CompliancePolicy, RiskFlag, SplitQueue
from core.locks import advisory_lock, row_lock, rows_lock

CONFIG_LOCK_KEY = 0x636F6D6D5F636667  # "comm_cfg": serialises policy and plan changes on PostgreSQL


def config_lock() -> None:
    """Block until this transaction holds the commission settings lock (a policy publish, a plan's creation or
    activation)."""
    advisory_lock(CONFIG_LOCK_KEY)


def policy_in_force_lock() -> CompliancePolicy | None:
    """The policy in force (the one active row), locked; None before the first one is published."""
    locked = rows_lock(CompliancePolicy.objects.filter(is_active=True), limit=1)
    return locked[0] if locked else None


def plan_lock(plan_id: int) -> CommissionPlan:
    """The plan's row, locked (CommissionPlan.DoesNotExist if there is none)."""
    return row_lock(CommissionPlan.objects.filter(pk=plan_id))


def split_queue_claim(limit: int) -> list[tuple[int, list]]:
    """Claim up to `limit` queued orders, oldest first: their (order id, chain), locked until the transaction ends.

    Rows another worker has claimed are skipped (SKIP LOCKED), so concurrent workers take different orders and
    never wait for each other (which is why this claim may read in queue order rather than id order).
    """
    return rows_lock(
        SplitQueue.objects.all(),
        "order_id",
        "chain",
        limit=limit,
        order_by=("queued_at", "order_id"),
        skip_locked=True,
    )


def risk_flag_lock(flag_id: int) -> RiskFlag:
    """The risk flag's row, locked (after the locks of the orders whose money it holds; RiskFlag.DoesNotExist if
    there is none): a resolution is serialised on it, so resolving twice at once resolves once."""
    return row_lock(RiskFlag.objects.select_related("member").filter(pk=flag_id))
