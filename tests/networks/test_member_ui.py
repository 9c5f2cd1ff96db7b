"""Products of external networks in members' shops (issue #12): the owner's "Other platforms" dashboard page (browse,
estimate, add, remove), the public shop page's section with its buy buttons, and the demo's sandbox products.

Adding goes over HTTP to the sandbox network (the `sandbox_network` fixture), as in production."""

import re
import socket
from datetime import datetime
from decimal import Decimal
from io import StringIO
from urllib.request import urlopen

import pytest
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from commissions.models import CommissionPlan
from networks.models import ExternalProduct, Network, TrackingId
from networks.selectors import image_origin, image_origins
from networks.services import external_products_sync
from shops.models import ExternalListing, ShareLink
from shops.services import external_listing_add, external_listing_remove
from tests.factories import MemberFactory, ShopFactory
from tests.security.test_csp import inline_problems

pytestmark = pytest.mark.django_db

NETWORKS_URL = reverse("members:my_shop_networks")
PHONE_USER_AGENT = "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 Chrome/126.0 Mobile Safari/537.36"


def sandbox() -> Network:
    return Network.objects.get(code="sandbox")


def external_product(network: Network | None = None, **fields) -> ExternalProduct:
    """A product of a network, as if synced (no HTTP): for pages that only read."""
    network = network or sandbox()
    number = ExternalProduct.objects.count() + 1
    values = {
        "external_id": f"ext-{number}",
        "title": f"External product {number}",
        "image_url": f"https://img.example.com/{number}.jpg",
        "price": Decimal("100.00"),
        "coupon": Decimal("0.00"),
        "commission_rate": Decimal("0.1000"),
    }
    values.update(fields)
    return ExternalProduct.objects.create(network=network, **values)


def owner_client(client, shop):
    client.force_login(shop.owner.user)
    return client


def earnings_shown(response) -> list[str]:
    return re.findall(r"You earn about (¥[\d.,]+)", response.content.decode())


def messages_shown(response) -> list[str]:
    return [str(message) for message in response.context["messages"]]


@pytest.fixture
def synced(sandbox_network):
    """The sandbox's first 20 products, synced over HTTP."""
    external_products_sync(network=sandbox(), pages=1)
    return list(ExternalProduct.objects.filter(network=sandbox()).order_by("external_id"))


# --- Who may see what -------------------------------------------------------------------------------------------


def test_signed_out_visitors_are_sent_to_log_in_and_change_nothing(client):
    product = external_product()

    page = client.get(NETWORKS_URL)
    post = client.post(NETWORKS_URL, {"action": "add", "id": product.pk})

    assert (page.status_code, page["Location"]) == (302, f"{reverse('login')}?next={NETWORKS_URL}")
    assert post.status_code == 302 and post["Location"].startswith(reverse("login"))
    assert not ExternalListing.objects.exists()


def test_a_member_without_a_shop_is_asked_to_open_one_first(client):
    client.force_login(MemberFactory().user)

    response = client.get(NETWORKS_URL)

    assert (response.status_code, response["Location"]) == (302, reverse("members:my_shop"))


def test_the_page_only_takes_get_and_post(client):
    owner_client(client, ShopFactory())

    assert client.put(NETWORKS_URL).status_code == 405


def test_changes_need_the_csrf_token(client):
    shop = ShopFactory()
    product = external_product()
    client.handler.enforce_csrf_checks = True
    owner_client(client, shop)

    response = client.post(NETWORKS_URL, {"action": "add", "id": product.pk})

    assert response.status_code == 403
    assert not ExternalListing.objects.exists()


def test_another_members_listing_is_404_and_untouched(client, synced):
    victim = ShopFactory()
    listing = external_listing_add(shop=victim, product=synced[0])
    intruder = ShopFactory()

    response = owner_client(client, intruder).post(NETWORKS_URL, {"action": "remove", "id": listing.pk})

    assert response.status_code == 404
    assert ExternalListing.objects.filter(pk=listing.pk, shop=victim).exists()
    assert ShareLink.objects.get(pk=listing.share_link_id).is_active


@pytest.mark.parametrize(
    "data", [{"action": "add"}, {"action": "add", "id": "x"}, {"action": "dance", "id": "1"}, {"id": "1"}]
)
def test_bad_input_is_a_400_not_a_500(client, data):
    owner_client(client, ShopFactory())

    assert client.post(NETWORKS_URL, data).status_code == 400


def test_an_inactive_unknown_or_disabled_networks_product_cannot_be_added(client):
    shop = ShopFactory()
    withdrawn = external_product(is_active=False)
    off = Network.objects.create(code="off", name="Switched off", is_enabled=False)
    of_a_disabled_network = external_product(off)
    owner_client(client, shop)

    for product_id in (withdrawn.pk, of_a_disabled_network.pk, 987654):
        assert client.post(NETWORKS_URL, {"action": "add", "id": product_id}).status_code == 404
    assert not ExternalListing.objects.exists()


