"""Sending Celery tasks safely: options for idempotent tasks, a send that survives a broker outage, and one
message for many writes. Used by every app's services and tasks (the Celery app itself is config.celery)."""

# Options for tasks whose effect is guarded by a database constraint, so running
# them twice changes nothing: ack after the work is done, and give the message
# back to the broker when the worker dies mid-task.
IDEMPOTENT_TASK = {"acks_late": True, "reject_on_worker_lost": True}


def task_request_once(
    *, flag: str, task, flag_seconds: float, logger, fallback: str, args: tuple = (), unreachable=None
) -> bool:
    """Send `task` unless a run is already asked for and not started; return whether a message was sent.

    Many writes, one message: the first caller after a run starts sets a cache flag (`cache.add`) and sends;
    the others see the flag. The run clears the flag before it reads its work, so whatever committed before a
    caller saw the flag is in what that run reads. If the message is lost the flag expires after
    `flag_seconds`; if the broker is down the flag is dropped at once and `fallback` (logged) says what will
    pick the work up instead; `unreachable`, if given, is then called (the caller does its own part at once).
    """
    from django.core.cache import cache

    if not cache.add(flag, 1, timeout=flag_seconds):
        return False
    if not task_send(task, *args, logger=logger, fallback=fallback):
        cache.delete(flag)
        if unreachable is not None:
            unreachable()
        return False
    return True


def task_runs_in_process() -> bool:
    """Whether tasks run here, in the caller's process, when sent (eager: the embedded default and the tests)."""
    from celery import current_app

    return bool(current_app.conf.task_always_eager)


def task_request_next(request) -> None:
    """Call `request` (a function sending a run's task through `task_request_once`) for the next batch, from a run
    that found a full one: at once when workers run the tasks, so another worker starts on it while this one
    writes; when tasks run in-process (eager, the embedded default) after the current transaction commits, never
    inside it."""
    from django.db import transaction

    if task_runs_in_process():
        transaction.on_commit(request)
    else:
        request()


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
