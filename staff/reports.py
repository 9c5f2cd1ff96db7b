"""The compliance report (SPEC §7): what the ledger paid in a period, measured against the caps.

Reads only. Every figure is an aggregate computed in the database (a fixed number of queries, whatever the
number of orders); the checks group per line in SQL where a rule is per line. Money is Decimal throughout:
SQLite returns sums without their scale, so every sum goes through `core.money.money_sum`.

The period is a range of calendar days, both inclusive, in the current time zone; an order belongs to it when
its `paid_at` falls on one of those days, and everything the ledger holds for its lines (the split, and the
reversals and clawbacks of later refunds) counts with it.

Sales reported by external affiliate networks (issue #12) count the same way: an external line in the ledger
(split at least once) belongs to the period when the network says it was paid on one of its days. Its sale is the
amount the buyer paid (the base of its payout-ratio cap), refunded in full when the network reports it invalid; its
entries (the split, then adjustments, reversals and clawbacks as the network changes its word) are member
commission under the same caps. A line whose tracking id matched nobody is not in the ledger and not counted.
"""

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from decimal import Decimal

from django.db.models import (
    Count,
    DateField,
    F,
    IntegerField,
    Max,
    Min,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Sum,
    Value,
)
from django.db.models.functions import Coalesce, TruncMonth
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from commissions.calculations import CAP_MAX_PAYOUT_RATIO, CAP_MAX_TOTAL_RATE, DEFAULT_MAX_PAYOUT_RATIO, HARD_MAX_LEVELS
from commissions.models import CommissionEntry, CommissionPlan, CompliancePolicy
from commissions.presets import Preset, preset_configured, preset_get
from commissions.selectors import policy_in_force
from core.i18n import localized
from core.money import ROUND_HALF_UP, ZERO, money_sum, quantize_money
from networks.models import ExternalOrder
from referrals.selectors import tree_depth_counts
from shops.models import OrderLine

Entry = CommissionEntry
COMMISSION = Entry.Kind.COMMISSION
ADJUSTMENT_KINDS = (Entry.Kind.REVERSAL, Entry.Kind.CLAWBACK)
# An external line's share moves when the network changes the commission: an adjustment of either sign.
NETWORK_CHANGE_KINDS = (*ADJUSTMENT_KINDS, Entry.Kind.ADJUSTMENT)
MEMBER_KINDS = (COMMISSION, *NETWORK_CHANGE_KINDS)
# What a line's members were paid before any refund: the split, plus the network's later changes of the commission
# on an external line (our own lines have no adjustments).
PAID_KINDS = (COMMISSION, Entry.Kind.ADJUSTMENT)
MEMBER_LEVELS = tuple(range(1, HARD_MAX_LEVELS + 1))
OFFENDERS_SHOWN = 20
CAPPED_SHOWN = 200
TOP_EARNERS = 20
RATIO_STEP = Decimal("0.0001")  # ratios are fractions with 4 places, like rates (SPEC §3)
# A ratio (4 places) times an amount (2 places) has at most 6 places, so a whole number of cents is above
# floor_to_cent(ratio × net) exactly when it is above ratio × net; half a millionth absorbs SQLite's float noise.
RATIO_TOLERANCE = Decimal("0.0000005")

CAP_LABELS = {
    CAP_MAX_TOTAL_RATE: gettext_lazy("max total rate"),
    CAP_MAX_PAYOUT_RATIO: gettext_lazy("max payout ratio"),
}


def ratio(part: Decimal, whole: Decimal) -> Decimal | None:
    """part ÷ whole as a fraction with 4 places (half-up), or None when there is nothing to divide by."""
    if not whole:
        return None
    return (part / whole).quantize(RATIO_STEP, rounding=ROUND_HALF_UP)


def percent(fraction: Decimal | None) -> Decimal | None:
    return None if fraction is None else (fraction * 100).quantize(Decimal("0.01"))


def _percent_of(ratio_field: str) -> property:
    """A read-only property: the result's `ratio_field` (a fraction) as a percentage, for the templates."""

    def get(self) -> Decimal | None:
        return percent(getattr(self, ratio_field))

    return property(get)


def period_bounds(date_from: date, date_to: date) -> tuple[datetime, datetime]:
    """[start, end): midnight of `date_from` to midnight after `date_to`, in the current time zone."""
    tz = timezone.get_current_timezone()
    start = timezone.make_aware(datetime.combine(date_from, time.min), tz)
    end = timezone.make_aware(datetime.combine(date_to + timedelta(days=1), time.min), tz)
    return start, end


def _user_label(first_name: str | None, last_name: str | None, email: str | None) -> str:
    name = f"{first_name or ''} {last_name or ''}".strip()
    return name or (email or "")


# --- results -----------------------------------------------------------------------------------------------------


