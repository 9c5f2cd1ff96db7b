import logging
import time
import urllib.error
import urllib.request
from functools import partial

from celery import shared_task
from django.conf import settings

from core.task_helpers import task_request_next
from shops.services import (
    clicks_flush,
    orders_cancel_expired,
    payment_notices_apply,
    payment_notices_requested,
    payments_sync_stale,
)

logger = logging.getLogger(__name__)


@shared_task
def orders_cancel_expired_task() -> int:
    """Periodic: cancel unpaid orders past the payment timeout and return their stock."""
    return orders_cancel_expired()


@shared_task
def payment_notices_apply_task(gather: bool = True) -> int:
    """Apply a batch of waiting payment notices (asked for once per burst by the webhook, and by the beat for any
    whose message was lost); a full batch asks for the next at once, so every idle worker joins in. `gather`: wait
    PAYMENT_NOTICES_GATHER_SECONDS first, so the notices arriving meanwhile are in the batch."""
    if gather and settings.PAYMENT_NOTICES_GATHER_SECONDS > 0:
        time.sleep(settings.PAYMENT_NOTICES_GATHER_SECONDS)
    return payment_notices_apply(more=_ask_for_more_notices)


def _ask_for_more_notices() -> None:
    task_request_next(partial(payment_notices_requested, gather=False))


@shared_task
def payments_sync_stale_task() -> int:
    """Periodic: ask the providers about payments still pending a while after they were opened (a notification that
    never came, and the buyer left the page that would have asked)."""
    return payments_sync_stale()


@shared_task
def clicks_flush_task() -> int:
    """Periodic: move counted clicks into the database. Safe to run twice or concurrently.

    Its runs are recorded for the staff overview's health figures (staff.jobs: JobRun "clicks_flush").
    """
    return clicks_flush()


@shared_task(name="referrals.tasks.clicks_flush_task")
def clicks_flush_legacy_task() -> int:
    """The click flush under the name it had before it moved from referrals (issue #20), so that messages queued
    under that name before an upgrade still run. Remove in the release after."""
    return clicks_flush()


@shared_task(bind=True, max_retries=6, retry_backoff=True, retry_backoff_max=600)
def sandbox_webhook_deliver_task(self, url: str, body: str, headers: dict[str, str]) -> int:
    """The sandbox provider's webhook sender: POST until the shop answers 2xx, as real providers retry."""
    request = urllib.request.Request(url, data=body.encode(), headers=headers, method="POST")  # noqa: S310 - our own webhook URL (http/https)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 - our own configured URL
            return response.status
    except urllib.error.HTTPError as error:
        if error.code < 500:
            logger.warning("sandbox webhook to %s refused: %s %s", url, error.code, error.read()[:200])
            return error.code
        raise self.retry(exc=error) from error
    except (urllib.error.URLError, TimeoutError, ConnectionError) as error:
        raise self.retry(exc=error) from error
