"""Finance staff's screens for payout accounts, withdrawals and payout batches.

Everything here is read-only; money moves only through the actions, and every action calls a service in
payouts/services.py, which locks the withdrawal, checks the transition and writes the event row. Sending a batch
to the payout provider is never done inside the request: it is queued (payouts.tasks.payout_batch_send_task) once
the batch is committed, and runs on a worker (eagerly, in-process, in the embedded default).

Full account numbers are shown only to staff with the `payouts.view_unmasked_payoutaccount` permission (the
"finance" group, and superusers). Everyone else sees them masked, and the CSV export for the bank, which must
carry full numbers, is offered only to them.
"""

import csv
import logging
from collections import Counter
from functools import partial

from django.conf import settings
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import Count, Sum
from django.http import Http404, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext, pgettext_lazy

from accounts.approvals import asked_message, second_approval_needed
from accounts.models import ApprovalRequest
from core.admin_tools import ReadOnlyAdmin as SharedReadOnlyAdmin
from core.admin_tools import ReadOnlyInline as SharedReadOnlyInline
from core.admin_tools import action_input_page, for_each_row
from core.forms import add_service_errors
from core.money import ZERO, format_money
from core.spreadsheets import spreadsheet_safe
from core.task_helpers import task_send
from payouts.adjustments import PERMISSION as ADJUST_PERMISSION
from payouts.adjustments import balance_adjustment_request, new_adjustment_key
from payouts.approvals import withdrawal_approve_request
from payouts.forms import (
    BalanceAdjustmentForm,
    BindWeChatPayeeForm,
    CreateBatchForm,
    MarkFailedForm,
    MarkPaidForm,
    RejectForm,
    ResultUploadForm,
)
from payouts.invoices import invoice_accept, invoice_reject
from payouts.models import (
    BalanceAdjustment,
    Invoice,
    InvoiceEvent,
    MemberWallet,
    PayoutAccount,
    PayoutBatch,
    SandboxTransfer,
    TaxWithholding,
    Transfer,
    Withdrawal,
    WithdrawalEvent,
    WithholdingRule,
    mask,
)
from payouts.selectors import approved_withdrawals_missing_invoice, member_balance
from payouts.services import (
    PayoutError,
    payout_account_bind_wechat,
    payout_batch_create,
    payout_batch_send,
    payout_transfer_sync,
    withdrawal_approve,
    withdrawal_record_result,
    withdrawal_reject,
    withdrawals_tax_withhold,
    withholding_rule_activate,
)
from payouts.tasks import payout_batch_send_task
from payouts.views import invoice_file_response
from shops.payments.base import ProviderError

logger = logging.getLogger(__name__)

MANUAL_PROVIDER = "manual"
# A batch page lists its withdrawals inline up to this many; bigger batches link to the filtered list instead.
BATCH_INLINE_MAX = 200
# How many chosen withdrawals an action's confirmation page names.
DESCRIBED_MAX = 100
# How many unapplied result lines one message names; the rest are counted.
PROBLEMS_LISTED_MAX = 50
Status = Withdrawal.Status


def sees_unmasked(request) -> bool:
    """Active staff allowed to see full account numbers (Django caches the permission lookup per user)."""
    user = request.user
    return user.is_active and user.is_staff and user.has_perm("payouts.view_unmasked_payoutaccount")


def account_identifier(snapshot: dict) -> str:
    """The card number, Alipay account or WeChat ID of an account snapshot (Withdrawal.account)."""
    key = {"bank": "account_number", "alipay": "alipay_account", "wechat": "wechat_id"}.get(snapshot.get("method"))
    return (snapshot.get(key) or "") if key else ""


class ReadOnlyInline(SharedReadOnlyInline):
    parent_permissions = ("payouts.view_withdrawal", "payouts.change_withdrawal")


class ReadOnlyAdmin(SharedReadOnlyAdmin):
    """The shared read-only admin (rows as the services left them), with the payouts actions' input page."""

    def _action_page(self, request, **page):
        """The intermediate page of an action that needs input (a reason, a file)."""
        return action_input_page(self, request, **page)


# --- Payout accounts ---------------------------------------------------------------------------------------


@admin.register(PayoutAccount)
class PayoutAccountAdmin(ReadOnlyAdmin):
    list_display = ("member", "method", "holder_name", "masked_identifier_display", "updated_at")
    list_filter = ("method",)
    # Not searchable by account number: a search that matches would tell non-finance staff the full number.
    search_fields = ("member__user__email", "member__invite_code", "holder_name")
    list_select_related = ("member__user",)
    list_per_page = 50
    show_full_result_count = False

    actions = ("bind_wechat_payee",)

    def get_fields(self, request, obj=None):
        fields = ["member", "method", "holder_name", "bank_name", "bank_branch", "masked_identifier_display"]
        if sees_unmasked(request):
            fields += ["account_number", "alipay_account", "wechat_id", "wechat_openid"]
        else:
            fields += ["masked_openid_display"]
        return [*fields, "updated_at"]

    @admin.display(description=_("account (masked)"))
    def masked_identifier_display(self, account):
        return account.masked_identifier

    @admin.display(description=_("WeChat payee (openid)"))
    def masked_openid_display(self, account):
        return mask(account.wechat_openid)

    def has_bind_permission(self, request) -> bool:
        """Finance: staff who may act on withdrawals and see full account details."""
        return sees_unmasked(request) and request.user.has_perm("payouts.change_withdrawal")

    @admin.action(description=_("Bind a WeChat payee (openid)…"), permissions=["bind"])
    def bind_wechat_payee(self, request, queryset):
        accounts = list(queryset.select_related("member__user")[:2])
        if len(accounts) != 1:
            self.message_user(request, _("Choose one payout account to bind."), messages.ERROR)
            return None
        [account] = accounts
        form = BindWeChatPayeeForm(request.POST if "apply" in request.POST else None)
        if form.is_valid():
            try:
                payout_account_bind_wechat(member=account.member, openid=form.cleaned_data["openid"])
            except PayoutError as error:
                self.message_user(request, " ".join(error.messages), messages.ERROR)
            else:
                message = _("WeChat payee bound for %(member)s.") % {"member": account.member}
                self.message_user(request, message, messages.SUCCESS)
            return None
        return self._action_page(
            request,
            action="bind_wechat_payee",
            title=_("Bind a WeChat payee"),
            intro=_("WeChat Pay transfers to this member go to the WeChat user with this openid."),
            objects=[f"{account.member} — {account}"],
            form=form,
            submit_label=_("Bind"),
        )


