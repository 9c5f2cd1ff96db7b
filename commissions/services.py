"""The commission ledger's writes (SPEC §7): policy and plan versions, the split, releases, refunds.

How a paid order becomes ledger rows, exactly once:
1. In the transaction that marks the order paid, `commission_order_paid` adds it to `SplitQueue` (an
   outbox: if the broker is down, nothing is lost) and asks for `commission_split_order_task` after commit.
2. That task drains the queue in batches: it locks up to `COMMISSION_SPLIT_BATCH` queued orders with SKIP
   LOCKED (so concurrent workers take different orders), locks those orders' rows, splits every line with
   the plan and policy in force at payment time and the upline at that moment, bulk-inserts the entries and
   an `OrderSplit` marker, applies refunds that arrived first, and deletes the queue rows, in one
   transaction. Unique constraints (one split per order, one entry per line, level and kind) make a
   duplicate or concurrent run a no-op. A periodic sweep re-sends queued orders whose message was lost.
3. Refunds lock the same order row (the storefront's refund does; both through `shops.locks`), so a refund is
   either seen by the split or applied after it by `commission_apply_refund`, never missed.
"""

import logging
from collections import defaultdict
from datetime import timedelta
from decimal import Decimal

from celery import current_app
from django.conf import settings
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.db import IntegrityError, connection, transaction
from django.db.models import Exists, Max, OuterRef, Q, Sum
from django.utils import timezone
from django.utils.translation import gettext as _

from commissions.calculations import (
    HARD_MAX_LEVELS,
    HARD_MAX_PAYOUT_RATIO,
    ChainMember,
    Plan,
    Policy,
    line_pool,
    payout_ratio_ceiling_message,
    plan_violations,
    refund_reversals,
    split_line,
)
from commissions.locks import config_lock, plan_lock, policy_in_force_lock, split_queue_claim
from commissions.models import (
    CommissionEntry,
    CommissionPlan,
    CompliancePolicy,
    OrderSplit,
    RefundApplied,
    SplitQueue,
)
from commissions.selectors import plan_in_force, policy_in_force, released_entries
from core.money import ZERO
from core.task_helpers import task_request_once
from shops.locks import order_lock, orders_lock

logger = logging.getLogger(__name__)

Entry = CommissionEntry
POLICY_FIELDS = ("max_levels", "max_total_rate", "max_payout_ratio", "self_purchase_earns", "ineligible_share")


class CommissionError(ValidationError):
    """A refused policy or plan change; the message is fit for staff. Nothing was changed."""


# --- Policy and plans ------------------------------------------------------------------------------


def _calculation_policy(values: dict) -> Policy:
    try:
        levels = int(values["max_levels"])
    except (TypeError, ValueError) as error:
        raise CommissionError({"max_levels": [_("Enter a whole number of levels, 1 to 3.")]}) from error
    if levels > HARD_MAX_LEVELS:
        raise CommissionError(
            {"max_levels": [_("At most %(max)d levels may ever be paid.") % {"max": HARD_MAX_LEVELS}]},
            code="too_many_levels",
        )
    ratio = values.get("max_payout_ratio")
    if isinstance(ratio, Decimal) and ratio.is_finite() and ratio > HARD_MAX_PAYOUT_RATIO:
        raise CommissionError({"max_payout_ratio": [payout_ratio_ceiling_message()]}, code="payout_ratio_ceiling")
    try:
        return Policy(**{**{name: values[name] for name in POLICY_FIELDS}, "max_levels": levels})
    except (TypeError, ValueError) as error:
        raise CommissionError(str(error), code="invalid_policy") from error


def _plans_that_must_stay_legal(now) -> list[CommissionPlan]:
    current = plan_in_force(now)
    upcoming = list(CommissionPlan.objects.filter(is_activated=True, effective_from__gt=now))
    return ([current] if current else []) + upcoming


