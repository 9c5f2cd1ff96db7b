"""Staff screens for the compliance policy, the commission plans and the ledger (SPEC §7).

Nothing here decides anything: a new policy version goes through `policy_publish`, a plan through `plan_create`
and `plan_activate`, and their refusals (CommissionError) come back as form errors or error messages with nothing
changed. Policies, activated plans and ledger entries are history: never edited or deleted here.
"""

from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction
from django.http import Http404
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _

from accounts.approvals import asked_message
from accounts.models import ApprovalRequest
from commissions.approvals import plan_activate_request
from commissions.calculations import CAP_MAX_PAYOUT_RATIO, CAP_MAX_TOTAL_RATE
from commissions.forms import CommissionPlanCreateForm, CompliancePolicyPublishForm, PlanActivateForm
from commissions.models import CommissionEntry, CommissionPlan, CompliancePolicy, OrderSplit, RefundApplied, SplitQueue
from commissions.presets import preset_configured
from commissions.selectors import (
    MEMBER_LEVELS,
    order_commission_split,
    order_id_by_reference,
    plans_with_in_force,
    policy_active,
)
from commissions.services import CommissionError
from core.admin_tools import ChangedByActionsOnly, ReadOnlyAdmin, action_input_page
from core.forms import add_service_errors
from core.money import format_money


class ReadOnlyHistoryMixin:
    """Rows that are history: viewable, never changed or deleted by hand."""

    def get_readonly_fields(self, request, obj=None):
        return [field.name for field in self.opts.fields]

    def has_delete_permission(self, request, obj=None):
        return False


class ServiceAddViewMixin:
    """The "add" page is a plain form whose `save(actor=...)` calls a service.

    The service validates everything; a CommissionError becomes form errors and nothing is written. Saving and the
    admin log entry happen in one transaction.
    """

    add_form_class = None
    add_title = ""
    add_intro = ""

    def get_add_initial(self, request) -> dict:
        return {}

    def added_message(self, obj) -> str:
        return _("Saved %(object)s.") % {"object": obj}

    def add_view(self, request, form_url="", extra_context=None):
        if not self.has_add_permission(request):
            raise PermissionDenied
        is_post = request.method == "POST"
        form = self.add_form_class(request.POST if is_post else None, initial=self.get_add_initial(request))
        if is_post and form.is_valid():
            try:
                with transaction.atomic():
                    obj = form.save(actor=request.user)
                    if not isinstance(obj, ApprovalRequest):
                        self.log_addition(request, obj, [{"added": {}}])
            except CommissionError as error:
                add_service_errors(form, error)
            except IntegrityError:
                # Two staff saving at the same moment: the unique version (or the one-active-policy constraint)
                # refused the second. Nothing was written; the form can simply be sent again.
                form.add_error(None, _("Another change was saved at the same moment. Nothing was saved: try again."))
            else:
                if isinstance(obj, ApprovalRequest):
                    self.message_user(request, asked_message(obj), messages.SUCCESS)
                else:
                    self.message_user(request, self.added_message(obj), messages.SUCCESS)
                return redirect(reverse(f"admin:{self.opts.app_label}_{self.opts.model_name}_changelist"))
        adminform = helpers.AdminForm(form, [(None, {"fields": list(form.fields)})], {})
        context = {
            **self.admin_site.each_context(request),
            "title": self.add_title,
            "intro": self.add_intro,
            "opts": self.opts,
            "adminform": adminform,
            "form": form,
            "errors": helpers.AdminErrorList(form, []),
            "media": self.media + form.media,
            "has_view_permission": self.has_view_permission(request),
            **(extra_context or {}),
        }
        return TemplateResponse(request, "admin/commissions/service_add_form.html", context)


# --- Policy ---------------------------------------------------------------------------------------------


