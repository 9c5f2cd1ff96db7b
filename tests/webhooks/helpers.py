"""Helpers of the webhook tests: an endpoint through the service, a real commission entry announced the way the
ledger announces it (the signal sent by the test, after the row exists)."""

from commissions.models import CommissionEntry
from commissions.signals import commission_entries_changed
from members.webhooks.models import Delivery, EventType
from members.webhooks.services import endpoint_create
from tests.payouts.helpers import credit

ALL_EVENTS = [value for value, _label in EventType.choices]


def endpoint_for(owner, url: str, events=None, *, receiver=None):
    endpoint = endpoint_create(owner=owner, url=url, event_types=events or ALL_EVENTS)
    if receiver is not None:
        receiver.secrets.append(endpoint.secret)
    return endpoint


def announce_commission(member, amount: str = "3.20", *, change: str = "created", status="pending") -> CommissionEntry:
    entry = credit(member, amount, status=status)
    commission_entries_changed.send(sender=CommissionEntry, entry_ids=[entry.pk], change=change)
    return entry


def the_delivery(endpoint) -> Delivery:
    return Delivery.objects.select_related("event").get(endpoint=endpoint)
