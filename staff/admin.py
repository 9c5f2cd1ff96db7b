"""The back office's own rows in the admin (job runs, the reconciliation with the providers' bills, the tax reports,
the evidence packs), and the admin list of plan simulations (whose pages are staff's).

BackOffice is not registered: it has no table, only permissions.
"""

import logging
from datetime import timedelta

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import Count, Q
from django.http import Http404, HttpResponseRedirect, StreamingHttpResponse
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.cache import add_never_cache_headers
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from commissions.models import PlanSimulation
from core.admin_tools import ReadOnlyAdmin, action_input_page
from core.task_helpers import task_send
from staff import (
    evidence,
    risk_admin,  # noqa: F401 - registers the risk review queue and rules (issue #25)
)
from staff.compliance import ReportPeriodForm
from staff.models import EvidencePack, JobRun, ReconciliationDifference, ReconciliationRun, TaxReport, TaxReportPiece
from staff.reconciliation import RAILS, reconciliation_repair, reconciliation_resolve, yesterday
from staff.simulator import ADD_PERMISSION
from staff.tasks import reconciliation_run_task
from staff.tax_reports import (
    TaxReportError,
    period_of,
    period_parse,
    tax_report_download,
    tax_report_may_download,
    tax_report_request,
)

logger = logging.getLogger(__name__)


@admin.register(JobRun)
class JobRunAdmin(ReadOnlyAdmin):
    """When each periodic job last finished, as staff.jobs records it (the overview flags the late ones)."""

    list_display = ("name", "last_finished_at", "last_result")
    search_fields = ("name",)
    ordering = ("name",)
    fields = ("name", "last_finished_at", "last_result")

    def has_change_permission(self, request, obj=None):
        return False  # no actions: nothing here is changed by hand


# --- The plan simulations' admin list (at /admin/commissions/plansimulation/): it opens the simulator's pages ---


@admin.register(PlanSimulation)
class PlanSimulationAdmin(admin.ModelAdmin):
    """Read-only: a simulation is created on its own page and never edited; add and open go to those pages."""

    list_display = ("name_link", "status", "progress", "date_from", "date_to", "created_by", "created_at")
    list_filter = ("status",)
    list_select_related = ("created_by",)
    list_display_links = None
    list_per_page = 50

    @admin.display(description=_("name"), ordering="name")
    def name_link(self, obj: PlanSimulation):
        return format_html('<a href="{}">{}</a>', reverse("staff:simulation_detail", args=[obj.pk]), obj)

    @admin.display(description=_("progress"))
    def progress(self, obj: PlanSimulation) -> str:
        return f"{obj.progress_percent} %"

    def has_add_permission(self, request):
        return request.user.has_perm(ADD_PERMISSION)

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def add_view(self, request, form_url="", extra_context=None):
        return redirect("staff:simulation_create")

    def change_view(self, request, object_id, form_url="", extra_context=None):
        if not self.has_view_permission(request):
            raise PermissionDenied
        if not str(object_id).isdigit():
            raise Http404
        return redirect("staff:simulation_detail", pk=int(object_id))


# --- The reconciliation with the providers' bills (staff.reconciliation) ---------------------------------------


class ReconcileDayForm(forms.Form):
    provider = forms.ChoiceField(label=_("Provider"), choices=[(name, name) for name in RAILS])
    bill_date = forms.DateField(
        label=_("Bill date (China time)"), widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d")
    )

    def clean_bill_date(self):
        day = self.cleaned_data["bill_date"]
        if not yesterday() - timedelta(days=90) <= day <= yesterday():
            raise forms.ValidationError(_("Choose a day of the last 90 days, yesterday at the latest."))
        return day


class ResolveForm(forms.Form):
    note = forms.CharField(
        label=_("What was found and done"), max_length=2000, widget=forms.Textarea(attrs={"rows": 3})
    )


