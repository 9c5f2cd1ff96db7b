"""Order placement, the order state machine, expiry, refunds and the commission hand-off (shops/services.py)."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import transaction
from django.utils import timezone

from commissions.tasks import commission_apply_refund_task, commission_split_order_task
from shops import services
from shops.locks import order_lock
from shops.models import Order, OrderEvent, OrderLine, Payment, Product, Refund, RefundLine
from shops.payments.sandbox import SandboxProvider, build_webhook
from shops.services import (
    BuyerDetails,
    IllegalTransition,
    ShopError,
    SoldOut,
    order_cancel,
    order_mark_completed,
    order_mark_shipped,
    order_place,
    order_refund,
    orders_cancel_expired,
    payment_start,
    payment_webhook_receive,
)
from tests.factories import BUYER, MemberFactory, ProductFactory, pay_order, place_order, shop_with_products

pytestmark = pytest.mark.django_db

Status = Order.Status


def stocks(*products: Product) -> list[int]:
    return [Product.objects.get(pk=product.pk).stock for product in products]


def status_events(order: Order) -> list[tuple]:
    return list(
        OrderEvent.objects.filter(order=order, kind=OrderEvent.Kind.STATUS)
        .order_by("pk")
        .values_list("from_status", "to_status", "actor_id", "actor_label")
    )


def order_state(order: Order) -> dict:
    """Everything a refused order operation must leave alone."""
    fresh = Order.objects.get(pk=order.pk)
    return {
        "order": (fresh.status, fresh.refunded_total, fresh.paid_at, fresh.shipped_at, fresh.completed_at),
        "cancelled_at": fresh.cancelled_at,
        "lines": list(
            OrderLine.objects.filter(order=order)
            .order_by("pk")
            .values_list("pk", "quantity", "refunded_quantity", "refunded_amount")
        ),
        "events": list(OrderEvent.objects.filter(order=order).order_by("pk").values_list("pk", flat=True)),
        "refunds": Refund.objects.count(),
        "refund_lines": RefundLine.objects.count(),
        "payments": list(Payment.objects.filter(order=order).order_by("pk").values_list("pk", "status")),
        "stock": dict(Product.objects.order_by("pk").values_list("pk", "stock")),
    }


def world_state() -> dict:
    return {
        "orders": Order.objects.count(),
        "lines": OrderLine.objects.count(),
        "events": OrderEvent.objects.count(),
        "stock": dict(Product.objects.order_by("pk").values_list("pk", "stock")),
    }


@pytest.fixture
def recorded_delays(monkeypatch):
    """Replace both commission tasks' `delay` with recorders: {"split": [None per message], "refund": [refund ids]}.

    A split message names no order: the run drains the queue (see commission_split_requested).
    """
    calls: dict[str, list[int | None]] = {"split": [], "refund": []}
    monkeypatch.setattr(commission_split_order_task, "delay", lambda order_id=None: calls["split"].append(order_id))
    monkeypatch.setattr(commission_apply_refund_task, "delay", lambda refund_id: calls["refund"].append(refund_id))
    return calls


# --- order_place ------------------------------------------------------------------


def test_order_place_snapshots_title_price_quantity_net_amount_and_rate_per_line():
    # given
    tea = ProductFactory(title="Green tea", price=Decimal("19.90"), commission_rate=Decimal("0.1000"), stock=10)
    cup = ProductFactory(title="Tea cup", price=Decimal("5.25"), commission_rate=Decimal("0.2500"), stock=10)
    shop = shop_with_products(tea, cup)

    # when
    order = order_place(shop=shop, items={tea.pk: 3, cup.pk: 2}, buyer=BUYER)

    # then
    lines = list(order.lines.order_by("pk").values_list("product_id", "title", "unit_price", "quantity"))
    assert lines == [
        (tea.pk, "Green tea", Decimal("19.90"), 3),
        (cup.pk, "Tea cup", Decimal("5.25"), 2),
    ]
    amounts = list(order.lines.order_by("pk").values_list("net_amount", "commission_rate"))
    assert amounts == [(Decimal("59.70"), Decimal("0.1000")), (Decimal("10.50"), Decimal("0.2500"))]
    order = Order.objects.get(pk=order.pk)
    assert order.total == Decimal("70.20")
    assert order.refunded_total == Decimal("0.00")
    assert order.status == Status.PENDING_PAYMENT
    assert order.shop_id == shop.pk
    assert order.currency == "CNY"
    assert (order.buyer_name, order.buyer_phone, order.buyer_email, order.shipping_address) == (
        "Wang Fang",
        "+8613900001111",  # stored in E.164 form (core.phones)
        "",
        "1 Nanjing Road, Shanghai",
    )
    placed = list(OrderEvent.objects.filter(order=order).values_list("kind", "to_status", "amount", "actor_label"))
    assert placed == [(OrderEvent.Kind.PLACED, Status.PENDING_PAYMENT, Decimal("70.20"), "buyer")]


def test_order_lines_keep_their_snapshot_when_the_product_changes_later():
    tea = ProductFactory(title="Green tea", price=Decimal("19.90"), commission_rate=Decimal("0.1000"))
    order = place_order(shop_with_products(tea), {tea: 2})

    Product.objects.filter(pk=tea.pk).update(title="Renamed", price=Decimal("99.00"), commission_rate=Decimal("0.5"))

    line = OrderLine.objects.get(order=order)
    assert (line.title, line.unit_price, line.net_amount, line.commission_rate) == (
        "Green tea",
        Decimal("19.90"),
        Decimal("39.80"),
        Decimal("0.1000"),
    )
    assert Order.objects.get(pk=order.pk).total == Decimal("39.80")


def test_order_place_sharer_defaults_to_the_shop_owner():
    shop = shop_with_products()

    order = place_order(shop)

    assert Order.objects.get(pk=order.pk).sharer_id == shop.owner_id


def test_order_place_records_the_given_sharer():
    shop = shop_with_products()
    sharer = MemberFactory()

    order = order_place(shop=shop, items={shop.listings.first().product_id: 1}, buyer=BUYER, sharer=sharer)

    assert Order.objects.get(pk=order.pk).sharer_id == sharer.pk


def test_order_place_decrements_stock_by_the_quantity_bought():
    tea, cup = ProductFactory(stock=10), ProductFactory(stock=4)
    shop = shop_with_products(tea, cup)

    place_order(shop, {tea: 3, cup: 4})

    assert stocks(tea, cup) == [7, 0]


def test_sold_out_changes_nothing_even_for_products_taken_earlier_in_the_cart():
    # given: the short product comes last both in the cart and in product id order
    first, second, short = ProductFactory(stock=10), ProductFactory(stock=10), ProductFactory(stock=2)
    shop = shop_with_products(first, second, short)
    before = world_state()

    # when
    with pytest.raises(SoldOut) as caught:
        order_place(shop=shop, items={first.pk: 1, second.pk: 5, short.pk: 3}, buyer=BUYER)

    # then
    assert caught.value.product == short
    assert caught.value.code == "sold_out"
    assert world_state() == before
    assert stocks(first, second, short) == [10, 10, 2]


def test_sold_out_when_the_short_product_is_first_in_the_cart_changes_nothing():
    short, plenty = ProductFactory(stock=0), ProductFactory(stock=10)
    shop = shop_with_products(short, plenty)
    before = world_state()

    with pytest.raises(SoldOut):
        order_place(shop=shop, items={plenty.pk: 1, short.pk: 1}, buyer=BUYER)

    assert world_state() == before


def test_the_last_units_can_be_bought_exactly():
    product = ProductFactory(stock=3)

    place_order(shop_with_products(product), {product: 3})

    assert stocks(product) == [0]


def test_closed_shop_refuses_orders_and_changes_nothing():
    product = ProductFactory(stock=10)
    shop = shop_with_products(product)
    shop.is_open = False
    shop.save(update_fields=["is_open"])
    before = world_state()

    with pytest.raises(ShopError) as caught:
        order_place(shop=shop, items={product.pk: 1}, buyer=BUYER)

    assert caught.value.code == "shop_closed"
    assert world_state() == before


def test_inactive_product_is_refused_and_nothing_changes():
    active, inactive = ProductFactory(stock=10), ProductFactory(stock=10)
    shop = shop_with_products(active, inactive)
    Product.objects.filter(pk=inactive.pk).update(is_active=False)
    before = world_state()

    with pytest.raises(ShopError) as caught:
        order_place(shop=shop, items={active.pk: 1, inactive.pk: 1}, buyer=BUYER)

    assert caught.value.code == "unavailable"
    assert world_state() == before


def test_product_not_listed_in_that_shop_is_refused_and_nothing_changes():
    listed, elsewhere = ProductFactory(stock=10), ProductFactory(stock=10)
    shop = shop_with_products(listed)
    shop_with_products(elsewhere)  # for sale, but in another shop
    before = world_state()

    with pytest.raises(ShopError) as caught:
        order_place(shop=shop, items={listed.pk: 1, elsewhere.pk: 1}, buyer=BUYER)

    assert caught.value.code == "unavailable"
    assert world_state() == before


def test_unknown_product_id_is_refused():
    shop = shop_with_products()
    before = world_state()

    with pytest.raises(ShopError) as caught:
        order_place(shop=shop, items={999_999: 1}, buyer=BUYER)

    assert caught.value.code == "unavailable"
    assert world_state() == before


def test_empty_cart_is_refused():
    shop = shop_with_products()

    with pytest.raises(ShopError) as caught:
        order_place(shop=shop, items={}, buyer=BUYER)

    assert caught.value.code == "empty"
    assert Order.objects.count() == 0


@pytest.mark.parametrize("quantity", [0, -1, "max+1"])
def test_quantity_outside_one_to_the_maximum_is_refused(settings, quantity):
    product = ProductFactory(stock=1000)
    shop = shop_with_products(product)
    if quantity == "max+1":
        quantity = settings.ORDER_MAX_QUANTITY_PER_LINE + 1
    before = world_state()

    with pytest.raises(ShopError) as caught:
        order_place(shop=shop, items={product.pk: quantity}, buyer=BUYER)

    assert caught.value.code == "quantity"
    assert world_state() == before


def test_the_maximum_quantity_per_line_is_accepted(settings):
    product = ProductFactory(stock=1000)

    order = place_order(shop_with_products(product), {product: settings.ORDER_MAX_QUANTITY_PER_LINE})

    assert OrderLine.objects.get(order=order).quantity == settings.ORDER_MAX_QUANTITY_PER_LINE
    assert stocks(product) == [1000 - settings.ORDER_MAX_QUANTITY_PER_LINE]


# --- transitions -------------------------------------------------------------------


def test_pending_paid_shipped_completed_writes_one_event_per_transition(staff_user):
    # given
    order = place_order(shop_with_products())
    start = timezone.now()

    # when
    pay_order(order)
    order_mark_shipped(order=order, actor=staff_user)
    order_mark_completed(order=order, actor=staff_user)

    # then
    end = timezone.now()
    order = Order.objects.get(pk=order.pk)
    assert order.status == Status.COMPLETED
    assert start <= order.paid_at <= order.shipped_at <= order.completed_at <= end
    assert order.cancelled_at is None
    assert status_events(order) == [
        (Status.PENDING_PAYMENT, Status.PAID, None, "sandbox"),
        (Status.PAID, Status.SHIPPED, staff_user.pk, "staff"),
        (Status.SHIPPED, Status.COMPLETED, staff_user.pk, "staff"),
    ]
    times = list(
        OrderEvent.objects.filter(order=order, kind=OrderEvent.Kind.STATUS).values_list("created_at", flat=True)
    )
    assert all(start <= moment <= end for moment in times)
    assert times == sorted(times)


def test_shipping_a_cancelled_order_is_illegal_and_changes_nothing(staff_user):
    order = place_order(shop_with_products())
    order_cancel(order=order, actor_label="buyer")
    before = order_state(order)

    with pytest.raises(IllegalTransition) as caught:
        order_mark_shipped(order=order, actor=staff_user)

    assert caught.value.code == "illegal_transition"
    assert order_state(order) == before
    assert Order.objects.get(pk=order.pk).status == Status.CANCELLED


def test_completing_a_pending_order_is_illegal_and_changes_nothing(staff_user):
    order = place_order(shop_with_products())
    before = order_state(order)

    with pytest.raises(IllegalTransition):
        order_mark_completed(order=order, actor=staff_user)

    assert order_state(order) == before
    assert Order.objects.get(pk=order.pk).status == Status.PENDING_PAYMENT


def test_completing_a_paid_but_unshipped_order_is_illegal(staff_user):
    order = pay_order(place_order(shop_with_products()))
    before = order_state(order)

    with pytest.raises(IllegalTransition):
        order_mark_completed(order=order, actor=staff_user)

    assert order_state(order) == before


def test_cancelling_a_paid_order_is_illegal_and_keeps_the_stock_taken(staff_user):
    product = ProductFactory(stock=10)
    order = pay_order(place_order(shop_with_products(product), {product: 2}))
    before = order_state(order)

    with pytest.raises(IllegalTransition):
        order_cancel(order=order, actor=staff_user, actor_label="staff")

    assert order_state(order) == before
    assert stocks(product) == [8]


def test_cancelling_twice_is_illegal_and_does_not_return_stock_twice():
    product = ProductFactory(stock=10)
    order = place_order(shop_with_products(product), {product: 2})
    order_cancel(order=order, actor_label="buyer")
    before = order_state(order)

    with pytest.raises(IllegalTransition):
        order_cancel(order=order, actor_label="buyer")

    assert order_state(order) == before
    assert stocks(product) == [10]


def test_paying_a_paid_order_again_is_an_illegal_transition():
    order = pay_order(place_order(shop_with_products()))
    before = order_state(order)

    with pytest.raises(IllegalTransition), transaction.atomic():
        services._order_transition(order_lock(order.pk), Status.PAID, actor_label="sandbox")

    assert order_state(order) == before


def test_starting_a_payment_for_a_paid_order_is_refused():
    order = pay_order(place_order(shop_with_products()))
    before = order_state(order)

    with pytest.raises(ShopError) as caught:
        payment_start(order=order, notify_url="http://testserver/wh", return_url="http://testserver/r")

    assert caught.value.code == "not_payable"
    assert order_state(order) == before


def test_a_second_payment_for_a_paid_order_does_not_pay_it_twice_and_is_refunded():
    # given: two payments opened while the order was pending
    order = place_order(shop_with_products())
    urls = {"notify_url": "http://testserver/wh", "return_url": "http://testserver/r"}
    first, _url = payment_start(order=order, **urls)
    second, _url = payment_start(order=order, **urls)

    # when both succeed
    outcomes = []
    for payment in (first, second):
        body, headers = build_webhook(payment, "succeeded")
        outcomes.append(payment_webhook_receive(provider_name="sandbox", body=body, headers=headers).outcome)

    # then
    assert outcomes == ["order paid", "late payment refunded"]
    order = Order.objects.get(pk=order.pk)
    assert order.status == Status.PAID
    assert status_events(order) == [(Status.PENDING_PAYMENT, Status.PAID, None, "sandbox")]
    paid_event = OrderEvent.objects.get(order=order, kind=OrderEvent.Kind.STATUS, to_status=Status.PAID)
    assert paid_event.amount == order.total
    refunds = list(
        OrderEvent.objects.filter(order=order, kind=OrderEvent.Kind.REFUND).values_list("amount", "actor_label")
    )
    assert refunds == [(order.total, "system")]
    second.refresh_from_db()
    assert second.status == Payment.Status.REFUNDED
    assert list(Refund.objects.values_list("payment_id", "amount", "reason")) == [
        (second.pk, order.total, "late payment")
    ]
    assert order.refunded_total == Decimal("0.00")  # the goods were not refunded: the extra payment was


def test_the_refund_of_a_second_payment_is_marked_applied_at_once_so_the_ledger_checker_is_satisfied(
    django_capture_on_commit_callbacks, recorded_delays
):
    # given: an order paid by its first payment
    order = place_order(shop_with_products())
    urls = {"notify_url": "http://testserver/wh", "return_url": "http://testserver/r"}
    first, _url = payment_start(order=order, **urls)
    second, _url = payment_start(order=order, **urls)
    body, headers = build_webhook(first, "succeeded")
    payment_webhook_receive(provider_name="sandbox", body=body, headers=headers)

    # when the second one succeeds too (found by the fault suite: the refund waited for the sweep, unapplied)
    body, headers = build_webhook(second, "succeeded")
    with django_capture_on_commit_callbacks(execute=True):
        result = payment_webhook_receive(provider_name="sandbox", body=body, headers=headers)

    # then its refund goes to the commission ledger like any refund (which marks it applied, reversing nothing)
    assert result.outcome == "late payment refunded"
    assert recorded_delays["refund"] == [Refund.objects.get(payment=second).pk]


def test_a_second_success_notice_for_a_refunded_late_payment_changes_nothing():
    # given: a payment whose money arrived after the order was cancelled, and was refunded
    order = place_order(shop_with_products())
    payment, _url = payment_start(order=order, notify_url="http://testserver/wh", return_url="http://testserver/r")
    order_cancel(order=order, actor_label="system")
    body, headers = build_webhook(payment, "succeeded")
    assert payment_webhook_receive(provider_name="sandbox", body=body, headers=headers).outcome == (
        "late payment refunded"
    )

    # when the provider notifies the success again, as a new event (found by the fault suite: an IntegrityError
    # on the refund's idempotency key, so a 500 the provider would retry for ever)
    body, headers = build_webhook(payment, "succeeded")
    result = payment_webhook_receive(provider_name="sandbox", body=body, headers=headers)

    # then
    assert result.outcome == "payment already refunded"
    assert Refund.objects.filter(payment=payment).count() == 1
    assert Payment.objects.get(pk=payment.pk).status == Payment.Status.REFUNDED


def test_cancel_returns_the_stock_and_records_who_cancelled(staff_user):
    tea, cup = ProductFactory(stock=10), ProductFactory(stock=5)
    order = place_order(shop_with_products(tea, cup), {tea: 3, cup: 5})
    assert stocks(tea, cup) == [7, 0]

    order_cancel(order=order, actor=staff_user, actor_label="staff", reason="Buyer called.")

    order = Order.objects.get(pk=order.pk)
    assert order.status == Status.CANCELLED
    assert order.cancelled_at is not None
    assert stocks(tea, cup) == [10, 5]
    event = OrderEvent.objects.get(order=order, kind=OrderEvent.Kind.STATUS)
    assert (event.from_status, event.to_status, event.actor_id, event.actor_label, event.note) == (
        Status.PENDING_PAYMENT,
        Status.CANCELLED,
        staff_user.pk,
        "staff",
        "Buyer called.",
    )


# --- expiry ------------------------------------------------------------------------


def test_orders_cancel_expired_cancels_only_orders_past_the_timeout_and_returns_their_stock(settings):
    # given
    product = ProductFactory(stock=100)
    shop = shop_with_products(product)
    now = timezone.now()
    timeout = timedelta(minutes=settings.ORDER_PAYMENT_TIMEOUT_MINUTES)
    expired = place_order(shop, {product: 2})
    fresh = place_order(shop, {product: 3})
    paid_long_ago = pay_order(place_order(shop, {product: 4}))
    Order.objects.filter(pk=expired.pk).update(created_at=now - timeout - timedelta(seconds=1))
    Order.objects.filter(pk=fresh.pk).update(created_at=now - timeout + timedelta(seconds=1))
    Order.objects.filter(pk=paid_long_ago.pk).update(created_at=now - timeout * 10)
    assert stocks(product) == [91]

    # when
    cancelled = orders_cancel_expired(now=now)

    # then
    assert cancelled == 1
    statuses = {pk: Order.objects.get(pk=pk).status for pk in (expired.pk, fresh.pk, paid_long_ago.pk)}
    assert statuses == {expired.pk: Status.CANCELLED, fresh.pk: Status.PENDING_PAYMENT, paid_long_ago.pk: Status.PAID}
    assert stocks(product) == [93]
    assert status_events(expired) == [(Status.PENDING_PAYMENT, Status.CANCELLED, None, "system")]


def test_orders_cancel_expired_is_idempotent(settings):
    product = ProductFactory(stock=100)
    order = place_order(shop_with_products(product), {product: 5})
    now = timezone.now() + timedelta(minutes=settings.ORDER_PAYMENT_TIMEOUT_MINUTES + 1)
    assert orders_cancel_expired(now=now) == 1
    before = order_state(order)

    again = orders_cancel_expired(now=now)

    assert again == 0
    assert order_state(order) == before
    assert stocks(product) == [100]


# --- refunds -----------------------------------------------------------------------


@pytest.fixture
def paid_two_line_order():
    """A paid order: 3 × tea at 19.90 and 2 × cup at 5.25 (total 70.20); stock left 7 and 8."""
    tea = ProductFactory(title="Green tea", price=Decimal("19.90"), stock=10)
    cup = ProductFactory(title="Tea cup", price=Decimal("5.25"), stock=10)
    order = pay_order(place_order(shop_with_products(tea, cup), {tea: 3, cup: 2}))
    tea_line = OrderLine.objects.get(order=order, product=tea)
    cup_line = OrderLine.objects.get(order=order, product=cup)
    return order, tea, cup, tea_line, cup_line


def test_refund_one_line_of_a_multi_line_order(staff_user, paid_two_line_order):
    # given
    order, tea, cup, tea_line, cup_line = paid_two_line_order
    payment = Payment.objects.get(order=order)

    # when
    refund = order_refund(order=order, quantities={tea_line.pk: 2}, actor=staff_user, reason="Damaged in transit")

    # then
    refund = Refund.objects.get(pk=refund.pk)
    assert (refund.order_id, refund.payment_id, refund.amount, refund.actor_id, refund.reason) == (
        order.pk,
        payment.pk,
        Decimal("39.80"),
        staff_user.pk,
        "Damaged in transit",
    )
    expected_refund_id = SandboxProvider().refund(payment, Decimal("39.80"), refund.idempotency_key).provider_refund_id
    assert refund.provider_refund_id == expected_refund_id
    assert refund.provider_refund_id.startswith("sbx_re_")
    assert list(RefundLine.objects.values_list("refund_id", "order_line_id", "quantity", "amount")) == [
        (refund.pk, tea_line.pk, 2, Decimal("39.80"))
    ]
    lines = list(
        OrderLine.objects.filter(order=order).order_by("pk").values_list("refunded_quantity", "refunded_amount")
    )
    assert lines == [(2, Decimal("39.80")), (0, Decimal("0.00"))]
    order = Order.objects.get(pk=order.pk)
    assert order.refunded_total == Decimal("39.80")
    assert order.status == Status.PAID
    assert stocks(tea, cup) == [9, 8]  # not shipped: the two teas go back on the shelf
    event = OrderEvent.objects.get(order=order, kind=OrderEvent.Kind.REFUND)
    assert (event.amount, event.actor_id, event.actor_label, event.note) == (
        Decimal("39.80"),
        staff_user.pk,
        "staff",
        "Damaged in transit",
    )
    assert status_events(order)[-1] == (Status.PENDING_PAYMENT, Status.PAID, None, "sandbox")


def test_refund_after_shipping_does_not_restock(staff_user, paid_two_line_order):
    order, tea, cup, tea_line, _cup_line = paid_two_line_order
    order_mark_shipped(order=order, actor=staff_user)

    order_refund(order=order, quantities={tea_line.pk: 1}, actor=staff_user, reason="Lost")

    assert stocks(tea, cup) == [7, 8]
    order = Order.objects.get(pk=order.pk)
    assert (order.status, order.refunded_total) == (Status.SHIPPED, Decimal("19.90"))


def test_refund_with_restock_false_keeps_the_stock_of_an_unshipped_order(staff_user, paid_two_line_order):
    order, tea, cup, tea_line, _cup_line = paid_two_line_order

    order_refund(order=order, quantities={tea_line.pk: 1}, actor=staff_user, restock=False)

    assert stocks(tea, cup) == [7, 8]


def test_refund_of_more_than_was_bought_is_refused_and_changes_nothing(staff_user, paid_two_line_order):
    order, tea, cup, tea_line, cup_line = paid_two_line_order
    before = order_state(order)

    with pytest.raises(ShopError) as caught:
        order_refund(order=order, quantities={cup_line.pk: 1, tea_line.pk: 4}, actor=staff_user)

    assert caught.value.code == "too_many"
    assert order_state(order) == before
    assert Refund.objects.count() == 0
    assert stocks(tea, cup) == [7, 8]


def test_refund_of_more_than_is_left_after_a_partial_refund_is_refused(staff_user, paid_two_line_order):
    # given
    order, tea, cup, tea_line, _cup_line = paid_two_line_order
    order_refund(order=order, quantities={tea_line.pk: 2}, actor=staff_user)
    before = order_state(order)

    # when
    with pytest.raises(ShopError) as caught:
        order_refund(order=order, quantities={tea_line.pk: 2}, actor=staff_user)

    # then
    assert caught.value.code == "too_many"
    assert order_state(order) == before
    assert Refund.objects.count() == 1
    assert stocks(tea, cup) == [9, 8]
    # what is left can still be refunded
    order_refund(order=order, quantities={tea_line.pk: 1}, actor=staff_user)
    assert OrderLine.objects.get(pk=tea_line.pk).refunded_quantity == 3


def test_refund_of_a_negative_quantity_is_refused(staff_user, paid_two_line_order):
    order, _tea, _cup, tea_line, _cup_line = paid_two_line_order
    before = order_state(order)

    with pytest.raises(ShopError):
        order_refund(order=order, quantities={tea_line.pk: -1}, actor=staff_user)

    assert order_state(order) == before


def test_refund_of_a_line_of_another_order_is_refused(staff_user, paid_two_line_order):
    order, tea, _cup, _tea_line, _cup_line = paid_two_line_order
    other = pay_order(place_order(shop_with_products(tea), {tea: 1}))
    other_line = OrderLine.objects.get(order=other)
    before, other_before = order_state(order), order_state(other)

    with pytest.raises(ShopError) as caught:
        order_refund(order=order, quantities={other_line.pk: 1}, actor=staff_user)

    assert caught.value.code == "unknown_line"
    assert order_state(order) == before
    assert order_state(other) == other_before


def test_full_refund_makes_the_order_refunded(staff_user, paid_two_line_order):
    order, tea, cup, tea_line, cup_line = paid_two_line_order

    refund = order_refund(order=order, quantities=None, actor=staff_user, reason="Changed mind")

    order = Order.objects.get(pk=order.pk)
    assert (order.status, order.refunded_total, order.total) == (Status.REFUNDED, Decimal("70.20"), Decimal("70.20"))
    assert Refund.objects.get(pk=refund.pk).amount == Decimal("70.20")
    assert sorted(RefundLine.objects.values_list("order_line_id", "quantity", "amount")) == sorted(
        [(tea_line.pk, 3, Decimal("59.70")), (cup_line.pk, 2, Decimal("10.50"))]
    )
    assert stocks(tea, cup) == [10, 10]
    assert status_events(order)[-1] == (Status.PAID, Status.REFUNDED, staff_user.pk, "staff")


def test_refunding_the_rest_after_a_partial_refund_makes_the_order_refunded(staff_user, paid_two_line_order):
    order, _tea, _cup, tea_line, cup_line = paid_two_line_order
    order_refund(order=order, quantities={tea_line.pk: 1}, actor=staff_user)

    order_refund(order=order, quantities={tea_line.pk: 2, cup_line.pk: 2}, actor=staff_user)

    order = Order.objects.get(pk=order.pk)
    assert (order.status, order.refunded_total) == (Status.REFUNDED, Decimal("70.20"))
    assert Refund.objects.filter(order=order).count() == 2


def test_refund_of_a_fully_refunded_order_is_refused(staff_user, paid_two_line_order):
    order = paid_two_line_order[0]
    order_refund(order=order, actor=staff_user)
    before = order_state(order)

    with pytest.raises(IllegalTransition):
        order_refund(order=order, actor=staff_user)

    assert order_state(order) == before


def test_refund_of_an_unpaid_order_is_refused(staff_user):
    product = ProductFactory(stock=10)
    order = place_order(shop_with_products(product), {product: 2})
    line = OrderLine.objects.get(order=order)
    before = order_state(order)

    with pytest.raises(IllegalTransition) as caught:
        order_refund(order=order, quantities={line.pk: 1}, actor=staff_user)

    assert caught.value.code == "not_refundable"
    assert order_state(order) == before
    assert Refund.objects.count() == 0


def test_refund_of_a_cancelled_order_is_refused(staff_user):
    order = place_order(shop_with_products())
    order_cancel(order=order, actor_label="buyer")
    before = order_state(order)

    with pytest.raises(IllegalTransition):
        order_refund(order=order, actor=staff_user)

    assert order_state(order) == before


# --- the commission hand-off ---------------------------------------------------------


def test_commission_split_is_scheduled_once_after_payment_commits_and_not_on_a_replay(
    django_capture_on_commit_callbacks, recorded_delays
):
    # given
    order = place_order(shop_with_products())
    payment, _url = payment_start(order=order, notify_url="http://testserver/wh", return_url="http://testserver/r")
    body, headers = build_webhook(payment, "succeeded")

    # when
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        payment_webhook_receive(provider_name="sandbox", body=body, headers=headers)
        assert recorded_delays["split"] == []  # nothing is sent before the commit

    # then: the split asked for and the order's transition announced, both after the commit
    assert len(callbacks) == 2
    assert recorded_delays == {"split": [None], "refund": []}

    # a replayed webhook schedules nothing
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        result = payment_webhook_receive(provider_name="sandbox", body=body, headers=headers)
    assert result.duplicate is True
    assert callbacks == []
    assert recorded_delays == {"split": [None], "refund": []}


def test_commission_split_is_not_scheduled_for_a_refused_webhook(django_capture_on_commit_callbacks, recorded_delays):
    order = place_order(shop_with_products())
    payment, _url = payment_start(order=order, notify_url="http://testserver/wh", return_url="http://testserver/r")
    body, headers = build_webhook(payment, "succeeded")
    signature = headers["X-Sandbox-Signature"]
    headers["X-Sandbox-Signature"] = signature[:-1] + ("1" if signature.endswith("0") else "0")  # always forged

    with django_capture_on_commit_callbacks(execute=True) as callbacks, pytest.raises(services.WebhookRejected):
        payment_webhook_receive(provider_name="sandbox", body=body, headers=headers)

    assert callbacks == []
    assert recorded_delays == {"split": [], "refund": []}


def test_commission_refund_is_scheduled_once_per_refund(
    django_capture_on_commit_callbacks, recorded_delays, staff_user, paid_two_line_order
):
    order, _tea, _cup, tea_line, cup_line = paid_two_line_order

    with django_capture_on_commit_callbacks(execute=True) as first_callbacks:
        first = order_refund(order=order, quantities={tea_line.pk: 1}, actor=staff_user)
        assert recorded_delays["refund"] == []
    with django_capture_on_commit_callbacks(execute=True) as second_callbacks:
        second = order_refund(order=order, quantities={cup_line.pk: 2}, actor=staff_user)

    assert (len(first_callbacks), len(second_callbacks)) == (1, 1)
    assert recorded_delays == {"split": [], "refund": [first.pk, second.pk]}


def test_refused_refund_schedules_no_commission_reversal(
    django_capture_on_commit_callbacks, recorded_delays, staff_user, paid_two_line_order
):
    order, _tea, _cup, tea_line, _cup_line = paid_two_line_order

    with django_capture_on_commit_callbacks(execute=True) as callbacks, pytest.raises(ShopError):
        order_refund(order=order, quantities={tea_line.pk: 4}, actor=staff_user)

    assert callbacks == []
    assert recorded_delays == {"split": [], "refund": []}


def test_late_payment_for_a_cancelled_order_schedules_no_commission_split(
    django_capture_on_commit_callbacks, recorded_delays
):
    order = place_order(shop_with_products())
    payment, _url = payment_start(order=order, notify_url="http://testserver/wh", return_url="http://testserver/r")
    order_cancel(order=order, actor_label="system")
    body, headers = build_webhook(payment, "succeeded")

    with django_capture_on_commit_callbacks(execute=True):
        result = payment_webhook_receive(provider_name="sandbox", body=body, headers=headers)

    assert result.outcome == "late payment refunded"
    assert recorded_delays == {"split": [], "refund": []}
    assert Order.objects.get(pk=order.pk).status == Status.CANCELLED


def test_placing_an_order_without_any_contact_is_a_clear_error():
    product = ProductFactory(stock=3)
    shop = shop_with_products(product)
    nobody = BuyerDetails(name="Li", phone="", email="", address="2 Huaihai Road")

    with pytest.raises(ShopError) as refused:
        order_place(shop=shop, items={product.pk: 1}, buyer=nobody)

    assert refused.value.code == "buyer"
    assert Order.objects.count() == 0
    assert Product.objects.get(pk=product.pk).stock == 3


def test_a_retried_refund_after_a_rollback_sends_the_same_idempotency_key(monkeypatch):
    order = pay_order(place_order(shop_with_products()))
    line = order.lines.first()
    keys = []
    real_refund = SandboxProvider.refund

    def refund_then_crash(self, payment, amount, idempotency_key):
        keys.append(idempotency_key)
        real_refund(self, payment, amount, idempotency_key)
        raise RuntimeError("connection lost after the provider refunded")

    monkeypatch.setattr(SandboxProvider, "refund", refund_then_crash)
    with pytest.raises(RuntimeError):
        order_refund(order=order, quantities={line.pk: 1})
    monkeypatch.setattr(SandboxProvider, "refund", real_refund)
    refund = order_refund(order=order, quantities={line.pk: 1})

    assert Refund.objects.count() == 1
    assert keys == [refund.idempotency_key]
