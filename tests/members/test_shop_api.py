"""The member API of the shop, listings and catalogue, per endpoint: without credentials, as the owner, as another
member (404), with bad input."""

from decimal import Decimal

import pytest

from shops.models import ShopListing
from tests.api.conftest import bearer
from tests.api.test_auth_and_errors import assert_error_shape
from tests.factories import CategoryFactory, MemberFactory, ProductFactory

pytestmark = pytest.mark.django_db


def listing_ids(shop) -> list[int]:
    return list(
        ShopListing.objects.filter(shop=shop).order_by("-is_featured", "position", "pk").values_list("pk", flat=True)
    )


# --- /api/v1/shop/ --------------------------------------------------------------------


def test_my_shop_unauthenticated(api_client):
    assert_error_shape(api_client.get("/api/v1/shop/"), 401)
    assert_error_shape(api_client.patch("/api/v1/shop/", {"name": "x"}, format="json"), 401)


def test_my_shop_owner_reads_and_updates(api_client, shop):
    headers = bearer(shop.owner)

    response = api_client.get("/api/v1/shop/", **headers)
    assert response.status_code == 200
    assert response.json()["slug"] == shop.slug
    assert response.json()["logo"] is None

    response = api_client.patch("/api/v1/shop/", {"name": "Tea House", "is_open": False}, format="json", **headers)
    assert response.status_code == 200
    shop.refresh_from_db()
    assert (shop.name, shop.is_open) == ("Tea House", False)
    assert response.json()["name"] == "Tea House"


def test_my_shop_member_without_shop_is_404(api_client, other_member_without_shop):
    headers = bearer(other_member_without_shop)

    assert_error_shape(api_client.get("/api/v1/shop/", **headers), 404, "not_found")
    assert_error_shape(api_client.patch("/api/v1/shop/", {"name": "x"}, format="json", **headers), 404)


def test_my_shop_bad_input_is_400(api_client, shop, other_shop):
    headers = bearer(shop.owner)

    body = assert_error_shape(api_client.patch("/api/v1/shop/", {"slug": "no spaces!"}, format="json", **headers), 400)
    assert "slug" in body["fields"]
    body = assert_error_shape(
        api_client.patch("/api/v1/shop/", {"slug": other_shop.slug}, format="json", **headers), 400
    )
    assert "slug" in body["fields"]
    body = assert_error_shape(api_client.patch("/api/v1/shop/", {"name": ""}, format="json", **headers), 400)
    assert "name" in body["fields"]
    shop.refresh_from_db()
    assert shop.slug != other_shop.slug


# --- /api/v1/shop/listings/ -----------------------------------------------------------------


def test_listings_unauthenticated(api_client):
    assert_error_shape(api_client.get("/api/v1/shop/listings/"), 401)
    assert_error_shape(api_client.post("/api/v1/shop/listings/", {"product": 1}, format="json"), 401)


def test_listings_owner_lists_with_money_as_strings(api_client, shop, django_assert_max_num_queries):
    headers = bearer(shop.owner)

    with django_assert_max_num_queries(8):
        response = api_client.get("/api/v1/shop/listings/", **headers)

    assert response.status_code == 200
    body = response.json()
    assert body["count"] == 2
    assert [row["id"] for row in body["results"]] == listing_ids(shop)
    assert body["results"][0]["product"]["price"] == "19.90"
    assert body["results"][0]["product"]["commission_rate"] == "0.1000"


def test_listings_owner_adds_a_product_once(api_client, shop):
    headers = bearer(shop.owner)
    product = ProductFactory(price=Decimal("5.00"))

    response = api_client.post("/api/v1/shop/listings/", {"product": product.pk}, format="json", **headers)
    assert response.status_code == 201
    assert response.json()["product"]["price"] == "5.00"
    again = api_client.post("/api/v1/shop/listings/", {"product": product.pk}, format="json", **headers)
    assert again.status_code == 200
    assert again.json()["id"] == response.json()["id"]
    assert ShopListing.objects.filter(shop=shop, product=product).count() == 1


def test_listings_member_without_shop_is_404(api_client, other_member_without_shop):
    headers = bearer(other_member_without_shop)

    assert_error_shape(api_client.get("/api/v1/shop/listings/", **headers), 404)


def test_listings_bad_input_is_400(api_client, shop):
    headers = bearer(shop.owner)
    inactive = ProductFactory(is_active=False)
    before = listing_ids(shop)

    for payload in ({}, {"product": "abc"}, {"product": 0}, {"product": 999999}, {"product": inactive.pk}):
        body = assert_error_shape(api_client.post("/api/v1/shop/listings/", payload, format="json", **headers), 400)
        assert "product" in body["fields"]
    assert listing_ids(shop) == before


# --- /api/v1/shop/listings/{id}/ ---------------------------------------------------------------


