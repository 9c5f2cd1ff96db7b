from django import forms
from django.conf import settings
from django.core.files.uploadedfile import UploadedFile
from django.core.validators import RegexValidator
from django.template.defaultfilters import filesizeformat
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

from shops.models import Shop

phone_validator = RegexValidator(
    r"^\+?[0-9][0-9 -]{5,18}[0-9]$", _("Enter a phone number of digits, e.g. 13800138000.")
)


class QuantityForm(forms.Form):
    quantity = forms.IntegerField(
        label=_("Quantity"), min_value=0, max_value=settings.ORDER_MAX_QUANTITY_PER_LINE, initial=1
    )


class CheckoutForm(forms.Form):
    name = forms.CharField(
        label=pgettext_lazy("a person's name", "Name"),
        max_length=100,
        widget=forms.TextInput(attrs={"autocomplete": "name"}),
    )
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


# Logos: what a phone camera or a design app produces, checked by content (Pillow), never by the file name.
LOGO_FORMATS = {"PNG": "png", "JPEG": "jpg", "WEBP": "webp"}
LOGO_MIN_SIDE = 64
LOGO_MAX_SIDE = 4096


class ShopLogoField(forms.ImageField):
    """An image upload that must be PNG, JPEG or WebP by content, at most settings.SHOP_LOGO_MAX_BYTES, and
    LOGO_MIN_SIDE..LOGO_MAX_SIDE pixels on each side. The stored name comes from the content (`logo.png`), so a
    PNG called `me.jpg` is kept as a PNG and the uploader's file name is not published."""

    default_error_messages = {
        "invalid_image": _("This file is not a picture we can read. Upload a PNG, JPEG or WebP image."),
        "too_large": _("This picture is %(size)s; the largest accepted is %(limit)s."),
        "format": _("Upload a PNG, JPEG or WebP image (this one is %(format)s)."),
        "too_small": _("This picture is %(width)s × %(height)s pixels; use at least %(min)s × %(min)s."),
        "too_big": _("This picture is %(width)s × %(height)s pixels; use at most %(max)s × %(max)s."),
    }

    def to_python(self, data):
        size = getattr(data, "size", None)
        limit = settings.SHOP_LOGO_MAX_BYTES
        # Before Pillow looks at it: an oversized upload is refused without being decoded.
        if size is not None and size > limit:
            raise forms.ValidationError(
                self.error_messages["too_large"],
                code="too_large",
                params={"size": filesizeformat(size), "limit": filesizeformat(limit)},
            )
        upload = super().to_python(data)  # opens and verifies with Pillow; any failure is "invalid_image"
        if upload is None:
            return None
        image = upload.image
        if image.format not in LOGO_FORMATS:
            raise forms.ValidationError(
                self.error_messages["format"], code="format", params={"format": image.format or "?"}
            )
        width, height = image.size
        if min(width, height) < LOGO_MIN_SIDE:
            raise forms.ValidationError(
                self.error_messages["too_small"],
                code="too_small",
                params={"width": width, "height": height, "min": LOGO_MIN_SIDE},
            )
        if max(width, height) > LOGO_MAX_SIDE:
            raise forms.ValidationError(
                self.error_messages["too_big"],
                code="too_big",
                params={"width": width, "height": height, "max": LOGO_MAX_SIDE},
            )
        upload.name = f"logo.{LOGO_FORMATS[image.format]}"
        return upload


class ShopForm(forms.ModelForm):
    remove_logo = forms.BooleanField(label=_("Remove the logo"), required=False)
    field_order = ("name", "slug", "description", "logo", "remove_logo", "is_open")

    class Meta:
        model = Shop
        fields = ("name", "slug", "description", "logo", "is_open")
        field_classes = {"logo": ShopLogoField}
        labels = {"name": _("Shop name"), "slug": _("Shop address"), "is_open": _("Open for orders")}
        help_texts = {
            "description": _("A line or two buyers see under your shop name."),
            "is_open": _("Untick to pause orders; buyers can still see your shop."),
        }
        widgets = {
            "name": forms.TextInput(attrs={"autocomplete": "organization"}),
            "slug": forms.TextInput(
                attrs={"autocapitalize": "none", "autocorrect": "off", "spellcheck": "false", "inputmode": "url"}
            ),
            "description": forms.Textarea(attrs={"rows": 4}),
            "logo": forms.FileInput(attrs={"accept": "image/png,image/jpeg,image/webp"}),
        }

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["logo"].help_text = _(
            "PNG, JPEG or WebP, square works best, %(min)s to %(max)s pixels a side, up to %(limit)s."
        ) % {"min": LOGO_MIN_SIDE, "max": LOGO_MAX_SIDE, "limit": filesizeformat(settings.SHOP_LOGO_MAX_BYTES)}
        if not (self.instance and self.instance.logo):
            del self.fields["remove_logo"]

    def clean_slug(self):
        return self.cleaned_data["slug"].strip().lower()

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