class _PayoutPercents:
    """For the results that carry `payout_ratio` and `gross_payout_ratio`."""

    payout_percent = _percent_of("payout_ratio")
    gross_payout_percent = _percent_of("gross_payout_ratio")


@dataclass(frozen=True)
class PolicyVersion:
    version: int
    max_levels: int
    max_total_rate: Decimal
    max_payout_ratio: Decimal
    max_payout_ratio_published: Decimal | None  # a version published above the legal ceiling, before it existed
    self_purchase_earns: bool
    ineligible_share: str  # the label
    effective_from: datetime
    created_by: str
    note: str
    is_in_force_at_start: bool
    preset: str = ""  # the label of the preset it was published under; empty: published before presets
    upline_min_own_sales: int = 0
    upline_qualification_days: int = 30


@dataclass(frozen=True)
class RulesUnderPreset:
    """A policy or plan version in force now (or a plan scheduled) measured against the deployment's preset."""

    kind: str  # "policy" or "plan"
    version: int
    levels: int
    complies: bool


@dataclass(frozen=True)
class PresetStatus:
    """The jurisdiction preset this platform was set up with (COMPLIANCE_PRESET), what it allows, and whether the
    policy and plans in force now keep within it. "Now", not the period: it is the configuration an auditor asks
    about; the period's sales are measured by the checks against the policy each was split with."""

    preset: Preset
    rules: list[RulesUnderPreset]

    @property
    def complies(self) -> bool:
        return all(rules.complies for rules in self.rules)

    @property
    def breaking(self) -> list[RulesUnderPreset]:
        return [rules for rules in self.rules if not rules.complies]


@dataclass(frozen=True)
class PlanVersion:
    version: int
    name: str
    rates: tuple[Decimal, ...]
    effective_from: datetime
    created_by: str
    activated_by: str
    activated_at: datetime | None
    is_in_force_at_start: bool


@dataclass(frozen=True)
class DepthCount:
    depth: int  # 1 = a root (MPTT level 0)
    members: int


@dataclass(frozen=True)
class LevelsPaidCount:
    levels: int  # distinct member levels paid more than 0.00 on one line
    lines: int


@dataclass(frozen=True)
class LevelFigures(_PayoutPercents):
    level: int
    gross_commission: Decimal  # before refunds: kind commission (and an external line's adjustments)
    member_commission: Decimal  # commission + reversals + clawbacks
    lines_paid: int  # lines with a commission entry above 0.00 at this level
    payout_ratio: Decimal | None  # member commission ÷ net sales
    gross_payout_ratio: Decimal | None  # gross commission ÷ gross sales
    share: Decimal | None  # of all member commission

    share_percent = _percent_of("share")


@dataclass(frozen=True)
class MonthFigures(_PayoutPercents):
    month: date  # the first day of the month
    gross_sales: Decimal
    net_sales: Decimal
    gross_commission: Decimal
    member_commission: Decimal
    payout_ratio: Decimal | None
    gross_payout_ratio: Decimal | None


@dataclass(frozen=True)
class CappedEntry:
    entry_id: int
    order_id: int | None  # None for an external line
    order_number: str  # for an external line: the network's name and its order id
    order_line_id: int | None
    level: int
    beneficiary_id: int | None
    beneficiary: str
    beneficiary_email: str
    base: Decimal
    rate: Decimal
    amount: Decimal
    uncapped_amount: Decimal  # base × rate, rounded down: what the plan alone would have paid
    capped_by: str
    cap_label: str
    cap_rate: Decimal | None  # the policy's max_total_rate (of the pool) or max_payout_ratio (of the net amount)
    line_net_amount: Decimal  # for an external line: the amount the buyer paid
    external_line_id: int | None = None


@dataclass(frozen=True)
class TopEarner:
    member_id: int
    name: str
    email: str
    invite_code: str
    depth: int
    gross_commission: Decimal
    member_commission: Decimal
    by_level: tuple[Decimal, ...]  # member commission at levels 1..HARD_MAX_LEVELS


@dataclass(frozen=True)
class Offender:
    order_number: str  # for an external line: the network's name and its order id
    order_line_id: int | None  # None for an external line
    entry_id: int | None  # None when the offence is a whole line's
    detail: str
    external_line_id: int | None = None


@dataclass(frozen=True)
class Check:
    code: str
    name: str
    passed: bool
    evidence: str
    offenders: list[Offender] = field(default_factory=list)
    offender_count: int = 0


