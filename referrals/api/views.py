"""REST API v1 for the signed-in member: share links, team, and the orders attributed to them.

Everything is looked up through `request.member` (set by IsMember), so another member's link is a 404, exactly like
one that does not exist. Orders are amounts only: the buyer's name and contact never leave the database.
"""

from datetime import datetime, time, timedelta
from decimal import Decimal

import django_filters
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import generics, serializers, status
from rest_framework.exceptions import NotFound
from rest_framework.response import Response
from rest_framework.views import APIView

from core.api import ApiError, money_field, service_error
from core.site_url import absolute_url
from members.selectors import member_team_level_sales, team_levels_in_force
from referrals.permissions import IsMember
from referrals.selectors import (
    member_team_level_counts,
)
from shops.models import Order, Product
from shops.selectors import member_attributed_orders, member_share_link, member_share_links
from shops.services import ShopError, share_link_create, share_link_deactivate

# --- Share links --------------------------------------------------------------------------------------


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

    def _absolute(self, path: str) -> str:
        return absolute_url(path)

    def get_product_title(self, link) -> str | None:
        return link.product.title if link.product_id else None

    def get_url(self, link) -> str:
        return self._absolute(reverse("share_link", args=[link.code]))

    def get_qr_svg_url(self, link) -> str:
        return self._absolute(reverse("members:link_qr", kwargs={"link_id": link.pk, "fmt": "svg"}))

    def get_qr_png_url(self, link) -> str:
        return self._absolute(reverse("members:link_qr", kwargs={"link_id": link.pk, "fmt": "png"}))


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


# --- Team ------------------------------------------------------------------------------------------------


def _this_month() -> tuple:
    month_start = timezone.localdate().replace(day=1)
    next_month = (month_start + timedelta(days=32)).replace(day=1)
    zone = timezone.get_current_timezone()
    return (
        timezone.make_aware(datetime.combine(month_start, time.min), zone),
        timezone.make_aware(datetime.combine(next_month, time.min), zone),
    )


class MemberTeamApi(APIView):
    """My sponsor, invite link and how many members each level of my team has (the levels the policy pays)."""

    permission_classes = [IsMember]

    class OutputSerializer(serializers.Serializer):
        class SponsorSerializer(serializers.Serializer):
            display_name = serializers.CharField()
            joined_at = serializers.DateTimeField()

            class Meta:
                ref_name = "TeamSponsor"

        class LevelSerializer(serializers.Serializer):
            level = serializers.IntegerField()
            members = serializers.IntegerField()

            class Meta:
                ref_name = "TeamLevelCount"

        sponsor = SponsorSerializer(allow_null=True)
        invite_code = serializers.CharField()
        invite_url = serializers.URLField()
        levels_in_force = serializers.IntegerField()
        levels = LevelSerializer(many=True)

        class Meta:
            ref_name = "Team"

    @extend_schema(responses={200: OutputSerializer})
    def get(self, request):
        member = request.member
        levels = team_levels_in_force()
        counts = member_team_level_counts(member, levels)
        sponsor = member.parent
        data = {
            "sponsor": (
                {"display_name": sponsor.display_name, "joined_at": sponsor.joined_at} if sponsor is not None else None
            ),
            "invite_code": member.invite_code,
            "invite_url": absolute_url(reverse("members:join_with_code", args=[member.invite_code])),
            "levels_in_force": levels,
            "levels": [{"level": level, "members": n} for level, n in sorted(counts.items())],
        }
        return Response(self.OutputSerializer(data).data)


class MemberTeamLevelApi(generics.ListAPIView):
    """The members exactly `level` links below me, in tree order, with their sales this month (no contact details)."""

    permission_classes = [IsMember]
    filter_backends: list = []

    class InputSerializer(serializers.Serializer):
        level = serializers.IntegerField(min_value=1)

        class Meta:
            ref_name = "TeamLevelQuery"

    class OutputSerializer(serializers.Serializer):
        display_name = serializers.CharField(read_only=True)
        status = serializers.CharField(read_only=True)
        joined_at = serializers.DateTimeField(read_only=True)
        sales_this_month = money_field(source="sales")

        class Meta:
            ref_name = "TeamMember"

    serializer_class = OutputSerializer

    def get_queryset(self):
        query = self.InputSerializer(data=self.request.query_params)
        query.is_valid(raise_exception=True)
        level = query.validated_data["level"]
        levels = team_levels_in_force()
        if level > levels:
            message = _("Your team shows levels 1 to %(levels)d.") % {"levels": levels}
            raise ApiError(message, code="invalid", fields={"level": [message]})
        since, until = _this_month()
        return member_team_level_sales(self.request.member, level, since, until)

    @extend_schema(
        parameters=[
            OpenApiParameter(
                "level",
                OpenApiTypes.INT,
                required=True,
                description=gettext_lazy("1 = my direct invitees; at most the levels in force (see /team/)."),
            )
        ]
    )
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)


# --- Orders attributed to me ----------------------------------------------------------------------------


class AttributedOrderFilter(django_filters.FilterSet):
    status = django_filters.ChoiceFilter(choices=Order.Status.choices)
    paid_after = django_filters.DateFilter(
        field_name="paid_at", lookup_expr="date__gte", label=gettext_lazy("Paid on or after this day (YYYY-MM-DD).")
    )
    paid_before = django_filters.DateFilter(
        field_name="paid_at", lookup_expr="date__lte", label=gettext_lazy("Paid on or before this day (YYYY-MM-DD).")
    )

    class Meta:
        model = Order
        fields = ["status", "paid_after", "paid_before"]


class MemberOrdersListApi(generics.ListAPIView):
    """Orders I shared, newest first: amounts and products only, never who bought or where it goes."""

    permission_classes = [IsMember]
    filterset_class = AttributedOrderFilter

    class OutputSerializer(serializers.Serializer):
        class LineSerializer(serializers.Serializer):
            title = serializers.CharField(read_only=True)
            quantity = serializers.IntegerField(read_only=True)
            net_amount = money_field()
            refunded_quantity = serializers.IntegerField(read_only=True)
            refunded_amount = money_field()

            class Meta:
                ref_name = "AttributedOrderLine"

        number = serializers.CharField(read_only=True)
        status = serializers.CharField(read_only=True)
        total = money_field()
        refunded_total = money_field()
        currency = serializers.CharField(read_only=True)
        created_at = serializers.DateTimeField(read_only=True)
        paid_at = serializers.DateTimeField(read_only=True, allow_null=True)
        lines = LineSerializer(many=True, read_only=True)

        class Meta:
            ref_name = "AttributedOrder"

    serializer_class = OutputSerializer

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):  # the schema generator has no member
            return Order.objects.none()
        return member_attributed_orders(self.request.member)