def _run_later(provider: str, bill_date) -> None:
    task_send(
        reconciliation_run_task,
        provider,
        bill_date.isoformat(),
        logger=logger,
        fallback="the daily reconciliation runs failed days again",
    )


@admin.register(ReconciliationRun)
class ReconciliationRunAdmin(ReadOnlyAdmin):
    """One row per provider and day: how the bills compared. "Reconcile a day" (the list's button) and "Run again"
    queue a run; a run replaces its open differences."""

    list_display = ("bill_date", "provider", "status", "lines_on_bill", "records_checked", "open_link", "finished_at")
    list_filter = ("provider", "status", "bill_date")
    date_hierarchy = "bill_date"
    list_per_page = 100
    show_full_result_count = False
    actions = ("run_again",)
    fields = ("provider", "bill_date", "status", "lines_on_bill", "records_checked", "started_at", "finished_at",
              "error", "open_link")  # fmt: skip

    def get_queryset(self, request):
        return (
            super()
            .get_queryset(request)
            .annotate(open_count=Count("differences", filter=Q(differences__resolved_at__isnull=True)))
        )

    def get_urls(self):
        urls = [
            path(
                "reconcile/", self.admin_site.admin_view(self.reconcile_view), name="staff_reconciliationrun_reconcile"
            )
        ]
        return urls + super().get_urls()

    def changelist_view(self, request, extra_context=None):
        extra_context = {**(extra_context or {}), "can_reconcile": self.has_change_permission(request)}
        return super().changelist_view(request, extra_context)

    @admin.display(description=_("open differences"), ordering="open_count")
    def open_link(self, run):
        url = reverse("admin:staff_reconciliationdifference_changelist") + f"?run__id__exact={run.pk}&open=yes"
        return format_html('<a href="{}">{}</a>', url, run.open_count)

    @admin.action(description=_("Run again"), permissions=["change"])
    def run_again(self, request, queryset):
        for run in queryset.order_by("bill_date", "provider")[:31]:
            _run_later(run.provider, run.bill_date)
        self.message_user(request, _("Queued; reload the list in a minute."), messages.SUCCESS)

    def reconcile_view(self, request):
        if not self.has_change_permission(request):
            raise PermissionDenied
        form = ReconcileDayForm(request.POST or None, initial={"bill_date": yesterday()})
        if request.method == "POST" and form.is_valid():
            _run_later(form.cleaned_data["provider"], form.cleaned_data["bill_date"])
            self.message_user(request, _("Queued; reload the list in a minute."), messages.SUCCESS)
            return HttpResponseRedirect(reverse("admin:staff_reconciliationrun_changelist"))
        context = {
            **self.admin_site.each_context(request),
            "title": _("Reconcile a day"),
            "opts": self.opts,
            "form": form,
        }
        return TemplateResponse(request, "admin/staff/reconcile_day.html", context)


class OpenFilter(admin.SimpleListFilter):
    title = _("open or resolved")
    parameter_name = "open"

    def lookups(self, request, model_admin):
        return [("yes", _("Open")), ("no", _("Resolved"))]

    def queryset(self, request, queryset):
        if self.value() == "yes":
            return queryset.filter(resolved_at__isnull=True)
        if self.value() == "no":
            return queryset.filter(resolved_at__isnull=False)
        return queryset


