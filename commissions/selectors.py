"""Reads of the commission ledger for the member dashboard and the staff screens, the plan and policy in force, and
what a member would earn on a product (the earning previews of the owner's shop pages).

A member only ever reads entries whose beneficiary they are: every member selector filters on it, so another
member's entry is simply not found (the views answer 404).
"""

from bisect import bisect_left
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from decimal import Decimal

from django.conf import settings
from django.core.cache import cache
from django.db.models import Max, OuterRef, Q, QuerySet, Subquery, Sum
from django.db.models.functions import Coalesce, TruncDate
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from commissions.calculations import (
    CAP_MAX_PAYOUT_RATIO,
    CAP_MAX_TOTAL_RATE,
    HARD_MAX_LEVELS,
    ChainMember,
    Plan,
    Policy,
    line_pool,
    split_line,
)
from commissions.holds import under_review
from commissions.models import CommissionEntry, CommissionPlan, CompliancePolicy, OrderSplit, SplitQueue
from core.i18n import localized, translation_paths
from core.money import CENT, ROUND_DOWN, ZERO, money_sum, quantize_money
from networks.models import ExternalProduct
from networks.selectors import external_commission_pool
from referrals.models import Member
from shops.models import Order, OrderLine, RefundLine
from shops.selectors import sales_by_sharer

Entry = CommissionEntry
ADJUSTMENT_KINDS = (Entry.Kind.REVERSAL, Entry.Kind.CLAWBACK)
MEMBER_LEVELS = tuple(range(1, HARD_MAX_LEVELS + 1))


# --- Member dashboard ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class LedgerTotals:
    """The ledger's side of a member's balance (payouts.selectors.member_balance adds the withdrawals to it).

    `pending`: on hold: entries not released yet (commission less the reversals of refunds before release).
    `released`: every entry released so far, `available` or already `paid`: commission, released reversals,
    network adjustments and clawbacks (negative), so it can be negative. `clawed_back`: the clawbacks (refunds
    after release) as a positive amount, already subtracted in `released`.
    """

    pending: Decimal
    released: Decimal
    clawed_back: Decimal


RELEASED = (Entry.Status.AVAILABLE, Entry.Status.PAID)


def member_ledger_totals(member) -> LedgerTotals:
    """One aggregate query over the member's entries (`member` or its id)."""
    member_id = getattr(member, "pk", member)
    totals = Entry.objects.filter(beneficiary_id=member_id).aggregate(
        pending=Sum("amount", filter=Q(status=Entry.Status.PENDING), default=ZERO),
        released=Sum("amount", filter=Q(status__in=RELEASED), default=ZERO),
        clawed_back=Sum("amount", filter=Q(kind=Entry.Kind.CLAWBACK), default=ZERO),
    )
    return LedgerTotals(
        pending=money_sum(totals["pending"]),
        released=money_sum(totals["released"]),
        clawed_back=money_sum(-totals["clawed_back"]),
    )


def member_earnings_by_day(member, start: datetime, end: datetime) -> dict:
    """{calendar day in the current time zone: the member's entries created that day, signed} over [start, end):
    one query grouped in SQL (reversals and clawbacks subtract). Days without entries are absent."""
    zone = timezone.get_current_timezone()
    return dict(
        Entry.objects.filter(beneficiary=member, created_at__gte=start, created_at__lt=end)
        .annotate(day=TruncDate("created_at", tzinfo=zone))
        .order_by()
        .values("day")
        .annotate(amount=Sum("amount"))
        .values_list("day", "amount")
    )


@dataclass(frozen=True)
class LevelEarnings:
    """What a member's entries at one commission level hold, by status: level 1 is their own sales, level k the
    sales of the members k - 1 links below them. Reversals and clawbacks are netted in, as in `LedgerTotals`, so
    the levels add up to the balance's pending and released (available + paid) figures."""

    level: int
    pending: Decimal
    available: Decimal
    paid: Decimal

    @property
    def total(self) -> Decimal:
        return self.pending + self.available + self.paid


