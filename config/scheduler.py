"""The embedded default's scheduler: runs CELERY_BEAT_SCHEDULE in the development server's own process.

With no broker (the embedded default) there is no `celery beat` and no worker: tasks run eagerly, in-process.
Something still has to run the periodic tasks (the click flush, releasing held commission, cancelling unpaid
orders, the network sync, the nightly checks …), and it has to be the serving process itself, because the
embedded click counter lives in that process's memory. So `manage.py runserver` (config/management/commands/
runserver.py) starts one `EmbeddedScheduler` thread once the server is bound, when settings.EMBEDDED_SCHEDULER is
on (its default when no broker is set). With a broker nothing here runs: `celery beat` is the scheduler.

It is celery beat's loop in miniature, with celery's own schedule objects: each entry of the beat schedule
becomes a `celery.beat.ScheduleEntry`, whose `is_due()` (the schedule's `is_due` / `remaining_estimate`, crontab
or interval) says whether it runs now and how long until it next does. A due entry's task runs through
`Task.apply()`, as an eager call does: the task's own code, signals included, so its run is recorded (staff.JobRun,
by staff.jobs' signal hook) exactly as under a worker. Each run gets a thread of its own, so a slow task (a network
sync waiting on a timeout) holds up only itself; an entry whose task is still running when it comes due again is
skipped, never run twice at once. A task that raises is logged and runs again when next due; the loop goes on.

The scheduler keeps no state between starts: when it starts it runs every entry once (so whatever came due while
the server was stopped, a nightly check or the hourly release, is caught up, and the back office sees every job
run), then each entry on its schedule.
"""

from __future__ import annotations

import atexit
import logging
import threading
import time
from collections.abc import Mapping

from celery import Celery
from celery.beat import ScheduleEntry
from django.conf import settings
from django.db import connections

from config.celery import app as celery_app

logger = logging.getLogger(__name__)

# The longest the loop sleeps between looks at the schedule: a stop, or a clock change, is noticed this soon.
MAX_SLEEP_SECONDS = 1.0
# How long a stop waits for the tasks still running before the process goes on exiting without them (a task cut
# off mid-transaction is rolled back by the database; every periodic task is safe to run again).
STOP_WAIT_SECONDS = 10.0
THREAD_PREFIX = "embedded-scheduler:"  # a task run's thread is named this and its entry's name


