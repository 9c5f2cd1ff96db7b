"""Withdrawals and payouts, the money side (payouts/services.py, payouts/selectors.py): SQLite and PostgreSQL.

Members earn their balance the way production does: an order of theirs is paid (the split runs on commit),
shipped, completed and released after the hold. With the default plan (80 % of the pool to the sharer) and
products at a 10 % commission rate, a sharer with no sponsor earns exactly 8 % of the price.
"""

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from itertools import pairwise

import pytest
from django.db.models import Max
from django.test import TestCase
from django.utils import timezone

from commissions.models import CommissionEntry, CommissionPlan, CompliancePolicy
from commissions.services import commission_release_due, plan_in_force, policy_in_force
from core.money import CENT
from payouts.models import MemberWallet, PayoutBatch, SandboxTransfer, Withdrawal, WithdrawalEvent
from payouts.providers import get_payout_provider
from payouts.selectors import member_balance, member_statement
from payouts.services import (
    PayoutError,
    payout_account_save,
    payout_batch_create,
    payout_batch_send,
    payout_batches_run,
    withdrawal_approve,
    withdrawal_cancel,
    withdrawal_record_result,
    withdrawal_reject,
    withdrawal_request,
)
from shops.models import Order, Shop
from shops.services import order_mark_completed, order_mark_shipped, order_refund, shop_listing_add
from tests.factories import MemberFactory, ProductFactory, ShopFactory, pay_order, place_order

pytestmark = pytest.mark.django_db

Status = Withdrawal.Status
Entry = CommissionEntry
SHARER_CUT = Decimal("0.08")  # 10 % commission rate × 80 % of the pool for the sharer (default plan)
SANDBOX_FAILURE = "account frozen (sandbox rule: amounts ending in .13 fail)"
SINCE = datetime(2000, 1, 1, tzinfo=UTC)


# --- Helpers (also used by test_concurrency.py) ----------------------------------------------------------


def ensure_plan_in_force() -> None:
    """The default policy and plan come from a data migration; a transactional test's flush removes them."""
    if policy_in_force() is None:
        version = (CompliancePolicy.objects.aggregate(v=Max("version"))["v"] or 0) + 1
        CompliancePolicy.objects.filter(is_active=True).update(is_active=False)
        CompliancePolicy.objects.create(
            version=version,
            max_levels=2,
            max_total_rate=Decimal("1.0000"),
            max_payout_ratio=Decimal("0.3000"),
            is_active=True,
            effective_from=SINCE,
        )
    if plan_in_force() is None:
        version = (CommissionPlan.objects.aggregate(v=Max("version"))["v"] or 0) + 1
        CommissionPlan.objects.create(
            version=version,
            name="80/20",
            level1_rate=Decimal("0.8000"),
            level2_rate=Decimal("0.2000"),
            is_activated=True,
            effective_from=SINCE,
        )


def earn(member, amount: Decimal) -> Order:
    """Give `member` `amount` of released commission: an order they shared is paid, shipped, completed, released."""
    ensure_plan_in_force()
    price = amount / SHARER_CUT
    assert price == price.quantize(CENT), f"{amount} is not 8 % of a price in cents"
    shop = Shop.objects.filter(owner=member).first() or ShopFactory(owner=member)
    product = ProductFactory(price=price)
    shop_listing_add(shop=shop, product=product)
    released_before = member_balance(member).released
    with TestCase.captureOnCommitCallbacks(execute=True):
        order = pay_order(place_order(shop, {product: 1}))
    order_mark_shipped(order=order)
    order_mark_completed(order=order)
    commission_release_due(now=timezone.now() + timedelta(days=8))
    assert member_balance(member).released == released_before + amount
    return order


def member_with_account(**kwargs):
    member = MemberFactory(**kwargs)
    payout_account_save(member=member, method="alipay", holder_name="王芳", alipay_account="li@example.com")
    return member


def payout_state() -> dict:
    """Everything a refused payout operation must leave alone."""
    return {
        "withdrawals": list(
            Withdrawal.objects.order_by("pk").values_list(
                "pk", "member_id", "amount", "status", "batch_id", "reason", "provider_reference", "decided_at"
            )
        ),
        "events": list(WithdrawalEvent.objects.order_by("pk").values_list("pk", "from_status", "to_status")),
        "wallets": list(MemberWallet.objects.order_by("pk").values_list("pk", "member_id")),
        "batches": list(PayoutBatch.objects.order_by("pk").values_list("pk", "status")),
        "transfers": list(SandboxTransfer.objects.order_by("pk").values_list("idempotency_key", "outcome")),
        "entries": list(Entry.objects.order_by("pk").values_list("pk", "status", "paid_at")),
    }


def events_of(withdrawal) -> list[tuple]:
    return list(
        WithdrawalEvent.objects.filter(withdrawal=withdrawal)
        .order_by("pk")
        .values_list("from_status", "to_status", "actor_id", "actor_label", "amount", "reason")
    )