@transaction.atomic
def policy_publish(*, actor, note: str = "", **changes) -> CompliancePolicy:
    """Publish a new policy version (the old one stays, inactive, as history) and make it the one in force.

    Refused (CommissionError, nothing changed) when a value is out of range, when max_levels exceeds the
    hard ceiling of 3 or max_payout_ratio the hard ceiling of 0.30, or when the plan in force (or one scheduled)
    would break the new policy.
    """
    unknown = set(changes) - set(POLICY_FIELDS)
    if unknown:
        raise CommissionError(_("Unknown policy fields: %(fields)s") % {"fields": ", ".join(sorted(unknown))})
    config_lock()  # then read: a concurrent publish has committed or not started
    current = policy_in_force_lock()
    values = {name: getattr(current, name) for name in POLICY_FIELDS} if current else {}
    values = {**{f.name: f.get_default() for f in CompliancePolicy._meta.fields if f.name in POLICY_FIELDS}, **values}
    values.update(changes)
    policy = _calculation_policy(values)
    now = timezone.now()
    for plan in _plans_that_must_stay_legal(now):
        problems = plan_violations(plan.as_calculation(), policy)
        if problems:
            raise CommissionError(
                _("%(plan)s would break this policy (%(problems)s). Change the plan first.")
                % {"plan": plan, "problems": "; ".join(problems)},
                code="plan_illegal",
            )
    if current:
        current.is_active = False
        current.save(update_fields=["is_active"])
    version = (CompliancePolicy.objects.aggregate(v=Max("version"))["v"] or 0) + 1
    return CompliancePolicy.objects.create(
        version=version, is_active=True, effective_from=now, created_by=actor, note=note, **values
    )


def _plan_problems(rates: tuple, policy: CompliancePolicy | None) -> list[str]:
    if policy is None:
        return [_("There is no compliance policy yet.")]
    try:
        return plan_violations(Plan(rates=tuple(Decimal(r) for r in rates)), policy.as_calculation())
    except (TypeError, ValueError) as error:
        return [str(error)]


def plan_validate(*, rates: tuple) -> None:
    """Raise CommissionError listing every way these rates break the policy in force."""
    if len(rates) > HARD_MAX_LEVELS:
        raise CommissionError(_("At most %(max)d levels may ever be paid.") % {"max": HARD_MAX_LEVELS})
    problems = _plan_problems(rates, policy_in_force())
    if problems:
        raise CommissionError(problems, code="plan_illegal")


@transaction.atomic
def plan_create(*, actor, name: str, rates: tuple) -> CommissionPlan:
    """A draft plan (not in force until activated). Refused if it breaks the policy in force."""
    rates = tuple(rates)
    plan_validate(rates=rates)
    padded = (*rates, None, None, None)[:3]
    config_lock()
    version = (CommissionPlan.objects.aggregate(v=Max("version"))["v"] or 0) + 1
    return CommissionPlan.objects.create(
        version=version,
        name=name,
        level1_rate=padded[0],
        level2_rate=padded[1],
        level3_rate=padded[2],
        created_by=actor,
    )


@transaction.atomic
def plan_activate(*, plan: CommissionPlan, actor, effective_from=None) -> CommissionPlan:
    """Put a draft plan in force from `effective_from` (default now). Refused if it breaks the policy."""
    config_lock()
    plan = plan_lock(plan.pk)
    if plan.is_activated:
        raise CommissionError(_("This plan is already activated; plans in force never change."), code="activated")
    now = timezone.now()
    if effective_from is not None and effective_from < now:
        # A backdated plan would re-price orders paid before it existed (their splits may still be queued).
        raise CommissionError(_("A plan can start now or later, never in the past."), code="backdated")
    plan_validate(rates=plan.rates)
    plan.is_activated = True
    plan.effective_from = effective_from or now
    plan.activated_at = now
    plan.activated_by = actor if getattr(actor, "pk", None) else None
    plan.save(update_fields=["is_activated", "effective_from", "activated_at", "activated_by"])
    return plan


# --- The split --------------------------------------------------------------------------------------


SPLIT_SCHEDULED_KEY = "commissions:split-scheduled"


def commission_order_paid(*, order_id: int, sharer_id: int | None) -> None:
    """Called by the storefront inside the transaction that marks an order paid: queue its split.

    The upline is read now (one query) and kept with the queue row, so a split that runs later still pays
    the chain as it was at payment time, whatever moves or suspensions happen in between.
    """
    from referrals.selectors import member_uplines

    chain = member_uplines([sharer_id], HARD_MAX_LEVELS).get(sharer_id, []) if sharer_id else []
    SplitQueue.objects.bulk_create(
        [SplitQueue(order_id=order_id, chain=[[member_id, eligible] for member_id, eligible in chain])],
        ignore_conflicts=True,
    )
    transaction.on_commit(commission_split_requested)


