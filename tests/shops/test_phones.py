"""Buyers' phone numbers in one form, E.164 (issue #19): checkout stores it, the order look-up finds the order
whichever way the number is typed, and orders placed before are found too after the data migration."""

import importlib
from decimal import Decimal

import pytest
from django.apps import apps
from django.urls import reverse

from shops.models import Order
from shops.selectors import order_lookup
from shops.services import BuyerDetails, order_place
from tests.factories import MemberFactory, ProductFactory, UserFactory, place_order, shop_with_products

pytestmark = pytest.mark.django_db

# The four spellings of one number from the issue, and the form every one of them is stored and compared in.
SPELLINGS = ["+86 138-0013-8000", "13800138000", "138 0013 8000", "+8613800138000"]
E164 = "+8613800138000"
INVALID_MESSAGE = "Enter a valid phone number, e.g. 131 2345 6789, or with the country code, e.g. +86 131 2345 6789."


@pytest.fixture
def shop():
    return shop_with_products(ProductFactory(title="Longjing tea", price=Decimal("88.00"), stock=10))


def checkout(client, shop, phone: str):
    product = shop.listings.get().product
    client.post(reverse("shops:product_detail", args=[shop.slug, product.pk]), {"quantity": 1})
    return client.post(
        reverse("shops:checkout", args=[shop.slug]),
        {"name": "Wang Fang", "phone": phone, "email": "", "address": "1 Nanjing Road"},
    )


@pytest.mark.parametrize("typed", SPELLINGS)
def test_checkout_stores_any_spelling_in_e164_form(client, shop, typed):
    response = checkout(client, shop, typed)

    assert response.status_code == 302
    assert Order.objects.get().buyer_phone == E164


@pytest.mark.parametrize("typed", ["12345", "138-0013-800", "phone me", "+999 1234 5678"])
def test_checkout_refuses_a_number_that_is_not_one_with_a_clear_error(client, shop, typed):
    response = checkout(client, shop, typed)

    assert response.status_code == 400
    assert response.context["form"].errors == {"phone": [INVALID_MESSAGE]}
    assert Order.objects.count() == 0


@pytest.mark.parametrize("typed", SPELLINGS)
def test_the_order_look_up_finds_an_order_placed_with_another_spelling(client, shop, typed):
    # given: an order placed with the spelling the issue saw accepted at checkout
    checkout(client, shop, "+86 138-0013-8000")
    order = Order.objects.get()

    # when: a new browser looks it up with one of the four spellings
    other = client.__class__()
    response = other.post(reverse("shops:order_lookup"), {"number": f" {order.number} ", "contact": typed})

    # then
    assert response.status_code == 302
    assert response["Location"] == reverse("shops:order_detail", args=[order.number])
    assert other.get(response["Location"]).status_code == 200


def test_the_order_look_up_does_not_find_an_order_with_another_number(client, shop):
    checkout(client, shop, "+86 138-0013-8000")
    order = Order.objects.get()

    response = client.__class__().post(
        reverse("shops:order_lookup"), {"number": order.number, "contact": "139 0013 8000"}
    )

    assert response.status_code == 400
    assert response.context["form"].non_field_errors() == ["No order matches that number and phone or email."]


def test_the_order_look_up_explains_a_contact_that_is_neither_a_phone_nor_an_email(client, shop):
    checkout(client, shop, E164)
    order = Order.objects.get()

    response = client.__class__().post(reverse("shops:order_lookup"), {"number": order.number, "contact": "Wang"})

    assert response.status_code == 400
    assert response.context["form"].errors == {
        "contact": ["Enter the phone number or the email address you gave at checkout."]
    }


# --- orders placed before the numbers were normalised ----------------------------------------------------------


def run_migration():
    module = importlib.import_module("shops.migrations.0005_buyer_phones_e164")
    module.normalise_buyer_phones(apps, None)


@pytest.mark.parametrize("stored", SPELLINGS)
def test_the_migration_normalises_old_orders_and_the_look_up_finds_them(shop, stored):
    # given: an order stored as checkout stored it before: the number as typed
    order = place_order(shop)
    Order.objects.filter(pk=order.pk).update(buyer_phone=stored)

    # when
    run_migration()

    # then
    assert Order.objects.get(pk=order.pk).buyer_phone == E164
    assert [order_lookup(order.number, typed) for typed in SPELLINGS] == [order] * 4


def test_the_migration_keeps_an_old_invalid_number_findable_by_its_digits(shop):
    order = place_order(shop)
    Order.objects.filter(pk=order.pk).update(buyer_phone="123 4567")
    other = place_order(shop)
    Order.objects.filter(pk=other.pk).update(buyer_phone="", buyer_email="li@example.com")

    run_migration()
    run_migration()  # a second run changes nothing

    assert Order.objects.get(pk=order.pk).buyer_phone == "1234567"
    assert Order.objects.get(pk=other.pk).buyer_phone == ""
    assert order_lookup(order.number, "123-4567") == order
    assert order_lookup(other.number, "LI@example.com") == other


# --- the service, for every caller ------------------------------------------------------------------------------


@pytest.mark.parametrize("typed", SPELLINGS)
def test_order_place_stores_e164_whoever_calls_it(shop, typed):
    order = order_place(
        shop=shop,
        items={shop.listings.get().product_id: 1},
        buyer=BuyerDetails(name="Chen", phone=typed, email="", address="88 Century Avenue"),
    )

    assert order.buyer_phone == E164
    assert order_lookup(order.number, "138 0013 8000") == order


@pytest.mark.parametrize("typed", SPELLINGS)
def test_a_buyer_giving_the_sharers_phone_in_another_spelling_is_a_self_purchase(shop, typed):
    sharer = MemberFactory(user=UserFactory(phone=E164))

    order = order_place(
        shop=shop,
        items={shop.listings.get().product_id: 1},
        buyer=BuyerDetails(name="Chen", phone=typed, email="", address="88 Century Avenue"),
        sharer=sharer,
    )

    assert order.is_self_purchase is True