def assert_event_chain(withdrawal) -> None:
    """Each event starts where the previous one ended, the first at nothing, the last at the current status."""
    withdrawal = Withdrawal.objects.get(pk=withdrawal.pk)
    moves = [(from_status, to_status) for from_status, to_status, *_rest in events_of(withdrawal)]
    assert moves, "no events"
    assert moves[0][0] == ""
    for (_from, to_status), (next_from, _to) in pairwise(moves):
        assert next_from == to_status
    assert moves[-1][1] == withdrawal.status
    assert {amount for *_rest, amount, _reason in events_of(withdrawal)} == {withdrawal.amount}


def pay_out(member, amount) -> Withdrawal:
    """Request, approve, batch and send one withdrawal through the sandbox provider; return it, fresh."""
    staff = get_or_create_staff()
    withdrawal = withdrawal_request(member=member, amount=amount)
    if withdrawal.status == Status.REQUESTED:
        withdrawal_approve(withdrawal=withdrawal, actor=staff)
    batch = payout_batch_create(provider_name="sandbox")
    payout_batch_send(batch=batch)
    return Withdrawal.objects.get(pk=withdrawal.pk)


def get_or_create_staff():
    from accounts.models import User

    return User.objects.filter(email="finance@example.com").first() or User.objects.create_user(
        email="finance@example.com", password="x", is_staff=True
    )


def available(member) -> Decimal:
    return member_balance(member).withdrawable


@pytest.fixture
def staff():
    return get_or_create_staff()


@pytest.fixture
def member():
    """A member with an Alipay account and 80.00 of released commission."""
    member = member_with_account()
    earn(member, Decimal("80.00"))
    return member


# --- Requests ---------------------------------------------------------------------------------------------


def test_a_request_takes_the_amount_out_of_the_balance(member):
    withdrawal = withdrawal_request(member=member, amount="30.00")

    withdrawal.refresh_from_db()
    assert withdrawal.status == Status.REQUESTED
    assert withdrawal.amount == Decimal("30.00")
    assert withdrawal.account["method"] == "alipay"
    assert withdrawal.account["alipay_account"] == "li@example.com"
    assert len(withdrawal.idempotency_key) == 32
    balance = member_balance(member)
    assert balance.released == Decimal("80.00")
    assert balance.in_flight == Decimal("30.00")
    assert balance.withdrawable == Decimal("50.00")
    assert events_of(withdrawal) == [("", Status.REQUESTED, member.user_id, "member", Decimal("30.00"), "")]


def test_the_whole_balance_can_be_withdrawn_and_not_a_cent_more(member):
    withdrawal_request(member=member, amount=Decimal("80.00"))
    before = payout_state()

    with pytest.raises(PayoutError) as error:
        withdrawal_request(member=member, amount=Decimal("10.00"))

    assert "amount" in error.value.message_dict
    assert "0" in error.value.message_dict["amount"][0]
    assert payout_state() == before
    assert available(member) == Decimal("0.00")


@pytest.mark.parametrize(
    ("amount", "message"),
    [
        ("9.99", "minimum"),
        ("0", "minimum"),
        ("-10.00", "minimum"),
        ("80.01", "at most 80.00"),
        ("1000", "at most 80.00"),
        ("abc", "such as"),
        ("", "such as"),
        ("12,50", "such as"),
        (None, "such as"),
        ("NaN", "whole cents"),
        ("Infinity", "whole cents"),
        ("-Infinity", "whole cents"),
        ("10.001", "whole cents"),
        (Decimal("10.005"), "whole cents"),
        ("10.0000001", "whole cents"),
    ],
)
def test_a_bad_amount_is_refused_with_a_clear_error_and_nothing_changed(member, amount, message):
    before = payout_state()
    balance_before = member_balance(member)

    with pytest.raises(PayoutError) as error:
        withdrawal_request(member=member, amount=amount)

    assert message in error.value.message_dict["amount"][0]
    assert payout_state() == before
    assert member_balance(member) == balance_before


@pytest.mark.parametrize("amount", ["1e30", "99999999999999999999999999999", "1e15", "1000000000000.00"])
def test_an_absurdly_large_amount_is_refused_with_a_clear_error(member, amount):
    before = payout_state()

    with pytest.raises(PayoutError) as error:
        withdrawal_request(member=member, amount=amount)

    assert "amount" in error.value.message_dict
    assert payout_state() == before


def test_amounts_in_other_spellings_of_whole_cents_are_accepted(member):
    withdrawal = withdrawal_request(member=member, amount=" 12.5 ")

    assert Withdrawal.objects.get(pk=withdrawal.pk).amount == Decimal("12.50")
    assert available(member) == Decimal("67.50")


def test_a_member_without_a_payout_account_is_refused_and_nothing_changes():
    member = MemberFactory()
    earn(member, Decimal("80.00"))
    before = payout_state()

    with pytest.raises(PayoutError) as error:
        withdrawal_request(member=member, amount="20.00")

    assert error.value.code == "no_account"
    assert payout_state() == before
    assert not MemberWallet.objects.filter(member=member).exists()
    assert available(member) == Decimal("80.00")


def test_a_member_with_no_commission_cannot_withdraw():
    member = member_with_account()
    before = payout_state()

    with pytest.raises(PayoutError) as error:
        withdrawal_request(member=member, amount="10.00")

    assert "at most 0" in error.value.message_dict["amount"][0]
    assert payout_state() == before


