"""Staff pages for external networks: connector settings and sync status ("sync now"), reported orders (with the
unmatched ones to attribute), the products feed, sync runs and report-file imports.

Rows are written by services only (`networks.services`); the admin shows them and its actions call the services.
Credentials are environment variables: the network page says whether they are set, never what they are.
"""

import logging

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.contrib.admin.utils import display_for_field
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import Count, Q, Value
from django.db.models.functions import Coalesce
from django.http import HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext
from modeltranslation.admin import TranslationAdmin

from core.admin_tools import ReadOnlyAdmin, ReadOnlyInline, action_input_page
from core.i18n import localized
from core.task_helpers import task_send
from networks.connectors import CONNECTORS, connector_configured
from networks.imports import NETWORKS as IMPORT_FORMATS
from networks.imports import ImportRefused, report_file_check
from networks.models import (
    ExternalOrder,
    ExternalOrderEvent,
    ExternalProduct,
    Network,
    ReportImport,
    SyncRun,
    TrackingId,
)
from networks.selectors import report_import_progress
from networks.services import external_order_assign, external_products_sync, report_import_create
from networks.tasks import network_sync_one_task, report_import_run_task
from referrals.models import Member

logger = logging.getLogger(__name__)


@admin.register(Network)
class NetworkAdmin(TranslationAdmin):
    """The name is edited in both languages (members see it in theirs); English is required."""

    list_display = (
        "name",
        "code",
        "is_enabled",
        "credentials",
        "cursor",
        "last_sync_at",
        "consecutive_failures",
        "error_short",
        "unmatched",
    )
    list_filter = ("is_enabled",)
    fields = (
        "name",
        "code",
        "is_enabled",
        "credentials",
        "cursor",
        "last_sync_at",
        "consecutive_failures",
        "last_error",
    )
    readonly_fields = ("credentials", "cursor", "last_sync_at", "consecutive_failures", "last_error")
    actions = ("sync_now", "sync_products")

    def get_readonly_fields(self, request, obj=None):
        return (*self.readonly_fields, "code") if obj else self.readonly_fields

    def has_delete_permission(self, request, obj=None):
        return False  # orders and ledger entries point at it

    def get_queryset(self, request):
        return (
            super()
            .get_queryset(request)
            .annotate(unmatched_count=Count("orders", filter=Q(orders__member__isnull=True)))
        )

    @admin.display(description=gettext_lazy("connection"))
    def credentials(self, network):
        if network.code not in CONNECTORS:
            return _("no connector: import the network's order reports") if network.code in IMPORT_FORMATS else "-"
        if connector_configured(network.code):
            return _("configured in the environment")
        return _("not configured: set NETWORK_%(code)s_URL, _APP_KEY and _APP_SECRET") % {"code": network.code.upper()}

    @admin.display(description=gettext_lazy("last error"))
    def error_short(self, network):
        return (network.last_error[:80] + "…") if len(network.last_error) > 80 else network.last_error

    @admin.display(description=gettext_lazy("unmatched orders"), ordering="unmatched_count")
    def unmatched(self, network):
        if not network.unmatched_count:
            return 0
        url = reverse("admin:networks_externalorder_changelist") + f"?network__id__exact={network.pk}&matched=no"
        return format_html('<a href="{}">{}</a>', url, network.unmatched_count)

    @admin.action(description=gettext_lazy("Sync orders now"), permissions=["change"])
    def sync_now(self, request, queryset):
        for network in queryset.filter(is_enabled=True, code__in=list(CONNECTORS)):
            if not connector_configured(network.code):
                self.message_user(
                    request, _("%(network)s is not configured; nothing synced.") % {"network": network}, messages.ERROR
                )
                continue
            if task_send(network_sync_one_task, network.code, logger=logger, fallback="the periodic sync will run it"):
                self.message_user(request, _("Sync of %(network)s requested.") % {"network": network}, messages.SUCCESS)
            else:
                self.message_user(
                    request,
                    _("The task queue is unreachable; %(network)s will sync on schedule.") % {"network": network},
                    messages.WARNING,
                )

    @admin.action(description=gettext_lazy("Refresh the product feed"), permissions=["change"])
    def sync_products(self, request, queryset):
        from networks.connectors.base import ConnectorError

        for network in queryset.filter(is_enabled=True, code__in=list(CONNECTORS)):
            try:
                count = external_products_sync(network=network, pages=5)
            except ConnectorError as error:
                self.message_user(
                    request, _("%(network)s: %(error)s") % {"network": network, "error": error}, messages.ERROR
                )
                continue
            self.message_user(
                request, _("%(network)s: %(count)d products refreshed.") % {"network": network, "count": count}
            )


