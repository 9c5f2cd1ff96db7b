"""Forms of the shop owner's pages. They only parse input; the services of the apps below decide what is allowed."""

from django import forms
from django.utils.translation import gettext_lazy as _

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
