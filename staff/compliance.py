"""The compliance report for staff: a printable admin page and its CSV export (SPEC §7).

Both views sit behind the admin site's login (`admin_view`: active staff only, others go to the admin login)
and the `commissions.view_compliance_report` permission (403 without it). The figures come from `staff.reports`;
this module only reads the period from the query string and presents them. Included by staff/urls.py at
`admin/back-office/compliance/` (namespace `staff`).
"""

import csv
from collections.abc import Iterable, Iterator
from datetime import date

from django import forms
from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import path
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from commissions.calculations import HARD_MAX_LEVELS
from core.masking import mask_email, mask_name
from core.spreadsheets import spreadsheet_safe
from staff.reports import (
    OFFENDERS_SHOWN,
    ComplianceReport,
    compliance_capped_entries,
    compliance_report,
)

PERMISSION = "commissions.view_compliance_report"
# Bounds that keep the page finite (one row per month) and every date convertible to a database timestamp.
MAX_PERIOD_DAYS = 3660
EARLIEST = date(1970, 1, 1)
LATEST = date(9998, 12, 31)


class ReportPeriodForm(forms.Form):
    date_from = forms.DateField(
        label=gettext_lazy("Paid from"), widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d")
    )
    date_to = forms.DateField(
        label=gettext_lazy("Paid until (inclusive)"),
        widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
    )

    def clean(self):
        cleaned = super().clean()
        date_from, date_to = cleaned.get("date_from"), cleaned.get("date_to")
        if date_from is None or date_to is None:
            return cleaned
        if not (EARLIEST <= date_from <= LATEST and EARLIEST <= date_to <= LATEST):
            raise forms.ValidationError(
                _("Choose dates between %(earliest)s and %(latest)s.") % {"earliest": EARLIEST, "latest": LATEST},
                code="out_of_range",
            )
        if date_from > date_to:
            raise forms.ValidationError(_("The start date is after the end date."), code="reversed")
        if (date_to - date_from).days >= MAX_PERIOD_DAYS:
            raise forms.ValidationError(_("Choose a period of at most ten years."), code="too_long")
        return cleaned


def default_period(today: date | None = None) -> tuple[date, date]:
    """The first day of the current month to today, in the current time zone."""
    today = today or timezone.localdate()
    return today.replace(day=1), today


def _period_form(request: HttpRequest) -> ReportPeriodForm:
    date_from, date_to = default_period()
    data = {
        "date_from": request.GET.get("date_from", date_from.isoformat()),
        "date_to": request.GET.get("date_to", date_to.isoformat()),
    }
    return ReportPeriodForm(data)


def _require_permission(request: HttpRequest) -> None:
    if not request.user.has_perm(PERMISSION):
        raise PermissionDenied


def _page(request: HttpRequest, form: ReportPeriodForm, report: ComplianceReport | None) -> TemplateResponse:
    query = ""
    if report is not None:
        query = f"date_from={report.date_from.isoformat()}&date_to={report.date_to.isoformat()}"
    context = {
        **admin.site.each_context(request),
        "title": _("Compliance report"),
        "form": form,
        "report": report,
        "csv_query": query,
        "hard_max_levels": HARD_MAX_LEVELS,
        "offenders_shown": OFFENDERS_SHOWN,
    }
    return TemplateResponse(request, "admin/staff/compliance_report.html", context)


def compliance_report_view(request: HttpRequest) -> TemplateResponse:
    _require_permission(request)
    form = _period_form(request)
    report = None
    if form.is_valid():
        report = compliance_report(date_from=form.cleaned_data["date_from"], date_to=form.cleaned_data["date_to"])
    return _page(request, form, report)


def _amount(value) -> str:
    return "" if value is None else f"{value:.2f}"


def _fraction(value) -> str:
    return "" if value is None else f"{value:.4f}"


def _text(value) -> str:
    """Text that members typed (names, emails) or that quotes it: never a formula in a spreadsheet."""
    return spreadsheet_safe(value or "")


