"""Staff manage withholding rules in admin: add a draft, activate it (recorded, in the admin's history), and an
activated rule can no longer be edited or deleted; tax entries are read-only."""

import csv
import io
from decimal import Decimal

import pytest
from django.contrib.admin.models import LogEntry
from django.urls import reverse

from payouts.models import TaxWithholding, WithholdingRule
from payouts.services import payout_batch_create, payout_batch_send, withdrawal_approve, withdrawal_request
from tests.factories import MemberFactory, UserFactory
from tests.payouts.helpers import bank_account, credit

pytestmark = pytest.mark.django_db

CHANGELIST = reverse("admin:payouts_withholdingrule_changelist")


@pytest.fixture
def staff_client(client):
    staff = UserFactory(is_staff=True, is_superuser=True)
    client.force_login(staff)
    client.staff = staff
    return client


def test_staff_add_a_draft_and_activate_it(staff_client):
    # when staff add a rule
    response = staff_client.post(
        reverse("admin:payouts_withholdingrule_add"),
        {"version": "1", "name": "2018 No. 61", "method": "per_payment_2018", "source": "STA 2018 No. 61"},
    )
    assert response.status_code == 302
    rule = WithholdingRule.objects.get()
    assert not rule.is_activated and rule.created_by == staff_client.staff
    # and activate it
    response = staff_client.post(CHANGELIST, {"action": "activate_now", "_selected_action": [rule.pk]}, follow=True)
    # then it is in force, who and when recorded, and logged
    rule.refresh_from_db()
    assert rule.is_activated and rule.activated_by == staff_client.staff and rule.effective_from
    assert "is in force from now" in response.content.decode()
    assert LogEntry.objects.filter(object_id=str(rule.pk), change_message="Activated").exists()
    # an activated rule cannot be changed or deleted
    change = reverse("admin:payouts_withholdingrule_change", args=[rule.pk])
    staff_client.post(change, {"version": "1", "name": "changed", "method": "none", "source": ""})
    rule.refresh_from_db()
    assert (rule.name, rule.method) == ("2018 No. 61", "per_payment_2018")
    assert staff_client.get(reverse("admin:payouts_withholdingrule_delete", args=[rule.pk])).status_code == 403


def test_activating_twice_is_refused_with_a_message(staff_client):
    rule = WithholdingRule.objects.create(version=1, name="x", method="none")
    staff_client.post(CHANGELIST, {"action": "activate_now", "_selected_action": [rule.pk]})
    response = staff_client.post(CHANGELIST, {"action": "activate_now", "_selected_action": [rule.pk]}, follow=True)
    assert "already activated" in response.content.decode()


def test_the_tax_entries_page_opens(staff_client):
    assert staff_client.get(reverse("admin:payouts_taxwithholding_changelist")).status_code == 200
    assert staff_client.get(CHANGELIST).status_code == 200
    assert staff_client.get(reverse("admin:payouts_withholdingrule_add")).status_code == 200


def test_the_bank_export_lists_the_net_and_computes_the_tax_once(staff_client):
    member = MemberFactory()
    bank_account(member)
    credit(member, "10000.00")
    withdrawal = withdrawal_request(member=member, amount=Decimal("10000.00"))
    withdrawal_approve(withdrawal=withdrawal, actor=None)
    batch = payout_batch_create(provider_name="manual")  # not sent yet: no tax computed
    response = staff_client.post(
        reverse("admin:payouts_payoutbatch_changelist"),
        {"action": "export_csv", "_selected_action": [batch.pk], "index": "0"},
    )
    rows = list(csv.reader(io.StringIO(response.content.decode("utf-8")[1:])))
    assert rows[1][6] == "9910.00"  # 10,000 less 90 withheld
    payout_batch_send(batch=batch)
    assert TaxWithholding.objects.get(withdrawal=withdrawal).tax == Decimal("90.00")
    assert TaxWithholding.objects.count() == 1
