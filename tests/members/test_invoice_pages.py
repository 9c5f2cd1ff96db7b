"""A business payee's pages (docs/tax.md, "Business payees"): a withdrawal says "invoice needed" and what to put on it;
the upload form answers errors (400, never 500); the invoice's state; a rejected invoice is replaced; the payouts
and income pages say "no individual income tax withheld: paid against invoice N"; another member gets 404, and the
file has no public address."""

from decimal import Decimal

import pytest
from django.conf import settings
from django.urls import reverse
from django.utils import timezone

from payouts.invoices import invoice_accept, invoice_reject
from payouts.models import Invoice
from payouts.services import payout_batch_create, payout_batch_send, withdrawal_approve, withdrawal_request
from tests.factories import MemberFactory, UserFactory
from tests.payouts.business import (
    DIGITAL_NUMBER,
    PDF,
    business_member,
    business_withdrawal,
    private_media,  # noqa: F401 - the fixture
    submit,
    upload,
)
from tests.payouts.helpers import bank_account, credit

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("private_media")]

D = Decimal
OVERVIEW = reverse("members:payouts")
INCOME = reverse("members:income_statement")


def invoice_url(withdrawal) -> str:
    return reverse("members:withdrawal_invoice", args=[withdrawal.pk])


def file_url(invoice) -> str:
    return reverse("members:withdrawal_invoice_file", args=[invoice.withdrawal_id, invoice.pk])


@pytest.fixture
def business(client):
    member = business_member()
    client.force_login(member.user)
    return member


def form(**overrides) -> dict:
    data = {
        "invoice_code": "",
        "invoice_number": DIGITAL_NUMBER,
        "issued_on": timezone.localdate().isoformat(),
        "amount": "1000.00",
        "file": upload(),
    }
    return {**data, **overrides}


def test_a_withdrawal_request_leads_to_the_invoice_page_which_says_what_to_invoice(client, business):
    response = client.post(OVERVIEW, {"amount": "1000.00"})
    withdrawal = business.withdrawals.get()
    assert response.status_code == 302 and response["Location"] == invoice_url(withdrawal)
    page = client.get(invoice_url(withdrawal)).content.decode()
    assert settings.PLATFORM_INVOICE_TITLE in page and settings.PLATFORM_TAX_ID in page
    assert business.user.identity.company_name in page and business.user.identity.credit_code in page
    assert "¥1,000.00" in page
    # the payouts page says an invoice is needed and links to it
    overview = client.get(OVERVIEW).content.decode()
    assert f'id="withdrawal-invoice-{withdrawal.pk}"' in overview and "Invoice needed" in overview
    assert invoice_url(withdrawal) in overview


@pytest.mark.parametrize(
    ("overrides", "field", "message"),
    [
        ({"invoice_number": "123"}, "invoice_number", "20-digit number"),
        ({"invoice_code": "0310019001", "invoice_number": DIGITAL_NUMBER}, "invoice_number", "8 digits"),
        ({"amount": "999.00"}, "amount", "must be the withdrawal&#x27;s amount"),
        ({"amount": "abc"}, "amount", "Enter a number"),
        ({"issued_on": "2099-01-01"}, "issued_on", "cannot be in the future"),
        ({"file": upload(b"MZ\x90\x00 an executable", "fapiao.pdf")}, "file", "PDF, OFD, JPEG or PNG file"),
        ({"file": ""}, "file", "This field is required"),
    ],
)
def test_a_wrong_upload_is_a_form_error_not_a_500(client, business, overrides, field, message):
    withdrawal = business_withdrawal(business)
    response = client.post(invoice_url(withdrawal), form(**overrides))
    assert response.status_code == 400
    assert message in response.content.decode()
    assert field in response.context["form"].errors
    assert not Invoice.objects.exists()


def test_a_file_too_large_is_a_form_error(client, business, settings):
    settings.INVOICE_FILE_MAX_BYTES = 1024 * 1024
    withdrawal = business_withdrawal(business)
    response = client.post(invoice_url(withdrawal), form(file=upload(PDF + b"0" * (1024 * 1024))))
    assert response.status_code == 400 and "too large" in response.content.decode()