@admin.register(ReconciliationDifference)
class ReconciliationDifferenceAdmin(ReadOnlyAdmin):
    """What our records and a provider's bill disagree on. "Ask the provider again" repairs a payment or transfer
    whose notification never came; "Resolve" closes one staff have dealt with, with a note."""

    list_display = ("run", "subject", "reference", "kind", "our_amount", "their_amount", "our_status",
                    "their_status", "repair", "resolved_at")  # fmt: skip
    list_filter = (OpenFilter, "run__provider", "kind", "subject", "run__bill_date")
    search_fields = ("=reference",)
    search_help_text = _("The exact number at the provider (order payment, refund or transfer number).")
    list_select_related = ("run",)
    list_per_page = 100
    show_full_result_count = False
    actions = ("repair_now", "resolve")
    fields = ("run", "subject", "reference", "kind", "our_amount", "their_amount", "our_status", "their_status",
              "repair", "created_at", "resolved_at", "resolution")  # fmt: skip

    @admin.action(description=_("Ask the provider again"), permissions=["change"])
    def repair_now(self, request, queryset):
        for difference in queryset.filter(resolved_at__isnull=True).select_related("run").order_by("pk")[:100]:
            self.message_user(request, f"{difference}: {reconciliation_repair(difference)}", messages.INFO)

    @admin.action(description=_("Resolve (with a note)…"), permissions=["change"])
    def resolve(self, request, queryset):
        form = ResolveForm(request.POST if "apply" in request.POST else None)
        if form.is_valid():
            resolved = sum(
                reconciliation_resolve(difference=d, note=form.cleaned_data["note"], actor_label=request.user.email)
                for d in queryset.filter(resolved_at__isnull=True)
            )
            message = ngettext("Resolved %d difference.", "Resolved %d differences.", resolved) % resolved
            self.message_user(request, message, messages.SUCCESS)
            return None
        return action_input_page(
            self,
            request,
            action="resolve",
            title=_("Resolve differences"),
            intro=_("Say what was found and done; the note is kept with each difference."),
            objects=[str(d) for d in queryset.select_related("run")[:100]],
            form=form,
            submit_label=_("Resolve"),
        )


# --- The tax reports (staff.tax_reports; docs/tax.md) ---------------------------------------------------------


class TaxReportForm(forms.Form):
    kind = forms.ChoiceField(label=_("Report"), choices=TaxReport.Kind.choices)
    period = forms.CharField(
        label=_("Period"),
        max_length=10,
        help_text=_("A quarter as 2026Q1 for the quarterly report, a month as 2026-03 for the monthly summary."),
    )

    def clean(self):
        cleaned = super().clean()
        if cleaned.get("kind") and cleaned.get("period"):
            try:
                cleaned["parsed"] = period_parse(cleaned["kind"], cleaned["period"])
            except TaxReportError as error:
                self.add_error("period", str(error))
        return cleaned


