"""Compliance policy and commission plan versions (SPEC §7): publish a policy, create and activate plans. The one
rule for which plan and which policy are in force at a given moment is a read: `commissions.selectors`."""

from datetime import datetime, timedelta
from decimal import Decimal
from functools import partial

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Max
from django.utils import formats, timezone
from django.utils.translation import gettext as _

from commissions.calculations import (
    HARD_MAX_LEVELS,
    HARD_MAX_PAYOUT_RATIO,
    Plan,
    Policy,
    payout_ratio_ceiling_message,
    plan_violations,
)
from commissions.locks import config_lock, plan_lock, policy_in_force_lock
from commissions.models import MAX_BINDING_DAYS, MAX_QUALIFICATION_DAYS, CommissionPlan, CompliancePolicy
from commissions.presets import preset_configured, preset_levels_violation
from commissions.selectors import plan_in_force, policy_in_force
from commissions.signals import PLAN, POLICY, rules_change_scheduled
from core.money import RATE_ONE, RATE_ZERO, format_rate
from shops.models import AttributionOptions
from shops.selectors import attribution_options, products_below_discount
from shops.services import attribution_options_set

POLICY_FIELDS = ("max_levels", "max_total_rate", "max_payout_ratio", "self_purchase_earns", "ineligible_share")
# Issue #22: versioned with the caps, put in force at checkout through shops.services.attribution_options_set.
ATTRIBUTION_FIELDS = ("binding_days", "binding_mode", "coupons_enabled", "coupon_discount_rate")
# Issue #25: the own-sales qualification of uplines, versioned with the caps (the split reads it from the version).
QUALIFICATION_FIELDS = ("upline_min_own_sales", "upline_qualification_days")


class CommissionError(ValidationError):
    """A refused policy or plan change; the message is fit for staff. Nothing was changed."""


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
    violation = preset_levels_violation(levels, preset_configured())
    if violation:
        raise CommissionError({"max_levels": [violation]}, code="preset")
    ratio = values.get("max_payout_ratio")
    if isinstance(ratio, Decimal) and ratio.is_finite() and ratio > HARD_MAX_PAYOUT_RATIO:
        raise CommissionError({"max_payout_ratio": [payout_ratio_ceiling_message()]}, code="payout_ratio_ceiling")
    _check_qualification(values)
    try:
        return Policy(
            **{**{name: values[name] for name in POLICY_FIELDS}, "max_levels": levels},
            upline_min_own_sales=values["upline_min_own_sales"],
        )
    except (TypeError, ValueError) as error:
        raise CommissionError(str(error), code="invalid_policy") from error


def _start_check(effective_from: datetime | None, now: datetime, *, is_first: bool) -> datetime:
    """When the change takes effect: `effective_from`, or now. Refused (CommissionError) in the past, and sooner than
    RULES_CHANGE_NOTICE_DAYS from now unless it is the very first version (setting up: no member has rules to lose).

    The notice has no exception, not even for a change that seems only to benefit members: 《电子商务法》 art. 34 makes
    none, and most changes move money between members (a higher level 1 share is a lower upline share), so whether
    one "only benefits" is a judgment the platform does not make alone (docs/compliance.md)."""
    effective_from = effective_from or now
    if effective_from < now:
        raise CommissionError(_("A change of the rules can start now or later, never in the past."), code="backdated")
    days = settings.RULES_CHANGE_NOTICE_DAYS
    earliest = now + timedelta(days=days)
    if not is_first and effective_from < earliest:
        raise CommissionError(
            _(
                "Members must be told of a change of the rules %(days)d days before it takes effect: choose a start "
                "on or after %(earliest)s."
            )
            % {"days": days, "earliest": formats.date_format(timezone.localtime(earliest), "Y-m-d H:i")},
            code="notice",
        )
    return effective_from


def _announce_when_scheduled(kind: str, version: int, effective_from: datetime, now: datetime) -> None:
    """After the commit, tell the apps above (members' notifications) about a change that takes effect later."""
    if effective_from > now:
        transaction.on_commit(
            partial(
                rules_change_scheduled.send,
                sender=CommissionPlan if kind == PLAN else CompliancePolicy,
                kind=kind,
                version=version,
                effective_from=effective_from,
            )
        )


def _is_count(value, low: int, high: int) -> bool:
    return not isinstance(value, bool) and isinstance(value, int) and low <= value <= high


def _check_qualification(values: dict) -> None:
    """Refuse (CommissionError, on the field) an own-sales qualification out of range."""
    if not _is_count(values["upline_min_own_sales"], 0, 32767):
        raise CommissionError(
            {"upline_min_own_sales": [_("Enter a whole number of sales, 0 (off) or more.")]}, code="own_sales"
        )
    if not _is_count(values["upline_qualification_days"], 1, MAX_QUALIFICATION_DAYS):
        raise CommissionError(
            {"upline_qualification_days": [_("Enter 1 to %(max)d days.") % {"max": MAX_QUALIFICATION_DAYS}]},
            code="qualification_days",
        )


