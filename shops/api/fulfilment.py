"""REST API v1 for fulfilment (a warehouse system, or staff's own scripts): record how an order was shipped.

Staff only: an active staff user's API token (or session) whose user may change orders (`shops.change_order`).
The shipment goes through `shops.services.order_mark_shipped`, as the admin's action does: a paid order becomes
shipped, a retry with the same courier and number changes nothing, a different one corrects an order on its way.
"""

from django.http import Http404
from django.utils.translation import gettext_lazy
from drf_spectacular.utils import extend_schema, extend_schema_serializer
from rest_framework import serializers
from rest_framework.permissions import BasePermission
from rest_framework.response import Response
from rest_framework.views import APIView

from core.api import ApiError, error_responses, path_parameter
from shops.couriers import COURIERS, courier_for
from shops.models import Order
from shops.services import IllegalTransition, ShopError, order_mark_shipped

ORDER_NUMBER = path_parameter(
    "number", {"type": "string", "pattern": "^[^/]+$", "maxLength": 20}, "The order's number."
)
# A refusal because of where the order stands (not paid; no longer on its way): a conflict, not bad input.
CONFLICT_CODES = {"illegal_transition", "shipment_closed"}


class IsFulfilmentStaff(BasePermission):
    """An active staff user allowed to change orders (the admin's "change order" permission)."""

    message = gettext_lazy("Only staff allowed to change orders can record shipments.")

    def has_permission(self, request, view) -> bool:
        user = request.user
        return bool(user and user.is_authenticated and user.is_active and user.is_staff) and user.has_perm(
            "shops.change_order"
        )


@extend_schema_serializer(component_name="OrderShipment")
class ShipmentOutputSerializer(serializers.Serializer):
    number = serializers.CharField()
    status = serializers.CharField()
    courier = serializers.CharField(help_text="The courier's code, e.g. `sf`; empty when shipped without one.")
    courier_name = serializers.SerializerMethodField()
    waybill_number = serializers.CharField()
    tracking_url = serializers.SerializerMethodField()
    shipped_at = serializers.DateTimeField(allow_null=True)

    def get_courier_name(self, order) -> str:
        courier = courier_for(order.courier)
        return str(courier.name) if courier else ""

    def get_tracking_url(self, order) -> str:
        courier = courier_for(order.courier)
        return courier.tracking_url(order.waybill_number) if courier else ""


class OrderShipmentApi(APIView):
    """Record the courier and waybill number of a paid order, which becomes shipped. Sending the same again
    changes nothing (200, the same answer); a different courier or number corrects an order still on its way.
    400: an unknown courier or a malformed number; 409: the order is not paid, or no longer on its way."""

    permission_classes = [IsFulfilmentStaff]

    @extend_schema_serializer(component_name="OrderShipmentInput")
    class InputSerializer(serializers.Serializer):
        courier = serializers.CharField(
            max_length=16,
            help_text="One of: " + ", ".join(f"`{code}`" for code in COURIERS) + ".",
        )
        waybill_number = serializers.CharField(max_length=64, help_text="Spaces are removed, letters capitalised.")
        note = serializers.CharField(required=False, allow_blank=True, max_length=500, default="")

    @extend_schema(
        operation_id="fulfilment_orders_shipment_create",
        parameters=[ORDER_NUMBER],
        request=InputSerializer,
        responses={200: ShipmentOutputSerializer, **error_responses(400, 401, 403, 404, 409, 429)},
    )
    def post(self, request, number: str):
        order = Order.objects.filter(number=number).first()
        if order is None:
            raise Http404
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            order = order_mark_shipped(
                order=order,
                actor=request.user,
                actor_label="fulfilment API",
                note=data.validated_data["note"],
                courier=data.validated_data["courier"],
                waybill=data.validated_data["waybill_number"],
            )
        except ShopError as error:
            code = error.code or "invalid"
            message = " ".join(error.messages)
            if isinstance(error, IllegalTransition) or code in CONFLICT_CODES:
                raise ApiError(message, code=code, status_code=409) from error
            field = {"courier": "courier", "waybill": "waybill_number"}.get(code)
            raise ApiError(message, code=code, fields={field: [message]} if field else {}) from error
        return Response(ShipmentOutputSerializer(order).data)
