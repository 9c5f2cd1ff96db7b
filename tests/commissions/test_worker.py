"""The split through real Celery workers: `celery -A config worker` processes (prefork) against Redis and PostgreSQL.

Each test starts its own worker processes on a queue no other run uses (so stale messages from earlier runs, or a
developer's worker on the default queue, never interfere), pointed at pytest's test database, with a small
COMMISSION_SPLIT_BATCH so that one run drains many batches. Workers are always stopped in a `finally`, and the
queue's Redis keys (and any result keys) are deleted afterwards.

What must hold whatever the workers do: every paid order gets exactly one `OrderSplit`, and every line exactly one
set of entries (one per level and kind) that reconciles to the line's pool.
"""

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import suppress
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from urllib.parse import quote

import psycopg
import pytest
import redis
from django.conf import settings
from django.db import connection
from django.utils import timezone

from commissions.calculations import line_pool
from commissions.models import CommissionEntry, OrderSplit, SplitQueue
from commissions.services import commission_sweep, plan_activate, plan_create, policy_publish
from commissions.tasks import commission_split_order_task
from config.celery import app
from referrals.models import Member
from shops.models import Order, OrderLine
from tests.factories import ProductFactory, make_chain, pay_order, place_order, shop_with_products

pytestmark = [pytest.mark.postgres, pytest.mark.broker, pytest.mark.django_db(transaction=True)]

REPO_ROOT = Path(__file__).resolve().parents[2]
CELERY = Path(sys.executable).parent / "celery"
RESULT_KEY = "celery-task-meta-{}"

# The three-level plan every test pays under: 19.90 × 10 % = a pool of 1.99 per line, split 50/30/20 and
# rounded down to the cent, the platform keeping the rest. The payout cap (30 % of 19.90) does not bind.
RATES = (Decimal("0.5000"), Decimal("0.3000"), Decimal("0.2000"))
POOL = Decimal("1.99")
SHARES = {1: Decimal("0.99"), 2: Decimal("0.59"), 3: Decimal("0.39")}
PLATFORM_REMAINDER = Decimal("0.02")


# --- Worker processes ------------------------------------------------------------------------------------------


def worker_database_url() -> str:
    """DATABASE_URL for pytest's test database (test_<name>), which the workers must use, not the real one."""
    db = connection.settings_dict
    password = f":{quote(db['PASSWORD'], safe='')}" if db["PASSWORD"] else ""
    port = f":{db['PORT']}" if db["PORT"] else ""
    return f"postgres://{quote(db['USER'] or '', safe='')}{password}@{db['HOST'] or 'localhost'}{port}/{db['NAME']}"


@dataclass
class Worker:
    name: str
    process: subprocess.Popen
    log: Path

    def tail(self, lines: int = 40) -> str:
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        return f"--- {self.name} ({self.log}) ---\n" + "\n".join(text.splitlines()[-lines:])

    def kill(self) -> None:
        """SIGKILL the whole process group (the main process and its pool children), as the OOM killer would."""
        with suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=30)

    def stop(self) -> None:
        """Warm shutdown (running tasks finish), then SIGKILL if it takes too long."""
        if self.process.poll() is None:
            # The main process only: it finishes running tasks, then stops its pool (the group would die at once).
            with suppress(ProcessLookupError):
                os.kill(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.kill()
        # Pool children left behind by a killed main process must not outlive the test either.
        with suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)


