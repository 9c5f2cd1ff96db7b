"""REST API v1 for the signed-in member: their shop, its listings, and the catalogue to list from.

Another member's shop or listing is never named: every lookup goes through the member's own shop, so a foreign
id is a 404, exactly like an id that does not exist.
"""

from django.http import Http404
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_serializer
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from core.api import (
    ID_SCHEMA,
    MAX_ID,
    ApiError,
    Pagination,
    error_responses,
    path_parameter,
    rate_field,
    service_error,
)
from core.i18n import localized
from members.api.permissions import IsMember
from shops.api.serializers import CategorySerializer, ProductSerializer
from shops.models import Category, Product
from shops.selectors import CATALOGUE_SORTS, catalogue_search, owner_listing, owner_listings, owner_shop
from shops.services import (
    ShopError,
    shop_listing_add,
    shop_listing_remove,
    shop_listing_reorder,
    shop_listing_set_featured,
    shop_update,
)

MEMBER_ERRORS = (401, 403, 429)
LISTING_ID = path_parameter("listing_id", ID_SCHEMA, "One of your listings.")


@extend_schema_serializer(component_name="CatalogueProduct")
class CatalogueProductSerializer(ProductSerializer):
    commission_rate = rate_field(
        read_only=False, help_text="Fraction of the net price shared with members (0.1000 = 10 %)."
    )
    is_active = serializers.BooleanField()


@extend_schema_serializer(component_name="ShopListing")
class ListingSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    product = CatalogueProductSerializer()
    position = serializers.IntegerField()
    is_featured = serializers.BooleanField()
    created_at = serializers.DateTimeField()


def _member_shop(request):
    shop = owner_shop(request.member)
    if shop is None:
        raise Http404  # no shop yet: open one on the dashboard
    return shop


# --- The member's shop ----------------------------------------------------------------------


class MyShopApi(APIView):
    """The signed-in member's shop (404 until they open one on the dashboard)."""

    permission_classes = [IsMember]

    @extend_schema_serializer(component_name="MyShop")
    class OutputSerializer(serializers.Serializer):
        id = serializers.IntegerField()
        name = serializers.CharField()
        slug = serializers.SlugField()
        description = serializers.CharField()
        logo = serializers.ImageField(allow_null=True, use_url=True)
        is_open = serializers.BooleanField()
        created_at = serializers.DateTimeField()

    @extend_schema_serializer(component_name="MyShopUpdate")
    class InputSerializer(serializers.Serializer):
        name = serializers.CharField(max_length=80, required=False)
        slug = serializers.SlugField(max_length=40, required=False, help_text="The storefront lives at /s/<slug>/.")
        description = serializers.CharField(max_length=2000, required=False, allow_blank=True)
        is_open = serializers.BooleanField(required=False)

    @extend_schema(
        operation_id="shop_retrieve", responses={200: OutputSerializer, **error_responses(404, *MEMBER_ERRORS)}
    )
    def get(self, request):
        return Response(self.OutputSerializer(_member_shop(request), context={"request": request}).data)

    @extend_schema(
        operation_id="shop_partial_update",
        request=InputSerializer,
        responses={200: OutputSerializer, **error_responses(400, 404, *MEMBER_ERRORS)},
    )
    def patch(self, request):
        shop = _member_shop(request)
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        try:
            shop = shop_update(shop=shop, **serializer.validated_data)
        except ShopError as error:
            raise service_error(error) from error
        return Response(self.OutputSerializer(shop, context={"request": request}).data)


class MyShopListingsApi(APIView):
    """The member's listings, in the order buyers see them (featured first); adding one puts it last."""

    permission_classes = [IsMember]
    pagination_class = Pagination  # documents the page wrapper and ?page=&page_size= in the schema

    @extend_schema_serializer(component_name="ShopListingCreate")
    class InputSerializer(serializers.Serializer):
        product = serializers.IntegerField(min_value=1, help_text="A catalogue product's id.")
        is_featured = serializers.BooleanField(required=False, default=False)

    @extend_schema(
        operation_id="shop_listings_list",
        responses={200: ListingSerializer(many=True), **error_responses(404, *MEMBER_ERRORS)},
    )
    def get(self, request):
        shop = _member_shop(request)
        paginator = self.pagination_class()
        page = paginator.paginate_queryset(owner_listings(shop), request, view=self)
        return paginator.get_paginated_response(ListingSerializer(page, many=True, context={"request": request}).data)

    @extend_schema(
        operation_id="shop_listings_create",
        request=InputSerializer,
        responses={
            201: OpenApiResponse(ListingSerializer, description="Listed."),
            200: OpenApiResponse(ListingSerializer, description="Already listed (nothing changed)."),
            **error_responses(400, 404, *MEMBER_ERRORS),
        },
    )
    def post(self, request):
        shop = _member_shop(request)
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        product = Product.objects.filter(pk=data["product"], is_active=True).first()
        if product is None:
            raise ApiError(
                "No such product in the catalogue.", code="invalid", fields={"product": ["No such product."]}
            )
        existing_ids = set(shop.listings.values_list("pk", flat=True))
        try:
            listing = shop_listing_add(shop=shop, product=product, is_featured=data["is_featured"])
        except ShopError as error:
            raise service_error(error) from error
        listing = owner_listing(shop, listing.pk)
        created = listing.pk not in existing_ids
        return Response(
            ListingSerializer(listing, context={"request": request}).data,
            status=status.HTTP_201_CREATED if created else status.HTTP_200_OK,
        )


