"""The split (SPEC §7): how a paid order becomes ledger rows, exactly once.

1. In the transaction that marks the order paid, `commission_orders_paid` adds it to `SplitQueue` (an
   outbox: if the broker is down, nothing is lost) and asks for `commission_split_order_task` after commit.
2. That task drains the queue in batches: it locks up to `COMMISSION_SPLIT_BATCH` queued orders with SKIP
   LOCKED (so concurrent workers take different orders), locks those orders' rows, splits every line with
   the plan and policy in force at payment time and the upline at that moment, bulk-inserts the entries and
   an `OrderSplit` marker, applies refunds that arrived first, and deletes the queue rows, in one
   transaction. Unique constraints (one split per order, one entry per line, level and kind) make a
   duplicate or concurrent run a no-op. A periodic sweep (`commission_sweep`) re-sends queued orders whose
   message was lost, and refunds whose reversal message was lost.
3. Refunds lock the same order row (the storefront's refund does; both through `shops.locks`), so a refund is
   either seen by the split or applied after it by `commission_apply_refund` (`commissions.services.refunds`),
   never missed.
"""

import logging
from bisect import bisect_left
from collections import defaultdict
from datetime import timedelta
from decimal import Decimal

from django.conf import settings
from django.core.cache import cache
from django.db import connection, transaction
from django.db.models import Exists, OuterRef
from django.utils import timezone

from commissions.calculations import HARD_MAX_LEVELS, ChainMember, line_pool, split_line
from commissions.locks import split_queue_claim
from commissions.models import CommissionEntry, CommissionPlan, CompliancePolicy, OrderSplit, RefundApplied, SplitQueue
from commissions.services.announce import EntryChanges
from commissions.services.refunds import refund_reversals_write
from commissions.services.risk import risk_score_orders
from core.task_helpers import task_request_next, task_request_once
from referrals.selectors import member_uplines
from shops.locks import orders_lock
from shops.models import Order, OrderLine, Refund
from shops.selectors import own_sales_paid_at

logger = logging.getLogger(__name__)

Entry = CommissionEntry

SPLIT_SCHEDULED_KEY = "commissions:split-scheduled"


def commission_orders_paid(*, orders: list[tuple[int, int | None]]) -> None:
    """Called by the storefront inside the transaction that marks orders paid ([(order id, sharer id)]): queue their
    splits.

    The uplines are read now (one query for all the orders) and kept with the queue rows, so a split that runs
    later still pays the chain as it was at payment time, whatever moves or suspensions happen in between.
    """
    sharers = [sharer_id for _order_id, sharer_id in orders if sharer_id]
    chains = member_uplines(sharers, HARD_MAX_LEVELS) if sharers else {}
    SplitQueue.objects.bulk_create(
        [
            SplitQueue(
                order_id=order_id,
                chain=[[member_id, eligible] for member_id, eligible in chains.get(sharer_id, [])],
            )
            for order_id, sharer_id in orders
        ],
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
    task_request_next(commission_split_requested)


def _versions_at(paid_at, plans: list[CommissionPlan], policies: list[CompliancePolicy]):
    """`plan_in_force(paid_at)` and `policy_in_force(paid_at)` for a batch of orders: the same rule over the
    activated plans and the policies read once, newest first."""
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
        risk_score_orders(list(orders))  # flags hold their entries from the start (commissions.services.risk)
        changes = EntryChanges()
        for refund in Refund.objects.filter(order_id__in=orders).order_by("pk"):
            refund_reversals_write(refund, changes=changes)
        # Every entry of these orders is this transaction's (they had no split): one indexed read announces them.
        changes.created = list(Entry.objects.filter(order_id__in=orders).values_list("pk", flat=True))
        changes.announce()
    SplitQueue.objects.filter(order_id__in=order_ids).delete()
    return len(orders)


def _split_orders(orders: dict, snapshots: dict) -> None:

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
        .values_list("pk", "order_id", "net_amount", "commission_rate", "discount")
    ):
        lines_by_order[line[1]].append(line)

    now = timezone.now()
    rows, markers = [], []
    chains = {}
    for order_id, (_paid_at, sharer_id, _self) in orders.items():
        links = snapshots.get(order_id)
        chains[order_id] = current.get(sharer_id, []) if links is None else links
    own_sales = _upline_own_sales(orders, chains, plans, policies)
    for order_id, (paid_at, _sharer_id, is_self_purchase) in orders.items():
        plan, policy = _versions_at(paid_at, plans, policies)
        markers.append(OrderSplit(order_id=order_id, plan=plan, policy=policy, created_at=now))
        chain = [
            ChainMember(member_id, eligible, own_sales.get((order_id, member_id)) if index else None)
            for index, (member_id, eligible) in enumerate(chains[order_id])
        ]
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


def _upline_own_sales(orders: dict, chains: dict, plans: list, policies: list) -> dict[tuple[int, int], int]:
    """{(order id, member id): own sales} of every upline (chain position 2 and up) whose own sales a batch order's
    policy asks for (`upline_min_own_sales` > 0): those paid in the policy's `upline_qualification_days` before the
    order was paid (`shops.selectors.own_sales_paid_at`). One query for the whole batch, none when no policy asks.

    Only sales paid before the order count, so the answer does not depend on when the split runs, except for a sale
    refunded in full in between (it stops counting)."""
    wanted = []  # (order id, member id, since, until)
    for order_id, (paid_at, _sharer, _self) in orders.items():
        _plan, policy = _versions_at(paid_at, plans, policies)
        if policy is None or not policy.upline_min_own_sales:
            continue
        since = paid_at - timedelta(days=policy.upline_qualification_days)
        wanted.extend((order_id, member_id, since, paid_at) for member_id, _eligible in chains[order_id][1:])
    if not wanted:
        return {}
    paid = own_sales_paid_at(
        {member_id for _order, member_id, _since, _until in wanted},
        min(since for _order, _member, since, _until in wanted),
        max(until for _order, _member, _since, until in wanted),
    )
    counts = {}
    for order_id, member_id, since, until in wanted:
        times = paid.get(member_id, [])
        counts[(order_id, member_id)] = bisect_left(times, until) - bisect_left(times, since)
    return counts


def _line_rows(line, chain, versions, is_self_purchase, now) -> list[tuple]:
    """The ledger rows of one line's split, as tuples in `SPLIT_COLUMNS` order."""
    line_id, order_id, net_amount, commission_rate, discount = line
    plan, policy, plan_id, policy_id = versions
    # A coupon's discount is funded from the pool before the split; the payout cap is on what the buyer paid.
    pool = line_pool(net_amount, commission_rate, discount)
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
    if split.unqualified_levels and not note:
        # The platform line says why an upline's share is not a member's: too few own sales (issue #25).
        levels = ", ".join(str(level) for level in split.unqualified_levels)
        note = f"upline without the own sales the policy asks: level {levels}"
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


def commission_sweep(*, now=None) -> int:
    """Re-queue paid orders that have no split and no queue row, and re-send stale queue rows.

    Returns how many orders were (re)sent. The split itself stays exactly-once whatever this sends.
    """
    from commissions.tasks import commission_apply_refund_task, commission_split_order_task

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
