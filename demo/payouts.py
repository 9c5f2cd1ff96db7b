"""Demo money: the demo orders' commission split and released, a payout account and a withdrawal."""

from datetime import timedelta
from decimal import Decimal

from django.conf import settings
from django.db import transaction
from django.db.models import F

from accounts.identity import identity_capture, identity_for_user
from commissions.models import CommissionEntry, OrderSplit, RefundApplied
from commissions.services import commission_release_due, commission_split_queued
from demo.shops import demo_orders_backdate
from payouts.models import PayoutAccount, Withdrawal
from payouts.selectors import member_balance
from payouts.services import (
    payout_account_save,
    payout_batch_create,
    payout_batch_send,
    withdrawal_approve,
    withdrawal_request,
)
from referrals.models import Member

DEMO_PAID_WITHDRAWAL = Decimal("20.00")


def demo_money(stdout, new_orders: dict[int, int] | None = None) -> None:
    """Idempotent: splits what is queued, moves the new demo orders' history and ledger back to when they
    happened (`new_orders`: {order id: days ago}, from `demo.shops.demo_storefront`), releases what is past the
    hold with the real clock, and gives the founder an Alipay account and one withdrawal request (once).

    Nothing is dated in the future (issue #19: the release used to run with a clock a week ahead, so the
    statement showed credits dated after today, before the withdrawal drawn from them)."""
    while commission_split_queued(limit=500):
        pass
    with transaction.atomic():
        _ledger_backdate(new_orders or {})
        demo_orders_backdate(new_orders or {})
    commission_release_due()
    founder = Member.objects.filter(user__email="founder@example.com").first()
    if founder is None:
        return
    if identity_for_user(founder.user) is None:
        # Issue #24: no withdrawal without a verified identity; the demo's founder has a made-up one (the console
        # verifier in development accepts it; the number is the example of GB 11643 itself).
        identity_capture(user=founder.user, id_type="resident_id", legal_name="Sun Founder",
                         id_number="11010519491231002X")  # fmt: skip
    with transaction.atomic():
        if not PayoutAccount.objects.filter(member=founder).exists():
            payout_account_save(
                member=founder, method="alipay", holder_name="Sun Founder", alipay_account="founder@example.com"
            )
    if Withdrawal.objects.filter(member=founder).exists():
        return
    # One withdrawal paid through the sandbox (its income tax computed and recorded: the payouts page shows gross,
    # tax and net, and the annual income statement has a year), then one waiting for staff.
    paid = DEMO_PAID_WITHDRAWAL
    if member_balance(founder).withdrawable >= paid + settings.WITHDRAWAL_MINIMUM:
        with transaction.atomic():
            withdrawal_approve(withdrawal=withdrawal_request(member=founder, amount=paid), actor=None)
            batch = payout_batch_create(provider_name="sandbox")
        payout_batch_send(batch=batch)
        stdout.write(f"  founder was paid {paid} through the sandbox (see Earnings → Annual income and tax)")
    with transaction.atomic():
        available = member_balance(founder).withdrawable
        if available >= settings.WITHDRAWAL_MINIMUM:
            amount = min(available, Decimal("50.00"))
            withdrawal_request(member=founder, amount=amount)
            stdout.write(f"  founder asked to withdraw {amount} (approve it in admin → Withdrawals)")


def _ledger_backdate(days_by_order: dict[int, int]) -> None:
    """The split and the refunds' reversals of an order written just now move back with the order's history."""
    for order_id, days in days_by_order.items():
        if not days:
            continue
        back = timedelta(days=days)
        CommissionEntry.objects.filter(order_id=order_id).update(
            created_at=F("created_at") - back, reversed_at=F("reversed_at") - back
        )
        OrderSplit.objects.filter(order_id=order_id).update(created_at=F("created_at") - back)
        RefundApplied.objects.filter(refund__order_id=order_id).update(applied_at=F("applied_at") - back)