@dataclass(frozen=True)
class ComplianceReport(_PayoutPercents):
    date_from: date
    date_to: date
    policies: list[PolicyVersion]
    plans: list[PlanVersion]
    depths: list[DepthCount]
    levels_paid: list[LevelsPaidCount]
    lines_split: int
    max_level_paid: int
    gross_sales: Decimal
    refunded_sales: Decimal
    net_sales: Decimal
    gross_commission: Decimal
    member_commission: Decimal
    payout_ratio: Decimal | None
    gross_payout_ratio: Decimal | None
    levels: list[LevelFigures]
    network_gross_sales: Decimal  # of gross_sales: what external networks reported (lines in the ledger)
    network_net_sales: Decimal  # of net_sales
    months: list[MonthFigures]
    own_sales_commission: Decimal  # level 1: on the member's own sales
    others_sales_commission: Decimal  # level >= 2: on sales by their downline
    own_sales_share: Decimal | None
    others_sales_share: Decimal | None
    capped_count: int
    capped_entries: list[CappedEntry]  # the first CAPPED_SHOWN
    top_earners: list[TopEarner]
    checks: list[Check]
    preset_status: PresetStatus | None = None

    @property
    def all_checks_passed(self) -> bool:
        return all(check.passed for check in self.checks)

    own_sales_percent = _percent_of("own_sales_share")
    others_sales_percent = _percent_of("others_sales_share")

    @property
    def capped_shown(self) -> int:
        return len(self.capped_entries)

    @property
    def members_total(self) -> int:
        return sum(depth.members for depth in self.depths)


# --- querysets ---------------------------------------------------------------------------------------------------


def _paid_in(prefix: str, start: datetime, end: datetime) -> Q:
    return Q(**{f"{prefix}paid_at__gte": start, f"{prefix}paid_at__lt": end})


def _period_lines(start: datetime, end: datetime) -> QuerySet:
    return OrderLine.objects.filter(_paid_in("order__", start, end))


def _period_external_lines(start: datetime, end: datetime) -> QuerySet:
    """External lines paid in the period that are in the ledger (split at least once)."""
    return ExternalOrder.objects.filter(_paid_in("", start, end), split__revision__gte=1)


def _entry_paid_in(start: datetime, end: datetime) -> Q:
    """Entries of our lines of orders paid in the period, or of external lines paid in it."""
    return _paid_in("order__", start, end) | _paid_in("external_line__", start, end)


# When the sale of an entry was paid: its order's, or its external line's.
ENTRY_SALE_PAID_AT = Coalesce("order__paid_at", "external_line__paid_at")


def _period_member_entries(start: datetime, end: datetime) -> QuerySet:
    """Member entries (levels 1..3) of the lines of orders paid in the period, and of external lines paid in it."""
    return Entry.objects.filter(_entry_paid_in(start, end), level__gte=1)


def _sale_label(order_number: str | None, network_name: str | None, external_order_id: str | None) -> str:
    """Our order number, or the network's name and its order id for an external line."""
    if order_number is not None or external_order_id is None:
        return order_number or ""
    return _("%(network)s order %(number)s") % {"network": network_name or "", "number": external_order_id}


def _member_label(prefix: str) -> tuple[str, ...]:
    return (f"{prefix}user__first_name", f"{prefix}user__last_name", f"{prefix}user__email")


def _sales_sums() -> dict[str, Sum]:
    """Aggregates of order lines, read back with `_sales`."""
    return {"gross": Sum("net_amount"), "refunded": Sum("refunded_amount")}


def _sales(row: dict) -> tuple[Decimal, Decimal, Decimal]:
    """(gross, refunded, net) sales from the `_sales_sums` of a row (a missing or empty row is all zero)."""
    gross, refunded = money_sum(row.get("gross")), money_sum(row.get("refunded"))
    return gross, refunded, gross - refunded


def _commission_sums() -> dict[str, Sum]:
    """Aggregates of member entries: "net" (every kind) and "gross" (before refunds: the split, and for an external
    line the network's later changes of the commission, but not its reversals or clawbacks)."""
    return {"net": Sum("amount"), "gross": Sum("amount", filter=Q(kind__in=PAID_KINDS))}


# --- sections ----------------------------------------------------------------------------------------------------


def _in_force_during(versions: QuerySet, start: datetime, end: datetime) -> QuerySet:
    """The version in force at `start` and those that took effect before `end`, oldest first."""
    at_start = versions.filter(effective_from__lte=start).order_by("-effective_from", "-version").values("pk")[:1]
    return versions.filter(Q(pk=Subquery(at_start)) | Q(effective_from__gt=start, effective_from__lt=end)).order_by(
        "effective_from", "version"
    )


def _user_text(user) -> str:
    return str(user) if user else ""


