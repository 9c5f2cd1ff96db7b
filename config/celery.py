"""The Celery app. Tasks live in each app's tasks.py and are autodiscovered."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("config")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

# Options for tasks whose effect is guarded by a database constraint, so running
# them twice changes nothing: ack after the work is done, and give the message
# back to the broker when the worker dies mid-task.
IDEMPOTENT_TASK = {"acks_late": True, "reject_on_worker_lost": True}