def test_too_many_open_requests_are_refused_until_one_finishes(member, staff, settings):
    # given: one requested, one approved and one processing (manual provider: waits for staff)
    settings.WITHDRAWAL_MAX_OPEN = 3
    requested = withdrawal_request(member=member, amount="10.00")
    processing = withdrawal_request(member=member, amount="10.00")
    withdrawal_approve(withdrawal=processing, actor=staff)
    payout_batch_create(provider_name="manual")
    approved = withdrawal_request(member=member, amount="10.00")
    withdrawal_approve(withdrawal=approved, actor=staff)
    assert Withdrawal.objects.get(pk=processing.pk).status == Status.PROCESSING
    before = payout_state()

    # when
    with pytest.raises(PayoutError) as error:
        withdrawal_request(member=member, amount="10.00")

    # then
    assert error.value.code == "too_many_open"
    assert payout_state() == before
    assert available(member) == Decimal("50.00")

    # and once one finishes (paid), a new request is possible
    withdrawal_record_result(withdrawal=processing, status=Status.PAID, actor=staff, actor_label="staff")
    assert withdrawal_request(member=member, amount="10.00").status == Status.REQUESTED
    assert Withdrawal.objects.get(pk=requested.pk).status == Status.REQUESTED
    assert available(member) == Decimal("40.00")


# --- Auto-approval, cancel, approve, reject ---------------------------------------------------------------


def test_requests_up_to_the_auto_approval_limit_are_approved_at_once(settings):
    settings.WITHDRAWAL_AUTO_APPROVE_MAX = Decimal("50.00")
    member = member_with_account()
    earn(member, Decimal("120.00"))

    at_limit = withdrawal_request(member=member, amount="50.00")
    over_limit = withdrawal_request(member=member, amount="50.01")

    at_limit.refresh_from_db()
    assert at_limit.status == Status.APPROVED
    assert at_limit.decided_at is not None
    assert events_of(at_limit) == [
        ("", Status.REQUESTED, member.user_id, "member", Decimal("50.00"), ""),
        (Status.REQUESTED, Status.APPROVED, None, "auto-approval", Decimal("50.00"), ""),
    ]
    assert Withdrawal.objects.get(pk=over_limit.pk).status == Status.REQUESTED
    assert len(events_of(over_limit)) == 1
    assert available(member) == Decimal("19.99")


def test_with_auto_approval_off_every_request_waits_for_staff(member, settings):
    settings.WITHDRAWAL_AUTO_APPROVE_MAX = Decimal("0.00")

    withdrawal = withdrawal_request(member=member, amount="10.00")

    assert Withdrawal.objects.get(pk=withdrawal.pk).status == Status.REQUESTED


def test_a_member_cancels_a_request_and_gets_the_money_back(member):
    withdrawal = withdrawal_request(member=member, amount="30.00")

    withdrawal_cancel(withdrawal=withdrawal, member=member)

    withdrawal.refresh_from_db()
    assert withdrawal.status == Status.CANCELLED
    assert withdrawal.decided_at is not None
    assert available(member) == Decimal("80.00")
    assert events_of(withdrawal)[-1] == (
        Status.REQUESTED,
        Status.CANCELLED,
        member.user_id,
        "member",
        Decimal("30.00"),
        "",
    )
    assert_event_chain(withdrawal)


@pytest.mark.parametrize("state", ["approved", "processing", "paid", "cancelled", "rejected"])
def test_only_a_request_not_yet_approved_can_be_cancelled(member, staff, state):
    withdrawal = withdrawal_request(member=member, amount="30.00")
    if state == "cancelled":
        withdrawal_cancel(withdrawal=withdrawal, member=member)
    elif state == "rejected":
        withdrawal_reject(withdrawal=withdrawal, actor=staff, reason="Name does not match.")
    else:
        withdrawal_approve(withdrawal=withdrawal, actor=staff)
        if state in ("processing", "paid"):
            batch = payout_batch_create(provider_name="manual" if state == "processing" else "sandbox")
            payout_batch_send(batch=batch)
    assert Withdrawal.objects.get(pk=withdrawal.pk).status == state
    before = payout_state()
    balance_before = member_balance(member)

    with pytest.raises(PayoutError) as error:
        withdrawal_cancel(withdrawal=withdrawal, member=member)

    assert error.value.code == "not_cancellable"
    assert payout_state() == before
    assert member_balance(member) == balance_before


def test_a_member_cannot_cancel_another_members_request(member):
    withdrawal = withdrawal_request(member=member, amount="30.00")
    someone_else = member_with_account()
    before = payout_state()

    with pytest.raises(PayoutError) as error:
        withdrawal_cancel(withdrawal=withdrawal, member=someone_else)

    assert error.value.code == "not_yours"
    assert payout_state() == before


def test_staff_approve_a_request(member, staff):
    withdrawal = withdrawal_request(member=member, amount="30.00")

    withdrawal_approve(withdrawal=withdrawal, actor=staff)

    withdrawal.refresh_from_db()
    assert withdrawal.status == Status.APPROVED
    assert withdrawal.decided_at is not None
    assert available(member) == Decimal("50.00")  # approved money is still out of the balance
    assert events_of(withdrawal)[-1] == (Status.REQUESTED, Status.APPROVED, staff.pk, "staff", Decimal("30.00"), "")