def member_earnings_by_level(member, levels: int) -> list[LevelEarnings]:
    """The member's earnings at each commission level 1..`levels` (the policy in force's `max_levels`), zeros
    included, and at any other level they hold entries at (paid under an earlier policy: never hidden), by level.
    One query grouped by level and status over the member's entries (the (beneficiary, status) index)."""
    rows = (
        Entry.objects.filter(beneficiary=member, status__in=(Entry.Status.PENDING, *RELEASED))
        .order_by()
        .values("level", "status")
        .annotate(amount=Sum("amount"))
        .values_list("level", "status", "amount")
    )
    by_level: dict[int, dict[str, Decimal]] = {level: {} for level in range(1, levels + 1)}
    for level, status, amount in rows:
        by_level.setdefault(level, {})[status] = money_sum(amount)
    return [
        LevelEarnings(
            level=level,
            pending=amounts.get(Entry.Status.PENDING, ZERO),
            available=amounts.get(Entry.Status.AVAILABLE, ZERO),
            paid=amounts.get(Entry.Status.PAID, ZERO),
        )
        for level, amounts in sorted(by_level.items())
    ]


def released_entries(member_ids) -> QuerySet:
    """The members' released entries (`available` or `paid`) in the order the money arrived: by release time
    (creation time for the rare entry released without one), then id. The statement lists them in this order and
    the payouts cover them in this order."""
    return (
        Entry.objects.filter(beneficiary_id__in=member_ids, status__in=RELEASED)
        .annotate(moved_at=Coalesce("released_at", "created_at"))
        .order_by("beneficiary_id", "moved_at", "pk")
    )


def member_commission_entries(member, status: str | None = None, level: int | None = None) -> QuerySet:
    """The member's entries, newest first, with what a list row shows (order number, line title) joined in.

    An unknown status or level gives no rows, never an error.
    """
    entries = (
        Entry.objects.filter(beneficiary=member)
        .select_related("order", "order_line", "external_line__network")
        .annotate(line_title=localized("order_line__product__title"))  # the product in the member's language
        .annotate(is_under_review=under_review())  # held by a risk flag (issue #25): "Under review", never why
    )
    # Only what the member may see: the buyer's name and contact stay in the database (and the network's raw
    # report of an external line too).
    entries = entries.only(
        "pk",
        "order__number",
        "order_line__title",
        "external_line__external_order_id",
        "external_line__line_id",
        "external_line__title",
        "external_line__network__code",
        *translation_paths("external_line__network__name"),
        "level",
        "kind",
        "amount",
        "status",
        "capped_by",
        "created_at",
        "beneficiary_id",
    )
    if status:
        entries = entries.filter(status=status)
    if level is not None:
        entries = entries.filter(level=level) if level in MEMBER_LEVELS else entries.none()
    return entries.order_by("-created_at", "-pk")


def member_order_commissions(member, order_ids) -> dict[int, Decimal]:
    """{order id: what `member` earns on it, net}: their entries on each of our own orders in `order_ids`
    (commission less reversals and clawbacks), whatever their status; orders they earn nothing on are absent.
    One grouped query."""
    rows = (
        Entry.objects.filter(beneficiary=member, order_id__in=list(order_ids))
        .order_by()
        .values("order_id")
        .annotate(amount=Sum("amount"))
        .values_list("order_id", "amount")
    )
    return {order_id: money_sum(amount) for order_id, amount in rows}


def member_order_entries(member, order_id: int) -> list[Entry]:
    """`member`'s entries on one of our own orders, oldest first, with the line each is for: why the amount of
    `member_order_commissions` is what it is."""
    return list(
        Entry.objects.filter(beneficiary=member, order_id=order_id)
        .select_related("order_line")
        .only("pk", "order_line__title", "level", "kind", "amount", "status", "capped_by", "created_at")
        .annotate(line_title=localized("order_line__product__title"))
        .order_by("created_at", "pk")
    )


def _refunded_line_amount() -> Subquery:
    """For a reversal or clawback: how much of its line its refund paid back (None for a commission)."""
    return Subquery(
        RefundLine.objects.filter(refund_id=OuterRef("refund_id"), order_line_id=OuterRef("order_line_id")).values(
            "amount"
        )[:1]
    )