# --- Browsing -----------------------------------------------------------------------------------------------------


def test_the_owner_sees_image_title_platform_price_coupon_rate_and_earning(client):
    # given the default plan (80 % to level 1) and policy (members get at most 30 % of the paid amount)
    external_product(
        title="小米 保温杯",
        image_url="https://img.example.com/cup.jpg",
        price=Decimal("120.00"),
        coupon=Decimal("20.00"),
        commission_rate=Decimal("0.1234"),
        shop_name="小米官方旗舰店",
    )
    owner_client(client, ShopFactory())

    response = client.get(NETWORKS_URL)
    html = response.content.decode()

    # pool = (120.00 - 20.00) × 12.34 % = 12.34; level 1 = 12.34 × 80 % = 9.872, rounded down
    [row] = response.context["rows"]
    assert row["earning"] == Decimal("9.87")
    assert earnings_shown(response) == ["¥9.87"]
    assert '<img src="https://img.example.com/cup.jpg"' in html
    assert "小米 保温杯" in html and "小米官方旗舰店" in html
    assert '<span class="badge network-badge">Sandbox network</span>' in html
    assert '<span class="price">¥100.00</span>' in html  # after the coupon
    assert "¥120.00" in html and "¥20.00 coupon" in html
    assert "Platform pays 12.34%" in html
    assert "https://img.example.com" in response["Content-Security-Policy"]
    assert inline_problems(html) == []


def test_the_estimate_rounds_the_pool_down_and_is_capped_like_the_real_split(client):
    external_product(title="A", price=Decimal("19.99"), commission_rate=Decimal("0.1000"))
    external_product(title="B", price=Decimal("100.00"), commission_rate=Decimal("0.5000"))
    external_product(title="C", price=Decimal("5.00"), coupon=Decimal("5.00"), commission_rate=Decimal("0.2000"))
    owner_client(client, ShopFactory())

    response = client.get(NETWORKS_URL)

    # A: 19.99 × 10 % = 1.999 → pool 1.99 (not 2.00) → 80 % = 1.592 → 1.59
    # B: pool 50.00 → 80 % = 40.00, but members get at most 30 % of 100.00
    # C: nothing to pay after a coupon as large as the price
    assert [(row["product"].title, row["earning"]) for row in response.context["rows"]] == [
        ("A", Decimal("1.59")),
        ("B", Decimal("30.00")),
        ("C", Decimal("0.00")),
    ]
    assert "No commission" in response.content.decode()


def test_the_estimate_follows_a_new_plan_and_is_hidden_without_one(client):
    external_product(price=Decimal("19.90"), commission_rate=Decimal("0.1000"))
    owner_client(client, ShopFactory())
    CommissionPlan.objects.create(
        version=2,
        name="Sharer takes all",
        level1_rate=Decimal("1.0000"),
        is_activated=True,
        effective_from=CommissionPlan.objects.get(version=1).effective_from.replace(year=2001),
    )

    assert earnings_shown(client.get(NETWORKS_URL)) == ["¥1.99"]

    CommissionPlan.objects.update(is_activated=False)
    response = client.get(NETWORKS_URL)
    assert earnings_shown(response) == [] and [row["earning"] for row in response.context["rows"]] == [None]


def test_search_by_title_filter_by_platform_and_sort(client):
    taobao = Network.objects.get(code="taobao")
    external_product(title="Blue umbrella", price=Decimal("50.00"), coupon=Decimal("30.00"))  # 20.00 after
    external_product(title="Red umbrella", price=Decimal("30.00"), commission_rate=Decimal("0.3000"))
    external_product(taobao, title="Green umbrella", price=Decimal("25.00"), coupon=Decimal("1.00"))
    external_product(title="Teapot", price=Decimal("10.00"))
    Network.objects.create(code="off", name="Switched off", is_enabled=False)
    owner_client(client, ShopFactory())

    def titles(**query):
        return [row["product"].title for row in client.get(NETWORKS_URL, query).context["rows"]]

    assert titles(q="umbrella", sort="price") == ["Blue umbrella", "Green umbrella", "Red umbrella"]
    assert titles(q="umbrella", sort="coupon") == ["Blue umbrella", "Green umbrella", "Red umbrella"]
    assert titles(q="UMBRELLA", sort="earn") == ["Red umbrella", "Green umbrella", "Blue umbrella"]
    assert titles(network=taobao.pk) == ["Green umbrella"]
    assert titles(network="nonsense", sort="nonsense") == [
        "Blue umbrella",
        "Red umbrella",
        "Teapot",
        "Green umbrella",
    ]  # by platform name ("Sandbox network" before "淘宝联盟"), then title
    page = client.get(NETWORKS_URL).content.decode()
    assert ">淘宝联盟</option>" in page and "Switched off" not in page


