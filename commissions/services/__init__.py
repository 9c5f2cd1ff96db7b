"""The commission ledger's writes (SPEC §7), one module per family of verbs:

- `plans`: policy and plan versions, and the one rule for the plan and policy in force at a moment;
- `split`: a paid order's lines split into ledger rows, exactly once (the split queue, its task, the sweep);
- `refunds`: a refund's reversals and clawbacks;
- `release`: pending commission made available once the sale is final and the hold has passed;
- `payouts`: the entries the members' completed payouts cover, labelled paid;
- `external`: sales reported by external networks, split, adjusted, taken back and released, from the lines the
  networks app marks for the ledger (its outbox).

`commissions` is the only app that writes `CommissionEntry`. Every name other apps use is importable from here.
"""

from commissions.selectors import plan_in_force, policy_in_force  # the one rule is a read; kept importable here
from commissions.services.external import (
    EXTERNAL_SCHEDULED_KEY,
    LevelShare,
    external_line_apply,
    external_line_target,
    external_lines_apply,
    external_lines_apply_run,
    external_lines_requested,
)
from commissions.services.payouts import commission_entries_mark_paid
from commissions.services.plans import (
    POLICY_FIELDS,
    CommissionError,
    plan_activate,
    plan_create,
    plan_validate,
    policy_publish,
)
from commissions.services.refunds import commission_apply_refund, refund_reversals_write
from commissions.services.release import commission_release_due, external_release_due
from commissions.services.split import (
    SPLIT_COLUMNS,
    SPLIT_SCHEDULED_KEY,
    commission_orders_paid,
    commission_split_order,
    commission_split_queued,
    commission_split_requested,
    commission_sweep,
)

__all__ = [
    "EXTERNAL_SCHEDULED_KEY",
    "POLICY_FIELDS",
    "SPLIT_COLUMNS",
    "SPLIT_SCHEDULED_KEY",
    "CommissionError",
    "LevelShare",
    "commission_apply_refund",
    "commission_entries_mark_paid",
    "commission_orders_paid",
    "commission_release_due",
    "commission_split_order",
    "commission_split_queued",
    "commission_split_requested",
    "commission_sweep",
    "external_line_apply",
    "external_line_target",
    "external_lines_apply",
    "external_lines_apply_run",
    "external_lines_requested",
    "external_release_due",
    "plan_activate",
    "plan_create",
    "plan_in_force",
    "plan_validate",
    "policy_in_force",
    "policy_publish",
    "refund_reversals_write",
]