# --- Withdrawals -------------------------------------------------------------------------------------------


class WithdrawalEventInline(ReadOnlyInline):
    model = WithdrawalEvent
    fields = ("created_at", "from_status", "to_status", "amount", "actor_label", "actor", "reason")

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("actor")


class InvoiceInline(ReadOnlyInline):
    """A business payee's invoices for the withdrawal (docs/tax.md, "Business payees"); reviewed on the invoices'
    own list."""

    model = Invoice
    fields = ("invoice_link", "issued_on", "amount", "status", "review_reason", "reviewed_by", "reviewed_at")
    readonly_fields = fields
    parent_permissions = ("payouts.view_invoice",)

    @admin.display(description=_("invoice"))
    def invoice_link(self, invoice):
        url = reverse("admin:payouts_invoice_change", args=[invoice.pk])
        return format_html('<a href="{}">{}</a>', url, invoice.display_number)

    def get_readonly_fields(self, request, obj=None):
        return self.fields


class TransferInline(ReadOnlyInline):
    """The withdrawal's transfer at a payout rail: its state and failure code as the rail gave them."""

    model = Transfer
    fields = ("rail", "state", "fail_reason", "number", "rail_reference", "confirm_by", "created_at", "updated_at")


@admin.register(Withdrawal)
class WithdrawalAdmin(ReadOnlyAdmin):
    list_display = ("id", "member", "amount_display", "status", "payee_kind", "requested_at", "batch", "reason")
    list_display_links = ("id",)
    list_filter = ("status", "payee_kind", "requested_at", "batch__provider")
    search_fields = ("=id", "member__user__email", "member__invite_code", "provider_reference")
    list_select_related = ("member__user", "batch")
    list_per_page = 100
    show_full_result_count = False
    date_hierarchy = "requested_at"
    inlines = (TransferInline, InvoiceInline, WithdrawalEventInline)
    actions = ("approve_withdrawals", "reject_withdrawals", "mark_paid", "mark_failed")
    fields = (
        "member",
        "amount_display",
        "status",
        "payee_kind",
        "account_display",
        "batch",
        "provider_reference",
        "reason",
        "requested_at",
        "decided_at",
        "paid_at",
        "failed_at",
        "idempotency_key",
    )

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("member__user", "batch")

    def get_urls(self):
        urls = [
            path(
                "create-batch/",
                self.admin_site.admin_view(self.create_batch_view),
                name="payouts_withdrawal_create_batch",
            )
        ]
        return urls + super().get_urls()

    def changelist_view(self, request, extra_context=None):
        extra_context = {**(extra_context or {}), "can_create_batch": self.has_change_permission(request)}
        return super().changelist_view(request, extra_context)

    @admin.display(description=_("amount"), ordering="amount")
    def amount_display(self, withdrawal):
        return format_money(withdrawal.amount)

    def get_fields(self, request, obj=None):
        # Which of the two account columns depends on who is looking (a ModelAdmin is shared by all requests,
        # so the choice is made here rather than remembered on self).
        account = "account_unmasked" if sees_unmasked(request) else "account_masked"
        return [account if name == "account_display" else name for name in self.fields]

    @admin.display(description=_("payout account at request time"))
    def account_masked(self, withdrawal):
        return _describe_account(withdrawal.account or {}, unmasked=False)

    @admin.display(description=_("payout account at request time"))
    def account_unmasked(self, withdrawal):
        return _describe_account(withdrawal.account or {}, unmasked=True)

    def _for_each(self, request, queryset, service, success_message) -> int:
        """Call `service(withdrawal)` per row; a refusal is reported for that row and the rest go on."""
        rows = queryset.select_related(None).order_by("pk")
        return for_each_row(self, request, rows, service, success_message, refusal=PayoutError)

    @admin.action(description=_("Approve"), permissions=["change"])
    def approve_withdrawals(self, request, queryset):
        """Approve; a withdrawal above FOUR_EYES_THRESHOLD is only asked for here and approved when a second finance
        user approves the request (four eyes, payouts/approvals.py)."""
        rows = list(queryset.select_related(None).order_by("pk"))
        large = [
            row for row in rows if row.status == Withdrawal.Status.REQUESTED and second_approval_needed(row.amount)
        ]
        for withdrawal in large:
            try:
                approval = withdrawal_approve_request(withdrawal=withdrawal, actor=request.user)
            except ValidationError as error:
                self.message_user(request, f"{withdrawal}: {' '.join(error.messages)}", messages.ERROR)
            else:
                self.message_user(request, asked_message(approval), messages.SUCCESS)
        self._for_each(
            request,
            queryset.exclude(pk__in=[row.pk for row in large]),
            lambda withdrawal: withdrawal_approve(withdrawal=withdrawal, actor=request.user),
            lambda count: ngettext("Approved %d withdrawal.", "Approved %d withdrawals.", count) % count,
        )

    @admin.action(description=_("Reject (with a reason for the member)…"), permissions=["change"])
    def reject_withdrawals(self, request, queryset):
        form = RejectForm(request.POST if "apply" in request.POST else None)
        if form.is_valid():
            reason = form.cleaned_data["reason"]
            self._for_each(
                request,
                queryset,
                lambda withdrawal: withdrawal_reject(withdrawal=withdrawal, actor=request.user, reason=reason),
                lambda count: ngettext("Rejected %d withdrawal.", "Rejected %d withdrawals.", count) % count,
            )
            return None
        return self._action_page(
            request,
            action="reject_withdrawals",
            title=_("Reject withdrawals"),
            intro=_("The money goes back to each member's balance; the reason is shown to them."),
            objects=self._described(queryset),
            form=form,
            submit_label=_("Reject"),
        )

    @admin.action(description=_("Mark paid (manual payout)…"), permissions=["change"])
    def mark_paid(self, request, queryset):
        form = MarkPaidForm(request.POST if "apply" in request.POST else None)
        if "apply" in request.POST and form.is_valid():
            self._record_results(request, queryset, Status.PAID, reference=form.cleaned_data["reference"])
            return None
        return self._action_page(
            request,
            action="mark_paid",
            title=_("Mark withdrawals paid"),
            intro=_("Only withdrawals being processed can be marked paid; the commission they cover is labelled paid."),
            objects=self._described(queryset),
            form=form,
            submit_label=_("Mark paid"),
        )

    @admin.action(description=_("Mark failed (money back to the member)…"), permissions=["change"])
    def mark_failed(self, request, queryset):
        form = MarkFailedForm(request.POST if "apply" in request.POST else None)
        if form.is_valid():
            self._record_results(
                request,
                queryset,
                Status.FAILED,
                reference=form.cleaned_data["reference"],
                reason=form.cleaned_data["reason"],
            )
            return None
        return self._action_page(
            request,
            action="mark_failed",
            title=_("Mark withdrawals failed"),
            intro=_("Only withdrawals being processed can fail; the money goes back to each member's balance."),
            objects=self._described(queryset),
            form=form,
            submit_label=_("Mark failed"),
        )

    def _record_results(self, request, queryset, status, *, reference="", reason=""):
        recorded, batches = 0, set()
        for withdrawal in queryset.select_related(None).order_by("pk"):
            try:
                applied = withdrawal_record_result(
                    withdrawal=withdrawal,
                    status=status,
                    reference=reference,
                    reason=reason,
                    actor=request.user,
                    actor_label="staff",
                )
            except PayoutError as error:
                self.message_user(request, f"{withdrawal}: {' '.join(error.messages)}", messages.ERROR)
                continue
            if not applied:
                self.message_user(
                    request,
                    _("%(withdrawal)s: not being processed (it is “%(status)s”); unchanged.")
                    % {"withdrawal": withdrawal, "status": withdrawal.get_status_display()},
                    messages.ERROR,
                )
                continue
            recorded += 1
            batches.add(withdrawal.batch_id)
        _close_manual_batches(batches)
        if recorded:
            message = (
                ngettext("Marked %d withdrawal paid.", "Marked %d withdrawals paid.", recorded)
                if status == Status.PAID
                else ngettext("Marked %d withdrawal failed.", "Marked %d withdrawals failed.", recorded)
            )
            self.message_user(request, message % recorded, messages.SUCCESS)

    @staticmethod
    def _described(queryset) -> list[str]:
        rows = list(queryset.select_related("member__user").order_by("pk")[: DESCRIBED_MAX + 1])
        described = [
            f"{w.pk}: {w.member} — {format_money(w.amount)} ({w.get_status_display()})" for w in rows[:DESCRIBED_MAX]
        ]
        if len(rows) > DESCRIBED_MAX:
            described.append(_("… and more (%(count)d in all)") % {"count": queryset.count()})
        return described

    def create_batch_view(self, request):
        """Batch every approved withdrawal now (the periodic task does the same) and, unless the provider is
        manual, queue its sending. A view rather than an action: the service batches all approved withdrawals, not a
        selection, so a checkbox per row would promise something it does not do."""
        if not self.has_change_permission(request):
            raise PermissionDenied
        form = CreateBatchForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            provider = form.cleaned_data["provider"]
            batch = payout_batch_create(provider_name=provider, actor=request.user)
            self._left_out_message(request)
            if batch is None:
                self.message_user(request, _("No approved withdrawals to batch."), messages.WARNING)
                return HttpResponseRedirect(reverse("admin:payouts_withdrawal_changelist"))
            if provider == MANUAL_PROVIDER:
                self.message_user(
                    request,
                    _("Created %(batch)s. Export it as CSV for the bank, then upload the result file.")
                    % {"batch": batch},
                    messages.SUCCESS,
                )
            else:
                _batch_send_after_commit(batch)
                self.message_user(
                    request,
                    _("Created %(batch)s and queued it for sending to the payout provider.") % {"batch": batch},
                    messages.SUCCESS,
                )
            return HttpResponseRedirect(reverse("admin:payouts_payoutbatch_change", args=[batch.pk]))
        approved = Withdrawal.objects.filter(status=Status.APPROVED).aggregate(count=Count("pk"), total=Sum("amount"))
        context = {
            **self.admin_site.each_context(request),
            "title": _("Create a payout batch now"),
            "opts": self.opts,
            "form": form,
            "approved_count": approved["count"],
            "approved_total": format_money(approved["total"] or ZERO),
            "missing_invoice_count": approved_withdrawals_missing_invoice(),
        }
        return TemplateResponse(request, "admin/payouts/withdrawal/create_batch.html", context)

    def _left_out_message(self, request) -> None:
        left_out = approved_withdrawals_missing_invoice()
        if left_out:
            self.message_user(
                request,
                ngettext(
                    "%d approved withdrawal to a business was left out: it has no accepted invoice.",
                    "%d approved withdrawals to businesses were left out: they have no accepted invoice.",
                    left_out,
                )
                % left_out,
                messages.WARNING,
            )