def test_the_list_is_paginated_and_keeps_the_search_in_page_links(client):
    for number in range(45):
        external_product(title=f"Umbrella {number:02}")
    owner_client(client, ShopFactory())

    first = client.get(NETWORKS_URL, {"q": "umbrella"})
    third = client.get(NETWORKS_URL, {"q": "umbrella", "page": 3})

    assert len(first.context["rows"]) == 20 and len(third.context["rows"]) == 5
    assert 'href="?q=umbrella&amp;page=2"' in first.content.decode()


def test_the_dashboard_page_queries_do_not_grow_with_products_or_listings(client, sandbox_network):
    external_products_sync(network=sandbox(), pages=2)
    shop = ShopFactory()
    owner_client(client, shop)
    products = list(ExternalProduct.objects.order_by("pk"))
    external_listing_add(shop=shop, product=products[0])

    with CaptureQueriesContext(connection) as few:
        client.get(NETWORKS_URL, {"sort": "earn"})
    for product in products[1:6]:
        external_listing_add(shop=shop, product=product)
    with CaptureQueriesContext(connection) as many:
        response = client.get(NETWORKS_URL, {"sort": "earn"})

    assert len(response.context["rows"]) == 20 and len(response.context["listed_rows"]) == 6
    assert len(many) == len(few) <= 12


# --- Adding and removing, over HTTP to the sandbox network -------------------------------------------------------


def test_the_owner_adds_and_removes_an_external_product(client, synced, sandbox_network):
    shop = ShopFactory()
    product = synced[0]
    owner_client(client, shop)
    here = f"{NETWORKS_URL}?q=&sort=price&page=1"

    added = client.post(here, {"action": "add", "id": product.pk})
    again = client.post(here, {"action": "add", "id": product.pk}, follow=True)

    assert (added.status_code, added["Location"]) == (302, here)
    listing = ExternalListing.objects.get(shop=shop)
    assert listing.product == product
    tracking = TrackingId.objects.get(network=sandbox(), member=shop.owner)
    assert listing.tracking_url.startswith(f"{sandbox_network.url}/t/")
    assert listing.share_link.owner == shop.owner and listing.share_link.external_product == product
    assert f"“{product.title}” from Sandbox network is in your shop." in messages_shown(again)
    page = client.get(NETWORKS_URL).content.decode()
    assert f'id="external-listing-{listing.pk}"' in page and "In my shop" in page

    removed = client.post(here, {"action": "remove", "id": listing.pk}, follow=True)

    assert f"“{product.title}” is no longer in your shop." in messages_shown(removed)
    assert not ExternalListing.objects.filter(shop=shop).exists()
    assert not ShareLink.objects.get(pk=listing.share_link_id).is_active
    assert client.get(f"/l/{listing.share_link.code}").status_code == 404
    assert TrackingId.objects.get(network=sandbox(), member=shop.owner) == tracking  # kept for the next one


def test_a_network_that_does_not_answer_is_a_clear_message_and_changes_nothing(client, synced, sandbox_network):
    shop = ShopFactory()
    owner_client(client, shop)
    sandbox_network.fail_next(1)

    response = client.post(NETWORKS_URL, {"action": "add", "id": synced[0].pk}, follow=True)

    assert response.status_code == 200
    assert messages_shown(response) == ["Sandbox network did not answer; try again in a minute."]
    assert not ExternalListing.objects.exists()
    assert not ShareLink.objects.exists()


def test_a_network_without_a_connector_is_a_message_not_a_500(client):
    product = external_product(Network.objects.get(code="taobao"))
    shop = ShopFactory()
    owner_client(client, shop)

    response = client.post(NETWORKS_URL, {"action": "add", "id": product.pk}, follow=True)

    assert response.status_code == 200
    assert messages_shown(response) == ["淘宝联盟 has no link service yet: its products cannot be added to a shop."]
    assert not ExternalListing.objects.exists()


def test_removing_a_listing_removed_meanwhile_is_a_404(client, synced):
    shop = ShopFactory()
    listing = external_listing_add(shop=shop, product=synced[0])
    external_listing_remove(shop=shop, listing_id=listing.pk)

    response = owner_client(client, shop).post(NETWORKS_URL, {"action": "remove", "id": listing.pk})

    assert response.status_code == 404


def test_my_products_page_leads_to_other_platforms(client):
    owner_client(client, ShopFactory())

    page = client.get(reverse("members:my_shop_products")).content.decode()

    assert f'href="{NETWORKS_URL}"' in page


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
    assert click["tracking_id"] == TrackingId.objects.get(member=shop.owner, network=sandbox()).value


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
