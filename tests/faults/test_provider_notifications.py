"""Fault scenario (issue #21): WeChat Pay's payment notifications lost and duplicated.

Buyers place orders in random shops and pay them with WeChat Pay Native (the gateway fake, fresh RSA-2048 keys);
a few orders are never paid. The fake's outbox holds each TRANSACTION.SUCCESS notification and the scenario
decides its fate: lost (never sent), sent once, or sent two or three times (each attempt signed afresh, the same
event id), all of them at once from 8 threads against the live server's webhook, so copies of one notification
race each other. Then the system recovers as it does in production: buyers' pages ask about some payments
(`payment_sync`), the payment timeout (`orders_cancel_expired`) closes the rest at WeChat Pay, where a paid one's
close is refused and the payment applied instead, and the lost notifications arrive very late (WeChat Pay retries
for a day) and change nothing.

Every order the buyer paid ends paid, with exactly one paid transition, one succeeded payment and one split; no
money is refunded as "late"; every order never paid ends cancelled; the ledger checker finds nothing.
"""

from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
from django.db import connection
from django.db.models import Count
from django.urls import reverse
from django.utils import timezone

from commissions.models import OrderSplit
from shops.models import Order, OrderEvent, Payment, Refund, WebhookEvent
from shops.payments.base import Buyer
from shops.services import orders_cancel_expired, payment_start_method, payment_sync
from tests.factories import place_order
from tests.faults.conftest import SEEDS
from tests.faults.harness import build_world, final_check
from tests.payments.conftest import gateways, wechat, wechat_settings  # noqa: F401 - fixtures used here

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

ORDERS = 24
UNPAID = 4  # placed and opened at WeChat Pay, never paid
THREADS = 8
Status = Order.Status


def open_wechat_payment(order: Order, live_server) -> Payment:
    payment, _action = payment_start_method(
        order=order,
        provider_name="wechatpay",
        method="native",
        buyer=Buyer(),
        notify_url=live_server.url + reverse("shops:payment_webhook", args=["wechatpay"]),
        return_url=live_server.url + reverse("shops:order_detail", args=[order.number]),
    )
    return payment


@pytest.mark.parametrize("seed", SEEDS)
def test_payment_notifications_lost_and_duplicated(seed, live_server, wechat, settings, fault_report):  # noqa: F811
    assert connection.vendor == "postgresql"
    # One test buyer places every order: lift the limits on what unpaid orders may hold.
    settings.ORDER_UNPAID_UNITS_PER_BUYER = settings.ORDER_UNPAID_UNITS_PER_ADDRESS = 10_000
    world = build_world(seed)
    rng = world.rng
    wechat.outbox.mode = "hold"

    # Traffic: orders opened at WeChat Pay; most are paid by their buyers, a few never.
    orders = []
    for _ in range(ORDERS + UNPAID):
        shop = rng.choice(world.shops)
        listed = list(shop.listings.select_related("product").order_by("pk"))
        items = {listing.product: rng.randint(1, 3) for listing in rng.sample(listed, rng.randint(1, len(listed)))}
        orders.append(place_order(shop, items))
    payments = [open_wechat_payment(order, live_server) for order in orders]
    paid, unpaid = payments[:ORDERS], payments[ORDERS:]
    for payment in paid:
        wechat.buyer_pays(payment.reference)

    # The fault: each notification lost, or sent one to three times, all concurrently.
    notifications = wechat.outbox.take(kind="TRANSACTION.SUCCESS")
    assert len(notifications) == ORDERS
    lost, attempts = [], []
    for notification in notifications:
        times = rng.choice([0, 1, 2, 2, 3])
        if times == 0:
            lost.append(notification)
        attempts += [notification] * times
    rng.shuffle(attempts)
    with ThreadPoolExecutor(THREADS) as pool:
        answers = list(pool.map(wechat.outbox.send, attempts))
    assert all(answers), "every genuine delivery is acknowledged, a copy too"
    world.figures.update({"orders paid": ORDERS, "notifications lost": len(lost), "deliveries": len(attempts)})

    # Recovery: buyers' pages ask about half the payments still pending; the timeout closes the rest.
    still_pending = list(Payment.objects.filter(status=Payment.Status.PENDING).order_by("pk"))
    for payment in still_pending[: len(still_pending) // 2]:
        payment_sync(payment=payment)
    Order.objects.filter(pk__in=[order.pk for order in orders]).update(
        created_at=timezone.now() - timedelta(minutes=31)
    )
    orders_cancel_expired()
    # ... and the lost notifications finally arrive, twice.
    late = [notification for notification in lost for _twice in range(2)]
    with ThreadPoolExecutor(THREADS) as pool:
        assert all(pool.map(wechat.outbox.send, late))

    # Every paid order paid once, split once; every unpaid one cancelled; nothing refunded.
    paid_ids = [payment.order_id for payment in paid]
    assert set(Order.objects.filter(pk__in=paid_ids).values_list("status", flat=True)) == {Status.PAID}
    transitions = (
        OrderEvent.objects.filter(kind=OrderEvent.Kind.STATUS, to_status=Status.PAID, order_id__in=paid_ids)
        .values("order_id")
        .annotate(n=Count("pk"))
    )
    assert sorted(row["n"] for row in transitions) == [1] * ORDERS
    assert Payment.objects.filter(pk__in=[p.pk for p in paid], status=Payment.Status.SUCCEEDED).count() == ORDERS
    splits = OrderSplit.objects.filter(order_id__in=paid_ids).values("order_id").annotate(n=Count("pk"))
    assert sorted(row["n"] for row in splits) == [1] * ORDERS
    assert not Refund.objects.exists()
    unpaid_ids = [payment.order_id for payment in unpaid]
    assert set(Order.objects.filter(pk__in=unpaid_ids).values_list("status", flat=True)) == {Status.CANCELLED}
    assert Payment.objects.filter(pk__in=[p.pk for p in unpaid], status=Payment.Status.CLOSED).count() == UNPAID
    assert WebhookEvent.objects.filter(provider="wechatpay").count() == ORDERS  # each notification applied once

    run = fault_report(final_check("provider notifications lost and duplicated", seed, world))
    assert run.violations == 0 and run.lost_orders == 0, run.problems