def _policy_versions(start: datetime, end: datetime) -> list[PolicyVersion]:
    policies = _in_force_during(CompliancePolicy.objects.all(), start, end).select_related("created_by")
    return [
        PolicyVersion(
            version=policy.version,
            max_levels=policy.max_levels,
            max_total_rate=policy.max_total_rate,
            max_payout_ratio=policy.max_payout_ratio,
            max_payout_ratio_published=policy.max_payout_ratio_published,
            self_purchase_earns=policy.self_purchase_earns,
            ineligible_share=str(policy.get_ineligible_share_display()),
            effective_from=policy.effective_from,
            created_by=_user_text(policy.created_by),
            note=policy.note,
            is_in_force_at_start=policy.effective_from <= start,
            preset=str(preset_get(policy.preset).label) if policy.preset else "",
            upline_min_own_sales=policy.upline_min_own_sales,
            upline_qualification_days=policy.upline_qualification_days,
        )
        for policy in policies
    ]


def preset_status(now: datetime | None = None) -> PresetStatus:
    """The deployment's preset and the policy in force, the plan in force and the plans scheduled, against it."""
    now = now or timezone.now()
    preset = preset_configured()
    rules = []
    policy = policy_in_force(now)
    if policy is not None:
        rules.append(
            RulesUnderPreset("policy", policy.version, policy.max_levels, policy.max_levels <= preset.max_levels)
        )
    # The plan in force and those scheduled after it, in one query (the rule of `plan_in_force`).
    activated = CommissionPlan.objects.filter(is_activated=True)
    current = activated.filter(effective_from__lte=now).order_by("-effective_from", "-version").values("pk")[:1]
    plans = activated.filter(Q(pk=Subquery(current)) | Q(effective_from__gt=now)).order_by("effective_from", "version")
    for plan in plans:
        levels = len(plan.rates)
        rules.append(RulesUnderPreset("plan", plan.version, levels, levels <= preset.max_levels))
    return PresetStatus(preset=preset, rules=rules)


def _plan_versions(start: datetime, end: datetime) -> list[PlanVersion]:
    activated = CommissionPlan.objects.filter(is_activated=True)
    plans = _in_force_during(activated, start, end).select_related("created_by", "activated_by")
    return [
        PlanVersion(
            version=plan.version,
            name=plan.name,
            rates=plan.rates,
            effective_from=plan.effective_from,
            created_by=_user_text(plan.created_by),
            activated_by=_user_text(plan.activated_by),
            activated_at=plan.activated_at,
            is_in_force_at_start=plan.effective_from <= start,
        )
        for plan in plans
    ]


def _depths(end: datetime) -> list[DepthCount]:
    return [DepthCount(depth=depth, members=members) for depth, members in tree_depth_counts(before=end).items()]


def _levels_paid(start: datetime, end: datetime) -> list[LevelsPaidCount]:
    """Split lines (ours and external ones) by how many distinct member levels were paid more than 0.00 on them
    (one query: our lines and the external lines grouped each on their own, in a UNION ALL)."""

    def paid_levels(line_field: str) -> Coalesce:
        levels = (
            Entry.objects.filter(**{line_field: OuterRef("pk")}, kind=COMMISSION, level__gte=1, amount__gt=0)
            .values(line_field)
            .annotate(levels=Count("level", distinct=True))
            .values("levels")
        )
        return Coalesce(Subquery(levels, output_field=IntegerField()), 0)

    ours = (
        _period_lines(start, end)
        .filter(order__commission_split__isnull=False)
        .annotate(paid_levels=paid_levels("order_line"))
        .values("paid_levels")
        .annotate(lines=Count("pk"))
        .order_by()
    )
    external = (
        _period_external_lines(start, end)
        .annotate(paid_levels=paid_levels("external_line"))
        .values("paid_levels")
        .annotate(lines=Count("pk"))
        .order_by()
    )
    counts: dict[int, int] = {}
    for row in ours.union(external, all=True):
        counts[row["paid_levels"]] = counts.get(row["paid_levels"], 0) + row["lines"]
    return [LevelsPaidCount(levels=n, lines=counts.get(n, 0)) for n in range(max([HARD_MAX_LEVELS, *counts]) + 1)]


def _months(date_from: date, date_to: date) -> list[date]:
    months, month = [], date_from.replace(day=1)
    while month <= date_to:
        months.append(month)
        month = (month + timedelta(days=32)).replace(day=1)
    return months


def _month_of(path) -> TruncMonth:
    return TruncMonth(path, output_field=DateField(), tzinfo=timezone.get_current_timezone())


def _sales_by_month(start: datetime, end: datetime) -> tuple[dict, dict]:
    """({month: our lines' `_sales_sums`}, {month: the external lines' `_sales_sums`}): two queries."""
    ours = {
        row["month"]: row
        for row in _period_lines(start, end)
        .annotate(month=_month_of("order__paid_at"))
        .values("month")
        .annotate(**_sales_sums())
        .order_by("month")
    }
    external = {
        row["month"]: row
        for row in _period_external_lines(start, end)
        .annotate(month=_month_of("paid_at"))
        .values("month")
        .annotate(gross=Sum("paid_amount"), refunded=Sum("paid_amount", filter=Q(status=ExternalOrder.Status.INVALID)))
        .order_by("month")
    }
    return ours, external


