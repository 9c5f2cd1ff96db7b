"""Staff adjustments of a member's balance (payouts/adjustments.py, issue #25 "four eyes on money"): finance credits or
debits a balance with a note for the member and an internal note; above FOUR_EYES_THRESHOLD a second finance user
approves; the same person never does both; a finance user who adjusted a member lately may not approve that member's
withdrawals; the balance, the statement and check_ledger count every adjustment exactly once."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.contrib.auth.models import Group
from django.core.management import call_command
from django.urls import reverse
from django.utils import timezone

from accounts.approvals import ApprovalError, approval_decide
from accounts.models import ApprovalRequest
from payouts.adjustments import balance_adjustment_apply, balance_adjustment_request, new_adjustment_key
from payouts.models import BalanceAdjustment, Withdrawal
from payouts.selectors import member_balance, member_statement
from payouts.services import PayoutError, withdrawal_approve, withdrawal_request
from staff.audit import AuditFilters, audit_rows
from staff.groups import FINANCE, SUPPORT
from staff.ledger_check import ledger_check
from tests.factories import MemberFactory, UserFactory
from tests.payouts.helpers import funded_member, paid_withdrawal

pytestmark = pytest.mark.django_db

D = Decimal
ADD = reverse("admin:payouts_balanceadjustment_add")
WITHDRAWALS = reverse("admin:payouts_withdrawal_changelist")
ADJUST = BalanceAdjustment.APPROVAL_ACTION


@pytest.fixture(autouse=True)
def rules(settings):
    settings.FOUR_EYES_THRESHOLD = D("5000.00")
    settings.ADJUSTMENT_CONFLICT_DAYS = 30
    settings.WITHDRAWAL_AUTO_APPROVE_MAX = D("0.00")


def _staff(group=FINANCE):
    call_command("staff_groups", verbosity=0)
    user = UserFactory(is_staff=True)
    user.groups.add(Group.objects.get(name=group))
    return user


@pytest.fixture
def first():
    return _staff()


@pytest.fixture
def second():
    return _staff()


@pytest.fixture
def member():
    return funded_member("100.00")


def _adjust(actor, member, amount, *, note="Goodwill credit for the late delivery", key=None):
    return balance_adjustment_request(
        member=member,
        amount=D(amount),
        member_note=note,
        internal_note="Ticket 4711: the courier lost the parcel",
        actor=actor,
        key=key or new_adjustment_key(),
    )


# The checks of check_ledger that read balances (the helpers' commission entries are made by hand, not split, so the
# split checks are not asked).
MONEY_CHECKS = ("payouts", "staff balance adjustments")


def _ledger_violations() -> dict[str, list[str]]:
    return {
        result.name: result.violations for result in ledger_check() if result.name in MONEY_CHECKS and not result.passed
    }


# --- Credit, debit, the balance and the ledger -----------------------------------------------------------------


def test_a_credit_below_the_threshold_is_applied_at_once_and_counted_everywhere(first, member):
    adjustment = _adjust(first, member, "25.50")

    assert isinstance(adjustment, BalanceAdjustment)
    assert (adjustment.amount, adjustment.requested_by, adjustment.approved_by) == (D("25.50"), first, None)
    balance = member_balance(member)
    assert (balance.adjusted, balance.withdrawable) == (D("25.50"), D("125.50"))
    last = member_statement(member)[-1]
    assert (last.description, last.amount, last.balance) == (
        "Balance adjustment by staff: Goodwill credit for the late delivery",
        D("25.50"),
        D("125.50"),
    )
    assert _ledger_violations() == {}


def test_a_credit_may_be_withdrawn_and_check_ledger_stays_exact(first, member):
    _adjust(first, member, "50.00")

    paid_withdrawal(member, "150.00")

    assert member_balance(member).withdrawable == D("0.00")
    assert member.commission_entries.get().status == "paid"  # the payout covered the commission too
    assert _ledger_violations() == {}


def test_a_debit_takes_money_off_the_available_balance(first, member):
    adjustment = _adjust(first, member, "-30.00", note="Correction: a commission was credited twice")

    assert adjustment.amount == D("-30.00")
    assert member_balance(member).withdrawable == D("70.00")
    assert member_statement(member)[-1].amount == D("-30.00")
    # the rest is withdrawn and paid: the commission counts as paid out (the debit took the other part)
    paid_withdrawal(member, "70.00")
    assert member.commission_entries.get().status == "paid"
    assert _ledger_violations() == {}


def test_a_debit_beyond_the_available_balance_is_refused_and_nothing_changes(first, member):
    withdrawal_request(member=member, amount=D("60.00"))  # 40.00 left available

    with pytest.raises(PayoutError) as refused:
        _adjust(first, member, "-40.01")

    assert "40.00 is available" in " ".join(refused.value.message_dict["amount"])
    assert BalanceAdjustment.objects.count() == 0
    assert member_balance(member).withdrawable == D("40.00")
    _adjust(first, member, "-40.00")
    assert member_balance(member).withdrawable == D("0.00")


def test_the_same_form_sent_twice_applies_once(first, member):
    key = new_adjustment_key()

    one = _adjust(first, member, "10.00", key=key)
    two = _adjust(first, member, "10.00", key=key)

    assert one == two
    assert member_balance(member).adjusted == D("10.00")


@pytest.mark.parametrize(
    ("amount", "member_note", "field"),
    [("0.00", "note", "amount"), ("1.005", "note", "amount"), ("10.00", "  ", "member_note")],
)
def test_bad_input_is_refused_on_its_field(first, member, amount, member_note, field):
    with pytest.raises(PayoutError) as refused:
        balance_adjustment_request(
            member=member, amount=amount, member_note=member_note, internal_note="x", actor=first, key="k"
        )
    assert field in refused.value.message_dict
    assert BalanceAdjustment.objects.count() == 0


def test_support_staff_and_members_may_not_adjust_and_nobody_adjusts_their_own_balance(member):
    support = _staff(SUPPORT)
    with pytest.raises(PayoutError, match="may not adjust"):
        _adjust(support, member, "10.00")
    insider = _staff()
    own = MemberFactory(user=insider)
    with pytest.raises(PayoutError, match="your own balance"):
        _adjust(insider, own, "10.00")
    assert BalanceAdjustment.objects.count() == 0


# --- Four eyes ----------------------------------------------------------------------------------------------------


def test_above_the_threshold_a_second_finance_user_applies_it_once(first, second, member):
    # given the insider's ¥16,000.00 adjustment of issue #25
    asked = _adjust(first, member, "16000.00")

    # then nothing is applied yet: a request waits
    assert isinstance(asked, ApprovalRequest)
    assert (asked.action, asked.target_id, asked.amount, asked.status) == (
        ADJUST,
        str(member.pk),
        D("16000.00"),
        "pending",
    )
    assert member_balance(member).withdrawable == D("100.00")
    # the one who asked cannot approve it
    with pytest.raises(ApprovalError):
        approval_decide(request=asked, approver=first, approve=True)
    assert BalanceAdjustment.objects.count() == 0
    # when a second finance user approves it (and a second decision comes, another tab)
    decided = approval_decide(request=asked, approver=second, approve=True)
    with pytest.raises(ApprovalError, match="already decided"):
        approval_decide(request=asked, approver=_staff(), approve=True)

    # then it is applied once, with both names
    assert decided.status == "approved"
    adjustment = BalanceAdjustment.objects.get()
    assert (adjustment.amount, adjustment.requested_by, adjustment.approved_by, adjustment.approval) == (
        D("16000.00"),
        first,
        second,
        decided,
    )
    assert member_balance(member).withdrawable == D("16100.00")
    assert _ledger_violations() == {}


def test_applying_an_approved_request_again_applies_it_once(first, second, member):
    asked = _adjust(first, member, "6000.00")
    approval_decide(request=asked, approver=second, approve=True)
    asked.refresh_from_db()

    again, new = balance_adjustment_apply(
        member=member,
        amount=asked.params["amount"],
        member_note=asked.params["member_note"],
        internal_note=asked.reason,
        requested_by=first,
        approved_by=second,
        approval=asked,
        key=asked.params["key"],
    )

    assert new is False
    assert BalanceAdjustment.objects.count() == 1
    assert member_balance(member).adjusted == D("6000.00")


def test_one_adjustment_of_a_member_waits_at_a_time(first, second, member):
    key = new_adjustment_key()
    asked = _adjust(first, member, "6000.00", key=key)

    assert _adjust(first, member, "6000.00", key=key) == asked  # the same form again: the same request
    with pytest.raises(PayoutError) as refused:
        _adjust(second, member, "7000.00")
    assert refused.value.code == "already_waiting"
    assert ApprovalRequest.objects.count() == 1 and BalanceAdjustment.objects.count() == 0


def test_small_adjustments_by_one_person_add_up_to_the_threshold(first, second, member):
    _adjust(first, member, "3000.00")
    _adjust(second, member, "3000.00")  # another person's adjustment does not count towards first's

    asked = _adjust(first, member, "2000.01")  # 3000.00 + 2000.01 > 5000.00

    assert isinstance(asked, ApprovalRequest)
    assert member_balance(member).adjusted == D("6000.00")


def test_a_large_debit_the_balance_no_longer_covers_ends_the_request_failed(first, second):
    member = funded_member("9000.00")
    asked = _adjust(first, member, "-6000.00")
    withdrawal_request(member=member, amount=D("4000.00"))  # meanwhile: 5000.00 left

    decided = approval_decide(request=asked, approver=second, approve=True)

    assert decided.status == "failed"
    assert "below zero" in decided.outcome
    assert BalanceAdjustment.objects.count() == 0


def test_the_audit_log_names_both_people(first, second, member):
    asked = _adjust(first, member, "7000.00")
    approval_decide(request=asked, approver=second, approve=True)

    rows = audit_rows(AuditFilters(object_type="balance_adjustment", object_id=str(member.pk)))
    approvals = audit_rows(AuditFilters(object_type="approval", object_id=str(asked.pk)))

    assert [(row.kind, row.actor_id, row.amount) for row in rows] == [("adjustment.applied", second.pk, D("7000.00"))]
    assert f"entered by {first} · approved by {second}" in rows[0].detail
    assert {(row.kind, row.actor_id) for row in approvals} == {
        ("approval.asked", first.pk),
        ("approval.decided", second.pk),
    }


# --- Who adjusted a member does not approve their withdrawals ----------------------------------------------------


def _approve_in_admin(client, user, withdrawal):
    client.force_login(user)
    return client.post(
        WITHDRAWALS, {"action": "approve_withdrawals", ACTION_CHECKBOX_NAME: [withdrawal.pk]}, follow=True
    )


def test_who_adjusted_a_member_may_not_approve_their_withdrawal(client, first, second, member):
    _adjust(first, member, "20.00")
    withdrawal = withdrawal_request(member=member, amount=D("50.00"))

    # the direct approval (the admin action, and the service) is refused, and nothing changes
    response = _approve_in_admin(client, first, withdrawal)
    assert "You adjusted this member&#x27;s balance in the last 30 days" in response.content.decode()
    with pytest.raises(PayoutError) as refused:
        withdrawal_approve(withdrawal=withdrawal, actor=first)
    assert refused.value.code == "adjusted_recently"
    withdrawal.refresh_from_db()
    assert (withdrawal.status, withdrawal.events.count()) == ("requested", 1)
    # another finance user approves it
    _approve_in_admin(client, second, withdrawal)
    withdrawal.refresh_from_db()
    assert withdrawal.status == "approved"


def test_the_second_approver_of_an_adjustment_is_refused_too(client, first, second, member):
    asked = _adjust(first, member, "6000.00")
    approval_decide(request=asked, approver=second, approve=True)
    withdrawal = withdrawal_request(member=member, amount=D("50.00"))

    _approve_in_admin(client, second, withdrawal)

    withdrawal.refresh_from_db()
    assert withdrawal.status == "requested"


def test_asking_for_an_adjustment_is_enough_to_be_refused(first, member):
    _adjust(first, member, "9000.00")  # waits for a second approval
    withdrawal = withdrawal_request(member=member, amount=D("50.00"))

    with pytest.raises(PayoutError, match="adjusted this member"):
        withdrawal_approve(withdrawal=withdrawal, actor=first)


def test_a_large_withdrawal_refuses_the_adjuster_as_first_and_as_second_approver(client, first, second):
    member = funded_member("9000.00")
    _adjust(first, member, "10.00")
    large = withdrawal_request(member=member, amount=D("6000.00"))

    # as the first approver: nothing is asked
    _approve_in_admin(client, first, large)
    assert not ApprovalRequest.objects.filter(action="payouts.withdrawal_approve").exists()
    # as the second approver: refused, the request stays open for someone else
    _approve_in_admin(client, second, large)
    asked = ApprovalRequest.objects.get(action="payouts.withdrawal_approve")
    with pytest.raises(ApprovalError, match="adjusted this member"):
        approval_decide(request=asked, approver=first, approve=True)
    asked.refresh_from_db()
    large.refresh_from_db()
    assert (asked.status, large.status) == ("pending", "requested")
    approval_decide(request=asked, approver=_staff(), approve=True)
    large.refresh_from_db()
    assert large.status == "approved"


def test_the_approval_queue_refuses_the_adjuster_on_the_page_and_in_bulk(client, first, second):
    member = funded_member("9000.00")
    _adjust(first, member, "10.00")
    large = withdrawal_request(member=member, amount=D("6000.00"))
    _approve_in_admin(client, second, large)
    asked = ApprovalRequest.objects.get(action="payouts.withdrawal_approve")
    client.force_login(first)

    page = client.post(reverse("admin:accounts_approvalrequest_decide", args=[asked.pk]), {"approve": "1"}, follow=True)
    bulk = client.post(
        reverse("admin:accounts_approvalrequest_changelist"),
        {"action": "approve_selected", ACTION_CHECKBOX_NAME: [asked.pk]},
        follow=True,
    )

    for response in (page, bulk):
        assert "You adjusted this member&#x27;s balance in the last 30 days" in response.content.decode()
    asked.refresh_from_db()
    large.refresh_from_db()
    assert (asked.status, large.status) == ("pending", "requested")


def test_the_rule_ends_after_the_configured_days(first, member, settings):
    adjustment = _adjust(first, member, "20.00")
    withdrawal = withdrawal_request(member=member, amount=D("50.00"))
    # when the adjustment is 30 days old less a minute: still refused
    BalanceAdjustment.objects.filter(pk=adjustment.pk).update(
        created_at=timezone.now() - timedelta(days=30) + timedelta(minutes=1)
    )
    with pytest.raises(PayoutError):
        withdrawal_approve(withdrawal=withdrawal, actor=first)
    # when it is older than 30 days: allowed
    BalanceAdjustment.objects.filter(pk=adjustment.pk).update(created_at=timezone.now() - timedelta(days=30, minutes=1))
    assert withdrawal_approve(withdrawal=withdrawal, actor=first).status == Withdrawal.Status.APPROVED


def test_the_rule_follows_its_setting(first, member, settings):
    settings.ADJUSTMENT_CONFLICT_DAYS = 0
    _adjust(first, member, "20.00")
    withdrawal = withdrawal_request(member=member, amount=D("50.00"))

    assert withdrawal_approve(withdrawal=withdrawal, actor=first).status == Withdrawal.Status.APPROVED


# --- The admin page -----------------------------------------------------------------------------------------------


def _post(client, **data):
    form = {"member": "", "amount": "", "member_note": "", "internal_note": "", "key": new_adjustment_key()}
    return client.post(ADD, {**form, **data})


def test_finance_adjusts_from_the_admin_page(client, first, member):
    client.force_login(first)
    page = client.get(ADD + f"?member={member.invite_code}")
    assert page.status_code == 200 and member.invite_code in page.content.decode()

    response = _post(
        client, member=member.invite_code, amount="12.30", member_note="Goodwill", internal_note="Ticket 1"
    )

    assert response.status_code == 302
    adjustment = BalanceAdjustment.objects.get()
    assert (adjustment.amount, adjustment.member_note, adjustment.internal_note, adjustment.requested_by) == (
        D("12.30"),
        "Goodwill",
        "Ticket 1",
        first,
    )


def test_the_admin_page_asks_a_second_person_above_the_threshold(client, first, member):
    client.force_login(first)

    response = _post(client, member=member.user.email, amount="5000.01", member_note="Goodwill", internal_note="T")

    assert response.status_code == 302
    assert BalanceAdjustment.objects.count() == 0
    assert ApprovalRequest.objects.get().action == ADJUST


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"member": "nobody", "amount": "1.00"}, "No member has this invite code or email"),
        ({"amount": "-100.01"}, "below zero"),
        ({"amount": "0"}, "changes nothing"),
        ({"member_note": ""}, "This field is required"),
    ],
)
def test_bad_input_on_the_admin_page_answers_400_and_changes_nothing(client, first, member, data, message):
    client.force_login(first)
    form = {"member": member.invite_code, "amount": "1.00", "member_note": "n", "internal_note": "i", **data}

    response = _post(client, **form)

    assert response.status_code == 400
    assert message in response.content.decode()
    assert BalanceAdjustment.objects.count() == 0 and ApprovalRequest.objects.count() == 0


def test_support_staff_and_members_cannot_open_the_page(client, member):
    client.force_login(_staff(SUPPORT))
    assert client.get(ADD).status_code == 403
    assert (
        _post(client, member=member.invite_code, amount="1.00", member_note="n", internal_note="i").status_code == 403
    )
    client.force_login(member.user)
    assert client.get(ADD).status_code == 302  # to the admin's login
    assert BalanceAdjustment.objects.count() == 0


# --- The member's side --------------------------------------------------------------------------------------------


def test_the_member_sees_the_note_for_them_never_the_internal_note(client, first, member):
    _adjust(first, member, "25.00", note="Goodwill credit for order 1001")
    other = funded_member("10.00")
    client.force_login(member.user)

    earnings = client.get(reverse("members:commission_entries")).content.decode()
    statement = client.get(reverse("members:payout_statement")).content.decode()

    for page in (earnings, statement):
        assert "Goodwill credit for order 1001" in page
        assert "Ticket 4711" not in page
    assert 'id="balance-adjusted"' in earnings
    client.force_login(other.user)
    for url in (reverse("members:commission_entries"), reverse("members:payout_statement")):
        assert "Goodwill credit" not in client.get(url).content.decode()
    assert client.get("/api/v1/payouts/balance/").json()["adjusted"] == "0.00"