class Workers:
    """Starts real worker processes on one queue; stops them all (in `close`) whatever happened."""

    def __init__(self, queue: str, log_dir: Path, broker: redis.Redis, *, batch: int, results: bool):
        self.queue, self.log_dir, self.broker, self.batch, self.results = queue, log_dir, broker, batch, results
        self.started: list[Worker] = []

    def start(self, name: str, *, concurrency: int = 2) -> Worker:
        node = f"{name}@{self.queue}"
        env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "config.settings",
            "DATABASE_URL": worker_database_url(),
            "CELERY_BROKER_URL": settings.CELERY_BROKER_URL,
            "COMMISSION_SPLIT_BATCH": str(self.batch),
            # A run that finds a full batch asks for the next one on the default queue: ours.
            "CELERY_TASK_DEFAULT_QUEUE": self.queue,
            "CELERY_TRACE_LOG_LEVEL": "INFO",
        }
        if self.results:
            # Results go to the broker's Redis database under their task ids (the test reads and deletes them).
            env["CELERY_RESULT_BACKEND"] = settings.CELERY_BROKER_URL
        log = self.log_dir / f"{name}.log"
        command = [
            str(CELERY), "-A", "config", "worker", "--pool", "prefork", "--concurrency", str(concurrency),
            "-Q", self.queue, "-n", node, "--without-gossip", "--without-mingle", "--without-heartbeat",
            "--loglevel", "INFO",
        ]  # fmt: skip
        with log.open("wb") as output:
            # Its own session, so the whole group (main process and pool children) can be signalled at once.
            process = subprocess.Popen(
                command, cwd=REPO_ROOT, env=env, stdout=output, stderr=subprocess.STDOUT, start_new_session=True
            )
        worker = Worker(name=name, process=process, log=log)
        self.started.append(worker)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if process.poll() is not None:
                pytest.fail(f"worker {name} exited with {process.returncode} while starting\n{worker.tail()}")
            if app.control.ping(destination=[node], timeout=0.5):
                return worker
        pytest.fail(f"worker {name} did not answer a ping within 60 s\n{worker.tail()}")

    def logs(self) -> str:
        return "\n".join(worker.tail() for worker in self.started)

    def assert_no_task_failed(self, *, skip: tuple[Worker, ...] = ()) -> None:
        for worker in self.started:
            if worker in skip:
                continue
            text = worker.log.read_text(errors="replace")
            assert "Traceback" not in text and "ERROR" not in text, worker.tail(200)

    def close(self) -> None:
        for worker in self.started:
            worker.stop()


@pytest.fixture
def broker() -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    yield client
    client.close()


@pytest.fixture
def queue(broker) -> Iterator[str]:
    """A queue name of this test alone, used as the default queue of this process's app (on_commit sends there)."""
    name = f"test-commissions-{uuid.uuid4().hex[:12]}"
    saved = app.conf.task_default_queue
    app.conf.task_default_queue = name
    try:
        yield name
    finally:
        app.conf.task_default_queue = saved
        # The queue's lists and kombu's bindings for it (the parked queue's too), and our workers' control
        # bindings (node names end in @<queue>). The name is random, so nothing else can match it.
        for key in broker.scan_iter(match=f"*{name}*"):
            broker.delete(key)
        for member in broker.smembers("_kombu.binding.celery.pidbox"):
            if name.encode() in member:
                broker.srem("_kombu.binding.celery.pidbox", member)
        forget_unacked(broker, name)


def forget_unacked(broker: redis.Redis, queue: str) -> None:
    """Drop a killed worker's unacknowledged messages for `queue` from kombu's Redis bookkeeping.

    Otherwise kombu would put them back into the (deleted) queue after the visibility timeout, as garbage.
    """
    for tag, raw in broker.hscan_iter("unacked"):
        with suppress(ValueError, TypeError, IndexError):
            _message, _exchange, routing_key = json.loads(raw)
            if routing_key == queue:
                broker.hdel("unacked", tag)
                broker.zrem("unacked_index", tag)


@pytest.fixture
def workers(queue, tmp_path, broker, settings) -> Iterator[Callable[..., Workers]]:
    made: list[Workers] = []

    def make(*, batch: int, results: bool = False) -> Workers:
        # This process's sweep sizes its messages by the batch too (one task per COMMISSION_SPLIT_BATCH orders).
        settings.COMMISSION_SPLIT_BATCH = batch
        group = Workers(queue, tmp_path, broker, batch=batch, results=results)
        made.append(group)
        return group

    try:
        yield make
    finally:
        for group in made:
            group.close()


# --- The storefront under test ---------------------------------------------------------------------------------


