"""Unpaid checkouts cannot drain the stock (issue #19, item 1).

Stock is reserved at checkout and held until payment or the payment timeout. Seven unpaid checkouts from one
address once held all 2,796 units of the demo shop, and real buyers saw "sold out". Now what one order, one buyer
(phone or email) and one client address may hold unpaid is limited (ORDER_MAX_UNITS_PER_ORDER,
ORDER_UNPAID_UNITS_PER_BUYER, ORDER_UNPAID_UNITS_PER_ADDRESS), checked under a lock with the reservation; a refused
checkout says why and reserves nothing; the timeout releases what unpaid orders held.
"""

from datetime import timedelta

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from shops.cart import Cart
from shops.models import Order, OrderLine, Product
from shops.tasks import orders_cancel_expired_task
from tests.factories import ProductFactory, pay_order, shop_with_products
from tests.referrals.test_concurrency import run_together

ATTACKER = "203.0.113.7"
NEIGHBOUR = "198.51.100.20"


def _stock(*products) -> list[int]:
    return [Product.objects.get(pk=product.pk).stock for product in products]


def _fill_cart(client, shop, items: dict, ip: str) -> None:
    for product, quantity in items.items():
        response = client.post(
            reverse("shops:product_detail", args=[shop.slug, product.pk]), {"quantity": quantity}, REMOTE_ADDR=ip
        )
        assert response.status_code == 302


def _checkout(client, shop, ip: str, phone: str, email: str = ""):
    data = {"name": "Wang Fang", "phone": phone, "email": email, "address": "1 Nanjing Road"}
    return client.post(reverse("shops:checkout", args=[shop.slug]), data, REMOTE_ADDR=ip)


def _buy(shop, items: dict, ip: str, phone: str, email: str = ""):
    client = Client()
    _fill_cart(client, shop, items, ip)
    return _checkout(client, shop, ip, phone, email)


@pytest.fixture
def limits(settings):
    settings.ORDER_MAX_QUANTITY_PER_LINE = 99
    settings.ORDER_MAX_UNITS_PER_ORDER = 100
    settings.ORDER_UNPAID_UNITS_PER_BUYER = 100
    settings.ORDER_UNPAID_UNITS_PER_ADDRESS = 200
    settings.ORDER_PAYMENT_TIMEOUT_MINUTES = 30
    settings.RATE_LIMIT_CHECKOUT = "0"  # the limits on units are what is tested here, not the rate of checkouts
    return settings


@pytest.mark.django_db
def test_unpaid_checkouts_from_one_address_cannot_hold_the_whole_stock(limits):
    # given: a shop's stock, and an outsider checking out from one address with a new phone number each time
    tea, cups = ProductFactory(title="Tea", stock=1500), ProductFactory(title="Cups", stock=1296)
    shop = shop_with_products(tea, cups, slug="demo-like")
    placed = [
        _buy(shop, {tea: 50, cups: 50}, ATTACKER, phone=f"1390000{number:04d}").status_code for number in range(2)
    ]
    assert placed == [302, 302]  # 200 units, the most one address may hold unpaid
    before = _stock(tea, cups)

    # when the outsider checks out again (five more times)
    refused = [_buy(shop, {tea: 50, cups: 50}, ATTACKER, phone=f"1390001{number:04d}") for number in range(5)]

    # then each is refused with a clear message, and nothing more is reserved
    assert [response.status_code for response in refused] == [400] * 5
    page = refused[0].content.decode()
    assert "Orders awaiting payment from your network already hold 200 items" in page
    assert "at most 200 may wait at once" in page
    assert "after 30 minutes" in page
    assert Order.objects.count() == 2
    assert _stock(tea, cups) == before == [1400, 1196]

    # and a real buyer elsewhere still buys
    assert _buy(shop, {tea: 2}, NEIGHBOUR, phone="13800138000").status_code == 302
    assert _stock(tea, cups) == [1398, 1196]


@pytest.mark.django_db
def test_the_payment_timeout_releases_what_unpaid_orders_held(limits):
    # given: an address holding all it may, unpaid
    tea = ProductFactory(stock=1000)
    shop = shop_with_products(tea)
    assert _buy(shop, {tea: 99}, ATTACKER, phone="13900000001").status_code == 302
    assert _buy(shop, {tea: 99}, ATTACKER, phone="13900000002").status_code == 302
    assert _buy(shop, {tea: 3}, ATTACKER, phone="13900000003").status_code == 400
    assert _stock(tea) == [802]

    # when the payment timeout passes and the periodic task runs
    Order.objects.update(created_at=timezone.now() - timedelta(minutes=31))
    assert orders_cancel_expired_task.delay().get() == 2

    # then the stock is back, the orders no longer hold anything, and the address may check out again
    assert _stock(tea) == [1000]
    assert set(Order.objects.values_list("status", "client_key")) == {("cancelled", "")}
    assert _buy(shop, {tea: 3}, ATTACKER, phone="13900000003").status_code == 302
    assert _stock(tea) == [997]


