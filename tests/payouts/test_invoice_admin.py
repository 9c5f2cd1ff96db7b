"""Finance reviews business payees' invoices in admin (docs/tax.md, "Business payees"): the list with the file link,
accept, reject with a reason; approving a business withdrawal without an accepted invoice is refused with a message
and changes nothing; a batch leaves such withdrawals out and says so. Finance reviews, support may look, others not."""

from decimal import Decimal

import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.contrib.auth.models import Group
from django.core.management import call_command
from django.urls import reverse

from payouts.invoices import invoice_accept, invoice_reject
from payouts.models import Invoice, InvoiceEvent, PayoutBatch, Withdrawal
from payouts.services import withdrawal_approve
from staff.groups import FINANCE, SUPPORT
from tests.factories import UserFactory
from tests.payouts.business import (
    PDF,
    business_member,
    business_withdrawal,
    private_media,  # noqa: F401 - the fixture
    submit,
)

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("private_media")]

D = Decimal
INVOICES = reverse("admin:payouts_invoice_changelist")
WITHDRAWALS = reverse("admin:payouts_withdrawal_changelist")
CREATE_BATCH = reverse("admin:payouts_withdrawal_create_batch")


def file_url(invoice) -> str:
    return reverse("admin:payouts_invoice_file", args=[invoice.pk])


@pytest.fixture
def groups():
    call_command("staff_groups", verbosity=0)


def person(group_name: str | None):
    user = UserFactory(is_staff=True)
    if group_name:
        user.groups.add(Group.objects.get(name=group_name))
    return user


@pytest.fixture
def finance_client(client, groups):
    client.force_login(person(FINANCE))
    return client


def act(client, url, action, objects, **extra):
    data = {"action": action, ACTION_CHECKBOX_NAME: [obj.pk for obj in objects], **extra}
    return client.post(url, data, follow=True)


def messages_of(response) -> list[tuple[str, str]]:
    return [(message.level_tag, str(message)) for message in response.context["messages"]]


def test_finance_reviews_invoices_from_the_list_with_the_file(finance_client):
    withdrawal = business_withdrawal(business_member())
    invoice = submit(withdrawal)
    # the list shows it with its file link, which serves the file privately
    page = finance_client.get(INVOICES).content.decode()
    assert invoice.invoice_number in page and file_url(invoice) in page
    assert finance_client.get(reverse("admin:payouts_invoice_change", args=[invoice.pk])).status_code == 200
    # the withdrawal's page lists its invoices
    withdrawal_page = finance_client.get(reverse("admin:payouts_withdrawal_change", args=[withdrawal.pk]))
    assert withdrawal_page.status_code == 200 and invoice.invoice_number in withdrawal_page.content.decode()
    response = finance_client.get(file_url(invoice))
    assert response.status_code == 200 and b"".join(response.streaming_content) == PDF
    assert "no-store" in response["Cache-Control"] and "private" in response["Cache-Control"]
    # accept
    response = act(finance_client, INVOICES, "accept_invoices", [invoice])
    assert messages_of(response) == [("success", "Accepted 1 invoice.")]
    invoice.refresh_from_db()
    assert invoice.status == "accepted" and invoice.reviewed_by is not None
    # accepting again is refused with a message, nothing changes
    response = act(finance_client, INVOICES, "accept_invoices", [invoice])
    assert messages_of(response)[0][0] == "error" and "cannot become" in messages_of(response)[0][1]
    assert InvoiceEvent.objects.filter(invoice=invoice).count() == 2


