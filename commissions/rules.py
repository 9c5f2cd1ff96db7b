"""The commission rules as members and buyers read them (issue #25, the public rules page): which plan and which
compliance policy were, are and will be in force, over which dates, what changed at each step, and a worked example
worked out by the split's own calculation. Reads only.

A period of the rules is one (plan, policy) pair over the dates it was in force. The pair in force at a moment is
the one rule of `selectors.plan_in_force` and `selectors.policy_in_force` (the latest version in force from then or
earlier); `rules_timeline` applies that rule at every moment a version starts, from two queries, so the page shows
exactly the rules the split applied. Versions are never deleted (the ledger's entries and splits hold them through
PROTECT foreign keys, and no code path deletes one; docs/compliance.md), so the history is complete, far beyond the
RECORDS_RETENTION_YEARS it must at least cover.
"""

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from django.db.models import Field
from django.utils import timezone
from django.utils.text import capfirst
from django.utils.translation import gettext as _

from commissions.calculations import HARD_MAX_LEVELS, ChainMember, Split, line_pool, split_line
from commissions.models import CommissionPlan, CompliancePolicy
from core.money import RateField, format_rate, quantize_money
from shops.selectors import typical_commission_rate

EXAMPLE_SALE = Decimal("100.00")
EXAMPLE_RATE_WITHOUT_PRODUCTS = Decimal("0.2000")  # the example's commission rate while no product is on sale

# CompliancePolicy fields that are not rules: the version's identity and bookkeeping, and a value kept only as the
# record of what an early version was published with. Every other field is a rule and is shown (so a field added
# later is on the page without a change here).
# Bookkeeping, not rules a member lives by: among them the jurisdiction preset a version was published under (the
# levels it allows are the rule, shown as max_levels).
POLICY_RECORD_FIELDS = frozenset(
    {"id", "version", "is_active", "effective_from", "created_by", "note", "max_payout_ratio_published", "preset"}
)


def policy_rule_fields() -> list[Field]:
    """The policy's rules, in the model's order."""
    return [
        field
        for field in CompliancePolicy._meta.concrete_fields
        if field.name not in POLICY_RECORD_FIELDS and not field.name.endswith("_id")
    ]


def rule_value(field: Field, value) -> str:
    """A policy value in words: a choice's label, yes or no, a rate as a percentage, a number."""
    if field.choices:
        return str(dict(field.flatchoices).get(value, value))
    if isinstance(value, bool):
        return _("Yes") if value else _("No")
    if isinstance(field, RateField) and value is not None:
        return format_rate(value)
    return "—" if value is None else str(value)


@dataclass(frozen=True)
class Change:
    """One rule that differs from the period before: its name and both values, in words."""

    name: str
    label: str
    before: str
    after: str


@dataclass(frozen=True)
class RulesPeriod:
    """One plan and one policy together in force from `starts` until `ends` (None: no end is scheduled)."""

    plan: CommissionPlan
    policy: CompliancePolicy
    starts: datetime
    ends: datetime | None
    changes: tuple[Change, ...]  # against the period before; empty for the first

    @property
    def name(self) -> str:
        """The period's name in words: its plan and policy versions."""
        return _("Plan v%(plan)d · policy v%(policy)d") % {"plan": self.plan.version, "policy": self.policy.version}

    @property
    def key(self) -> str:
        """The period's address on the rules page: `<plan version>-<policy version>`."""
        return f"{self.plan.version}-{self.policy.version}"

    def is_upcoming(self, now: datetime) -> bool:
        return self.starts > now

    def is_current(self, now: datetime) -> bool:
        return self.starts <= now and (self.ends is None or now < self.ends)


def level_label(level: int) -> str:
    return _("Level 1 (the sharer)") if level == 1 else _("Level %(level)d") % {"level": level}


def _changes(before: RulesPeriod | None, plan: CommissionPlan, policy: CompliancePolicy) -> tuple[Change, ...]:
    if before is None:
        return ()
    changes = []
    old_rates, new_rates = before.plan.rates, plan.rates
    for level in range(1, HARD_MAX_LEVELS + 1):
        old = old_rates[level - 1] if level <= len(old_rates) else None
        new = new_rates[level - 1] if level <= len(new_rates) else None
        if old != new:
            label = _("%(level)s: share of the pool") % {"level": level_label(level)}
            changes.append(
                Change(
                    f"level{level}_rate", label, format_rate(old) or _("not paid"), format_rate(new) or _("not paid")
                )
            )
    for field in policy_rule_fields():
        old, new = getattr(before.policy, field.attname), getattr(policy, field.attname)
        if old != new:
            changes.append(
                Change(field.name, capfirst(str(field.verbose_name)), rule_value(field, old), rule_value(field, new))
            )
    return tuple(changes)


