"""Business payees' invoices (docs/tax.md, "Business payees"): submitted by the member, reviewed by finance.

A business payee (accounts.Identity.payee_kind) is paid against its invoice (发票) to the platform, with no individual
income tax withheld. The invoice comes after the withdrawal is requested and before it is approved (先票后款): the
member uploads it for one withdrawal (`invoice_submit`), finance accepts or rejects it with a reason
(`invoice_accept`, `invoice_reject`), and only then can the withdrawal be approved and sent
(payouts.services.withdrawal_approve, payout_batch_create). A rejected invoice is kept and the member uploads another.

Every change locks the withdrawal and then the invoice (core/locks.py), runs in a transaction and writes an
InvoiceEvent. The file is checked by its first bytes (PDF, OFD, JPEG or PNG, never by its name or the browser's
content type) and its size, and stored in the private storage (payouts.storage) under a name of our own.
"""

import io
import re
import zipfile
from datetime import date

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from core.money import CENT
from payouts.locks import invoice_lock, withdrawal_lock
from payouts.models import Invoice, InvoiceEvent, Withdrawal
from payouts.selectors import invoice_buyer
from payouts.services import PayoutError

Status = Invoice.Status
TRANSITIONS = {
    Status.SUBMITTED: {Status.ACCEPTED, Status.REJECTED},
    # An accepted invoice found wrong (voided, 红冲) may still be rejected while its withdrawal is not sent.
    Status.ACCEPTED: {Status.REJECTED},
}
# The withdrawal states an invoice may be submitted for, and rejected while accepted (nothing sent yet).
OPEN_FOR_INVOICE = (Withdrawal.Status.REQUESTED, Withdrawal.Status.APPROVED)
FILE_NAME_MAX_LENGTH = 120
REASON_MAX_LENGTH = 500

FULLY_DIGITAL = re.compile(r"\d{20}")  # 数电发票: a 20-digit number, no code
OLD_CODE = re.compile(r"\d{10}|\d{12}")  # 发票代码: 10 digits (special VAT invoice) or 12 (ordinary, e-invoice)
OLD_NUMBER = re.compile(r"\d{8}")  # 发票号码 of an invoice with a code


def invoice_number_clean(code: str, number: str) -> tuple[str, str]:
    """The invoice's code and number, digits only (spaces dropped), or PayoutError naming the field."""
    code = "".join((code or "").split())
    number = "".join((number or "").split())
    if not code:
        if not FULLY_DIGITAL.fullmatch(number):
            raise PayoutError(
                {
                    "invoice_number": [
                        _(
                            "A fully digital invoice (数电发票) has a 20-digit number; an older invoice also has a "
                            "10- or 12-digit code."
                        )
                    ]
                },
                code="invoice_number",
            )
        return "", number
    errors = {}
    if not OLD_CODE.fullmatch(code):
        errors["invoice_code"] = [_("An invoice code (发票代码) has 10 or 12 digits.")]
    if not OLD_NUMBER.fullmatch(number):
        errors["invoice_number"] = [_("With an invoice code, the invoice number (发票号码) has 8 digits.")]
    if errors:
        raise PayoutError(errors, code="invoice_number")
    return code, number


def invoice_file_type(head: bytes, upload) -> str | None:
    """The file's type by its first bytes: pdf, ofd (a ZIP container with OFD.xml at its root), jpeg or png."""
    if head.startswith(b"%PDF-"):
        return Invoice.FileType.PDF
    if head.startswith(b"\xff\xd8\xff"):
        return Invoice.FileType.JPEG
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return Invoice.FileType.PNG
    if head.startswith(b"PK\x03\x04"):
        try:
            upload.seek(0)
            with zipfile.ZipFile(io.BytesIO(upload.read())) as container:
                names = container.namelist()
        except (zipfile.BadZipFile, ValueError, OSError):
            return None
        finally:
            upload.seek(0)
        if "OFD.xml" in names:
            return Invoice.FileType.OFD
    return None