def _describe_account(snapshot: dict, *, unmasked: bool) -> str:
    identifier = account_identifier(snapshot)
    method = (
        PayoutAccount.Method(snapshot["method"]).label if snapshot.get("method") in PayoutAccount.Method.values else ""
    )
    bank = " ".join(part for part in (snapshot.get("bank_name"), snapshot.get("bank_branch")) if part)
    shown = identifier if unmasked else mask(identifier)
    return " · ".join(str(part) for part in (method, snapshot.get("holder_name"), shown, bank) if part)


def _batch_send_after_commit(batch: PayoutBatch) -> None:
    """Queue the sending of `batch` once it is committed (at once outside a transaction, as in the admin's views).

    The provider is called by the task, never inside the request. Sending is safe twice (each withdrawal keeps its
    idempotency key and an answer applies only to a withdrawal still processing). If the broker cannot be reached
    the failure is logged and the batch stays processing: the periodic payout run sends every batch still
    processing (payouts-run, docs/schedule.md)."""
    transaction.on_commit(
        partial(
            task_send,
            payout_batch_send_task,
            batch.pk,
            logger=logger,
            fallback="the periodic payout run (payouts-run) sends every batch still processing",
        )
    )


def _close_manual_batches(batch_ids) -> None:
    """A manual batch whose every line has a result becomes done. Sending a manual batch sends nothing (the
    manual provider only answers "pending") and closes it if nothing is left processing."""
    for batch in PayoutBatch.objects.filter(pk__in=[pk for pk in batch_ids if pk], provider=MANUAL_PROVIDER):
        payout_batch_send(batch=batch)


