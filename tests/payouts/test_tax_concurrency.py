"""The tax withheld at payout under concurrency, on PostgreSQL: the same computation run by two workers at once
withholds once, and two payouts of one member in the same month computed at once see each other (the wallet lock)."""

from datetime import datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from payouts.models import TaxWithholding
from payouts.services import payout_batch_create, withdrawal_approve, withdrawal_request, withdrawals_tax_withhold
from tests.factories import MemberFactory
from tests.payouts.helpers import bank_account, credit
from tests.payouts.test_concurrency import run_together

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

D = Decimal
AT = datetime(2026, 3, 5, 10, tzinfo=ZoneInfo("Asia/Shanghai"))


def processing(member, amounts: list[str]) -> list[int]:
    ids = []
    for amount in amounts:
        withdrawal = withdrawal_request(member=member, amount=D(amount))
        withdrawal_approve(withdrawal=withdrawal, actor=None)
        ids.append(withdrawal.pk)
    payout_batch_create(provider_name="manual")
    return ids


def test_two_workers_computing_the_same_payout_withhold_once():
    member = MemberFactory()
    bank_account(member)
    credit(member, "10000.00")
    [withdrawal_id] = processing(member, ["10000.00"])
    results, errors = run_together(
        [lambda: withdrawals_tax_withhold(withdrawal_ids=[withdrawal_id], at=AT) for _ in range(4)]
    )
    assert errors == []
    assert TaxWithholding.objects.filter(withdrawal_id=withdrawal_id).count() == 1
    assert {result[withdrawal_id].pk for result in results} == {TaxWithholding.objects.get().pk}
    assert TaxWithholding.objects.get().tax == D("90.00")


def test_two_payouts_of_a_month_computed_at_once_are_one_payment(settings):
    settings.TAX_WITHHOLDING_METHOD = "per_payment_2018"
    member = MemberFactory()
    bank_account(member)
    credit(member, "5000.00")
    first, second = processing(member, ["3000.00", "2000.00"])
    _results, errors = run_together(
        [
            lambda: withdrawals_tax_withhold(withdrawal_ids=[second], at=AT),
            lambda: withdrawals_tax_withhold(withdrawal_ids=[first], at=AT),
        ]
    )
    assert errors == []
    # whichever ran first, the month's 5,000 is taxed as one payment: 800 in all
    taxes = sorted(TaxWithholding.objects.values_list("tax", flat=True))
    assert sum(taxes) == D("800.00")
    assert taxes in ([D("240.00"), D("560.00")], [D("360.00"), D("440.00")])