class MyShopListingDetailApi(APIView):
    """One of the member's listings: feature it, move it, or remove it."""

    permission_classes = [IsMember]

    @extend_schema_serializer(component_name="ShopListingUpdate")
    class InputSerializer(serializers.Serializer):
        is_featured = serializers.BooleanField(required=False)
        offset = serializers.IntegerField(
            required=False,
            min_value=-1000,
            max_value=1000,
            help_text="Move this many places in the buyers' order (-1 up, +1 down), within featured or not.",
        )

    def _listing(self, request, listing_id: int):
        shop = _member_shop(request)
        listing = owner_listing(shop, listing_id)
        if listing is None:
            raise Http404
        return shop, listing

    @extend_schema(
        operation_id="shop_listings_partial_update",
        parameters=[LISTING_ID],
        request=InputSerializer,
        responses={200: ListingSerializer, **error_responses(400, 404, *MEMBER_ERRORS)},
    )
    def patch(self, request, listing_id: int):
        shop, listing = self._listing(request, listing_id)
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        try:
            if "is_featured" in data:
                shop_listing_set_featured(shop=shop, listing_id=listing.pk, is_featured=data["is_featured"])
            if data.get("offset"):
                shop_listing_reorder(shop=shop, listing_id=listing.pk, offset=data["offset"])
        except ShopError as error:
            raise service_error(error) from error
        return Response(ListingSerializer(owner_listing(shop, listing.pk), context={"request": request}).data)

    @extend_schema(
        operation_id="shop_listings_destroy",
        parameters=[LISTING_ID],
        responses={204: OpenApiResponse(description="Removed."), **error_responses(404, *MEMBER_ERRORS)},
    )
    def delete(self, request, listing_id: int):
        shop, listing = self._listing(request, listing_id)
        try:
            shop_listing_remove(shop=shop, listing_id=listing.pk)
        except ShopError as error:
            raise Http404 from error  # removed meanwhile: as if it never was
        return Response(status=status.HTTP_204_NO_CONTENT)


# --- The catalogue ------------------------------------------------------------------------


class CatalogueListApi(APIView):
    """Active catalogue products a member can list in their shop."""

    permission_classes = [IsMember]
    pagination_class = Pagination  # documents the page wrapper and ?page=&page_size= in the schema

    @extend_schema_serializer(component_name="CatalogueFilter")
    class FilterSerializer(serializers.Serializer):
        search = serializers.CharField(required=False, allow_blank=True, max_length=100, help_text="Part of the title.")
        category = serializers.IntegerField(required=False, min_value=1, max_value=MAX_ID, help_text="A category id.")
        sort = serializers.ChoiceField(
            choices=[sort for sort in CATALOGUE_SORTS if sort],
            required=False,
            help_text="earn: most commission first; price: cheapest first; new: newest first.",
        )

    @extend_schema(
        operation_id="catalogue_list",
        parameters=[FilterSerializer],
        responses={200: CatalogueProductSerializer(many=True), **error_responses(400, 404, *MEMBER_ERRORS)},
    )
    def get(self, request):
        filters = self.FilterSerializer(data=request.query_params)
        filters.is_valid(raise_exception=True)
        data = filters.validated_data
        products = catalogue_search(
            search=data.get("search", ""), category_id=data.get("category"), sort=data.get("sort", "")
        )
        paginator = self.pagination_class()
        page = paginator.paginate_queryset(products, request, view=self)
        return paginator.get_paginated_response(
            CatalogueProductSerializer(page, many=True, context={"request": request}).data
        )


class CategoryListApi(APIView):
    """The catalogue's categories, for the `category` filter."""

    permission_classes = [IsMember]
    pagination_class = Pagination  # documents the page wrapper and ?page=&page_size= in the schema

    @extend_schema(
        operation_id="catalogue_categories_list",
        responses={200: CategorySerializer(many=True), **error_responses(404, *MEMBER_ERRORS)},
    )
    def get(self, request):
        paginator = self.pagination_class()
        page = paginator.paginate_queryset(
            Category.objects.order_by("position", localized("name"), "pk"), request, view=self
        )
        return paginator.get_paginated_response(CategorySerializer(page, many=True).data)