@admin.register(WithdrawalEvent)
class WithdrawalEventAdmin(ReadOnlyAdmin):
    """Every state change of every withdrawal. An audit trail: nothing here is added, changed or deleted."""

    list_display = ("created_at", "withdrawal", "from_status", "to_status", "amount", "actor_label", "actor", "reason")
    list_filter = ("to_status", "actor_label", "created_at")
    search_fields = ("=withdrawal__id",)
    list_select_related = ("withdrawal", "actor")
    list_per_page = 100
    show_full_result_count = False
    fields = ("withdrawal", "from_status", "to_status", "amount", "actor_label", "actor", "reason", "created_at")

    def has_change_permission(self, request, obj=None):
        return False


# --- Payout batches ----------------------------------------------------------------------------------------


class BatchWithdrawalInline(ReadOnlyInline):
    model = Withdrawal
    fields = ("member", "amount", "status", "provider_reference", "reason", "paid_at", "failed_at")
    show_change_link = True
    ordering = ("pk",)

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("member__user")


EXPORT_HEADER = [
    "序号 Serial",
    "收款方式 Method",
    "收款人姓名 Payee name",
    "收款账号 Account",
    "开户银行 Bank",
    "开户支行 Branch",
    "金额 Amount",
    "提现编号 Withdrawal ID",
    "备注 Remark",
]


