"""A withdrawal above FOUR_EYES_THRESHOLD needs two finance users (payouts/approvals.py): the first one's "Approve"
asks, a second one approves in the approval queue, the same person never does both, and no batch takes it before."""

from decimal import Decimal

import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.contrib.auth.models import Group
from django.core.management import call_command
from django.urls import reverse

from accounts.approvals import ApprovalError, approval_decide
from accounts.models import ApprovalRequest
from payouts.models import Withdrawal
from payouts.services import payout_batch_create, withdrawal_request
from staff.groups import FINANCE
from tests.factories import UserFactory
from tests.payouts.helpers import funded_member

pytestmark = pytest.mark.django_db

D = Decimal
WITHDRAWALS = reverse("admin:payouts_withdrawal_changelist")


@pytest.fixture(autouse=True)
def threshold(settings):
    settings.FOUR_EYES_THRESHOLD = D("5000.00")


def _finance():
    call_command("staff_groups", verbosity=0)
    user = UserFactory(is_staff=True)
    user.groups.add(Group.objects.get(name=FINANCE))
    return user


@pytest.fixture
def member():
    return funded_member("20000.00")


def _approve(client, *withdrawals):
    return client.post(
        WITHDRAWALS, {"action": "approve_withdrawals", ACTION_CHECKBOX_NAME: [w.pk for w in withdrawals]}, follow=True
    )


def test_a_large_withdrawal_needs_a_second_finance_user(client, member):
    first, second = _finance(), _finance()
    large = withdrawal_request(member=member, amount=D("6000.00"))
    small = withdrawal_request(member=member, amount=D("5000.00"))
    # when the first finance user approves both
    client.force_login(first)
    _approve(client, large, small)
    # then the one at the threshold is approved, the larger one waits for a second person, and no batch takes it
    large.refresh_from_db()
    small.refresh_from_db()
    assert (small.status, large.status) == ("approved", "requested")
    batch = payout_batch_create(provider_name="sandbox")
    assert list(batch.withdrawals.values_list("pk", flat=True)) == [small.pk]
    approval = ApprovalRequest.objects.get(status="pending")
    assert (approval.action, approval.target_id, approval.amount, approval.requested_by) == (
        "payouts.withdrawal_approve",
        str(large.pk),
        D("6000.00"),
        first,
    )
    # the first one cannot approve it too, not even by approving the withdrawal again
    with pytest.raises(ApprovalError):
        approval_decide(request=approval, approver=first, approve=True)
    _approve(client, large)
    large.refresh_from_db()
    assert large.status == "requested"
    assert ApprovalRequest.objects.count() == 1  # asking again found the same request
    # the second finance user approves: the withdrawal is approved, by them
    approval_decide(request=approval, approver=second, approve=True)
    large.refresh_from_db()
    assert large.status == "approved"
    assert large.events.get(to_status="approved").actor == second


def test_auto_approval_stops_at_the_threshold(member, settings):
    settings.WITHDRAWAL_AUTO_APPROVE_MAX = D("10000.00")
    assert withdrawal_request(member=member, amount=D("5000.00")).status == Withdrawal.Status.APPROVED
    assert withdrawal_request(member=member, amount=D("5000.01")).status == Withdrawal.Status.REQUESTED


def test_a_withdrawal_the_member_cancelled_meanwhile_ends_the_request_failed(client, member):
    first, second = _finance(), _finance()
    large = withdrawal_request(member=member, amount=D("6000.00"))
    client.force_login(first)
    _approve(client, large)
    large.status = Withdrawal.Status.CANCELLED
    large.save(update_fields=["status"])
    decided = approval_decide(request=ApprovalRequest.objects.get(), approver=second, approve=True)
    large.refresh_from_db()
    assert decided.status == "failed" and large.status == "cancelled"