def _month_sales(ours: dict, external: dict, month: date) -> tuple[Decimal, Decimal, Decimal]:
    """(gross, refunded, net) sales of one month, ours and the networks' together."""
    own, network = _sales(ours.get(month, {})), _sales(external.get(month, {}))
    return tuple(a + b for a, b in zip(own, network, strict=True))


def _month_figures(
    date_from: date, date_to: date, start: datetime, end: datetime, sales: tuple[dict, dict]
) -> list[MonthFigures]:
    commission = {
        row["month"]: row
        for row in _period_member_entries(start, end)
        .filter(kind__in=MEMBER_KINDS)
        .annotate(month=_month_of(ENTRY_SALE_PAID_AT))
        .values("month")
        .annotate(**_commission_sums())
        .order_by("month")
    }
    figures = []
    for month in _months(date_from, date_to):
        paid = commission.get(month, {})
        gross_sales, _refunded, net_sales = _month_sales(*sales, month)
        gross_commission, member_commission = money_sum(paid.get("gross")), money_sum(paid.get("net"))
        figures.append(
            MonthFigures(
                month=month,
                gross_sales=gross_sales,
                net_sales=net_sales,
                gross_commission=gross_commission,
                member_commission=member_commission,
                payout_ratio=ratio(member_commission, net_sales),
                gross_payout_ratio=ratio(gross_commission, gross_sales),
            )
        )
    return figures


CAPPED_FIELDS = (
    "pk", "order_id", "order__number", "order_line_id", "order_line__net_amount", "level", "beneficiary_id",
    *_member_label("beneficiary__"), "base", "rate", "amount", "capped_by",
    "policy__max_total_rate", "policy__max_payout_ratio",
    "external_line_id", "external_line__external_order_id",
    "external_line__paid_amount",
)  # fmt: skip


def _capped_queryset(start: datetime, end: datetime) -> QuerySet:
    """Member entries of the period where a cap bound: the split's, and an external line's adjustments (its share
    recomputed under the same caps when the network changed the commission)."""
    return (
        _period_member_entries(start, end)
        .filter(kind__in=PAID_KINDS)
        .exclude(capped_by="")
        .annotate(sale_paid_at=ENTRY_SALE_PAID_AT)
        .order_by("sale_paid_at", "order_id", "order_line_id", "external_line_id", "level", "pk")
        .values(*CAPPED_FIELDS, network_name=localized("external_line__network__name"))
    )


def _capped_entry(row: dict) -> CappedEntry:
    capped_by = row["capped_by"]
    cap_rate = {
        CAP_MAX_TOTAL_RATE: row["policy__max_total_rate"],
        CAP_MAX_PAYOUT_RATIO: row["policy__max_payout_ratio"],
    }.get(capped_by)
    return CappedEntry(
        entry_id=row["pk"],
        order_id=row["order_id"],
        order_number=_sale_label(row["order__number"], row["network_name"], row["external_line__external_order_id"]),
        order_line_id=row["order_line_id"],
        level=row["level"],
        beneficiary_id=row["beneficiary_id"],
        beneficiary=_user_label(*(row[key] for key in _member_label("beneficiary__"))),
        beneficiary_email=row["beneficiary__user__email"] or "",
        base=row["base"],
        rate=row["rate"],
        amount=row["amount"],
        uncapped_amount=quantize_money(row["base"] * row["rate"]),
        capped_by=capped_by,
        cap_label=str(CAP_LABELS.get(capped_by, capped_by)),
        cap_rate=cap_rate,
        line_net_amount=(
            row["order_line__net_amount"] if row["external_line_id"] is None else row["external_line__paid_amount"]
        ),
        external_line_id=row["external_line_id"],
    )


def compliance_capped_entries(*, date_from: date, date_to: date) -> Iterator[CappedEntry]:
    """Every entry of the period where a cap bound, in payment order (streamed: for the CSV)."""
    start, end = period_bounds(date_from, date_to)
    for row in _capped_queryset(start, end).iterator(chunk_size=2000):
        yield _capped_entry(row)


def _top_earners(start: datetime, end: datetime) -> list[TopEarner]:
    rows = (
        _period_member_entries(start, end)
        .filter(kind__in=MEMBER_KINDS, beneficiary__isnull=False)
        .values("beneficiary_id", *_member_label("beneficiary__"), "beneficiary__invite_code", "beneficiary__level")
        .annotate(
            **_commission_sums(),
            **{f"level{level}": Sum("amount", filter=Q(level=level)) for level in MEMBER_LEVELS},
        )
        .order_by("-net", "beneficiary_id")[:TOP_EARNERS]
    )
    return [
        TopEarner(
            member_id=row["beneficiary_id"],
            name=_user_label(row["beneficiary__user__first_name"], row["beneficiary__user__last_name"], ""),
            email=row["beneficiary__user__email"] or "",
            invite_code=row["beneficiary__invite_code"] or "",
            depth=row["beneficiary__level"] + 1,
            gross_commission=money_sum(row["gross"]),
            member_commission=money_sum(row["net"]),
            by_level=tuple(money_sum(row[f"level{level}"]) for level in MEMBER_LEVELS),
        )
        for row in rows
    ]