@admin.register(PayoutBatch)
class PayoutBatchAdmin(ReadOnlyAdmin):
    list_display = (
        "id",
        "provider",
        "status",
        "created_at",
        "completed_at",
        "created_by",
        "withdrawal_count",
        "total_display",
    )
    list_filter = ("status", "provider", "created_at")
    search_fields = ("=id",)
    list_select_related = ("created_by",)
    list_per_page = 50
    show_full_result_count = False
    inlines = (BatchWithdrawalInline,)
    actions = ("export_csv", "send_again", "upload_results")
    fields = (
        "provider",
        "status",
        "created_at",
        "completed_at",
        "created_by",
        "withdrawal_count",
        "total_display",
        "withdrawals_link",
    )

    def get_queryset(self, request):
        return (
            super()
            .get_queryset(request)
            .select_related("created_by")
            .annotate(withdrawal_count=Count("withdrawals"), withdrawal_total=Sum("withdrawals__amount"))
        )

    def get_inline_instances(self, request, obj=None):
        if obj is not None and obj.withdrawal_count > BATCH_INLINE_MAX:
            return []  # thousands of rows on one page help nobody; withdrawals_link opens the filtered list
        return super().get_inline_instances(request, obj)

    def get_actions(self, request):
        actions = super().get_actions(request)
        if not sees_unmasked(request):
            actions.pop("export_csv", None)  # the file carries full account numbers
        return actions

    @admin.display(description=_("withdrawals"), ordering="withdrawal_count")
    def withdrawal_count(self, batch):
        return batch.withdrawal_count

    @admin.display(description=_("total"), ordering="withdrawal_total")
    def total_display(self, batch):
        return format_money(batch.withdrawal_total or ZERO)

    @admin.display(description=_("list"))
    def withdrawals_link(self, batch):
        url = reverse("admin:payouts_withdrawal_changelist") + f"?batch__id__exact={batch.pk}"
        return format_html('<a href="{}">{}</a>', url, _("All withdrawals of this batch"))

    @admin.action(description=_("Export CSV for the bank / Alipay batch transfer"), permissions=["view"])
    def export_csv(self, request, queryset):
        if not sees_unmasked(request):
            raise PermissionDenied
        batches = list(queryset.order_by("pk"))
        # The bank pays the net: each line's income tax is computed first (once: the batch's send finds it).
        withdrawals_tax_withhold(
            withdrawal_ids=Withdrawal.objects.filter(batch__in=batches, status=Status.PROCESSING).values_list(
                "pk", flat=True
            )
        )
        # Only lines still awaiting a result: a paid or failed line in the file could be paid (again) by hand.
        withdrawals = (
            Withdrawal.objects.filter(batch__in=batches, status=Status.PROCESSING)
            .select_related("withholding")
            .order_by("batch_id", "pk")
        )
        response = HttpResponse(content_type="text/csv; charset=utf-8")
        stamp = timezone.localtime().strftime("%Y%m%d-%H%M")
        names = "-".join(str(batch.pk) for batch in batches[:5])
        response["Content-Disposition"] = f'attachment; filename="payout-batch-{names}-{stamp}.csv"'
        response.write("\ufeff")  # the BOM makes Excel read the Chinese headers as UTF-8
        writer = csv.writer(response)
        writer.writerow(EXPORT_HEADER)
        methods = dict(PayoutAccount.Method.choices)
        for serial, withdrawal in enumerate(withdrawals.iterator(chunk_size=2000), 1):
            account = withdrawal.account or {}
            writer.writerow(
                [
                    serial,
                    str(methods.get(account.get("method"), account.get("method", ""))),
                    spreadsheet_safe(account.get("holder_name", "")),
                    spreadsheet_safe(account_identifier(account)),
                    spreadsheet_safe(account.get("bank_name", "")),
                    spreadsheet_safe(account.get("bank_branch", "")),
                    f"{withdrawal.net_amount:.2f}",  # what the bank pays: less the tax withheld
                    withdrawal.pk,
                    f"佣金提现 {withdrawal.pk}",
                ]
            )
        return response

    @admin.action(description=_("Send again (safe: nobody is paid twice)"), permissions=["change"])
    def send_again(self, request, queryset):
        for batch in queryset.order_by("pk"):
            _batch_send_after_commit(batch)
            message = _("%(batch)s is queued for sending to the payout provider.") % {"batch": batch}
            self.message_user(request, message, messages.SUCCESS)

    @admin.action(description=_("Upload the bank's result file…"), permissions=["change"])
    def upload_results(self, request, queryset):
        batches = list(queryset.order_by("pk"))
        form = ResultUploadForm(request.POST if "apply" in request.POST else None, request.FILES or None)
        if "apply" in request.POST and form.is_valid():
            self._apply_results(request, batches, form.cleaned_data["file"])
            return None
        return self._action_page(
            request,
            action="upload_results",
            title=_("Upload payout results"),
            intro=_(
                "A CSV with one line per withdrawal: withdrawal id, status (paid or failed), bank reference, "
                "reason (for failures). Lines already recorded are skipped, so uploading a file twice is safe."
            ),
            objects=[f"{batch} — {batch.get_status_display()}" for batch in batches],
            form=form,
            submit_label=_("Apply results"),
            multipart=True,
        )

    def _apply_results(self, request, batches, lines) -> None:
        ids = {line.withdrawal_id for line in lines if line.withdrawal_id is not None and not line.problem}
        in_batches = {w.pk: w for w in Withdrawal.objects.filter(batch__in=batches, pk__in=ids)}
        applied, problems = Counter(), []
        for line in lines:
            withdrawal = in_batches.get(line.withdrawal_id)
            if line.problem:
                problem = line.problem
            elif withdrawal is None:
                problem = _("withdrawal %(id)s is not in the chosen batch") % {"id": line.withdrawal_id}
            else:
                try:
                    if withdrawal_record_result(
                        withdrawal=withdrawal,
                        status=line.status,
                        reference=line.reference,
                        reason=line.reason,
                        actor=request.user,
                        actor_label="staff upload",
                    ):
                        applied[line.status] += 1
                        continue
                    problem = _("withdrawal %(id)s already has a result; skipped") % {"id": line.withdrawal_id}
                except PayoutError as error:
                    problem = " ".join(error.messages)
            problems.append(_("line %(number)d: %(problem)s") % {"number": line.line_number, "problem": problem})
        _close_manual_batches(batch.pk for batch in batches)
        self.message_user(
            request,
            _("Applied %(paid)d paid and %(failed)d failed.")
            % {"paid": applied[Status.PAID], "failed": applied[Status.FAILED]},
            messages.SUCCESS if applied else messages.WARNING,
        )
        if problems:
            listed = "; ".join(str(problem) for problem in problems[:PROBLEMS_LISTED_MAX])
            more = len(problems) - PROBLEMS_LISTED_MAX
            if more > 0:
                listed += " " + str(_("… and %(more)d more.") % {"more": more})
            self.message_user(
                request,
                ngettext(
                    "%(count)d line not applied: %(lines)s", "%(count)d lines not applied: %(lines)s", len(problems)
                )
                % {"count": len(problems), "lines": listed},
                messages.ERROR,
            )


