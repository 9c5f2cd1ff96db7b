"""Concurrent checkouts, webhooks and refunds on PostgreSQL: real threads, one connection each, released together."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.db.models import Sum
from django.utils import timezone

from shops.models import Order, OrderEvent, OrderLine, Product, Refund, WebhookEvent
from shops.payments.sandbox import build_webhook
from shops.services import (
    ShopError,
    SoldOut,
    order_mark_shipped,
    order_place,
    order_refund,
    orders_cancel_expired,
    payment_start,
    payment_webhook_receive,
)
from tests.factories import BUYER, ProductFactory, pay_order, place_order, shop_with_products
from tests.referrals.test_concurrency import run_together

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

Status = Order.Status


def test_twenty_checkouts_for_the_last_five_units_sell_exactly_five():
    # given
    assert connection.vendor == "postgresql"
    product = ProductFactory(stock=5)
    shop = shop_with_products(product)

    # when
    results, errors = run_together([lambda: order_place(shop=shop, items={product.pk: 1}, buyer=BUYER)] * 20)

    # then
    assert len(results) == 5
    assert len(errors) == 15
    assert all(type(error) is SoldOut for error in errors), errors
    assert Product.objects.get(pk=product.pk).stock == 0
    assert Order.objects.count() == 5
    assert {order.pk for order in results} == set(Order.objects.values_list("pk", flat=True))
    assert OrderLine.objects.aggregate(sold=Sum("quantity"))["sold"] == 5
    assert OrderEvent.objects.filter(kind=OrderEvent.Kind.PLACED).count() == 5


def test_checkouts_taking_two_products_in_opposite_cart_orders_do_not_deadlock():
    # given
    first, second = ProductFactory(stock=50), ProductFactory(stock=50)
    shop = shop_with_products(first, second)
    carts = [{first.pk: 1, second.pk: 1}, {second.pk: 1, first.pk: 1}] * 5

    # when
    results, errors = run_together(
        [lambda items=items: order_place(shop=shop, items=items, buyer=BUYER) for items in carts]
    )

    # then
    assert errors == []
    assert len(results) == 10
    assert [Product.objects.get(pk=product.pk).stock for product in (first, second)] == [40, 40]
    assert Order.objects.count() == 10
    assert OrderLine.objects.count() == 20


def test_the_same_webhook_delivered_five_times_at_once_pays_once():
    # given
    order = place_order(shop_with_products())
    payment, _url = payment_start(order=order, notify_url="http://testserver/wh", return_url="http://testserver/r")
    body, headers = build_webhook(payment, "succeeded")

    # when
    results, errors = run_together(
        [lambda: payment_webhook_receive(provider_name="sandbox", body=body, headers=headers)] * 5
    )

    # then
    assert errors == []
    assert sorted(result.duplicate for result in results) == [False, True, True, True, True]
    assert Order.objects.get(pk=order.pk).status == Status.PAID
    assert WebhookEvent.objects.count() == 1
    assert OrderEvent.objects.filter(order=order, kind=OrderEvent.Kind.STATUS, to_status=Status.PAID).count() == 1
    assert OrderEvent.objects.filter(order=order, kind=OrderEvent.Kind.PAYMENT).count() == 1


def test_concurrent_refunds_of_one_line_never_refund_more_than_was_bought():
    # given: a paid order for 3 units
    product = ProductFactory(price=Decimal("10.00"), stock=10)
    order = pay_order(place_order(shop_with_products(product), {product: 3}))
    line = OrderLine.objects.get(order=order)

    # when: six clerks each refund one unit at once
    results, errors = run_together([lambda: order_refund(order=order, quantities={line.pk: 1})] * 6)

    # then
    assert len(results) == 3
    assert len(errors) == 3
    assert all(isinstance(error, ShopError) for error in errors), errors
    line.refresh_from_db()
    assert (line.refunded_quantity, line.refunded_amount) == (3, Decimal("30.00"))
    order.refresh_from_db()
    assert (order.status, order.refunded_total) == (Status.REFUNDED, Decimal("30.00"))
    assert Refund.objects.filter(order=order).count() == 3
    assert Product.objects.get(pk=product.pk).stock == 10


def test_expiry_sweep_racing_the_payment_webhook_leaves_a_consistent_order(settings):
    # given: an order past its payment timeout whose payment arrives just as the sweep runs
    product = ProductFactory(stock=10)
    order = place_order(shop_with_products(product), {product: 2})
    payment, _url = payment_start(order=order, notify_url="http://testserver/wh", return_url="http://testserver/r")
    body, headers = build_webhook(payment, "succeeded")
    later = timezone.now() + timedelta(minutes=settings.ORDER_PAYMENT_TIMEOUT_MINUTES + 1)

    # when
    results, errors = run_together(
        [
            lambda: orders_cancel_expired(now=later),
            lambda: payment_webhook_receive(provider_name="sandbox", body=body, headers=headers),
        ]
    )

    # then: either paid (stock stays sold) or cancelled with the money sent back (stock returned)
    assert errors == []
    order.refresh_from_db()
    stock = Product.objects.get(pk=product.pk).stock
    refunds = OrderEvent.objects.filter(order=order, kind=OrderEvent.Kind.REFUND).count()
    if order.status == Status.PAID:
        assert (stock, refunds) == (8, 0)
    else:
        assert order.status == Status.CANCELLED
        assert (stock, refunds) == (10, 1)


def test_the_same_shipment_sent_five_times_at_once_ships_once():
    """A fulfilment system retrying at once: one status event, the others see it shipped with the same waybill."""
    # given
    order = pay_order(place_order(shop_with_products()))

    # when
    results, errors = run_together(
        [lambda: order_mark_shipped(order=order, courier="sf", waybill="SF1234567890123")] * 5
    )

    # then
    assert errors == []
    assert len(results) == 5
    order = Order.objects.get(pk=order.pk)
    assert (order.status, order.courier, order.waybill_number) == (Status.SHIPPED, "sf", "SF1234567890123")
    assert order.events.filter(kind=OrderEvent.Kind.STATUS, to_status=Status.SHIPPED).count() == 1
    assert not order.events.filter(kind=OrderEvent.Kind.SHIPMENT).exists()