class GeneratedFileAdmin(ReadOnlyAdmin):
    """A file the back office generates in a task (staff.file_jobs): its status and progress, "Generate …" (the
    list's button, a form) and "Generate again" (an action) for those with `generate_permission`, and the file's
    links for those who may download it."""

    generate_permission: str
    generate_form: type[forms.Form]
    generate_title: str
    generate_template: str
    request_error: type[Exception]
    actions = ("generate_again",)
    change_list_template = "admin/staff/generated_file/change_list.html"

    def request_file(self, cleaned_data: dict, actor):
        """Queue the file the form describes (raises `request_error` with a message fit to show)."""
        raise NotImplementedError

    def request_again(self, obj, actor):
        raise NotImplementedError

    def may_download(self, user) -> bool:
        raise NotImplementedError

    def queued_message(self, count: int) -> str:
        raise NotImplementedError

    @admin.display(description=_("progress"))
    def progress(self, obj) -> str:
        if obj.status == obj.Status.QUEUED:
            return _("waiting for a worker")
        if obj.status == obj.Status.RUNNING:
            return _("%(done)s of %(total)s rows (%(percent)s %%)") % {
                "done": obj.rows_done, "total": obj.rows_total, "percent": obj.progress_percent,
            }  # fmt: skip
        return f"{obj.progress_percent} %"

    def get_urls(self):
        name = f"{self.opts.app_label}_{self.opts.model_name}_generate"
        urls = [path("generate/", self.admin_site.admin_view(self.generate_view), name=name)]
        return urls + super().get_urls()

    def has_generate_permission(self, request) -> bool:
        return request.user.has_perm(self.generate_permission)

    def get_actions(self, request):
        actions = super().get_actions(request)
        if not self.has_generate_permission(request):
            actions.pop("generate_again", None)
        return actions

    def get_list_display(self, request):
        shown = super().get_list_display(request)
        return shown if self.may_download(request.user) else [name for name in shown if name != "downloads"]

    def get_fields(self, request, obj=None):
        shown = super().get_fields(request, obj)
        return shown if self.may_download(request.user) else [name for name in shown if name != "downloads"]

    def changelist_view(self, request, extra_context=None):
        extra_context = {
            **(extra_context or {}),
            "can_generate": self.has_generate_permission(request),
            "generate_label": self.generate_title,
        }
        return super().changelist_view(request, extra_context)

    def change_view(self, request, object_id, form_url="", extra_context=None):
        extra_context = {**(extra_context or {}), "can_download": self.may_download(request.user)}
        return super().change_view(request, object_id, form_url, extra_context)

    @admin.action(description=_("Generate again"))
    def generate_again(self, request, queryset):
        queued = 0
        for obj in queryset.order_by("pk")[:24]:
            try:
                self.request_again(obj, request.user)
            except self.request_error as error:
                self.message_user(request, f"{obj}: {error}", messages.WARNING)
            else:
                queued += 1
        self.message_user(request, self.queued_message(queued), messages.SUCCESS)

    def generate_view(self, request):
        if not self.has_generate_permission(request):
            raise PermissionDenied
        form = self.generate_form(request.POST or None)
        if request.method == "POST" and form.is_valid():
            try:
                obj = self.request_file(form.cleaned_data, request.user)
            except self.request_error as error:
                form.add_error(None, str(error))
            else:
                self.message_user(
                    request, _("Queued: this page shows how far it is; the files are here when it is done."),
                    messages.SUCCESS,
                )  # fmt: skip
                change = f"admin:{self.opts.app_label}_{self.opts.model_name}_change"
                return HttpResponseRedirect(reverse(change, args=[obj.pk]))
        context = {
            **self.admin_site.each_context(request),
            "title": self.generate_title,
            "opts": self.opts,
            "form": form,
        }
        return TemplateResponse(request, self.generate_template, context)


