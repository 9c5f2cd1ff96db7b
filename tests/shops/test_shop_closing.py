"""A shop that stops (issue #24; 电子商务法 art. 16: announced on its home page thirty days ahead): the closing notice
during the period, buying until then, and after it a 410 page, a 404 for its links and no orders."""

from datetime import timedelta

import pytest
from django.core.cache import cache
from django.urls import reverse
from django.utils import timezone

from shops.models import ShopEvent
from shops.selectors import share_link_lookup
from shops.services import ShopError, order_place, share_link_create, shop_close_announce
from tests.factories import BUYER, ProductFactory, shop_with_products

pytestmark = pytest.mark.django_db


@pytest.fixture
def shop():
    return shop_with_products(ProductFactory(title="Oolong"), slug="closing-tea")


def _product(shop):
    return shop.listings.first().product


def test_the_notice_shows_the_date_on_the_shop_and_product_pages_and_buying_goes_on(client, shop, settings):
    # when
    shop = shop_close_announce(shop=shop, actor=None, reason="The owner closed the shop.")

    # then
    assert shop.closes_at.date() == (timezone.now() + timedelta(days=settings.SHOP_CLOSING_NOTICE_DAYS)).date()
    home = client.get(reverse("shops:shop_home", args=[shop.slug]))
    product = client.get(reverse("shops:product_detail", args=[shop.slug, _product(shop).pk]))
    for page in (home, product):
        assert page.status_code == 200
        body = page.content.decode()
        assert 'id="shop-closing-notice"' in body and "This shop closes on" in body
        assert "You can still order until then." in body
    order_place(shop=shop, items={_product(shop).pk: 1}, buyer=BUYER)  # still selling
    event = ShopEvent.objects.get(shop=shop, kind=ShopEvent.Kind.CLOSING)
    assert event.detail["closes_at"] == shop.closes_at.isoformat()


def test_announcing_twice_keeps_the_first_date(shop):
    first = shop_close_announce(shop=shop, actor=None, reason="closing").closes_at
    again = shop_close_announce(shop=shop, actor=None, reason="closing", notice_days=90).closes_at
    assert again == first
    assert ShopEvent.objects.filter(shop=shop, kind=ShopEvent.Kind.CLOSING).count() == 1


def test_a_reason_is_required(shop):
    with pytest.raises(ShopError):
        shop_close_announce(shop=shop, actor=None, reason=" ")
    shop.refresh_from_db()
    assert shop.closes_at is None


def test_after_the_date_the_shop_is_gone_its_links_go_nowhere_and_it_takes_no_orders(client, shop, settings):
    # given: a notice announced 31 days ago, which ended yesterday
    link = share_link_create(owner=shop.owner, product=_product(shop))
    shop = shop_close_announce(
        shop=shop, actor=None, reason="closing", now=timezone.now() - timedelta(days=31), notice_days=30
    )
    cache.clear()  # the link's target is cached for LINK_CACHE_SECONDS in production

    home = client.get(reverse("shops:shop_home", args=[shop.slug]))
    product = client.get(reverse("shops:product_detail", args=[shop.slug, _product(shop).pk]))
    cart = client.get(reverse("shops:cart", args=[shop.slug]))
    followed = client.get(f"/l/{link.code}")

    assert home.status_code == 410 and 'id="shop-closed"' in home.content.decode()
    assert product.status_code == 410
    assert cart.status_code == 404
    assert share_link_lookup(link.code) is None
    assert followed.status_code == 404 and settings.ATTRIBUTION_COOKIE not in followed.cookies
    with pytest.raises(ShopError):
        order_place(shop=shop, items={_product(shop).pk: 1}, buyer=BUYER)


def test_stopping_sales_at_once_shows_the_notice_without_taking_orders(client, shop):
    shop = shop_close_announce(shop=shop, actor=None, reason="account closed", stop_sales=True)
    body = client.get(reverse("shops:shop_home", args=[shop.slug])).content.decode()
    assert "It no longer takes orders." in body
    assert "This shop is closed for now" not in body  # one notice, not two
    with pytest.raises(ShopError):
        order_place(shop=shop, items={_product(shop).pk: 1}, buyer=BUYER)


def test_the_owner_closes_only_the_shop_from_their_account_page(client, shop):
    client.force_login(shop.owner.user)
    url = reverse("members:shop_close")

    refused = client.post(url, {})
    assert refused.status_code == 400
    shop.refresh_from_db()
    assert shop.closes_at is None

    response = client.post(url, {"confirm": "on"})
    assert response.status_code == 302
    shop.refresh_from_db()
    assert shop.is_closing() and shop.is_open
    assert 'id="shop-closing"' in client.get(url).content.decode()
    shop.owner.refresh_from_db()
    assert shop.owner.is_active  # the account and the team stay
