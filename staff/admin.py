"""The back office's own rows in the admin (job runs, the reconciliation with the providers' bills), and the admin
list of plan simulations (whose pages are staff's).

BackOffice is not registered: it has no table, only permissions.
"""

import logging
from datetime import timedelta

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.core.exceptions import PermissionDenied
from django.db.models import Count, Q
from django.http import Http404, HttpResponseRedirect
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from commissions.models import PlanSimulation
from core.admin_tools import ReadOnlyAdmin
from core.task_helpers import task_send
from staff import risk_admin  # noqa: F401 - registers the risk review queue and rules (issue #25)
from staff.models import JobRun, ReconciliationDifference, ReconciliationRun
from staff.reconciliation import RAILS, reconciliation_repair, reconciliation_resolve, yesterday
from staff.simulator import ADD_PERMISSION
from staff.tasks import reconciliation_run_task

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
        # The payouts admin's page for an action that needs input serves here too.
        context = {
            **self.admin_site.each_context(request),
            "title": _("Resolve differences"),
            "intro": _("Say what was found and done; the note is kept with each difference."),
            "opts": self.opts,
            "objects": [str(d) for d in queryset.select_related("run")[:100]],
            "form": form,
            "action": "resolve",
            "submit_label": _("Resolve"),
            "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
            "selected": request.POST.getlist(helpers.ACTION_CHECKBOX_NAME),
            "select_across": request.POST.get("select_across") == "1",
        }
        return TemplateResponse(request, "admin/payouts/action_form.html", context)
