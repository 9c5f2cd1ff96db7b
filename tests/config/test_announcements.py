"""The domain apps announce order and withdrawal transitions upward (shops.signals.order_status_changed,
payouts.signals.withdrawals_changed) AFTER the commit, once per transaction, and not at all when it rolls back."""

from decimal import Decimal

import pytest
from django.db import transaction

from payouts.models import Withdrawal
from payouts.services import payout_batch_create, withdrawal_approve, withdrawal_request
from payouts.signals import withdrawals_changed
from shops.models import Order
from shops.services import order_mark_shipped
from shops.signals import order_status_changed
from tests.factories import MemberFactory, pay_order, place_order, shop_with_products
from tests.payouts.helpers import bank_account, credit

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def heard():
    sent = []

    def listen(sender, **kwargs):
        sent.append((sender, kwargs))

    order_status_changed.connect(listen, dispatch_uid="test-heard-orders")
    withdrawals_changed.connect(listen, dispatch_uid="test-heard-withdrawals")
    yield sent
    order_status_changed.disconnect(dispatch_uid="test-heard-orders")
    withdrawals_changed.disconnect(dispatch_uid="test-heard-withdrawals")


def test_each_order_transition_is_announced_after_its_commit(heard):
    order = place_order(shop_with_products())
    pay_order(order)
    assert [kw["changes"] for sender, kw in heard if sender is Order] == [[(order.pk, "pending_payment", "paid")]]
    heard.clear()
    with transaction.atomic():
        order_mark_shipped(order=Order.objects.get(pk=order.pk))
        assert heard == []  # not yet: the transaction is open
    assert heard == [(Order, {"signal": order_status_changed, "changes": [(order.pk, "paid", "shipped")]})]


def test_a_transition_rolled_back_is_not_announced(heard):
    order = place_order(shop_with_products())
    pay_order(order)
    heard.clear()
    with pytest.raises(RuntimeError), transaction.atomic():
        order_mark_shipped(order=Order.objects.get(pk=order.pk))
        raise RuntimeError("rolled back")
    assert heard == []
    assert Order.objects.get(pk=order.pk).status == Order.Status.PAID


def test_withdrawal_transitions_are_announced_once_per_transaction(heard):
    members = [MemberFactory(), MemberFactory()]
    withdrawals = []
    for member in members:
        credit(member, "50.00")
        bank_account(member)
        withdrawals.append(withdrawal_request(member=member, amount=Decimal("20.00")))
    staff = MemberFactory().user
    for withdrawal in withdrawals:
        withdrawal_approve(withdrawal=withdrawal, actor=staff)
    heard.clear()
    payout_batch_create(provider_name="sandbox")
    batch_sends = [kw["changes"] for sender, kw in heard if sender is Withdrawal]
    assert len(batch_sends) == 1
    assert sorted(batch_sends[0]) == sorted((w.pk, "approved", "processing") for w in withdrawals)
