"""The owner's "Other platforms" page of My shop (issue #12): browse external networks' products, see the estimate,
add, remove; who may do what. The public shop page's section is tests/networks/test_shop_page.py.

Adding goes over HTTP to the sandbox network (the `sandbox_network` fixture), as in production."""

import re
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from commissions.models import CommissionPlan
from networks.models import ExternalProduct, Network, TrackingId
from networks.services import external_products_sync
from shops.models import ExternalListing, ShareLink
from shops.services import external_listing_add, external_listing_remove
from tests.factories import MemberFactory, ShopFactory
from tests.security.test_csp import inline_problems

pytestmark = pytest.mark.django_db

NETWORKS_URL = reverse("members:my_shop_networks")


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
    ]  # by platform name ("Sandbox network" before "Taobao Union"), then title
    page = client.get(NETWORKS_URL).content.decode()
    assert ">Taobao Union</option>" in page and "Switched off" not in page


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
    assert messages_shown(response) == ["Taobao Union has no link service yet: its products cannot be added to a shop."]
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