@pytest.mark.parametrize("reason", ["", "   ", None])
def test_a_rejection_needs_a_reason(member, staff, reason):
    withdrawal = withdrawal_request(member=member, amount="30.00")
    before = payout_state()

    with pytest.raises(PayoutError) as error:
        withdrawal_reject(withdrawal=withdrawal, actor=staff, reason=reason)

    assert "reason" in error.value.message_dict
    assert payout_state() == before
    assert available(member) == Decimal("50.00")


def test_a_rejection_returns_the_money_and_shows_the_reason(member, staff):
    withdrawal = withdrawal_request(member=member, amount="30.00")

    withdrawal_reject(withdrawal=withdrawal, actor=staff, reason="  The name on the account does not match.  ")

    withdrawal.refresh_from_db()
    assert withdrawal.status == Status.REJECTED
    assert withdrawal.reason == "The name on the account does not match."
    assert available(member) == Decimal("80.00")
    assert events_of(withdrawal)[-1] == (
        Status.REQUESTED,
        Status.REJECTED,
        staff.pk,
        "staff",
        Decimal("30.00"),
        "The name on the account does not match.",
    )
    assert_event_chain(withdrawal)


def test_an_approved_withdrawal_can_no_longer_be_rejected_or_approved_again(member, staff):
    withdrawal = withdrawal_request(member=member, amount="30.00")
    withdrawal_approve(withdrawal=withdrawal, actor=staff)
    before = payout_state()

    with pytest.raises(PayoutError) as rejected:
        withdrawal_reject(withdrawal=withdrawal, actor=staff, reason="Too late.")
    with pytest.raises(PayoutError) as approved:
        withdrawal_approve(withdrawal=withdrawal, actor=staff)

    assert rejected.value.code == approved.value.code == "illegal_transition"
    assert payout_state() == before


# --- Batches and providers ---------------------------------------------------------------------------------


def test_a_withdrawal_goes_requested_approved_processing_paid_with_an_event_at_each_step(member, staff):
    withdrawal = withdrawal_request(member=member, amount="30.00")
    withdrawal_approve(withdrawal=withdrawal, actor=staff)

    batch = payout_batch_create(provider_name="sandbox", actor=staff)
    outcome = payout_batch_send(batch=batch)

    withdrawal.refresh_from_db()
    assert outcome == {"paid": 1, "failed": 0, "pending": 0}
    assert withdrawal.status == Status.PAID
    assert withdrawal.batch_id == batch.pk
    assert withdrawal.paid_at is not None
    transfer = SandboxTransfer.objects.get()
    assert transfer.idempotency_key == withdrawal.idempotency_key
    assert transfer.amount == Decimal("30.00")
    assert withdrawal.provider_reference == f"sbx_po_{transfer.pk}"
    assert PayoutBatch.objects.get(pk=batch.pk).status == PayoutBatch.Status.DONE
    amount = Decimal("30.00")
    assert events_of(withdrawal) == [
        ("", Status.REQUESTED, member.user_id, "member", amount, ""),
        (Status.REQUESTED, Status.APPROVED, staff.pk, "staff", amount, ""),
        (Status.APPROVED, Status.PROCESSING, staff.pk, "staff", amount, ""),
        (Status.PROCESSING, Status.PAID, None, "sandbox", amount, ""),
    ]
    balance = member_balance(member)
    assert (balance.in_flight, balance.paid_out, balance.withdrawable) == (
        Decimal("0.00"),
        Decimal("30.00"),
        Decimal("50.00"),
    )


def test_a_batch_takes_only_approved_withdrawals():
    staff = get_or_create_staff()
    members = [member_with_account() for _ in range(3)]
    for member in members:
        earn(member, Decimal("80.00"))
    approved = withdrawal_request(member=members[0], amount="20.00")
    withdrawal_approve(withdrawal=approved, actor=staff)
    requested = withdrawal_request(member=members[1], amount="20.00")
    cancelled = withdrawal_request(member=members[2], amount="20.00")
    withdrawal_cancel(withdrawal=cancelled, member=members[2])

    batch = payout_batch_create(provider_name="sandbox")

    assert list(batch.withdrawals.values_list("pk", flat=True)) == [approved.pk]
    assert Withdrawal.objects.get(pk=requested.pk).status == Status.REQUESTED
    assert Withdrawal.objects.get(pk=cancelled.pk).status == Status.CANCELLED
    assert payout_batch_create(provider_name="sandbox") is None


def test_a_batch_processed_twice_pays_nobody_twice(staff):
    members = [member_with_account() for _ in range(3)]
    for member in members:
        earn(member, Decimal("80.00"))
    withdrawals = [withdrawal_request(member=member, amount="40.00") for member in members]
    withdrawals.append(withdrawal_request(member=members[0], amount="20.13"))  # fails at the sandbox
    for withdrawal in withdrawals:
        withdrawal_approve(withdrawal=withdrawal, actor=staff)
    batch = payout_batch_create(provider_name="sandbox")
    first = payout_batch_send(batch=batch)
    after_first = payout_state()
    balances = [member_balance(member) for member in members]

    second = payout_batch_send(batch=batch)
    runs = payout_batches_run()

    assert first == {"paid": 3, "failed": 1, "pending": 0}
    assert second == {"paid": 0, "failed": 0, "pending": 0}
    assert runs == 0
    assert payout_state() == after_first
    assert [member_balance(member) for member in members] == balances
    assert SandboxTransfer.objects.count() == 4
    assert set(SandboxTransfer.objects.values_list("idempotency_key", flat=True)) == {
        w.idempotency_key for w in withdrawals
    }
    for withdrawal in withdrawals:
        assert_event_chain(withdrawal)
        assert len(events_of(withdrawal)) == 4


