"""The staff overview: sales, commission and payouts over 30 days, work waiting for staff, and health figures.

Read-only. Every figure comes from staff/selectors.py (one query each), so the page costs the same number of
queries whatever the amount of data.
"""

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import formats
from django.utils.http import urlencode
from django.utils.safestring import mark_safe
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext

from core.money import format_money
from payouts.models import Withdrawal
from shops.models import Order
from staff.charts import Series, amounts_chart_svg
from staff.selectors import SPLIT_LATE_AFTER, staff_overview

PERMISSION = "staff.view_staff_overview"

JOB_LABELS = {
    "clicks_flush": gettext_lazy("Click flush"),
    "commission_release": gettext_lazy("Commission release"),
    "commission_sweep": gettext_lazy("Split sweep"),
    "tree_index": gettext_lazy("Tree index (new members placed)"),
}


def _duration(delta) -> str:
    """A beat interval in words: "30 seconds", "2 minutes", "1 hour"."""
    seconds = int(delta.total_seconds())
    if seconds < 120 and seconds % 60:
        return ngettext("%(count)d second", "%(count)d seconds", seconds) % {"count": seconds}
    if seconds < 2 * 3600 and seconds % 3600:
        minutes = seconds // 60
        return ngettext("%(count)d minute", "%(count)d minutes", minutes) % {"count": minutes}
    hours = seconds // 3600
    return ngettext("%(count)d hour", "%(count)d hours", hours) % {"count": hours}


def _changelist(request, permission: str, url_name: str, **filters) -> str:
    """The admin list's URL, filtered, if the user may open it; "" otherwise (the page then shows no link)."""
    if not request.user.has_perm(permission):
        return ""
    url = reverse(url_name)
    return f"{url}?{urlencode(filters)}" if filters else url


@admin.site.admin_view
def overview(request):
    if not request.user.has_perm(PERMISSION):
        raise PermissionDenied
    data = staff_overview()
    series = data.series
    chart = amounts_chart_svg(
        [row.day for row in series.days],
        [
            Series(_("Sales (paid orders)"), [row.sales for row in series.days]),
            Series(_("Member commission"), [row.commission for row in series.days]),
            Series(_("Payouts paid"), [row.payouts for row in series.days]),
        ],
        title=_("Sales, commission and payouts, last %(days)d days") % {"days": len(series.days)},
        description=_("Daily gross sales of paid orders, member commission written and withdrawals paid."),
        format_amount=format_money,
        format_day=lambda day: formats.date_format(day, "MONTH_DAY_FORMAT"),
        chart_id="staff-overview-chart",
    )
    Status = Withdrawal.Status
    context = {
        **admin.site.each_context(request),
        "title": _("Overview"),
        "overview": data,
        # amounts_chart_svg escapes every piece of text it draws.
        "chart": mark_safe(chart),  # noqa: S308 - amounts_chart_svg escapes all the text it draws
        "days_newest_first": list(reversed(series.days)),
        "jobs": [
            {
                "label": JOB_LABELS.get(job.name, job.name),
                "job": job,
                "interval": _duration(job.interval) if job.interval else "",
            }
            for job in data.jobs
        ],
        "split_late_minutes": int(SPLIT_LATE_AFTER.total_seconds() // 60),
        "links": {
            "requested": _changelist(
                request,
                "payouts.view_withdrawal",
                "admin:payouts_withdrawal_changelist",
                status__exact=Status.REQUESTED,
            ),
            "approved": _changelist(
                request, "payouts.view_withdrawal", "admin:payouts_withdrawal_changelist", status__exact=Status.APPROVED
            ),
            "awaiting_shipment": _changelist(
                request, "shops.view_order", "admin:shops_order_changelist", status__exact=Order.Status.PAID
            ),
            "split_queue": _changelist(
                request, "commissions.view_splitqueue", "admin:commissions_splitqueue_changelist"
            ),
            "click_flushes": _changelist(request, "shops.view_clickflush", "admin:shops_clickflush_changelist"),
            "job_runs": _changelist(request, "staff.view_jobrun", "admin:staff_jobrun_changelist"),
        },
    }
    return TemplateResponse(request, "admin/staff/overview.html", context)
