"""REST API v1 for the signed-in member: their outbound webhook endpoints, the deliveries to each with every attempt,
and replay (docs/webhooks.md). Everything is looked up through `request.member`, so another member's endpoint or
delivery is a 404, exactly like one that does not exist. A signing secret is in the answer that created or rotated
it, and never again."""

from django.http import Http404
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_serializer
from rest_framework import generics, serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from core.api import ID_SCHEMA, error_responses, path_parameter, service_error
from members.api.permissions import IsMember
from members.webhooks.models import Delivery, Endpoint, EventType
from members.webhooks.selectors import endpoint_deliveries, member_delivery, member_endpoint, member_endpoints
from members.webhooks.services import (
    WebhookError,
    delivery_replay,
    endpoint_create,
    endpoint_delete,
    endpoint_rotate_secret,
    endpoint_set_active,
    endpoint_update,
)

MEMBER_ERRORS = (401, 403, 429)
ENDPOINT_ID = path_parameter("endpoint_id", ID_SCHEMA, "One of your webhook endpoints.")
DELIVERY_ID = path_parameter("delivery_id", ID_SCHEMA, "A delivery to one of your webhook endpoints.")


@extend_schema_serializer(component_name="WebhookEndpoint")
class EndpointSerializer(serializers.Serializer):
    id = serializers.IntegerField(read_only=True)
    url = serializers.CharField(read_only=True)
    description = serializers.CharField(read_only=True)
    event_types = serializers.ListField(child=serializers.ChoiceField(choices=EventType.choices), read_only=True)
    is_active = serializers.BooleanField(read_only=True)
    disabled_reason = serializers.CharField(read_only=True)
    failing_since = serializers.DateTimeField(read_only=True, allow_null=True)
    secret_hint = serializers.CharField(read_only=True, help_text=gettext_lazy("The secret's first characters."))
    created_at = serializers.DateTimeField(read_only=True)


@extend_schema_serializer(component_name="WebhookEndpointWithSecret")
class EndpointWithSecretSerializer(EndpointSerializer):
    secret = serializers.CharField(read_only=True, help_text=gettext_lazy("The signing secret: shown this once."))


@extend_schema_serializer(component_name="WebhookEndpointInput")
class EndpointInputSerializer(serializers.Serializer):
    url = serializers.CharField(max_length=500)
    description = serializers.CharField(max_length=100, required=False, allow_blank=True, default="")
    event_types = serializers.ListField(
        child=serializers.ChoiceField(choices=EventType.choices), allow_empty=False, max_length=len(EventType.choices)
    )


@extend_schema_serializer(component_name="WebhookEndpointUpdate")
class EndpointUpdateSerializer(serializers.Serializer):
    url = serializers.CharField(max_length=500, required=False)
    description = serializers.CharField(max_length=100, required=False, allow_blank=True)
    event_types = serializers.ListField(
        child=serializers.ChoiceField(choices=EventType.choices),
        allow_empty=False,
        max_length=len(EventType.choices),
        required=False,
    )
    is_active = serializers.BooleanField(required=False)


@extend_schema_serializer(component_name="WebhookAttempt")
class AttemptSerializer(serializers.Serializer):
    number = serializers.IntegerField(read_only=True)
    trigger = serializers.CharField(read_only=True)
    started_at = serializers.DateTimeField(read_only=True)
    duration_ms = serializers.IntegerField(read_only=True)
    status_code = serializers.IntegerField(read_only=True, allow_null=True)
    is_success = serializers.BooleanField(read_only=True)
    error = serializers.CharField(read_only=True)
    response_excerpt = serializers.CharField(read_only=True)


@extend_schema_serializer(component_name="WebhookDelivery")
class DeliverySerializer(serializers.Serializer):
    id = serializers.IntegerField(read_only=True)
    endpoint_id = serializers.IntegerField(read_only=True)
    event_id = serializers.CharField(source="event.public_id", read_only=True)
    event_type = serializers.CharField(source="event.type", read_only=True)
    status = serializers.ChoiceField(choices=Delivery.Status.choices, read_only=True)
    attempt_count = serializers.IntegerField(read_only=True)
    next_attempt_at = serializers.DateTimeField(read_only=True, allow_null=True)
    delivered_at = serializers.DateTimeField(read_only=True, allow_null=True)
    created_at = serializers.DateTimeField(read_only=True)
    attempts = AttemptSerializer(many=True, read_only=True, source="attempts.all")


def _endpoint(request, endpoint_id: int) -> Endpoint:
    endpoint = member_endpoint(request.member, endpoint_id)
    if endpoint is None:
        raise Http404
    return endpoint


class WebhookEndpointsListApi(generics.ListAPIView):
    """My webhook endpoints, newest first (their secrets are never shown again)."""

    permission_classes = [IsMember]
    serializer_class = EndpointSerializer
    filter_backends: list = []

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):  # the schema generator has no member
            return Endpoint.objects.none()
        return member_endpoints(self.request.member)


