"""The shops API's public storefront reads, per endpoint: without credentials, with credentials (ignored), a closed
or unknown shop or product (404), bad input (the member's shop API is tests/members/test_shop_api.py)."""

import pytest

from shops.models import ShopListing
from tests.api.test_auth_and_errors import assert_error_shape

pytestmark = pytest.mark.django_db


def listing_ids(shop) -> list[int]:
    return list(
        ShopListing.objects.filter(shop=shop).order_by("-is_featured", "position", "pk").values_list("pk", flat=True)
    )


# --- Public storefront reads ---------------------------------------------------------------------------


def test_public_shop_and_products_need_no_credentials(api_client, shop):
    product = shop.listings.select_related("product").first().product

    response = api_client.get(f"/api/v1/public/shops/{shop.slug}/")
    assert response.status_code == 200
    assert response.json()["name"] == shop.name
    assert "owner" not in response.json()

    response = api_client.get(f"/api/v1/public/shops/{shop.slug}/products/")
    assert response.status_code == 200
    assert response.json()["count"] == 2
    assert "commission_rate" not in response.json()["results"][0]

    response = api_client.get(f"/api/v1/public/shops/{shop.slug}/products/{product.pk}/")
    assert response.status_code == 200
    assert response.json()["price"] == "19.90"


def test_public_reads_ignore_credentials(api_client, shop):
    response = api_client.get(f"/api/v1/public/shops/{shop.slug}/", HTTP_AUTHORIZATION="Bearer revoked-or-not")

    assert response.status_code == 200


def test_public_closed_shop_unlisted_or_inactive_product_is_404(api_client, shop, other_shop):
    product = shop.listings.select_related("product").first().product
    theirs = other_shop.listings.first().product

    assert_error_shape(api_client.get(f"/api/v1/public/shops/{shop.slug}/products/{theirs.pk}/"), 404)
    product.is_active = False
    product.save()
    assert_error_shape(api_client.get(f"/api/v1/public/shops/{shop.slug}/products/{product.pk}/"), 404)
    assert api_client.get(f"/api/v1/public/shops/{shop.slug}/products/").json()["count"] == 1
    shop.is_open = False
    shop.save()
    assert_error_shape(api_client.get(f"/api/v1/public/shops/{shop.slug}/"), 404)
    assert_error_shape(api_client.get(f"/api/v1/public/shops/{shop.slug}/products/"), 404)


def test_public_bad_input_is_404_in_the_error_shape(api_client, shop):
    assert_error_shape(api_client.get("/api/v1/public/shops/no-such-shop/"), 404)
    assert_error_shape(api_client.get(f"/api/v1/public/shops/{shop.slug}/products/?page=0"), 404)