# --- checks ------------------------------------------------------------------------------------------------------


def _check_scope(start: datetime, end: datetime) -> QuerySet:
    """Member entries the checks look at: those of orders and external lines paid in the period, and any created
    in the period on one of our orders that was never paid (which must not exist). An external line always has a
    sale: the network reports it paid, with its date."""
    never_paid = Q(external_line__isnull=True, order__paid_at__isnull=True, created_at__gte=start, created_at__lt=end)
    return Entry.objects.filter(level__gte=1).filter(_entry_paid_in(start, end) | never_paid)


OURS = Q(external_line__isnull=True)
EXTERNAL = Q(external_line__isnull=False)
LEVEL_OFFENCE = Q(level__gt=F("policy__max_levels")) | Q(level__gt=HARD_MAX_LEVELS)
WITHOUT_SALE = OURS & (Q(order__paid_at__isnull=True) | ~Q(order_line__order_id=F("order_id")))
# Negative is allowed only for taking back: of our lines, a refund's reversal or clawback; of an external line, the
# network's lower commission (an adjustment) or its cancellation (a reversal or clawback, no refund of ours).
FEE_OFFENCE = Q(amount__lt=0) & (
    (OURS & (~Q(kind__in=ADJUSTMENT_KINDS) | Q(refund__isnull=True))) | (EXTERNAL & ~Q(kind__in=NETWORK_CHANGE_KINDS))
)
# An amount on an empty pool; taking back what an external line paid is written at its new pool, 0 once invalid.
NO_SALE_OFFENCE = WITHOUT_SALE | (Q(base__lte=0) & (Q(amount__gt=0) | (OURS & Q(amount__lt=0))))
OFFENDER_FIELDS = (
    "pk", "order__number", "order_line_id", "level", "kind", "base", "amount", "policy__max_levels",
    "external_line_id", "external_line__external_order_id",
)  # fmt: skip


def _entry_offenders(scope: QuerySet, offence: Q) -> list[Offender]:
    rows = (
        scope.filter(offence)
        .order_by("order_id", "order_line_id", "external_line_id", "level", "pk")
        .values(*OFFENDER_FIELDS, network_name=localized("external_line__network__name"))[:OFFENDERS_SHOWN]
    )
    offenders = []
    for row in rows:
        detail = _(
            "Entry %(entry)s: level %(level)s, %(kind)s, base %(base)s, amount %(amount)s (policy allows %(max_levels)s"
            " levels)."
        ) % {
            "entry": row["pk"],
            "level": row["level"],
            "kind": dict(Entry.Kind.choices).get(row["kind"], row["kind"]),
            "base": row["base"],
            "amount": row["amount"],
            "max_levels": row["policy__max_levels"] if row["policy__max_levels"] is not None else "—",
        }
        label = _sale_label(row["order__number"], row["network_name"], row["external_line__external_order_id"])
        offenders.append(Offender(label, row["order_line_id"], row["pk"], detail, row["external_line_id"]))
    return offenders


def _check(
    code: str, name: str, evidence: str, count: int, offenders: list[Offender], offender_count: int | None = None
) -> Check:
    """A check that passes when `count` (its offences) is 0; `offender_count` defaults to `count`."""
    return Check(
        code=code,
        name=name,
        passed=count == 0,
        evidence=evidence,
        offenders=offenders,
        offender_count=count if offender_count is None else offender_count,
    )


def _ratio_per_line(start: datetime, end: datetime) -> QuerySet:
    """Per split line (grouped in SQL), ours and external ones: its member commission (the split's, levels >= 1,
    plus the network's later changes for an external line), its net amount (what the buyer paid for an external
    line) and the strictest max_payout_ratio among its entries' policies (the default if an entry has none)."""
    return (
        Entry.objects.filter(_entry_paid_in(start, end), level__gte=1, kind__in=PAID_KINDS)
        .filter(Q(order_line__net_amount__gt=0) | Q(external_line__paid_amount__gt=0))
        .values("order_line", "external_line")
        .annotate(
            member_sum=Sum("amount"),
            net=Coalesce(Min("order_line__net_amount"), Min("external_line__paid_amount")),
            cap=Coalesce(Min("policy__max_payout_ratio"), Value(DEFAULT_MAX_PAYOUT_RATIO)),
            order_number=Min("order__number"),
            external_order_id=Min("external_line__external_order_id"),
            network_name=Min(localized("external_line__network__name")),
        )
        .order_by()
    )


