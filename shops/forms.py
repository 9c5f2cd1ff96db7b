from django import forms
from django.conf import settings
from django.core.validators import RegexValidator
from django.utils.translation import gettext_lazy as _

from shops.models import Shop

phone_validator = RegexValidator(
    r"^\+?[0-9][0-9 -]{5,18}[0-9]$", _("Enter a phone number of digits, e.g. 13800138000.")
)


class QuantityForm(forms.Form):
    quantity = forms.IntegerField(
        label=_("Quantity"), min_value=0, max_value=settings.ORDER_MAX_QUANTITY_PER_LINE, initial=1
    )


class CheckoutForm(forms.Form):
    name = forms.CharField(label=_("Name"), max_length=100, widget=forms.TextInput(attrs={"autocomplete": "name"}))
    phone = forms.CharField(
        label=_("Phone"),
        max_length=20,
        required=False,
        validators=[phone_validator],
        widget=forms.TextInput(attrs={"autocomplete": "tel", "inputmode": "tel", "type": "tel"}),
    )
    email = forms.EmailField(label=_("Email"), required=False, widget=forms.EmailInput(attrs={"autocomplete": "email"}))
    address = forms.CharField(
        label=_("Delivery address"),
        max_length=500,
        widget=forms.Textarea(attrs={"rows": 3, "autocomplete": "street-address"}),
    )

    def clean_name(self):
        return self.cleaned_data["name"].strip()

    def clean_address(self):
        address = self.cleaned_data["address"].strip()
        if len(address) < 5:
            raise forms.ValidationError(_("Enter the full delivery address."))
        return address

    def clean(self):
        cleaned = super().clean()
        contact_errors = "phone" in self.errors or "email" in self.errors
        if not contact_errors and not cleaned.get("phone") and not cleaned.get("email"):
            self.add_error("phone", _("Give a phone number or an email address, so we can reach you."))
        return cleaned


class OrderLookupForm(forms.Form):
    number = forms.CharField(label=_("Order number"), max_length=20)
    contact = forms.CharField(label=_("Phone or email used at checkout"), max_length=254)


class ShopForm(forms.ModelForm):
    class Meta:
        model = Shop
        fields = ("name", "slug", "description", "logo", "is_open")
        widgets = {"description": forms.Textarea(attrs={"rows": 4})}

    def clean_slug(self):
        return self.cleaned_data["slug"].strip().lower()
