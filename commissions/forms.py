"""Forms for the commission screens. They check the shape of what was typed; the services decide what is allowed
(every refusal comes back as a CommissionError and is shown on the form, see `core.forms.add_service_errors`)."""

from datetime import datetime, time, timedelta

from django import forms
from django.conf import settings
from django.core.exceptions import ValidationError
from django.utils import timezone
from django.utils.text import format_lazy
from django.utils.translation import gettext_lazy as _

from accounts.forms import ApprovalReasonForm
from commissions.approvals import policy_publish_request
from commissions.calculations import HARD_MAX_LEVELS, HARD_MAX_PAYOUT_RATIO, payout_ratio_ceiling_message
from commissions.models import MAX_BINDING_DAYS, MAX_QUALIFICATION_DAYS, CommissionPlan, CompliancePolicy
from commissions.services import plan_create
from core.forms import rate_field
from core.money import RATE_ZERO
from shops.models import AttributionOptions

LEVEL_CHOICES = [(level, str(level)) for level in range(1, HARD_MAX_LEVELS + 1)]


def _validate_payout_ratio_ceiling(value) -> None:
    if value is not None and value > HARD_MAX_PAYOUT_RATIO:
        # No params: the sentence holds a literal "%", which Django's interpolation of params would trip over.
        raise ValidationError(payout_ratio_ceiling_message(), code="max_value")


def payout_ratio_field(label, *, required: bool = True, help_text: str = "") -> forms.DecimalField:
    """A max payout ratio: a rate of at most HARD_MAX_PAYOUT_RATIO, refused above it with the legal reason."""
    field = rate_field(label, required=required, help_text=help_text)
    field.validators.append(_validate_payout_ratio_ceiling)
    field.widget.attrs["max"] = str(HARD_MAX_PAYOUT_RATIO)
    return field


# --- Staff --------------------------------------------------------------------------------------------


def earliest_rules_start() -> datetime:
    """The first midnight (site time) at least RULES_CHANGE_NOTICE_DAYS from now: the start the forms offer."""
    day = (timezone.localtime() + timedelta(days=settings.RULES_CHANGE_NOTICE_DAYS)).date() + timedelta(days=1)
    return timezone.make_aware(datetime.combine(day, time.min))


class RulesStartField(forms.DateTimeField):
    """When a change of the rules takes effect. Members are told at once and must be told RULES_CHANGE_NOTICE_DAYS
    ahead (the service refuses a sooner start). Empty: from the moment it is approved."""

    def __init__(self, **kwargs):
        super().__init__(
            label=_("In force from"),
            required=False,
            help_text=_(
                "Site time, e.g. 2026-03-01 00:00. Members are told when the change is approved and must be told at "
                "least the notice period ahead (RULES_CHANGE_NOTICE_DAYS). Empty: from the approval, only possible "
                "for the very first version."
            ),
            **kwargs,
        )


class PlanActivateForm(ApprovalReasonForm):
    """The reason for activating a plan and the moment it takes effect."""

    effective_from = RulesStartField()

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["effective_from"].initial = earliest_rules_start()


