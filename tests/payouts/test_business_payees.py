"""Business payees (docs/tax.md, "Business payees"): paid against an accepted invoice (先票后款), nothing withheld,
out of the individual history; the invoice's number, amount, date and file checked; every change audited; the
payout account in the company's name, never WeChat Pay."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from accounts.identity import IdentityError, identity_register_business, identity_set_individual
from accounts.models import IdentityEvent
from payouts.invoices import invoice_accept, invoice_reject, invoice_submit
from payouts.models import Invoice, InvoiceEvent, SandboxTransfer, TaxWithholding, Withdrawal, WithdrawalEvent
from payouts.selectors import (
    approved_withdrawals_missing_invoice,
    member_balance,
    member_income_statement,
    member_statement,
    members_tax_history,
)
from payouts.services import (
    PayoutError,
    payout_account_save,
    payout_batch_create,
    payout_batch_send,
    withdrawal_approve,
    withdrawal_request,
)
from staff.audit import AuditFilters, audit_rows
from staff.ledger_check import check_payouts, check_tax_withheld
from tests.factories import MemberFactory, UserFactory
from tests.payouts.business import (
    COMPANY,
    DIGITAL_NUMBER,
    JPEG,
    PNG,
    business_member,
    business_withdrawal,
    credit_code,
    ofd,
    private_media,  # noqa: F401 - the fixture (used by name below too)
    submit,
    upload,
)
from tests.payouts.helpers import CARD, bank_account, credit, paid_withdrawal

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("private_media")]

D = Decimal


@pytest.fixture
def finance():
    return UserFactory(is_staff=True)


def paid_against_invoice(withdrawal, finance) -> Withdrawal:
    invoice_accept(invoice=submit(withdrawal), actor=finance)
    withdrawal_approve(withdrawal=withdrawal, actor=finance)
    payout_batch_send(batch=payout_batch_create(provider_name="sandbox"))
    withdrawal.refresh_from_db()
    return withdrawal


def state(withdrawal) -> tuple:
    withdrawal.refresh_from_db()
    return withdrawal.status, withdrawal.batch_id, WithdrawalEvent.objects.filter(withdrawal=withdrawal).count()


# --- No individual income tax -------------------------------------------------------------------------------------


def test_a_business_payout_withholds_nothing_and_names_its_invoice(finance):
    # given a business payee with an accepted invoice for 10,000.00
    member = business_member(amount="10000.00")
    withdrawal = business_withdrawal(member, "10000.00")
    # when it is approved and paid
    withdrawal = paid_against_invoice(withdrawal, finance)
    # then nothing is withheld (an individual would have 90.00 withheld): gross = net, the method says why
    assert withdrawal.status == Withdrawal.Status.PAID
    entry = TaxWithholding.objects.get(withdrawal=withdrawal)
    assert (entry.gross, entry.tax, entry.net) == (D("10000.00"), D("0.00"), D("10000.00"))
    assert entry.method == "business_invoice" and entry.rule is None
    assert entry.invoice == Invoice.objects.get(withdrawal=withdrawal, status="accepted")
    assert SandboxTransfer.objects.get(idempotency_key=withdrawal.idempotency_key).amount == D("10000.00")
    assert member_balance(member).tax_withheld == D("0.00")
    # and the ledger is green
    assert check_tax_withheld().passed and check_payouts().passed
    # the statement says it
    line = next(line for line in member_statement(member) if line.amount < 0)
    assert line.description == (
        f"Withdrawal {withdrawal.pk}: no individual income tax withheld: paid against invoice {DIGITAL_NUMBER}"
    )
    # the income statement keeps it apart from the person's income
    statement = member_income_statement(member, timezone.localdate().year)
    assert statement.months == () and statement.payouts == ()
    assert statement.business_payouts == (entry,)


def test_business_payouts_are_not_in_the_individual_history_after_going_back(finance):
    # given a business payee paid 10,000.00 against an invoice
    member = business_member(amount="20000.00")
    paid_against_invoice(business_withdrawal(member, "10000.00"), finance)
    # when staff set them back to an individual (with a reason) and they are paid 10,000.00 as a person
    identity = member.user.identity
    with pytest.raises(IdentityError):
        identity_set_individual(identity=identity, actor=finance, reason=" ")
    identity_set_individual(identity=identity, actor=finance, reason="company deregistered, ticket 42")
    bank_account(member)  # an account in the person's legal name again
    withdrawal = paid_withdrawal(member, "10000.00")
    # then the individual computation starts from nothing: (10,000 − 2,000 − 5,000) × 3 % = 90.00, as a first payment
    entry = TaxWithholding.objects.get(withdrawal=withdrawal)
    assert (entry.method, entry.tax, entry.withheld_before) == ("cumulative_2025", D("90.00"), D("0.00"))
    assert entry.income == D("10000.00")
    history = members_tax_history([member.pk], timezone.localdate().year)[member.pk]
    assert [payment.gross for payment in history] == [D("10000.00")]
    # and the change is audited with the company before
    event = IdentityEvent.objects.filter(identity=identity, kind="changed").get()
    assert event.actor == finance and event.reason == "company deregistered, ticket 42"
    assert event.detail["before"]["payee_kind"] == "business" and event.detail["after"] == {"payee_kind": "individual"}
    # a second time is refused: not a business any more
    with pytest.raises(IdentityError):
        identity_set_individual(identity=identity, actor=finance, reason="again")


def test_an_individual_payout_before_registering_keeps_its_computation(finance):
    # given a member paid 10,000.00 as a person (90.00 withheld)
    member = MemberFactory()
    bank_account(member)
    credit(member, "20000.00")
    before = paid_withdrawal(member, "10000.00")
    # when they register as a business and are paid against an invoice
    identity_register_business(
        identity=member.user.identity, company_name="某某商贸有限公司", credit_code=credit_code(9)
    )
    payout_account_save(
        member=member, method="bank", holder_name="某某商贸有限公司", bank_name="招商银行", account_number=CARD
    )
    after = paid_against_invoice(business_withdrawal(member, "10000.00"), finance)
    # then the first payout keeps its computation, the second withholds nothing
    assert TaxWithholding.objects.get(withdrawal=before).tax == D("90.00")
    assert TaxWithholding.objects.get(withdrawal=after).tax == D("0.00")
    assert member_balance(member).tax_withheld == D("90.00")


# --- Invoice before payout ---------------------------------------------------------------------------------------


def test_a_business_withdrawal_is_never_auto_approved(settings):
    settings.WITHDRAWAL_AUTO_APPROVE_MAX = D("5000.00")
    withdrawal = business_withdrawal(business_member(), "100.00")
    assert withdrawal.status == Withdrawal.Status.REQUESTED
    assert withdrawal.account["company_name"] == f"{COMPANY}1"


def test_approval_without_an_accepted_invoice_is_refused_and_changes_nothing(finance):
    withdrawal = business_withdrawal(business_member())
    before = state(withdrawal)
    with pytest.raises(PayoutError) as refused:
        withdrawal_approve(withdrawal=withdrawal, actor=finance)
    assert refused.value.code == "invoice_missing"
    assert "needs an accepted invoice" in refused.value.messages[0]
    assert state(withdrawal) == before
    # a submitted invoice is not enough either
    submit(withdrawal)
    with pytest.raises(PayoutError):
        withdrawal_approve(withdrawal=withdrawal, actor=finance)
    assert state(withdrawal) == before


def test_a_batch_leaves_out_an_approved_withdrawal_whose_invoice_was_rejected(finance):
    # given a business withdrawal approved against an accepted invoice, then the invoice found wrong (红冲)
    withdrawal = business_withdrawal(business_member())
    invoice = submit(withdrawal)
    invoice_accept(invoice=invoice, actor=finance)
    withdrawal_approve(withdrawal=withdrawal, actor=finance)
    invoice_reject(invoice=invoice, actor=finance, reason="voided by the issuer")
    other = MemberFactory()
    bank_account(other)
    credit(other, "100.00")
    individual = withdrawal_request(member=other, amount=D("50.00"))
    withdrawal_approve(withdrawal=individual, actor=finance)
    before = state(withdrawal)
    # when a batch is made
    assert approved_withdrawals_missing_invoice() == 1
    batch = payout_batch_create(provider_name="sandbox")
    # then the individual's withdrawal is in it, the business's is left out, unchanged
    assert list(batch.withdrawals.values_list("pk", flat=True)) == [individual.pk]
    assert state(withdrawal) == before
    # once a new invoice is accepted, the next batch takes it
    invoice_accept(invoice=submit(withdrawal), actor=finance)
    assert approved_withdrawals_missing_invoice() == 0
    assert list(payout_batch_create(provider_name="sandbox").withdrawals.values_list("pk", flat=True)) == [
        withdrawal.pk
    ]


def test_an_accepted_invoice_of_a_sent_withdrawal_cannot_be_rejected(finance):
    withdrawal = paid_against_invoice(business_withdrawal(business_member()), finance)
    invoice = Invoice.objects.get(withdrawal=withdrawal)
    with pytest.raises(PayoutError) as refused:
        invoice_reject(invoice=invoice, actor=finance, reason="late")
    assert refused.value.code == "invoice_in_use"
    invoice.refresh_from_db()
    assert invoice.status == "accepted"


def test_accept_and_reject_write_events_and_a_rejected_invoice_is_replaced(finance):
    withdrawal = business_withdrawal(business_member())
    first = submit(withdrawal)
    # a second invoice while one is awaiting review is refused
    with pytest.raises(PayoutError) as refused:
        submit(withdrawal, number="25312000000099999999")
    assert refused.value.code == "invoice_exists"
    # a rejection needs a reason
    with pytest.raises(PayoutError):
        invoice_reject(invoice=first, actor=finance, reason="  ")
    invoice_reject(invoice=first, actor=finance, reason="wrong buyer name")
    first.refresh_from_db()
    assert (first.status, first.review_reason, first.reviewed_by) == ("rejected", "wrong buyer name", finance)
    # the member uploads another (the same number may be used again: the rejected one no longer counts)
    second = submit(withdrawal)
    invoice_accept(invoice=second, actor=finance)
    # a rejected invoice cannot be accepted, an accepted one not accepted again
    for invoice in (first, second):
        with pytest.raises(PayoutError):
            invoice_accept(invoice=invoice, actor=finance)
    events = list(InvoiceEvent.objects.order_by("pk").values_list("invoice_id", "from_status", "to_status", "reason"))
    assert events == [
        (first.pk, "", "submitted", ""),
        (first.pk, "submitted", "rejected", "wrong buyer name"),
        (second.pk, "", "submitted", ""),
        (second.pk, "submitted", "accepted", ""),
    ]
    # the audit log shows them, under the withdrawal's id
    rows = audit_rows(AuditFilters(object_type="invoice", object_id=str(withdrawal.pk)))
    assert [row.kind for row in rows] == [
        "invoice.accepted",
        "invoice.submitted",
        "invoice.rejected",
        "invoice.submitted",
    ]
    assert rows[2].detail == "submitted → rejected · wrong buyer name" and rows[2].actor_id == finance.pk


def test_one_invoice_number_covers_one_withdrawal():
    member = business_member()
    first, second = business_withdrawal(member, "100.00"), business_withdrawal(member, "200.00")
    submit(first)
    with pytest.raises(PayoutError) as refused:
        submit(second, amount="200.00")
    assert "already used" in refused.value.message_dict["invoice_number"][0]
    assert second.invoices.count() == 0


@pytest.mark.parametrize(
    ("code", "number", "field"),
    [
        ("", "2531200000001234567", "invoice_number"),  # 19 digits
        ("", "2531200000001234567X", "invoice_number"),
        ("", "12345678", "invoice_number"),  # an old number without its code
        ("031001900111", "1234567", "invoice_number"),  # the old number has 8 digits
        ("03100190011", "12345678", "invoice_code"),  # 11 digits
    ],
)
def test_a_wrong_invoice_number_is_refused_by_field(code, number, field):
    withdrawal = business_withdrawal(business_member())
    with pytest.raises(PayoutError) as refused:
        submit(withdrawal, code=code, number=number)
    assert field in refused.value.message_dict
    assert not Invoice.objects.exists()


def test_the_older_invoice_form_with_a_code_is_accepted():
    withdrawal = business_withdrawal(business_member())
    invoice = submit(withdrawal, code="031001900111", number="12345678")
    assert invoice.display_number == "031001900111 12345678"


@pytest.mark.parametrize("amount", ["999.99", "1000.01", "1000.001"])
def test_the_invoice_total_must_be_the_withdrawal_amount(amount):
    withdrawal = business_withdrawal(business_member(), "1000.00")
    with pytest.raises(PayoutError) as refused:
        submit(withdrawal, amount=amount)
    assert "must be the withdrawal's amount" in refused.value.message_dict["amount"][0]
    assert not Invoice.objects.exists()


def test_the_issue_date_is_neither_future_nor_before_the_request():
    withdrawal = business_withdrawal(business_member())
    for issued_on in (timezone.localdate() + timedelta(days=1), timezone.localdate() - timedelta(days=1)):
        with pytest.raises(PayoutError) as refused:
            invoice_submit(
                withdrawal=withdrawal,
                member=withdrawal.member,
                invoice_code="",
                invoice_number=DIGITAL_NUMBER,
                issued_on=issued_on,
                amount=withdrawal.amount,
                file=upload(),
            )
        assert "issued_on" in refused.value.message_dict


@pytest.mark.parametrize(
    ("content", "name"),
    [
        (b"<html><script>alert(1)</script></html>", "fapiao.pdf"),  # named PDF, but HTML by its bytes
        (b"GIF89a" + b"\x00" * 20, "fapiao.png"),
        (b"PK\x03\x04not really a zip", "fapiao.ofd"),
        (b"", "empty.pdf"),
    ],
)
def test_a_file_that_is_not_a_pdf_ofd_or_image_by_its_bytes_is_refused(content, name):
    withdrawal = business_withdrawal(business_member())
    with pytest.raises(PayoutError) as refused:
        invoice_submit(
            withdrawal=withdrawal,
            member=withdrawal.member,
            invoice_code="",
            invoice_number=DIGITAL_NUMBER,
            issued_on=timezone.localdate(),
            amount=withdrawal.amount,
            file=upload(content, name),
        )
    assert "file" in refused.value.message_dict
    assert not Invoice.objects.exists()


@pytest.mark.parametrize(("content", "kind"), [(PNG, "png"), (JPEG, "jpeg"), (None, "ofd")])
def test_images_and_ofd_are_accepted_by_their_bytes_and_stored_privately(content, kind, tmp_path):
    withdrawal = business_withdrawal(business_member())
    invoice = submit(withdrawal, content=ofd() if content is None else content)
    assert invoice.file_type == kind
    # stored under a name of our own, in the private storage, with no URL
    assert invoice.file.name.startswith("invoices/") and "fapiao" not in invoice.file.name
    assert (tmp_path / invoice.file.name).exists()
    with pytest.raises(NotImplementedError):
        invoice.file.url  # noqa: B018 - the property raises


def test_a_file_over_the_limit_is_refused(settings):
    settings.INVOICE_FILE_MAX_BYTES = 1024 * 1024
    withdrawal = business_withdrawal(business_member())
    with pytest.raises(PayoutError) as refused:
        submit(withdrawal, content=b"%PDF-1.7\n" + b"0" * (1024 * 1024))
    assert "too large" in refused.value.message_dict["file"][0]


def test_only_the_member_may_submit_and_only_for_a_business_withdrawal():
    withdrawal = business_withdrawal(business_member())
    stranger = MemberFactory()
    with pytest.raises(PayoutError) as refused:
        invoice_submit(
            withdrawal=withdrawal,
            member=stranger,
            invoice_code="",
            invoice_number=DIGITAL_NUMBER,
            issued_on=timezone.localdate(),
            amount=withdrawal.amount,
            file=upload(),
        )
    assert refused.value.code == "not_yours"
    person = MemberFactory()
    bank_account(person)
    credit(person, "100.00")
    individual = withdrawal_request(member=person, amount=D("50.00"))
    with pytest.raises(PayoutError) as refused:
        submit(individual, amount="50.00")
    assert refused.value.code == "not_business"


# --- The payout account ------------------------------------------------------------------------------------------


def test_a_business_is_paid_to_an_account_in_the_companys_name_and_never_by_wechat():
    member = business_member()
    company = f"{COMPANY}1"
    # the legal person's own name is refused
    with pytest.raises(PayoutError) as refused:
        bank_account(member)
    assert company in refused.value.message_dict["holder_name"][0]
    # WeChat Pay (零钱) pays individuals only
    with pytest.raises(PayoutError) as refused:
        payout_account_save(member=member, method="wechat", holder_name=company, wechat_id="wxid_company")
    assert "cannot be paid by WeChat Pay" in refused.value.message_dict["method"][0]
    # a corporate Alipay account in the company's name is fine (full-width brackets compare as ASCII ones)
    account = payout_account_save(
        member=member, method="alipay", holder_name=company, alipay_account="finance@example.com"
    )
    assert account.method == "alipay"


def test_an_account_saved_as_an_individual_is_refused_at_withdrawal_once_a_business():
    member = MemberFactory()
    bank_account(member)  # in the person's name
    credit(member, "100.00")
    identity_register_business(
        identity=member.user.identity, company_name="某某商贸有限公司", credit_code=credit_code(9)
    )
    with pytest.raises(PayoutError) as refused:
        withdrawal_request(member=member, amount=D("50.00"))
    assert "某某商贸有限公司" in refused.value.message_dict["holder_name"][0]
    assert not Withdrawal.objects.filter(member=member).exists()