def compliance_report_csv(request: HttpRequest) -> HttpResponse:
    """One CSV file; the first column names the section, each section starts with its own header row."""
    _require_permission(request)
    form = _period_form(request)
    if not form.is_valid():
        return _page(request, form, None)
    date_from, date_to = form.cleaned_data["date_from"], form.cleaned_data["date_to"]
    report = compliance_report(date_from=date_from, date_to=date_to, capped_limit=0)
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = (
        f'attachment; filename="compliance-{date_from.isoformat()}-{date_to.isoformat()}.csv"'
    )
    writer = csv.writer(response)
    compliance_report_csv_write(writer, report)
    return response


def compliance_report_csv_write(writer, report: ComplianceReport, *, masked: bool = False) -> None:
    """Each section as a header row, then one row per item; every row starts with the section's name."""
    for section, header, rows in compliance_report_sections(report, masked=masked):
        writer.writerow([section, *header])
        for row in rows:
            writer.writerow([section, *row])


def compliance_report_sections(
    report: ComplianceReport, *, masked: bool = False
) -> Iterator[tuple[str, list, Iterable[list]]]:
    """The report's sections as (name, header, rows), as the CSV export writes them (and the evidence pack, as CSV
    and XLSX). The capped entries are read as a stream. `masked`: members' names and emails masked (core.masking),
    for a file that leaves the back office."""
    person = (lambda name: _text(mask_name(name) if name else "")) if masked else _text
    email = (lambda address: _text(mask_email(address))) if masked else _text
    summary = [
        (_("paid from"), report.date_from.isoformat()),
        (_("paid until (inclusive)"), report.date_to.isoformat()),
        (_("gross sales"), _amount(report.gross_sales)),
        (_("refunded"), _amount(report.refunded_sales)),
        (_("net sales"), _amount(report.net_sales)),
        (_("gross sales reported by external networks"), _amount(report.network_gross_sales)),
        (_("net sales reported by external networks"), _amount(report.network_net_sales)),
        (_("gross commission"), _amount(report.gross_commission)),
        (_("member commission"), _amount(report.member_commission)),
        (_("payout ratio"), _fraction(report.payout_ratio)),
        (_("gross payout ratio"), _fraction(report.gross_payout_ratio)),
        (_("commission on own sales (level 1)"), _amount(report.own_sales_commission)),
        (_("share on own sales"), _fraction(report.own_sales_share)),
        (_("commission on others' sales (level 2 and up)"), _amount(report.others_sales_commission)),
        (_("share on others' sales"), _fraction(report.others_sales_share)),
        (_("split lines"), report.lines_split),
        (_("highest level paid"), report.max_level_paid),
        (_("capped entries"), report.capped_count),
        (_("members"), report.members_total),
    ]
    yield "summary", [_("figure"), _("value")], summary

    status = report.preset_status
    if status is not None:
        preset = status.preset
        rows = [
            (_("preset"), preset.code),
            (_("name"), str(preset.label)),
            (_("max paid levels"), preset.max_levels),
            (_("max payout ratio"), _fraction(preset.max_payout_ratio)),
            (_("what it allows"), str(preset.summary)),
            (_("warning"), str(preset.warning)),
            *((_("source"), str(source)) for source in preset.sources),
            (_("rules in force comply"), _("yes") if status.complies else _("NO")),
            *(
                (f"{rules.kind} v{rules.version}", f"{rules.levels} {_('complies') if rules.complies else _('BREAKS')}")
                for rules in status.rules
            ),
        ]
        yield "preset", [_("figure"), _("value")], rows

    yield (
        "policy_versions",
        [_("version"), _("in force from"), _("max paid levels"), _("max total rate"), _("max payout ratio"),
         _("self-purchase earns"), _("created by"), _("note"), _("max payout ratio as published"), _("preset"),
         _("own sales an upline needs"), _("qualification period (days)")],
        ([policy.version, policy.effective_from.isoformat(), policy.max_levels, _fraction(policy.max_total_rate),
          _fraction(policy.max_payout_ratio), policy.self_purchase_earns, _text(policy.created_by), _text(policy.note),
          _fraction(policy.max_payout_ratio_published), policy.preset, policy.upline_min_own_sales,
          policy.upline_qualification_days]
         for policy in report.policies),
    )  # fmt: skip

    yield (
        "plan_versions",
        [_("version"), _("name"), _("rates"), _("in force from"), _("created by"), _("activated by"),
         _("activated at")],
        ([plan.version, _text(plan.name), " / ".join(_fraction(rate) for rate in plan.rates),
          plan.effective_from.isoformat(), _text(plan.created_by), _text(plan.activated_by),
          plan.activated_at.isoformat() if plan.activated_at else ""]
         for plan in report.plans),
    )  # fmt: skip

    yield (
        "members_by_depth",
        [_("depth (1 = a root)"), _("members")],
        ([depth.depth, depth.members] for depth in report.depths),
    )

    yield (
        "levels_paid",
        [_("member levels paid on a line"), _("lines")],
        ([count.levels, count.lines] for count in report.levels_paid),
    )

    yield (
        "per_level",
        [_("level"), _("gross commission"), _("member commission"), _("lines paid"), _("payout ratio"),
         _("gross payout ratio"), _("share of member commission")],
        ([level.level, _amount(level.gross_commission), _amount(level.member_commission), level.lines_paid,
          _fraction(level.payout_ratio), _fraction(level.gross_payout_ratio), _fraction(level.share)]
         for level in report.levels),
    )  # fmt: skip

    yield (
        "per_month",
        [_("month"), _("gross sales"), _("net sales"), _("gross commission"), _("member commission"),
         _("payout ratio"), _("gross payout ratio")],
        ([month.month.strftime("%Y-%m"), _amount(month.gross_sales), _amount(month.net_sales),
          _amount(month.gross_commission), _amount(month.member_commission), _fraction(month.payout_ratio),
          _fraction(month.gross_payout_ratio)]
         for month in report.months),
    )  # fmt: skip

    yield (
        "capped_entries",
        [_("entry"), _("order number"), _("order line"), _("level"), _("member id"), _("member"), _("email"),
         _("base (pool)"), _("rate"), _("amount"), _("before the cap"), _("cap that bound"), _("cap"),
         _("line net amount")],
        ([entry.entry_id, _text(entry.order_number), entry.order_line_id, entry.level, entry.beneficiary_id,
          person(entry.beneficiary), email(entry.beneficiary_email), _amount(entry.base), _fraction(entry.rate),
          _amount(entry.amount), _amount(entry.uncapped_amount), entry.capped_by, _fraction(entry.cap_rate),
          _amount(entry.line_net_amount)]
         for entry in compliance_capped_entries(date_from=report.date_from, date_to=report.date_to)),
    )  # fmt: skip

    yield (
        "top_earners",
        [_("member id"), _("name"), _("email"), _("invite code"), _("depth"), _("gross commission"),
         _("member commission"), *(_("level %(level)d") % {"level": level} for level in range(1, HARD_MAX_LEVELS + 1))],
        ([earner.member_id, person(earner.name), email(earner.email), _text(earner.invite_code), earner.depth,
          _amount(earner.gross_commission), _amount(earner.member_commission),
          *(_amount(amount) for amount in earner.by_level)]
         for earner in report.top_earners),
    )  # fmt: skip

    yield (
        "checks",
        [_("check"), _("result"), _("evidence"), _("offenders")],
        ([check.name, _("pass") if check.passed else _("FAIL"), _text(check.evidence), check.offender_count]
         for check in report.checks),
    )  # fmt: skip
    yield (
        "check_offenders",
        [_("check"), _("order number"), _("order line"), _("entry"), _("detail")],
        ([check.name, _text(offender.order_number), offender.order_line_id, offender.entry_id or "",
          _text(offender.detail)]
         for check in report.checks for offender in check.offenders),
    )  # fmt: skip


compliance_report_page = admin.site.admin_view(compliance_report_view)
compliance_report_csv_download = admin.site.admin_view(compliance_report_csv)

urlpatterns = [
    path("", compliance_report_page, name="compliance_report"),
    path("csv/", compliance_report_csv_download, name="compliance_report_csv"),
]
