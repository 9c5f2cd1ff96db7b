"""Forms of the shop owner's pages. They only parse input; the services of the apps below decide what is allowed,
and a service's refusal is put beside the field it names (see `core.forms.add_service_errors`)."""

from django import forms
from django.conf import settings
from django.utils.translation import gettext_lazy as _

from commissions.forms import LEVEL_CHOICES
from commissions.models import CommissionEntry
from core.money import MONEY_DECIMAL_PLACES, MONEY_MAX_DIGITS, format_money
from payouts.models import PayoutAccount
from shops.models import Product


class ShareLinkForm(forms.Form):
    product = forms.ModelChoiceField(
        label=_("Link to"),
        queryset=None,
        required=False,
        empty_label=_("My whole shop"),
    )
    campaign = forms.CharField(
        label=_("Campaign label (optional)"),
        max_length=60,
        required=False,
        help_text=_("For your own tracking, e.g. “WeChat group” or “Moments 11.11”."),
    )

    def __init__(self, *args, shop=None, **kwargs):
        super().__init__(*args, **kwargs)
        listed = Product.objects.filter(listings__shop=shop, is_active=True) if shop else Product.objects.none()
        self.fields["product"].queryset = listed.order_by("title")


class CommissionFilterForm(forms.Form):
    """The filters of a member's entry list (GET). Invalid values are ignored, never an error page."""

    status = forms.ChoiceField(
        label=_("Status"), choices=[("", _("All")), *CommissionEntry.Status.choices], required=False
    )
    level = forms.TypedChoiceField(
        label=_("Level"),
        choices=[("", _("All")), *LEVEL_CHOICES],
        coerce=int,
        empty_value=None,
        required=False,
    )

    def filters(self) -> dict:
        """{status, level} from whichever fields are valid."""
        self.is_valid()
        return {"status": self.cleaned_data.get("status") or None, "level": self.cleaned_data.get("level")}


# --- Payouts ------------------------------------------------------------------------------------------

# The field that identifies where money goes, per method: never put back into a page after it is saved.
METHOD_IDENTIFIER = {
    PayoutAccount.Method.BANK: "account_number",
    PayoutAccount.Method.ALIPAY: "alipay_account",
    PayoutAccount.Method.WECHAT: "wechat_id",
}


class WithdrawalForm(forms.Form):
    # max_digits/decimal_places as the model's: the service is never handed a number it cannot store.
    amount = forms.DecimalField(
        label=_("Amount to withdraw"),
        max_digits=MONEY_MAX_DIGITS,
        decimal_places=MONEY_DECIMAL_PLACES,
        widget=forms.TextInput(attrs={"inputmode": "decimal", "autocomplete": "off", "placeholder": "50.00"}),
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        minimum = format_money(settings.WITHDRAWAL_MINIMUM)
        self.fields["amount"].help_text = _("At least %(minimum)s.") % {"minimum": minimum}


class PayoutAccountForm(forms.Form):
    """How the member is paid. The saved card/account number is never sent back to the browser: the field is
    left empty, and left empty it keeps the number on file (if the method stays the same)."""

    method = forms.ChoiceField(label=_("Paid by"), choices=PayoutAccount.Method.choices)
    holder_name = forms.CharField(label=_("Account holder's real name"), max_length=60, required=False)
    bank_name = forms.CharField(label=_("Bank"), max_length=80, required=False)
    bank_branch = forms.CharField(label=_("Branch (optional)"), max_length=120, required=False)
    account_number = forms.CharField(
        label=_("Card / account number"),
        max_length=40,  # spaces are allowed while typing; the service strips them (34 characters at most)
        required=False,
        widget=forms.TextInput(attrs={"inputmode": "numeric", "autocomplete": "off"}),
    )
    alipay_account = forms.CharField(
        label=_("Alipay account (phone or email)"),
        max_length=100,
        required=False,
        widget=forms.TextInput(attrs={"autocomplete": "off"}),
    )
    wechat_id = forms.CharField(
        label=_("WeChat ID"), max_length=40, required=False, widget=forms.TextInput(attrs={"autocomplete": "off"})
    )

    def __init__(self, data=None, *, account: PayoutAccount | None = None):
        initial = {}
        if account is not None:
            initial = {name: getattr(account, name) for name in ("method", "holder_name", "bank_name", "bank_branch")}
        super().__init__(data, initial=initial)
        self.account = account
        if account is not None:
            kept = METHOD_IDENTIFIER[account.method]
            self.fields[kept].widget.attrs["placeholder"] = account.masked_identifier
            self.fields[kept].help_text = _("On file: %(masked)s. Leave empty to keep it.") % {
                "masked": account.masked_identifier
            }

    def clean(self):
        cleaned = super().clean()
        method = cleaned.get("method")
        if self.account is not None and method == self.account.method:
            kept = METHOD_IDENTIFIER[method]
            if not (cleaned.get(kept) or "").strip():
                cleaned[kept] = getattr(self.account, kept)
        return cleaned

    def service_arguments(self) -> dict:
        """Keyword arguments for payout_account_save (after is_valid())."""
        return dict(self.cleaned_data)
