"""Forms for the member's payout pages and the finance staff's admin screens.

They only parse input; the rules (minimum, balance, the fields each method needs) live in payouts/services.py,
and a PayoutError from there is put beside the field it names (see `core.forms.add_service_errors`).
"""

import csv
import io
from dataclasses import dataclass

from django import forms
from django.conf import settings
from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _

from core.money import MONEY_DECIMAL_PLACES, MONEY_MAX_DIGITS, format_money
from payouts.models import PayoutAccount, Withdrawal

# The fields that identify where money goes: never put back into a page after they are saved.
IDENTIFIER_FIELDS = ("account_number", "alipay_account", "wechat_id")
METHOD_IDENTIFIER = {
    PayoutAccount.Method.BANK: "account_number",
    PayoutAccount.Method.ALIPAY: "alipay_account",
    PayoutAccount.Method.WECHAT: "wechat_id",
}
RESULT_FILE_MAX_BYTES = 2 * 1024 * 1024
RESULT_FILE_MAX_LINES = 20_000


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


class RejectForm(forms.Form):
    reason = forms.CharField(
        label=_("Reason (shown to the member)"), max_length=500, widget=forms.Textarea(attrs={"rows": 3})
    )


class MarkFailedForm(forms.Form):
    reason = forms.CharField(
        label=_("Why the transfer failed (shown to the member)"),
        max_length=500,
        widget=forms.Textarea(attrs={"rows": 3}),
    )
    reference = forms.CharField(label=_("Bank reference (optional)"), max_length=100, required=False)


class MarkPaidForm(forms.Form):
    reference = forms.CharField(label=_("Bank reference (optional)"), max_length=100, required=False)


class CreateBatchForm(forms.Form):
    provider = forms.ChoiceField(label=_("Payout provider"))

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["provider"].choices = [(name, name) for name in settings.PAYOUT_PROVIDERS]
        self.fields["provider"].initial = settings.PAYOUT_PROVIDER


@dataclass(frozen=True)
class ResultLine:
    line_number: int
    withdrawal_id: int | None
    status: str
    reference: str
    reason: str
    problem: str = ""  # why the line cannot be applied, if it cannot


class ResultUploadForm(forms.Form):
    """The bank's (or Alipay's) answer for a manual batch: one line per withdrawal.

    Columns: withdrawal id, status (paid / failed), reference, reason. A first line that is not a withdrawal id
    is taken as a header. UTF-8 (with or without BOM) or GB18030, as Chinese banks' exports often are.
    """

    file = forms.FileField(label=_("Result file (CSV)"))

    def clean_file(self):
        upload = self.cleaned_data["file"]
        if upload.size > RESULT_FILE_MAX_BYTES:
            raise ValidationError(_("The file is larger than 2 MB; split it."))
        raw = upload.read()
        for encoding in ("utf-8-sig", "gb18030"):
            try:
                text = raw.decode(encoding)
                break
            except UnicodeDecodeError:
                continue
        else:
            raise ValidationError(_("Save the file as CSV in UTF-8."))
        try:
            rows = list(csv.reader(io.StringIO(text, newline="")))
        except csv.Error as error:
            raise ValidationError(_("This is not a CSV file: %(error)s") % {"error": error}) from error
        if len(rows) > RESULT_FILE_MAX_LINES:
            raise ValidationError(_("At most %(max)d lines per file.") % {"max": RESULT_FILE_MAX_LINES})
        lines = [line for line in (self._line(number, row) for number, row in enumerate(rows, 1)) if line]
        if not lines:
            raise ValidationError(_("The file has no result lines."))
        return lines

    @staticmethod
    def _line(number: int, row: list[str]) -> ResultLine | None:
        cells = [cell.strip() for cell in row] + ["", "", "", ""]
        withdrawal_id, status, reference, reason = cells[:4]
        if not any(cells):
            return None
        status = status.lower()
        if not (withdrawal_id.isascii() and withdrawal_id.isdigit() and len(withdrawal_id) <= 18):
            if number == 1:
                return None  # the header
            return ResultLine(number, None, status, reference, reason, problem=_("not a withdrawal id"))
        if status not in (Withdrawal.Status.PAID, Withdrawal.Status.FAILED):
            return ResultLine(
                number, int(withdrawal_id), status, reference, reason, problem=_("status must be paid or failed")
            )
        return ResultLine(number, int(withdrawal_id), status, reference[:100], reason)
