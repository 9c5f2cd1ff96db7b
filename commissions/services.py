"""The commission ledger's entry points (SPEC §7).

The storefront calls these, through the tasks in commissions/tasks.py, after an
order's payment or refund has committed. The split itself (plans, caps, the
ledger) arrives with the commissions issue; until then these record nothing.
Both must stay idempotent: they may run twice, concurrently, or not at all (a
periodic sweep will catch what was lost).
"""

import logging

logger = logging.getLogger(__name__)


def commission_split_order(*, order_id: int) -> None:
    """Write the commission entries for a paid order. Idempotent per (order line, level, kind)."""
    logger.debug("order %s paid: commission split pending the commission ledger", order_id)


def commission_apply_refund(*, refund_id: int) -> None:
    """Reverse or claw back the commission on the refunded lines. Idempotent per refund."""
    logger.debug("refund %s recorded: commission reversal pending the commission ledger", refund_id)
