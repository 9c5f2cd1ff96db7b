"""What checkout keeps for the fraud rules (issue #25): the buyer's network address and device cookie, hashed, never
in clear; the device cookie set once, only where a rule needs it; and a member's sign-in recorded the same way."""

import pytest
from django.conf import settings
from django.urls import reverse

from commissions.models import RiskSighting
from core.ratelimit import ip_key
from shops.models import Order
from tests.factories import PASSWORD, MemberFactory, shop_with_products

pytestmark = pytest.mark.django_db
BUYER = {"name": "Li", "phone": "", "email": "li@example.com", "address": "2 Huaihai Road"}


def checkout(client, shop):
    product = shop.listings.first().product
    client.post(reverse("shops:product_detail", args=[shop.slug, product.pk]), {"quantity": 1})
    return client.post(reverse("shops:checkout", args=[shop.slug]), BUYER, REMOTE_ADDR="203.0.113.7")


def test_checkout_keeps_hashed_network_and_device_keys_and_sets_the_device_cookie(client):
    shop = shop_with_products()
    response = checkout(client, shop)

    token = response.cookies[settings.DEVICE_COOKIE].value
    order = Order.objects.get()
    assert order.network_key == ip_key("203.0.113.7") and "203.0.113.7" not in order.network_key
    assert order.device_key == ip_key(f"device:{token}") and token not in order.device_key
    # the same browser again: the same device, no new cookie
    again = checkout(client, shop)
    assert settings.DEVICE_COOKIE not in again.cookies
    assert Order.objects.order_by("pk").last().device_key == order.device_key


def test_pages_that_need_no_device_set_no_cookie(client):
    shop = shop_with_products()
    response = client.get(reverse("shops:shop_home", args=[shop.slug]))
    assert settings.DEVICE_COOKIE not in response.cookies


def test_a_members_sign_in_is_recorded_hashed(client):
    member = MemberFactory()
    response = client.post(
        reverse("login"), {"username": member.user.email, "password": PASSWORD}, REMOTE_ADDR="198.51.100.4"
    )
    assert response.status_code == 302
    sightings = dict(RiskSighting.objects.filter(member=member).values_list("kind", "key"))
    assert sightings["network"] == ip_key("198.51.100.4")
    assert len(sightings["device"]) == 32