def member_commission_entry(member, entry_id: int) -> Entry | None:
    """The member's own entry with everything its explanation needs, or None (also for anybody else's)."""
    return (
        Entry.objects.select_related(
            "order", "order_line", "external_line__network", "plan", "policy", "rolled_up_from__user"
        )
        .defer("external_line__raw")
        .filter(beneficiary=member, pk=entry_id)
        .annotate(
            refunded_line_amount=_refunded_line_amount(),
            line_title=localized("order_line__product__title"),
            is_under_review=under_review(),
        )
        .first()
    )


def member_commission_entry_related(entry: Entry) -> list[Entry]:
    """The other entries of the same beneficiary, line and level (the commission, its reversals and clawbacks, or
    for an external line its adjustments), oldest first, each with `refunded_line_amount`: how much of this line
    its refund paid back (None for an external line: the network reports no refunded amount)."""
    if entry.external_line_id is not None:
        same_line = Q(external_line_id=entry.external_line_id)
    else:
        same_line = Q(order_line_id=entry.order_line_id)
    return list(
        Entry.objects.filter(same_line, beneficiary_id=entry.beneficiary_id, level=entry.level)
        .exclude(pk=entry.pk)
        .annotate(refunded_line_amount=_refunded_line_amount())
        .order_by("created_at", "pk")
    )


@dataclass(frozen=True)
class StatusStep:
    label: str
    at: datetime


def commission_entry_history(entry: Entry) -> list[StatusStep]:
    """What happened to an entry, in time order, from its own timestamps."""
    steps = [
        (_("Created"), entry.created_at),
        (_("Released (available)"), entry.released_at),
        (_("Paid out"), entry.paid_at),
        (_("Reversed"), entry.reversed_at),
    ]
    return sorted((StatusStep(str(label), at) for label, at in steps if at is not None), key=lambda step: step.at)


def commission_entry_before_cap(entry: Entry) -> Decimal:
    """The level's share as the plan rate alone would give it (pool × rate, rounded down), before any cap."""
    return quantize_money(entry.base * entry.rate, ROUND_DOWN)


# --- Staff: one order's whole split -------------------------------------------------------------------


@dataclass(frozen=True)
class RefundOfLine:
    """One refund of one line: the refunded amount and the reversal or clawback entries it caused."""

    refund: object
    quantity: int
    amount: Decimal
    entries: list


@dataclass(frozen=True)
class LineSplit:
    line: object
    pool: Decimal  # from the entries when split, else what the pool would be
    commissions: list  # kind=commission entries, by level
    platform: Entry | None
    member_total: Decimal
    refunds: list[RefundOfLine] = field(default_factory=list)
    adjustment_total: Decimal = ZERO  # reversals and clawbacks (negative)

    @property
    def is_split(self) -> bool:
        return self.platform is not None

    @property
    def reconciles(self) -> bool:
        """sum(member shares) + platform remainder == pool."""
        return self.is_split and self.member_total + self.platform.amount == self.pool

    @property
    def member_net(self) -> Decimal:
        return self.member_total + self.adjustment_total


@dataclass(frozen=True)
class OrderSplitReport:
    order: object
    split: OrderSplit | None
    is_queued: bool
    lines: list[LineSplit]

    @property
    def reconciles(self) -> bool:
        return bool(self.lines) and all(line.reconciles for line in self.lines)

    @property
    def pool_total(self) -> Decimal:
        return sum((line.pool for line in self.lines), ZERO)

    @property
    def member_total(self) -> Decimal:
        return sum((line.member_total for line in self.lines), ZERO)

    @property
    def platform_total(self) -> Decimal:
        return sum((line.platform.amount for line in self.lines if line.platform), ZERO)

    @property
    def adjustment_total(self) -> Decimal:
        return sum((line.adjustment_total for line in self.lines), ZERO)