@admin.register(CompliancePolicy)
class CompliancePolicyAdmin(ServiceAddViewMixin, ReadOnlyHistoryMixin, admin.ModelAdmin):
    """Every version of the caps; "add" publishes a new version, which is then the one in force."""

    list_display = (
        "version",
        "max_levels",
        "max_total_rate",
        "max_payout_ratio",
        "max_payout_ratio_published",
        "self_purchase_earns",
        "ineligible_share",
        "preset",
        "upline_min_own_sales",
        "binding_days",
        "coupons_enabled",
        "coupon_discount_rate",
        "is_active",
        "effective_from",
        "created_by",
    )
    list_select_related = ("created_by",)
    list_per_page = 50
    add_form_class = CompliancePolicyPublishForm
    add_title = _("Publish a new compliance policy version")
    add_intro = _(
        "The new version is in force from now for orders paid from now on; the current one stays as history. "
        "It is refused if the plan in force (or one scheduled) would break it: change the plan first."
    )

    def get_add_initial(self, request) -> dict:
        return CompliancePolicyPublishForm.initial_from(policy_active())

    def add_view(self, request, form_url="", extra_context=None):
        # The preset is chosen at set-up, not here: the form says which one binds it, and its warning.
        preset = preset_configured()
        intro = _("%(intro)s This platform was set up with the %(preset)s compliance preset: %(summary)s") % {
            "intro": self.add_intro,
            "preset": preset.label,
            "summary": preset.summary,
        }
        if preset.warning:
            intro = f"{intro} {preset.warning}"
        return super().add_view(request, form_url, {"intro": intro, **(extra_context or {})})

    def added_message(self, obj) -> str:
        return _("Published %(policy)s; it is in force from now.") % {"policy": obj}

    def has_change_permission(self, request, obj=None):
        return False  # a change is a new version: "add"


# --- Plans ----------------------------------------------------------------------------------------------


@admin.register(CommissionPlan)
class CommissionPlanAdmin(ServiceAddViewMixin, ReadOnlyHistoryMixin, ChangedByActionsOnly, admin.ModelAdmin):
    """Plans are immutable: to change rates, add a new plan (a draft) and activate it."""

    list_display = (
        "version",
        "name",
        "level1_rate",
        "level2_rate",
        "level3_rate",
        "is_activated",
        "effective_from",
        "in_force",
        "created_by",
        "created_at",
    )
    list_filter = ("is_activated",)
    list_select_related = ("created_by",)
    list_per_page = 50
    actions = ("activate_now",)
    add_form_class = CommissionPlanCreateForm
    add_title = _("Add a commission plan (draft)")
    add_intro = _(
        "Each rate is a fraction of the line's pool (0.8000 = 80 %). The plan is checked against the compliance "
        "policy in force now and again when it is activated; it is not in force until then."
    )

    def get_queryset(self, request):
        return plans_with_in_force(super().get_queryset(request))

    def added_message(self, obj) -> str:
        return _("Added %(plan)s as a draft. Select it and choose “Activate now” to put it in force.") % {"plan": obj}

    @admin.display(description=_("in force"), boolean=True)
    def in_force(self, plan):
        return plan.pk == getattr(plan, "in_force_id", None)

    @admin.action(description=_("Activate (in force from a date you choose)…"), permissions=["change"])
    def activate_now(self, request, queryset):
        """Ask for a second approval of the plan's activation (four eyes); the plan is in force from the date asked
        for (members are told in advance: RULES_CHANGE_NOTICE_DAYS), once a second compliance user approves it in
        the approval queue."""
        plans = list(queryset.order_by("pk")[:2])
        if len(plans) != 1:
            self.message_user(request, _("Choose exactly one plan to activate."), messages.ERROR)
            return None
        form = PlanActivateForm(request.POST if "apply" in request.POST else None)
        if plans[0].is_activated or ("apply" in request.POST and form.is_valid()):
            try:
                approval = plan_activate_request(
                    plan=plans[0],
                    actor=request.user,
                    reason=form.cleaned_data["reason"] if form.is_bound else "",
                    effective_from=form.cleaned_data.get("effective_from") if form.is_bound else None,
                )
            except ValidationError as error:
                self.message_user(request, f"{plans[0]}: {' '.join(error.messages)}", messages.ERROR)
                return None
            self.message_user(request, asked_message(approval), messages.SUCCESS)
            return None
        return action_input_page(
            self,
            request,
            action="activate_now",
            title=_("Activate a commission plan"),
            intro=_(
                "A second compliance user approves the activation in the approval queue; members are told then, and "
                "the plan is in force from the date you choose (at least the notice period later). You cannot approve "
                "your own request."
            ),
            objects=plans,
            form=form,
            submit_label=_("Ask for approval"),
        )