def _plans_that_must_stay_legal(now) -> list[CommissionPlan]:
    current = plan_in_force(now)
    upcoming = list(CommissionPlan.objects.filter(is_activated=True, effective_from__gt=now))
    return ([current] if current else []) + upcoming


@transaction.atomic
def policy_publish(*, actor, note: str = "", effective_from: datetime | None = None, **changes) -> CompliancePolicy:
    """Publish a new policy version (the old one stays, inactive, as history), in force from `effective_from`
    (default now). The latest version published is the active one: a later version builds on it.

    Refused (CommissionError, nothing changed) when a value is out of range, when max_levels exceeds the
    hard ceiling of 3, or the levels the jurisdiction preset allows (`COMPLIANCE_PRESET`, recorded on the version),
    or max_payout_ratio the hard ceiling of 0.30, when the plan in force (or one scheduled) would break the new
    policy, when it starts in the past, sooner than RULES_CHANGE_NOTICE_DAYS from now (except the very first
    policy), or before the version published last. A version starting later is announced to the members after the
    commit (`signals.rules_change_scheduled`); its attribution options are put in force when it starts
    (`policy_options_sync`).
    """
    unknown = set(changes) - set(POLICY_FIELDS) - set(ATTRIBUTION_FIELDS) - set(QUALIFICATION_FIELDS)
    if unknown:
        raise CommissionError(_("Unknown policy fields: %(fields)s") % {"fields": ", ".join(sorted(unknown))})
    config_lock()  # then read: a concurrent publish has committed or not started
    current = policy_in_force_lock()
    fields = POLICY_FIELDS + ATTRIBUTION_FIELDS + QUALIFICATION_FIELDS
    values = {name: getattr(current, name) for name in fields} if current else {}
    values = {**{f.name: f.get_default() for f in CompliancePolicy._meta.fields if f.name in fields}, **values}
    values.update(changes)
    policy = _calculation_policy(values)
    _check_attribution_options(values)
    now = timezone.now()
    effective_from = _start_check(effective_from, now, is_first=current is None)
    if current is not None and effective_from < current.effective_from:
        raise CommissionError(
            _("Version %(version)d starts on %(date)s: a new version can start then or later.")
            % {
                "version": current.version,
                "date": formats.date_format(timezone.localtime(current.effective_from), "Y-m-d H:i"),
            },
            code="before_scheduled",
        )
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
    published = CompliancePolicy.objects.create(
        version=version,
        is_active=True,
        effective_from=effective_from,
        created_by=actor,
        note=note,
        preset=preset_configured().code,
        **values,
    )
    if effective_from <= now:
        _attribution_options_put(published)
    _announce_when_scheduled(POLICY, published.version, effective_from, now)
    return published


def _attribution_options_put(policy: CompliancePolicy) -> None:
    attribution_options_set(
        binding_days=policy.binding_days,
        binding_mode=policy.binding_mode,
        coupons_enabled=policy.coupons_enabled,
        coupon_discount_rate=policy.coupon_discount_rate,
        own_code_allowed=policy.self_purchase_earns,
        policy_version=policy.version,
    )


@transaction.atomic
def policy_options_sync() -> CompliancePolicy | None:
    """Put the attribution options of the policy in force at checkout, if they are another version's (a version
    published for later has started). Returns the policy whose options were put, None when nothing changed.
    Idempotent; run by the beat every minute (`policy_options_sync_task`)."""
    policy = policy_in_force()
    if policy is None:
        return None
    options = attribution_options()
    if options is not None and options.policy_version == policy.version:
        return None
    config_lock()
    _attribution_options_put(policy)
    return policy


def _check_attribution_options(values: dict) -> None:
    """Refuse (CommissionError, on the field) binding days or a coupon discount the rules do not allow. A discount
    is paid from the line's commission pool, so it may not be larger than the pool of any active product: a
    discount rate above a product's commission rate is refused, naming the products."""
    days = values["binding_days"]
    if isinstance(days, bool) or not isinstance(days, int) or not 0 <= days <= MAX_BINDING_DAYS:
        raise CommissionError(
            {"binding_days": [_("Enter 0 (off) to %(max)d days.") % {"max": MAX_BINDING_DAYS}]}, code="binding_days"
        )
    if values["binding_mode"] not in AttributionOptions.BindingMode.values:
        raise CommissionError({"binding_mode": [_("Choose a binding mode.")]}, code="binding_mode")
    rate = values["coupon_discount_rate"]
    if not isinstance(rate, Decimal) or not rate.is_finite() or not RATE_ZERO <= rate <= RATE_ONE:
        raise CommissionError(
            {"coupon_discount_rate": [_("Enter a fraction from 0 to 1, e.g. 0.05 for 5 %.")]}, code="coupon_rate"
        )
    if not values["coupons_enabled"] or not rate:
        return
    below = list(products_below_discount(rate)[:6])
    if below:
        named = ", ".join(f"{product.title} ({format_rate(product.commission_rate)})" for product in below[:5])
        raise CommissionError(
            {
                "coupon_discount_rate": [
                    _(
                        "A discount of %(rate)s would be larger than the commission pool that pays it on these active "
                        "products: %(products)s%(more)s. Lower the discount to at most the lowest commission rate, or "
                        "raise those products' commission rates first."
                    )
                    % {"rate": format_rate(rate), "products": named, "more": ", …" if len(below) > 5 else ""}
                ]
            },
            code="discount_above_pool",
        )