# --- Wallets and the sandbox provider's transfers ----------------------------------------------------------


def _balance_field(part: str, description):
    """A read-only field of MemberWalletAdmin: one part of the wallet's balance, formatted as money."""

    @admin.display(description=description)
    def field(model_admin, wallet):
        return format_money(getattr(model_admin._balance(wallet), part))

    return field


@admin.register(MemberWallet)
class MemberWalletAdmin(ReadOnlyAdmin):
    """The row each withdrawal locks. Its page shows the member's balance, derived from the ledger as the
    withdrawal service derives it (the list does not: one balance is two aggregate queries)."""

    list_display = ("member", "withdrawals_link")
    search_fields = ("member__user__email", "=member__invite_code")
    search_help_text = _("A member's email or exact invite code.")
    list_select_related = ("member__user",)
    list_per_page = 100
    show_full_result_count = False
    fields = ("member", "balance_pending", "balance_available", "balance_in_flight", "balance_paid_out",
              "balance_clawed_back", "balance_adjusted", "withdrawals_link", "adjust_link")  # fmt: skip

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("member__user")

    def _balance(self, wallet):
        # One derivation per page, shared by the five read-only fields below.
        if getattr(wallet, "_balance", None) is None:
            wallet._balance = member_balance(wallet.member_id)
        return wallet._balance

    # The member's own labels (payouts.selectors.Balance), so staff and member read the same figure by one name.
    balance_pending = _balance_field("pending", _("Pending (on hold)"))
    balance_available = _balance_field("withdrawable", _("Available to withdraw"))
    balance_in_flight = _balance_field("in_flight", _("Being withdrawn"))
    balance_paid_out = _balance_field("paid_out", pgettext_lazy("balance", "Paid out"))
    balance_clawed_back = _balance_field("clawed_back", _("Clawed back"))
    balance_adjusted = _balance_field("adjusted", _("Staff adjustments"))

    @admin.display(description=_("balance adjustments"))
    def adjust_link(self, wallet):
        url = reverse("admin:payouts_balanceadjustment_add") + f"?member={wallet.member.invite_code}"
        return format_html('<a href="{}">{}</a>', url, _("Adjust this member's balance…"))

    @admin.display(description=_("withdrawals"))
    def withdrawals_link(self, wallet):
        url = reverse("admin:payouts_withdrawal_changelist") + f"?member__id__exact={wallet.member_id}"
        return format_html('<a href="{}">{}</a>', url, _("this member's withdrawals"))


@admin.register(SandboxTransfer)
class SandboxTransferAdmin(ReadOnlyAdmin):
    """The sandbox provider's side: one row per transfer it made, keyed like the withdrawal that asked for it."""

    list_display = ("created_at", "idempotency_key", "amount_display", "outcome")
    list_filter = ("outcome", "created_at")
    search_fields = ("=idempotency_key",)
    date_hierarchy = "created_at"
    ordering = ("-created_at", "-pk")
    list_per_page = 100
    show_full_result_count = False
    fields = ("idempotency_key", "amount_display", "outcome", "created_at")

    @admin.display(description=_("amount"), ordering="amount")
    def amount_display(self, transfer):
        return format_money(transfer.amount)


@admin.register(Transfer)
class TransferAdmin(ReadOnlyAdmin):
    """Every transfer the payout rails made (WeChat Pay 商家转账 bills, Alipay transfers), as each rail last said it
    stands. "Ask the rail now" does what the periodic sync does for the chosen ones."""

    list_display = ("created_at", "withdrawal", "rail", "state", "fail_reason", "confirm_by", "updated_at")
    list_filter = ("rail", "state", "created_at")
    search_fields = ("=number", "=rail_reference", "=withdrawal__id")
    list_select_related = ("withdrawal",)
    date_hierarchy = "created_at"
    list_per_page = 100
    show_full_result_count = False
    actions = ("sync_now",)
    fields = ("withdrawal", "rail", "number", "state", "fail_reason", "rail_reference", "confirm_by", "created_at",
              "updated_at")  # fmt: skip

    def has_change_permission(self, request, obj=None):
        # The action only (as for withdrawals, finance's change permission); a transfer's page is never edited.
        return obj is None and request.user.has_perm("payouts.change_withdrawal")

    @admin.action(description=_("Ask the rail now"), permissions=["change"])
    def sync_now(self, request, queryset):
        for transfer in queryset.filter(withdrawal__status=Status.PROCESSING).order_by("pk")[:DESCRIBED_MAX]:
            try:
                outcome = payout_transfer_sync(transfer=transfer)
            except (ProviderError, PayoutError) as error:
                self.message_user(request, f"{transfer}: {error}", messages.ERROR)
            else:
                self.message_user(request, f"{transfer}: {outcome}", messages.INFO)


# --- Income tax withheld at payout (docs/tax.md) -----------------------------------------------------------------