def test_finance_rejects_with_a_reason(finance_client):
    invoice = submit(business_withdrawal(business_member()))
    # the action asks for the reason; an empty one is asked again
    page = act(finance_client, INVOICES, "reject_invoices", [invoice])
    assert "Reject invoices" in page.content.decode()
    act(finance_client, INVOICES, "reject_invoices", [invoice], apply="Reject", reason="  ")
    invoice.refresh_from_db()
    assert invoice.status == "submitted"
    response = act(finance_client, INVOICES, "reject_invoices", [invoice], apply="Reject", reason="税号不对")
    assert messages_of(response) == [("success", "Rejected 1 invoice.")]
    invoice.refresh_from_db()
    assert (invoice.status, invoice.review_reason) == ("rejected", "税号不对")


def test_approving_without_an_accepted_invoice_is_refused_with_a_message(finance_client):
    withdrawal = business_withdrawal(business_member())
    response = act(finance_client, WITHDRAWALS, "approve_withdrawals", [withdrawal], index="0")
    [(level, text)] = messages_of(response)
    assert level == "error" and "needs an accepted invoice before it is approved" in text
    withdrawal.refresh_from_db()
    assert withdrawal.status == Withdrawal.Status.REQUESTED and withdrawal.decided_at is None
    # once accepted, approval goes through
    invoice_accept(invoice=submit(withdrawal), actor=None)
    response = act(finance_client, WITHDRAWALS, "approve_withdrawals", [withdrawal], index="0")
    assert messages_of(response) == [("success", "Approved 1 withdrawal.")]


def test_a_batch_leaves_out_business_withdrawals_without_an_invoice_and_says_so(finance_client):
    withdrawal = business_withdrawal(business_member())
    invoice = submit(withdrawal)
    invoice_accept(invoice=invoice, actor=None)
    withdrawal_approve(withdrawal=withdrawal, actor=None)
    invoice_reject(invoice=invoice, actor=None, reason="voided by the issuer")
    page = finance_client.get(CREATE_BATCH).content.decode()
    assert 'id="missing-invoice"' in page
    response = finance_client.post(CREATE_BATCH, {"provider": "manual"}, follow=True)
    assert ("warning", "1 approved withdrawal to a business was left out: it has no accepted invoice.") in (
        messages_of(response)
    )
    assert not PayoutBatch.objects.exists()
    withdrawal.refresh_from_db()
    assert withdrawal.status == Withdrawal.Status.APPROVED and withdrawal.batch_id is None


def test_support_may_look_but_not_review_and_others_not_even_look(client, groups):
    invoice = submit(business_withdrawal(business_member()))
    client.force_login(person(SUPPORT))
    assert client.get(INVOICES).status_code == 200
    assert client.get(file_url(invoice)).status_code == 200
    response = act(client, INVOICES, "accept_invoices", [invoice])
    invoice.refresh_from_db()
    assert invoice.status == "submitted"
    assert not InvoiceEvent.objects.filter(to_status="accepted").exists()
    assert response.status_code == 200  # Django's "no action selected" page, nothing done
    # staff without the invoice permission: no list, no file
    client.force_login(person(None))
    assert client.get(INVOICES).status_code == 403
    assert client.get(file_url(invoice)).status_code == 403
    # and nobody signed out
    client.logout()
    response = client.get(file_url(invoice))
    assert response.status_code == 302 and "login" in response["Location"]
    # a missing invoice is a 404
    client.force_login(person(FINANCE))
    assert client.get(reverse("admin:payouts_invoice_file", args=[invoice.pk + 99])).status_code == 404


def test_the_groups_hold_the_invoice_permissions(groups):
    finance = {f"{a}.{c}" for a, c in Group.objects.get(name=FINANCE).permissions.values_list(
        "content_type__app_label", "codename")}  # fmt: skip
    support = {f"{a}.{c}" for a, c in Group.objects.get(name=SUPPORT).permissions.values_list(
        "content_type__app_label", "codename")}  # fmt: skip
    assert {"payouts.view_invoice", "payouts.change_invoice", "payouts.view_invoiceevent"} <= finance
    assert {"payouts.view_invoice", "payouts.view_invoiceevent"} <= support
    assert "payouts.change_invoice" not in support
    assert not Invoice.objects.exists()
