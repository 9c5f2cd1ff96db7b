"""REST API v1 of the shops app: public storefront reads for headless storefronts (the member's shop, listings and
catalogue are members/api/shop.py).

A closed or unknown shop is a 404, exactly like one that does not exist.
"""

from django.http import Http404
from drf_spectacular.utils import extend_schema, extend_schema_serializer
from rest_framework import serializers
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from core.api import ID_SCHEMA, MAX_ID, Pagination, error_responses, path_parameter
from shops.api.serializers import ProductSerializer
from shops.selectors import shop_by_slug, shop_listings, shop_product

SHOP_SLUG = path_parameter(
    "slug", {"type": "string", "pattern": "^[-a-zA-Z0-9_]+$", "maxLength": 40}, "The shop's address."
)
PRODUCT_ID = path_parameter("product_id", ID_SCHEMA, "A product listed in the shop.")


# --- Public storefront reads (headless storefronts) -----------------------------------------


def _open_shop(slug: str):
    shop = shop_by_slug(slug)
    if shop is None or not shop.is_open:
        raise Http404
    return shop


class PublicShopDetailApi(APIView):
    """An open shop, for a storefront. A closed or unknown shop is a 404."""

    authentication_classes: list = []
    permission_classes = [AllowAny]

    @extend_schema_serializer(component_name="PublicShop")
    class OutputSerializer(serializers.Serializer):
        name = serializers.CharField()
        slug = serializers.SlugField()
        description = serializers.CharField()
        logo = serializers.ImageField(allow_null=True, use_url=True)

    @extend_schema(
        operation_id="public_shops_retrieve",
        parameters=[SHOP_SLUG],
        auth=[],
        responses={200: OutputSerializer, **error_responses(404, 429)},
    )
    def get(self, request, slug: str):
        return Response(self.OutputSerializer(_open_shop(slug), context={"request": request}).data)


class PublicShopProductListApi(APIView):
    """An open shop's active products, featured first, in the owner's order."""

    authentication_classes: list = []
    permission_classes = [AllowAny]
    pagination_class = Pagination  # documents the page wrapper and ?page=&page_size= in the schema

    @extend_schema(
        operation_id="public_shops_products_list",
        parameters=[SHOP_SLUG],
        auth=[],
        responses={200: ProductSerializer(many=True), **error_responses(404, 429)},
    )
    def get(self, request, slug: str):
        shop = _open_shop(slug)
        paginator = self.pagination_class()
        page = paginator.paginate_queryset(shop_listings(shop), request, view=self)
        products = [listing.product for listing in page]
        return paginator.get_paginated_response(
            ProductSerializer(products, many=True, context={"request": request}).data
        )


class PublicShopProductDetailApi(APIView):
    """One active product of an open shop (404 when it is not listed there or no longer sold)."""

    authentication_classes: list = []
    permission_classes = [AllowAny]

    @extend_schema(
        operation_id="public_shops_products_retrieve",
        parameters=[SHOP_SLUG, PRODUCT_ID],
        auth=[],
        responses={200: ProductSerializer, **error_responses(404, 429)},
    )
    def get(self, request, slug: str, product_id: int):
        if product_id > MAX_ID:  # no such id; and SQLite cannot even compare an integer that large
            raise Http404
        listing = shop_product(_open_shop(slug), product_id)
        if listing is None or not listing.product.is_active:
            raise Http404
        return Response(ProductSerializer(listing.product, context={"request": request}).data)