@pytest.mark.django_db
def test_one_buyer_may_hold_only_so_much_unpaid_from_any_address(limits):
    tea, cups = ProductFactory(stock=500), ProductFactory(stock=500)
    shop = shop_with_products(tea, cups)
    assert _buy(shop, {tea: 60}, "203.0.113.1", phone="13900001111").status_code == 302
    assert _buy(shop, {cups: 40}, "203.0.113.2", phone="", email="wang@example.com").status_code == 302

    # the same phone from another address, and the same email in another case with another phone
    by_phone = _buy(shop, {tea: 41}, "203.0.113.3", phone="13900001111")
    by_email = _buy(shop, {tea: 61}, "203.0.113.4", phone="13900002222", email="Wang@Example.com")

    assert by_phone.status_code == by_email.status_code == 400
    message = "Orders awaiting payment with this phone number or email already hold"
    assert f"{message} 60 items" in by_phone.content.decode()
    assert f"{message} 40 items" in by_email.content.decode()
    assert Order.objects.count() == 2
    assert _stock(tea, cups) == [440, 460]
    # another buyer is not held back by them
    assert _buy(shop, {tea: 1}, "203.0.113.5", phone="13900003333").status_code == 302


@pytest.mark.django_db
def test_an_order_over_the_units_per_order_is_refused_whole_and_the_cart_kept(limits, client):
    tea, cups = ProductFactory(stock=500), ProductFactory(stock=500)
    shop = shop_with_products(tea, cups)
    _fill_cart(client, shop, {tea: 60, cups: 41}, NEIGHBOUR)

    response = _checkout(client, shop, NEIGHBOUR, phone="13900001111")

    assert response.status_code == 400
    assert "An order may hold at most 100 items; this one has 101." in response.content.decode()
    assert not Order.objects.exists()
    assert _stock(tea, cups) == [500, 500]
    assert Cart(client.session, shop.pk).items() == {tea.pk: 60, cups.pk: 41}  # kept, to change and try again


@pytest.mark.django_db
def test_paying_releases_the_hold_and_the_address_is_not_kept(limits, settings):
    settings.ORDER_UNPAID_UNITS_PER_ADDRESS = 10
    tea = ProductFactory(stock=100)
    shop = shop_with_products(tea)
    assert _buy(shop, {tea: 10}, ATTACKER, phone="13900000001").status_code == 302
    order = Order.objects.get()
    assert len(order.client_key) == 32 and ATTACKER not in order.client_key

    pay_order(order)

    order.refresh_from_db()
    assert (order.status, order.client_key) == ("paid", "")
    assert _buy(shop, {tea: 10}, ATTACKER, phone="13900000002").status_code == 302


@pytest.mark.django_db
def test_a_limit_of_zero_is_off(limits, settings):
    settings.ORDER_MAX_UNITS_PER_ORDER = 0
    settings.ORDER_UNPAID_UNITS_PER_BUYER = 0
    settings.ORDER_UNPAID_UNITS_PER_ADDRESS = 0
    tea, cups = ProductFactory(stock=1000), ProductFactory(stock=1000)
    shop = shop_with_products(tea, cups)

    statuses = [_buy(shop, {tea: 99, cups: 99}, ATTACKER, phone="13900000001").status_code for _ in range(3)]

    assert statuses == [302] * 3
    assert _stock(tea, cups) == [703, 703]


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_checkouts_from_one_address_never_pass_the_limit_together(limits, settings):
    # given: ten buyers' carts ready on one address, 30 units each, where the address may hold 100 unpaid
    settings.ORDER_UNPAID_UNITS_PER_ADDRESS = 100
    tea = ProductFactory(stock=1000)
    shop = shop_with_products(tea)
    clients = []
    for _number in range(10):
        client = Client()
        _fill_cart(client, shop, {tea: 30}, ATTACKER)
        clients.append(client)

    # when all ten check out at the same moment, each with its own phone number
    results, errors = run_together(
        [
            lambda client=client, number=number: _checkout(client, shop, ATTACKER, phone=f"1390000{number:04d}")
            for number, client in enumerate(clients)
        ]
    )

    # then exactly three got through: the address holds 90 units, never more than 100
    assert errors == []
    assert sorted(response.status_code for response in results) == [302] * 3 + [400] * 7
    assert Order.objects.count() == 3
    assert sum(OrderLine.objects.values_list("quantity", flat=True)) == 90
    assert _stock(tea) == [910]


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_checkouts_of_one_buyer_from_many_addresses_never_pass_the_limit_together(limits):
    tea = ProductFactory(stock=1000)
    shop = shop_with_products(tea)
    clients = []
    for number in range(8):
        client = Client()
        _fill_cart(client, shop, {tea: 40}, f"203.0.113.{number + 1}")
        clients.append(client)

    results, errors = run_together(
        [
            lambda client=client, number=number: _checkout(client, shop, f"203.0.113.{number + 1}", "13900001111")
            for number, client in enumerate(clients)
        ]
    )

    assert errors == []
    assert sorted(response.status_code for response in results) == [302] * 2 + [400] * 6
    assert sum(OrderLine.objects.values_list("quantity", flat=True)) == 80
    assert _stock(tea) == [920]
