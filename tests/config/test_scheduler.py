"""The embedded default's scheduler (config/scheduler.py): celery's beat schedule run in the serving process.

The scheduler itself is tested with tasks of a Celery app of the test's own (no database); the real schedule's
consequences (unpaid orders cancelled, held commission released, clicks flushed and recorded for the back office)
with the project's app and CELERY_BEAT_SCHEDULE, one entry at a time: the tests' in-memory SQLite database is
shared between threads but not built for concurrent writers (the real file database is; see
test_sqlite_writers.py and tests/e2e/test_embedded_schedule_browser.py).
"""

import logging
import os
import subprocess
import sys
import threading
from datetime import timedelta
from decimal import Decimal

import pytest
from celery import Celery
from celery.schedules import crontab
from django.conf import settings
from django.core.management import call_command, get_commands
from django.core.management.commands import runserver as django_runserver
from django.urls import reverse
from django.utils import timezone

import config.scheduler
from commissions.models import CommissionEntry
from config.celery import app as project_app
from config.scheduler import EmbeddedScheduler, embedded_scheduler_start, embedded_scheduler_stop
from shops.models import Order, ShareLinkDailyStat
from shops.services import order_mark_completed, order_mark_shipped, share_link_create
from staff.models import JobRun
from staff.selectors import MONITORED_JOBS, jobs_health
from tests.factories import ProductFactory, make_chain, pay_order, place_order, shop_with_products

BROWSER = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Safari/537.36"


class Calls:
    """What the test app's tasks did, from whichever thread ran them."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.names: list[str] = []
        self.release = threading.Event()
        self.started = threading.Event()

    def add(self, name: str) -> None:
        with self.lock:
            self.names.append(name)

    def count(self, name: str) -> int:
        with self.lock:
            return self.names.count(name)


@pytest.fixture
def calls():
    return Calls()


@pytest.fixture
def test_app(calls):
    """A Celery app of the test's own, eager as the embedded default, with a recording, a failing and a slow task."""
    app = Celery("scheduler-tests", set_as_current=False)
    app.conf.task_always_eager = True
    app.conf.task_eager_propagates = True
    app.conf.timezone = settings.TIME_ZONE

    @app.task(name="tests.record", shared=False)
    def record(name: str) -> str:
        calls.add(name)
        return name

    @app.task(name="tests.fail", shared=False)
    def fail() -> None:
        calls.add("fail")
        raise RuntimeError("the task broke")

    @app.task(name="tests.slow", shared=False)
    def slow() -> None:
        calls.add("slow")
        calls.started.set()
        assert calls.release.wait(10), "the test never let the slow task finish"

    app.finalize()
    yield app
    calls.release.set()  # a test that failed half-way leaves no thread waiting


def set_last_run(scheduler: EmbeddedScheduler, name: str, ago: timedelta) -> None:
    """Pretend entry `name` last ran `ago` before now (in the schedule's own clock)."""
    entry = scheduler.entries[name]
    entry.last_run_at = entry.default_now() - ago


# --- The scheduler ----------------------------------------------------------------------------------------------


def test_due_entries_run_and_entries_not_due_do_not(test_app, calls):
    # given: two interval and two crontab entries, one of each due
    scheduler = EmbeddedScheduler(
        app=test_app,
        beat_schedule={
            "interval-due": {"task": "tests.record", "schedule": 30.0, "args": ("interval-due",)},
            "interval-not-due": {"task": "tests.record", "schedule": 30.0, "args": ("interval-not-due",)},
            "crontab-due": {"task": "tests.record", "schedule": crontab(minute="*"), "args": ("crontab-due",)},
            "crontab-not-due": {
                "task": "tests.record",
                "schedule": crontab(hour=3, minute=17),
                "args": ("crontab-not-due",),
            },
        },
    )
    set_last_run(scheduler, "interval-due", timedelta(seconds=31))
    set_last_run(scheduler, "interval-not-due", timedelta(seconds=10))
    set_last_run(scheduler, "crontab-due", timedelta(minutes=2))
    # crontab-not-due last ran now: its next run is the next 03:17, hours away

    # when
    next_in = scheduler.run_pending()

    # then: only the due ones ran, once each
    assert scheduler.join(5) == []
    assert sorted(calls.names) == ["crontab-due", "interval-due"]
    # the next look is no later than the loop's longest sleep
    assert 0 <= next_in <= config.scheduler.MAX_SLEEP_SECONDS

    # and: each ran entry counts its schedule from now, so a second look right away runs nothing
    scheduler.run_pending()
    assert scheduler.join(5) == []
    assert sorted(calls.names) == ["crontab-due", "interval-due"]
    assert scheduler.entries["interval-due"].is_due().next == pytest.approx(30, abs=1)
    assert 0 < scheduler.entries["crontab-not-due"].is_due().next <= 24 * 60 * 60


