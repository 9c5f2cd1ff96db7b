"""Income tax withheld at payout (docs/tax.md): computed once per withdrawal when it is sent, written as its own
ledger entry (gross = tax + net), the rail sent the net, voided when the payout fails, reconciled by check_ledger."""

from datetime import datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from django.db import IntegrityError, transaction
from django.utils import timezone

from commissions.models import CommissionEntry
from payouts.models import SandboxTransfer, TaxWithholding, Withdrawal, WithholdingRule
from payouts.selectors import member_balance, member_income_statement, member_statement, withholding_rule_in_force
from payouts.services import (
    PayoutError,
    payout_batch_create,
    payout_batch_send,
    withdrawal_approve,
    withdrawal_request,
    withdrawals_tax_withhold,
    withholding_rule_activate,
)
from staff.ledger_check import check_payouts, check_tax_withheld
from tests.factories import MemberFactory, UserFactory
from tests.payouts.helpers import bank_account, credit, paid_withdrawal

pytestmark = pytest.mark.django_db

D = Decimal
SHANGHAI = ZoneInfo("Asia/Shanghai")


@pytest.fixture
def member():
    member = MemberFactory()
    bank_account(member)
    return member


def activate(method: str, *, version: int, effective_from=None) -> WithholdingRule:
    rule = WithholdingRule.objects.create(version=version, name=method, method=method)
    return withholding_rule_activate(rule=rule, actor=UserFactory(is_staff=True), effective_from=effective_from)


def sent(member, amount: str, *, at: datetime | None = None) -> Withdrawal:
    """A withdrawal requested, approved, batched, its tax computed as of `at` (now) and sent through the sandbox."""
    withdrawal = withdrawal_request(member=member, amount=D(amount))
    withdrawal_approve(withdrawal=withdrawal, actor=None)
    batch = payout_batch_create(provider_name="sandbox")
    if at is not None:
        withdrawals_tax_withhold(withdrawal_ids=[withdrawal.pk], at=at)
    payout_batch_send(batch=batch)
    withdrawal.refresh_from_db()
    return withdrawal


def ledger_green() -> bool:
    return check_tax_withheld().passed and check_payouts().passed


def test_a_payout_withholds_the_tax_and_the_rail_is_sent_the_net(member):
    # given 10,000.00 released, the default rule (2025 No. 16, cumulative), nothing paid this year
    credit(member, "10000.00")
    # when it is all withdrawn and paid
    withdrawal = paid_withdrawal(member, "10000.00")
    # then (10,000 − 2,000 − 5,000) × 3 % = 90 is withheld, 9,910 sent
    assert withdrawal.status == Withdrawal.Status.PAID
    entry = TaxWithholding.objects.get(withdrawal=withdrawal)
    assert (entry.gross, entry.tax, entry.net) == (D("10000.00"), D("90.00"), D("9910.00"))
    assert entry.method == "cumulative_2025" and entry.rule is None
    assert entry.paid_on == timezone.localdate()
    assert SandboxTransfer.objects.get(idempotency_key=withdrawal.idempotency_key).amount == D("9910.00")
    balance = member_balance(member)
    assert (balance.paid_out, balance.tax_withheld, balance.withdrawable) == (D("10000.00"), D("90.00"), D("0.00"))
    assert ledger_green()


def test_a_payout_sent_twice_withholds_once(member):
    # given a withdrawal whose tax was computed and which was sent
    credit(member, "20000.00")
    withdrawal = withdrawal_request(member=member, amount=D("10000.00"))
    withdrawal_approve(withdrawal=withdrawal, actor=None)
    batch = payout_batch_create(provider_name="manual")  # stays processing: finance records the result later
    first = payout_batch_send(batch=batch)
    # when the task runs again, and the computation itself runs again
    second = payout_batch_send(batch=batch)
    again = withdrawals_tax_withhold(withdrawal_ids=[withdrawal.pk])
    # then one entry, the tax once
    assert first == second == {"paid": 0, "failed": 0, "pending": 1}
    assert TaxWithholding.objects.filter(withdrawal=withdrawal).count() == 1
    assert again[withdrawal.pk].tax == D("90.00")
    # and a second entry for the same withdrawal is refused by the database
    with pytest.raises(IntegrityError), transaction.atomic():
        TaxWithholding.objects.create(
            withdrawal=withdrawal, member=member, method="none", paid_on=timezone.localdate(), gross=D("10000.00"),
            tax=D("0.00"), net=D("10000.00"), income=0, expenses=0, deduction=0, taxable=0, rate=0,
            quick_deduction=0, tax_due=0, withheld_before=0,
        )  # fmt: skip
    assert ledger_green()


