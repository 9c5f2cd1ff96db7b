"""Scenarios 1–4 of the fault suite, with real Celery worker processes on PostgreSQL and a Redis broker.

Each run: build a world, drive traffic through the web tier (this process) while two workers split, reverse,
release and pay out; inject the scenario's fault; recover the way production does (the beat's sweep, release
and payout runs, simulated a few minutes later); then check the ledger. Per seed the traffic, and where the
fault lands, differ.
"""

from datetime import timedelta

import pytest
from django.utils import timezone
from kombu.exceptions import OperationalError

from commissions.models import CommissionEntry, OrderSplit
from commissions.services import commission_sweep
from commissions.tasks import commission_release_due_task
from config.celery import app
from payouts.models import Withdrawal
from payouts.tasks import payout_batches_run_task
from shops.models import Order, WebhookEvent
from shops.services import payment_notices_apply
from tests.faults import harness
from tests.faults.conftest import SEEDS
from tests.faults.injection import (
    SUITE_SETTINGS,
    BrokerProxy,
    Workers,
    broker_redis,
    duplicate_publishes,
    duplicate_publishes_undo,
    lock_trap,
    suite_broker_url,
    terminate_backend,
    terminate_other_backends,
    use_broker,
)

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.broker,
    pytest.mark.redis,
    pytest.mark.django_db(transaction=True),
]

STEPS = 36  # traffic steps per run


@pytest.fixture
def suite(settings):
    """The suite's settings in this process (the workers get the same through their environment) and a clean
    broker database, pointed at by this process's Celery app; everything put back afterwards."""
    for name, value in SUITE_SETTINGS.items():
        setattr(settings, name, value == "1" if name.endswith("INLINE") else _number(value))
    broker_redis().flushdb()
    before = app.conf.broker_url
    use_broker(suite_broker_url())
    # Never in-process here: a task run eagerly inside a scenario would wait on the scenario's own locks.
    eager = app.conf.task_always_eager
    app.conf.task_always_eager = False
    yield
    app.conf.task_always_eager = eager
    duplicate_publishes_undo()
    use_broker(before)
    terminate_other_backends()
    broker_redis().flushdb()


def _number(value: str):
    return int(value) if value.isdigit() else value


@pytest.fixture
def workers(suite, tmp_path, request):
    pool = Workers(tmp_path, **getattr(request, "param", {}))
    yield pool
    pool.stop()


# --- Traffic and recovery ---------------------------------------------------------------------------------------


def step(world: harness.World) -> None:
    """One request of the web tier, chosen at random: mostly checkouts, then completions, refunds, withdrawals."""
    roll = world.rng.random()
    if roll < 0.5:
        harness.pay_new_order(world)
    elif roll < 0.68:
        harness.complete_random(world)
    elif roll < 0.84:
        harness.refund_random(world)
    else:
        harness.withdraw_random(world)


def beat(world: harness.World) -> None:
    """What the beat sends on its own schedule: a release run and a payout run."""
    for task in (commission_release_due_task, payout_batches_run_task):
        try:
            task.delay()
            world.figures["beat runs sent"] += 1
        except OperationalError:
            world.figures["beat runs lost"] += 1


def drive(world: harness.World, steps: int, *, fault=None) -> None:
    for index in range(steps):
        step(world)
        if index % 4 == 3:
            beat(world)
        if fault is not None:
            fault(index)


def notices_applied(timeout: float = 30) -> None:
    """Wait until the workers have applied every payment notice the web tier recorded (moments, normally); fail if
    some still wait after `timeout` seconds."""
    import time

    deadline = time.monotonic() + timeout
    while WebhookEvent.objects.filter(applied_at__isnull=True).exists():
        if time.monotonic() > deadline:
            pytest.fail(f"payment notices still waiting after {timeout} s")
        time.sleep(0.1)


