"""What the commission ledger announces to the apps above it (notifications, outbound webhooks), which it never
imports.

- `commission_entries_changed` (arguments `entry_ids`: a list of CommissionEntry ids, `change`: one of
  "created", "available", "reversed") is sent AFTER the commit that created entries, released them (pending →
  available) or reversed them (a refund's reversal or clawback entries are "created" with kind reversal/clawback;
  pending entries that a refund voids are "reversed"). One send per writing transaction, never per entry.
  Receivers only ask for work: they run inside the split, release and refund jobs.
- `rules_change_scheduled` (arguments `kind`: "plan" or "policy", `version`, `effective_from`) is sent AFTER the
  commit that activated a plan or published a policy to take effect later: the members are told in advance
  (RULES_CHANGE_NOTICE_DAYS, docs/compliance.md). Receivers only ask for work.
"""

from django.dispatch import Signal

CREATED, AVAILABLE, REVERSED = "created", "available", "reversed"

PLAN, POLICY = "plan", "policy"

commission_entries_changed = Signal()
rules_change_scheduled = Signal()
