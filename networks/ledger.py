"""External order lines in the commission ledger: split, adjusted, reversed and released.

An external line's pool is the commission the network reports for it (nothing once the network says invalid). The
first time a matched line is seen it is split like one of our own lines (`split_line`, the plan and policy in force
when it was paid, the sharer's upline as it is then, kept on the line). Every later change the network reports
writes only the difference, level by level, as a new revision of entries: never an edit in place.

- a changed commission → `adjustment` entries (either sign) at every level and for the platform;
- invalid (cancelled, refunded, judged invalid) → `reversal` entries while the commission is on hold, `clawback`
  entries once it was released (it may have been paid out: the balance goes negative and later commission nets it);
- settled → the line's entries are released once the hold has passed (`external_release_due`).

Callers hold the line's row lock (`networks.locks`), so one writer at a time brings a line up to date, and the
revision number is part of each entry's unique key: a revision is written once.
"""

from collections import defaultdict
from datetime import timedelta
from decimal import Decimal

from django.conf import settings
from django.db import transaction
from django.db.models import Sum
from django.utils import timezone

from commissions.calculations import HARD_MAX_LEVELS, ChainMember, split_line
from commissions.models import CommissionEntry as Entry
from commissions.models import CommissionPlan, CompliancePolicy
from core.money import ZERO
from networks.locks import external_orders_lock
from networks.models import ExternalOrder

RELEASED = (Entry.Status.AVAILABLE, Entry.Status.PAID)
RELEASE_CHUNK = 500


def _versions(paid_at) -> tuple[CommissionPlan | None, CompliancePolicy | None]:
    plan = (
        CommissionPlan.objects.filter(is_activated=True, effective_from__lte=paid_at)
        .order_by("-effective_from", "-version")
        .first()
    )
    policy = (
        CompliancePolicy.objects.filter(effective_from__lte=paid_at).order_by("-effective_from", "-version").first()
    )
    return plan, policy


def _target(line: ExternalOrder, *, payout_cap_in_cents: bool = False) -> dict[int, tuple]:
    """What each level should hold now: {level: (beneficiary id, rate, amount, capped_by, rolled_up_from)}.

    `payout_cap_in_cents` gives what the split held under the payout-cap rule before issue #19 (see `split_line`):
    only the ledger checker asks for it, to recognise lines split then."""
    pool = line.pool
    if line.plan is None or line.policy is None:
        return {0: (None, Decimal("1"), pool, "", None)}
    split = split_line(
        pool=pool,
        net_amount=line.paid_amount,
        chain=[ChainMember(member_id, eligible) for member_id, eligible in line.chain or []],
        plan=line.plan.as_calculation(),
        policy=line.policy.as_calculation(),
        payout_cap_in_cents=payout_cap_in_cents,
    )
    target = {s.level: (s.member_id, s.rate, s.amount, s.capped_by or "", s.rolled_up_from) for s in split.shares}
    target[0] = (None, Decimal("1"), split.platform_remainder, split.capped_by or "", None)
    return target


def external_line_apply(line: ExternalOrder, *, now=None) -> int:
    """Bring the ledger to what the network now reports for `line` (row-locked by the caller); return the number
    of entries written. An unmatched line (no member) is left alone until staff assign it."""
    from referrals.selectors import member_uplines

    if line.member_id is None:
        return 0
    now = now or timezone.now()
    first = line.revision == 0
    if first:
        line.chain = [list(link) for link in member_uplines([line.member_id], HARD_MAX_LEVELS).get(line.member_id, [])]
        line.plan, line.policy = _versions(line.paid_at)
    target = _target(line)
    entries = Entry.objects.filter(external_line=line)
    held = defaultdict(lambda: ZERO)
    for level, amount in entries.values_list("level").annotate(total=Sum("amount")).values_list("level", "total"):
        held[level] = amount or ZERO
    released = entries.filter(status__in=RELEASED).exists()
    # Money taken back after release comes off the available balance at once (a clawback); money added after
    # release waits like any commission until the line is settled and the hold has passed.
    cutoff = now - timedelta(days=settings.COMMISSION_HOLD_DAYS)
    releasable = line.status == ExternalOrder.Status.SETTLED and line.settled_at and line.settled_at <= cutoff
    invalid = line.status == ExternalOrder.Status.INVALID
    revision = line.revision + 1
    rows = []
    for level, (member_id, rate, amount, capped_by, rolled_up_from) in sorted(target.items()):
        difference = amount - held[level]
        if not first and difference == ZERO:
            continue
        if first:
            kind = Entry.Kind.PLATFORM if level == 0 else Entry.Kind.COMMISSION
        elif invalid and level and difference < ZERO:
            kind = Entry.Kind.CLAWBACK if released else Entry.Kind.REVERSAL
        else:
            kind = Entry.Kind.ADJUSTMENT
        rows.append(
            Entry(
                external_line=line,
                revision=revision,
                beneficiary_id=member_id,
                level=level,
                kind=kind,
                base=line.pool,
                rate=rate,
                amount=difference,
                plan=line.plan,
                policy=line.policy,
                capped_by=capped_by,
                rolled_up_from_id=rolled_up_from,
                note=f"{line.network_id}:{line.external_order_id}/{line.line_id} {line.status}",
                status=Entry.Status.AVAILABLE if released and (difference < 0 or releasable) else Entry.Status.PENDING,
                released_at=now if released and (difference < 0 or releasable) else None,
                created_at=now,
            )
        )
    if not rows and not first:
        # Nothing moved at any level (e.g. only the network's timestamps changed): no revision to write.
        line.split_commission, line.split_status = line.commission, line.status
        line.save(update_fields=["split_commission", "split_status"])
        return 0
    Entry.objects.bulk_create(rows)
    if invalid and not released:
        # Nothing of it will ever be earned: the entries leave the pending balance together.
        entries.filter(status=Entry.Status.PENDING).update(status=Entry.Status.REVERSED, reversed_at=now)
    line.split_commission = line.commission
    line.split_status = line.status
    line.revision = revision
    line.save(update_fields=["split_commission", "split_status", "revision", "chain", "plan", "policy"])
    return len(rows)


def external_release_due(*, now=None) -> int:
    """Release the pending entries of settled external lines whose hold has passed; return how many entries.

    Line by line under the line's row lock (the lock a reported change is applied under), so a change arriving at
    the same moment is written either before the release (and released with it) or after it.
    """
    now = now or timezone.now()
    released_at = min(now, timezone.now())  # when the money became available: never in the future
    cutoff = now - timedelta(days=settings.COMMISSION_HOLD_DAYS)
    due = Entry.objects.filter(
        status=Entry.Status.PENDING,
        external_line__status=ExternalOrder.Status.SETTLED,
        external_line__settled_at__lte=cutoff,
    )
    released, after = 0, 0
    while True:
        line_ids = list(
            due.filter(external_line_id__gt=after)
            .order_by("external_line_id")
            .values_list("external_line_id", flat=True)
            .distinct()[:RELEASE_CHUNK]
        )
        if not line_ids:
            return released
        with transaction.atomic():
            # Lines being written by a sync or an import right now are skipped (no deadlock with their lock order);
            # the next hourly run releases them.
            locked = external_orders_lock(
                ExternalOrder.objects.filter(
                    pk__in=line_ids, status=ExternalOrder.Status.SETTLED, settled_at__lte=cutoff
                ),
                "pk",
                flat=True,
                skip_locked=True,
            )
            released += Entry.objects.filter(status=Entry.Status.PENDING, external_line_id__in=locked).update(
                status=Entry.Status.AVAILABLE, released_at=released_at
            )
        after = line_ids[-1]
