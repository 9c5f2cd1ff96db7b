"""The owner's orders (issue #22): the orders of their shop and the orders they shared through their links, with
what they earn on each, filters and pages; the buyer masked; another member's order a 404 and never listed. The
page (/dashboard/orders/) and the member API (/api/v1/orders/) show the same list.

Orders are made as in production: placed through the service (with the sharer and link a cookie would give), paid
through the sandbox webhook, the split run in the on-commit hook.
"""

import re
from datetime import timedelta
from decimal import Decimal

import pytest
from django.urls import reverse
from django.utils import timezone
from rest_framework.test import APIClient

from commissions.models import CommissionEntry
from shops.models import Order
from shops.services import order_mark_shipped, order_place, share_link_create
from tests.factories import BUYER, MemberFactory, ProductFactory, make_chain, pay_order, shop_with_products

pytestmark = pytest.mark.django_db

ORDERS = reverse("members:orders")
API_ORDERS = reverse("members-api:orders")
SF = "SF1234567890123"
FULL_CONTACT = (BUYER.name, BUYER.phone, "+8613900001111", BUYER.address, "Nanjing")


def _detail(order) -> str:
    return reverse("members:order_detail", args=[order.number])


def _api_detail(order) -> str:
    return reverse("members-api:order_detail", args=[order.number])


@pytest.fixture
def world():
    """Ann (under a sponsor, so she earns level 1) owns a shop; Bob owns another and shares it with a link.

    - `direct`: bought in Ann's shop directly: Ann's, from her shop.
    - `bobs_sale`: bought in Ann's shop by someone who followed Bob's link: Ann's (her shop), and Bob's (his link).
    - `bobs_own`: bought in Bob's shop through his link: Bob's only.
    """
    _root, ann = make_chain(2)
    bob = MemberFactory()
    product = ProductFactory(price=Decimal("10.00"), commission_rate=Decimal("0.1000"), stock=1000)
    ann_shop = shop_with_products(product, owner=ann)
    bob_shop = shop_with_products(product, owner=bob)
    bob_link = share_link_create(owner=bob)

    def place(shop, sharer=None, link=None, quantity=1):
        return order_place(shop=shop, items={product.pk: quantity}, buyer=BUYER, sharer=sharer, share_link=link)

    return {
        "ann": ann,
        "bob": bob,
        "product": product,
        "ann_shop": ann_shop,
        "bob_shop": bob_shop,
        "place": place,
        "direct": place(ann_shop),
        "bobs_sale": place(ann_shop, sharer=bob, link=bob_link, quantity=2),
        "bobs_own": place(bob_shop, sharer=bob, link=bob_link, quantity=3),
    }


@pytest.fixture
def pay(django_capture_on_commit_callbacks):
    def paid(order):
        with django_capture_on_commit_callbacks(execute=True):
            return pay_order(order)

    return paid


def _page(client, member, query=None):
    client.force_login(member.user)
    response = client.get(ORDERS, query or {})
    assert response.status_code == 200
    return response


def _numbers(response) -> list[str]:
    return [row.order.number for row in response.context["rows"]]


def _earned(member, order) -> Decimal:
    return sum((entry.amount for entry in CommissionEntry.objects.filter(beneficiary=member, order=order)), Decimal())


# --- The list ---------------------------------------------------------------------------------------------------


def test_owner_sees_their_shops_orders_and_sharer_sees_their_links_orders(client, world):
    ann, bob = world["ann"], world["bob"]

    ann_rows = _page(client, ann).context["rows"]
    bob_rows = _page(client, bob).context["rows"]

    assert {row.order.number: row.source for row in ann_rows} == {
        world["direct"].number: "shop",
        world["bobs_sale"].number: "shop",
    }
    assert {row.order.number: row.source for row in bob_rows} == {
        world["bobs_sale"].number: "link",
        world["bobs_own"].number: "link",
    }


def test_a_member_never_sees_another_members_order(client, world):
    stranger = MemberFactory()
    shop_with_products(owner=stranger)

    response = _page(client, stranger)

    assert _numbers(response) == []
    page = response.content.decode()
    for order in ("direct", "bobs_sale", "bobs_own"):
        assert world[order].number not in page
    assert world["bobs_own"].number not in _page(client, world["ann"]).content.decode()