def recover(world: harness.World, workers: Workers, *, timeout: float = 120) -> None:
    """Run what the beat runs, as if some minutes had passed, until everything is settled and the queue is empty.

    Fails with the workers' logs if it does not settle in `timeout` seconds.
    """
    import time

    deadline = time.monotonic() + timeout
    quiet = 0
    while time.monotonic() < deadline:
        payment_notices_apply()  # the beat's payment-notices-apply: notices whose message was lost
        commission_sweep(now=timezone.now() + timedelta(minutes=10))
        commission_release_due_task.delay()
        payout_batches_run_task.delay()
        time.sleep(0.5)
        settled = not any(harness.unsettled().values())
        queue_empty = broker_redis().llen(app.conf.task_default_queue) == 0
        quiet = quiet + 1 if settled and queue_empty else 0
        if quiet >= 2:
            return
    pytest.fail(f"not settled after {timeout} s: {harness.unsettled()}\n{workers.logs()}")


def assert_clean(run) -> None:
    assert run.violations == 0, run.problems
    assert run.lost_orders == 0, run.problems
    assert run.duplicate_payouts == 0, run.problems


# --- Catching a worker mid-transaction ------------------------------------------------------------------------


def _trap_split(world):
    """A split run blocked writing its batch's split markers (after claiming the batch and locking its orders)."""
    sql = "LOCK TABLE commissions_ordersplit IN SHARE ROW EXCLUSIVE MODE"
    return lock_trap(sql, ()), lambda: harness.pay_new_order(world)


def _trap_release(world):
    """A release run blocked in its UPDATE of pending entries of completed orders."""
    if harness.complete_random(world) is None:
        return None
    completed = Order.objects.filter(status=Order.Status.COMPLETED).values_list("pk", flat=True)
    pending = CommissionEntry.objects.filter(status=CommissionEntry.Status.PENDING, order_id__in=list(completed))
    ids = list(pending.values_list("pk", flat=True)[:50])
    if not ids:
        return None
    sql = "SELECT id FROM commissions_commissionentry WHERE id = ANY(%s) FOR UPDATE"
    return lock_trap(sql, (ids,)), lambda: commission_release_due_task.delay()


def _trap_payout(world):
    """A payout run blocked after the provider paid (transfers recorded), before the withdrawals are marked paid:
    it waits for the member's wallet lock."""
    withdrawal = harness.withdraw_random(world)
    if withdrawal is None or Withdrawal.objects.get(pk=withdrawal.pk).status != Withdrawal.Status.APPROVED:
        return None
    sql = "SELECT id FROM payouts_memberwallet WHERE member_id = %s FOR UPDATE"
    return lock_trap(sql, (withdrawal.member_id,)), lambda: payout_batches_run_task.delay()


TRAPS = {"split": _trap_split, "release": _trap_release, "payout": _trap_payout}


def catch_mid_transaction(world, what: str, act_on_victim) -> bool:
    """Set the trap for `what`, provoke the work, and call `act_on_victim(pid, application_name)` while the
    worker's transaction is open and waiting; return whether a worker was caught."""
    setup = TRAPS[what](world)
    if setup is None:
        return False
    trap_context, provoke = setup
    with trap_context as trap:
        provoke()
        victim = trap.wait_for_victim()
        if victim is None:
            return False
        act_on_victim(*victim)
    return True


# --- Scenarios ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", SEEDS)
def test_every_message_delivered_two_or_three_times(seed, workers, fault_report):
    """Scenario 1: every task message, sent by the web tier or by a worker, is published two or three times."""
    for worker in workers.all:
        worker.env["FAULTS_DUPLICATES"] = str(seed)
    workers.start()
    duplicate_publishes(seed=seed)
    world = harness.build_world(seed)
    drive(world, STEPS)
    recover(world, workers)
    run = fault_report(harness.final_check("1 duplicate deliveries", seed, world))
    assert_clean(run)
    assert OrderSplit.objects.count() == Order.objects.filter(paid_at__isnull=False).count()


