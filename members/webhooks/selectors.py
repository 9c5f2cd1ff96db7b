"""Reads of the webhooks app. A member's reads are always filtered on the member, so another member's endpoint or
delivery is None (a 404), exactly like one that does not exist."""

from django.db.models import Count, Q, QuerySet

from members.webhooks.models import Delivery, Endpoint

DELIVERIES_SHOWN = 50


def member_endpoints(member) -> QuerySet[Endpoint]:
    return (
        Endpoint.objects.filter(owner=member)
        .order_by("-created_at", "-pk")
        .annotate(
            delivered_count=Count("deliveries", filter=Q(deliveries__status=Delivery.Status.DELIVERED)),
            failed_count=Count("deliveries", filter=Q(deliveries__status=Delivery.Status.FAILED)),
            pending_count=Count("deliveries", filter=Q(deliveries__status=Delivery.Status.PENDING)),
        )
    )


def member_endpoint(member, endpoint_id: int) -> Endpoint | None:
    return Endpoint.objects.filter(owner=member, pk=endpoint_id).first()


def endpoint_deliveries(endpoint: Endpoint, *, limit: int = DELIVERIES_SHOWN) -> list[Delivery]:
    """The endpoint's latest deliveries, newest first, each with its event and its attempts (newest first)."""
    return list(
        endpoint.deliveries.select_related("event").prefetch_related("attempts").order_by("-created_at", "-pk")[:limit]
    )


def member_delivery(member, delivery_id: int) -> Delivery | None:
    return (
        Delivery.objects.filter(endpoint__owner=member, pk=delivery_id)
        .select_related("event", "endpoint")
        .prefetch_related("attempts")
        .first()
    )