def test_an_entry_runs_again_each_time_its_interval_passes(test_app, calls):
    scheduler = EmbeddedScheduler(
        app=test_app, beat_schedule={"often": {"task": "tests.record", "schedule": 30.0, "args": ("often",)}}
    )
    for _time in range(3):
        set_last_run(scheduler, "often", timedelta(seconds=30))
        scheduler.run_pending()
        scheduler.join(5)

    assert calls.count("often") == 3
    assert scheduler.entries["often"].total_run_count == 3


def test_a_failing_task_is_logged_and_the_loop_goes_on(test_app, calls, caplog):
    # given: a failing and a working entry, both every 50 ms, in the running loop
    scheduler = EmbeddedScheduler(
        app=test_app,
        beat_schedule={
            "broken": {"task": "tests.fail", "schedule": timedelta(milliseconds=50)},
            "fine": {"task": "tests.record", "schedule": timedelta(milliseconds=50), "args": ("fine",)},
        },
        max_sleep=0.02,
    )
    caplog.set_level(logging.ERROR, logger="config.scheduler")

    # when
    scheduler.start()
    try:
        deadline = timezone.now() + timedelta(seconds=10)
        while (calls.count("fail") < 3 or calls.count("fine") < 3) and timezone.now() < deadline:
            threading.Event().wait(0.02)
        # then: it failed again and again, each failure logged, and the loop and the other entry went on
        assert scheduler.is_running
    finally:
        scheduler.stop()
    assert calls.count("fail") >= 3 and calls.count("fine") >= 3
    failures = [record for record in caplog.records if record.name == "config.scheduler"]
    assert len(failures) >= 3
    assert failures[0].getMessage() == "Embedded scheduler: broken (tests.fail) failed; it runs again when next due"
    assert failures[0].exc_info[0] is RuntimeError
    assert not scheduler.is_running


def test_a_task_still_running_is_not_started_again(test_app, calls, caplog):
    # given: a slow task, running
    scheduler = EmbeddedScheduler(app=test_app, beat_schedule={"slow": {"task": "tests.slow", "schedule": 1.0}})
    caplog.set_level(logging.WARNING, logger="config.scheduler")  # whatever level earlier tests left the logger at
    set_last_run(scheduler, "slow", timedelta(seconds=2))
    scheduler.run_pending()
    assert calls.started.wait(5)

    # when: it comes due again (twice) while still running
    for _time in range(2):
        set_last_run(scheduler, "slow", timedelta(seconds=2))
        scheduler.run_pending()

    # then: no second run started; each skip is logged
    assert calls.count("slow") == 1
    skips = [record.getMessage() for record in caplog.records if "still running" in record.getMessage()]
    assert (
        skips
        == ["Embedded scheduler: slow (tests.slow) is still running from its last time; skipped until it is next due"]
        * 2
    )

    # when: it finishes, and comes due again
    calls.release.set()
    assert scheduler.join(5) == []
    set_last_run(scheduler, "slow", timedelta(seconds=2))
    scheduler.run_pending()
    assert scheduler.join(5) == []

    # then: it runs again
    assert calls.count("slow") == 2


def test_start_runs_every_entry_once_and_a_second_start_is_refused(test_app, calls):
    scheduler = EmbeddedScheduler(
        app=test_app,
        beat_schedule={
            "nightly": {"task": "tests.record", "schedule": crontab(hour=3, minute=17), "args": ("nightly",)},
            "hourly": {"task": "tests.record", "schedule": crontab(minute=5), "args": ("hourly",)},
            "often": {"task": "tests.record", "schedule": 30.0, "args": ("often",)},
        },
    )

    scheduler.start()
    try:
        with pytest.raises(RuntimeError, match="started already"):
            scheduler.start()
        deadline = timezone.now() + timedelta(seconds=5)
        while len(calls.names) < 3 and timezone.now() < deadline:
            threading.Event().wait(0.02)
    finally:
        scheduler.stop()

    # every entry ran once at start (whatever came due while the server was stopped is caught up), not more
    assert sorted(calls.names) == ["hourly", "nightly", "often"]
    assert [thread.name for thread in threading.enumerate() if thread.name.startswith("embedded-scheduler")] == []