@admin.register(WithholdingRule)
class WithholdingRuleAdmin(admin.ModelAdmin):
    """Rules are versioned like commission plans: a draft may be edited; "Activate now" puts it in force (who and
    when recorded, and in the admin's history); an activated rule is never edited or deleted."""

    list_display = ("version", "name", "method", "is_activated", "effective_from", "activated_by", "created_at")
    list_filter = ("is_activated", "method")
    list_select_related = ("activated_by",)
    fields = ("version", "name", "method", "source", "is_activated", "effective_from", "activated_at", "activated_by")
    actions = ("activate_now",)

    def get_readonly_fields(self, request, obj=None):
        if obj is not None and obj.is_activated:
            return self.fields
        return ("is_activated", "effective_from", "activated_at", "activated_by")

    def get_changeform_initial_data(self, request):
        latest = WithholdingRule.objects.order_by("-version").values_list("version", flat=True).first()
        return {"version": (latest or 0) + 1, "method": WithholdingRule.Method.CUMULATIVE_2025}

    def has_delete_permission(self, request, obj=None):
        return False

    def save_model(self, request, obj, form, change):
        if not change:
            obj.created_by = request.user
        super().save_model(request, obj, form, change)

    @admin.action(description=_("Activate now (in force from now)"), permissions=["change"])
    def activate_now(self, request, queryset):
        rules = list(queryset.order_by("pk")[:2])
        if len(rules) != 1:
            self.message_user(request, _("Choose exactly one rule to activate."), messages.ERROR)
            return
        try:
            with transaction.atomic():
                rule = withholding_rule_activate(rule=rules[0], actor=request.user)
                self.log_change(request, rule, str(_("Activated")))
        except PayoutError as error:
            self.message_user(request, f"{rules[0]}: {' '.join(error.messages)}", messages.ERROR)
            return
        self.message_user(request, _("%(rule)s is in force from now.") % {"rule": rule}, messages.SUCCESS)


@admin.register(TaxWithholding)
class TaxWithholdingAdmin(SharedReadOnlyAdmin):
    list_display = ("withdrawal", "member", "paid_on", "method", "status", "gross", "tax", "net")
    list_filter = ("status", "method")
    list_select_related = ("withdrawal", "member")
    search_fields = ("=withdrawal__pk", "=member__pk")
    date_hierarchy = "paid_on"
    raw_id_fields = ("withdrawal", "member")


# --- Business payees' invoices (docs/tax.md, "Business payees") ---------------------------------------------------


class InvoiceEventInline(ReadOnlyInline):
    model = InvoiceEvent
    fields = ("created_at", "from_status", "to_status", "actor_label", "actor", "reason")
    parent_permissions = ("payouts.view_invoice",)

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("actor")


