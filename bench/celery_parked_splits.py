"""The project's Celery app with the commission split routed to a queue no worker consumes, for benchmarks that
measure what comes before the split (bench/payment_notifications.py): `celery -A bench.celery_parked_splits`."""

from config.celery import app

app.conf.task_routes = {"commissions.tasks.commission_split_order_task": {"queue": "bench-splits-parked"}}