def test_a_send_interrupted_after_the_provider_paid_is_resent_without_paying_twice(member, staff):
    # given: the worker called the provider, then died before recording the answer
    withdrawal = withdrawal_request(member=member, amount="30.00")
    withdrawal_approve(withdrawal=withdrawal, actor=staff)
    batch = payout_batch_create(provider_name="sandbox")
    withdrawal.refresh_from_db()
    get_payout_provider("sandbox").send(withdrawal, idempotency_key=withdrawal.idempotency_key)
    assert Withdrawal.objects.get(pk=withdrawal.pk).status == Status.PROCESSING

    # when: the periodic task resends the open batch
    payout_batches_run()

    # then
    transfer = SandboxTransfer.objects.get()
    withdrawal.refresh_from_db()
    assert withdrawal.status == Status.PAID
    assert withdrawal.provider_reference == f"sbx_po_{transfer.pk}"
    assert PayoutBatch.objects.get(pk=batch.pk).status == PayoutBatch.Status.DONE
    assert available(member) == Decimal("50.00")


def test_a_provider_failure_returns_the_money_with_the_reason_and_a_new_request_is_possible(member, staff):
    withdrawal = withdrawal_request(member=member, amount="20.13")
    withdrawal_approve(withdrawal=withdrawal, actor=staff)
    batch = payout_batch_create(provider_name="sandbox")

    outcome = payout_batch_send(batch=batch)

    withdrawal.refresh_from_db()
    assert outcome == {"paid": 0, "failed": 1, "pending": 0}
    assert withdrawal.status == Status.FAILED
    assert withdrawal.reason == SANDBOX_FAILURE
    assert withdrawal.failed_at is not None
    assert withdrawal.paid_at is None
    assert events_of(withdrawal)[-1] == (
        Status.PROCESSING,
        Status.FAILED,
        None,
        "sandbox",
        Decimal("20.13"),
        SANDBOX_FAILURE,
    )
    assert SandboxTransfer.objects.get().outcome == SandboxTransfer.Outcome.FAILED
    balance = member_balance(member)
    assert (balance.in_flight, balance.paid_out, balance.withdrawable) == (
        Decimal("0.00"),
        Decimal("0.00"),
        Decimal("80.00"),
    )
    assert not Entry.objects.filter(beneficiary=member, status=Entry.Status.PAID).exists()
    assert PayoutBatch.objects.get(pk=batch.pk).status == PayoutBatch.Status.DONE

    # and the whole balance can be asked for again, and paid
    again = pay_out(member, "80.00")
    assert again.status == Status.PAID
    assert available(member) == Decimal("0.00")


def test_with_the_manual_provider_a_withdrawal_stays_processing_until_staff_record_the_result(member, staff):
    withdrawal = withdrawal_request(member=member, amount="30.00")
    withdrawal_approve(withdrawal=withdrawal, actor=staff)
    batch = payout_batch_create(provider_name="manual")

    first = payout_batch_send(batch=batch)
    second = payout_batch_send(batch=batch)

    assert first == second == {"paid": 0, "failed": 0, "pending": 1}
    assert Withdrawal.objects.get(pk=withdrawal.pk).status == Status.PROCESSING
    assert PayoutBatch.objects.get(pk=batch.pk).status == PayoutBatch.Status.PROCESSING
    assert len(events_of(withdrawal)) == 3
    assert available(member) == Decimal("50.00")
    assert not SandboxTransfer.objects.exists()

    # when staff record the bank's answer
    with TestCase.captureOnCommitCallbacks(execute=True):
        assert withdrawal_record_result(
            withdrawal=withdrawal, status=Status.PAID, reference="ALIPAY-2024-0001", actor=staff, actor_label="staff"
        )

    withdrawal.refresh_from_db()
    assert withdrawal.status == Status.PAID
    assert withdrawal.provider_reference == "ALIPAY-2024-0001"
    assert PayoutBatch.objects.get(pk=batch.pk).status == PayoutBatch.Status.DONE  # its last result closed it
    assert events_of(withdrawal)[-1] == (Status.PROCESSING, Status.PAID, staff.pk, "staff", Decimal("30.00"), "")
    after = payout_state()
    # recording it again (a second upload of the same file) changes nothing
    assert not withdrawal_record_result(withdrawal=withdrawal, status=Status.FAILED, reason="late", actor=staff)
    assert payout_state() == after
    assert available(member) == Decimal("50.00")


