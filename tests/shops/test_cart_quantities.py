"""Quantities in the cart (issue #19): 0, a negative number or text is never silently ignored. The product page
refuses them with a form error; in the cart, 0 takes the product out and says so, anything else invalid is a
400 that says why and changes nothing."""

from decimal import Decimal

import pytest
from django.conf import settings
from django.contrib.messages import get_messages
from django.urls import reverse

from tests.factories import ProductFactory, shop_with_products

pytestmark = pytest.mark.django_db


@pytest.fixture
def tea():
    return ProductFactory(title="Longjing tea", price=Decimal("88.00"), stock=500)


@pytest.fixture
def shop(tea):
    return shop_with_products(tea, ProductFactory(title="Tea cup", price=Decimal("12.50"), stock=500))


def cart(client, shop) -> dict:
    return client.session.get("cart", {}).get(str(shop.pk), {})


def messages_of(response) -> list[tuple[str, str]]:
    return [(message.level_tag, str(message)) for message in get_messages(response.wsgi_request)]


def add(client, shop, product, quantity):
    return client.post(reverse("shops:product_detail", args=[shop.slug, product.pk]), {"quantity": quantity})


def put_in_cart(client, shop, product, quantity) -> None:
    """Add, then read the cart page (as the redirect does), which shows and so clears the "Added" message."""
    add(client, shop, product, quantity)
    client.get(reverse("shops:cart", args=[shop.slug]))


@pytest.mark.parametrize(
    ("quantity", "error"),
    [
        ("0", "A quantity of 0 adds nothing to your cart: enter at least 1."),
        ("-2", "A quantity of -2 adds nothing to your cart: enter at least 1."),
        ("two", "Enter the quantity as a whole number, e.g. 1 or 2."),
        ("", "Enter how many you want, e.g. 1."),
        ("100", "You can order at most 99 of a product at a time."),
    ],
)
def test_adding_a_quantity_that_adds_nothing_says_so_and_changes_nothing(client, shop, tea, quantity, error):
    add(client, shop, tea, 1)

    response = add(client, shop, tea, quantity)

    assert response.status_code == 400
    assert response.context["form"].errors == {"quantity": [error]}
    assert error in response.content.decode()
    assert cart(client, shop) == {str(tea.pk): 1}


def test_adding_more_than_the_cart_holds_says_how_many_it_has(client, shop, tea):
    put_in_cart(client, shop, tea, 98)

    response = add(client, shop, tea, 5)

    assert cart(client, shop) == {str(tea.pk): settings.ORDER_MAX_QUANTITY_PER_LINE}
    assert messages_of(response) == [
        ("warning", "You can order at most 99 of a product at a time: your cart now has 99 of it.")
    ]


def test_a_quantity_of_zero_in_the_cart_takes_the_product_out_and_says_so(client, shop, tea):
    put_in_cart(client, shop, tea, 2)

    response = client.post(reverse("shops:cart", args=[shop.slug]), {"product": tea.pk, "quantity": "0"})

    assert response.status_code == 302
    assert cart(client, shop) == {}
    assert messages_of(response) == [("success", "You set “Longjing tea” to 0, so it is no longer in your cart.")]


def test_changing_a_quantity_in_the_cart_says_what_it_is_now(client, shop, tea):
    put_in_cart(client, shop, tea, 2)

    response = client.post(reverse("shops:cart", args=[shop.slug]), {"product": tea.pk, "quantity": "3"})

    assert cart(client, shop) == {str(tea.pk): 3}
    assert messages_of(response) == [("success", "Your cart now has 3 of “Longjing tea”.")]


@pytest.mark.parametrize(
    ("quantity", "problem"),
    [
        ("-1", "A quantity cannot be below 0: enter 0 to take the product out of your cart."),
        ("1.5", "Enter the quantity as a whole number, e.g. 1 or 2."),
        ("lots", "Enter the quantity as a whole number, e.g. 1 or 2."),
        ("", "Enter how many you want, e.g. 1."),
        ("1000", "You can order at most 99 of a product at a time."),
    ],
)
def test_an_invalid_quantity_in_the_cart_is_a_400_that_says_why_and_changes_nothing(
    client, shop, tea, quantity, problem
):
    put_in_cart(client, shop, tea, 2)

    response = client.post(reverse("shops:cart", args=[shop.slug]), {"product": tea.pk, "quantity": quantity})

    assert response.status_code == 400
    assert f"“Longjing tea”: {problem}" in response.content.decode()
    assert cart(client, shop) == {str(tea.pk): 2}


def test_a_product_of_another_shop_cannot_be_put_in_the_cart(client, shop, tea):
    other = ProductFactory(title="Not listed here")
    add(client, shop, tea, 1)

    response = client.post(reverse("shops:cart", args=[shop.slug]), {"product": other.pk, "quantity": "5"})

    assert response.status_code == 400
    assert cart(client, shop) == {str(tea.pk): 1}


def test_remove_takes_the_product_out_and_says_so(client, shop, tea):
    put_in_cart(client, shop, tea, 1)

    response = client.post(reverse("shops:cart", args=[shop.slug]), {"product": tea.pk, "quantity": "1", "remove": "1"})

    assert cart(client, shop) == {}
    assert messages_of(response) == [("success", "“Longjing tea” is no longer in your cart.")]