@pytest.mark.parametrize("seed", SEEDS)
def test_a_worker_killed_mid_batch_then_restarted(seed, workers, fault_report):
    """Scenario 2: a worker is SIGKILLed (with its pool process) in the middle of a split, a release and a payout
    run (late acks), then started again."""
    workers.start()
    world = harness.build_world(seed)
    order = ["split", "release", "payout"]
    world.rng.shuffle(order)

    def kill(pid, application_name):
        worker = workers.by_application_name(application_name)
        if world.rng.random() < 0.5 and worker.kill_pool_process():
            world.figures["pool processes killed"] += 1  # the worker requeues the message itself
        else:
            worker.kill()  # the whole worker: its message waits unacknowledged; the sweep re-sends the work
            world.figures["workers killed"] += 1
            worker.start()

    def fault(index):
        if index % 9 == 8 and order:
            what = order.pop()
            if catch_mid_transaction(world, what, kill):
                world.figures[f"killed in {what}"] += 1

    drive(world, STEPS, fault=fault)
    recover(world, workers)
    run = fault_report(harness.final_check("2 worker killed mid-batch", seed, world))
    assert_clean(run)
    assert world.figures["workers killed"] + world.figures["pool processes killed"] >= 1, "no worker caught"


@pytest.mark.parametrize("seed", SEEDS)
def test_the_broker_stops_while_orders_are_paid(seed, suite, tmp_path, fault_report, monkeypatch):
    """Scenario 3: the broker goes away for everyone (connections cut, new ones refused) while buyers pay and staff
    refund; every request still commits; when the broker is back the sweep makes the commissions whole."""
    # Each send to the missing broker gives up after one quick retry instead of Celery's three (0.6 s): what this
    # scenario proves does not depend on how long a send retries, and the suite's time went there.
    policy = app.conf.task_publish_retry_policy  # the senders hold this very dict: changed in place
    monkeypatch.setitem(policy, "max_retries", 1)
    monkeypatch.setitem(policy, "interval_step", 0.05)
    monkeypatch.setitem(policy, "interval_max", 0.05)
    proxy = BrokerProxy(_redis_address(suite_broker_url()))
    proxy.start()
    url = proxy.url_for(suite_broker_url())
    use_broker(url)
    workers = Workers(tmp_path, broker_url=url)
    workers.start()
    try:
        world = harness.build_world(seed)
        down_at = world.rng.randint(6, 12)

        at_outage = {}

        def fault(index):
            if index == down_at:
                proxy.stop()
                world.figures["broker outages"] += 1
                at_outage.update(world.figures)
            elif index == down_at + 12:
                proxy.start()
                for name in ("orders paid", "refunds", "withdrawals"):
                    world.figures[f"{name} while down"] = world.figures[name] - at_outage.get(name, 0)

        paid_before = Order.objects.filter(paid_at__isnull=False).count()
        drive(world, STEPS, fault=fault)
        # Every payment is applied: while the broker was away by its own request, otherwise by the workers' runs.
        notices_applied()
        assert Order.objects.filter(paid_at__isnull=False).count() == paid_before + world.figures["orders paid"]
        recover(world, workers)
    finally:
        workers.stop()
        proxy.stop()
    run = fault_report(harness.final_check("3 broker down", seed, world))
    assert_clean(run)


def _redis_address(url: str) -> tuple[str, int]:
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    return parts.hostname or "127.0.0.1", parts.port or 6379


@pytest.mark.parametrize("seed", SEEDS)
def test_a_database_backend_terminated_mid_split_release_and_payout(seed, workers, fault_report):
    """Scenario 4: `pg_terminate_backend` on the worker's session in the middle of a split, a release and a payout
    batch; the worker carries on with a new connection."""
    workers.start()
    world = harness.build_world(seed)
    order = ["split", "release", "payout"]
    world.rng.shuffle(order)

    def terminate(pid, _application_name):
        if terminate_backend(pid):
            world.figures["backends terminated"] += 1

    def fault(index):
        if index % 9 == 8 and order:
            what = order.pop()
            if catch_mid_transaction(world, what, terminate):
                world.figures[f"terminated in {what}"] += 1

    drive(world, STEPS, fault=fault)
    recover(world, workers)
    run = fault_report(harness.final_check("4 backend terminated", seed, world))
    assert_clean(run)
    assert world.figures["backends terminated"] >= 1, "no backend was caught mid-transaction"