def _checks(start: datetime, end: datetime, lines_split: int) -> list[Check]:
    scope = _check_scope(start, end)
    counts = scope.aggregate(
        checked=Count("pk"),
        max_level=Max("level"),
        level_offenders=Count("pk", filter=LEVEL_OFFENCE),
        negative=Count("pk", filter=Q(amount__lt=0)),
        fee_offenders=Count("pk", filter=FEE_OFFENCE),
        without_sale=Count("pk", filter=WITHOUT_SALE),
        no_sale_offenders=Count("pk", filter=NO_SALE_OFFENCE),
    )
    checks = []

    # a. levels
    count = counts["level_offenders"]
    evidence = _(
        "%(lines)d split lines and %(entries)d member entries checked; the highest level seen is %(max)s "
        "(ceiling: the policy's max levels, never more than %(hard)d); %(offenders)d entries above it."
    ) % {
        "lines": lines_split,
        "entries": counts["checked"],
        "max": counts["max_level"] if counts["max_level"] is not None else "—",
        "hard": HARD_MAX_LEVELS,
        "offenders": count,
    }
    offenders = _entry_offenders(scope, LEVEL_OFFENCE) if count else []
    checks.append(_check("levels", _("No sale paid more levels than the ceiling"), evidence, count, offenders))

    # b. payout ratio, per line
    per_line = _ratio_per_line(start, end)
    over_cap = per_line.filter(member_sum__gt=F("cap") * F("net") + Value(RATIO_TOLERANCE))
    count = over_cap.count()
    lines_checked = per_line.count()
    # The highest line: ordered in SQL (a scaled quotient, to stay clear of SQLite's integer division), the
    # exact ratio then computed here from that line's Decimals.
    highest = (
        per_line.annotate(ratio_key=F("member_sum") * Value(1_000_000) / F("net"))
        .order_by("-ratio_key", "order_line", "external_line")
        .values("member_sum", "net")
        .first()
    )
    highest_ratio = ratio(money_sum(highest["member_sum"]), money_sum(highest["net"])) if highest else None
    offenders = []
    for row in over_cap.order_by("order_line", "external_line")[:OFFENDERS_SHOWN] if count else []:
        member_sum, net = money_sum(row["member_sum"]), money_sum(row["net"])
        cap = Decimal(row["cap"]).quantize(RATIO_STEP)
        label = _sale_label(row["order_number"], row["network_name"], row["external_order_id"])
        detail = _(
            "Line %(line)s: members got %(paid)s of a net amount of %(net)s (ratio %(ratio)s); the cap %(cap)s "
            "allows %(allowed)s."
        ) % {
            "line": row["order_line"] if row["order_line"] is not None else label,
            "paid": member_sum,
            "net": net,
            "ratio": ratio(member_sum, net),
            "cap": cap,
            "allowed": quantize_money(cap * net),
        }
        offenders.append(Offender(label, row["order_line"], None, detail, row["external_line"]))
    evidence = _(
        "%(lines)d lines with member commission checked; the highest line ratio is %(max)s; %(offenders)d "
        "lines paid members more than floor(max payout ratio × net amount)."
    ) % {"lines": lines_checked, "max": highest_ratio if highest_ratio is not None else "—", "offenders": count}
    checks.append(_check("payout_ratio", _("No payout ratio above the cap"), evidence, count, offenders))

    # c. no fee to join or to stay
    count = counts["fee_offenders"] + counts["without_sale"]
    fee_offence = FEE_OFFENCE | WITHOUT_SALE
    evidence = _(
        "%(entries)d member entries checked; %(negative)d are negative and %(bad)d of those are not a "
        "reversal or clawback of a refund or of a change an external network reported; %(unpaid)d are not on a "
        "line of a paid order."
    ) % {
        "entries": counts["checked"],
        "negative": counts["negative"],
        "bad": counts["fee_offenders"],
        "unpaid": counts["without_sale"],
    }
    offenders = _entry_offenders(scope, fee_offence) if count else []
    # An entry can be both negative and off a paid line: count each once.
    offender_count = scope.filter(fee_offence).count() if count else 0
    checks.append(_check("no_fee", _("No fee charged to join or to stay"), evidence, count, offenders, offender_count))

    # d. no reward for signups or headcount
    count = counts["no_sale_offenders"]
    evidence = _(
        "%(entries)d member entries checked; %(offenders)d pay without a sale (no paid order line, or "
        "an amount on an empty pool)."
    ) % {"entries": counts["checked"], "offenders": count}
    offenders = _entry_offenders(scope, NO_SALE_OFFENCE) if count else []
    checks.append(
        _check("no_recruitment_reward", _("No reward tied to signups or headcount"), evidence, count, offenders)
    )
    return checks