@dataclass
class Storefront:
    root: Member
    sponsor: Member
    sharer: Member
    shop: object


def three_level_storefront(*, stock: int) -> Storefront:
    """A three-level plan in force and a sharer three levels deep whose shop lists three products."""
    policy_publish(actor=None, max_levels=3, note="three levels for the worker tests")
    plan_activate(plan=plan_create(actor=None, name="50/30/20", rates=RATES), actor=None)
    root, sponsor, sharer = make_chain(3)
    products = [ProductFactory(stock=stock) for _ in range(3)]
    return Storefront(root, sponsor, sharer, shop_with_products(*products, owner=sharer))


def pay_orders(storefront: Storefront, count: int) -> list[Order]:
    """Orders placed and paid through the services; each payment's on_commit hook sends its split task."""
    return [pay_order(place_order(storefront.shop)) for _ in range(count)]


def wait_until(condition: Callable[[], bool], *, timeout: float, what: str, group: Workers | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.2)
    pytest.fail(f"timed out after {timeout} s waiting for {what}\n{group.logs() if group else ''}")


def split_count(orders: list[Order]) -> int:
    return OrderSplit.objects.filter(order_id__in=[order.pk for order in orders]).count()


def results_of(broker: redis.Redis, task_ids: list[str], *, timeout: float, group: Workers) -> list:
    """Wait for every task's result in the Redis result backend; return them (failing on any task failure)."""
    keys = [RESULT_KEY.format(task_id) for task_id in task_ids]

    def done() -> bool:
        metas = [json.loads(raw) if raw else None for raw in broker.mget(keys)]
        return all(meta and meta["status"] in ("SUCCESS", "FAILURE") for meta in metas)

    wait_until(done, timeout=timeout, what=f"{len(task_ids)} task results", group=group)
    metas = [json.loads(raw) for raw in broker.mget(keys)]
    broker.delete(*keys)
    failed = [meta for meta in metas if meta["status"] != "SUCCESS"]
    assert not failed, f"{failed[:3]}\n{group.logs()}"
    return [meta["result"] for meta in metas]


def send_split_tasks(queue: str, orders: list[Order], *, times: int) -> list[str]:
    return [
        commission_split_order_task.apply_async((order.pk,), queue=queue, ignore_result=False).id
        for _ in range(times)
        for order in orders
    ]


def assert_split_exactly_once(storefront: Storefront, orders: list[Order]) -> None:
    order_ids = [order.pk for order in orders]
    assert OrderSplit.objects.filter(order_id__in=order_ids).count() == len(orders)
    assert not SplitQueue.objects.filter(order_id__in=order_ids).exists()
    lines = list(OrderLine.objects.filter(order_id__in=order_ids))
    assert len(lines) == 3 * len(orders)
    entries = list(CommissionEntry.objects.all())
    keys = [(entry.order_line_id, entry.level, entry.kind) for entry in entries]
    assert len(keys) == len(set(keys)), "a (line, level, kind) was written twice"
    assert len(entries) == 4 * len(lines), "every line: three member shares and the platform remainder, no more"
    by_line = defaultdict(dict)
    for entry in entries:
        by_line[entry.order_line_id][(entry.level, entry.kind)] = entry
    expected_beneficiaries = {1: storefront.sharer.pk, 2: storefront.sponsor.pk, 3: storefront.root.pk}
    for line in lines:
        rows = by_line[line.pk]
        assert line_pool(line.net_amount, line.commission_rate) == POOL
        assert {key: row.amount for key, row in rows.items()} == {
            (1, "commission"): SHARES[1],
            (2, "commission"): SHARES[2],
            (3, "commission"): SHARES[3],
            (0, "platform"): PLATFORM_REMAINDER,
        }
        assert {row.level: row.beneficiary_id for row in rows.values()} == {0: None, **expected_beneficiaries}
        assert sum(row.amount for row in rows.values()) == POOL
        assert all(row.order_id == line.order_id and row.status == "pending" for row in rows.values())


