"""Four eyes on money and rules (accounts/approvals.py): one staff member asks, another approves, the same person
never does both, and the audit log names both."""

from decimal import Decimal

import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.contrib.auth.models import Group
from django.core.management import call_command
from django.db import IntegrityError, transaction
from django.urls import reverse

from accounts.approvals import (
    ApprovalError,
    approval_cancel,
    approval_decide,
    approval_request,
    second_approval_needed,
)
from accounts.models import ApprovalRequest
from commissions.approvals import PLAN_ACTIVATE, POLICY_PUBLISH, plan_activate_request, policy_publish_request
from commissions.models import CommissionPlan
from commissions.services import plan_create, plan_in_force, policy_in_force, policy_publish
from staff.groups import COMPLIANCE, SUPPORT
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

D = Decimal
QUEUE = reverse("admin:accounts_approvalrequest_changelist")
PLANS = reverse("admin:commissions_commissionplan_changelist")


@pytest.fixture
def groups():
    call_command("staff_groups", verbosity=0)


def _person(group: str):
    user = UserFactory(is_staff=True)
    user.groups.add(Group.objects.get(name=group))
    return user


@pytest.fixture
def asker(groups):
    return _person(COMPLIANCE)


@pytest.fixture
def second(groups):
    return _person(COMPLIANCE)


@pytest.fixture
def draft(asker):
    return plan_create(actor=asker, name="Spring", rates=(D("0.7000"), D("0.3000")))


def _decide_url(approval) -> str:
    return reverse("admin:accounts_approvalrequest_decide", args=[approval.pk])


def _messages(response) -> list[str]:
    return [str(message) for message in response.context["messages"]]


def test_the_person_who_asked_can_never_approve_and_a_second_one_does_it(client, asker, second, draft):
    approval = plan_activate_request(plan=draft, actor=asker, reason="New season")
    # the requester tries to approve their own request: on the page and through the service
    client.force_login(asker)
    response = client.post(_decide_url(approval), {"approve": "1"}, follow=True)
    assert "another staff member must approve or refuse it" in " ".join(_messages(response))
    with pytest.raises(ApprovalError) as refused:
        approval_decide(request=approval, approver=asker, approve=True)
    assert refused.value.code == "same_person"
    draft.refresh_from_db()
    assert not draft.is_activated
    # the second person approves: the plan is in force, activated by them, asked for by the first
    client.force_login(second)
    response = client.post(_decide_url(approval), {"approve": "1"}, follow=True)
    assert f"Approved: {draft} is in force from now." in _messages(response)
    draft.refresh_from_db()
    approval.refresh_from_db()
    assert plan_in_force() == draft and draft.activated_by == second
    assert (approval.status, approval.requested_by, approval.decided_by) == ("approved", asker, second)


def test_the_database_refuses_one_person_in_both_roles(asker, draft):
    approval = plan_activate_request(plan=draft, actor=asker, reason="New season")
    with pytest.raises(IntegrityError), transaction.atomic():
        ApprovalRequest.objects.filter(pk=approval.pk).update(decided_by=asker, status="approved")


def test_asking_twice_finds_the_first_request(asker, draft):
    first = plan_activate_request(plan=draft, actor=asker, reason="New season")
    again = plan_activate_request(plan=draft, actor=asker, reason="Really")
    assert first.pk == again.pk
    assert ApprovalRequest.objects.count() == 1


def test_a_refusal_needs_a_note_and_changes_nothing(client, asker, second, draft):
    approval = plan_activate_request(plan=draft, actor=asker, reason="New season")
    client.force_login(second)
    no_note = client.post(_decide_url(approval), {"refuse": "1"}, follow=True)
    assert "Say why you refuse" in " ".join(_messages(no_note))
    approval.refresh_from_db()
    assert approval.status == "pending"
    client.post(_decide_url(approval), {"refuse": "1", "note": "Rates not agreed with finance"})
    approval.refresh_from_db()
    draft.refresh_from_db()
    assert (approval.status, approval.decision_note, approval.decided_by) == (
        "refused",
        "Rates not agreed with finance",
        second,
    )
    assert not draft.is_activated
    # decided once: deciding again is refused
    with pytest.raises(ApprovalError):
        approval_decide(request=approval, approver=UserFactory(is_staff=True, is_superuser=True), approve=True)


