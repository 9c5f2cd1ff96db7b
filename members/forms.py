"""Forms of the shop owner's pages. They only parse input; the services of the apps below decide what is allowed,
and a service's refusal is put beside the field it names (see `core.forms.add_service_errors`)."""

from django import forms
from django.conf import settings
from django.core.files.uploadedfile import UploadedFile
from django.template.defaultfilters import filesizeformat
from django.utils.translation import gettext_lazy as _

from accounts.models import Identity
from commissions.forms import LEVEL_CHOICES
from commissions.models import CommissionEntry
from core.i18n import localized
from core.images import IMAGE_FORMATS, image_upload_check
from core.money import MONEY_DECIMAL_PLACES, MONEY_MAX_DIGITS, format_money
from members.notifications.models import MEMBER_EVENTS, Channel, NotificationSettings
from members.notifications.services import member_channels
from payouts.models import PayoutAccount
from shops.models import SHOP_SLUG_MAX_LENGTH, Order, Product, Shop
from shops.selectors import ORDER_SOURCE_LINK, ORDER_SOURCE_SHOP, AddressCheck, shop_address_check

# --- My shop and links -------------------------------------------------------------------------------


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


def address_check_message(check: AddressCheck) -> str:
    """What the open-shop page says about an address, beside the field (the form) or as the member types (the
    address check, members.views.shop.my_shop_address_check)."""
    if check.status == "available":
        return _("“%(address)s” is free: your shop will be at /s/%(address)s/.") % {"address": check.address}
    if check.status == "current":
        return _("This is your shop's address now.")
    if check.status == "reserved":
        return _("“%(slug)s” is reserved; pick another address.") % {"slug": check.address}
    if check.status == "taken":
        return _("This address is taken; pick another.")
    return _(
        "A shop address may contain only the letters a to z, the digits 0 to 9 and hyphens (-), 3 to 40 "
        "of them, starting and ending with a letter or digit: it is part of your shop's link, "
        "/s/<address>/, so Chinese characters, spaces and other signs cannot be used."
    )


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
        check = shop_address_check(
            typed=self.cleaned_data["slug"],
            name=self.data.get(self.add_prefix("name"), ""),
            member=self.member,
            shop=self.instance,
        )
        if check.is_available:
            return check.address
        errors = [forms.ValidationError(address_check_message(check), code=check.status)]
        if check.suggestion:
            errors.append(
                forms.ValidationError(
                    _("How about “%(suggestion)s”?"), code="suggestion", params={"suggestion": check.suggestion}
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
        self.fields["product"].queryset = listed.order_by(localized("title"), "pk")


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


class OrderFilterForm(forms.Form):
    """The filters of the owner's order list (GET). Invalid values are ignored (their errors shown beside them),
    never an error page."""

    status = forms.ChoiceField(label=_("Status"), choices=[("", _("All")), *Order.Status.choices], required=False)
    source = forms.ChoiceField(
        label=_("Sold through"),
        choices=[
            ("", _("All")),
            (ORDER_SOURCE_SHOP, _("My shop")),
            (ORDER_SOURCE_LINK, _("My links")),
        ],
        required=False,
    )
    placed_from = forms.DateField(
        label=_("Placed from"), required=False, widget=forms.DateInput(attrs={"type": "date"})
    )
    placed_to = forms.DateField(label=_("Placed until"), required=False, widget=forms.DateInput(attrs={"type": "date"}))

    def filters(self) -> dict:
        """{status, source, placed_from, placed_to} from whichever fields are valid."""
        self.is_valid()
        data = getattr(self, "cleaned_data", {})
        return {name: data.get(name) or None for name in ("status", "source", "placed_from", "placed_to")}


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


class InvoiceForm(forms.Form):
    """A business payee's invoice for one withdrawal (docs/tax.md, "Business payees"). Only parses the input: the
    number's form, the amount, the date and the file's bytes are checked by payouts.invoices.invoice_submit."""

    invoice_code = forms.CharField(
        label=_("Invoice code (发票代码)"),
        max_length=20,
        required=False,
        help_text=_("Only on older invoices (10 or 12 digits). A fully digital invoice (数电发票) has none."),
        widget=forms.TextInput(attrs={"inputmode": "numeric", "autocomplete": "off"}),
    )
    invoice_number = forms.CharField(
        label=_("Invoice number (发票号码)"),
        max_length=30,
        help_text=_("20 digits on a fully digital invoice; 8 digits on an older one with a code."),
        widget=forms.TextInput(attrs={"inputmode": "numeric", "autocomplete": "off"}),
    )
    issued_on = forms.DateField(label=_("Issue date"), widget=forms.DateInput(attrs={"type": "date"}))
    amount = forms.DecimalField(
        label=_("Total including tax (价税合计)"),
        max_digits=MONEY_MAX_DIGITS,
        decimal_places=MONEY_DECIMAL_PLACES,
        widget=forms.TextInput(attrs={"inputmode": "decimal", "autocomplete": "off"}),
    )
    file = forms.FileField(
        label=_("Invoice file"),
        help_text=_("PDF, OFD, JPEG or PNG."),
        widget=forms.ClearableFileInput(attrs={"accept": ".pdf,.ofd,.jpg,.jpeg,.png"}),
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        limit = filesizeformat(settings.INVOICE_FILE_MAX_BYTES)
        self.fields["file"].help_text = _("PDF, OFD, JPEG or PNG, at most %(size)s.") % {"size": limit}


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


class LeaderboardNameForm(forms.Form):
    """The member's choice to be named on the leaderboards; the board they were looking at, to go back to."""

    is_named = forms.BooleanField(
        label=_("Show my name and shop on the leaderboards"),
        required=False,
        help_text=_("Off: you appear as an anonymous member number. Your rank and amounts show either way."),
    )
    period = forms.CharField(required=False, widget=forms.HiddenInput)
    by = forms.CharField(required=False, widget=forms.HiddenInput)


class NotificationSettingsForm(forms.Form):
    """Which channels tell the member about each event (a checkbox per event and channel), and in which language."""

    language = forms.ChoiceField(
        label=_("Language of the messages"),
        choices=[("", _("The site's default")), *settings.LANGUAGES],
        required=False,
    )

    def __init__(self, data=None, *, current: NotificationSettings | None = None):
        super().__init__(data, initial={"language": current.language if current else ""})
        for event in MEMBER_EVENTS:
            chosen = member_channels(current, event)
            for channel in Channel:
                self.fields[self.field_name(event, channel)] = forms.BooleanField(
                    label=channel.label, required=False, initial=channel.value in chosen
                )

    @staticmethod
    def field_name(event, channel) -> str:
        return f"{event}__{channel}"

    def rows(self) -> list[tuple[str, list]]:
        """(event label, its channel fields) for the template, in the order of the events."""
        return [
            (event.label, [self[self.field_name(event, channel)] for channel in Channel]) for event in MEMBER_EVENTS
        ]

    def channels(self) -> dict[str, list[str]]:
        return {
            event.value: [c.value for c in Channel if self.cleaned_data.get(self.field_name(event, c))]
            for event in MEMBER_EVENTS
        }


class IdentityForm(forms.Form):
    """The member's legal identity, captured once (accounts.identity checks the number as its standard says)."""

    id_type = forms.ChoiceField(label=_("ID type"), choices=Identity.IdType.choices)
    legal_name = forms.CharField(label=_("Legal name"), max_length=60, help_text=_("Exactly as on your ID, e.g. 王芳."))
    id_number = forms.CharField(
        label=_("ID number"),
        max_length=40,
        help_text=_("A resident ID card number has 18 characters; the last may be X."),
        widget=forms.TextInput(attrs={"autocomplete": "off", "spellcheck": "false"}),
    )


class BusinessPayeeForm(forms.Form):
    company_name = forms.CharField(label=_("Company name"), max_length=100)
    credit_code = forms.CharField(
        label=_("Unified social credit code"), max_length=30, help_text=_("18 characters, on the business licence.")
    )


class AccountCloseForm(forms.Form):
    """Closing the account (members.services.member_close): the word typed, an optional reason, and, when money is
    available, whether the member gives it up."""

    confirmation = forms.CharField(
        label=_("Type CLOSE to confirm"),
        max_length=20,
        help_text=_("Closing cannot be undone: you will not be able to log in again."),
    )
    reason = forms.CharField(
        label=_("Why are you leaving? (optional)"),
        required=False,
        max_length=500,
        widget=forms.Textarea(attrs={"rows": 3}),
    )

    def __init__(self, *args, give_up_amount=None, **kwargs):
        super().__init__(*args, **kwargs)
        if give_up_amount is not None:
            self.fields["give_up_balance"] = forms.BooleanField(
                label=_("I give up the %(amount)s available to withdraw. It will not be paid to me.")
                % {"amount": format_money(give_up_amount)},
                required=False,
            )

    def clean_confirmation(self):
        value = self.cleaned_data["confirmation"].strip()
        if value.upper() != "CLOSE":
            raise forms.ValidationError(_("Type CLOSE (in capital letters) to confirm."))
        return value


class ShopCloseForm(forms.Form):
    confirm = forms.BooleanField(
        label=_("I understand that my shop will close for good on that date."),
        error_messages={"required": _("Tick the box to confirm.")},
    )