def test_staff_record_a_manual_failure_and_the_money_comes_back(member, staff):
    withdrawal = withdrawal_request(member=member, amount="30.00")
    withdrawal_approve(withdrawal=withdrawal, actor=staff)
    batch = payout_batch_create(provider_name="manual")
    payout_batch_send(batch=batch)

    withdrawal_record_result(withdrawal=withdrawal, status=Status.FAILED, reason="Card closed.", actor=staff)

    withdrawal.refresh_from_db()
    assert withdrawal.status == Status.FAILED
    assert withdrawal.reason == "Card closed."
    assert events_of(withdrawal)[-1] == (
        Status.PROCESSING,
        Status.FAILED,
        staff.pk,
        "",
        Decimal("30.00"),
        "Card closed.",
    )
    assert available(member) == Decimal("80.00")


def test_a_result_that_is_neither_paid_nor_failed_is_refused(member, staff):
    withdrawal = withdrawal_request(member=member, amount="30.00")
    withdrawal_approve(withdrawal=withdrawal, actor=staff)
    payout_batch_create(provider_name="manual")
    before = payout_state()

    with pytest.raises(PayoutError) as error:
        withdrawal_record_result(withdrawal=withdrawal, status="done", actor=staff)

    assert error.value.code == "bad_result"
    assert payout_state() == before


def test_a_result_for_a_withdrawal_not_sent_yet_is_ignored(member, staff):
    withdrawal = withdrawal_request(member=member, amount="30.00")
    withdrawal_approve(withdrawal=withdrawal, actor=staff)
    before = payout_state()

    assert not withdrawal_record_result(withdrawal=withdrawal, status=Status.PAID, actor=staff)

    assert payout_state() == before


# --- Commission entries, clawbacks, statement ---------------------------------------------------------------


def entry_statuses(member) -> list[tuple]:
    return list(Entry.objects.filter(beneficiary=member).order_by("pk").values_list("kind", "amount", "status"))


def test_when_paid_the_commission_entries_the_payout_covers_become_paid():
    member = member_with_account()
    earn(member, Decimal("30.00"))
    earn(member, Decimal("50.00"))

    first = pay_out(member, "30.00")

    assert first.status == Status.PAID
    assert entry_statuses(member) == [
        (Entry.Kind.COMMISSION, Decimal("30.00"), Entry.Status.PAID),
        (Entry.Kind.COMMISSION, Decimal("50.00"), Entry.Status.AVAILABLE),
    ]
    assert Entry.objects.get(beneficiary=member, status=Entry.Status.PAID).paid_at == first.paid_at
    assert member_balance(member).released == Decimal("80.00")  # labels do not move the balance
    assert available(member) == Decimal("50.00")

    pay_out(member, "50.00")

    assert entry_statuses(member) == [
        (Entry.Kind.COMMISSION, Decimal("30.00"), Entry.Status.PAID),
        (Entry.Kind.COMMISSION, Decimal("50.00"), Entry.Status.PAID),
    ]
    assert available(member) == Decimal("0.00")


def test_a_failed_or_pending_payout_labels_no_entry_paid(member, staff):
    pay_out(member, "20.13")
    pending = withdrawal_request(member=member, amount="60.00")
    withdrawal_approve(withdrawal=pending, actor=staff)
    payout_batch_send(batch=payout_batch_create(provider_name="manual"))

    assert entry_statuses(member) == [(Entry.Kind.COMMISSION, Decimal("80.00"), Entry.Status.AVAILABLE)]


def test_entries_covered_by_several_payouts_together_become_paid():
    member = member_with_account()
    earn(member, Decimal("30.00"))
    earn(member, Decimal("30.00"))

    pay_out(member, "40.00")
    pay_out(member, "20.00")

    assert available(member) == Decimal("0.00")
    assert entry_statuses(member) == [
        (Entry.Kind.COMMISSION, Decimal("30.00"), Entry.Status.PAID),
        (Entry.Kind.COMMISSION, Decimal("30.00"), Entry.Status.PAID),
    ]


def sell(member, price: str, quantity: int = 1, *, refund_before_release: int = 0, release: bool = True) -> Order:
    """An order of `quantity` × a product at `price` (10 % commission rate) shared by `member`, paid, partly
    refunded before release (`refund_before_release` units) if asked, then (unless `release` is false: its
    commission stays on hold) shipped, completed and released."""
    ensure_plan_in_force()
    shop = Shop.objects.filter(owner=member).first() or ShopFactory(owner=member)
    product = ProductFactory(price=Decimal(price), stock=1000)
    shop_listing_add(shop=shop, product=product)
    with TestCase.captureOnCommitCallbacks(execute=True):
        order = pay_order(place_order(shop, {product: quantity}))
    if refund_before_release:
        line = order.lines.get()
        with TestCase.captureOnCommitCallbacks(execute=True):
            order_refund(order=order, quantities={line.pk: refund_before_release}, reason="Some came back")
    if not release:
        return order
    order_mark_shipped(order=Order.objects.get(pk=order.pk))
    order_mark_completed(order=Order.objects.get(pk=order.pk))
    commission_release_due(now=timezone.now() + timedelta(days=8))
    return order


