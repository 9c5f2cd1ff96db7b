"""The public rules page (/rules/, issue #25): the commission plan and compliance policy in force in plain words,
with a worked example, what is scheduled to change and every earlier version with its dates. No login: members,
buyers and anyone who asks read the same page (《网络交易监督管理办法》 art. 28, docs/compliance.md)."""

from datetime import timedelta

from django.conf import settings
from django.http import Http404
from django.shortcuts import render
from django.utils import timezone
from django.utils.cache import patch_cache_control
from django.utils.translation import gettext as _

from commissions.rules import (
    RulesPeriod,
    example_commission_rate,
    level_label,
    policy_rule_fields,
    rule_value,
    rules_page,
    rules_timeline,
    worked_example,
)

RULES_PAGE_MAX_AGE = 300  # seconds a browser or a proxy may keep the page (less when a change is nearer)

# Policy rules the page says in sentences of their own; any other field is listed by its name and value.
WORDED_FIELDS = frozenset(
    {"max_levels", "max_total_rate", "max_payout_ratio", "self_purchase_earns", "ineligible_share"}
)


def _period_context(period: RulesPeriod, commission_rate) -> dict:
    example = worked_example(period, commission_rate=commission_rate)
    rates = period.plan.rates[: period.policy.max_levels]
    return {
        "period": period,
        "levels": [{"label": level_label(level), "rate": rate} for level, rate in enumerate(rates, start=1)],
        "example": example,
        "example_rows": [
            {"label": level_label(share.level), "share": share} for share in example.split.shares if share.level
        ],
        "other_rules": [
            {"label": field.verbose_name, "value": rule_value(field, getattr(period.policy, field.attname))}
            for field in policy_rule_fields()
            if field.name not in WORDED_FIELDS
        ],
    }


def _max_age(now, next_change) -> int:
    """RULES_PAGE_MAX_AGE, or less: nobody keeps the page past the moment the rules change."""
    if next_change is None:
        return RULES_PAGE_MAX_AGE
    return max(0, min(RULES_PAGE_MAX_AGE, int((next_change - now) / timedelta(seconds=1))))


def _cached(request, response, *, max_age: int):
    # Anonymous visitors all see one page (per language): browsers and shared caches may keep it. A member's page
    # carries their header (their unread notifications), so it is not kept.
    if request.user.is_authenticated:
        patch_cache_control(response, private=True, max_age=0)
    else:
        patch_cache_control(response, public=True, max_age=max_age)
    return response


def rules(request):
    """The rules in force, the changes scheduled and the earlier versions (three queries: plans, policies, the
    example's commission rate)."""
    page = rules_page()
    commission_rate = example_commission_rate()
    context = {
        "page": page,
        "current": _period_context(page.current, commission_rate) if page.current else None,
        "upcoming": [_period_context(period, commission_rate) for period in page.upcoming],
        "hold_days": settings.COMMISSION_HOLD_DAYS,
        "notice_days": settings.RULES_CHANGE_NOTICE_DAYS,
        "retention_years": settings.RECORDS_RETENTION_YEARS,
    }
    response = render(request, "members/rules.html", context)
    return _cached(request, response, max_age=_max_age(page.now, page.next_change))


def rules_version(request, plan_version: int, policy_version: int):
    """One period of the rules, earlier, current or scheduled (`<plan version>-<policy version>`); 404 for a pair that
    was never in force together."""
    key = f"{plan_version}-{policy_version}"
    periods = rules_timeline()
    index = next((i for i, period in enumerate(periods) if period.key == key), None)
    if index is None:
        raise Http404(_("There is no such version of the rules."))
    period, now = periods[index], timezone.now()
    context = {
        **_period_context(period, example_commission_rate()),
        "now": now,
        "previous": periods[index - 1] if index else None,
        "next": periods[index + 1] if index + 1 < len(periods) else None,
        "hold_days": settings.COMMISSION_HOLD_DAYS,
    }
    upcoming = [p.starts for p in periods if p.starts > now]
    response = render(request, "members/rules_version.html", context)
    return _cached(request, response, max_age=_max_age(now, upcoming[0] if upcoming else None))
