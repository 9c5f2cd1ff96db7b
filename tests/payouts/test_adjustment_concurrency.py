"""Staff balance adjustments under concurrency, on PostgreSQL (payouts/adjustments.py): a debit and a withdrawal at
the same moment never overdraw the balance (both take the member's wallet lock), and two people approving the same
request at once apply it once (the approval row's lock, then the unique key)."""

from decimal import Decimal

import pytest

from accounts.approvals import approval_decide
from accounts.models import ApprovalRequest
from payouts.adjustments import balance_adjustment_request
from payouts.models import BalanceAdjustment, Withdrawal
from payouts.selectors import member_balance
from payouts.services import withdrawal_request
from tests.factories import UserFactory
from tests.payouts.helpers import funded_member
from tests.payouts.test_concurrency import run_together

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

D = Decimal


@pytest.fixture(autouse=True)
def rules(settings):
    settings.FOUR_EYES_THRESHOLD = D("5000.00")
    settings.WITHDRAWAL_AUTO_APPROVE_MAX = D("0.00")


def _finance():
    return UserFactory(is_staff=True, is_superuser=True)


def _debit(member, actor, amount: str, key: str):
    return lambda: balance_adjustment_request(
        member=member, amount=D(amount), member_note="Correction", internal_note="Ticket", actor=actor, key=key
    )


def test_a_debit_and_a_withdrawal_at_the_same_moment_never_overdraw():
    member = funded_member("100.00")
    finance = _finance()

    results, errors = run_together(
        [_debit(member, finance, "-60.00", "d1"), lambda: withdrawal_request(member=member, amount=D("60.00"))]
    )

    assert len(results) == 1 and len(errors) == 1
    assert member_balance(member).withdrawable == D("40.00")
    assert BalanceAdjustment.objects.count() + Withdrawal.objects.count() == 1


def test_two_debits_at_the_same_moment_take_what_there_is_once():
    member = funded_member("100.00")
    finance = _finance()

    results, errors = run_together([_debit(member, finance, "-70.00", "a"), _debit(member, finance, "-70.00", "b")])

    assert (len(results), len(errors)) == (1, 1)
    assert member_balance(member).withdrawable == D("30.00")


def test_two_people_approving_the_same_request_at_once_apply_it_once():
    member = funded_member("100.00")
    asked = balance_adjustment_request(
        member=member, amount=D("8000.00"), member_note="Goodwill", internal_note="Ticket", actor=_finance(), key="k"
    )
    approvers = [_finance(), _finance()]

    results, errors = run_together(
        [
            lambda approver=approver: approval_decide(request=asked, approver=approver, approve=True)
            for approver in approvers
        ]
    )

    assert (len(results), len(errors)) == (1, 1)
    assert ApprovalRequest.objects.get().status == "approved"
    assert BalanceAdjustment.objects.count() == 1
    assert member_balance(member).withdrawable == D("8100.00")