class WebhookEndpointCreateApi(APIView):
    """A new endpoint for events about my own orders, commissions and payouts. The answer carries its signing secret,
    this once. In production the URL must be https and resolve to public addresses only."""

    permission_classes = [IsMember]

    @extend_schema(
        operation_id="webhooks_create",
        request=EndpointInputSerializer,
        responses={201: EndpointWithSecretSerializer, **error_responses(400, *MEMBER_ERRORS)},
    )
    def post(self, request):
        data = EndpointInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            endpoint = endpoint_create(owner=request.member, actor=request.user, **data.validated_data)
        except WebhookError as error:
            raise service_error(error) from error
        return Response(EndpointWithSecretSerializer(endpoint).data, status=status.HTTP_201_CREATED)


class WebhookEndpointDetailApi(APIView):
    """One of my endpoints: read it, change it (URL, description, events, switched on or off), or delete it."""

    permission_classes = [IsMember]

    @extend_schema(
        operation_id="webhooks_retrieve",
        parameters=[ENDPOINT_ID],
        responses={200: EndpointSerializer, **error_responses(404, *MEMBER_ERRORS)},
    )
    def get(self, request, endpoint_id: int):
        return Response(EndpointSerializer(_endpoint(request, endpoint_id)).data)

    @extend_schema(
        operation_id="webhooks_partial_update",
        parameters=[ENDPOINT_ID],
        request=EndpointUpdateSerializer,
        responses={200: EndpointSerializer, **error_responses(400, 404, *MEMBER_ERRORS)},
    )
    def patch(self, request, endpoint_id: int):
        endpoint = _endpoint(request, endpoint_id)
        data = EndpointUpdateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        changes = data.validated_data
        try:
            if {"url", "description", "event_types"} & changes.keys():
                endpoint_update(
                    endpoint=endpoint,
                    url=changes.get("url", endpoint.url),
                    event_types=changes.get("event_types", endpoint.event_types),
                    description=changes.get("description", endpoint.description),
                )
        except WebhookError as error:
            raise service_error(error) from error
        if "is_active" in changes and changes["is_active"] != endpoint.is_active:
            endpoint_set_active(endpoint=endpoint, is_active=changes["is_active"], reason=_("Switched off by you."))
        return Response(EndpointSerializer(_endpoint(request, endpoint_id)).data)

    @extend_schema(
        operation_id="webhooks_destroy",
        parameters=[ENDPOINT_ID],
        responses={204: OpenApiResponse(description="Deleted."), **error_responses(404, *MEMBER_ERRORS)},
    )
    def delete(self, request, endpoint_id: int):
        endpoint_delete(endpoint=_endpoint(request, endpoint_id))
        return Response(status=status.HTTP_204_NO_CONTENT)


class WebhookEndpointRotateApi(APIView):
    """A new signing secret for one of my endpoints, in this answer only; the old one keeps signing beside it for a
    while (docs/webhooks.md)."""

    permission_classes = [IsMember]

    @extend_schema(
        operation_id="webhooks_rotate_secret",
        parameters=[ENDPOINT_ID],
        request=None,
        responses={200: EndpointWithSecretSerializer, **error_responses(404, *MEMBER_ERRORS)},
    )
    def post(self, request, endpoint_id: int):
        endpoint = endpoint_rotate_secret(endpoint=_endpoint(request, endpoint_id))
        return Response(EndpointWithSecretSerializer(endpoint).data)


class WebhookDeliveriesListApi(APIView):
    """The latest deliveries to one of my endpoints (50, newest first), each with every attempt."""

    permission_classes = [IsMember]

    @extend_schema(
        operation_id="webhooks_deliveries_list",
        parameters=[ENDPOINT_ID],
        responses={200: DeliverySerializer(many=True), **error_responses(404, *MEMBER_ERRORS)},
    )
    def get(self, request, endpoint_id: int):
        deliveries = endpoint_deliveries(_endpoint(request, endpoint_id))
        return Response(DeliverySerializer(deliveries, many=True).data)


class WebhookDeliveryReplayApi(APIView):
    """Send one of my deliveries again now, as a new attempt (the same event id and body, a new signature)."""

    permission_classes = [IsMember]

    @extend_schema(
        operation_id="webhooks_delivery_replay",
        parameters=[DELIVERY_ID],
        request=None,
        responses={202: DeliverySerializer, **error_responses(400, 404, *MEMBER_ERRORS)},
    )
    def post(self, request, delivery_id: int):
        delivery = member_delivery(request.member, delivery_id)
        if delivery is None:
            raise Http404
        try:
            delivery_replay(delivery=delivery)
        except WebhookError as error:
            raise service_error(error) from error
        return Response(DeliverySerializer(member_delivery(request.member, delivery_id)).data, status=202)
