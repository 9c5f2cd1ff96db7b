"""Products of external networks in members' shops (issue #12): the public shop page's section with its buy buttons,
the image hosts its Content-Security-Policy allows, and the demo's sandbox products. The owner's "Other platforms"
page is tests/members/test_my_shop_networks.py."""

import socket
from datetime import datetime
from io import StringIO
from urllib.request import urlopen

import pytest
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from networks.models import ExternalProduct, Network, TrackingId
from networks.selectors import image_origin, image_origins
from shops.models import ExternalListing
from shops.services import external_listing_add
from tests.factories import ShopFactory
from tests.security.test_csp import inline_problems

pytestmark = pytest.mark.django_db

PHONE_USER_AGENT = "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 Chrome/126.0 Mobile Safari/537.36"


# --- The public shop page ----------------------------------------------------------------------------------------


def test_the_shop_page_shows_external_products_with_a_buy_button_through_our_link(client, synced, sandbox_network):
    shop = ShopFactory()
    product = next(p for p in synced if p.coupon)
    ExternalProduct.objects.filter(pk=product.pk).update(synced_at=timezone.make_aware(datetime(2026, 3, 14, 9, 30)))
    product.refresh_from_db()
    listing = external_listing_add(shop=shop, product=product)

    response = client.get(reverse("shops:shop_home", args=[shop.slug]))
    html = response.content.decode()

    assert response.status_code == 200
    assert "From other platforms" in html
    assert f'<img src="{product.image_url}" alt="{product.title}"' in html
    assert '<span class="badge network-badge">Sandbox network</span>' in html
    assert f"¥{product.price - product.coupon}" in html and f"¥{product.price}" in html
    assert f"¥{product.coupon} coupon" in html
    assert "Price and coupon as of 03/14/2026" in html
    buy = f'<a class="button buy" href="/l/{listing.share_link.code}" rel="nofollow noopener" target="_blank">'
    assert buy + "Buy on Sandbox network</a>" in html
    assert "No products here yet." not in html
    assert sandbox_network.url in response["Content-Security-Policy"]  # the sandbox's pictures may load
    assert inline_problems(html) == []

    # The buy button: our /l/ link (counted like any click) → the network's tracking link → the product's page.
    clicked = client.get(f"/l/{listing.share_link.code}", HTTP_USER_AGENT=PHONE_USER_AGENT)
    assert (clicked.status_code, clicked["Location"]) == (302, listing.tracking_url)
    with urlopen(clicked["Location"], timeout=5) as page:  # noqa: S310 - the loopback sandbox
        assert product.title in page.read().decode()
    [click] = sandbox_network.clicks()
    assert (
        click["tracking_id"]
        == TrackingId.objects.get(member=shop.owner, network=Network.objects.get(code="sandbox")).value
    )


def test_the_shop_page_leaves_out_products_no_longer_offered(client, synced):
    shop = ShopFactory()
    withdrawn, shown = (external_listing_add(shop=shop, product=product) for product in synced[:2])
    ExternalProduct.objects.filter(pk=withdrawn.product_id).update(is_active=False)

    html = client.get(reverse("shops:shop_home", args=[shop.slug])).content.decode()

    assert shown.product.title in html and withdrawn.product.title not in html

    Network.objects.filter(code="sandbox").update(is_enabled=False)
    html = client.get(reverse("shops:shop_home", args=[shop.slug])).content.decode()
    assert "From other platforms" not in html and "No products here yet." in html


def test_the_shop_page_shows_no_picture_from_an_odd_address(client, synced):
    shop = ShopFactory()
    listing = external_listing_add(shop=shop, product=synced[0])
    ExternalProduct.objects.filter(pk=listing.product_id).update(image_url="javascript:alert(1)")

    response = client.get(reverse("shops:shop_home", args=[shop.slug]))

    assert "javascript:" not in response.content.decode()
    assert "img-src 'self' data:;" in response["Content-Security-Policy"] + ";"


def test_shop_page_queries_do_not_grow_with_external_listings(client, synced):
    shop = ShopFactory()
    url = reverse("shops:shop_home", args=[shop.slug])
    external_listing_add(shop=shop, product=synced[0])

    with CaptureQueriesContext(connection) as one:
        first = client.get(url)
    for product in synced[1:5]:
        external_listing_add(shop=shop, product=product)
    with CaptureQueriesContext(connection) as five:
        second = client.get(url)

    assert len(first.context["external_rows"]) == 1 and len(second.context["external_rows"]) == 5
    assert len(five) == len(one)


# --- Images and the CSP ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "origin"),
    [
        ("https://img.alicdn.com/bao/1.jpg", "https://img.alicdn.com"),
        ("http://127.0.0.1:8765/img/1.svg", "http://127.0.0.1:8765"),
        ("HTTPS://IMG.360buyimg.com/x.jpg?w=1", "https://img.360buyimg.com"),
        ("javascript:alert(1)", None),
        ("data:image/png;base64,AAAA", None),
        ("//img.example.com/1.jpg", None),
        ("https://user:pw@img.example.com/1.jpg", "https://img.example.com"),
        ("https://img.example.com;script-src *", None),
        ("https://img.example.com:99999/1.jpg", None),
        ("", None),
    ],
)
def test_only_plain_http_image_hosts_reach_the_policy(url, origin):
    assert image_origin(url) == origin


def test_image_origins_are_each_listed_once():
    products = [ExternalProduct(image_url=url) for url in ("https://a.example/1", "https://a.example/2", "x:y")]

    assert image_origins(products) == ["https://a.example"]


# --- The demo ---------------------------------------------------------------------------------------------------


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_the_demo_lists_sandbox_products_when_it_can_and_warns_when_it_cannot(
    sandbox_network, monkeypatch, settings, tmp_path
):
    settings.MEDIA_ROOT = tmp_path
    monkeypatch.setenv("NETWORK_SANDBOX_URL", f"http://127.0.0.1:{_closed_port()}")
    unreachable = StringIO()

    call_command("demo", stdout=unreachable)  # does not fail

    assert "Warning: the sandbox network is not reachable" in unreachable.getvalue()
    assert not ExternalListing.objects.exists()

    monkeypatch.setenv("NETWORK_SANDBOX_URL", sandbox_network.url)
    first, second = StringIO(), StringIO()
    call_command("demo", stdout=first)
    listings = sorted(ExternalListing.objects.values_list("pk", "shop__slug", "product_id", "tracking_url"))
    call_command("demo", stdout=second)

    assert "products synced, 10 added to demo shops." in first.getvalue()
    assert "0 added to demo shops." in second.getvalue()
    assert sorted(ExternalListing.objects.values_list("pk", "shop__slug", "product_id", "tracking_url")) == listings
    assert {slug for _pk, slug, _product, _url in listings} == {"demo", "wang-wei-kitchen", "zhang-min-beauty"}
    assert all(url.startswith(f"{sandbox_network.url}/t/") for *_rest, url in listings)

    # The sandbox forgets its links when it restarts: the demo converts them again.
    sandbox_network.reset()
    third = StringIO()
    call_command("demo", stdout=third)
    assert "10 buy links renewed" in third.getvalue()
    listing = ExternalListing.objects.select_related("share_link").filter(shop__slug="demo").first()
    with urlopen(listing.tracking_url, timeout=5) as page:  # noqa: S310 - the loopback sandbox
        assert listing.product.title in page.read().decode()