def order_commission_split(order_id: int) -> OrderSplitReport | None:
    """Everything the ledger holds about one order, line by line (a fixed number of queries), or None."""
    order = Order.objects.select_related("shop", "sharer__user").filter(pk=order_id).first()
    if order is None:
        return None
    split = OrderSplit.objects.select_related("plan", "policy").filter(order=order).first()
    is_queued = split is None and SplitQueue.objects.filter(order=order).exists()
    lines = list(OrderLine.objects.filter(order=order).order_by("pk"))
    entries_by_line = defaultdict(list)
    for entry in (
        Entry.objects.filter(order=order)
        .select_related("beneficiary__user", "rolled_up_from__user", "refund")
        .order_by("level", "pk")
    ):
        entries_by_line[entry.order_line_id].append(entry)
    refund_lines_by_line = defaultdict(list)
    for refund_line in RefundLine.objects.filter(order_line__order=order).select_related("refund").order_by("pk"):
        refund_lines_by_line[refund_line.order_line_id].append(refund_line)

    reports = []
    for line in lines:
        entries = entries_by_line[line.pk]
        commissions = [e for e in entries if e.kind == Entry.Kind.COMMISSION]
        platform = next((e for e in entries if e.kind == Entry.Kind.PLATFORM), None)
        adjustments = [e for e in entries if e.kind in ADJUSTMENT_KINDS]
        refunds = [
            RefundOfLine(
                refund=refund_line.refund,
                quantity=refund_line.quantity,
                amount=refund_line.amount,
                entries=[e for e in adjustments if e.refund_id == refund_line.refund_id],
            )
            for refund_line in refund_lines_by_line[line.pk]
        ]
        pool = entries[0].base if entries else line_pool(line.net_amount, line.commission_rate, line.discount)
        reports.append(
            LineSplit(
                line=line,
                pool=pool,
                commissions=commissions,
                platform=platform,
                member_total=sum((e.amount for e in commissions), ZERO),
                refunds=refunds,
                adjustment_total=sum((e.amount for e in adjustments), ZERO),
            )
        )
    return OrderSplitReport(order=order, split=split, is_queued=is_queued, lines=reports)


# --- Staff: policy and plans -------------------------------------------------------------------------


def policy_active() -> CompliancePolicy | None:
    return CompliancePolicy.objects.filter(is_active=True).first()


def order_id_by_reference(reference: str) -> int | None:
    """The id of the order with this number, else of the order with this id; None if neither exists."""
    reference = (reference or "").strip()
    if not reference:
        return None
    order_id = Order.objects.filter(number=reference).values_list("pk", flat=True).first()
    if order_id is None and reference.isdigit() and len(reference) <= 18:
        order_id = Order.objects.filter(pk=int(reference)).values_list("pk", flat=True).first()
    return order_id


def plans_with_in_force(plans: QuerySet, at=None) -> QuerySet:
    """Annotate each plan with `in_force_id`, the id of the plan in force at `at` (now), in the same query."""
    at = at or timezone.now()
    in_force = (
        CommissionPlan.objects.filter(is_activated=True, effective_from__lte=at)
        .order_by("-effective_from", "-version")
        .values("pk")[:1]
    )
    return plans.annotate(in_force_id=Subquery(in_force))


# --- The plan and policy in force; earning previews ------------------------------------------------------------
# What a member would earn on a product, for the owner's shop pages (members/). Here, below the pages and above
# shops and networks, so that neither of those imports commissions.


def policy_in_force(at=None) -> CompliancePolicy | None:
    """The policy in force at `at` (default now): the latest in force from then or earlier. The one rule for it,
    with `plan_in_force` (the split applies the same rule to a batch of orders at once: `services.split`)."""
    at = at or timezone.now()
    return CompliancePolicy.objects.filter(effective_from__lte=at).order_by("-effective_from", "-version").first()


def plan_in_force(at=None) -> CommissionPlan | None:
    """The plan in force at `at` (default now): the latest activated plan in force from then or earlier."""
    at = at or timezone.now()
    return (
        CommissionPlan.objects.filter(is_activated=True, effective_from__lte=at)
        .order_by("-effective_from", "-version")
        .first()
    )


@dataclass(frozen=True)
class EarningTerms:
    """The plan and compliance policy in force, as the pure calculation takes them."""

    plan: Plan
    policy: Policy


def earning_terms_in_force(at=None) -> EarningTerms | None:
    """The plan and policy in force (two queries), or None when either is missing: then nobody earns anything
    and a page shows no estimate. Read once per page, then call `sharer_earning` for each product."""
    plan, policy = plan_in_force(at), policy_in_force(at)
    if plan is None or policy is None:
        return None
    return EarningTerms(plan=plan.as_calculation(), policy=policy.as_calculation())


