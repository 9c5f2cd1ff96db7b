"""The project's Celery app with the work that follows a payment routed to a queue no worker consumes, for
benchmarks that measure what comes before it (bench/payment_notifications.py: `celery -A bench.celery_parked`):
the commission split (measured by bench/commissions.py), the notifications' fan-out (bench/notifications.py) and the
outbound webhooks' events. In production they run on their own workers and queues."""

from config.celery import app

PARKED = {"queue": "bench-parked"}
app.conf.task_routes = {
    "commissions.tasks.commission_split_order_task": PARKED,
    "members.notifications.tasks.*": PARKED,
    "members.webhooks.tasks.*": PARKED,
}