class EventInline(ReadOnlyInline):
    model = ExternalOrderEvent
    fields = ("at", "from_status", "to_status", "from_commission", "to_commission", "source", "actor", "note")
    parent_permissions = ("networks.view_externalorder",)


class MatchedFilter(admin.SimpleListFilter):
    title = gettext_lazy("attributed")
    parameter_name = "matched"

    def lookups(self, request, model_admin):
        return (("yes", _("to a member")), ("no", _("to nobody (needs staff)")))

    def queryset(self, request, queryset):
        if self.value() == "yes":
            return queryset.filter(member__isnull=False)
        if self.value() == "no":
            return queryset.filter(member__isnull=True)
        return queryset


class AssignForm(forms.Form):
    invite_code = forms.CharField(label=gettext_lazy("member's invite code"), max_length=16)

    def clean_invite_code(self):
        code = self.cleaned_data["invite_code"].strip().upper()
        member = Member.objects.filter(invite_code=code).first()
        if member is None:
            raise ValidationError(_("No member has this invite code."))
        return member


@admin.register(ExternalOrder)
class ExternalOrderAdmin(ReadOnlyAdmin):
    list_display = (
        "external_order_id",
        "line_id",
        "network",
        "member",
        "tracking_id",
        "status",
        "paid_amount",
        "commission",
        "paid_at",
        "revision",
    )
    list_filter = ("network", "status", MatchedFilter)
    search_fields = ("=external_order_id", "=tracking_id", "=member__invite_code", "title")
    list_select_related = ("network", "member__user", "split")
    date_hierarchy = "paid_at"
    inlines = (EventInline,)
    actions = ("assign_member",)
    fields = (
        "network",
        "external_order_id",
        "line_id",
        "tracking_id",
        "member",
        "product_id",
        "title",
        "quantity",
        "paid_amount",
        "commission",
        "status",
        "paid_at",
        "network_updated_at",
        "settled_at",
        "source",
        "first_seen_at",
        "updated_at",
        "split_commission",
        "split_status",
        "revision",
        "plan",
        "policy",
        "chain",
        "raw",
    )

    # What the ledger holds for the line lives in the ledger's own record, the commissions app's (`line.split`, none
    # before the line is first split); shown here as it was when those were the line's fields, with their labels
    # (plan, policy and chain, which had no verbose name, by their names).
    @admin.display(description=gettext_lazy("ledger revision"), ordering=Coalesce("split__revision", Value(0)))
    def revision(self, line) -> int:
        split = getattr(line, "split", None)
        return split.revision if split is not None else 0

    @admin.display(description=gettext_lazy("commission in the ledger"))
    def split_commission(self, line):
        return self._split_field(line, "split_commission")

    @admin.display(description=gettext_lazy("status in the ledger"))
    def split_status(self, line):
        return self._split_field(line, "split_status")

    def plan(self, line):
        return self._split_field(line, "plan")

    def policy(self, line):
        return self._split_field(line, "policy")

    def chain(self, line):
        return self._split_field(line, "chain")

    def _split_field(self, line, name: str) -> str:
        """The split's field as the admin shows a read-only field: its display value, a link for a related row."""
        split = getattr(line, "split", None)
        value = getattr(split, name, None)
        if value is None:
            return self.get_empty_value_display()
        field = split._meta.get_field(name)
        if field.is_relation:
            url = reverse(f"admin:{value._meta.app_label}_{value._meta.model_name}_change", args=[value.pk])
            return format_html('<a href="{}">{}</a>', url, value)
        return format_html("{}", display_for_field(value, field, self.get_empty_value_display()))

    @admin.action(description=gettext_lazy("Attribute to a member…"), permissions=["change"])
    def assign_member(self, request, queryset):
        unmatched = list(queryset.filter(member__isnull=True))
        if not unmatched:
            self.message_user(request, _("Choose orders attributed to nobody."), messages.WARNING)
            return None
        form = AssignForm(request.POST if "apply" in request.POST else None)
        if form.is_valid():
            member = form.cleaned_data["invite_code"]
            done = 0
            for line in unmatched:
                try:
                    external_order_assign(line=line, member=member, actor=request.user)
                    done += 1
                except ValidationError as error:
                    self.message_user(request, f"{line}: {' '.join(error.messages)}", messages.ERROR)
            self.message_user(
                request, _("%(count)d orders attributed to %(member)s.") % {"count": done, "member": member}
            )
            return None
        return action_input_page(
            self,
            request,
            action="assign_member",
            title=_("Attribute orders to a member"),
            intro=_("Their commission is split from now on, under the plan in force when they were paid."),
            objects=unmatched,
            form=form,
            submit_label=_("Attribute"),
        )


