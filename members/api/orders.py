"""REST API v1 for the signed-in member: the orders they shared. Amounts and products only: the buyer's name and
contact never leave the database."""

import django_filters
from django.utils.translation import gettext_lazy
from rest_framework import generics, serializers

from core.api import money_field
from members.api.permissions import IsMember
from shops.models import Order
from shops.selectors import member_attributed_orders


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