def test_a_payout_of_the_whole_balance_labels_every_entry_paid_also_a_reversal_after_one_that_did_not_fit():
    """Issue #19: 13.95 released, then a 7.20 commission and its −1.98 reversal (11 of 40 units refunded before
    release); the member withdraws the whole 19.17. 13.95 + 7.20 = 21.15 is more than 19.17, but with the reversal
    the running total is 19.17 again: every entry is covered. The old loop stopped at the 7.20."""
    member = member_with_account()
    sell(member, "174.40")  # pool 17.44: 13.95 for the sharer
    sell(member, "2.25", 40, refund_before_release=11)  # pool 9.00: 7.20, less 7.20 × 24.75 / 90.00 = 1.98
    assert entry_statuses(member) == [
        (Entry.Kind.COMMISSION, Decimal("13.95"), Entry.Status.AVAILABLE),
        (Entry.Kind.COMMISSION, Decimal("7.20"), Entry.Status.AVAILABLE),
        (Entry.Kind.REVERSAL, Decimal("-1.98"), Entry.Status.AVAILABLE),
    ]
    assert available(member) == Decimal("19.17")

    withdrawal = pay_out(member, "19.17")

    assert withdrawal.status == Status.PAID
    assert available(member) == Decimal("0.00")
    assert entry_statuses(member) == [
        (Entry.Kind.COMMISSION, Decimal("13.95"), Entry.Status.PAID),
        (Entry.Kind.COMMISSION, Decimal("7.20"), Entry.Status.PAID),
        (Entry.Kind.REVERSAL, Decimal("-1.98"), Entry.Status.PAID),
    ]
    assert set(Entry.objects.filter(beneficiary=member).values_list("paid_at", flat=True)) == {withdrawal.paid_at}


def test_an_entry_only_partly_covered_stays_available_with_what_comes_after_it():
    # given: 13.95 released, then a 7.20 commission with its −1.98 reversal (5.22 net)
    member = member_with_account()
    sell(member, "174.40")
    sell(member, "2.25", 40, refund_before_release=11)

    # when: 15.00 is paid out: the 13.95 and 1.05 of the 7.20; with its reversal the 7.20 would need 19.17
    pay_out(member, "15.00")

    # then: the 7.20 is only partly covered, so it stays available, and so does its reversal after it
    assert entry_statuses(member) == [
        (Entry.Kind.COMMISSION, Decimal("13.95"), Entry.Status.PAID),
        (Entry.Kind.COMMISSION, Decimal("7.20"), Entry.Status.AVAILABLE),
        (Entry.Kind.REVERSAL, Decimal("-1.98"), Entry.Status.AVAILABLE),
    ]
    assert available(member) == Decimal("4.17")  # the labels do not move the balance


def test_a_clawback_after_a_covered_entry_is_covered_once_the_payouts_reach_the_running_total(staff):
    # given: 80.00 and 40.00 released, 100.00 paid out: the 80.00 is covered, the 40.00 only partly
    member = member_with_account()
    order = earn(member, Decimal("80.00"))
    earn(member, Decimal("40.00"))
    pay_out(member, "100.00")
    assert [status for _kind, _amount, status in entry_statuses(member)] == [Entry.Status.PAID, Entry.Status.AVAILABLE]

    # when: the 80.00 order is refunded: a −80.00 clawback; the running total is 40.00, within the 100.00 paid
    with TestCase.captureOnCommitCallbacks(execute=True):
        order_refund(order=order, actor=staff, reason="Returned")
    earn(member, Decimal("80.00"))  # the balance (−60.00) back above the minimum: 20.00
    pay_out(member, "20.00")

    # then: everything up to the running total of 120.00 (80 + 40 − 80 + 80) is covered by the 120.00 paid out
    assert entry_statuses(member) == [
        (Entry.Kind.COMMISSION, Decimal("80.00"), Entry.Status.PAID),
        (Entry.Kind.COMMISSION, Decimal("40.00"), Entry.Status.PAID),
        (Entry.Kind.CLAWBACK, Decimal("-80.00"), Entry.Status.PAID),
        (Entry.Kind.COMMISSION, Decimal("80.00"), Entry.Status.PAID),
    ]
    assert available(member) == Decimal("0.00")


def test_a_clawback_after_payout_leaves_a_negative_balance_that_the_next_commission_nets_off(staff):
    # given: 80.00 earned and paid out
    member = member_with_account()
    order = earn(member, Decimal("80.00"))
    assert pay_out(member, "80.00").status == Status.PAID

    # when: the order is refunded after the payout
    with TestCase.captureOnCommitCallbacks(execute=True):
        order_refund(order=order, actor=staff, reason="Returned")

    # then: a clawback, and the balance is negative
    assert entry_statuses(member) == [
        (Entry.Kind.COMMISSION, Decimal("80.00"), Entry.Status.PAID),
        (Entry.Kind.CLAWBACK, Decimal("-80.00"), Entry.Status.AVAILABLE),
    ]
    balance = member_balance(member)
    assert balance.clawed_back == Decimal("80.00")
    assert balance.released == Decimal("0.00")
    assert balance.paid_out == Decimal("80.00")
    assert balance.withdrawable == Decimal("-80.00")
    assert member_statement(member)[-1].balance == Decimal("-80.00")
    before = payout_state()
    with pytest.raises(PayoutError) as error:
        withdrawal_request(member=member, amount="10.00")
    assert "at most 0" in error.value.message_dict["amount"][0]
    assert payout_state() == before

    # and the next released commission nets it off: balance = new commission − clawback
    earn(member, Decimal("50.00"))
    assert available(member) == Decimal("50.00") - Decimal("80.00")
    with pytest.raises(PayoutError):
        withdrawal_request(member=member, amount="10.00")

    earn(member, Decimal("120.00"))
    assert available(member) == Decimal("90.00")
    assert member_statement(member)[-1].balance == Decimal("90.00")

    assert pay_out(member, "90.00").status == Status.PAID
    assert available(member) == Decimal("0.00")
    assert member_balance(member).paid_out == Decimal("170.00")
    assert not Entry.objects.filter(beneficiary=member, status=Entry.Status.AVAILABLE).exists()


