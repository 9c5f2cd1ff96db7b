"""For bench/commissions.py --celery-app bench.celery_no_notifications: the project's Celery app with the notifications' ledger receiver disconnected in every worker process: measures
the split with the ledger's announcement (the id read, the signal) but without the notification work it asks for."""

from celery.signals import worker_process_init

from config.celery import app  # noqa: F401


@worker_process_init.connect
def _notifications_off(**_kwargs):
    from commissions.signals import commission_entries_changed

    commission_entries_changed.disconnect(dispatch_uid="notifications-entries")