def commission_split_requested() -> bool:
    """Ask for a split run unless one is already asked for and not started; return whether a message was sent.

    Many payments, one message: at an 11.11 peak thousands of orders a second are paid, and a message per order
    would cost a worker a task per order only to find most of them already split. The first payment after a run
    starts sends one (a cache flag, `cache.add`, says one is on its way); the run clears the flag before it
    reads the queue, so every order committed before the flag was seen is in what it reads, and a later payment
    sends again. A run that finds a full batch asks for the next one at once, so every idle worker joins in. If
    a message is lost, the flag expires and the sweep re-sends what waits; nothing is lost either way.
    """
    from commissions.tasks import commission_split_order_task

    return task_request_once(
        flag=SPLIT_SCHEDULED_KEY,
        task=commission_split_order_task,
        flag_seconds=settings.COMMISSION_SPLIT_FLAG_SECONDS,
        logger=logger,
        fallback="the sweep will split the queued orders",
    )


def commission_split_order(*, order_id: int | None = None) -> int:
    """One split run (the task): a batch of queued orders, this one among them if still queued; return how many."""
    cache.delete(SPLIT_SCHEDULED_KEY)
    return commission_split_queued(limit=settings.COMMISSION_SPLIT_BATCH, more=_ask_for_more)


def _ask_for_more() -> None:
    if current_app.conf.task_always_eager:
        # In-process tasks (the embedded default): the next batch after this one commits, never inside it.
        transaction.on_commit(commission_split_requested)
    else:
        commission_split_requested()


def _versions_at(paid_at, plans: list[CommissionPlan], policies: list[CompliancePolicy]):
    plan = next((p for p in plans if p.effective_from <= paid_at), None)
    policy = next((p for p in policies if p.effective_from <= paid_at), None)
    return plan, policy


COMMISSION, PLATFORM = Entry.Kind.COMMISSION.value, Entry.Kind.PLATFORM.value
# The ledger columns a split writes, in the order `_line_rows` fills them.
SPLIT_COLUMNS = (
    "order_id", "order_line_id", "beneficiary_id", "level", "kind", "base", "rate", "amount", "plan_id",
    "policy_id", "capped_by", "rolled_up_from_id", "note", "status", "created_at",
)  # fmt: skip


@transaction.atomic
def commission_split_queued(*, limit: int = 500, more=None) -> int:
    """Drain up to `limit` queued orders in one transaction. Safe to run twice or concurrently.

    `more` is called once the batch is claimed if it was full (more orders are waiting), so another worker
    can start on the next batch while this one is written.
    """
    from shops.models import Order, Refund

    queued = split_queue_claim(limit)
    if not queued:
        return 0
    if more is not None and len(queued) == limit:
        more()
    order_ids = sorted(order_id for order_id, _chain in queued)
    # Lock the orders (in id order) so a refund cannot slip between reading refunds and writing entries.
    orders = {
        pk: (paid_at, sharer_id, is_self_purchase)
        for pk, paid_at, sharer_id, is_self_purchase in orders_lock(
            Order.objects.filter(pk__in=order_ids, paid_at__isnull=False).exclude(
                Exists(OrderSplit.objects.filter(order=OuterRef("pk")))
            ),
            "pk",
            "paid_at",
            "sharer_id",
            "is_self_purchase",
        )
    }
    if orders:
        _split_orders(orders, dict(queued))
        for refund in Refund.objects.filter(order_id__in=orders).order_by("pk"):
            _apply_refund(refund)
    SplitQueue.objects.filter(order_id__in=order_ids).delete()
    return len(orders)


