"""The shop owner's overview (/dashboard/) and team (/dashboard/team/) pages."""

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import Http404
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.safestring import mark_safe
from django.utils.translation import gettext as _

from commissions.selectors import member_earnings_by_level
from core.charts import daily_chart_svg
from core.money import ZERO, format_money
from members.decorators import member_required
from members.links import invite_url
from members.selectors import (
    FIRST_RUN_PRODUCTS,
    commission_levels_in_force,
    member_dashboard_stats,
    member_first_run,
    member_team_level_sales,
    month_bounds,
    team_levels_for,
)
from payouts.selectors import member_balance
from referrals.models import Member
from referrals.selectors import member_for_user, member_pending_team, member_team_level_counts, member_team_size
from shops.selectors import owner_shop
from shops.services import clicks_flush


@login_required
def dashboard(request):
    """The shop owner's overview: earnings, link and shop performance, a 30-day chart, invite link and shop."""
    member = member_for_user(request.user)
    if member is None:
        messages.info(request, _("Join the programme to get your shop and invite link."))
        return redirect("members:join")
    if settings.CELERY_TASK_ALWAYS_EAGER:
        # The embedded default runs no beat: flush the in-process click counter so the figures are current.
        clicks_flush()
    stats = member_dashboard_stats(member, timezone.localdate())
    shop = owner_shop(member)
    return render(
        request,
        "members/dashboard.html",
        {
            "member": member,
            "shop": shop,
            "first_run": member_first_run(shop),
            "first_run_products": FIRST_RUN_PRODUCTS,
            "invite_url": invite_url(member),
            "team_size": member_team_size(member),
            # by parent link: django-mptt's get_children() misses invitees not yet placed in the nested sets
            "direct_count": Member.objects.filter(parent=member).count(),
            "stats": stats,
            "balance": member_balance(member),
            "chart": _daily_chart(stats.daily),
        },
    )


def _daily_chart(daily) -> str:
    earnings = sum((day.earnings for day in daily), ZERO)
    orders = sum(day.orders for day in daily)
    svg = daily_chart_svg(
        [(day.day, day.earnings, day.orders) for day in daily],
        title=_("Daily earnings and orders, last %(days)d days") % {"days": len(daily)},
        description=_("%(orders)d orders and %(earnings)s earned in total; the table below lists every day.")
        % {"orders": orders, "earnings": format_money(earnings)},
        earnings_label=_("Earnings"),
        orders_label=_("Orders"),
        format_amount=format_money,
        format_day=lambda day: date_format(day, "MONTH_DAY_FORMAT"),
    )
    return mark_safe(svg)  # noqa: S308 - daily_chart_svg escapes every piece of text it writes


TEAM_PAGE_SIZE = 50


@member_required
def team(request):
    """My sponsor, invite link and team: what I earned at each level the compliance policy pays me (my own sales,
    then each level of my downline), and those levels of my downline one at a time, each member with their join date
    and this month's sales. A fixed number of queries whatever the team size."""
    member = request.member
    commission_levels = commission_levels_in_force()
    levels = team_levels_for(commission_levels)
    try:
        level = int(request.GET.get("level", "1"))
    except ValueError:
        level = 0
    if not 1 <= level <= levels:
        raise Http404(_("Your team page shows levels 1 to %(levels)d.") % {"levels": levels})
    today = timezone.localdate()
    since, until = month_bounds(today)
    pending = member_pending_team(member)  # members who joined moments ago, not in the nested sets yet
    level_counts = member_team_level_counts(member, levels, pending)
    paginator = Paginator(member_team_level_sales(member, level, since, until, pending), TEAM_PAGE_SIZE)
    # Counted already, with the other levels: spare the paginator a second scan of a 100,000-member downline.
    paginator.count = level_counts[level]
    page = paginator.get_page(request.GET.get("page"))
    earnings = member_earnings_by_level(member, commission_levels)
    return render(
        request,
        "members/team.html",
        {
            "member": member,
            "invite_url": invite_url(member),
            "team_size": member_team_size(member, pending),
            "level": level,
            "level_counts": level_counts,
            "direct_count": level_counts[1],
            "page": page,
            "month_start": today.replace(day=1),
            "commission_levels": commission_levels,
            # Commission level k pays me for the sales of my team's level k - 1 (level 1: my own sales).
            "earnings": [(row, level_counts.get(row.level - 1)) for row in earnings],
            "earnings_total": {
                status: sum((getattr(row, status) for row in earnings), ZERO)
                for status in ("pending", "available", "paid")
            },
        },
    )
