"""A task through the real broker to a real worker (thread), not eagerly."""

import uuid

import pytest
from celery.contrib.testing.worker import start_worker

from config.celery import app
from referrals.models import Member
from referrals.tasks import tree_check_task
from tests.factories import make_chain

pytestmark = [pytest.mark.broker, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def celery_worker():
    saved = {k: app.conf[k] for k in ("task_always_eager", "result_backend", "task_ignore_result")}
    app.conf.update(task_always_eager=False, result_backend="cache+memory://", task_ignore_result=False)
    vars(app._local).pop("backend", None)  # drop a backend cached before the result backend was set
    try:
        # A queue of this run alone: other tests may have changed the app's default queue, and stale
        # messages of earlier runs must not be consumed here.
        worker_queue = f"test-broker-{uuid.uuid4().hex[:12]}"
        with start_worker(
            app, pool="solo", perform_ping_check=False, shutdown_timeout=30, queues=[worker_queue]
        ) as worker:
            worker.test_queue = worker_queue
            yield worker
    finally:
        app.conf.update(saved)
        vars(app._local).pop("backend", None)


def test_tree_check_runs_on_a_worker_through_the_broker(celery_worker):
    root, child = make_chain(2)

    healthy = tree_check_task.apply_async(ignore_result=False, queue=celery_worker.test_queue)
    assert healthy.get(timeout=60) == 0

    Member.objects.filter(pk=child.pk).update(level=9)
    broken = tree_check_task.apply_async(ignore_result=False, queue=celery_worker.test_queue)
    assert broken.get(timeout=60) == 1
