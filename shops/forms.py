"""Forms of the buyer pages: cart, checkout, order look-up (the owner's shop forms are members/forms.py)."""

from django import forms
from django.conf import settings
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

from core.phones import PhoneNumberField, phone_lookup_value
from shops.models import Order


class QuantityForm(forms.Form):
    """How many to add to the cart (the product page): 1 to ORDER_MAX_QUANTITY_PER_LINE. Zero, a negative number or
    something else is a form error that says so, never silently nothing."""

    quantity = forms.IntegerField(
        label=_("Quantity"),
        min_value=1,
        max_value=settings.ORDER_MAX_QUANTITY_PER_LINE,
        initial=1,
        error_messages={
            "required": _("Enter how many you want, e.g. 1."),
            "invalid": _("Enter the quantity as a whole number, e.g. 1 or 2."),
            "min_value": _("A quantity of %(value)s adds nothing to your cart: enter at least 1."),
            "max_value": _("You can order at most %(limit_value)s of a product at a time."),
        },
    )


class CartQuantityForm(QuantityForm):
    """A new quantity for a product in the cart: 0 takes it out (and the page says so), below 0 is a form error."""

    quantity = forms.IntegerField(
        label=_("Quantity"),
        min_value=0,
        max_value=settings.ORDER_MAX_QUANTITY_PER_LINE,
        error_messages={
            **QuantityForm.base_fields["quantity"].error_messages,
            "min_value": _("A quantity cannot be below 0: enter 0 to take the product out of your cart."),
        },
    )


class CheckoutForm(forms.Form):
    name = forms.CharField(
        label=pgettext_lazy("a person's name", "Name"),
        max_length=100,
        widget=forms.TextInput(attrs={"autocomplete": "name"}),
    )
    # Stored in E.164 form ("+8613800138000"), so the order look-up finds it however the buyer types it then.
    phone = PhoneNumberField(label=_("Phone"), required=False)
    # The column's length, not EmailField's default of 320: a 255-character address used to pass the form and
    # then fail the INSERT on PostgreSQL (found by tests/security/test_fuzz_checkout.py).
    email = forms.EmailField(
        label=_("Email"),
        required=False,
        max_length=Order._meta.get_field("buyer_email").max_length,
        widget=forms.EmailInput(attrs={"autocomplete": "email"}),
    )
    address = forms.CharField(
        label=_("Delivery address"),
        max_length=500,
        widget=forms.Textarea(attrs={"rows": 3, "autocomplete": "street-address"}),
    )

    def __init__(self, *args, methods=(), coupons: bool = False, **kwargs):
        """`methods`: the ways to pay that fit the buyer's browser (shops.payments.methods). With more than one the
        buyer chooses (the first is chosen to begin with); with one there is nothing to choose. `coupons`: members'
        coupon codes are in use (the policy's option), so the buyer may type one (shops.services checks it)."""
        super().__init__(*args, **kwargs)
        if coupons:
            self.fields["coupon_code"] = forms.CharField(
                label=_("Coupon code (optional)"),
                required=False,
                max_length=20,
                widget=forms.TextInput(attrs={"autocomplete": "off", "autocapitalize": "characters"}),
                help_text=_("A member's personal code gives you a discount."),
            )
        if len(methods) > 1:
            self.fields["method"] = forms.ChoiceField(
                label=_("Pay with"),
                choices=[(method.key, method.label) for method in methods],
                initial=methods[0].key,
                widget=forms.RadioSelect,
                error_messages={"required": _("Choose how to pay."), "invalid_choice": _("Choose how to pay.")},
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

    def clean_number(self) -> str:
        return self.cleaned_data["number"].strip()

    def clean_contact(self) -> str:
        """An email address as typed, or a phone number in the form it is stored in (E.164), whatever its
        spelling; anything else is a form error rather than a search that can only fail."""
        contact = self.cleaned_data["contact"].strip()
        if "@" in contact:
            return contact
        phone = phone_lookup_value(contact)
        if phone is None:
            raise forms.ValidationError(
                _("Enter the phone number or the email address you gave at checkout."), code="invalid"
            )
        return phone


class PhoneForm(forms.Form):
    """The phone a buyer gave at checkout, to receive a one-time code."""

    phone = PhoneNumberField(label=_("Phone used at checkout"))


class PhoneCodeForm(forms.Form):
    code = forms.RegexField(
        label=_("The 6-digit code we sent"),
        regex=r"^\s*[0-9]{6}\s*$",
        max_length=12,
        error_messages={"invalid": _("Enter the 6 digits of the code.")},
        widget=forms.TextInput(
            attrs={"inputmode": "numeric", "autocomplete": "one-time-code", "class": "code-input", "maxlength": "6"}
        ),
    )
