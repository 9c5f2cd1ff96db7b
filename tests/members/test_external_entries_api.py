"""The commission API with entries of sales reported by external affiliate networks (issue #12): each entry says its
source, so an integrator can tell a sale in our shops from one a network reported.

The world (four 淘宝联盟 lines: pending, adjusted, released, clawed back) is the one of
tests/commissions/test_external_entries.py; one more sale in the sharer's own shop is paid here.
"""

from decimal import Decimal

import pytest
from django.urls import reverse
from rest_framework.test import APIClient

from commissions.models import CommissionEntry as Entry
from tests.commissions.test_external_entries import NETWORK_NAME, entry_of, world  # noqa: F401 - world is a fixture
from tests.factories import ProductFactory, pay_order, place_order, shop_with_products

pytestmark = pytest.mark.django_db

ENTRIES = reverse("members-api:commission_entries")
SUMMARY = reverse("members-api:commission_summary")
STATEMENT = reverse("members-api:payout_statement")


def detail_url(entry) -> str:
    return reverse("members-api:commission_entry_detail", args=[entry.pk])


def client_of(member) -> APIClient:
    client = APIClient()
    client.force_authenticate(member.user)
    return client


@pytest.fixture
def shop_order(world, django_capture_on_commit_callbacks):  # noqa: F811
    product = ProductFactory(price=Decimal("10.00"), commission_rate=Decimal("0.1000"), stock=10)
    shop = shop_with_products(product, owner=world.sharer)
    with django_capture_on_commit_callbacks(execute=True):
        return pay_order(place_order(shop, {product: 1}))


def test_the_list_says_where_each_sale_happened(world, shop_order):  # noqa: F811
    body = client_of(world.sharer).get(ENTRIES, {"page_size": 50}).json()

    rows = body["results"]
    assert body["count"] == 7  # 6 from the network, 1 from our shop
    shop_rows = [row for row in rows if row["source"] == "shop"]
    network_rows = [row for row in rows if row["source"] == "network"]
    assert [(row["order_number"], row["network"], row["external_order_id"]) for row in shop_rows] == [
        (shop_order.number, None, None)
    ]
    assert {(row["network"], row["network_name"], row["order_number"]) for row in network_rows} == {
        ("taobao", NETWORK_NAME, None)
    }
    assert sorted((row["external_order_id"], row["kind"], row["amount"]) for row in network_rows) == [
        ("TB1001", "commission", "9.60"),
        ("TB1002", "adjustment", "-1.60"),
        ("TB1002", "commission", "9.60"),
        ("TB1003", "commission", "16.00"),
        ("TB1004", "clawback", "-16.00"),
        ("TB1004", "commission", "16.00"),
    ]
    assert {row["line_title"] for row in network_rows} == {f"Green tea TB100{n}" for n in range(1, 5)}


def test_the_list_filters_on_the_adjustment_kind(world):  # noqa: F811
    rows = client_of(world.sharer).get(ENTRIES, {"kind": "adjustment"}).json()["results"]

    assert [(row["external_order_id"], row["amount"]) for row in rows] == [("TB1002", "-1.60")]


def test_the_detail_of_an_external_entry_has_the_reported_line(world):  # noqa: F811
    entry = entry_of(world.adjusted, world.sharer)

    response = client_of(world.sharer).get(detail_url(entry))

    assert response.status_code == 200
    body = response.json()
    assert (body["source"], body["network"], body["external_order_id"]) == ("network", "taobao", "TB1002")
    assert body["order_number"] is None and body["line"] is None
    assert body["external_line"] == {
        "network": "taobao",
        "network_name": NETWORK_NAME,
        "external_order_id": "TB1002",
        "line_id": "1",
        "title": "Green tea TB1002",
        "quantity": 1,
        "paid_amount": "100.00",
        "commission": "10.00",
        "status": "confirmed",
        "paid_at": body["external_line"]["paid_at"],
    }
    assert (body["base"], body["amount"], body["rate"]) == ("12.00", "9.60", "0.8000")
    assert [(row["kind"], row["amount"]) for row in body["related"]] == [("adjustment", "-1.60")]


def test_the_detail_of_a_shop_entry_says_so(world, shop_order):  # noqa: F811
    entry = Entry.objects.get(order=shop_order, beneficiary=world.sharer)

    body = client_of(world.sharer).get(detail_url(entry)).json()

    assert (body["source"], body["network"], body["external_line"]) == ("shop", None, None)
    assert body["order_number"] == shop_order.number and body["line"]["quantity"] == 1


def test_another_member_gets_a_404_for_someone_elses_external_entry(world):  # noqa: F811
    entry = entry_of(world.pending, world.sharer)

    response = client_of(world.middle).get(detail_url(entry))

    assert response.status_code == 404
    assert response.json()["code"] == "not_found"


def test_the_summary_and_the_statement_count_external_commission(world):  # noqa: F811
    client = client_of(world.sharer)

    summary = client.get(SUMMARY).json()
    statement = client.get(STATEMENT).json()

    assert (summary["pending"], summary["available"], summary["clawed_back"]) == ("17.60", "16.00", "16.00")
    rows = statement["results"] if isinstance(statement, dict) else statement
    assert any(f"{NETWORK_NAME} order TB1004" in row["description"] for row in rows)