def test_the_buyer_is_masked_and_the_address_never_shown(client, world):
    response = _page(client, world["ann"])

    page = response.content.decode()
    assert "W**" in page and "139****1111" in page
    for value in FULL_CONTACT:
        assert value not in page


def test_each_row_shows_status_amount_and_my_own_commission(client, world, pay):
    ann, bob = world["ann"], world["bob"]
    pay(world["direct"])
    pay(world["bobs_sale"])
    ann_direct, bob_on_ann = _earned(ann, world["direct"]), _earned(bob, world["bobs_sale"])
    assert ann_direct > 0 and bob_on_ann > 0
    assert _earned(ann, world["bobs_sale"]) == 0  # Bob shared it: Ann's shop, Bob's commission

    ann_rows = {row.order.number: row for row in _page(client, ann).context["rows"]}
    bob_page = _page(client, bob)

    assert ann_rows[world["direct"].number].commission == ann_direct
    assert ann_rows[world["bobs_sale"].number].commission is None
    bob_rows = {row.order.number: row for row in bob_page.context["rows"]}
    assert bob_rows[world["bobs_sale"].number].commission == bob_on_ann
    assert bob_rows[world["bobs_own"].number].commission is None  # not paid: no entry yet
    html = bob_page.content.decode()
    assert f"You earn ¥{bob_on_ann}" in html and "¥20.00" in html and "Paid" in html


def test_filter_by_status(client, world, pay):
    pay(world["direct"])

    response = _page(client, world["ann"], {"status": "paid"})

    assert _numbers(response) == [world["direct"].number]
    assert _numbers(_page(client, world["ann"], {"status": "shipped"})) == []


def test_filter_by_shop_or_link(client, world):
    bob = world["bob"]
    own_direct = world["place"](world["bob_shop"])  # bought in Bob's shop without a link

    assert _numbers(_page(client, bob, {"source": "shop"})) == [own_direct.number]
    assert set(_numbers(_page(client, bob, {"source": "link"}))) == {
        world["bobs_sale"].number,
        world["bobs_own"].number,
    }
    assert len(_numbers(_page(client, bob))) == 3


def test_filter_by_date_placed(client, world):
    old = world["direct"]
    Order.objects.filter(pk=old.pk).update(created_at=timezone.now() - timedelta(days=10))
    today = timezone.localdate()
    ann = world["ann"]

    recent = _numbers(_page(client, ann, {"placed_from": (today - timedelta(days=1)).isoformat()}))
    earlier = _numbers(_page(client, ann, {"placed_to": (today - timedelta(days=5)).isoformat()}))
    both = _numbers(
        _page(
            client,
            ann,
            {"placed_from": (today - timedelta(days=11)).isoformat(), "placed_to": today.isoformat()},
        )
    )

    assert recent == [world["bobs_sale"].number]
    assert earlier == [old.number]
    assert len(both) == 2


def test_bad_filters_are_ignored_and_said_not_an_error_page(client, world):
    response = _page(client, world["ann"], {"status": "lost", "source": "moon", "placed_from": "yesterday"})

    assert len(_numbers(response)) == 2
    assert response.context["form"].errors.keys() == {"status", "source", "placed_from"}
    assert "Enter a valid date." in response.content.decode()


def test_pages_of_20_in_a_bounded_number_of_queries(client, world, django_assert_max_num_queries):
    ann = world["ann"]
    for _ in range(25):
        world["place"](world["ann_shop"])
    client.force_login(ann.user)

    with django_assert_max_num_queries(8):
        first = client.get(ORDERS)
    second = client.get(ORDERS, {"page": 2})

    assert len(first.context["rows"]) == 20 and len(second.context["rows"]) == 7
    assert "Page 1 of 2" in first.content.decode()
    assert not set(_numbers(first)) & set(_numbers(second))


def test_the_dashboard_navigation_links_to_the_orders(client, world):
    client.force_login(world["ann"].user)

    page = client.get(reverse("members:dashboard")).content.decode()

    assert f'href="{ORDERS}"' in page
    assert re.search(rf'<a href="{ORDERS}" aria-current="page">', _page(client, world["ann"]).content.decode())


def test_signed_out_is_sent_to_log_in(client):
    response = client.get(ORDERS)

    assert response.status_code == 302 and reverse("login") in response["Location"]


