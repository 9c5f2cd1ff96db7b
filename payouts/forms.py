"""Forms for the finance staff's payout screens (the member's payout forms are members/forms.py).

They only parse input; the rules live in payouts/services.py.
"""

import csv
import io
from dataclasses import dataclass

from django import forms
from django.conf import settings
from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _

from payouts.models import Withdrawal

RESULT_FILE_MAX_BYTES = 2 * 1024 * 1024
RESULT_FILE_MAX_LINES = 20_000


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


class BindWeChatPayeeForm(forms.Form):
    openid = forms.CharField(
        label=_("The member's openid under the shop's WeChat AppID"),
        max_length=64,
        help_text=_("Until members bind WeChat themselves, finance enters what WeChat's OAuth gave for them."),
    )


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
