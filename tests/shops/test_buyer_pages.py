"""A buyer's whole path over HTTP (the owner's shop pages are tests/members/test_my_shop.py)."""

from decimal import Decimal
from urllib.parse import urlparse

import pytest
from django.urls import reverse

from shops.models import Order, Product
from shops.services import shop_update
from tests.factories import ProductFactory, place_order, shop_with_products

pytestmark = pytest.mark.django_db


@pytest.fixture
def webhooks_via_client(client, monkeypatch):
    """Deliver the sandbox provider's webhooks to our endpoint through the test client, as HTTP would."""
    delivered = []

    def deliver(url, body, headers):
        path = urlparse(url).path
        response = client.generic("POST", path, body.encode(), content_type="application/json", headers=headers)
        delivered.append(response)

    monkeypatch.setattr("shops.tasks.sandbox_webhook_deliver_task.delay", deliver)
    return delivered


def test_a_buyer_finds_buys_pays_and_looks_up_an_order(client, webhooks_via_client):
    tea = ProductFactory(title="Longjing tea", price=Decimal("88.00"), stock=10, commission_rate=Decimal("0.1500"))
    cup = ProductFactory(title="Tea cup", price=Decimal("12.50"), stock=3)
    shop = shop_with_products(tea, cup, slug="lis-tea")

    # the shop page lists both products with prices in the currency
    home = client.get(reverse("shops:shop_home", args=[shop.slug]))
    assert home.status_code == 200
    assert "Longjing tea" in home.content.decode()
    assert "¥88.00" in home.content.decode()

    # add to cart from the product pages, change a quantity, remove nothing
    client.post(reverse("shops:product_detail", args=[shop.slug, tea.pk]), {"quantity": 1})
    client.post(reverse("shops:product_detail", args=[shop.slug, cup.pk]), {"quantity": 1})
    client.post(reverse("shops:cart", args=[shop.slug]), {"product": cup.pk, "quantity": 2})
    cart = client.get(reverse("shops:cart", args=[shop.slug]))
    assert "¥113.00" in cart.content.decode()  # 88.00 + 2 × 12.50

    # checkout with bad input: errors beside the fields, nothing ordered
    checkout_url = reverse("shops:checkout", args=[shop.slug])
    bad = client.post(checkout_url, {"name": "", "phone": "abc", "email": "", "address": "x"})
    assert bad.status_code == 400
    assert set(bad.context["form"].errors) == {"name", "phone", "address"}
    assert Order.objects.count() == 0

    # good input: an order, stock reserved, off to the sandbox provider's page
    good = client.post(
        checkout_url, {"name": "Wang Fang", "phone": "13900001111", "email": "", "address": "1 Nanjing Road"}
    )
    order = Order.objects.get()
    assert good.status_code == 302
    assert good["Location"].startswith("/pay/sandbox/")
    assert (order.total, order.status, order.sharer_id) == (Decimal("113.00"), "pending_payment", shop.owner_id)
    assert [(line.title, line.unit_price, line.quantity, line.net_amount, line.commission_rate) for line in
            order.lines.all()] == [
        ("Longjing tea", Decimal("88.00"), 1, Decimal("88.00"), Decimal("0.1500")),
        ("Tea cup", Decimal("12.50"), 2, Decimal("25.00"), Decimal("0.1000")),
    ]  # fmt: skip
    assert Product.objects.get(pk=cup.pk).stock == 1

    # pay on the sandbox page: it sends the signed webhook, and the buyer comes back to a confirmation
    pay_page = client.get(good["Location"])
    assert "¥113.00" in pay_page.content.decode()
    back = client.post(good["Location"], {"outcome": "succeeded"})
    assert [r.status_code for r in webhooks_via_client] == [200]
    confirmation = client.get(back["Location"])
    assert confirmation.status_code == 200
    assert "Payment is confirmed" in confirmation.content.decode().replace("payment", "Payment")
    order.refresh_from_db()
    assert order.status == "paid"

    # a new browser finds the order by number and phone, not by number alone
    other = client.__class__()
    lookup_url = reverse("shops:order_lookup")
    assert other.get(reverse("shops:order_detail", args=[order.number])).status_code == 404
    wrong = other.post(lookup_url, {"number": order.number, "contact": "13900009999"})
    assert wrong.status_code == 400
    found = other.post(lookup_url, {"number": order.number, "contact": "13900001111"})
    assert found["Location"] == reverse("shops:order_detail", args=[order.number])
    assert "Tea cup" in other.get(found["Location"]).content.decode()


