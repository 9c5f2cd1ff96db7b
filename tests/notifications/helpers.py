"""Helpers of the notification tests: a sale through a chain of members, paid, and what each recipient received."""

from django.core import mail

from commissions.models import CommissionEntry
from core import sms
from members.notifications.models import Notification
from tests.factories import ProductFactory, make_chain, pay_order, place_order, shop_with_products


def chain_sale(levels: int = 3):
    """A chain of `levels` members; the last one's shop sells one product; the order (unpaid) and the chain."""
    chain = make_chain(levels)
    shop = shop_with_products(ProductFactory(), owner=chain[-1])
    return place_order(shop), chain


def paid_chain_sale(levels: int = 3):
    order, chain = chain_sale(levels)
    return pay_order(order), chain


def earners(order) -> dict[int, object]:
    """The members the order's split pays (member id → total amount of their commission entries)."""
    totals = {}
    for member_id, amount in CommissionEntry.objects.filter(
        order=order, kind=CommissionEntry.Kind.COMMISSION, beneficiary__isnull=False, amount__gt=0
    ).values_list("beneficiary_id", "amount"):
        totals[member_id] = totals.get(member_id, 0) + amount
    return totals


def inbox(member, event: str | None = None) -> list[Notification]:
    rows = Notification.objects.filter(member=member).order_by("pk")
    return list(rows.filter(event=event) if event else rows)


def emails_to(address: str) -> list:
    return [message for message in mail.outbox if address in message.to]


def texts_to(phone: str) -> list:
    return [message for message in sms.outbox if message.phone == phone]