def _split_orders(orders: dict, snapshots: dict) -> None:
    from referrals.selectors import member_uplines
    from shops.models import OrderLine

    plans = list(CommissionPlan.objects.filter(is_activated=True).order_by("-effective_from", "-version"))
    policies = list(CompliancePolicy.objects.order_by("-effective_from", "-version"))
    calculations = {("plan", p.pk): p.as_calculation() for p in plans}
    calculations.update({("policy", p.pk): p.as_calculation() for p in policies})
    # The chain as it was at payment (kept on the queue row); a row the sweep queued has none: read it now.
    unknown = {sharer for pk, (_at, sharer, _self) in orders.items() if snapshots.get(pk) is None and sharer}
    current = member_uplines(unknown, HARD_MAX_LEVELS)
    lines_by_order = defaultdict(list)
    for line in (
        OrderLine.objects.filter(order_id__in=orders)
        .order_by("pk")
        .values_list("pk", "order_id", "net_amount", "commission_rate")
    ):
        lines_by_order[line[1]].append(line)

    now = timezone.now()
    rows, markers = [], []
    for order_id, (paid_at, sharer_id, is_self_purchase) in orders.items():
        plan, policy = _versions_at(paid_at, plans, policies)
        markers.append(OrderSplit(order_id=order_id, plan=plan, policy=policy, created_at=now))
        links = snapshots.get(order_id)
        if links is None:
            links = current.get(sharer_id, [])
        chain = [ChainMember(member_id, eligible) for member_id, eligible in links]
        versions = (
            plan and calculations[("plan", plan.pk)],
            policy and calculations[("policy", policy.pk)],
            plan and plan.pk,
            policy and policy.pk,
        )
        for line in lines_by_order[order_id]:
            rows.extend(_line_rows(line, chain, versions, is_self_purchase, now))
    OrderSplit.objects.bulk_create(markers)
    _insert_entries(rows)


def _line_rows(line, chain, versions, is_self_purchase, now) -> list[tuple]:
    """The ledger rows of one line's split, as tuples in `SPLIT_COLUMNS` order."""
    line_id, order_id, net_amount, commission_rate = line
    plan, policy, plan_id, policy_id = versions
    pool = line_pool(net_amount, commission_rate)
    pending = Entry.Status.PENDING.value

    def row(kind, level, member_id, rate, amount, capped_by="", rolled_up_from=None, note=""):
        return (order_id, line_id, member_id, level, kind, pool, rate, amount, plan_id, policy_id, capped_by,
                rolled_up_from, note, pending, now)  # fmt: skip

    if plan is None or policy is None:
        note = "no plan in force" if plan is None else "no policy in force"
        return [row(PLATFORM, 0, None, Decimal("1"), pool, note=note)]
    split = split_line(
        pool=pool, net_amount=net_amount, chain=chain, plan=plan, policy=policy, is_self_purchase=is_self_purchase
    )
    rows = [
        row(COMMISSION, s.level, s.member_id, s.rate, s.amount, s.capped_by or "", s.rolled_up_from)
        for s in split.shares
    ]
    note = "self-purchase" if is_self_purchase and not split.shares else ""
    rows.append(row(PLATFORM, 0, None, Decimal("1"), split.platform_remainder, split.capped_by or "", None, note))
    return rows


def _insert_entries(rows: list[tuple]) -> None:
    """Insert split rows: PostgreSQL's COPY (one round trip, no SQL to build), else a bulk INSERT."""
    if not rows:
        return
    if connection.vendor == "postgresql":
        columns = ", ".join(connection.ops.quote_name(Entry._meta.get_field(name).column) for name in SPLIT_COLUMNS)
        table = connection.ops.quote_name(Entry._meta.db_table)
        with connection.cursor() as cursor, cursor.cursor.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
        return
    Entry.objects.bulk_create([Entry(**dict(zip(SPLIT_COLUMNS, row, strict=True))) for row in rows], batch_size=500)


# --- Refunds ----------------------------------------------------------------------------------------


def commission_apply_refund(*, refund_id: int) -> None:
    """Reverse (before release) or claw back (after release or payout) the commission on a refund.

    Idempotent (a RefundApplied marker and unique entries). If the order is not split yet, does nothing:
    the split applies refunds it finds, under the same order lock.
    """
    from shops.models import Refund

    with transaction.atomic():
        refund = Refund.objects.filter(pk=refund_id).first()
        if refund is None:
            return
        order_lock(refund.order_id)
        if not OrderSplit.objects.filter(order_id=refund.order_id).exists():
            return
        # In refund order: a later refund's amounts are computed on top of the earlier ones, so an earlier
        # refund whose task arrives late is applied first, never after.
        for earlier in Refund.objects.filter(order_id=refund.order_id, pk__lte=refund.pk).order_by("pk"):
            _apply_refund(earlier)