# --- Tests -----------------------------------------------------------------------------------------------------


def test_fifty_paid_orders_are_each_split_once_by_a_real_worker(workers, queue, broker):
    # given: a worker running, as in production
    storefront = three_level_storefront(stock=100)
    group = workers(batch=10)
    group.start("w1", concurrency=2)

    # when: 50 orders are paid through the webhook; each payment's on_commit hook sends a split task
    orders = pay_orders(storefront, 50)

    # then
    wait_until(lambda: split_count(orders) == 50, timeout=60, what="50 orders split", group=group)
    wait_until(lambda: broker.llen(queue) == 0, timeout=30, what="the queue to drain", group=group)
    group.close()  # warm shutdown: whatever task was still running finishes first
    assert_split_exactly_once(storefront, orders)
    group.assert_no_task_failed()


def test_split_task_sent_three_times_per_order_to_two_workers_splits_once(workers, queue, broker):
    # given: 50 paid orders whose on_commit tasks went to a queue nobody consumes (so only ours below count)
    storefront = three_level_storefront(stock=100)
    app.conf.task_default_queue = f"{queue}-parked"
    orders = pay_orders(storefront, 50)
    app.conf.task_default_queue = queue
    broker.delete(f"{queue}-parked")
    assert SplitQueue.objects.count() == 50

    # when: the same task three times for each order, all waiting before two workers (2 processes each) start
    task_ids = send_split_tasks(queue, orders, times=3)
    group = workers(batch=10, results=True)
    group.start("w1", concurrency=2)
    group.start("w2", concurrency=2)
    counts = results_of(broker, task_ids, timeout=90, group=group)

    # then: the 150 runs split 50 orders between them, each once
    assert sum(counts) == 50
    assert_split_exactly_once(storefront, orders)

    # when: every order is queued again (a duplicate payment notice, a sweep racing the worker) and sent 3 more times
    SplitQueue.objects.bulk_create([SplitQueue(order_id=order.pk) for order in orders])
    counts = results_of(broker, send_split_tasks(queue, orders, times=3), timeout=90, group=group)

    # then: nothing more is written and the queue is empty again
    assert sum(counts) == 0
    assert_split_exactly_once(storefront, orders)
    group.close()
    group.assert_no_task_failed()


