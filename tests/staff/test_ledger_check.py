"""The ledger checker (staff/ledger_check.py, `manage.py check_ledger`): clean data passes, each corruption is
found by its check and nothing else."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django.utils import timezone

from accounts.models import ApprovalRequest
from commissions.models import CommissionEntry as Entry
from commissions.models import OrderSplit, RefundApplied, SplitQueue
from networks import services as networks_services
from networks.connectors.base import OrderStatus, ReportedOrder
from networks.models import ExternalOrder, Network
from networks.services import tracking_id_for
from payouts.adjustments import balance_adjustment_request
from payouts.models import BalanceAdjustment, SandboxTransfer, Withdrawal, WithdrawalEvent
from payouts.services import payout_batch_create, payout_batch_send, withdrawal_approve, withdrawal_request
from referrals.models import Member
from shops.models import Order
from shops.services import order_refund
from staff.ledger_check import ledger_check
from staff.models import JobRun
from staff.tasks import ledger_check_task
from tests.factories import (
    MemberFactory,
    ProductFactory,
    UserFactory,
    after_commit,
    pay_order,
    place_order,
    shop_with_products,
)
from tests.payouts.helpers import bank_account

pytestmark = pytest.mark.django_db

D = Decimal


@pytest.fixture
def world(django_capture_on_commit_callbacks, staff_user):
    """Paid orders split through the services (sponsor > sharer), one refunded in full, one in part, the sharer's
    commission released and partly withdrawn and paid out through the sandbox."""
    sponsor = MemberFactory()
    sharer = MemberFactory(sponsor=sponsor)
    product = ProductFactory(price=D("100.00"), commission_rate=D("0.2000"), stock=50)
    shop = shop_with_products(product, owner=sharer)
    with django_capture_on_commit_callbacks(execute=True):
        kept = pay_order(place_order(shop, {product: 3}))
        refunded = pay_order(place_order(shop, {product: 1}))
        partly = pay_order(place_order(shop, {product: 2}))
    with django_capture_on_commit_callbacks(execute=True):
        order_refund(order=refunded, quantities=None, actor=staff_user, reason="broken")
        line = partly.lines.get()
        order_refund(order=partly, quantities={line.pk: 1}, actor=staff_user, reason="one broken")
    # released as the periodic release would (kept order completed past the hold)
    Entry.objects.filter(order=kept, status=Entry.Status.PENDING).update(
        status=Entry.Status.AVAILABLE, released_at=timezone.now()
    )
    bank_account(sharer)
    # another finance user's goodwill credit (payouts/adjustments.py): part of what the sharer may withdraw
    adjuster = UserFactory(is_staff=True, is_superuser=True)
    balance_adjustment_request(
        member=sharer, amount=D("2.00"), member_note="Goodwill", internal_note="Ticket 1", actor=adjuster, key="w"
    )
    withdrawal = withdrawal_request(member=sharer, amount=D("10.00"))
    withdrawal_approve(withdrawal=withdrawal, actor=staff_user)
    payout_batch_send(batch=payout_batch_create(provider_name="sandbox"))
    assert Withdrawal.objects.get(pk=withdrawal.pk).status == Withdrawal.Status.PAID
    # A sale on an external network, reported paid and then settled with a lower commission (issue #12).
    network = Network.objects.get_or_create(code="sandbox", defaults={"name": "Sandbox network"})[0]
    tracking = tracking_id_for(network=network, member=sharer).value
    at = timezone.now() - timedelta(days=1)
    for hours, commission, status in ((0, "12.00", OrderStatus.PAID), (1, "10.00", OrderStatus.SETTLED)):
        after_commit(networks_services.external_order_record)(
            network=network,
            reported=ReportedOrder(
                external_order_id="TB1", line_id="1", tracking_id=tracking, product_id="P1", title="Tea",
                quantity=1, paid_amount=D("100.00"), commission=D(commission), status=status, paid_at=at,
                updated_at=at + timedelta(hours=hours),
                settled_at=at if status == OrderStatus.SETTLED else None,
            ),
            source="sync",
        )  # fmt: skip
    external = ExternalOrder.objects.get()
    return {
        "kept": kept, "refunded": refunded, "partly": partly, "sharer": sharer, "withdrawal": withdrawal,
        "external": external,
    }  # fmt: skip


def _failing(results) -> dict[str, list[str]]:
    return {result.name: result.violations for result in results if not result.passed}


def test_clean_data_passes_every_check(world, capsys):
    results = ledger_check()

    assert _failing(results) == {}
    # Nothing to reconcile in a world without a payment rail: no bills, no runs (tests/staff/test_reconciliation.py).
    nothing_to_check = ("stock never below zero", "reconciliation with the providers' bills")
    assert all(result.checked > 0 for result in results if result.name not in nothing_to_check)
    call_command("check_ledger")  # no CommandError: exit status 0
    assert "FAIL" not in capsys.readouterr().out


def test_a_share_off_by_a_cent_is_found(world):
    entry = Entry.objects.filter(order=world["kept"], kind=Entry.Kind.COMMISSION, level=1).get()
    Entry.objects.filter(pk=entry.pk).update(amount=entry.amount + D("0.01"))

    failing = _failing(ledger_check())

    assert list(failing) == ["split lines reconcile"]
    assert f"order line {entry.order_line_id}" in failing["split lines reconcile"][0]
    with pytest.raises(CommandError, match="1 violation"):
        call_command("check_ledger")


def test_an_external_share_off_by_a_cent_is_found(world):
    entry = Entry.objects.filter(external_line=world["external"], level=1).order_by("pk").first()
    Entry.objects.filter(pk=entry.pk).update(amount=entry.amount + D("0.01"))

    failing = _failing(ledger_check())

    assert list(failing) == ["external lines reconcile"]
    assert "level 1 holds" in failing["external lines reconcile"][0]


def test_an_external_report_not_written_to_the_ledger_is_found(world):
    ExternalOrder.objects.filter(pk=world["external"].pk).update(commission=D("9.00"))

    failing = _failing(ledger_check())

    assert list(failing) == ["external lines reconcile"]
    assert "latest report is not in the ledger" in failing["external lines reconcile"][0]


def test_an_external_line_waiting_for_the_ledger_moments_ago_is_not_a_violation(world):
    # the network reported a change; its mark says the ledger will write it after the commit
    ExternalOrder.objects.filter(pk=world["external"].pk).update(commission=D("9.00"), ledger_marked_at=timezone.now())

    assert _failing(ledger_check()) == {}


def test_an_external_line_marked_for_the_ledger_long_ago_is_found(world):
    marked = timezone.now() - timedelta(hours=1)
    ExternalOrder.objects.filter(pk=world["external"].pk).update(commission=D("9.00"), ledger_marked_at=marked)

    failing = _failing(ledger_check())

    assert list(failing) == ["external lines reconcile"]
    assert "marked for the ledger more than 0:15:00 ago, not written yet" in failing["external lines reconcile"][0]


def test_a_pool_that_does_not_match_the_line_is_found(world):
    Entry.objects.filter(order=world["kept"]).update(base=D("1.00"))

    assert "net × rate" in _failing(ledger_check())["split lines reconcile"][0]


def test_a_paid_order_neither_split_nor_queued_is_found(world):
    order = world["refunded"]
    Entry.objects.filter(order=order).delete()
    OrderSplit.objects.filter(order=order).delete()
    Order.objects.filter(pk=order.pk).update(paid_at=timezone.now() - timedelta(hours=1))

    failing = _failing(ledger_check())

    assert failing == {
        "paid orders are split": [f"order {order.number}: paid more than 0:15:00 ago, not split and not queued"]
    }
    SplitQueue.objects.create(order=order)  # queued: the split will come
    assert _failing(ledger_check()) == {}


def test_refunds_not_reversed_are_found(world):
    refunded, partly = world["refunded"], world["partly"]
    # a reversal lost on the fully refunded order, and the partial refund never applied
    Entry.objects.filter(order=refunded, kind=Entry.Kind.REVERSAL, level=1).delete()
    RefundApplied.objects.filter(refund__order=partly).delete()

    violations = _failing(ledger_check())["refunds reverse commission"]

    assert any("never written" in violation for violation in violations)
    assert any("refunded in full, but member" in violation for violation in violations)


def test_commission_on_a_cancelled_order_is_found(world):
    Order.objects.filter(pk=world["kept"].pk).update(status=Order.Status.CANCELLED)

    violations = _failing(ledger_check())["refunds reverse commission"]

    assert violations == [f"order {world['kept'].number}: cancelled, yet it carries member commission"]


def test_payouts_paid_twice_or_beyond_what_was_released_are_found(world):
    withdrawal = world["withdrawal"]
    WithdrawalEvent.objects.create(
        withdrawal=withdrawal, from_status="processing", to_status="paid", amount=withdrawal.amount
    )
    SandboxTransfer.objects.create(idempotency_key="stray-key", amount=D("5.00"), outcome="paid")
    Withdrawal.objects.create(
        member=world["sharer"], amount=D("999.00"), status=Withdrawal.Status.REQUESTED, account={}, idempotency_key="x"
    )
    Entry.objects.filter(beneficiary=world["sharer"], status=Entry.Status.AVAILABLE).update(status=Entry.Status.PAID)

    violations = _failing(ledger_check())["payouts"]

    assert any("marked paid 2 times" in violation for violation in violations)
    assert any("stray-key" in violation for violation in violations)
    assert any("more than the" in violation for violation in violations)
    assert any("labelled paid, but only 10.00 paid out" in violation for violation in violations)


def test_a_withdrawal_beyond_commission_and_adjustments_and_an_adjustment_unlike_its_approval_are_found(
    world, staff_user
):
    # the sharer's credit is taken away behind the service's back: their withdrawal now draws on nothing
    credit = BalanceAdjustment.objects.get()
    asked = ApprovalRequest.objects.create(
        action=BalanceAdjustment.APPROVAL_ACTION, target_type="referrals.member", target_id=str(credit.member_id),
        target_label="x", summary="x", amount=D("1.00"), reason="x", requested_by=credit.requested_by,
        status=ApprovalRequest.Status.APPROVED, decided_by=UserFactory(is_staff=True),
    )  # fmt: skip
    BalanceAdjustment.objects.filter(pk=credit.pk).update(approval=asked, approved_by=asked.decided_by)
    Withdrawal.objects.create(
        member=world["sharer"], amount=D("999.00"), status=Withdrawal.Status.REQUESTED, account={}, idempotency_key="x"
    )

    failing = _failing(ledger_check())

    assert any("staff adjustments" in violation for violation in failing["payouts"])
    assert failing["staff balance adjustments"] == [
        f"balance adjustment {credit.pk}: does not match its approval request (status, amount or people)"
    ]


def test_a_corrupt_tree_is_found(world):
    member = Member.objects.exclude(parent=None).first()
    Member.objects.filter(pk=member.pk).update(lft=member.lft + 1000)

    assert list(_failing(ledger_check())) == ["referral tree"]


def test_the_nightly_task_logs_violations_and_records_its_run(world, caplog):
    assert ledger_check_task.delay().get() == 0
    Entry.objects.filter(order=world["kept"], level=2).update(amount=D("0.00"))

    assert ledger_check_task.delay().get() == 1
    assert "Ledger check split lines reconcile: 1 violation(s)" in caplog.text
    assert JobRun.objects.get(name="ledger_check").last_result == "1 violation(s)"


@pytest.mark.postgres
def test_duplicates_and_negative_stock_are_found_even_without_the_constraints(world):
    # The unique keys and the stock check constraint make these impossible; the checker does not rely on them.
    with connection.cursor() as cursor:
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")  # no deferred foreign-key checks pending: ALTER TABLE may run
        cursor.execute("DROP INDEX commissions_split_once")
        cursor.execute("ALTER TABLE shops_product DROP CONSTRAINT shops_product_stock_not_negative")
        cursor.execute("ALTER TABLE shops_product DROP CONSTRAINT IF EXISTS shops_product_stock_check")
    entry = Entry.objects.filter(order=world["kept"], level=1).get()
    entry.pk = None
    entry.save()
    product = ProductFactory()
    with connection.cursor() as cursor:
        cursor.execute("UPDATE shops_product SET stock = -1 WHERE id = %s", [product.pk])

    failing = _failing(ledger_check())

    assert "no duplicate entries" in failing and "stock never below zero" in failing
    assert "2 commission entries at level 1" in failing["no duplicate entries"][0]