def test_declined_payment_leaves_the_order_awaiting_payment(client, webhooks_via_client):
    shop = shop_with_products()
    product = shop.listings.first().product
    client.post(reverse("shops:product_detail", args=[shop.slug, product.pk]), {"quantity": 1})
    pay = client.post(
        reverse("shops:checkout", args=[shop.slug]),
        {"name": "Li", "phone": "", "email": "li@example.com", "address": "2 Huaihai Road"},
    )

    client.post(pay["Location"], {"outcome": "failed"})

    order = Order.objects.get()
    assert order.status == "pending_payment"
    assert order.payments.get().status == "failed"
    page = client.get(reverse("shops:order_detail", args=[order.number])).content.decode()
    assert "Pay again" in page  # tests/shops/test_order_page.py says what else the page shows


def test_losing_the_race_for_the_last_unit_says_sold_out_and_changes_nothing(client):
    last = ProductFactory(title="Last jar", stock=1)
    shop = shop_with_products(last)
    client.post(reverse("shops:product_detail", args=[shop.slug, last.pk]), {"quantity": 1})
    place_order(shop, {last: 1})  # someone else buys it first

    response = client.post(
        reverse("shops:checkout", args=[shop.slug]),
        {"name": "Li", "phone": "13900001111", "email": "", "address": "2 Huaihai Road"},
    )

    assert response.status_code == 400
    assert "sold out" in response.content.decode()
    assert Order.objects.count() == 1
    assert Product.objects.get(pk=last.pk).stock == 0


def test_closed_shop_and_inactive_product_are_not_for_sale(client):
    shop = shop_with_products()
    product = shop.listings.first().product
    shop_update(shop=shop, is_open=False)

    home = client.get(reverse("shops:shop_home", args=[shop.slug])).content.decode()
    added = client.post(reverse("shops:product_detail", args=[shop.slug, product.pk]), {"quantity": 1})
    Product.objects.filter(pk=product.pk).update(is_active=False)
    page = client.get(reverse("shops:product_detail", args=[shop.slug, product.pk])).content.decode()

    assert "closed" in home
    assert added.status_code == 200
    assert client.session.get("cart", {}) == {}
    assert "no longer for sale" in page


def test_unknown_shop_and_unlisted_product_are_404(client):
    shop = shop_with_products()
    elsewhere = ProductFactory()

    assert client.get(reverse("shops:shop_home", args=["no-such-shop"])).status_code == 404
    assert client.get(reverse("shops:product_detail", args=[shop.slug, elsewhere.pk])).status_code == 404


def test_shop_page_lists_in_a_fixed_number_of_queries(client, django_assert_max_num_queries):
    shop = shop_with_products(*[ProductFactory() for _ in range(30)])

    with django_assert_max_num_queries(4):
        response = client.get(reverse("shops:shop_home", args=[shop.slug]))

    assert response.content.decode().count('class="product-card"') == 30


def test_cart_page_queries_do_not_grow_with_lines(client, django_assert_max_num_queries):
    products = [ProductFactory() for _ in range(15)]
    shop = shop_with_products(*products)
    for product in products:
        client.post(reverse("shops:product_detail", args=[shop.slug, product.pk]), {"quantity": 1})

    with django_assert_max_num_queries(4):
        response = client.get(reverse("shops:cart", args=[shop.slug]))

    assert response.content.decode().count('name="remove"') == 15


def test_bad_cart_input_is_a_clear_error_not_a_500(client):
    shop = shop_with_products()
    product = shop.listings.first().product

    assert client.post(reverse("shops:cart", args=[shop.slug]), {"product": "x"}).status_code == 400
    bad_qty = client.post(reverse("shops:cart", args=[shop.slug]), {"product": product.pk, "quantity": "-3"})
    bad_add = client.post(reverse("shops:product_detail", args=[shop.slug, product.pk]), {"quantity": "lots"})

    assert bad_qty.status_code == 400  # tests/shops/test_cart_quantities.py: what each bad quantity says
    assert bad_add.status_code == 400
    assert client.session.get("cart", {}) == {}


def test_buyer_can_cancel_an_unpaid_order_and_stock_returns(client):
    product = ProductFactory(stock=5)
    shop = shop_with_products(product)
    client.post(reverse("shops:product_detail", args=[shop.slug, product.pk]), {"quantity": 2})
    client.post(
        reverse("shops:checkout", args=[shop.slug]),
        {"name": "Li", "phone": "13900001111", "email": "", "address": "2 Huaihai Road"},
    )
    order = Order.objects.get()

    client.post(reverse("shops:order_cancel", args=[order.number]))

    order.refresh_from_db()
    assert order.status == "cancelled"
    assert Product.objects.get(pk=product.pk).stock == 5


def test_checkout_asks_for_a_contact_together_with_the_other_errors(client):
    shop = shop_with_products()
    product = shop.listings.first().product
    client.post(reverse("shops:product_detail", args=[shop.slug, product.pk]), {"quantity": 1})

    response = client.post(reverse("shops:checkout", args=[shop.slug]), {"name": "", "address": ""})

    errors = response.context["form"].errors
    assert set(errors) == {"name", "phone", "address"}
    assert "phone number or an email" in errors["phone"][0]
