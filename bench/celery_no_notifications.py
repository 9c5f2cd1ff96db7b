"""A Celery app for `bench/commissions.py --celery-app bench.celery_no_notifications`: the project's, with the
notifications' ledger receiver disconnected in every worker process. It measures the split with the ledger's
announcement (the read of the new entries' ids, the signal) but without the notification work the announcement asks
for, which production can route to a queue of its own (NOTIFICATIONS_QUEUE)."""

from celery.signals import worker_process_init

from config.celery import app

__all__ = ["app"]


@worker_process_init.connect
def _notifications_off(**_kwargs) -> None:
    from commissions.signals import commission_entries_changed

    commission_entries_changed.disconnect(dispatch_uid="notifications-entries")