def test_upload_review_and_replace_a_rejected_invoice(client, business):
    withdrawal = business_withdrawal(business)
    finance = UserFactory(is_staff=True)
    # uploaded: awaiting review, no second form
    response = client.post(invoice_url(withdrawal), form())
    assert response.status_code == 302
    invoice = Invoice.objects.get()
    page = client.get(invoice_url(withdrawal)).content.decode()
    assert "Submitted, awaiting review" in page and 'id="invoice-upload"' not in page
    assert "Invoice submitted, awaiting review." in client.get(OVERVIEW).content.decode()
    # a second upload now is refused with a message, nothing stored
    response = client.post(invoice_url(withdrawal), form(invoice_number="25312000000099999999"))
    assert response.status_code == 302 and Invoice.objects.count() == 1
    # rejected: the reason is shown and a new one can be uploaded
    invoice_reject(invoice=invoice, actor=finance, reason="买方名称不对")
    page = client.get(invoice_url(withdrawal)).content.decode()
    assert "买方名称不对" in page and 'id="invoice-upload"' in page
    assert "Invoice rejected: upload a new one." in client.get(OVERVIEW).content.decode()
    assert client.post(invoice_url(withdrawal), form()).status_code == 302
    assert Invoice.objects.filter(withdrawal=withdrawal).count() == 2
    # accepted, approved and paid: the pages name the invoice
    invoice_accept(invoice=Invoice.objects.get(status="submitted"), actor=finance)
    withdrawal_approve(withdrawal=withdrawal, actor=finance)
    payout_batch_send(batch=payout_batch_create(provider_name="sandbox"))
    paid_text = f"No individual income tax withheld: paid against invoice {DIGITAL_NUMBER}."
    assert paid_text in client.get(OVERVIEW).content.decode()
    income = client.get(INCOME).content.decode()
    assert paid_text in income and f'id="business-{timezone.localdate().year}"' in income
    csv_text = client.get(reverse("members:income_statement_csv", args=[timezone.localdate().year])).content.decode()
    assert f"business_invoice,{DIGITAL_NUMBER}" in csv_text


def test_the_member_downloads_their_own_file_privately(client, business):
    invoice = submit(business_withdrawal(business))
    response = client.get(file_url(invoice))
    assert response.status_code == 200
    assert b"".join(response.streaming_content) == PDF
    assert response["Content-Type"] == "application/pdf"
    assert response["Content-Disposition"].startswith("attachment;")
    assert response["Cache-Control"] == "private, no-store"


def test_another_member_gets_404_for_the_invoice_page_and_file(client, business):
    invoice = submit(business_withdrawal(business))
    other = MemberFactory()
    client.force_login(other.user)
    assert client.get(invoice_url(invoice.withdrawal)).status_code == 404
    assert client.post(invoice_url(invoice.withdrawal), form()).status_code == 404
    assert client.get(file_url(invoice)).status_code == 404
    assert Invoice.objects.count() == 1
    # and signed out: to the login page, never the file
    client.logout()
    response = client.get(file_url(invoice))
    assert response.status_code == 302 and "login" in response["Location"]


def test_the_file_has_no_public_address(client, business, tmp_path):
    invoice = submit(business_withdrawal(business))
    # not under MEDIA_ROOT (which the proxy serves at /media/), and not reachable there either
    assert (tmp_path / invoice.file.name).exists()
    assert not str(settings.PRIVATE_MEDIA_ROOT).startswith(str(settings.MEDIA_ROOT))
    assert client.get(f"/{settings.MEDIA_URL}{invoice.file.name}").status_code == 404
    assert client.get(f"/media/{invoice.file.name}").status_code == 404


def test_an_individual_withdrawal_has_no_invoice_page(client):
    member = MemberFactory()
    bank_account(member)
    credit(member, "100.00")
    withdrawal = withdrawal_request(member=member, amount=D("50.00"))
    client.force_login(member.user)
    assert client.get(invoice_url(withdrawal)).status_code == 404


def test_the_payout_account_page_asks_for_the_companys_name_and_refuses_wechat(client, business):
    url = reverse("members:payout_account")
    page = client.get(url).content.decode()
    assert 'id="business-account"' in page and business.user.identity.company_name in page
    response = client.post(url, {"method": "wechat", "holder_name": business.user.identity.company_name,
                                 "wechat_id": "wxid_co"})  # fmt: skip
    assert response.status_code == 400, response.context["form"].errors
    assert "cannot be paid by WeChat Pay" in response.content.decode(), response.context["form"].errors