# --- One order ---------------------------------------------------------------------------------------------------


def test_order_detail_shows_my_entries_the_masked_buyer_and_the_timeline(client, world, pay):
    order = pay(world["direct"])
    order_mark_shipped(order=order, courier="sf", waybill=SF)
    client.force_login(world["ann"].user)

    response = client.get(_detail(order))

    assert response.status_code == 200
    page = response.content.decode()
    assert order.number in page and "W**" in page and "139****1111" in page
    for value in FULL_CONTACT:
        assert value not in page
    assert [entry.beneficiary_id for entry in response.context["entries"]] == [world["ann"].pk]
    assert 'data-step="shipped"' in page and SF in page and "SF Express" in page


def test_another_members_order_detail_is_404(client, world):
    client.force_login(world["ann"].user)

    assert client.get(_detail(world["bobs_own"])).status_code == 404
    assert client.get(reverse("members:order_detail", args=["no-such-order"])).status_code == 404
    assert client.get(_detail(world["direct"])).status_code == 200


# --- The member API -------------------------------------------------------------------------------------------


def _api(member) -> APIClient:
    client = APIClient()
    client.force_authenticate(member.user)
    return client


def test_api_lists_the_same_orders_as_the_page_with_source_and_masked_buyer(client, world):
    ann, bob = world["ann"], world["bob"]

    body = _api(bob).get(API_ORDERS).json()

    assert {row["number"]: row["source"] for row in body["results"]} == {
        world["bobs_sale"].number: "link",
        world["bobs_own"].number: "link",
    }
    assert {row["number"] for row in _api(ann).get(API_ORDERS).json()["results"]} == set(_numbers(_page(client, ann)))
    row = body["results"][0]
    assert row["buyer_name"] == "W**" and row["buyer_contact"] == "139****1111"


def test_api_filters_by_source_and_placed_dates(world):
    bob = world["bob"]
    own_direct = world["place"](world["bob_shop"])
    today = timezone.localdate().isoformat()
    client = _api(bob)

    assert [row["number"] for row in client.get(API_ORDERS, {"source": "shop"}).json()["results"]] == [
        own_direct.number
    ]
    assert client.get(API_ORDERS, {"source": "link"}).json()["count"] == 2
    assert client.get(API_ORDERS, {"placed_after": today, "placed_before": today}).json()["count"] == 3
    assert client.get(API_ORDERS, {"placed_after": "2999-01-01"}).json()["count"] == 0
    bad = client.get(API_ORDERS, {"source": "moon"})
    assert bad.status_code == 400 and "source" in bad.json()["fields"]


def test_api_order_detail_has_the_timeline_and_another_members_order_is_404(world, pay):
    order = pay(world["bobs_sale"])
    order_mark_shipped(order=order, courier="jd", waybill="JDVA01234567890")

    mine = _api(world["bob"]).get(_api_detail(order))
    ann_sees_it_too = _api(world["ann"]).get(_api_detail(order))
    stranger = _api(MemberFactory()).get(_api_detail(order))

    assert mine.status_code == 200 and ann_sees_it_too.status_code == 200
    body = mine.json()
    assert body["number"] == order.number and body["source"] == "link"
    assert body["commission"] == f"{_earned(world['bob'], order):.2f}"
    steps = {step["step"]: step for step in body["timeline"]}
    assert list(steps) == ["placed", "paid", "shipped", "completed"]
    assert steps["shipped"]["courier"] == "jd" and steps["shipped"]["waybill_number"] == "JDVA01234567890"
    assert steps["shipped"]["tracking_url"].endswith("nu=JDVA01234567890")
    assert steps["completed"]["at"] is None
    assert stranger.status_code == 404 and set(stranger.json()) == {"code", "message", "fields"}
    for value in FULL_CONTACT:
        assert value not in mine.content.decode()


def test_api_list_in_a_bounded_number_of_queries(world, pay, django_assert_max_num_queries):
    for _ in range(12):
        pay(world["place"](world["ann_shop"]))
    client = _api(world["ann"])

    with django_assert_max_num_queries(6):
        body = client.get(API_ORDERS, {"page_size": 50}).json()

    assert body["count"] == 14
    assert sum(1 for row in body["results"] if row["commission"] is not None) == 12