def invoice_file_check(upload) -> str:
    """The upload's type, or PayoutError (empty, too large, not a PDF, OFD, JPEG or PNG by its bytes)."""
    if upload is None or not upload.size:
        raise PayoutError({"file": [_("Choose the invoice file.")]}, code="invoice_file")
    limit = settings.INVOICE_FILE_MAX_BYTES
    if upload.size > limit:
        raise PayoutError(
            {"file": [_("The file is too large: at most %(size)d MB.") % {"size": max(limit // (1024 * 1024), 1)}]},
            code="invoice_file",
        )
    upload.seek(0)
    head = upload.read(16)
    upload.seek(0)
    kind = invoice_file_type(head, upload)
    if kind is None:
        raise PayoutError(
            {"file": [_("Upload the invoice as a PDF, OFD, JPEG or PNG file.")]},
            code="invoice_file",
        )
    return kind


def _event(invoice: Invoice, from_status: str, *, actor=None, actor_label="", reason="") -> None:
    InvoiceEvent.objects.create(
        invoice=invoice,
        actor=actor,
        actor_label=actor_label,
        from_status=from_status,
        to_status=invoice.status,
        reason=reason,
    )


@transaction.atomic
def invoice_submit(
    *, withdrawal: Withdrawal, member, invoice_code: str, invoice_number: str, issued_on: date, amount, file
) -> Invoice:
    """The member's invoice for one of their business withdrawals, awaiting finance's review.

    Refused (PayoutError, nothing stored) unless the withdrawal is the member's, to a business, requested or approved,
    and has no invoice submitted or accepted; the number must have its form, the amount (价税合计) must be the
    withdrawal's amount, the date not in the future nor before the request, the file a PDF, OFD, JPEG or PNG within
    the size limit. One invoice number covers one withdrawal."""
    withdrawal = withdrawal_lock(withdrawal.pk)
    if withdrawal.member_id != member.pk:
        raise PayoutError(_("Not your withdrawal."), code="not_yours")
    if not withdrawal.is_business:
        raise PayoutError(_("This withdrawal is paid to you in person: it needs no invoice."), code="not_business")
    if withdrawal.status not in OPEN_FOR_INVOICE:
        raise PayoutError(
            _("An invoice can be added only while the withdrawal is requested or approved."), code="invoice_closed"
        )
    if withdrawal.invoices.exclude(status=Status.REJECTED).exists():
        raise PayoutError(
            _("This withdrawal already has an invoice; a new one can be uploaded if it is rejected."),
            code="invoice_exists",
        )
    errors: dict[str, list[str]] = {}
    try:
        code, number = invoice_number_clean(invoice_code, invoice_number)
    except PayoutError as error:
        errors.update(error.message_dict)
        code, number = "", ""
    if amount is None or amount.quantize(CENT) != amount or amount != withdrawal.amount:
        errors["amount"] = [
            _("The invoice's total (价税合计) must be the withdrawal's amount, %(amount)s.")
            % {"amount": withdrawal.amount}
        ]
    today = timezone.localdate()
    if issued_on is None or issued_on > today:
        errors["issued_on"] = [_("The issue date cannot be in the future.")]
    elif issued_on < timezone.localdate(withdrawal.requested_at):
        errors["issued_on"] = [_("The invoice is for this withdrawal: it cannot be issued before it was requested.")]
    try:
        file_type = invoice_file_check(file)
    except PayoutError as error:
        errors.update(error.message_dict)
        file_type = ""
    if errors:
        raise PayoutError(errors, code="invoice_invalid")
    buyer = invoice_buyer()
    invoice = Invoice(
        withdrawal=withdrawal,
        member_id=withdrawal.member_id,
        invoice_code=code,
        invoice_number=number,
        issued_on=issued_on,
        amount=amount,
        seller_name=withdrawal.account.get("company_name", ""),
        seller_tax_id=withdrawal.account.get("credit_code", ""),
        buyer_name=buyer["name"],
        buyer_tax_id=buyer["tax_id"],
        file_type=file_type,
        file_name=(getattr(file, "name", "") or "")[-FILE_NAME_MAX_LENGTH:],
        file_size=file.size,
    )
    try:
        with transaction.atomic():
            # The number is checked under a savepoint: a clash rolls back the row, and the file is not kept.
            invoice.file.save("invoice", file, save=False)
            invoice.save()
    except IntegrityError:
        invoice.file.delete(save=False)
        raise PayoutError(
            {"invoice_number": [_("This invoice number is already used for another withdrawal.")]},
            code="invoice_number_taken",
        ) from None
    _event(invoice, "", actor=member.user, actor_label="member")
    return invoice


def _move(invoice: Invoice, to_status: str, *, actor, reason: str = "") -> Invoice:
    from_status = invoice.status
    if to_status not in TRANSITIONS.get(from_status, set()):
        raise PayoutError(
            _("An invoice that is “%(from)s” cannot become “%(to)s”.")
            % {"from": Status(from_status).label, "to": Status(to_status).label},
            code="illegal_transition",
        )
    invoice.status = to_status
    invoice.review_reason = reason
    invoice.reviewed_by = actor
    invoice.reviewed_at = timezone.now()
    invoice.save(update_fields=["status", "review_reason", "reviewed_by", "reviewed_at"])
    _event(invoice, from_status, actor=actor, actor_label="staff", reason=reason)
    return invoice


@transaction.atomic
def invoice_accept(*, invoice: Invoice, actor) -> Invoice:
    """Finance accepts a submitted invoice (they checked it: buyer, seller, amount, and the number at the tax
    bureau's verification platform); the withdrawal may then be approved. Locks the withdrawal, then the invoice."""
    withdrawal_lock(invoice.withdrawal_id)
    return _move(invoice_lock(invoice.pk), Status.ACCEPTED, actor=actor)


@transaction.atomic
def invoice_reject(*, invoice: Invoice, actor, reason: str) -> Invoice:
    """Finance rejects an invoice with a reason shown to the member, who may upload another. An accepted invoice
    may be rejected only while its withdrawal is not sent (it is then left out of batches until a new invoice is
    accepted). Locks the withdrawal, then the invoice."""
    reason = (reason or "").strip()
    if not reason:
        raise PayoutError({"reason": [_("Give the member a reason.")]}, code="reason_required")
    if len(reason) > REASON_MAX_LENGTH:
        raise PayoutError({"reason": [_("At most %(n)d characters.") % {"n": REASON_MAX_LENGTH}]})
    withdrawal = withdrawal_lock(invoice.withdrawal_id)
    invoice = invoice_lock(invoice.pk)
    if invoice.status == Status.ACCEPTED and withdrawal.status not in OPEN_FOR_INVOICE:
        raise PayoutError(
            _("Withdrawal %(id)s is already sent or closed: its accepted invoice stays.") % {"id": withdrawal.pk},
            code="invoice_in_use",
        )
    return _move(invoice, Status.REJECTED, actor=actor, reason=reason)
