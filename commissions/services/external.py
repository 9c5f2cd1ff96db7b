"""Sales on external networks in the commission ledger (issue #12): split, adjusted, reversed, clawed back and
released. This module is the only writer of their entries; the networks app only records what a network reports.

An external line's pool is the commission the network reports for it (nothing once the network says invalid). The
first time a matched line is seen it is split like one of our own lines (`split_line`, the plan and policy in force
when it was paid by the one rule of `commissions.services.plans`, the sharer's upline as it is then, kept in the
line's split record, `ExternalSplit`). Every later change the network reports writes only the difference, level by
level, as a new revision of entries: never an edit in place.

- a changed commission → `adjustment` entries (either sign) at every level and for the platform;
- invalid (cancelled, refunded, judged invalid) → each member's share is taken back by the rule our own refunds
  use (`commissions.calculations.take_back`): what is still on hold is reversed (`reversal` entries, and the line's
  pending entries leave the balances together), what was released is clawed back (`clawback` entries: the balance
  goes negative if it was paid out, and later commission nets it);
- settled → the line's entries are released once the hold has passed (`release.external_release_due`).

Why the amounts are not computed like a refund of our own sale (`refund_reversals`, proportional to the refunded
net amount): a refund takes back part of a sale whose pool stays what it was, while a network restates the pool
itself. The ledger then holds the split of the new pool, which is not the old split scaled down: a cap that bound
on the old pool may not bind on the new one (50.00 reported on 100.00 paid pays the members 30.00, the payout cap;
20.00 reported later pays 16.00 / 4.00, where scaling would give 9.60 / 2.40). Invalid is the new pool 0.00, so
there the two agree: everything is taken back.

How a reported change reaches the ledger: the networks app records the network's word on the line and marks it
(`ExternalOrder.ledger_marked_at`, an outbox) in the same transaction; after the commit it sends
`networks.signals.external_orders_marked`, whose receiver here (`commissions.receivers`) asks for
`external_lines_apply_task` (one message for many marks). The task claims marked lines in batches with SKIP LOCKED
(`networks.locks.external_orders_marked_claim`), writes each line's difference and clears the marks, in one
transaction. A lost message loses nothing: the beat runs the same task every minute. Writers hold the line's row
lock, so one writer at a time brings a line up to date, and the revision number is part of each entry's unique
key: a revision is written once, however often a task runs.
"""

import logging
from collections import defaultdict
from datetime import timedelta
from decimal import Decimal
from functools import partial
from typing import NamedTuple

from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from django.db.models import Sum
from django.utils import timezone

from commissions.calculations import HARD_MAX_LEVELS, ChainMember, split_line, take_back
from commissions.models import CommissionEntry, ExternalSplit
from commissions.selectors import plan_in_force, policy_in_force
from commissions.services.announce import EntryChanges
from core.money import ZERO
from core.task_helpers import task_request_next, task_request_once
from networks.locks import external_orders_marked_claim
from networks.models import ExternalOrder
from networks.services import external_orders_unmark
from referrals.selectors import member_uplines
from shops.selectors import own_sales_paid_at

logger = logging.getLogger(__name__)

Entry = CommissionEntry
EXTERNAL_SCHEDULED_KEY = "commissions:external-lines-scheduled"
RELEASED = (Entry.Status.AVAILABLE, Entry.Status.PAID)


class LevelShare(NamedTuple):
    """What one level of an external line should hold now (level 0: the platform remainder)."""

    member_id: int | None
    rate: Decimal
    amount: Decimal
    capped_by: str
    rolled_up_from: int | None