def test_a_change_refused_by_its_own_rules_at_approval_ends_failed_and_changes_nothing(asker, second):
    current = policy_in_force()
    _policy, approval = policy_publish_request(
        actor=asker, note="Looser coupons", values={"max_payout_ratio": D("0.2800")}
    )
    # meanwhile another version is published: the request is for a policy that is no longer in force
    policy_publish(actor=None, note="urgent", max_payout_ratio=D("0.2500"))
    decided = approval_decide(request=approval, approver=second, approve=True)
    assert decided.status == "failed"
    assert "Another policy version was published" in decided.outcome
    assert policy_in_force().version == current.version + 1


def test_support_can_neither_ask_nor_decide_nor_see_the_queue(client, asker, draft, groups):
    support = _person(SUPPORT)
    approval = plan_activate_request(plan=draft, actor=asker, reason="New season")
    with pytest.raises(ApprovalError):
        approval_request(action=PLAN_ACTIVATE, target=draft, summary="x", reason="y", requested_by=support)
    with pytest.raises(ApprovalError):
        approval_decide(request=approval, approver=support, approve=True)
    client.force_login(support)
    assert client.get(QUEUE).status_code == 403
    assert client.post(_decide_url(approval), {"approve": "1"}).status_code in (403, 404)
    approval.refresh_from_db()
    assert approval.status == "pending"


def test_only_the_requester_withdraws_their_request(asker, second, draft):
    approval = plan_activate_request(plan=draft, actor=asker, reason="New season")
    with pytest.raises(ApprovalError):
        approval_cancel(request=approval, actor=second)
    approval_cancel(request=approval, actor=asker)
    approval.refresh_from_db()
    assert approval.status == "cancelled" and approval.decided_by is None
    # a new request may be made after it
    assert plan_activate_request(plan=draft, actor=asker, reason="Again").pk != approval.pk


def test_a_request_needs_a_reason(asker, draft):
    with pytest.raises(ApprovalError) as refused:
        plan_activate_request(plan=draft, actor=asker, reason="   ")
    assert "reason" in refused.value.message_dict
    assert not ApprovalRequest.objects.exists()


def test_the_queue_and_the_bulk_approval(client, asker, second, draft):
    other = plan_create(actor=asker, name="Summer", rates=(D("0.6000"),))
    plan_activate_request(plan=draft, actor=asker, reason="New season")
    client.force_login(second)
    page = client.get(QUEUE)
    assert page.status_code == 200
    assert [row.target_label for row in page.context["cl"].result_list] == [str(draft)]
    ids = [approval.pk for approval in page.context["cl"].result_list]
    client.post(QUEUE, {"action": "approve_selected", ACTION_CHECKBOX_NAME: ids})
    assert plan_in_force() == CommissionPlan.objects.get(pk=draft.pk)
    assert not CommissionPlan.objects.get(pk=other.pk).is_activated


def test_both_names_are_in_the_audit_log(client, asker, second, draft):
    approval = plan_activate_request(plan=draft, actor=asker, reason="New season")
    approval_decide(request=approval, approver=second, approve=True)
    superuser = UserFactory(is_staff=True, is_superuser=True)
    client.force_login(superuser)
    items = client.get(reverse("staff:audit_log"), {"object_type": "approval"}).context["rows"]
    by_kind = {item["row"].kind: item["row"] for item in items}
    assert by_kind["approval.asked"].actor_id == asker.pk
    assert by_kind["approval.decided"].actor_id == second.pk
    assert "New season" in by_kind["approval.asked"].detail


def test_the_policy_form_asks_and_the_first_policy_needs_no_second_person(asker):
    # with a policy in force, a new version is asked for (checked first: an illegal one is refused at once)
    before = policy_in_force().version
    policy, approval = policy_publish_request(actor=asker, note="Tighter", values={"max_payout_ratio": D("0.2000")})
    assert policy is None and approval.action == POLICY_PUBLISH
    assert policy_in_force().version == before


@pytest.mark.parametrize(
    ("threshold", "amount", "needed"),
    [("5000.00", None, True), ("5000.00", "5000.00", False), ("5000.00", "5000.01", True), ("-1", "99999", False)],
)
def test_money_needs_a_second_person_above_the_threshold_only(settings, threshold, amount, needed):
    settings.FOUR_EYES_THRESHOLD = D(threshold)
    assert second_approval_needed(None if amount is None else D(amount)) is needed
