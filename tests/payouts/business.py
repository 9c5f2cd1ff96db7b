"""Helpers of the business payee tests (docs/tax.md, "Business payees"): a member registered as a business with a
bank account in the company's name, invoice files by their bytes, an invoice submitted, the private storage in a
temporary directory."""

import io
import zipfile
from decimal import Decimal

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone

from accounts.identity import identity_register_business
from core.id_numbers import gb32100_check_char
from payouts.invoices import invoice_submit
from payouts.models import Invoice, Withdrawal
from payouts.services import payout_account_save, withdrawal_request
from payouts.storage import PrivateFileSystemStorage
from tests.factories import MemberFactory
from tests.payouts.helpers import CARD, credit

D = Decimal
COMPANY = "上海某某科技有限公司"
DIGITAL_NUMBER = "25312000000012345678"  # a 数电发票 number: 20 digits
PDF = b"%PDF-1.7\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64
JPEG = b"\xff\xd8\xff\xe0" + b"\x00" * 64


def credit_code(serial: int) -> str:
    """A valid unified social credit code (GB 32100) of its own for each serial."""
    first17 = f"91310000MA{serial:07d}"
    return first17 + gb32100_check_char(first17)


def ofd() -> bytes:
    """An OFD file's shape: a ZIP container with OFD.xml at its root."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as container:
        container.writestr("OFD.xml", "<ofd:OFD xmlns:ofd='http://www.ofdspec.org/2016'/>")
        container.writestr("Doc_0/Document.xml", "<ofd:Document/>")
    return buffer.getvalue()


def upload(content: bytes = PDF, name: str = "fapiao.pdf", content_type: str = "application/pdf"):
    return SimpleUploadedFile(name, content, content_type=content_type)


@pytest.fixture
def private_media(settings, tmp_path, monkeypatch):
    """The private storage in a temporary directory (never the project's private/). The invoice's file field took
    its storage when the model was loaded, so the field is pointed at the temporary one."""
    monkeypatch.setattr(Invoice._meta.get_field("file"), "storage", PrivateFileSystemStorage(location=tmp_path))
    settings.PLATFORM_INVOICE_TITLE = "示例平台科技有限公司"
    settings.PLATFORM_TAX_ID = "91310000MA1FL0000X"
    return tmp_path


def business_member(serial: int = 1, *, amount: str = "5000.00"):
    """A member with a verified identity registered as a business, a bank account in the company's name, and
    `amount` released."""
    member = MemberFactory()
    identity_register_business(
        identity=member.user.identity, company_name=f"{COMPANY}{serial}", credit_code=credit_code(serial)
    )
    payout_account_save(
        member=member, method="bank", holder_name=f"{COMPANY}{serial}", bank_name="招商银行", account_number=CARD
    )
    credit(member, amount)
    member.user.identity.refresh_from_db()  # the cached row predates the registration
    return member


def business_withdrawal(member, amount: str = "1000.00") -> Withdrawal:
    withdrawal = withdrawal_request(member=member, amount=D(amount))
    assert withdrawal.payee_kind == Withdrawal.PayeeKind.BUSINESS
    return withdrawal


def submit(
    withdrawal: Withdrawal, *, number: str = DIGITAL_NUMBER, code: str = "", amount=None, content=PDF
) -> Invoice:
    return invoice_submit(
        withdrawal=withdrawal,
        member=withdrawal.member,
        invoice_code=code,
        invoice_number=number,
        issued_on=timezone.localdate(),
        amount=withdrawal.amount if amount is None else D(amount),
        file=upload(content),
    )
