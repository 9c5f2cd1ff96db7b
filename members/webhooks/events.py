"""What each event says and whom it concerns, read from the domain apps below (never written).

Every builder returns `EventFact`s: the event's type, its once-per-fact key, the data integrators receive, and the
members it is about (their endpoints receive it; staff endpoints receive every event). Data carries amounts as
strings ("12.30"), times in ISO 8601, and never a buyer's name, phone, email or address.
"""

from dataclasses import dataclass, field
from datetime import datetime

from django.db.models import Q

from commissions.models import CommissionEntry
from commissions.signals import AVAILABLE, CREATED, REVERSED
from members.webhooks.models import EventType
from payouts.models import Withdrawal
from shops.models import Order


@dataclass(frozen=True)
class EventFact:
    type: str
    key: str
    data: dict
    member_ids: frozenset[int] = field(default_factory=frozenset)
    occurred_at: datetime | None = None  # endpoints created after it do not receive it


def _time(value) -> str | None:
    return value.isoformat() if value else None


def _money(value) -> str:
    return f"{value:.2f}"


def order_paid_facts(order_ids: list[int]) -> list[EventFact]:
    orders = (
        Order.objects.filter(pk__in=order_ids, paid_at__isnull=False).select_related("shop").prefetch_related("lines")
    )
    facts = []
    for order in orders:
        data = {
            "order": {
                "number": order.number,
                "status": order.status,
                "total": _money(order.total),
                "currency": order.currency,
                "created_at": _time(order.created_at),
                "paid_at": _time(order.paid_at),
                "shop": {"slug": order.shop.slug, "owner_member_id": order.shop.owner_id},
                "sharer_member_id": order.sharer_id,
                "lines": [
                    {
                        "product_id": line.product_id,
                        "title": line.title,
                        "quantity": line.quantity,
                        "unit_price": _money(line.unit_price),
                        "net_amount": _money(line.net_amount),
                    }
                    for line in order.lines.all()
                ],
            }
        }
        members = frozenset(pk for pk in (order.sharer_id, order.shop.owner_id) if pk)
        facts.append(EventFact(EventType.ORDER_PAID, f"order.paid:{order.pk}", data, members, order.paid_at))
    return facts


def _entry_type(entry: CommissionEntry, change: str) -> str:
    if change == AVAILABLE:
        return EventType.COMMISSION_AVAILABLE
    if change == REVERSED or entry.kind in (CommissionEntry.Kind.REVERSAL, CommissionEntry.Kind.CLAWBACK):
        # A refund either voids a pending entry (change "reversed") or writes a negative reversal or clawback entry
        # (created): integrators see both as commission.reversed, `entry.kind` tells which.
        return EventType.COMMISSION_REVERSED
    return EventType.COMMISSION_CREATED


def commission_facts(entry_ids: list[int], change: str) -> list[EventFact]:
    if change not in (CREATED, AVAILABLE, REVERSED):
        return []
    entries = (
        CommissionEntry.objects.filter(pk__in=entry_ids, beneficiary__isnull=False)
        .exclude(kind=CommissionEntry.Kind.PLATFORM)
        .select_related("order", "external_line")
    )
    facts = []
    for entry in entries:
        event_type = _entry_type(entry, change)
        data = {
            "commission": {
                "id": entry.pk,
                "member_id": entry.beneficiary_id,
                "kind": entry.kind,
                "status": entry.status,
                "level": entry.level,
                "amount": _money(entry.amount),
                "base": _money(entry.base),
                "rate": f"{entry.rate:.4f}",
                "capped_by": entry.capped_by,
                "order_number": entry.order.number if entry.order_id else None,
                "external_order_id": entry.external_line.external_order_id if entry.external_line_id else None,
                "created_at": _time(entry.created_at),
                "released_at": _time(entry.released_at),
                "reversed_at": _time(entry.reversed_at),
            }
        }
        occurred_at = {
            EventType.COMMISSION_AVAILABLE: entry.released_at,
            EventType.COMMISSION_REVERSED: entry.reversed_at if change == REVERSED else entry.created_at,
        }.get(event_type, entry.created_at)
        facts.append(
            EventFact(event_type, f"{event_type}:{entry.pk}", data, frozenset({entry.beneficiary_id}), occurred_at)
        )
    return facts


def payout_paid_facts(withdrawal_ids: list[int]) -> list[EventFact]:
    withdrawals = Withdrawal.objects.filter(pk__in=withdrawal_ids, status=Withdrawal.Status.PAID)
    return [
        EventFact(
            EventType.PAYOUT_PAID,
            f"payout.paid:{withdrawal.pk}",
            {
                "payout": {
                    "id": withdrawal.pk,
                    "member_id": withdrawal.member_id,
                    "amount": _money(withdrawal.amount),
                    "status": withdrawal.status,
                    "requested_at": _time(withdrawal.requested_at),
                    "paid_at": _time(withdrawal.paid_at),
                }
            },
            frozenset({withdrawal.member_id}),
            withdrawal.paid_at,
        )
        for withdrawal in withdrawals
    ]


def facts_for(topic: str, object_ids: list[int]) -> list[EventFact]:
    """The events a domain announcement means. `topic`: "order.paid", "payout.paid" or "commission.<change>"."""
    if topic == EventType.ORDER_PAID:
        return order_paid_facts(object_ids)
    if topic == EventType.PAYOUT_PAID:
        return payout_paid_facts(object_ids)
    if topic.startswith("commission."):
        return commission_facts(object_ids, topic.removeprefix("commission."))
    return []


def topic_event_types(topic: str) -> set[str]:
    """The event types a topic may produce (to skip the reading when no endpoint wants any of them)."""
    if topic == f"commission.{CREATED}":
        return {EventType.COMMISSION_CREATED, EventType.COMMISSION_REVERSED}
    return {topic}


def recent_fact_ids(since: datetime, member_ids: set[int] | None = None) -> dict[str, list[int]]:
    """For the sweep: per topic, the ids of the facts since `since` (an order paid, an entry written, released or
    voided, a withdrawal paid), whether or not their announcement arrived; with `member_ids`, only theirs."""
    orders = Order.objects.filter(paid_at__gte=since)
    withdrawals = Withdrawal.objects.filter(status=Withdrawal.Status.PAID, paid_at__gte=since)
    entries = CommissionEntry.objects.filter(beneficiary__isnull=False).exclude(kind=CommissionEntry.Kind.PLATFORM)
    if member_ids is not None:
        orders = orders.filter(Q(sharer_id__in=member_ids) | Q(shop__owner_id__in=member_ids))
        withdrawals = withdrawals.filter(member_id__in=member_ids)
        entries = entries.filter(beneficiary_id__in=member_ids)
    return {
        EventType.ORDER_PAID.value: list(orders.values_list("pk", flat=True)),
        EventType.PAYOUT_PAID.value: list(withdrawals.values_list("pk", flat=True)),
        f"commission.{CREATED}": list(entries.filter(created_at__gte=since).values_list("pk", flat=True)),
        f"commission.{AVAILABLE}": list(entries.filter(released_at__gte=since).values_list("pk", flat=True)),
        f"commission.{REVERSED}": list(
            entries.filter(status=CommissionEntry.Status.REVERSED, reversed_at__gte=since).values_list("pk", flat=True)
        ),
    }