def test_gross_is_tax_plus_net_in_the_database(member):
    credit(member, "100.00")
    withdrawal = paid_withdrawal(member, "100.00")
    with pytest.raises(IntegrityError), transaction.atomic():
        TaxWithholding.objects.filter(withdrawal=withdrawal).update(net=D("99.00"))


def test_several_payouts_in_a_month_per_payment_rule(member, settings):
    # given the classic rule (2018 No. 61) in force and 5,000 released
    settings.TAX_WITHHOLDING_METHOD = "per_payment_2018"
    credit(member, "5000.00")
    # when 3,000 is paid, then 2,000 in the same month
    march_5 = datetime(2026, 3, 5, 10, tzinfo=SHANGHAI)
    first = sent(member, "3000.00", at=march_5)
    second = sent(member, "2000.00", at=march_5 + timedelta(days=15))
    # then the month's 5,000 is one payment: 440, then 800 − 440 = 360
    assert (first.withholding.tax, first.withholding.net) == (D("440.00"), D("2560.00"))
    assert (second.withholding.tax, second.withholding.income) == (D("360.00"), D("5000.00"))
    assert member_balance(member).tax_withheld == D("800.00")
    assert ledger_green()


def test_the_month_is_the_local_month(member, settings):
    # 1 April 00:30 in Shanghai is 31 March in UTC: the income date, and so the month, is Shanghai's
    settings.TAX_WITHHOLDING_METHOD = "per_payment_2018"
    credit(member, "5000.00")
    sent(member, "3000.00", at=datetime(2026, 3, 31, 12, tzinfo=SHANGHAI))
    april = sent(member, "2000.00", at=datetime(2026, 3, 31, 16, 30, tzinfo=ZoneInfo("UTC")))
    assert april.withholding.paid_on.isoformat() == "2026-04-01"
    assert april.withholding.tax == D("240.00")  # a new month: (2,000 − 800) × 20 %


def test_cumulative_across_months_and_a_clawback_after_a_payout(member):
    # January: 10,000 paid, 90 withheld
    credit(member, "10000.00")
    january = sent(member, "10000.00", at=datetime(2026, 1, 20, tzinfo=SHANGHAI))
    assert january.withholding.tax == D("90.00")
    # a refund claws back 2,000 of that commission after the payout: the balance goes to −2,000
    credit(member, "-2000.00", kind=CommissionEntry.Kind.CLAWBACK)
    assert member_balance(member).withdrawable == D("-2000.00")
    # February: 12,000 more is released, of which 10,000 is available (the clawback is netted off first)
    credit(member, "12000.00")
    february = sent(member, "10000.00", at=datetime(2026, 2, 20, tzinfo=SHANGHAI))
    # then February's cumulative income is 20,000, what was really paid (not 22,000): 180 − 90 = 90
    entry = february.withholding
    assert entry.income == D("20000.0000")
    assert (entry.deduction, entry.tax_due, entry.withheld_before, entry.tax) == (
        D("10000.00"),
        D("180.00"),
        D("90.00"),
        D("90.00"),
    )
    assert ledger_green()


def test_a_failed_payout_voids_its_tax_and_counts_no_more(member, settings):
    settings.TAX_WITHHOLDING_METHOD = "per_payment_2018"
    credit(member, "8000.13")
    # given a payout the rail refuses (the sandbox fails amounts ending in .13)
    march = datetime(2026, 3, 2, tzinfo=SHANGHAI)
    failed = sent(member, "3000.13", at=march)
    assert failed.status == Withdrawal.Status.FAILED
    assert failed.withholding.status == TaxWithholding.Status.VOID
    assert member_balance(member).tax_withheld == D("0.00")
    assert member_balance(member).withdrawable == D("8000.13")
    # when the member withdraws again in the same month
    again = sent(member, "2000.00", at=march + timedelta(days=1))
    # then the failed one is not part of the month's income
    assert again.withholding.income == D("2000.00")
    assert again.withholding.tax == D("240.00")
    assert ledger_green()


def test_the_statement_and_the_income_statement_show_gross_tax_and_net(member):
    credit(member, "10000.00")
    withdrawal = sent(member, "10000.00", at=datetime(2026, 1, 20, tzinfo=SHANGHAI))
    line = next(line for line in member_statement(member) if line.tax is not None)
    assert (line.amount, line.tax, line.net) == (D("-10000.00"), D("90.00"), D("9910.00"))
    assert "tax withheld 90.00, net paid 9910.00" in line.description
    statement = member_income_statement(member, 2026)
    assert [(m.month, m.payouts, m.gross, m.tax, m.net) for m in statement.months] == [
        (1, 1, D("10000.00"), D("90.00"), D("9910.00"))
    ]
    assert statement.payouts == (withdrawal.withholding,)
    assert member_income_statement(member, 2025).months == ()


