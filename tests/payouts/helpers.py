"""Helpers of the payout tests (the member's pages, finance staff's screens, the back office, the payout rails):
balances credited directly, a bank account, members bound to a rail, a paid withdrawal, the state of the
withdrawals."""

from decimal import Decimal

from django.utils import timezone

from commissions.models import CommissionEntry
from payouts.models import PayoutAccount, Transfer, Withdrawal, WithdrawalEvent
from payouts.services import (
    payout_account_bind_wechat,
    payout_account_save,
    payout_batch_create,
    payout_batch_send,
    withdrawal_approve,
    withdrawal_request,
)
from tests.factories import MemberFactory, ProductFactory, place_order, shop_with_products

D = Decimal
CARD = "6222021234567890"
CARD_MASKED = "**** 7890"
# The payout rails' payee (tests/payouts/conftest.py registers them at the fakes).
OPENID = "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o"
ALIPAY_LOGIN = "wang.fang@example.com"
REAL_NAME = "王芳"


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


def funded_member(balance: str = "20000.00"):
    """A new member with a bank account and `balance` available to withdraw."""
    member = MemberFactory()
    bank_account(member)
    credit(member, balance)
    return member


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


# --- The payout rails ---


def wechat_member(*, openid: str = OPENID, name: str = REAL_NAME, balance: str = "80.00"):
    member = MemberFactory(identity=name)  # verified under this legal name: our check passes, WeChat Pay's may not
    payout_account_save(member=member, method="wechat", holder_name=name, wechat_id="wangfang88")
    payout_account_bind_wechat(member=member, openid=openid)
    credit(member, balance)
    return member


def alipay_member(*, login: str = ALIPAY_LOGIN, name: str = REAL_NAME, balance: str = "80.00"):
    member = MemberFactory(identity=name)  # verified under this legal name: our check passes, Alipay's may not
    payout_account_save(member=member, method="alipay", holder_name=name, alipay_account=login)
    credit(member, balance)
    return member


def approved(member, amount: str) -> Withdrawal:
    withdrawal = withdrawal_request(member=member, amount=D(amount))
    if withdrawal.status == Withdrawal.Status.REQUESTED:
        withdrawal_approve(withdrawal=withdrawal, actor=None)
    return withdrawal


def send_batch() -> dict:
    """Batch what is approved and send it (the periodic payout run); the batch's outcome."""
    return payout_batch_send(batch=payout_batch_create(provider_name="rails"))


def fresh(withdrawal: Withdrawal) -> Withdrawal:
    return Withdrawal.objects.select_related("transfer").get(pk=withdrawal.pk)


def transfer_of(withdrawal: Withdrawal) -> Transfer:
    return Transfer.objects.get(withdrawal=withdrawal)