@admin.register(TaxReport)
class TaxReportAdmin(GeneratedFileAdmin):
    """One row per report and period: its status, progress and check, and (for finance) its files. "Generate a tax
    report" (the list's button) and "Generate again" queue a run; a run replaces the earlier files."""

    list_display = ("period", "kind", "status", "progress", "check_summary", "requested_by", "requested_at",
                    "finished_at", "downloads")  # fmt: skip
    list_filter = ("kind", "status", "is_check_passed")
    list_select_related = ("requested_by",)
    list_per_page = 50
    change_form_template = "admin/staff/taxreport/change_form.html"
    fields = ("kind", "period", "status", "progress", "rows_done", "rows_total", "requested_by", "requested_at",
              "started_at", "finished_at", "attempts", "check_details", "xlsx_sha256", "csv_sha256", "error",
              "downloads")  # fmt: skip
    generate_permission = "staff.add_taxreport"
    generate_form = TaxReportForm
    generate_title = _("Generate a tax report")
    generate_template = "admin/staff/taxreport/generate.html"
    request_error = TaxReportError

    def request_file(self, cleaned_data, actor):
        return tax_report_request(period=cleaned_data["parsed"], actor=actor)

    def request_again(self, report, actor):
        return tax_report_request(period=period_of(report), actor=actor)

    def may_download(self, user) -> bool:
        return tax_report_may_download(user)

    def queued_message(self, count: int) -> str:
        return ngettext("%d report queued.", "%d reports queued.", count) % count

    @admin.display(description=_("period"), ordering="period_start")
    def period(self, report: TaxReport) -> str:
        return report.period_label

    @admin.display(description=_("check"), ordering="is_check_passed")
    def check_summary(self, report: TaxReport) -> str:
        check = report.check_result or {}
        if not check:
            return "—"
        verdict = _("passed") if check.get("passed") else _("FAILED")
        ledger, written = check.get("ledger", {}), check.get("report", {})
        return _("%(verdict)s: %(rows)s rows for %(earners)s members paid; gross %(gross)s of %(ledger_gross)s, "
                 "tax %(tax)s of %(ledger_tax)s") % {
            "verdict": verdict, "rows": written.get("rows"), "earners": ledger.get("earners"),
            "gross": written.get("gross"), "ledger_gross": ledger.get("gross"), "tax": written.get("tax"),
            "ledger_tax": ledger.get("tax"),
        }  # fmt: skip

    @admin.display(description=_("the check against the payouts"))
    def check_details(self, report: TaxReport):
        check = report.check_result or {}
        if not check:
            return "—"
        ledger, written = check["ledger"], check["report"]
        lines = [
            (_("Result"), _("passed") if check["passed"] else _("FAILED")),
            (_("Members paid in the period (ledger)"), ledger["earners"]),
            (_("Rows written"), written["rows"]),
            (_("Missing members"), check["missing"]),
            (_("Duplicate rows"), _listed(check["duplicates"])),
            (_("Paid without an identity on file"), _listed(check["without_identity"])),
            (_("Identity that cannot be decrypted"), _listed(check["unreadable_identity"])),
            (_("Payouts: report / ledger"), f"{written['payouts']} / {ledger['payouts']}"),
            (_("Gross: report / ledger"), f"{written['gross']} / {ledger['gross']}"),
            (_("Tax withheld: report / ledger"), f"{written['tax']} / {ledger['tax']}"),
            (_("Net paid: report / ledger"), f"{written['net']} / {ledger['net']}"),
        ]
        if "withdrawals" in check:
            withdrawals = check["withdrawals"]
            lines.append((_("Withdrawals: count and amount"), f"{withdrawals['count']} · {withdrawals['amount']}"))
            lines.append((_("Withdrawals taxed but not sent or paid"), withdrawals["not_sent"]))
        return format_html_join("", "<div>{}: {}</div>", lines)

    @admin.display(description=_("files"))
    def downloads(self, report: TaxReport):
        if report.status != TaxReport.Status.DONE:
            return "—"
        return format_html(
            '<a href="{}">XLSX</a> · <a href="{}">CSV</a>',
            reverse("admin:staff_taxreport_download", args=[report.pk, "xlsx"]),
            reverse("admin:staff_taxreport_download", args=[report.pk, "csv"]),
        )

    def get_urls(self):
        urls = [
            path(
                "<int:report_id>/download/<str:file_format>/",
                self.admin_site.admin_view(self.download_view),
                name="staff_taxreport_download",
            ),
        ]
        return urls + super().get_urls()

    def download_view(self, request, report_id: int, file_format: str):
        if not tax_report_may_download(request.user):
            raise PermissionDenied
        if file_format not in TaxReportPiece.Format.values:
            raise Http404
        report = TaxReport.objects.filter(pk=report_id, status=TaxReport.Status.DONE).first()
        if report is None:
            raise Http404
        content_type = (
            "text/csv; charset=utf-8"
            if file_format == "csv"
            else "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
        )
        response = StreamingHttpResponse(
            tax_report_download(report=report, file_format=file_format, actor=request.user), content_type=content_type
        )
        name = f"{'tax-810' if report.kind == TaxReport.Kind.QUARTERLY else 'withholding'}-{report.period_label}"
        response["Content-Disposition"] = f'attachment; filename="{name}.{file_format}"'
        add_never_cache_headers(response)
        return response


# --- The evidence packs (staff.evidence; docs/compliance.md) ---------------------------------------------------