class CompliancePolicyPublishForm(forms.Form):
    """A new policy version. Saving publishes it (the current one stays as history)."""

    max_levels = forms.TypedChoiceField(
        label=_("Max paid levels"),
        choices=LEVEL_CHOICES,
        coerce=int,
        help_text=format_lazy(
            _("Members paid on one sale, the sharer included. Never more than {max}."), max=HARD_MAX_LEVELS
        ),
    )
    max_total_rate = rate_field(_("Max total rate"), help_text=_("Sum of the level rates, as a fraction of the pool."))
    max_payout_ratio = payout_ratio_field(
        _("Max payout ratio"),
        help_text=_("All member shares of a line, as a fraction of its net amount. Never more than 0.30 (30 %)."),
    )
    self_purchase_earns = forms.BooleanField(label=_("Self-purchase earns commission"), required=False)
    ineligible_share = forms.ChoiceField(
        label=_("Share of an ineligible member"), choices=CompliancePolicy.IneligibleShare.choices
    )
    upline_min_own_sales = forms.IntegerField(
        label=_("Own sales an upline needs"),
        min_value=0,
        max_value=32767,
        initial=0,
        required=False,
        help_text=CompliancePolicy._meta.get_field("upline_min_own_sales").help_text,
    )
    upline_qualification_days = forms.IntegerField(
        label=_("Qualification period (days)"),
        min_value=1,
        max_value=MAX_QUALIFICATION_DAYS,
        initial=30,
        required=False,
        help_text=CompliancePolicy._meta.get_field("upline_qualification_days").help_text,
    )
    binding_days = forms.IntegerField(
        label=_("Buyer binding days"),
        min_value=0,
        max_value=MAX_BINDING_DAYS,
        initial=0,
        required=False,
        help_text=CompliancePolicy._meta.get_field("binding_days").help_text,
    )
    binding_mode = forms.ChoiceField(
        label=_("Buyer binding mode"),
        choices=AttributionOptions.BindingMode.choices,
        initial=AttributionOptions.BindingMode.KEEP,
        required=False,
    )
    coupons_enabled = forms.BooleanField(label=_("Members' coupon codes"), required=False)
    coupon_discount_rate = rate_field(
        _("Coupon discount rate"),
        required=False,
        help_text=CompliancePolicy._meta.get_field("coupon_discount_rate").help_text,
    )
    effective_from = RulesStartField()
    note = forms.CharField(
        label=_("Reason for the change"), max_length=2000, widget=forms.Textarea(attrs={"rows": 3, "cols": 60})
    )

    @classmethod
    def initial_from(cls, policy: CompliancePolicy | None) -> dict:
        if policy is None:
            return {}
        initial = {name: getattr(policy, name) for name in cls.base_fields if name not in ("note", "effective_from")}
        return {**initial, "effective_from": earliest_rules_start()}

    def save(self, *, actor):
        """Ask for the new version (a second person publishes it by approving: four eyes); the very first policy is
        published at once. Returns the policy published or the approval request. Raises CommissionError (nothing
        changed) when the service would refuse the version."""
        values = dict(self.cleaned_data)
        note = values.pop("note")
        effective_from = values.pop("effective_from", None)
        # Left empty: off (no binding days, no discount), keep mode.
        values["binding_days"] = values.get("binding_days") or 0
        values["binding_mode"] = values.get("binding_mode") or AttributionOptions.BindingMode.KEEP
        values["coupon_discount_rate"] = values.get("coupon_discount_rate") or RATE_ZERO
        # Left empty: no own-sales qualification, over the default period.
        values["upline_min_own_sales"] = values.get("upline_min_own_sales") or 0
        qualification_days = CompliancePolicy._meta.get_field("upline_qualification_days").default
        values["upline_qualification_days"] = values.get("upline_qualification_days") or qualification_days
        policy, request = policy_publish_request(actor=actor, note=note, values=values, effective_from=effective_from)
        return policy or request


class CommissionPlanCreateForm(forms.Form):
    """A draft plan: one rate per level (fractions of the pool). It is checked against the policy in force."""

    name = forms.CharField(label=_("Name (English)"), max_length=CommissionPlan._meta.get_field("name").max_length)
    name_zh_hans = forms.CharField(
        label=_("Name (Simplified Chinese)"),
        max_length=CommissionPlan._meta.get_field("name").max_length,
        required=False,
        help_text=_("Members reading in Chinese see this; empty: they see the English name."),
    )
    level1_rate = rate_field(_("Level 1 rate (the sharer)"))
    level2_rate = rate_field(_("Level 2 rate"), required=False, help_text=_("Empty: level 2 is not paid."))
    level3_rate = rate_field(_("Level 3 rate"), required=False, help_text=_("Empty: level 3 is not paid."))

    def clean(self):
        cleaned = super().clean()
        if cleaned.get("level3_rate") is not None and cleaned.get("level2_rate") is None and not self.errors:
            self.add_error("level2_rate", _("Enter the level 2 rate: a plan that pays level 3 pays level 2 too."))
        return cleaned

    def rates(self) -> tuple:
        levels = (self.cleaned_data.get(f"level{level}_rate") for level in range(1, HARD_MAX_LEVELS + 1))
        return tuple(rate for rate in levels if rate is not None)

    def save(self, *, actor) -> CommissionPlan:
        """Create the draft; raises CommissionError (nothing changed) with every way it breaks the policy."""
        return plan_create(
            actor=actor,
            name=self.cleaned_data["name"],
            name_zh_hans=self.cleaned_data.get("name_zh_hans", ""),
            rates=self.rates(),
        )
