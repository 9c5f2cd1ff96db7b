"""The ports of the apps below commissions: shops announces a paid order and a recorded refund through
`shops.signals`, networks marked lines through `networks.signals`, and commissions' receivers plug in. Neither app
imports commissions (tests/config/test_layers.py); these tests prove the money still flows through the ports."""

from decimal import Decimal

import pytest
from django.test import TestCase

from commissions.models import SplitQueue
from commissions.receivers import ORDER_PAID_UID, REFUND_RECORDED_UID, order_paid_receiver
from commissions.tasks import commission_apply_refund_task
from networks.signals import external_orders_marked
from shops.models import Order, OrderLine, Refund
from shops.services import order_mark_completed, order_mark_shipped, order_refund
from shops.signals import order_paid, refund_recorded
from tests.factories import ProductFactory, pay_order, place_order, shop_with_products
from tests.payouts.test_money import ensure_plan_in_force, staff  # noqa: F401 - staff is a fixture

pytestmark = pytest.mark.django_db


def _receivers(signal) -> set:
    return {key[0] for key, *_rest in signal.receivers}


def test_commissions_listens_to_every_port_once():
    assert ORDER_PAID_UID in _receivers(order_paid)
    assert REFUND_RECORDED_UID in _receivers(refund_recorded)
    assert "commissions.receivers.external_orders_marked" in _receivers(external_orders_marked)
    assert len(order_paid.receivers) == len(_receivers(order_paid))  # no receiver connected twice


def test_a_paid_order_reaches_the_split_queue_only_through_the_port():
    ensure_plan_in_force()
    product = ProductFactory(price=Decimal("50.00"), commission_rate=Decimal("0.1000"), stock=10)
    shop = shop_with_products(product)

    order_paid.disconnect(dispatch_uid=ORDER_PAID_UID)
    try:
        unheard = pay_order(place_order(shop, {product: 1}))
    finally:
        order_paid.connect(order_paid_receiver, weak=False, dispatch_uid=ORDER_PAID_UID)
    heard = pay_order(place_order(shop, {product: 1}))

    assert unheard.status == heard.status == Order.Status.PAID
    assert list(SplitQueue.objects.values_list("order_id", flat=True)) == [heard.pk]


def test_a_receiver_that_fails_rolls_the_payment_back():
    product = ProductFactory(price=Decimal("50.00"), stock=10)
    order = place_order(shop_with_products(product), {product: 1})

    def broken(sender=None, **kwargs):
        raise RuntimeError("the ledger is unreachable")

    order_paid.connect(broken, weak=False, dispatch_uid="test-broken")
    try:
        with pytest.raises(RuntimeError):
            pay_order(order)
    finally:
        order_paid.disconnect(dispatch_uid="test-broken")

    order.refresh_from_db()
    assert order.status == Order.Status.PENDING_PAYMENT
    assert not SplitQueue.objects.exists()


def test_a_refund_asks_for_its_reversals_after_the_commit_only(monkeypatch, staff):  # noqa: F811
    ensure_plan_in_force()
    product = ProductFactory(price=Decimal("50.00"), commission_rate=Decimal("0.1000"), stock=10)
    order = pay_order(place_order(shop_with_products(product), {product: 2}))
    order_mark_shipped(order=order, actor=staff)
    order_mark_completed(order=order, actor=staff)
    asked = []
    monkeypatch.setattr(commission_apply_refund_task, "delay", asked.append)
    line = OrderLine.objects.get(order=order)

    with TestCase.captureOnCommitCallbacks(execute=False) as pending:
        refund = order_refund(order=order, quantities={line.pk: 1}, actor=staff)
        assert asked == []  # not inside the transaction
    for callback in pending:
        callback()

    assert asked == [refund.pk]
    assert Refund.objects.filter(pk=refund.pk).exists()
