"""Forms for the finance staff's payout screens (the member's payout forms are members/forms.py).

They only parse input; the rules live in payouts/services.py.
"""

import csv
import io
from dataclasses import dataclass

from django import forms
from django.conf import settings
from django.core.exceptions import ValidationError
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from payouts.models import Withdrawal
from referrals.models import Member

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


class BalanceAdjustmentForm(forms.Form):
    """Finance's "Adjust a member's balance" page (payouts/adjustments.py checks everything else)."""

    member = forms.CharField(
        label=_("Member"),
        max_length=254,
        help_text=_("The member's exact invite code or email."),
    )
    amount = forms.DecimalField(
        label=_("Amount"),
        max_digits=14,
        decimal_places=2,
        help_text=_("Positive: a credit to the member (e.g. 50.00); negative: a debit (e.g. -50.00)."),
    )
    member_note = forms.CharField(
        label=_("Note for the member"),
        max_length=200,
        help_text=_(
            "Shown to the member on their statement, as written: e.g. “Goodwill credit for the late delivery”."
        ),
    )
    internal_note = forms.CharField(
        label=_("Internal note"),
        max_length=2000,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text=_("Only staff read it (the second approver, the audit log): why, a ticket number."),
    )
    key = forms.CharField(widget=forms.HiddenInput, max_length=64)

    def clean_member(self):
        value = self.cleaned_data["member"].strip()
        found = Member.objects.filter(Q(invite_code=value) | Q(user__email__iexact=value)).select_related("user")
        members = list(found[:2])
        if len(members) != 1:
            raise ValidationError(_("No member has this invite code or email."))
        return members[0]
