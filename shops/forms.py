from django import forms
from django.conf import settings
from django.core.files.uploadedfile import UploadedFile
from django.template.defaultfilters import filesizeformat
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

from core.images import IMAGE_FORMATS, image_upload_check
from core.phones import PhoneNumberField, phone_lookup_value
from shops.models import SHOP_SLUG_MAX_LENGTH, SHOP_SLUG_SHAPE, Order, Shop
from shops.selectors import shop_address_suggestion


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


class ShopLogoField(forms.ImageField):
    """An image upload checked by the project's one image rule (core.images: PNG, JPEG or WebP by content, at most
    settings.SHOP_LOGO_MAX_BYTES, SHOP_LOGO_MIN_SIDE..SHOP_LOGO_MAX_SIDE pixels). The stored name comes from the
    content (`logo.png`), so a PNG called `me.jpg` is kept as a PNG and the uploader's file name is not published."""

    def to_python(self, data):
        if data in self.empty_values:
            return None
        image_format = image_upload_check(
            data,
            max_bytes=settings.SHOP_LOGO_MAX_BYTES,
            min_side=settings.SHOP_LOGO_MIN_SIDE,
            max_side=settings.SHOP_LOGO_MAX_SIDE,
        )
        upload = super().to_python(data)
        upload.name = f"logo.{IMAGE_FORMATS[image_format]}"
        return upload


class ShopForm(forms.ModelForm):
    # A plain text field, not Django's SlugField: its "Enter a valid “slug”…" error is jargon (and mistranslated
    # as 有效“字段”); ours says what an address may contain and suggests a free one (clean_slug).
    slug = forms.CharField(
        label=_("Shop address"),
        max_length=SHOP_SLUG_MAX_LENGTH,
        help_text=_("Your shop's link is /s/<address>/: the letters a to z, digits and hyphens, 3 to 40 of them."),
        widget=forms.TextInput(
            attrs={"autocapitalize": "none", "autocorrect": "off", "spellcheck": "false", "inputmode": "url"}
        ),
        error_messages={
            "max_length": _("A shop address is at most %(limit_value)d characters long (it has %(show_value)d).")
        },
    )
    remove_logo = forms.BooleanField(label=_("Remove the logo"), required=False)
    field_order = ("name", "slug", "description", "logo", "remove_logo", "is_open")

    class Meta:
        model = Shop
        fields = ("name", "slug", "description", "logo", "is_open")
        field_classes = {"logo": ShopLogoField}
        labels = {"name": _("Shop name"), "is_open": _("Open for orders")}
        help_texts = {
            "description": _("A line or two buyers see under your shop name."),
            "is_open": _("Untick to pause orders; buyers can still see your shop."),
        }
        widgets = {
            "name": forms.TextInput(attrs={"autocomplete": "organization"}),
            "description": forms.Textarea(attrs={"rows": 4}),
            "logo": forms.FileInput(attrs={"accept": "image/png,image/jpeg,image/webp"}),
        }

    def __init__(self, *args, member=None, **kwargs):
        self.member = member  # whose shop it is: an address to suggest can be made from their invite code
        super().__init__(*args, **kwargs)
        self.fields["logo"].help_text = _(
            "PNG, JPEG or WebP, square works best, %(min)s to %(max)s pixels a side, up to %(limit)s."
        ) % {
            "min": settings.SHOP_LOGO_MIN_SIDE,
            "max": settings.SHOP_LOGO_MAX_SIDE,
            "limit": filesizeformat(settings.SHOP_LOGO_MAX_BYTES),
        }
        if not (self.instance and self.instance.logo):
            del self.fields["remove_logo"]

    def clean_slug(self):
        slug = self.cleaned_data["slug"].strip().lower()
        if SHOP_SLUG_SHAPE.search(slug):
            return slug
        errors = [
            forms.ValidationError(
                _(
                    "A shop address may contain only the letters a to z, the digits 0 to 9 and hyphens (-), 3 to 40 "
                    "of them, starting and ending with a letter or digit: it is part of your shop's link, "
                    "/s/<address>/, so Chinese characters, spaces and other signs cannot be used."
                ),
                code="invalid",
            )
        ]
        suggestion = shop_address_suggestion(
            typed=slug, name=self.data.get(self.add_prefix("name"), ""), member=self.member, shop=self.instance
        )
        if suggestion:
            errors.append(
                forms.ValidationError(
                    _("How about “%(suggestion)s”?"), code="suggestion", params={"suggestion": suggestion}
                )
            )
        raise forms.ValidationError(errors)

    def clean(self):
        cleaned = super().clean()
        if cleaned.get("remove_logo") and isinstance(cleaned.get("logo"), UploadedFile):
            self.add_error("remove_logo", _("Either upload a new logo or remove it, not both."))
        return cleaned

    def shop_fields(self) -> dict:
        """The cleaned values as keyword arguments for shop_open / shop_update.

        `logo` is a new upload, "" to remove the logo, or None to keep what is there.
        """
        data = self.cleaned_data
        if data.get("remove_logo"):
            logo = ""
        elif isinstance(data.get("logo"), UploadedFile):
            logo = data["logo"]
        else:
            logo = None
        return {
            "name": data["name"],
            "slug": data["slug"],
            "description": data["description"],
            "is_open": data["is_open"],
            "logo": logo,
        }