@admin.register(Invoice)
class InvoiceAdmin(ReadOnlyAdmin):
    """Business payees' invoices to review: open the file, check it (the buyer is the platform, the seller the
    member's company, the total the withdrawal's amount; the number at the tax bureau's invoice verification
    platform), then accept, or reject with a reason the member sees. The file is served only here, to staff who may
    view invoices; it has no public address."""

    list_display = (
        "id",
        "withdrawal",
        "seller_name",
        "display_number",
        "issued_on",
        "amount_display",
        "status",
        "file_link",
        "submitted_at",
        "reviewed_by",
    )
    list_filter = ("status", "submitted_at")
    search_fields = ("=withdrawal__id", "=invoice_number", "seller_name", "=seller_tax_id")
    list_select_related = ("withdrawal", "reviewed_by")
    list_per_page = 100
    show_full_result_count = False
    date_hierarchy = "submitted_at"
    ordering = ("-submitted_at", "-pk")
    inlines = (InvoiceEventInline,)
    actions = ("accept_invoices", "reject_invoices")
    fields = (
        "withdrawal",
        "member",
        "status",
        "review_reason",
        "invoice_code",
        "invoice_number",
        "issued_on",
        "amount_display",
        "withdrawal_amount",
        "seller_name",
        "seller_tax_id",
        "buyer_name",
        "buyer_tax_id",
        "file_link",
        "file_type",
        "file_name",
        "file_size",
        "submitted_at",
        "reviewed_by",
        "reviewed_at",
    )

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("withdrawal", "member__user", "reviewed_by")

    def get_urls(self):
        urls = [
            path(
                "<int:invoice_id>/file/",
                self.admin_site.admin_view(self.file_view),
                name="payouts_invoice_file",
            )
        ]
        return urls + super().get_urls()

    @admin.display(description=_("invoice number"), ordering="invoice_number")
    def display_number(self, invoice):
        return invoice.display_number

    @admin.display(description=_("amount"), ordering="amount")
    def amount_display(self, invoice):
        return format_money(invoice.amount)

    @admin.display(description=_("withdrawal amount"))
    def withdrawal_amount(self, invoice):
        return format_money(invoice.withdrawal.amount)

    @admin.display(description=_("file"))
    def file_link(self, invoice):
        url = reverse("admin:payouts_invoice_file", args=[invoice.pk])
        return format_html('<a href="{}">{}</a>', url, invoice.get_file_type_display())

    def file_view(self, request, invoice_id: int):
        """The invoice's file, to staff who may view invoices (finance, support); private, never cached."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        invoice = Invoice.objects.filter(pk=invoice_id).first()
        if invoice is None:
            raise Http404
        return invoice_file_response(invoice)

    @admin.action(description=_("Accept (the withdrawal may then be approved)"), permissions=["change"])
    def accept_invoices(self, request, queryset):
        for_each_row(
            self,
            request,
            queryset.select_related(None).order_by("pk"),
            lambda invoice: invoice_accept(invoice=invoice, actor=request.user),
            lambda count: ngettext("Accepted %d invoice.", "Accepted %d invoices.", count) % count,
            refusal=PayoutError,
        )

    @admin.action(description=_("Reject (with a reason for the member)…"), permissions=["change"])
    def reject_invoices(self, request, queryset):
        form = RejectForm(request.POST if "apply" in request.POST else None)
        if form.is_valid():
            reason = form.cleaned_data["reason"]
            for_each_row(
                self,
                request,
                queryset.select_related(None).order_by("pk"),
                lambda invoice: invoice_reject(invoice=invoice, actor=request.user, reason=reason),
                lambda count: ngettext("Rejected %d invoice.", "Rejected %d invoices.", count) % count,
                refusal=PayoutError,
            )
            return None
        rows = list(queryset.order_by("pk")[: DESCRIBED_MAX + 1])
        return self._action_page(
            request,
            action="reject_invoices",
            title=_("Reject invoices"),
            intro=_("The member sees the reason and can upload another invoice."),
            objects=[f"{invoice} — {invoice.get_status_display()}" for invoice in rows[:DESCRIBED_MAX]],
            form=form,
            submit_label=_("Reject"),
        )


@admin.register(InvoiceEvent)
class InvoiceEventAdmin(ReadOnlyAdmin):
    """Every change of every invoice. An audit trail: nothing here is added, changed or deleted."""

    list_display = ("created_at", "invoice", "from_status", "to_status", "actor_label", "actor", "reason")
    list_filter = ("to_status", "created_at")
    search_fields = ("=invoice__id", "=invoice__withdrawal__id")
    list_select_related = ("invoice", "actor")
    list_per_page = 100
    show_full_result_count = False
    fields = ("invoice", "from_status", "to_status", "actor_label", "actor", "reason", "created_at")

    def has_change_permission(self, request, obj=None):
        return False


# --- Staff adjustments of a member's balance (payouts/adjustments.py) ----------------------------------------------


@admin.register(BalanceAdjustment)
class BalanceAdjustmentAdmin(SharedReadOnlyAdmin):
    """Every adjustment as it was applied (never edited or deleted), and the page that makes one: "Add" opens
    "Adjust a member's balance", which applies it at once or, above FOUR_EYES_THRESHOLD, asks a second finance user
    (the approval queue). Both need `payouts.add_balanceadjustment` (the finance group)."""

    list_display = ("created_at", "member", "amount_display", "member_note", "requested_by", "approved_by")
    list_filter = ("created_at",)
    search_fields = ("=member__invite_code", "member__user__email", "=id")
    search_help_text = _("A member's email or exact invite code.")
    list_select_related = ("member__user", "requested_by", "approved_by")
    list_per_page = 100
    show_full_result_count = False
    date_hierarchy = "created_at"
    fields = ("member", "amount_display", "member_note", "internal_note", "requested_by", "approved_by",
              "approval_link", "created_at", "idempotency_key")  # fmt: skip

    def has_add_permission(self, request):
        return request.user.is_active and request.user.is_staff and request.user.has_perm(ADJUST_PERMISSION)

    @admin.display(description=_("amount"), ordering="amount")
    def amount_display(self, adjustment):
        return ("+" if adjustment.amount > 0 else "") + format_money(adjustment.amount)

    @admin.display(description=_("approval request"))
    def approval_link(self, adjustment):
        if adjustment.approval_id is None:
            return "—"
        url = reverse("admin:accounts_approvalrequest_change", args=[adjustment.approval_id])
        return format_html('<a href="{}">{}</a>', url, adjustment.approval_id)

    def add_view(self, request, form_url="", extra_context=None):
        """The adjustment form (the shared action page): applied at once, or asked for a second approval. Bad input
        or a refusal answers 400 with the form, and nothing changes."""
        if not self.has_add_permission(request):
            raise PermissionDenied
        if request.method == "POST":
            form = BalanceAdjustmentForm(request.POST)
            if form.is_valid():
                data = form.cleaned_data
                try:
                    done = balance_adjustment_request(
                        member=data["member"],
                        amount=data["amount"],
                        member_note=data["member_note"],
                        internal_note=data["internal_note"],
                        actor=request.user,
                        key=data["key"],
                    )
                except ValidationError as error:
                    add_service_errors(form, error, field="amount")
                else:
                    if isinstance(done, ApprovalRequest):
                        self.message_user(request, asked_message(done), messages.SUCCESS)
                    else:
                        self.message_user(
                            request,
                            _("Balance of %(member)s adjusted by %(amount)s.")
                            % {"member": done.member, "amount": self.amount_display(done)},
                            messages.SUCCESS,
                        )
                    return HttpResponseRedirect(reverse("admin:payouts_balanceadjustment_changelist"))
        else:
            form = BalanceAdjustmentForm(initial={"member": request.GET.get("member", ""), "key": new_adjustment_key()})
        return action_input_page(
            self,
            request,
            action="",
            title=_("Adjust a member's balance"),
            intro=_(
                "A credit or a debit of the member's available balance, with a note they read on their statement "
                "and an internal note only staff read. Above %(threshold)s a second finance user approves it first. "
                "A debit may not take the available balance below zero. You will not be able to approve this "
                "member's withdrawals for %(days)d days."
            )
            % {
                "threshold": format_money(settings.FOUR_EYES_THRESHOLD),
                "days": settings.ADJUSTMENT_CONFLICT_DAYS,
            },
            objects=[],
            form=form,
            submit_label=_("Adjust the balance"),
        )