class EmbeddedScheduler:
    """Runs the due entries of a celery beat schedule in this process (see the module's docstring).

    `run_pending()` is one look at the schedule; `start()` runs every entry once, then calls `run_pending()` in
    a background thread until `stop()`.
    """

    def __init__(
        self,
        *,
        app: Celery,
        beat_schedule: Mapping[str, dict] | None = None,
        max_sleep: float = MAX_SLEEP_SECONDS,
    ) -> None:
        self.app = app
        beat_schedule = app.conf.beat_schedule if beat_schedule is None else beat_schedule
        # As celery beat builds its entries: each dict's task, schedule (seconds, timedelta, crontab …), args,
        # kwargs, options and relative; last_run_at is now, so the first look finds nothing due.
        self.entries: dict[str, ScheduleEntry] = {
            name: ScheduleEntry(**dict(fields, name=name, app=app)) for name, fields in beat_schedule.items()
        }
        self.max_sleep = max_sleep
        self._lock = threading.Lock()
        self._running: dict[str, threading.Thread] = {}  # entry name → the thread running its task
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    # --- One look at the schedule -----------------------------------------------------------------------------

    def run_pending(self) -> float:
        """Start every due entry's task (unless it is still running from before); return the seconds until the
        next entry is due (at most `max_sleep`)."""
        next_in = self.max_sleep
        for name, entry in list(self.entries.items()):
            try:
                is_due, seconds = entry.is_due()
            except Exception:  # one entry whose next run cannot be computed must not stop the others
                logger.exception("Embedded scheduler: cannot compute when %s runs next", name)
                continue
            if is_due:
                self._run(entry)
                # Due again one whole schedule after now, as beat counts it (also when skipped: no catch-up storm).
                entry = self.entries[name] = entry._next_instance()
                is_due, seconds = entry.is_due()
            next_in = min(next_in, seconds)
        return max(next_in, 0.0)

    def run_all(self) -> None:
        """Start every entry's task now (unless still running), and count its schedule from now."""
        for name, entry in list(self.entries.items()):
            self._run(entry)
            self.entries[name] = entry._next_instance()

    def _run(self, entry: ScheduleEntry) -> None:
        with self._lock:
            running = self._running.get(entry.name)
            if running is not None and running.is_alive():
                logger.warning(
                    "Embedded scheduler: %s (%s) is still running from its last time; skipped until it is next due",
                    entry.name,
                    entry.task,
                )
                return
            thread = threading.Thread(
                target=self._apply, args=(entry,), name=f"{THREAD_PREFIX}{entry.name}", daemon=True
            )
            self._running[entry.name] = thread
        logger.debug("Embedded scheduler: running %s (%s)", entry.name, entry.task)
        thread.start()

    def _apply(self, entry: ScheduleEntry) -> None:
        """The task's run, in its own thread, as an eager call runs it (Task.apply: the task's code and signals)."""
        try:
            task = self.app.tasks[entry.task]
            task.apply(args=entry.args, kwargs=entry.kwargs, throw=True)
        except Exception:
            logger.exception("Embedded scheduler: %s (%s) failed; it runs again when next due", entry.name, entry.task)
        finally:
            connections.close_all()  # this thread's own connections: the thread ends here
            with self._lock:
                if self._running.get(entry.name) is threading.current_thread():
                    del self._running[entry.name]

    # --- The background thread --------------------------------------------------------------------------------

    @property
    def is_running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> None:
        """Run every entry once, then each when due, in a daemon thread. Starting a started scheduler is refused."""
        if self._thread is not None:
            raise RuntimeError("this scheduler has been started already")
        # Every installed app's tasks.py, so that each entry's task is registered (what a worker's start imports).
        self.app.autodiscover_tasks(force=True)
        self._thread = threading.Thread(target=self._loop, name="embedded-scheduler", daemon=True)
        self._thread.start()
        logger.info(
            "Embedded scheduler started: %d periodic tasks run in this process (EMBEDDED_SCHEDULER=0 turns it off)",
            len(self.entries),
        )

    def _loop(self) -> None:
        self.run_all()
        while not self._stopping.is_set():
            try:
                delay = self.run_pending()
            except Exception:  # never let the loop die: the next look may well succeed
                logger.exception("Embedded scheduler: looking at the schedule failed")
                delay = self.max_sleep
            self._stopping.wait(delay)

    def join(self, timeout: float | None = None) -> list[str]:
        """Wait up to `timeout` seconds (None: for as long as it takes) for the tasks running now to finish;
        return the names of the entries still running."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._lock:
            running = list(self._running.values())
        for thread in running:
            thread.join(None if deadline is None else max(deadline - time.monotonic(), 0))
        return [thread.name.removeprefix(THREAD_PREFIX) for thread in running if thread.is_alive()]

    def stop(self, timeout: float = STOP_WAIT_SECONDS) -> None:
        """Stop looking at the schedule and wait up to `timeout` seconds for the tasks still running."""
        deadline = time.monotonic() + timeout
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(timeout)
        if still_running := self.join(max(deadline - time.monotonic(), 0)):
            logger.warning("Embedded scheduler stopped with tasks still running: %s", ", ".join(still_running))
        else:
            logger.info("Embedded scheduler stopped")


_scheduler: EmbeddedScheduler | None = None
_scheduler_lock = threading.Lock()


def embedded_scheduler_start() -> EmbeddedScheduler | None:
    """Start this process's embedded scheduler if settings.EMBEDDED_SCHEDULER is on; return it (None when off).

    At most one per process: a second call returns the one already started. It stops when the process exits
    (or through `embedded_scheduler_stop`).
    """
    global _scheduler
    if not settings.EMBEDDED_SCHEDULER:
        return None
    with _scheduler_lock:
        if _scheduler is None:
            _scheduler = EmbeddedScheduler(app=celery_app)
            _scheduler.start()
            atexit.register(embedded_scheduler_stop)
        return _scheduler


def embedded_scheduler_stop() -> None:
    """Stop this process's embedded scheduler, if one was started (waiting a little for running tasks)."""
    global _scheduler
    with _scheduler_lock:
        scheduler, _scheduler = _scheduler, None
    if scheduler is not None:
        scheduler.stop()
        atexit.unregister(embedded_scheduler_stop)