def _sharer_share(terms: EarningTerms, *, pool: Decimal, net_amount: Decimal) -> Decimal:
    """Level 1's share of `pool` under `terms`: a one-member eligible chain, not a self-purchase, every cap applied
    exactly as the real split applies it."""
    split = split_line(
        pool=pool,
        net_amount=net_amount,
        chain=[ChainMember(member_id=0, is_eligible=True)],  # "you": the id plays no part in the amounts
        plan=terms.plan,
        policy=terms.policy,
        is_self_purchase=False,
    )
    return next((share.amount for share in split.shares if share.level == 1), ZERO)


def sharer_earning(terms: EarningTerms, *, price: Decimal, commission_rate: Decimal) -> Decimal:
    """What the sharer (level 1) earns on one unit sold at `price`, under `terms`: the line's pool split with a
    one-member eligible chain, not a self-purchase, every cap applied exactly as the real split applies it."""
    return _sharer_share(terms, pool=line_pool(price, commission_rate), net_amount=price)


def external_earning(terms: EarningTerms, product: ExternalProduct) -> Decimal:
    """What the sharer (level 1) earns on one unit of `product` under `terms` (read once per page): the estimated
    pool split as the ledger splits an external line, with a one-member eligible chain and the paid amount (price
    after coupon) as the base of the payout ratio."""
    return _sharer_share(terms, pool=external_commission_pool(product), net_amount=product.price_after_coupon)


# --- One entry's cap ---------------------------------------------------------------------------------------------


def commission_entry_cap_limit(entry: Entry) -> Decimal | None:
    """The limit of the policy cap that bound `entry` (its `capped_by`), as a rate; None when no cap bound it."""
    policy = entry.policy
    if policy is None:
        return None
    return {CAP_MAX_TOTAL_RATE: policy.max_total_rate, CAP_MAX_PAYOUT_RATIO: policy.max_payout_ratio}.get(
        entry.capped_by
    )


# --- Leaderboards ------------------------------------------------------------------------------------------------
# Who sold and who earned most in a week or a month. Ids and amounts only: the members' pages decide what of each
# member to show (their name and shop only if they chose to be named).

LEADERBOARD_SALES = "sales"
LEADERBOARD_EARNINGS = "earnings"
LEADERBOARD_METRICS = (LEADERBOARD_SALES, LEADERBOARD_EARNINGS)
LEADERBOARD_PERIOD_CHOICES = (
    ("week", _("This week")),
    ("last-week", _("Last week")),
    ("month", _("This month")),
    ("last-month", _("Last month")),
)
LEADERBOARD_PERIODS = tuple(key for key, _label in LEADERBOARD_PERIOD_CHOICES)
LEADERBOARD_METRIC_CHOICES = ((LEADERBOARD_SALES, _("Sales")), (LEADERBOARD_EARNINGS, _("Earnings")))
# A board is computed once per period and metric, then read from the cache for this long: it may lag a sale by
# up to five minutes, and a page view costs no ledger query.
LEADERBOARD_CACHE_SECONDS = 300


def leaderboard_bounds(period: str, today: date) -> tuple[datetime, datetime]:
    """[start, end) of a leaderboard period in the current time zone (Asia/Shanghai by default): this or last
    calendar week (Monday to Sunday) or month, as of `today`."""
    if period in ("week", "last-week"):
        first = today - timedelta(days=today.weekday() + (7 if period == "last-week" else 0))
        after = first + timedelta(days=7)
    elif period in ("month", "last-month"):
        first = today.replace(day=1)
        if period == "last-month":
            first = (first - timedelta(days=1)).replace(day=1)
        after = (first + timedelta(days=32)).replace(day=1)
    else:
        raise ValueError(f"unknown leaderboard period {period!r}")
    zone = timezone.get_current_timezone()
    return (
        timezone.make_aware(datetime.combine(first, time.min), zone),
        timezone.make_aware(datetime.combine(after, time.min), zone),
    )