# --- Rules: versioned, activated, in force by date -------------------------------------------------------------


def test_the_setting_applies_until_a_rule_is_activated(settings):
    settings.TAX_WITHHOLDING_METHOD = "per_payment_2018"
    assert withholding_rule_in_force() == (None, "per_payment_2018")
    draft = WithholdingRule.objects.create(version=1, name="draft", method="none")
    assert withholding_rule_in_force() == (None, "per_payment_2018")
    rule = withholding_rule_activate(rule=draft, actor=None)
    assert withholding_rule_in_force() == (rule, "none")


def test_a_rule_comes_into_force_at_its_date():
    current = activate("per_payment_2018", version=1)
    now = timezone.now()
    later = activate("none", version=2, effective_from=now + timedelta(days=30))
    assert withholding_rule_in_force(now - timedelta(days=1)) == (None, "cumulative_2025")  # before any rule
    assert withholding_rule_in_force(now) == (current, "per_payment_2018")
    assert withholding_rule_in_force(now + timedelta(days=31)) == (later, "none")


def test_activation_is_recorded_and_refused_twice_or_in_the_past():
    staff = UserFactory(is_staff=True)
    rule = WithholdingRule.objects.create(version=1, name="2025", method="cumulative_2025")
    with pytest.raises(PayoutError):
        withholding_rule_activate(rule=rule, actor=staff, effective_from=timezone.now() - timedelta(days=1))
    rule.refresh_from_db()
    assert not rule.is_activated and rule.activated_by is None
    withholding_rule_activate(rule=rule, actor=staff)
    rule.refresh_from_db()
    assert rule.is_activated and rule.activated_by == staff and rule.activated_at is not None
    with pytest.raises(PayoutError):
        withholding_rule_activate(rule=rule, actor=staff)


def test_a_business_payee_rule_withholds_nothing(member):
    activate("none", version=1)
    credit(member, "10000.00")
    withdrawal = paid_withdrawal(member, "10000.00")
    assert (withdrawal.withholding.tax, withdrawal.withholding.net) == (D("0.00"), D("10000.00"))


# --- check_ledger ---------------------------------------------------------------------------------------------


def test_check_ledger_finds_tax_that_does_not_reconcile(member):
    credit(member, "20000.00")
    paid = paid_withdrawal(member, "10000.00")
    assert ledger_green()
    # a void entry on a paid withdrawal
    TaxWithholding.objects.filter(pk=paid.withholding.pk).update(status=TaxWithholding.Status.VOID)
    assert [v for v in check_tax_withheld().violations if "is void, but the withdrawal is paid" in v]
    TaxWithholding.objects.filter(pk=paid.withholding.pk).update(status=TaxWithholding.Status.WITHHELD)
    # the rail sent the gross, not the net
    SandboxTransfer.objects.filter(idempotency_key=paid.idempotency_key).update(amount=D("10000.00"))
    assert [v for v in check_tax_withheld().violations if "not the net after the tax withheld" in v]
    SandboxTransfer.objects.filter(idempotency_key=paid.idempotency_key).update(amount=D("9910.00"))
    # tax computed on another amount than the withdrawal's
    Withdrawal.objects.filter(pk=paid.pk).update(amount=D("9000.00"))
    assert [v for v in check_tax_withheld().violations if "tax computed on 10000.00" in v]


def test_a_members_payouts_in_one_batch_are_one_payment(member, settings):
    # given the classic rule and two approved withdrawals of one member, sent in the same batch
    settings.TAX_WITHHOLDING_METHOD = "per_payment_2018"
    credit(member, "5000.00")
    first = withdrawal_request(member=member, amount=D("3000.00"))
    second = withdrawal_request(member=member, amount=D("2000.00"))
    for withdrawal in (first, second):
        withdrawal_approve(withdrawal=withdrawal, actor=None)
    # when
    payout_batch_send(batch=payout_batch_create(provider_name="sandbox"))
    # then in id order: 440 on the first, the month's 800 less 440 on the second
    taxes = dict(TaxWithholding.objects.values_list("withdrawal_id", "tax"))
    assert taxes == {first.pk: D("440.00"), second.pk: D("360.00")}
    assert sorted(SandboxTransfer.objects.values_list("amount", flat=True)) == [D("1640.00"), D("2560.00")]
    assert ledger_green()
