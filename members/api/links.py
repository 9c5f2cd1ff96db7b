"""REST API v1 for the signed-in member: their share links.

Everything is looked up through `request.member` (set by IsMember), so another member's link is a 404, exactly like
one that does not exist.
"""

from decimal import Decimal

from django.urls import reverse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from drf_spectacular.utils import extend_schema
from rest_framework import generics, serializers, status
from rest_framework.exceptions import NotFound
from rest_framework.response import Response
from rest_framework.views import APIView

from core.api import ApiError, money_field, service_error
from core.site_url import absolute_url
from members.api.permissions import IsMember
from members.links import share_link_url
from shops.models import Product
from shops.selectors import member_share_link, member_share_links
from shops.services import ShopError, share_link_create, share_link_deactivate


class ShareLinkOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField(read_only=True)
    code = serializers.CharField(read_only=True)
    campaign = serializers.CharField(read_only=True)
    is_active = serializers.BooleanField(read_only=True)
    created_at = serializers.DateTimeField(read_only=True)
    shop = serializers.CharField(source="shop.slug", read_only=True)
    product_id = serializers.IntegerField(read_only=True, allow_null=True)
    product_title = serializers.SerializerMethodField()
    url = serializers.SerializerMethodField()
    qr_svg_url = serializers.SerializerMethodField()
    qr_png_url = serializers.SerializerMethodField()

    class Meta:
        ref_name = "ShareLink"

    def get_product_title(self, link) -> str | None:
        return link.product.title if link.product_id else None

    def get_url(self, link) -> str:
        return share_link_url(link)

    def get_qr_svg_url(self, link) -> str:
        return absolute_url(reverse("members:link_qr", kwargs={"link_id": link.pk, "fmt": "svg"}))

    def get_qr_png_url(self, link) -> str:
        return absolute_url(reverse("members:link_qr", kwargs={"link_id": link.pk, "fmt": "png"}))


class ShareLinkStatsOutputSerializer(ShareLinkOutputSerializer):
    clicks = serializers.IntegerField(read_only=True)
    unique_visitors = serializers.IntegerField(read_only=True)
    orders = serializers.IntegerField(source="order_count", read_only=True)
    sales = money_field()
    conversion_rate = serializers.SerializerMethodField(
        help_text=gettext_lazy("Orders per unique visitor (a fraction); null without visitors.")
    )

    class Meta:
        ref_name = "ShareLinkWithStats"

    def get_conversion_rate(self, link) -> str | None:
        if not link.unique_visitors:
            return None
        return str((Decimal(link.order_count) / Decimal(link.unique_visitors)).quantize(Decimal("0.0001")))


class MemberLinksListApi(generics.ListAPIView):
    """My share links, newest first, each with its statistics, public URL and QR code URLs."""

    permission_classes = [IsMember]
    serializer_class = ShareLinkStatsOutputSerializer
    filter_backends: list = []

    def get_queryset(self):
        return member_share_links(self.request.member)


class MemberLinkCreateApi(APIView):
    """A new link to my own shop, or to a product listed in it."""

    permission_classes = [IsMember]

    class InputSerializer(serializers.Serializer):
        product = serializers.IntegerField(
            required=False, allow_null=True, min_value=1, help_text=gettext_lazy("Omit to link to the shop.")
        )
        campaign = serializers.CharField(required=False, allow_blank=True, max_length=60, default="")

        class Meta:
            ref_name = "ShareLinkCreateInput"

    @extend_schema(request=InputSerializer, responses={201: ShareLinkOutputSerializer})
    def post(self, request):
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        product = None
        product_id = data.validated_data.get("product")
        if product_id is not None:
            product = Product.objects.filter(pk=product_id).first()
            if product is None:
                message = _("You can only link to products listed in your own shop.")
                raise ApiError(message, code="not_listed", fields={"product": [message]})
        try:
            link = share_link_create(
                owner=request.member, product=product, campaign=data.validated_data.get("campaign", "")
            )
        except ShopError as error:
            raise service_error(error) from error
        output = ShareLinkOutputSerializer(link, context={"request": request})
        return Response(output.data, status=status.HTTP_201_CREATED)


class MemberLinkDeactivateApi(APIView):
    """Stop one of my links: /l/<code> answers 404 from now on. Deactivating twice is harmless."""

    permission_classes = [IsMember]

    @extend_schema(request=None, responses={200: ShareLinkOutputSerializer})
    def post(self, request, link_id: int):
        link = member_share_link(request.member, link_id)
        if link is None:
            raise NotFound(_("No such link."))
        share_link_deactivate(link=link)
        return Response(ShareLinkOutputSerializer(link, context={"request": request}).data)