def test_an_unknown_task_is_logged_and_the_others_run(test_app, calls, caplog):
    scheduler = EmbeddedScheduler(
        app=test_app,
        beat_schedule={
            "gone": {"task": "tests.no_such_task", "schedule": 30.0},
            "fine": {"task": "tests.record", "schedule": 30.0, "args": ("fine",)},
        },
    )
    scheduler.run_all()
    scheduler.join(5)

    assert calls.names == ["fine"]
    assert [record.getMessage() for record in caplog.records if record.levelno == logging.ERROR] == [
        "Embedded scheduler: gone (tests.no_such_task) failed; it runs again when next due"
    ]


# --- Started once per serving process, by the development server ----------------------------------------------


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({}, True),  # the embedded default: no broker, the server runs the schedule
        ({"CELERY_BROKER_URL": "redis://cache.example:6379/0"}, False),  # production: celery beat does
        ({"EMBEDDED_SCHEDULER": "0"}, False),
        ({"EMBEDDED_SCHEDULER": "1", "CELERY_BROKER_URL": "redis://cache.example:6379/0"}, True),
    ],
)
def test_the_embedded_scheduler_is_on_by_default_only_without_a_broker(env, expected):
    clean = {key: value for key, value in os.environ.items() if key not in ("CELERY_BROKER_URL", "EMBEDDED_SCHEDULER")}
    result = subprocess.run(
        [sys.executable, "-c", "from config import settings; print(settings.EMBEDDED_SCHEDULER)"],
        cwd=settings.BASE_DIR,
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == str(expected)


@pytest.fixture
def quiet_app(test_app, monkeypatch):
    """The process-wide scheduler built on the test app (one harmless entry), stopped after the test."""
    test_app.conf.beat_schedule = {"often": {"task": "tests.record", "schedule": 30.0, "args": ("often",)}}
    monkeypatch.setattr(config.scheduler, "celery_app", test_app)
    yield test_app
    embedded_scheduler_stop()


def scheduler_threads() -> list[threading.Thread]:
    return [thread for thread in threading.enumerate() if thread.name == "embedded-scheduler"]


def test_the_process_scheduler_starts_once(quiet_app, settings, calls):
    settings.EMBEDDED_SCHEDULER = True

    first = embedded_scheduler_start()
    second = embedded_scheduler_start()

    assert first is second and first.is_running
    assert len(scheduler_threads()) == 1
    embedded_scheduler_stop()
    assert not first.is_running and scheduler_threads() == []
    assert calls.names == ["often"]  # its run at start


def test_the_process_scheduler_stays_off_when_switched_off(quiet_app, settings, calls):
    settings.EMBEDDED_SCHEDULER = False

    assert embedded_scheduler_start() is None
    assert scheduler_threads() == []


def test_make_run_serves_with_the_runserver_that_starts_the_scheduler():
    makefile = (settings.BASE_DIR / "Makefile").read_text()
    assert "$(BIN)/python manage.py runserver $(HOST)" in makefile
    assert get_commands()["runserver"] == "config"


@pytest.mark.parametrize(("switch", "started"), [(True, True), (False, False)])
def test_runserver_starts_the_scheduler_once_bound_and_stops_it_with_the_server(
    quiet_app, settings, monkeypatch, switch, started
):
    settings.EMBEDDED_SCHEDULER = switch
    seen = {}

    def serve(addr, port, handler, *, on_bind, **kwargs):
        """Django's server, bound and serving until Ctrl-C: here, just what happens around it."""
        seen["before bind"] = scheduler_threads()
        on_bind(port)
        seen["while serving"] = scheduler_threads()
        raise KeyboardInterrupt  # Ctrl-C

    monkeypatch.setattr(django_runserver, "run", serve)
    monkeypatch.setattr(django_runserver.Command, "check_migrations", lambda self: None)

    with pytest.raises(SystemExit) as stopped:
        call_command("runserver", "127.0.0.1:8999", use_reloader=False, skip_checks=True)

    assert stopped.value.code == 0
    assert seen["before bind"] == []
    assert len(seen["while serving"]) == (1 if started else 0)
    assert scheduler_threads() == []  # stopped with the server
    assert config.scheduler._scheduler is None


# --- The real schedule's consequences ---------------------------------------------------------------------------


def run_entry(scheduler: EmbeddedScheduler, name: str) -> None:
    """Let entry `name` come due (its last run a week and a day ago: longer than any of its schedules) and the
    scheduler take one look."""
    set_last_run(scheduler, name, timedelta(days=8))
    scheduler.run_pending()
    assert scheduler.join(30) == []


@pytest.fixture
def project_scheduler():
    """The project's app and its CELERY_BEAT_SCHEDULE, every entry just run (nothing due)."""
    project_app.autodiscover_tasks(force=True)
    return EmbeddedScheduler(app=project_app)


def test_every_beat_entry_is_scheduled(project_scheduler):
    assert set(project_scheduler.entries) == set(settings.CELERY_BEAT_SCHEDULE)
    for name, entry in project_scheduler.entries.items():
        assert entry.task in project_app.tasks, name
        assert entry.is_due().is_due is False, name


@pytest.mark.django_db(transaction=True)
def test_the_scheduler_cancels_an_unpaid_order_after_the_timeout(project_scheduler):
    # given: an unpaid order past the 30-minute timeout, and one within it
    product = ProductFactory(stock=10)
    shop = shop_with_products(product)
    late, recent = place_order(shop, {product: 2}), place_order(shop, {product: 3})
    Order.objects.filter(pk=late.pk).update(created_at=timezone.now() - timedelta(minutes=31))

    # when: the schedule runs its every-minute entry
    run_entry(project_scheduler, "orders-cancel-unpaid")

    # then: the late order is cancelled and its stock back; the recent one untouched
    assert Order.objects.get(pk=late.pk).status == Order.Status.CANCELLED
    assert Order.objects.get(pk=recent.pk).status == Order.Status.PENDING_PAYMENT
    product.refresh_from_db()
    assert product.stock == 7


@pytest.mark.django_db(transaction=True)
def test_the_scheduler_releases_held_commission_once_due(project_scheduler):
    # given: two completed orders split into pending commission, one completed longer ago than the hold
    _sponsor, owner = make_chain(2)
    product = ProductFactory(price=Decimal("20.00"), commission_rate=Decimal("0.1000"))
    shop = shop_with_products(product, owner=owner)
    orders = []
    for _order in range(2):
        order = pay_order(place_order(shop, {product: 1}))  # split on commit, eagerly
        order_mark_shipped(order=order)
        orders.append(order_mark_completed(order=order))
    held_long_enough, still_held = orders
    Order.objects.filter(pk=held_long_enough.pk).update(
        completed_at=timezone.now() - timedelta(days=settings.COMMISSION_HOLD_DAYS, minutes=1)
    )
    assert set(CommissionEntry.objects.values_list("status", flat=True)) == {CommissionEntry.Status.PENDING}

    # when: the hourly release entry comes due
    run_entry(project_scheduler, "commissions-release")

    # then: the entries past the hold are available, the others still held; the run is recorded
    assert set(CommissionEntry.objects.values_list("order_id", "status")) == {
        (held_long_enough.pk, CommissionEntry.Status.AVAILABLE),
        (still_held.pk, CommissionEntry.Status.PENDING),
    }
    assert JobRun.objects.get(name="commission_release").last_result == str(
        CommissionEntry.objects.filter(order=held_long_enough).count()
    )


@pytest.mark.django_db(transaction=True)
def test_clicks_are_flushed_by_the_scheduler_and_the_back_office_sees_every_job_on_time(
    project_scheduler, client, staff_user
):
    # given: a click on a share link, counted in this process's memory; no job has run
    product = ProductFactory()
    shop = shop_with_products(product)
    link = share_link_create(owner=shop.owner, product=product)
    client.get(reverse("share_link", args=[link.code]), HTTP_USER_AGENT=BROWSER, REMOTE_ADDR="10.0.0.7")
    assert ShareLinkDailyStat.objects.count() == 0
    assert all(job.is_late and job.last_finished_at is None for job in jobs_health())

    # when: the scheduler runs each monitored job's entry
    monitored = {task for _name, task in MONITORED_JOBS}
    for name, entry in list(project_scheduler.entries.items()):
        if entry.task in monitored:
            run_entry(project_scheduler, name)

    # then: the click is in the daily stats, and every monitored job finished just now, none late
    stat = ShareLinkDailyStat.objects.get(link=link)
    assert (stat.clicks, stat.unique_visitors) == (1, 1)
    assert JobRun.objects.get(name="clicks_flush").last_result == "1"
    health = jobs_health()
    assert {job.name for job in health} == {name for name, _task in MONITORED_JOBS}
    assert [job.name for job in health if job.is_late or job.last_finished_at is None] == []
    client.force_login(staff_user)
    page = client.get(reverse("staff:overview")).content.decode()
    jobs_table = page[page.index('id="jobs"') : page.index("</table>", page.index('id="jobs"'))]
    assert "never" not in jobs_table and "late" not in jobs_table