def _apply_refund(refund) -> None:
    if RefundApplied.objects.filter(refund=refund).exists():
        return
    try:
        with transaction.atomic():
            # The marker first: a concurrent run blocks on it, then fails here and writes nothing.
            RefundApplied.objects.create(refund=refund)
            _write_reversals(refund)
    except IntegrityError:
        logger.info("refund %s was applied by a concurrent run", refund.pk)


def _write_reversals(refund) -> None:
    from shops.models import RefundLine

    now = timezone.now()
    for refund_line in RefundLine.objects.filter(refund=refund).select_related("order_line"):
        line = refund_line.order_line
        cumulative = (
            RefundLine.objects.filter(order_line=line, refund_id__lte=refund.pk).aggregate(total=Sum("amount"))["total"]
            or ZERO
        )
        originals = {
            entry.level: entry
            for entry in Entry.objects.filter(order_line=line, kind=Entry.Kind.COMMISSION, amount__gt=0)
        }
        if not originals:
            continue
        earlier = (
            Entry.objects.filter(
                order_line=line, kind__in=[Entry.Kind.REVERSAL, Entry.Kind.CLAWBACK], refund_id__lt=refund.pk
            )
            .values_list("level")
            .annotate(total=Sum("amount"))
        )
        already = {level: -total for level, total in earlier}
        reversals = refund_reversals(
            shares=[_Paid(e.level, e.beneficiary_id, e.amount) for e in originals.values()],
            net_amount=line.net_amount,
            refunded_net_total=cumulative,
            already_reversed=already,
        )
        for reversal in reversals:
            original = originals[reversal.level]
            before_release = original.status == Entry.Status.PENDING
            Entry.objects.create(
                order_id=line.order_id,
                order_line=line,
                refund=refund,
                beneficiary_id=original.beneficiary_id,
                level=original.level,
                kind=Entry.Kind.REVERSAL if before_release else Entry.Kind.CLAWBACK,
                base=original.base,
                rate=original.rate,
                amount=-reversal.amount,
                plan_id=original.plan_id,
                policy_id=original.policy_id,
                status=Entry.Status.PENDING if before_release else Entry.Status.AVAILABLE,
                released_at=None if before_release else now,
                note=f"refund {refund.pk}",
            )
            if before_release and already.get(original.level, ZERO) + reversal.amount == original.amount:
                # Nothing of it is left to earn: the original and its reversals leave the balances together.
                Entry.objects.filter(order_line=line, level=original.level).filter(
                    Q(kind=Entry.Kind.COMMISSION) | Q(kind=Entry.Kind.REVERSAL)
                ).update(status=Entry.Status.REVERSED, reversed_at=now)


class _Paid:
    __slots__ = ("amount", "level", "member_id")

    def __init__(self, level, member_id, amount):
        self.level, self.member_id, self.amount = level, member_id, amount


# --- Release and sweep --------------------------------------------------------------------------------


RELEASE_CHUNK = 500  # orders locked and released per transaction


def commission_release_due(*, now=None) -> int:
    """Make pending entries available once their order is completed and the hold period has passed.

    `now` is the moment the hold is measured at (tests and the demo pass a later one to let the hold pass);
    `released_at` is when the money actually became available, so it is stamped with the real clock, never a
    moment in the future: the statement dates each credit by it and the payouts cover entries in its order.

    Returns how many entries were released. Works order by order under the order row's lock (RELEASE_CHUNK
    orders per transaction, locked in id order), the lock a refund's reversals are written under: a refund
    applied at the same moment is either released with the original (its pending reversal is seen) or comes
    after it (and finds the original released: a clawback). Without the lock the release could make the
    original available while a refund that had read it as pending wrote a pending reversal beside it: the
    member could withdraw the refunded share, and if the order was then refunded in full that reversal stayed
    on hold for ever, leaving the member paid for goods that came back.
    """
    from shops.models import Order

    now = now or timezone.now()
    released_at = min(now, timezone.now())
    cutoff = now - timedelta(days=settings.COMMISSION_HOLD_DAYS)
    pending = Entry.objects.filter(status=Entry.Status.PENDING)
    due = pending.filter(order__status=Order.Status.COMPLETED, order__completed_at__lte=cutoff)
    released, after = 0, 0
    while True:
        order_ids = list(
            due.filter(order_id__gt=after)
            .order_by("order_id")
            .values_list("order_id", flat=True)
            .distinct()[:RELEASE_CHUNK]
        )
        if not order_ids:
            from networks.ledger import external_release_due

            return released + external_release_due(now=now)  # sales on external networks (issue #12)
        with transaction.atomic():
            # Re-read under the lock: an order refunded meanwhile is no longer completed and is left alone.
            locked = orders_lock(
                Order.objects.filter(pk__in=order_ids, status=Order.Status.COMPLETED, completed_at__lte=cutoff),
                "pk",
                flat=True,
            )
            released += pending.filter(order_id__in=locked).update(
                status=Entry.Status.AVAILABLE, released_at=released_at
            )
        after = order_ids[-1]


