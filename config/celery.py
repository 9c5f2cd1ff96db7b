"""The Celery app. Tasks live in each app's tasks.py and are autodiscovered."""

import os

from celery import Celery
from celery.signals import after_setup_logger, after_setup_task_logger, beat_init, worker_init
from django.core.exceptions import ImproperlyConfigured

from core import request_id  # noqa: F401 - connects the signals that carry a request's id into its tasks
from core.logging import redact_every_handler

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("config")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@after_setup_logger.connect
@after_setup_task_logger.connect
def _redact_celery_logs(**_kwargs) -> None:
    """The worker and beat replace the root logger's handlers (settings.LOGGING's, which redact) with their own
    (worker_hijack_root_logger) and give `celery.task` one more: each gets the redacting filter as it is set up, in
    the main process and again in every pool process."""
    redact_every_handler()


@after_setup_task_logger.connect
def _task_lines_as_json(logger=None, **_kwargs) -> None:
    """With JSON logs (LOG_FORMAT=json) the worker keeps settings.LOGGING's handlers on the root logger, but still
    gives `celery.task` a text handler of its own that does not propagate: the task logger's lines go to the root's
    JSON handler instead."""
    from django.conf import settings

    if settings.LOG_FORMAT == "json" and logger is not None:
        logger.handlers = []
        logger.propagate = True


@worker_init.connect
@beat_init.connect
def _refuse_sandbox_settings_in_production(**_kwargs) -> None:
    """With DEBUG=0 a worker or beat does not start with development secrets or sandbox providers (config.checks).

    Celery logs an exception raised by a signal receiver and goes on, so the refusal is a SystemExit."""
    from config.checks import refuse_to_start_with_sandbox_settings  # not at import: needs the apps loaded

    try:
        refuse_to_start_with_sandbox_settings()
    except ImproperlyConfigured as error:
        raise SystemExit(str(error)) from error
