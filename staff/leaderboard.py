"""The back office's leaderboard: the same standings the members see (commissions.selectors.leaderboard_standings),
with every member's name, shop and a link to their record, and whether they chose to be named to other members.

Un-anonymised because staff already look members up by name (every back-office group may view members); the
members' choice governs what other members see, and this page says who made it. Read-only; the standings come from
the same five-minute cache, then one query for the members on the page.
"""

from datetime import timedelta

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.db.models import F
from django.http import Http404
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _

from commissions.selectors import (
    LEADERBOARD_METRIC_CHOICES,
    LEADERBOARD_METRICS,
    LEADERBOARD_PERIOD_CHOICES,
    LEADERBOARD_PERIODS,
    LEADERBOARD_SALES,
    leaderboard_bounds,
    leaderboard_standings,
)
from referrals.models import Member

PERMISSIONS = ("staff.view_staff_overview", "referrals.view_member")
STAFF_LEADERBOARD_SIZE = 50


@admin.site.admin_view
def leaderboard(request):
    if not request.user.has_perms(PERMISSIONS):
        raise PermissionDenied
    period = request.GET.get("period", "week")
    metric = request.GET.get("by", LEADERBOARD_SALES)
    if period not in LEADERBOARD_PERIODS or metric not in LEADERBOARD_METRICS:
        raise Http404(_("There is no such leaderboard."))
    since, until = leaderboard_bounds(period, timezone.localdate())
    standings = leaderboard_standings(metric, since, until)
    top = standings.top(STAFF_LEADERBOARD_SIZE)
    members = {
        member.pk: member
        for member in Member.objects.filter(pk__in=[standing.member_id for standing in top])
        .select_related("user")
        .annotate(shop_name=F("shop__name"))
    }
    rows = [
        {
            "standing": standing,
            "member": members.get(standing.member_id),
            "url": reverse("admin:referrals_member_change", args=[standing.member_id]),
        }
        for standing in top
    ]
    context = {
        **admin.site.each_context(request),
        "title": _("Leaderboard"),
        "rows": rows,
        "ranked": len(standings),
        "period": period,
        "metric": metric,
        "first_day": since,
        "last_day": (timezone.localtime(until) - timedelta(days=1)).date(),
        "periods": LEADERBOARD_PERIOD_CHOICES,
        "metrics": LEADERBOARD_METRIC_CHOICES,
        "size": STAFF_LEADERBOARD_SIZE,
    }
    return TemplateResponse(request, "admin/staff/leaderboard.html", context)