def earnings_by_beneficiary(since: datetime, until: datetime) -> list[tuple[int, Decimal]]:
    """[(member id, earnings)] of every active member whose entries created in [since, until) come to more than
    zero, signed as on the overview's chart (`member_earnings_by_day`: reversals and clawbacks subtract), in no
    particular order (a suspended member is on no leaderboard). One grouped query over that period's member entries
    only (the partial index on `created_at`)."""
    return list(
        Entry.objects.filter(
            beneficiary__isnull=False,
            beneficiary__status=Member.Status.ACTIVE,
            created_at__gte=since,
            created_at__lt=until,
        )
        .order_by()
        .values("beneficiary")
        .annotate(amount=Sum("amount"))
        .filter(amount__gt=0)
        .values_list("beneficiary", "amount")
    )


@dataclass(frozen=True)
class Standing:
    rank: int  # 1 + how many members have more: members with the same amount share a rank
    member_id: int
    amount: Decimal


@dataclass(frozen=True)
class Standings:
    """Every member with more than zero in a period, best first (ties by member id). Compact, to be cached: the
    ids, and the amounts as negated cents (ascending, so a rank is one bisection)."""

    member_ids: tuple[int, ...]
    keys: tuple[int, ...]

    def __len__(self) -> int:
        return len(self.member_ids)

    def _standing(self, index: int) -> Standing:
        key = self.keys[index]
        return Standing(
            rank=bisect_left(self.keys, key) + 1, member_id=self.member_ids[index], amount=Decimal(-key) * CENT
        )

    def top(self, size: int) -> list[Standing]:
        return [self._standing(index) for index in range(min(size, len(self.member_ids)))]

    def of(self, member_id: int) -> Standing | None:
        """The member's standing, or None when they have nothing in the period."""
        try:
            return self._standing(self.member_ids.index(member_id))
        except ValueError:
            return None


def leaderboard_standings(metric: str, since: datetime, until: datetime) -> Standings:
    """The standings of `metric` (sales as sharer: `shops.selectors.sales_by_sharer`, or ledger earnings:
    `earnings_by_beneficiary`) over [since, until). One grouped query over that period only, then cached for
    `LEADERBOARD_CACHE_SECONDS` per metric and period (every member's page reads the same copy)."""
    if metric not in LEADERBOARD_METRICS:
        raise ValueError(f"unknown leaderboard metric {metric!r}")
    cache_key = f"commissions:leaderboard:{metric}:{since.timestamp():.0f}:{until.timestamp():.0f}"
    cached = cache.get(cache_key)
    if cached is not None:
        return Standings(*cached)
    rows = (sales_by_sharer if metric == LEADERBOARD_SALES else earnings_by_beneficiary)(since, until)
    ranked = sorted((-int(money_sum(amount) / CENT), member_id) for member_id, amount in rows)
    standings = Standings(
        member_ids=tuple(member_id for _key, member_id in ranked), keys=tuple(key for key, _id in ranked)
    )
    cache.set(cache_key, (standings.member_ids, standings.keys), LEADERBOARD_CACHE_SECONDS)
    return standings


@dataclass(frozen=True)
class PendingRelease:
    """When a member's pending commission becomes available (the account-closure page, issue #24)."""

    amount: Decimal
    releases_by: datetime | None  # the last release of the entries whose order is completed; None if none is
    waiting_for_completion: int  # pending entries whose sale is not completed yet (no date can be given)


def member_pending_release(member) -> PendingRelease:
    """The member's pending commission and when it releases: an entry of a completed order releases
    COMMISSION_HOLD_DAYS after the completion (commissions.services.release); one whose sale is not completed yet
    (or an external network's line, released on the network's word) has no date. Two queries."""
    pending = Entry.objects.filter(beneficiary=member, status=Entry.Status.PENDING)
    totals = pending.aggregate(
        amount=Sum("amount", default=ZERO),
        completed_last=Max("order__completed_at", filter=Q(order__status=Order.Status.COMPLETED)),
    )
    waiting = pending.exclude(order__status=Order.Status.COMPLETED).count()
    last = totals["completed_last"]
    return PendingRelease(
        amount=money_sum(totals["amount"]),
        releases_by=last + timedelta(days=settings.COMMISSION_HOLD_DAYS) if last else None,
        waiting_for_completion=waiting,
    )