def _in_force(versions: list, at: datetime):
    """The version in force at `at` (the selectors' rule: latest `effective_from` up to `at`, then highest version)."""
    candidates = [version for version in versions if version.effective_from <= at]
    return max(candidates, key=lambda version: (version.effective_from, version.version), default=None)


def rules_timeline() -> list[RulesPeriod]:
    """Every period of the rules, oldest first, the scheduled ones included (two queries)."""
    plans = list(CommissionPlan.objects.filter(is_activated=True).order_by("effective_from", "version"))
    policies = list(CompliancePolicy.objects.order_by("effective_from", "version"))
    moments = sorted({version.effective_from for version in (*plans, *policies)})
    pairs: list[tuple[datetime, CommissionPlan, CompliancePolicy]] = []
    for moment in moments:
        plan, policy = _in_force(plans, moment), _in_force(policies, moment)
        if plan is None or policy is None:
            continue  # before both a plan and a policy existed nothing was paid
        if pairs and (pairs[-1][1].pk, pairs[-1][2].pk) == (plan.pk, policy.pk):
            continue
        pairs.append((moment, plan, policy))
    periods: list[RulesPeriod] = []
    for index, (starts, plan, policy) in enumerate(pairs):
        ends = pairs[index + 1][0] if index + 1 < len(pairs) else None
        periods.append(
            RulesPeriod(plan, policy, starts, ends, _changes(periods[-1] if periods else None, plan, policy))
        )
    return periods


@dataclass(frozen=True)
class RulesPage:
    """What the public rules page shows: the period in force, the scheduled ones and the earlier ones."""

    current: RulesPeriod | None
    upcoming: tuple[RulesPeriod, ...]  # soonest first
    earlier: tuple[RulesPeriod, ...]  # latest first
    now: datetime

    @property
    def next_change(self) -> datetime | None:
        return self.upcoming[0].starts if self.upcoming else None


def rules_page(now: datetime | None = None) -> RulesPage:
    """The rules in force at `now` (default: now), the scheduled and the earlier periods (two queries)."""
    now = now or timezone.now()
    periods = rules_timeline()
    current = next((period for period in periods if period.is_current(now)), None)
    return RulesPage(
        current=current,
        upcoming=tuple(period for period in periods if period.is_upcoming(now)),
        earlier=tuple(reversed([period for period in periods if period.ends is not None and period.ends <= now])),
        now=now,
    )


@dataclass(frozen=True)
class WorkedExample:
    """A sale of EXAMPLE_SALE split under one period's rules, by the split's own calculation (`split_line`)."""

    sale: Decimal
    commission_rate: Decimal
    split: Split
    payout_ceiling: Decimal  # the most members may be paid on this sale (sale × max payout ratio)


def example_commission_rate() -> Decimal:
    """The commission rate of the example: the one most products on sale have (one query)."""
    rate = typical_commission_rate()
    return EXAMPLE_RATE_WITHOUT_PRODUCTS if rate is None else rate


def worked_example(period: RulesPeriod, *, commission_rate: Decimal, sale: Decimal = EXAMPLE_SALE) -> WorkedExample:
    """`sale` paid through a sharer with a full upline of eligible members (not a self-purchase), split under the
    period's plan and policy exactly as the ledger splits a line."""
    split = split_line(
        pool=line_pool(sale, commission_rate),
        net_amount=sale,
        # Ids stand for "the sharer" and "their uplines": they play no part in the amounts.
        chain=[ChainMember(member_id=level, is_eligible=True) for level in range(1, HARD_MAX_LEVELS + 1)],
        plan=period.plan.as_calculation(),
        policy=period.policy.as_calculation(),
        is_self_purchase=False,
    )
    ceiling = quantize_money(sale * period.policy.max_payout_ratio)
    return WorkedExample(sale=sale, commission_rate=commission_rate, split=split, payout_ceiling=ceiling)