def external_line_target(split: ExternalSplit, *, payout_cap_in_cents: bool = False) -> dict[int, LevelShare]:
    """What each level of an external line (`split.line`) should hold now: the split of its pool under the plan,
    policy and chain it was first split with ({0: the whole pool} for a line split with no plan or policy in force).

    `payout_cap_in_cents` gives what the split held under the payout-cap rule before issue #19 (see `split_line`):
    only the ledger checker asks for it, to recognise lines split then."""
    line = split.line
    pool = line.pool
    if split.plan is None or split.policy is None:
        return {0: LevelShare(None, Decimal("1"), pool, "", None)}
    result = split_line(
        pool=pool,
        net_amount=line.paid_amount,
        # [member id, eligible] links, and [member id, eligible, own sales] for uplines counted at the first split
        # under a policy that asks for own sales (`_first_chain`).
        chain=[ChainMember(*link) for link in split.chain or []],
        plan=split.plan.as_calculation(),
        policy=split.policy.as_calculation(),
        payout_cap_in_cents=payout_cap_in_cents,
    )
    target = {
        s.level: LevelShare(s.member_id, s.rate, s.amount, s.capped_by or "", s.rolled_up_from) for s in result.shares
    }
    target[0] = LevelShare(None, Decimal("1"), result.platform_remainder, result.capped_by or "", None)
    return target


def _first_chain(line: ExternalOrder, policy) -> list[list]:
    """The chain an external line is split over from its first split on: the member's upline now, each upline with
    their own sales in the policy's qualification period before the line was paid when the policy asks for own sales
    (one query; kept with the chain, so later revisions split over the same answer)."""
    chain = [list(link) for link in member_uplines([line.member_id], HARD_MAX_LEVELS).get(line.member_id, [])]
    if policy is None or not policy.upline_min_own_sales or len(chain) < 2:
        return chain
    since = line.paid_at - timedelta(days=policy.upline_qualification_days)
    paid = own_sales_paid_at([member_id for member_id, _eligible in chain[1:]], since, line.paid_at)
    return [chain[0], *([member_id, eligible, len(paid.get(member_id, []))] for member_id, eligible in chain[1:])]


def external_lines_requested() -> bool:
    """Ask for a run of `external_lines_apply_task` unless one is asked for and not started; return whether a
    message was sent. Many marks, one message (`core.task_helpers.task_request_once`, as for the split)."""
    from commissions.tasks import external_lines_apply_task

    return task_request_once(
        flag=EXTERNAL_SCHEDULED_KEY,
        task=external_lines_apply_task,
        flag_seconds=settings.COMMISSION_SPLIT_FLAG_SECONDS,
        logger=logger,
        fallback="the beat's pass will write the marked external lines",
    )


def external_lines_apply_run() -> int:
    """One run (the task): a batch of marked lines; a full batch asks for the next run. Returns how many lines."""
    cache.delete(EXTERNAL_SCHEDULED_KEY)
    return external_lines_apply(
        limit=settings.COMMISSION_SPLIT_BATCH, more=partial(task_request_next, external_lines_requested)
    )


@transaction.atomic
def external_lines_apply(*, limit: int = 500, more=None) -> int:
    """Bring the ledger to what the networks report for up to `limit` lines marked for it, and clear their marks,
    in one transaction; return how many lines were claimed.

    Safe to run twice or at once: lines are claimed with SKIP LOCKED (a line a sync, an import or another run is
    writing is left for the next run), and a revision is written once. A line whose ledger already holds its
    latest word writes nothing. `more` is called once the batch is claimed if it was full (more lines wait)."""
    lines = external_orders_marked_claim(limit)
    if not lines:
        return 0
    if more is not None and len(lines) == limit:
        more()
    now = timezone.now()
    changes = EntryChanges()
    for line in lines:
        external_line_apply(line, now=now, changes=changes)
    external_orders_unmark(line_ids=[line.pk for line in lines])
    changes.announce()
    return len(lines)