def test_worker_killed_mid_batch_then_restart_and_sweep_split_every_order_once(workers, queue, broker):
    """SIGKILL inside a batch transaction, at two points; after a restart and the sweep every order is split once.

    A kill timed with a sleep would land anywhere (often between batches), so the test makes it deterministic: a
    second connection holds a lock that the worker's batch runs into, and the worker's whole process group is
    killed while it waits there.

    1. Mid-insert: the lock is an uncommitted ledger row with the key (line, level, kind) of a line in the middle
       of the batch. The batch has locked its queue rows and orders, inserted its OrderSplit markers and the first
       half of its entries, and waits on the unique index. Killed, it never commits: the batch rolls back whole.
    2. In COMMIT: the lock is FOR UPDATE on one of the batch's order lines, which the deferred foreign-key check
       needs at COMMIT. The worker has sent COMMIT and dies waiting; PostgreSQL finishes the commit without it,
       so the batch is written although its message was never acknowledged.
    """
    # given: 200 paid orders queued (their messages waiting for a worker), batches of 50
    storefront = three_level_storefront(stock=1000)
    orders = pay_orders(storefront, 200)
    batch = 50
    queued = list(SplitQueue.objects.order_by("queued_at", "order_id").values_list("order_id", flat=True))
    assert len(queued) == 200
    batches = [set(queued[start : start + batch]) for start in range(0, 200, batch)]
    group = workers(batch=batch)

    # when: one worker process drains batch 1, then is killed in the middle of batch 2's inserts
    line = OrderLine.objects.filter(order_id=queued[batch + batch // 2]).order_by("pk")[1]
    table = CommissionEntry._meta.db_table
    conflicting_entry = (
        f"INSERT INTO {table} (order_id, order_line_id, level, kind, base, rate, amount, capped_by, note,"  # noqa: S608 - table name only
        " status, created_at) VALUES (%s, %s, 0, 'platform', 0, 1, 0, '', '', 'pending', now())"
    )
    doomed = kill_while_blocked(group, "doomed", conflicting_entry, [line.order_id, line.pk])

    # then: batch 2 rolled back whole (no marker, no entry), and 150 orders wait in the queue
    assert set(OrderSplit.objects.values_list("order_id", flat=True)) == batches[0]
    assert CommissionEntry.objects.count() == 4 * 3 * batch
    assert SplitQueue.objects.count() == 150

    # when: a worker picks up the next batch (batch 2 again) and is killed while its COMMIT waits
    line = OrderLine.objects.filter(order_id=queued[batch + batch // 2]).order_by("pk")[1]
    lock_line = f"SELECT 1 FROM {OrderLine._meta.db_table} WHERE id = %s FOR UPDATE"  # noqa: S608 - table name only
    doomed_in_commit = kill_while_blocked(
        group, "doomed-in-commit", lock_line, [line.pk], send=lambda: commission_split_order_task.apply_async()
    )

    # then: that batch committed without its worker; 100 orders are still queued
    assert set(OrderSplit.objects.values_list("order_id", flat=True)) == batches[0] | batches[1]
    assert SplitQueue.objects.count() == 100

    # when: a worker is started again and the periodic sweep runs (as if its 2-minute threshold had passed)
    group.start("restarted", concurrency=2)
    assert commission_sweep(now=timezone.now() + timedelta(hours=1)) == 100

    # then
    wait_until(lambda: split_count(orders) == 200, timeout=60, what="all 200 orders split", group=group)
    wait_until(lambda: broker.llen(queue) == 0, timeout=30, what="the queue to drain", group=group)
    group.close()
    assert_split_exactly_once(storefront, orders)
    group.assert_no_task_failed(skip=(doomed, doomed_in_commit))


def kill_while_blocked(group: Workers, name: str, lock_sql: str, params: list, *, send=None) -> Worker:
    """Hold a lock (`lock_sql`, uncommitted, on a second connection), start a one-process worker, wait until its
    batch blocks on that lock, SIGKILL its process group, drop every message of the queue (so that only the sweep
    can bring the rest back), release the lock, and wait until the dead worker's database sessions have ended.
    """
    db = connection.settings_dict
    dead_backends: list[int] = []
    holder = psycopg.connect(
        host=db["HOST"], port=db["PORT"] or None, user=db["USER"], password=db["PASSWORD"] or None, dbname=db["NAME"]
    )
    try:
        with holder.cursor() as cursor:
            cursor.execute("SELECT pg_backend_pid()")
            holder_pid = cursor.fetchone()[0]
            cursor.execute(lock_sql, params)

        def waiting_on_the_lock() -> list[int]:
            with connection.cursor() as cursor:
                cursor.execute(
                    "SELECT pid FROM pg_stat_activity WHERE datname = %s AND wait_event_type = 'Lock' AND pid <> %s",
                    [db["NAME"], holder_pid],
                )
                return [row[0] for row in cursor.fetchall()]

        worker = group.start(name, concurrency=1)
        if send:
            send()
        wait_until(lambda: bool(waiting_on_the_lock()), timeout=60, what=f"{name}'s batch to block", group=group)
        dead_backends.extend(waiting_on_the_lock())
        worker.kill()
        # Its message stays unacknowledged in Redis until the 2-hour visibility timeout: as good as lost.
        group.broker.delete(group.queue)
        forget_unacked(group.broker, group.queue)
    finally:
        holder.close()  # rolls back: releases the lock

    def backends_gone() -> bool:
        with connection.cursor() as cursor:
            cursor.execute("SELECT count(*) FROM pg_stat_activity WHERE pid = ANY(%s)", [dead_backends])
            return cursor.fetchone()[0] == 0

    wait_until(backends_gone, timeout=30, what=f"{name}'s database sessions to end", group=group)
    return worker