def _plan_problems(rates: tuple, policy: CompliancePolicy | None) -> list[str]:
    if policy is None:
        return [_("There is no compliance policy yet.")]
    try:
        return plan_violations(Plan(rates=tuple(Decimal(r) for r in rates)), policy.as_calculation())
    except (TypeError, ValueError) as error:
        return [str(error)]


def plan_validate(*, rates: tuple) -> None:
    """Raise CommissionError listing every way these rates break the jurisdiction preset, the policy in force or a
    policy scheduled to start later (the plan would be in force under it). A policy in force from before the preset
    was chosen may allow more levels than the preset does."""
    if len(rates) > HARD_MAX_LEVELS:
        raise CommissionError(_("At most %(max)d levels may ever be paid.") % {"max": HARD_MAX_LEVELS})
    violation = preset_levels_violation(len(rates), preset_configured(), what="plan")
    problems = ([violation] if violation else []) + _plan_problems(rates, policy_in_force())
    if not problems:
        for scheduled in CompliancePolicy.objects.filter(effective_from__gt=timezone.now()).order_by("version"):
            problems = [
                _("%(policy)s, from %(date)s: %(problem)s")
                % {
                    "policy": scheduled,
                    "date": formats.date_format(timezone.localtime(scheduled.effective_from), "SHORT_DATE_FORMAT"),
                    "problem": problem,
                }
                for problem in _plan_problems(rates, scheduled)
            ]
            if problems:
                break
    if problems:
        raise CommissionError(problems, code="plan_illegal")


@transaction.atomic
def plan_create(*, actor, name: str, rates: tuple, name_zh_hans: str = "") -> CommissionPlan:
    """A draft plan (not in force until activated). Refused if it breaks the policy in force. `name` is the English
    name (the language of record); `name_zh_hans` the Chinese one, empty to show the English name in Chinese."""
    rates = tuple(rates)
    plan_validate(rates=rates)
    padded = (*rates, None, None, None)[:3]
    config_lock()
    version = (CommissionPlan.objects.aggregate(v=Max("version"))["v"] or 0) + 1
    return CommissionPlan.objects.create(
        version=version,
        name_en=name,
        name_zh_hans=name_zh_hans or None,
        level1_rate=padded[0],
        level2_rate=padded[1],
        level3_rate=padded[2],
        created_by=actor,
    )


def plan_start_check(effective_from: datetime | None, now: datetime | None = None) -> datetime:
    """When a plan activated now with `effective_from` would start; CommissionError if that is refused (in the past,
    or sooner than the notice period unless no plan was ever activated)."""
    is_first = not CommissionPlan.objects.filter(is_activated=True).exists()
    return _start_check(effective_from, now or timezone.now(), is_first=is_first)


@transaction.atomic
def plan_activate(*, plan: CommissionPlan, actor, effective_from=None) -> CommissionPlan:
    """Put a draft plan in force from `effective_from` (default now). Refused (CommissionError, nothing changed) if it
    breaks the policy (in force or scheduled), starts in the past, or sooner than RULES_CHANGE_NOTICE_DAYS from now
    (except the very first plan). A plan starting later is announced to the members after the commit
    (`signals.rules_change_scheduled`)."""
    config_lock()
    plan = plan_lock(plan.pk)
    if plan.is_activated:
        raise CommissionError(_("This plan is already activated; plans in force never change."), code="activated")
    now = timezone.now()
    if effective_from is not None and effective_from < now:
        # A backdated plan would re-price orders paid before it existed (their splits may still be queued).
        raise CommissionError(_("A plan can start now or later, never in the past."), code="backdated")
    effective_from = plan_start_check(effective_from, now)
    plan_validate(rates=plan.rates)
    plan.is_activated = True
    plan.effective_from = effective_from
    plan.activated_at = now
    plan.activated_by = actor if getattr(actor, "pk", None) else None
    plan.save(update_fields=["is_activated", "effective_from", "activated_at", "activated_by"])
    _announce_when_scheduled(PLAN, plan.version, effective_from, now)
    return plan