class EvidencePackForm(ReportPeriodForm):
    """The period: the compliance report's bounds (dates a database can hold, at most ten years), not in the
    future."""

    date_from = forms.DateField(label=_("From"), widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"))
    date_to = forms.DateField(
        label=_("To (inclusive)"), widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d")
    )

    def clean_date_to(self):
        day = self.cleaned_data["date_to"]
        if day > timezone.localdate():
            raise forms.ValidationError(_("Choose a period that has ended: today at the latest."))
        return day


@admin.register(EvidencePack)
class EvidencePackAdmin(GeneratedFileAdmin):
    """One row per period: its status and progress, the manifest's checksum (to hand over separately) and, for
    those with the permission, the ZIP (each download audited). "Generate an evidence pack" (the list's button)
    and "Generate again" queue a run; a run replaces the earlier ZIP."""

    list_display = ("period", "status", "progress", "manifest_sha256", "audit_rows", "requested_by", "requested_at",
                    "finished_at", "downloads")  # fmt: skip
    list_filter = ("status",)
    list_select_related = ("requested_by",)
    list_per_page = 50
    change_form_template = "admin/staff/evidencepack/change_form.html"
    fields = ("period", "status", "progress", "step", "requested_by", "requested_at", "started_at", "finished_at",
              "attempts", "manifest_sha256", "zip_sha256", "zip_size", "audit_rows", "error", "downloads")  # fmt: skip
    generate_permission = evidence.REQUEST_PERMISSION
    generate_form = EvidencePackForm
    generate_title = _("Generate an evidence pack")
    generate_template = "admin/staff/evidencepack/generate.html"
    request_error = evidence.EvidencePackError

    def request_file(self, cleaned_data, actor):
        return evidence.evidence_pack_request(
            date_from=cleaned_data["date_from"], date_to=cleaned_data["date_to"], actor=actor
        )

    def request_again(self, pack, actor):
        return evidence.evidence_pack_request(date_from=pack.period_start, date_to=pack.period_end, actor=actor)

    def may_download(self, user) -> bool:
        return evidence.evidence_pack_may_download(user)

    def queued_message(self, count: int) -> str:
        return ngettext("%d evidence pack queued.", "%d evidence packs queued.", count) % count

    @admin.display(description=_("period"), ordering="period_end")
    def period(self, pack: EvidencePack) -> str:
        return pack.period_label

    @admin.display(description=_("progress"))
    def progress(self, pack: EvidencePack) -> str:
        if pack.status == EvidencePack.Status.RUNNING:
            return _("%(done)s of %(total)s parts (%(percent)s %%): %(step)s") % {
                "done": pack.rows_done, "total": pack.rows_total, "percent": pack.progress_percent, "step": pack.step,
            }  # fmt: skip
        return super().progress(pack)

    @admin.display(description=_("file"))
    def downloads(self, pack: EvidencePack):
        if pack.status != EvidencePack.Status.DONE:
            return "—"
        return format_html('<a href="{}">ZIP</a>', reverse("admin:staff_evidencepack_download", args=[pack.pk]))

    def get_urls(self):
        urls = [
            path(
                "<int:pack_id>/download/",
                self.admin_site.admin_view(self.download_view),
                name="staff_evidencepack_download",
            ),
        ]
        return urls + super().get_urls()

    def download_view(self, request, pack_id: int):
        if not evidence.evidence_pack_may_download(request.user):
            raise PermissionDenied
        pack = EvidencePack.objects.filter(pk=pack_id, status=EvidencePack.Status.DONE).first()
        if pack is None:
            raise Http404
        response = StreamingHttpResponse(
            evidence.evidence_pack_download(pack=pack, actor=request.user), content_type="application/zip"
        )
        name = f"evidence-pack-{pack.period_start.isoformat()}-{pack.period_end.isoformat()}-run{pack.generation}"
        response["Content-Disposition"] = f'attachment; filename="{name}.zip"'
        response["Content-Length"] = str(pack.zip_size)
        add_never_cache_headers(response)
        return response


def _listed(found: dict) -> str:
    if not found.get("count"):
        return "0"
    members = ", ".join(f"#{member}" for member in found.get("members", []))
    more = "…" if found["count"] > len(found.get("members", [])) else ""
    return f"{found['count']} ({members}{more})"
