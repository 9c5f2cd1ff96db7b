"""REST API v1 for the signed-in member: the orders of their shop and the orders they shared, with what they earn
on each. The buyer is masked (name initial, phone 139****1111) and the address never leaves the database
(members.selectors.OwnerOrderRow). Another member's order is a 404, exactly like one that does not exist."""

import django_filters
from django.http import Http404
from django.utils.translation import gettext_lazy
from drf_spectacular.utils import extend_schema, extend_schema_field
from rest_framework import generics, serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from core.api import money_field, path_parameter
from members.api.permissions import IsMember
from members.selectors import member_order_rows
from shops.models import Order
from shops.selectors import ORDER_SOURCES, member_order, member_orders, order_timeline

# Named in the schema as MemberOrderSourceEnum (settings.SPECTACULAR_SETTINGS["ENUM_NAME_OVERRIDES"]): the commission
# entries' `source` is another choice set.
SOURCE_CHOICES = [(source, source) for source in ORDER_SOURCES]
ORDER_NUMBER = path_parameter(
    "number", {"type": "string", "pattern": "^[^/]+$", "maxLength": 20}, "One of my orders' number."
)


class MemberOrderFilter(django_filters.FilterSet):
    status = django_filters.ChoiceFilter(choices=Order.Status.choices)
    source = django_filters.ChoiceFilter(
        choices=SOURCE_CHOICES,
        label=gettext_lazy("shop: placed in my shop; link: a sale I shared through my links."),
    )
    placed_after = django_filters.DateFilter(
        field_name="created_at",
        lookup_expr="date__gte",
        label=gettext_lazy("Placed on or after this day (YYYY-MM-DD)."),
    )
    placed_before = django_filters.DateFilter(
        field_name="created_at",
        lookup_expr="date__lte",
        label=gettext_lazy("Placed on or before this day (YYYY-MM-DD)."),
    )
    paid_after = django_filters.DateFilter(
        field_name="paid_at", lookup_expr="date__gte", label=gettext_lazy("Paid on or after this day (YYYY-MM-DD).")
    )
    paid_before = django_filters.DateFilter(
        field_name="paid_at", lookup_expr="date__lte", label=gettext_lazy("Paid on or before this day (YYYY-MM-DD).")
    )

    class Meta:
        model = Order
        fields = ["status", "source", "placed_after", "placed_before", "paid_after", "paid_before"]


class MemberOrderSerializer(serializers.Serializer):
    class LineSerializer(serializers.Serializer):
        title = serializers.CharField(read_only=True)
        quantity = serializers.IntegerField(read_only=True)
        net_amount = money_field()
        refunded_quantity = serializers.IntegerField(read_only=True)
        refunded_amount = money_field()

        class Meta:
            ref_name = "AttributedOrderLine"

    number = serializers.CharField(read_only=True)
    status = serializers.CharField(source="order.status", read_only=True)
    source = serializers.ChoiceField(
        choices=SOURCE_CHOICES, read_only=True, help_text="shop: placed in my shop; link: a sale I shared."
    )
    shop = serializers.CharField(source="order.shop.name", read_only=True)
    total = money_field(source="order.total")
    refunded_total = money_field(source="order.refunded_total")
    commission = money_field(
        allow_null=True, help_text="What I earn on it, net of reversals; null when I have no entry on it (yet)."
    )
    currency = serializers.CharField(source="order.currency", read_only=True)
    buyer_name = serializers.CharField(read_only=True, help_text="Masked: the first character only.")
    buyer_contact = serializers.CharField(read_only=True, help_text="Masked: e.g. 139****1111.")
    created_at = serializers.DateTimeField(source="order.created_at", read_only=True)
    paid_at = serializers.DateTimeField(source="order.paid_at", read_only=True, allow_null=True)
    shipped_at = serializers.DateTimeField(source="order.shipped_at", read_only=True, allow_null=True)
    lines = LineSerializer(source="order.lines.all", many=True, read_only=True)

    class Meta:
        ref_name = "AttributedOrder"


class TimelineStepSerializer(serializers.Serializer):
    step = serializers.CharField(source="code", read_only=True)
    at = serializers.DateTimeField(read_only=True, allow_null=True, help_text="Null for a step still to come.")
    amount = money_field(allow_null=True)
    is_full = serializers.BooleanField(read_only=True)
    courier = serializers.CharField(source="courier.code", read_only=True, default="")
    waybill_number = serializers.CharField(source="waybill", read_only=True)
    tracking_url = serializers.CharField(read_only=True)

    class Meta:
        ref_name = "OrderTimelineStep"


class MemberOrderDetailSerializer(MemberOrderSerializer):
    timeline = serializers.SerializerMethodField()

    class Meta:
        ref_name = "AttributedOrderDetail"

    @extend_schema_field(TimelineStepSerializer(many=True))
    def get_timeline(self, row) -> list:
        return TimelineStepSerializer(order_timeline(row.order), many=True).data


class MemberOrdersListApi(generics.ListAPIView):
    """Orders of my shop and orders I shared, newest first: amounts, what I earn, the buyer masked."""

    permission_classes = [IsMember]
    filterset_class = MemberOrderFilter
    serializer_class = MemberOrderSerializer

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):  # the schema generator has no member
            return Order.objects.none()
        return member_orders(self.request.member)

    def list(self, request, *args, **kwargs):
        page = self.paginate_queryset(self.filter_queryset(self.get_queryset()))
        rows = member_order_rows(request.member, page)
        return self.get_paginated_response(self.get_serializer(rows, many=True).data)


class MemberOrderDetailApi(APIView):
    """One of my orders with its progress (placed, paid, shipped with courier and tracking link, completed,
    refunds). Another member's order is a 404."""

    permission_classes = [IsMember]

    @extend_schema(parameters=[ORDER_NUMBER], responses={200: MemberOrderDetailSerializer})
    def get(self, request, number: str):
        order = member_order(request.member, number)
        if order is None:
            raise Http404
        (row,) = member_order_rows(request.member, [order])
        return Response(MemberOrderDetailSerializer(row).data)