@admin.register(ExternalProduct)
class ExternalProductAdmin(ReadOnlyAdmin):
    list_display = ("title", "network", "price", "coupon", "commission_rate", "shop_name", "is_active", "synced_at")
    list_filter = ("network", "is_active")
    search_fields = ("title", "=external_id")
    list_select_related = ("network",)


@admin.register(TrackingId)
class TrackingIdAdmin(admin.ModelAdmin):
    """Tracking ids are made by the system on first use, except where the network's console makes them (淘宝联盟's
    推广位): staff enter those here, one per member. An id already in use by orders is never edited or deleted."""

    list_display = ("value", "network", "member", "created_at")
    list_filter = ("network",)
    search_fields = ("=value", "=member__invite_code")
    list_select_related = ("network", "member__user")
    raw_id_fields = ("member",)
    fields = ("network", "member", "value")

    def has_change_permission(self, request, obj=None):
        return False if obj is not None else super().has_change_permission(request)

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(SyncRun)
class SyncRunAdmin(ReadOnlyAdmin):
    list_display = ("network", "started_at", "finished_at", "status", "window_start", "window_end", "fetched",
                    "created", "changed", "error")  # fmt: skip
    list_filter = ("network", "status")
    list_select_related = ("network",)


class ImportForm(forms.Form):
    network = forms.ModelChoiceField(queryset=Network.objects.none(), label=gettext_lazy("network"))
    file = forms.FileField(
        label=gettext_lazy("order report (CSV or XLSX, as exported by the network)"),
        help_text=gettext_lazy("All rows are imported, or none: a bad row is named with its reason."),
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # Only networks whose report files we can read (networks/imports.py).
        self.fields["network"].queryset = Network.objects.filter(code__in=IMPORT_FORMATS).order_by(localized("name"))

    def clean_file(self):
        upload = self.cleaned_data["file"]
        if upload.size > settings.NETWORK_IMPORT_MAX_BYTES:
            raise ValidationError(
                _("The file is larger than %(mb)d MB.") % {"mb": settings.NETWORK_IMPORT_MAX_BYTES // (1024 * 1024)}
            )
        if not upload.name.lower().endswith((".csv", ".xlsx")):
            raise ValidationError(_("Upload a .csv or .xlsx file."))
        self.content = upload.read()
        try:
            report_file_check(self.content)  # a damaged or bombed XLSX is refused here, before anything is stored
        except ImportRefused as refused:
            raise ValidationError(refused.reason) from None
        return upload


@admin.register(ReportImport)
class ReportImportAdmin(ReadOnlyAdmin):
    """Uploaded report files and their imports. The upload stores the file and queues a Celery task
    (networks.tasks.report_import_run_task); each import's page shows how far it is and refreshes itself until it
    is finished."""

    list_display = ("file_name", "network", "uploaded_at", "uploaded_by", "status", "progress", "created", "changed",
                    "stale", "error_row", "error")  # fmt: skip
    list_filter = ("network", "status")
    list_select_related = ("network", "uploaded_by")
    change_list_template = "admin/networks/reportimport/change_list.html"
    change_form_template = "admin/networks/reportimport/change_form.html"
    fields = ("network", "file_name", "file_size", "file_sha256", "uploaded_by", "uploaded_at", "status",
              "progress", "started_at", "finished_at", "attempts", "rows_read", "rows", "rows_done", "created",
              "changed", "stale", "error_row", "error")  # fmt: skip
    actions = ("run_again",)

    @admin.display(description=gettext_lazy("progress"))
    def progress(self, record):
        progress = report_import_progress(record)
        if progress.phase == "waiting":
            return _("waiting for a worker")
        if progress.phase == "reading":
            return _("reading the file: %(rows)s rows read") % {"rows": progress.done}
        if progress.phase == "recording":
            return _("importing: %(done)s of %(total)s lines") % {"done": progress.done, "total": progress.total}
        if record.status != ReportImport.Status.DONE:
            return _("nothing imported")
        return _("%(done)s of %(total)s lines imported") % {"done": progress.done, "total": progress.total}

    def get_queryset(self, request):
        return super().get_queryset(request).defer("content")  # the file stays in the database, not in the page

    def get_urls(self):
        urls = super().get_urls()
        upload = path("upload/", self.admin_site.admin_view(self.upload_view), name="networks_reportimport_upload")
        return [upload, *urls]

    def has_upload_permission(self, request) -> bool:
        return request.user.has_perm("networks.add_reportimport")

    def get_actions(self, request):
        actions = super().get_actions(request)
        if not self.has_upload_permission(request):
            actions.pop("run_again", None)
        return actions

    def changelist_view(self, request, extra_context=None):
        extra_context = {**(extra_context or {}), "can_upload": self.has_upload_permission(request)}
        return super().changelist_view(request, extra_context)

    def change_view(self, request, object_id, form_url="", extra_context=None):
        record = self.get_object(request, object_id)
        progress = report_import_progress(record) if record is not None else None
        extra_context = {**(extra_context or {}), "import_progress": progress}
        return super().change_view(request, object_id, form_url, extra_context)

    def _send(self, request, record: ReportImport) -> bool:
        sent = task_send(report_import_run_task, record.pk, logger=logger, fallback="staff can run it again")
        if not sent:
            self.message_user(
                request,
                _("The task queue is unreachable; the file is stored: choose “Run again” later."),
                messages.WARNING,
            )
        return sent

    @admin.action(description=gettext_lazy("Run again (imports still waiting, or stopped by a lost worker)"))
    def run_again(self, request, queryset):
        sent = 0
        for record in queryset.filter(status__in=[ReportImport.Status.QUEUED, ReportImport.Status.RUNNING]):
            sent += int(self._send(request, record))
        self.message_user(
            request,
            ngettext("%(count)d import sent to a worker.", "%(count)d imports sent to a worker.", sent)
            % {"count": sent},
        )

    def _outcome_message(self, request, record: ReportImport) -> None:
        Status = ReportImport.Status
        if record.status in (Status.REFUSED, Status.FAILED) and record.error_row:
            self.message_user(
                request,
                _("Nothing imported: row %(row)s: %(reason)s") % {"row": record.error_row, "reason": record.error},
                messages.ERROR,
            )
        elif record.status in (Status.REFUSED, Status.FAILED):
            self.message_user(request, _("Nothing imported: %(reason)s") % {"reason": record.error}, messages.ERROR)
        elif record.status == Status.DONE:
            self.message_user(
                request,
                _(
                    "%(rows)d rows imported: %(created)d new orders, %(changed)d changed, %(stale)d older than "
                    "what we know (ignored), the rest unchanged."
                )
                % {"rows": record.rows, "created": record.created, "changed": record.changed, "stale": record.stale},
                messages.SUCCESS,
            )
        else:
            self.message_user(
                request, _("The file is stored and its import queued: this page shows how far it is."), messages.INFO
            )

    def upload_view(self, request):
        if not self.has_upload_permission(request):
            raise PermissionDenied
        form = ImportForm(request.POST or None, request.FILES or None)
        if request.method == "POST" and form.is_valid():
            upload = form.cleaned_data["file"]
            record = report_import_create(
                network=form.cleaned_data["network"], file_name=upload.name, content=form.content, actor=request.user
            )
            # Only stored and queued here: a worker reads it (in the embedded default, at once, in this process).
            if self._send(request, record):
                record = ReportImport.objects.defer("content").get(pk=record.pk)
                self._outcome_message(request, record)
            return HttpResponseRedirect(reverse("admin:networks_reportimport_change", args=[record.pk]))
        context = {
            **self.admin_site.each_context(request),
            "title": _("Import an order report"),
            "opts": self.opts,
            "form": form,
        }
        return TemplateResponse(
            request, "admin/networks/reportimport/upload.html", context, status=400 if form.errors else 200
        )
