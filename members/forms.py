"""Forms of the shop owner's pages. They only parse input; the services of the apps below decide what is allowed."""

from django import forms
from django.utils.translation import gettext_lazy as _

from commissions.forms import LEVEL_CHOICES
from commissions.models import CommissionEntry
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
