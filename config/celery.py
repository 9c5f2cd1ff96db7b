"""The Celery app. Tasks live in each app's tasks.py and are autodiscovered."""

import os

from celery import Celery
from celery.signals import after_setup_logger, after_setup_task_logger, beat_init, worker_init
from django.core.exceptions import ImproperlyConfigured

from config.logging import redact_every_handler

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


# Options for tasks whose effect is guarded by a database constraint, so running
# them twice changes nothing: ack after the work is done, and give the message
# back to the broker when the worker dies mid-task.
IDEMPOTENT_TASK = {"acks_late": True, "reject_on_worker_lost": True}


def task_request_once(*, flag: str, task, flag_seconds: float, logger, fallback: str) -> bool:
    """Send `task` unless a run is already asked for and not started; return whether a message was sent.

    Many writes, one message: the first caller after a run starts sets a cache flag (`cache.add`) and sends;
    the others see the flag. The run clears the flag before it reads its work, so whatever committed before a
    caller saw the flag is in what that run reads. If the message is lost the flag expires after
    `flag_seconds`; if the broker is down the flag is dropped at once and `fallback` (logged) says what will
    pick the work up instead.
    """
    from django.core.cache import cache

    if not cache.add(flag, 1, timeout=flag_seconds):
        return False
    if not task_send(task, logger=logger, fallback=fallback):
        cache.delete(flag)
        return False
    return True


def task_send(task, *args, logger, fallback: str) -> bool:
    """Send `task(*args)`; if the broker is unreachable, log it and return False instead of raising.

    For messages sent after a commit whose work something periodic also finds (`fallback` says what): the
    request that committed must not fail because the broker is down.
    """
    from kombu.exceptions import OperationalError

    try:
        task.delay(*args)
    except OperationalError:
        logger.exception("could not send %s%s; %s", task.name, args, fallback)
        return False
    return True