def test_a_refund_before_release_reverses_pending_commission_and_leaves_the_balance_alone():
    member = member_with_account()
    earn(member, Decimal("80.00"))
    ensure_plan_in_force()
    shop = Shop.objects.get(owner=member)
    product = ProductFactory(price=Decimal("500.00"))
    shop_listing_add(shop=shop, product=product)
    with TestCase.captureOnCommitCallbacks(execute=True):
        order = pay_order(place_order(shop, {product: 1}))
    assert member_balance(member).pending == Decimal("40.00")

    with TestCase.captureOnCommitCallbacks(execute=True):
        order_refund(order=order, reason="Changed mind")

    balance = member_balance(member)
    assert (balance.pending, balance.released, balance.withdrawable) == (
        Decimal("0.00"),
        Decimal("80.00"),
        Decimal("80.00"),
    )


def test_the_statement_lists_every_credit_and_debit_and_ends_at_the_available_balance(staff):
    member = member_with_account()
    order = earn(member, Decimal("80.00"))
    earn(member, Decimal("40.00"))
    pay_out(member, "30.00")  # paid
    pay_out(member, "20.13")  # failed: returned
    rejected = withdrawal_request(member=member, amount="15.00")
    withdrawal_reject(withdrawal=rejected, actor=staff, reason="Check the name.")
    cancelled = withdrawal_request(member=member, amount="11.00")
    withdrawal_cancel(withdrawal=cancelled, member=member)
    withdrawal_request(member=member, amount="12.00")  # in flight
    with TestCase.captureOnCommitCallbacks(execute=True):
        order_refund(order=order, actor=staff, reason="Returned")  # clawback of 80.00 after release

    lines = member_statement(member)

    amounts = sorted(line.amount for line in lines)
    assert amounts == sorted(
        [
            Decimal("80.00"),
            Decimal("40.00"),
            Decimal("-80.00"),
            Decimal("-30.00"),
            Decimal("-20.13"),
            Decimal("20.13"),
            Decimal("-15.00"),
            Decimal("15.00"),
            Decimal("-11.00"),
            Decimal("11.00"),
            Decimal("-12.00"),
        ]
    )
    running = Decimal("0.00")
    for line in lines:
        running += line.amount
        assert line.balance == running
    assert lines[-1].balance == member_balance(member).withdrawable == Decimal("-2.00")


def test_the_statement_dates_money_when_it_moved_and_never_runs_negative_without_a_clawback():
    """Issue #19: a release run with a clock ahead of the real one (the demo's "as if the hold had passed", the
    tests' `now=`) stamped credits in the future, so the statement listed them after today and after the
    withdrawals drawn from them: the running balance went negative with nothing clawed back."""
    member = member_with_account()
    earn(member, Decimal("80.00"))
    pay_out(member, "50.00")
    earn(member, Decimal("40.00"))
    withdrawal_request(member=member, amount="70.00")

    lines = member_statement(member)
    now = timezone.now()

    assert [(line.amount, line.balance) for line in lines] == [
        (Decimal("80.00"), Decimal("80.00")),
        (Decimal("-50.00"), Decimal("30.00")),
        (Decimal("40.00"), Decimal("70.00")),
        (Decimal("-70.00"), Decimal("0.00")),
    ]
    assert all(line.at <= now for line in lines)
    assert [line.at for line in lines] == sorted(line.at for line in lines)
    assert lines[-1].balance == available(member)


def test_the_statement_of_a_member_with_nothing_is_empty():
    member = member_with_account()

    assert member_statement(member) == []
    assert available(member) == Decimal("0.00")


def test_every_withdrawal_has_an_unbroken_chain_of_events(staff, settings):
    settings.WITHDRAWAL_AUTO_APPROVE_MAX = Decimal("20.00")
    member = member_with_account()
    earn(member, Decimal("200.00"))
    paid = pay_out(member, "30.00")
    failed = pay_out(member, "20.13")
    auto = pay_out(member, "20.00")
    rejected = withdrawal_request(member=member, amount="25.00")
    withdrawal_reject(withdrawal=rejected, actor=staff, reason="No.")
    cancelled = withdrawal_request(member=member, amount="25.00")
    withdrawal_cancel(withdrawal=cancelled, member=member)

    for withdrawal in (paid, failed, auto, rejected, cancelled):
        assert_event_chain(withdrawal)
    assert [len(events_of(w)) for w in (paid, failed, auto, rejected, cancelled)] == [4, 4, 4, 2, 2]
    assert WithdrawalEvent.objects.count() == 16