# --- Ledger ---------------------------------------------------------------------------------------------


class FixedChoicesFilter(admin.SimpleListFilter):
    """A filter with fixed choices: the default filter for a plain field runs SELECT DISTINCT over the whole
    ledger on every page load."""

    options: tuple = ()  # (value, label); not `choices`, which SimpleListFilter uses

    def lookups(self, request, model_admin):
        return self.options

    def queryset(self, request, queryset):
        value = self.value()
        if value not in {option for option, _label in self.options}:
            return queryset
        return queryset.filter(**{self.parameter_name: self.to_python(value)})

    def to_python(self, value):
        return value


class LevelFilter(FixedChoicesFilter):
    title = _("level")
    parameter_name = "level"
    options = (("0", _("0 (platform remainder)")), *((str(level), str(level)) for level in MEMBER_LEVELS))

    def to_python(self, value):
        return int(value)


class CappedByFilter(FixedChoicesFilter):
    title = _("cap that bound")
    parameter_name = "capped_by"
    options = (
        (CAP_MAX_TOTAL_RATE, _("max total rate")),
        (CAP_MAX_PAYOUT_RATIO, _("max payout ratio")),
        ("none", _("none")),
    )

    def to_python(self, value):
        return "" if value == "none" else value


@admin.register(CommissionEntry)
class CommissionEntryAdmin(ReadOnlyHistoryMixin, admin.ModelAdmin):
    """The ledger as the services wrote it: read-only, with a per-order view of the whole split."""

    list_display = (
        "sale",
        "line_display",
        "beneficiary",
        "level",
        "kind",
        "base_display",
        "rate",
        "amount_display",
        "capped_by",
        "status",
        "created_at",
        "split_link",
    )
    list_filter = ("kind", "status", LevelFilter, CappedByFilter, "created_at")
    search_fields = (
        "=order__number",
        "=external_line__external_order_id",
        "=beneficiary__invite_code",
        "beneficiary__user__email",
    )
    search_help_text = _("Order number, a network's order id, or a beneficiary's invite code or email.")
    list_select_related = ("order", "order_line", "external_line__network", "beneficiary__user")
    list_per_page = 50
    show_full_result_count = False

    def has_add_permission(self, request):
        return False  # entries are written by the split and refund services only

    def has_change_permission(self, request, obj=None):
        return False

    def get_fields(self, request, obj=None):
        return [*self.get_readonly_fields(request, obj)]

    def get_readonly_fields(self, request, obj=None):
        return [*super().get_readonly_fields(request, obj), "split_link"]

    @admin.display(description=_("base (pool)"), ordering="base")
    def base_display(self, entry):
        return format_money(entry.base)

    @admin.display(description=_("amount"), ordering="amount")
    def amount_display(self, entry):
        return format_money(entry.amount)

    @admin.display(description=_("order"))
    def sale(self, entry):
        """Our order, or the network and its order id for a sale an external network reported."""
        if entry.external_line_id is not None:
            line = entry.external_line
            return _("%(network)s order %(number)s") % {
                "network": line.network.name,
                "number": line.external_order_id,
            }
        return entry.order

    @admin.display(description=_("order line"))
    def line_display(self, entry):
        if entry.external_line_id is not None:
            return entry.external_line.title or entry.external_line.line_id
        return entry.order_line

    @admin.display(description=_("split"))
    def split_link(self, entry):
        if entry.external_line_id is not None:  # the whole-order split page is for our own orders
            url = reverse("admin:networks_externalorder_change", args=[entry.external_line_id])
            return format_html('<a href="{}">{}</a>', url, _("external order"))
        url = reverse("admin:commissions_order_split", args=[entry.order_id])
        return format_html('<a href="{}">{}</a>', url, _("whole order"))

    def get_urls(self):
        view = self.admin_site.admin_view
        return [
            path("order-split/", view(self.order_split_lookup_view), name="commissions_order_split_lookup"),
            path("order-split/<int:order_id>/", view(self.order_split_view), name="commissions_order_split"),
            *super().get_urls(),
        ]

    def order_split_lookup_view(self, request):
        """?order=<number or id> → that order's split page."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        order_id = order_id_by_reference(request.GET.get("order", ""))
        if order_id is None:
            self.message_user(request, _("No order with that number or id."), messages.ERROR)
            return redirect("admin:commissions_commissionentry_changelist")
        return redirect("admin:commissions_order_split", order_id=order_id)

    def order_split_view(self, request, order_id: int):
        if not self.has_view_permission(request):
            raise PermissionDenied
        report = order_commission_split(order_id)
        if report is None:
            raise Http404(_("No such order."))
        context = {
            **self.admin_site.each_context(request),
            "title": _("Commission split of order %(number)s") % {"number": report.order.number},
            "opts": self.opts,
            "report": report,
        }
        return TemplateResponse(request, "admin/commissions/order_split.html", context)


# --- The split's and the refunds' exactly-once markers -------------------------------------------------------
# Written only by the split and refund services: read-only here, so staff can answer "was this order split?",
# "what is waiting for the split task?" and "were this refund's reversals written?".


@admin.register(OrderSplit)
class OrderSplitAdmin(ReadOnlyAdmin):
    list_display = ("order", "created_at", "plan", "policy", "split_link")
    list_filter = ("created_at",)
    search_fields = ("=order__number",)
    search_help_text = _("An exact order number.")
    list_select_related = ("order", "plan", "policy")
    date_hierarchy = "created_at"
    ordering = ("-created_at", "-pk")
    list_per_page = 100
    show_full_result_count = False
    fields = ("order", "plan", "policy", "created_at", "split_link")

    @admin.display(description=_("split"))
    def split_link(self, split):
        url = reverse("admin:commissions_order_split", args=[split.order_id])
        return format_html('<a href="{}">{}</a>', url, _("whole order"))


@admin.register(SplitQueue)
class SplitQueueAdmin(ReadOnlyAdmin):
    """Paid orders waiting for the split task (oldest first); the periodic sweep re-sends what a lost message left."""

    list_display = ("order", "queued_at", "order_paid_at", "has_chain")
    list_filter = ("queued_at",)
    search_fields = ("=order__number",)
    search_help_text = _("An exact order number.")
    list_select_related = ("order",)
    ordering = ("queued_at", "pk")
    list_per_page = 100
    show_full_result_count = False
    fields = ("order", "order_paid_at", "queued_at", "chain")

    @admin.display(description=_("paid"), ordering="order__paid_at")
    def order_paid_at(self, queued):
        return queued.order.paid_at

    @admin.display(description=_("chain read at payment"), boolean=True)
    def has_chain(self, queued):
        return queued.chain is not None


@admin.register(RefundApplied)
class RefundAppliedAdmin(ReadOnlyAdmin):
    list_display = ("refund", "refund_order", "refund_amount", "applied_at")
    list_filter = ("applied_at",)
    search_fields = ("=refund__id", "=refund__order__number")
    search_help_text = _("A refund id or an exact order number.")
    list_select_related = ("refund__order",)
    date_hierarchy = "applied_at"
    ordering = ("-applied_at", "-pk")
    list_per_page = 100
    show_full_result_count = False
    fields = ("refund", "refund_order", "refund_amount", "applied_at")

    @admin.display(description=_("order"), ordering="refund__order__number")
    def refund_order(self, applied):
        return applied.refund.order

    @admin.display(description=_("amount"), ordering="refund__amount")
    def refund_amount(self, applied):
        return format_money(applied.refund.amount)
