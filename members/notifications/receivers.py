"""The domain apps' announcements, turned into requests for work (nothing else: they run in the request that paid,
shipped or paid out, after its commit). A failure to ask is logged, never raised: the sweep finds what was missed."""

import logging

from commissions.signals import AVAILABLE, CREATED, commission_entries_changed, rules_change_scheduled
from members.notifications.services import (
    ORDER_EVENTS,
    WITHDRAWAL_EVENTS,
    notifications_entries_requested,
    notifications_requested,
    rules_change_requested,
)
from payouts.signals import withdrawals_changed
from shops.signals import order_status_changed

logger = logging.getLogger(__name__)


def connect() -> None:
    order_status_changed.connect(order_status_changed_received, dispatch_uid="notifications-orders")
    withdrawals_changed.connect(withdrawals_changed_received, dispatch_uid="notifications-withdrawals")
    commission_entries_changed.connect(commission_entries_changed_received, dispatch_uid="notifications-entries")
    rules_change_scheduled.connect(rules_change_scheduled_received, dispatch_uid="notifications-rules")


def order_status_changed_received(sender, *, changes, **kwargs) -> None:
    if any(to_status in ORDER_EVENTS for _pk, _from, to_status in changes):
        _ask(notifications_requested)


def withdrawals_changed_received(sender, *, changes, **kwargs) -> None:
    if any(to_status in WITHDRAWAL_EVENTS for _pk, _from, to_status in changes):
        _ask(notifications_requested)


def commission_entries_changed_received(sender, *, entry_ids, change, **kwargs) -> None:
    if change in (CREATED, AVAILABLE) and entry_ids:
        _ask(notifications_entries_requested, entry_ids, change)


def rules_change_scheduled_received(sender, *, kind, version, **kwargs) -> None:
    _ask(rules_change_requested, kind, version)


def _ask(request, *args) -> None:
    try:
        request(*args)
    except Exception:  # never break the money path (eager tasks run right here)
        logger.exception("notifications: asking for a run failed; the sweep will send what waits")