def _version_levels(rules: RulesUnderPreset) -> str:
    values = {"version": rules.version, "levels": rules.levels}
    if rules.kind == "policy":
        return _("policy v%(version)d allows %(levels)d levels") % values
    return _("plan v%(version)d pays %(levels)d levels") % values


def _preset_check(status: PresetStatus) -> Check:
    """e. the rules in force now keep within the jurisdiction preset chosen at set-up."""
    breaking = status.breaking
    evidence = _(
        "Preset %(preset)s (at most %(max)d paid levels): %(checked)d versions in force or scheduled checked; "
        "%(breaking)d pay more levels than it allows%(which)s."
    ) % {
        "preset": status.preset.label,
        "max": status.preset.max_levels,
        "checked": len(status.rules),
        "breaking": len(breaking),
        "which": "".join(f" ({_version_levels(rules)})" for rules in breaking),
    }
    return _check("preset", _("The rules in force keep within the jurisdiction preset"), evidence, len(breaking), [])


# --- the report --------------------------------------------------------------------------------------------------


def compliance_report(*, date_from: date, date_to: date, capped_limit: int = CAPPED_SHOWN) -> ComplianceReport:
    """The whole report for the days `date_from`..`date_to` (inclusive): a fixed number of queries."""
    start, end = period_bounds(date_from, date_to)

    # The period's sales are the sum of its months' (every line paid in the period falls in one of them).
    sales_by_month = _sales_by_month(start, end)
    gross_sales = refunded_sales = net_sales = network_gross_sales = network_net_sales = ZERO
    for month in _months(date_from, date_to):
        gross, refunded, net = _month_sales(*sales_by_month, month)
        gross_sales, refunded_sales, net_sales = gross_sales + gross, refunded_sales + refunded, net_sales + net
        network_gross, _refunded, network_net = _sales(sales_by_month[1].get(month, {}))
        network_gross_sales, network_net_sales = network_gross_sales + network_gross, network_net_sales + network_net

    by_level = {
        row["level"]: row
        for row in _period_member_entries(start, end)
        .filter(kind__in=MEMBER_KINDS)
        .values("level")
        .annotate(
            **_commission_sums(),
            lines_paid=Count("order_line", filter=Q(kind=COMMISSION, amount__gt=0), distinct=True),
            external_lines_paid=Count("external_line", filter=Q(kind=COMMISSION, amount__gt=0), distinct=True),
        )
        .order_by("level")
    }
    member_commission = sum((money_sum(row["net"]) for row in by_level.values()), ZERO)
    gross_commission = sum((money_sum(row["gross"]) for row in by_level.values()), ZERO)
    levels = []
    for level in sorted({*MEMBER_LEVELS, *by_level}):
        row = by_level.get(level, {})
        net, gross = money_sum(row.get("net")), money_sum(row.get("gross"))
        levels.append(
            LevelFigures(
                level=level,
                gross_commission=gross,
                member_commission=net,
                lines_paid=row.get("lines_paid", 0) + row.get("external_lines_paid", 0),
                payout_ratio=ratio(net, net_sales),
                gross_payout_ratio=ratio(gross, gross_sales),
                share=ratio(net, member_commission),
            )
        )
    own = next((figures.member_commission for figures in levels if figures.level == 1), ZERO)
    others = sum((figures.member_commission for figures in levels if figures.level >= 2), ZERO)
    max_level_paid = max((figures.level for figures in levels if figures.lines_paid), default=0)

    levels_paid = _levels_paid(start, end)
    lines_split = sum(count.lines for count in levels_paid)
    capped = _capped_queryset(start, end)
    status = preset_status()
    return ComplianceReport(
        date_from=date_from,
        date_to=date_to,
        policies=_policy_versions(start, end),
        plans=_plan_versions(start, end),
        depths=_depths(end),
        levels_paid=levels_paid,
        lines_split=lines_split,
        max_level_paid=max_level_paid,
        gross_sales=gross_sales,
        refunded_sales=refunded_sales,
        net_sales=net_sales,
        gross_commission=gross_commission,
        member_commission=member_commission,
        payout_ratio=ratio(member_commission, net_sales),
        gross_payout_ratio=ratio(gross_commission, gross_sales),
        levels=levels,
        network_gross_sales=network_gross_sales,
        network_net_sales=network_net_sales,
        months=_month_figures(date_from, date_to, start, end, sales_by_month),
        own_sales_commission=own,
        others_sales_commission=others,
        own_sales_share=ratio(own, member_commission),
        others_sales_share=ratio(others, member_commission),
        capped_count=capped.count(),
        capped_entries=[_capped_entry(row) for row in capped[:capped_limit]],
        top_earners=_top_earners(start, end),
        checks=[*_checks(start, end, lines_split), _preset_check(status)],
        preset_status=status,
    )
