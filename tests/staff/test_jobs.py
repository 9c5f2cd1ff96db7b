"""Job records (staff/jobs.py): a Celery signal hook in staff writes staff.JobRun when a listed task succeeds,
whoever runs it (a worker, `apply()` and so an eager `.delay()`, the embedded scheduler); the apps below staff
never import it."""

import logging

import pytest
from django.conf import settings

import commissions.tasks
import staff.jobs
from commissions.tasks import commission_sweep_task
from config.celery import app
from config.scheduler import EmbeddedScheduler
from referrals.tasks import tree_check_task
from staff.jobs import RECORDED_JOBS
from staff.models import JobRun
from staff.selectors import MONITORED_JOBS
from tests.commissions.test_worker import broker, queue, wait_until, workers  # noqa: F401 - the fixtures
from tests.config.test_celery_broker import celery_worker  # noqa: F401 - the fixture
from tests.config.test_scheduler import run_entry

pytestmark = pytest.mark.django_db


def test_every_recorded_job_is_a_registered_task_on_the_beat_schedule():
    app.autodiscover_tasks(force=True)
    scheduled = {entry["task"] for entry in settings.CELERY_BEAT_SCHEDULE.values()}

    for job in RECORDED_JOBS:
        assert job.task in app.tasks, job.name
        assert job.task in scheduled, job.name
    assert len({job.name for job in RECORDED_JOBS}) == len(RECORDED_JOBS)


def test_the_overview_monitors_the_same_four_jobs_as_before():
    assert MONITORED_JOBS == (
        ("clicks_flush", "shops.tasks.clicks_flush_task"),  # referrals.tasks.clicks_flush_task before issue #20
        ("commission_release", "commissions.tasks.commission_release_due_task"),
        ("commission_sweep", "commissions.tasks.commission_sweep_task"),
        ("tree_index", "referrals.tasks.tree_index_pending_task"),
    )


def test_a_run_through_celery_is_recorded_with_its_result():
    assert commission_sweep_task.apply().get() == 0

    run = JobRun.objects.get()
    assert (run.name, run.last_result) == ("commission_sweep", "0")


def test_an_eager_delay_is_recorded_too_and_a_second_run_updates_the_row():
    commission_sweep_task.delay()
    first = JobRun.objects.get(name="commission_sweep").last_finished_at

    commission_sweep_task.delay()

    assert JobRun.objects.count() == 1
    assert JobRun.objects.get(name="commission_sweep").last_finished_at > first


def test_a_run_that_raises_is_not_recorded(monkeypatch):
    def broken():
        raise RuntimeError("the sweep failed")

    monkeypatch.setattr(commissions.tasks, "commission_sweep", broken)

    with pytest.raises(RuntimeError):
        commission_sweep_task.apply()

    assert not JobRun.objects.exists()


def test_a_task_that_is_not_listed_is_not_recorded():
    assert tree_check_task.apply().get() == 0

    assert not JobRun.objects.exists()


def test_a_plain_function_call_sends_no_signal_and_records_nothing():
    assert commission_sweep_task() == 0

    assert not JobRun.objects.exists()


def test_a_failing_record_never_fails_the_task(monkeypatch, caplog):
    def refuse(**_kwargs):
        raise RuntimeError("database gone")

    monkeypatch.setattr(staff.jobs, "job_run_record", refuse)

    with caplog.at_level(logging.ERROR):
        assert commission_sweep_task.apply().get() == 0

    assert "database gone" in caplog.text
    assert not JobRun.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_the_embedded_scheduler_records_every_recorded_job():
    # The embedded default's scheduler runs a due entry through Task.apply(): Celery's signals fire there too.
    app.autodiscover_tasks(force=True)
    scheduler = EmbeddedScheduler(app=app)
    recorded = {job.task for job in RECORDED_JOBS}

    for name, entry in list(scheduler.entries.items()):
        if entry.task in recorded:
            run_entry(scheduler, name)

    assert dict(JobRun.objects.values_list("name", "last_result")) == {
        "clicks_flush": "0",
        "commission_release": "0",
        "commission_sweep": "0",
        "tree_index": "0",
        "networks_sync": "0",
        "ledger_check": "0 violation(s)",
        "payout_transfers_sync": "{}",  # nothing open at a payout rail
        "reconciliation": "{}",  # no rail enabled: nothing to reconcile
    }


@pytest.mark.broker
@pytest.mark.django_db(transaction=True)
def test_a_run_on_a_worker_through_the_broker_is_recorded(celery_worker):  # noqa: F811 - the imported fixture
    result = commission_sweep_task.apply_async(ignore_result=False, queue=celery_worker.test_queue)

    assert result.get(timeout=60) == 0
    assert dict(JobRun.objects.values_list("name", "last_result")) == {"commission_sweep": "0"}


@pytest.mark.postgres
@pytest.mark.broker
@pytest.mark.django_db(transaction=True)
def test_a_run_in_a_real_worker_process_is_recorded(workers, queue, broker):  # noqa: F811 - the imported fixtures
    # given: a `celery -A config worker` process (prefork), which loads the apps and so connects the hook itself
    group = workers(batch=50)
    group.start("jobs")

    # when: the periodic sweep is sent to it, as celery beat would
    commission_sweep_task.apply_async(queue=queue)

    # then: its run is recorded
    recorded = JobRun.objects.filter(name="commission_sweep")
    wait_until(recorded.exists, timeout=60, what="the job run", group=group)
    assert JobRun.objects.get(name="commission_sweep").last_result == "0"
    group.assert_no_task_failed()
