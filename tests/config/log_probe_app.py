"""The project's Celery app plus a task and a beat hook that log contact details and a token, for
tests/config/test_celery_logging.py: `celery -A tests.config.log_probe_app worker|beat`.

Everything else (settings, logging, the project's tasks) is the project's own, as `celery -A config` loads it.
"""

import logging
import os

from celery.signals import beat_init
from celery.utils.log import get_task_logger

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

from config.celery import app

# What must never reach a log unmasked, and what it becomes.
LINE = "buyer li.na@example.com phone 13800138000 token=abc123"
MASKED = "buyer l***@example.com phone ***00 token=[redacted]"
RAW = ("li.na@example.com", "13800138000", "abc123")


@app.task(name="tests.log_probe")
def log_probe(marker: str) -> str:
    """Logs LINE four ways from a pool process: an app logger, the task logger, Celery's own logger, print()."""
    logging.getLogger("shops.log_probe").warning("%s app %s", marker, LINE)
    get_task_logger(__name__).warning("%s task %s", marker, LINE)
    logging.getLogger("celery.worker").warning("%s celery %s", marker, LINE)
    print(f"{marker} print {LINE}")
    return marker


@beat_init.connect
def _log_at_beat_start(**_kwargs) -> None:
    marker = os.environ.get("LOG_PROBE_MARKER")
    if marker:
        logging.getLogger("shops.log_probe").warning("%s beat %s", marker, LINE)


__all__ = ["app", "log_probe"]
