"""Thin Celery tasks of the webhooks app: take ids, call one service. Each is safe to run twice (see services)."""

from celery import shared_task

from core.task_helpers import IDEMPOTENT_TASK
from members.webhooks.services import deliveries_due_send, delivery_attempt, webhook_events_record, webhook_events_sweep


@shared_task(**IDEMPOTENT_TASK)
def webhook_events_record_task(topic: str, object_ids: list[int]) -> int:
    """Record the events of a domain announcement and their deliveries (once per fact and endpoint)."""
    return len(webhook_events_record(topic=topic, object_ids=object_ids))


@shared_task(**IDEMPOTENT_TASK)
def webhook_delivery_attempt_task(delivery_id: int) -> bool:
    """One attempt at a delivery, if it is still pending, due and unclaimed: a duplicate message sends nothing."""
    return delivery_attempt(delivery_id=delivery_id) is not None


@shared_task
def webhook_deliveries_due_task() -> int:
    """The beat's sweep: ask for every delivery whose retry time has come (or whose first message was lost)."""
    return deliveries_due_send()


@shared_task
def webhook_events_sweep_task() -> int:
    """The beat's repair: events whose announcement was lost, recorded and delivered late rather than never."""
    return webhook_events_sweep()