def test_listing_unauthenticated(api_client, shop):
    listing_id = listing_ids(shop)[0]

    assert_error_shape(api_client.patch(f"/api/v1/shop/listings/{listing_id}/", {}, format="json"), 401)
    assert_error_shape(api_client.delete(f"/api/v1/shop/listings/{listing_id}/"), 401)


def test_listing_owner_features_moves_and_removes(api_client, shop):
    headers = bearer(shop.owner)
    first, second = listing_ids(shop)

    response = api_client.patch(f"/api/v1/shop/listings/{second}/", {"offset": -1}, format="json", **headers)
    assert response.status_code == 200
    assert listing_ids(shop) == [second, first]

    response = api_client.patch(f"/api/v1/shop/listings/{first}/", {"is_featured": True}, format="json", **headers)
    assert response.status_code == 200
    assert response.json()["is_featured"] is True
    assert listing_ids(shop) == [first, second]

    response = api_client.delete(f"/api/v1/shop/listings/{first}/", **headers)
    assert response.status_code == 204
    assert listing_ids(shop) == [second]


def test_listing_of_another_member_is_404_and_unchanged(api_client, shop, other_shop):
    headers = bearer(shop.owner)
    theirs = listing_ids(other_shop)[0]

    assert_error_shape(
        api_client.patch(f"/api/v1/shop/listings/{theirs}/", {"is_featured": True}, format="json", **headers), 404
    )
    assert_error_shape(api_client.delete(f"/api/v1/shop/listings/{theirs}/", **headers), 404)
    assert ShopListing.objects.get(pk=theirs).is_featured is False


def test_listing_bad_input_is_400(api_client, shop):
    headers = bearer(shop.owner)
    listing_id = listing_ids(shop)[0]

    for payload in ({"offset": "up"}, {"offset": 10**6}, {"is_featured": "maybe"}):
        assert_error_shape(
            api_client.patch(f"/api/v1/shop/listings/{listing_id}/", payload, format="json", **headers), 400
        )


# --- /api/v1/catalogue/ ---------------------------------------------------------------------------


def test_catalogue_unauthenticated(api_client):
    assert_error_shape(api_client.get("/api/v1/catalogue/"), 401)


def test_catalogue_query_count_does_not_grow_with_products(api_client, django_assert_max_num_queries):
    for _ in range(30):
        ProductFactory()
    headers = bearer(MemberFactory())

    with django_assert_max_num_queries(6):
        response = api_client.get("/api/v1/catalogue/", **headers)

    assert response.json()["count"] == 30


def test_catalogue_searches_and_filters(api_client):
    tea, snacks = CategoryFactory(name="Tea"), CategoryFactory(name="Snacks")
    green = ProductFactory(title="Green tea", category=tea)
    ProductFactory(title="Black tea", category=tea)
    ProductFactory(title="Green crisps", category=snacks)
    ProductFactory(title="Green old", category=tea, is_active=False)
    headers = bearer(MemberFactory())

    response = api_client.get("/api/v1/catalogue/", {"search": "green", "category": tea.pk}, **headers)

    assert response.status_code == 200
    assert [row["id"] for row in response.json()["results"]] == [green.pk]
    assert response.json()["results"][0]["category"] == {"id": tea.pk, "name": "Tea"}
    assert api_client.get("/api/v1/catalogue/", {"sort": "price"}, **headers).json()["count"] == 3
    assert api_client.get("/api/v1/catalogue/categories/", **headers).json()["count"] == 2


def test_catalogue_bad_input_is_400(api_client):
    headers = bearer(MemberFactory())

    for params in ({"category": "tea"}, {"category": 0}, {"sort": "random"}, {"search": "a\x00b"}):
        assert_error_shape(api_client.get("/api/v1/catalogue/", params, **headers), 400)
    assert_error_shape(api_client.get("/api/v1/catalogue/", {"page": "x"}, **headers), 404)
    past_the_end = api_client.get("/api/v1/catalogue/", {"page": 99}, **headers)
    assert past_the_end.status_code == 200
    assert past_the_end.json()["results"] == []
    assert past_the_end.json()["next"] is None
    assert "page=" not in past_the_end.json()["previous"]  # one page of rows: "previous" is the first page


def test_catalogue_shows_a_price_as_large_as_the_database_stores(api_client):
    # A product's price is a MoneyField (14 digits, SPEC §3); the API's money fields allowed only 12 and answered
    # a 500 for a price of ten thousand million or more.
    product = ProductFactory(price=Decimal("999999999999.99"))
    headers = bearer(MemberFactory())

    response = api_client.get("/api/v1/catalogue/", **headers)

    assert response.status_code == 200
    assert [(row["id"], row["price"]) for row in response.json()["results"]] == [(product.pk, "999999999999.99")]
