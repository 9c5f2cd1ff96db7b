"""The risk review queue and the rules' settings in the back office (issue #25; docs/risk.md).

The queue is the RiskFlag changelist: filters by rule, status, subject and age, the evidence shown readably, and
bulk actions that release, reverse or ban with a reason (each through `payouts.risk.risk_flag_decide`, so every
decision is atomic, audited and idempotent). The metrics per rule (raised, confirmed, dismissed, dismissal rate) sit
above the list. Staff with `commissions.review_risk` decide; others with view permission only look.
"""

from datetime import timedelta

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.urls import NoReverseMatch, reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from accounts.approvals import asked_message
from commissions.models import RiskFlag, RiskRule
from commissions.services.risk import BAN, RELEASE, REVERSE, risk_rule_metrics, risk_rule_update
from core.admin_tools import action_input_page
from payouts.approvals import member_ban_request
from payouts.risk import risk_flag_decide

REVIEW_PERMISSION = "commissions.review_risk"
ACTION_LIMIT = 500  # flags one bulk decision may take (a larger selection is refused, nothing done)


class ReasonForm(forms.Form):
    reason = forms.CharField(label=_("Reason"), max_length=2000, widget=forms.Textarea(attrs={"rows": 3}))


class AgeFilter(admin.SimpleListFilter):
    title = _("age")
    parameter_name = "age"

    def lookups(self, request, model_admin):
        return [("1", _("Last 24 hours")), ("7", _("Last 7 days")), ("30", _("Older than 30 days"))]

    def queryset(self, request, queryset):
        value = self.value()
        if value in ("1", "7"):
            return queryset.filter(created_at__gte=timezone.now() - timedelta(days=int(value)))
        if value == "30":
            return queryset.filter(created_at__lt=timezone.now() - timedelta(days=30))
        return queryset


class RiskRuleForm(forms.ModelForm):
    reason = forms.CharField(
        label=_("Reason for the change"), max_length=2000, widget=forms.Textarea(attrs={"rows": 2})
    )

    class Meta:
        model = RiskRule
        fields = ("is_enabled", "threshold", "minimum")


@admin.register(RiskRule)
class RiskRuleAdmin(admin.ModelAdmin):
    form = RiskRuleForm
    list_display = ("code", "is_enabled", "threshold", "minimum", "updated_at", "updated_by")
    readonly_fields = ("code", "updated_at", "updated_by")

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def save_model(self, request, obj, form, change):
        fields = {name: form.cleaned_data[name] for name in ("is_enabled", "threshold", "minimum")}
        risk_rule_update(rule=obj, actor=request.user, reason=form.cleaned_data["reason"], **fields)


@admin.register(RiskFlag)
class RiskFlagAdmin(admin.ModelAdmin):
    list_display = ("created_at", "rule", "subject", "subject_link", "member", "score", "evidence_text", "status")
    list_filter = ("rule", "status", "subject", AgeFilter)
    list_select_related = ("member", "member__user", "order")
    search_fields = ("member__user__email", "member__user__phone", "order__number")
    date_hierarchy = "created_at"
    readonly_fields = [field.name for field in RiskFlag._meta.fields] + ["evidence_text"]
    exclude = ("evidence",)
    actions = ("release", "reverse", "ban")
    change_list_template = "admin/commissions/riskflag/change_list.html"

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False  # decided through the actions only

    def has_review_permission(self, request):
        return request.user.has_perm(REVIEW_PERMISSION)

    @admin.display(description=_("subject"))
    def subject_link(self, flag: RiskFlag) -> str:
        """The flagged order, withdrawal or member, linked to its admin page (where its evidence can be checked)."""
        if flag.subject == RiskFlag.Subject.ORDER:
            name, label = "admin:shops_order_change", str(flag.order)
        elif flag.subject == RiskFlag.Subject.WITHDRAWAL:
            name, label = "admin:payouts_withdrawal_change", f"#{flag.withdrawal_id}"
        else:
            name, label = "admin:referrals_member_change", f"#{flag.member_id}"
        try:
            return format_html('<a href="{}">{}</a>', reverse(name, args=[flag.subject_id]), label)
        except NoReverseMatch:
            return label

    @admin.display(description=_("evidence"))
    def evidence_text(self, flag: RiskFlag) -> str:
        rows = [(key.replace("_", " "), ", ".join(map(str, value)) if isinstance(value, list) else value)
                for key, value in sorted(flag.evidence.items())]  # fmt: skip
        return format_html("<ul>{}</ul>", format_html_join("", "<li>{}: {}</li>", rows)) if rows else "—"

    def changelist_view(self, request, extra_context=None):
        extra_context = {**(extra_context or {}), "risk_metrics": risk_rule_metrics()}
        return super().changelist_view(request, extra_context)

    @admin.action(description=_("Release (dismiss the flag)…"), permissions=["review"])
    def release(self, request, queryset):
        return self._decide(request, queryset, RELEASE, _("Release"))

    @admin.action(description=_("Reverse the held commission…"), permissions=["review"])
    def reverse(self, request, queryset):
        return self._decide(request, queryset, REVERSE, _("Reverse"))

    @admin.action(description=_("Ban the member…"), permissions=["review"])
    def ban(self, request, queryset):
        return self._decide(request, queryset, BAN, _("Ban"))

    def _decide(self, request, queryset, action: str, label):
        flags = list(queryset.select_related("member__user").order_by("pk")[: ACTION_LIMIT + 1])
        if len(flags) > ACTION_LIMIT:
            self.message_user(request, _("Select at most %(n)d flags at once.") % {"n": ACTION_LIMIT}, messages.ERROR)
            return None
        form = ReasonForm(request.POST if "apply" in request.POST else None)
        if form.is_valid() and action == BAN:
            # Four eyes: a ban is asked for here, done when a second reviewer approves it (payouts/approvals.py).
            for member, flag in {flag.member_id: (flag.member, flag) for flag in flags}.values():
                try:
                    approval = member_ban_request(
                        member=member, actor=request.user, reason=form.cleaned_data["reason"], flag=flag
                    )
                except ValidationError as error:
                    self.message_user(request, f"{member}: {' '.join(error.messages)}", messages.ERROR)
                else:
                    self.message_user(request, asked_message(approval), messages.SUCCESS)
            return None
        if form.is_valid():
            done = 0
            for flag in flags:
                try:
                    risk_flag_decide(flag=flag, action=action, actor=request.user, reason=form.cleaned_data["reason"])
                    done += 1
                except ValidationError as error:
                    self.message_user(request, f"{flag}: {' '.join(error.messages)}", messages.ERROR)
            message = ngettext("Decided %d flag.", "Decided %d flags.", done) % done
            self.message_user(request, message, messages.SUCCESS)
            return None
        return action_input_page(
            self,
            request,
            action=request.POST.get("action", ""),
            title=label,
            intro=_("Give the reason for this decision; it is kept with each flag and in the audit log."),
            objects=[str(flag) for flag in flags[:100]],
            form=form,
            submit_label=label,
        )
