"""The webhooks app listens to the domain apps' announcements (all sent after their commit) and only asks for work:
one task message per announcement (a batch of orders or withdrawals is one), which reads the facts and records the
events (webhooks.services)."""

import logging

from commissions.signals import commission_entries_changed
from core.task_helpers import task_send
from members.webhooks.models import EventType
from members.webhooks.tasks import webhook_events_record_task
from payouts.models import Withdrawal
from payouts.signals import withdrawals_changed
from shops.models import Order
from shops.signals import order_status_changed

logger = logging.getLogger(__name__)
LOST = "the webhook sweep records its events within minutes"


def on_order_status_changed(sender, *, changes, **kwargs) -> None:
    paid = [order_id for order_id, _from, to in changes if to == Order.Status.PAID]
    if paid:  # one message for a batch of orders paid together
        task_send(webhook_events_record_task, EventType.ORDER_PAID.value, paid, logger=logger, fallback=LOST)


def on_withdrawals_changed(sender, *, changes, **kwargs) -> None:
    paid = [withdrawal_id for withdrawal_id, _from, to in changes if to == Withdrawal.Status.PAID]
    if paid:
        task_send(webhook_events_record_task, EventType.PAYOUT_PAID.value, paid, logger=logger, fallback=LOST)


def on_commission_entries_changed(sender, *, entry_ids, change: str, **kwargs) -> None:
    if entry_ids:
        task_send(webhook_events_record_task, f"commission.{change}", list(entry_ids), logger=logger, fallback=LOST)


def connect() -> None:
    order_status_changed.connect(on_order_status_changed, dispatch_uid="webhooks-orders")
    withdrawals_changed.connect(on_withdrawals_changed, dispatch_uid="webhooks-withdrawals")
    commission_entries_changed.connect(on_commission_entries_changed, dispatch_uid="webhooks-commissions")
