"""Helpers of the payout tests (the member's pages, finance staff's screens, the back office): balances credited
directly, a bank account, a paid withdrawal, the state of the withdrawals."""

from decimal import Decimal

from django.utils import timezone

from commissions.models import CommissionEntry
from payouts.models import PayoutAccount, Withdrawal, WithdrawalEvent
from payouts.services import (
    payout_account_save,
    payout_batch_create,
    payout_batch_send,
    withdrawal_approve,
    withdrawal_request,
)
from tests.factories import ProductFactory, place_order, shop_with_products

D = Decimal
CARD = "6222021234567890"
CARD_MASKED = "**** 7890"


def credit(member, amount: str, *, status=CommissionEntry.Status.AVAILABLE, kind=CommissionEntry.Kind.COMMISSION):
    """A released commission entry of `amount` for `member`, on an order of its own."""
    order = place_order(shop_with_products(ProductFactory()))
    return CommissionEntry.objects.create(
        order=order,
        order_line=order.lines.first(),
        beneficiary=member,
        level=1,
        kind=kind,
        base=abs(D(amount)),
        rate=D("1.0000"),
        amount=D(amount),
        status=status,
        released_at=None if status == CommissionEntry.Status.PENDING else timezone.now(),
    )


def bank_account(member) -> PayoutAccount:
    return payout_account_save(
        member=member,
        method="bank",
        holder_name="王芳",
        bank_name="中国工商银行",
        bank_branch="上海南京路支行",
        account_number=CARD,
    )


def paid_withdrawal(member, amount: str, actor=None) -> Withdrawal:
    """A withdrawal taken all the way to `paid` through the sandbox provider."""
    withdrawal = withdrawal_request(member=member, amount=D(amount))
    withdrawal_approve(withdrawal=withdrawal, actor=actor)
    payout_batch_send(batch=payout_batch_create(provider_name="sandbox", actor=actor))
    withdrawal.refresh_from_db()
    return withdrawal


def snapshot() -> tuple:
    return (
        list(Withdrawal.objects.order_by("pk").values_list("pk", "status", "amount")),
        WithdrawalEvent.objects.count(),
    )