def external_line_apply(line: ExternalOrder, *, now=None, changes: EntryChanges | None = None) -> int:
    """Bring the ledger to what the network now reports for `line` (row-locked by the caller); return the number
    of entries written. An unmatched line (no member) is left alone until staff assign it. The line's split record
    (`ExternalSplit`) is made at its first split and says what the ledger holds after each. The entries written and
    voided are added to `changes` (the caller announces them once), else announced after the commit here."""
    if changes is None:
        changes = EntryChanges()
        try:
            return external_line_apply(line, now=now, changes=changes)
        finally:
            changes.announce()
    if line.member_id is None:
        return 0
    now = now or timezone.now()
    split = ExternalSplit.objects.filter(line=line).select_related("plan", "policy").first()
    first = split is None or split.revision == 0
    if first:
        policy = policy_in_force(line.paid_at)
        split = ExternalSplit(
            line=line, chain=_first_chain(line, policy), plan=plan_in_force(line.paid_at), policy=policy
        )
    split.line = line
    target = external_line_target(split)
    entries = Entry.objects.filter(external_line=line)
    held, pending = defaultdict(lambda: ZERO), defaultdict(lambda: ZERO)
    for level, status, amount in (
        entries.values_list("level", "status").annotate(total=Sum("amount")).values_list("level", "status", "total")
    ):
        held[level] += amount or ZERO
        if status == Entry.Status.PENDING:
            pending[level] += amount or ZERO
    released = entries.filter(status__in=RELEASED).exists()
    # Money taken back after release comes off the available balance at once (a clawback); money added after
    # release waits like any commission until the line is settled and the hold has passed.
    cutoff = now - timedelta(days=settings.COMMISSION_HOLD_DAYS)
    releasable = line.status == ExternalOrder.Status.SETTLED and line.settled_at and line.settled_at <= cutoff
    invalid = line.status == ExternalOrder.Status.INVALID
    revision = split.revision + 1
    rows = []
    for level, share in sorted(target.items()):
        difference = share.amount - held[level]
        if not first and difference == ZERO:
            continue
        if first:
            parts = [(Entry.Kind.PLATFORM if level == 0 else Entry.Kind.COMMISSION, difference)]
        elif invalid and level and difference < ZERO:
            booked = take_back(-difference, pending=pending[level])
            parts = [(Entry.Kind.REVERSAL, -booked.reversed), (Entry.Kind.CLAWBACK, -booked.clawed_back)]
            parts = [(kind, amount) for kind, amount in parts if amount]
        else:
            parts = [(Entry.Kind.ADJUSTMENT, difference)]
        for kind, amount in parts:
            if kind == Entry.Kind.REVERSAL:
                available = False  # off what is on hold: it leaves the balances with it, below
            elif kind == Entry.Kind.CLAWBACK:
                available = True
            else:
                available = released and (amount < 0 or bool(releasable))
            rows.append(
                Entry(
                    external_line=line,
                    revision=revision,
                    beneficiary_id=share.member_id,
                    level=level,
                    kind=kind,
                    base=line.pool,
                    rate=share.rate,
                    amount=amount,
                    plan=split.plan,
                    policy=split.policy,
                    capped_by=share.capped_by,
                    rolled_up_from_id=share.rolled_up_from,
                    note=f"{line.network_id}:{line.external_order_id}/{line.line_id} {line.status}",
                    status=Entry.Status.AVAILABLE if available else Entry.Status.PENDING,
                    released_at=now if available else None,
                    created_at=now,
                )
            )
    if not rows and not first:
        # Nothing moved at any level (e.g. only the network's timestamps changed): no revision to write.
        split.split_commission, split.split_status = line.commission, line.status
        split.save(update_fields=["split_commission", "split_status"])
        return 0
    Entry.objects.bulk_create(rows)
    changes.created.extend(row.pk for row in rows if row.pk is not None)
    if invalid:
        # Nothing of it will ever be earned: what is on hold (each share and its reversal) leaves the pending
        # balance together.
        voided = list(entries.filter(status=Entry.Status.PENDING).values_list("pk", flat=True))
        entries.filter(pk__in=voided).update(status=Entry.Status.REVERSED, reversed_at=now)
        changes.reversed.extend(voided)
    split.split_commission, split.split_status, split.revision = line.commission, line.status, revision
    split.save()
    return len(rows)