def commission_sweep(*, now=None) -> int:
    """Re-queue paid orders that have no split and no queue row, and re-send stale queue rows.

    Returns how many orders were (re)sent. The split itself stays exactly-once whatever this sends.
    """
    from commissions.tasks import commission_apply_refund_task, commission_split_order_task
    from shops.models import Order, Refund

    now = now or timezone.now()
    lost = (
        Order.objects.filter(paid_at__isnull=False, paid_at__gte=now - timedelta(days=90))
        .exclude(Exists(OrderSplit.objects.filter(order=OuterRef("pk"))))
        .exclude(Exists(SplitQueue.objects.filter(order=OuterRef("pk"))))
    )
    missing = list(lost.values_list("pk", flat=True)[:10_000])
    SplitQueue.objects.bulk_create([SplitQueue(order_id=pk) for pk in missing], ignore_conflicts=True)
    stale = SplitQueue.objects.filter(queued_at__lte=now - timedelta(seconds=settings.COMMISSION_SWEEP_AFTER_SECONDS))
    waiting = stale.count() + len(missing)
    batches = -(-waiting // settings.COMMISSION_SPLIT_BATCH)
    for _batch in range(batches):
        commission_split_order_task.delay(None)
    # Refunds of split orders whose reversal message was lost (older than a moment, so not still in flight).
    unapplied = (
        Refund.objects.filter(created_at__gte=now - timedelta(days=90), created_at__lte=now - timedelta(seconds=60))
        .filter(Exists(OrderSplit.objects.filter(order=OuterRef("order"))))
        .exclude(Exists(RefundApplied.objects.filter(refund=OuterRef("pk"))))
        .values_list("pk", flat=True)
    )
    resent = list(unapplied[:10_000])
    for refund_id in resent:
        commission_apply_refund_task.delay(refund_id)
    return waiting + len(resent)


# --- Payouts ------------------------------------------------------------------------------------------


def commission_entries_mark_paid(*, paid_out_by_member: dict[int, Decimal], at) -> int:
    """Label `paid` every released entry that the members' completed payouts cover (SPEC §8); returns how many.

    `paid_out_by_member` is each member's total of paid withdrawals. Coverage is cumulative, in the order the
    money arrived (`commissions.selectors.released_entries`: by release time, then id): an entry is covered when
    the running total of the member's released entries up to and including it is within what was paid out to
    them. Everything before the last such point is covered too, so a negative entry (a clawback, a released
    reversal or adjustment) is covered together with the entries before it, and it can complete the cover of a
    positive entry that did not fit on its own: a 7.20 commission followed by a −1.98 reversal are both paid by a
    payout of the whole balance. An entry only partly covered stays `available`, and so does everything
    released after it, until further payouts cover it in full. A label once `paid` never goes back.

    Called by the payouts app under a lock on the members' wallets; idempotent (a rerun finds nothing more to
    label). The balance does not depend on these labels (released = available + paid); they tell a member which
    commission their payouts covered.
    """
    entries_by_member: dict[int, list] = defaultdict(list)
    for entry_id, member_id, status, amount in released_entries(sorted(paid_out_by_member)).values_list(
        "pk", "beneficiary_id", "status", "amount"
    ):
        entries_by_member[member_id].append((entry_id, status, amount))
    ids = []
    for member_id, entries in entries_by_member.items():
        running, covered = ZERO, 0
        for position, (_entry_id, _status, amount) in enumerate(entries, start=1):
            running += amount
            if running <= paid_out_by_member[member_id]:
                covered = position
        ids += [entry_id for entry_id, status, _amount in entries[:covered] if status == Entry.Status.AVAILABLE]
    return Entry.objects.filter(pk__in=ids).update(status=Entry.Status.PAID, paid_at=at)
