"""Benchmark the commission split end to end: paid orders in the queue → real Celery workers → committed ledger.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/test CELERY_BROKER_URL=redis://127.0.0.1:6379/0 \\
        REDIS_URL=redis://127.0.0.1:6379/1 \\
        .venv/bin/python bench/commissions.py [--orders 50000] [--batch 500] [--workers 2] \\
        [--messages payment order batch] [--sharers 200] [--pgbench-seconds 30] [--seed 1] [--celery-app config]

PostgreSQL and Redis only. The database named in DATABASE_URL is never read or written: the script creates a
throwaway database next to it (`test_bench_commissions_<name>`, migrated from scratch) and, for the pgbench
ceiling, a second one (`test_bench_pgbench_<name>`), and drops both at the end (also on error). On Redis it uses
one queue of its own (`bench-commissions-<random>`) and deletes its keys at the end.

What it does:

1. pgbench's simple-update run (`pgbench -i -s 10`, then `pgbench -N -c 8 -j 2 -T 30`) in its own database: the
   ceiling for small write transactions on this machine, measured in the same run;
2. a three-level policy and plan (50/30/20 % of each line's pool), `--sharers` chains of three members made
   through `member_join` (root, sponsor, sharer), each sharer with a shop listing three products;
3. for each combination of `--messages`, `--batch` and `--workers`:
   - empties the order and commission tables, then COPYs `--orders` paid orders (3 lines each, random sharer,
     random quantities) with one `SplitQueue` row each, carrying the sharer's upline snapshot: what
     `commission_orders_paid` leaves in the database when the payment transactions commit. The payment path
     itself (checkout, webhook, the upline read at payment) is not what is measured;
   - puts the split messages in the queue before any worker consumes it. `payment` (the default) calls
     `commission_split_requested` once per order, as each payment's on_commit hook does in production: the
     first call sends a message and the rest see the "run on its way" flag in the Redis cache, and each run
     that finds a full batch asks for the next one, so the workers chain through the queue. `order` sends one
     `commission_split_order_task` per order (what production did before the flag, kept to show its cost);
     `batch` sends one per `--batch` orders up front, as `commission_sweep` does;
   - starts one `celery -A config worker --pool prefork --concurrency <workers>` (DEBUG=0,
     COMMISSION_SPLIT_BATCH=<batch>) on a gate queue, waits until it answers a ping, then starts the clock and
     tells it to consume the loaded queue (`add_consumer`), so process start-up is not timed;
   - polls `OrderSplit` until every order has one (each batch commits its markers with its entries, so that is
     when every ledger row is committed: "all split"), and the queue until it is empty ("queue drained": every
     message delivered; with one message per order most of them find nothing left to split, but a worker
     still has to take each one off the queue);
   - checks the ledger: 12 rows per order, no order still queued, every line's rows sum to its pool;
   - runs the fraud rules' scoring at the split (`risk_score_orders`) again over the split orders in this process,
     in the same batches, and reports its time per order: what scoring adds to the split (issue #25: ≤ 1 ms);
   - records the 1-minute load average when the clock starts, since other work on the machine skews the figures.

`--celery-app` (default `config`) names the module the workers load with `celery -A`: a module on PYTHONPATH
that imports `config.celery` and changes one thing measures a variant without editing the project.

The markdown tables go to stdout, progress to stderr.
"""

import argparse
import contextlib
import itertools
import json
import os
import platform
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from urllib.parse import quote

REPO_ROOT = Path(__file__).resolve().parent.parent
CELERY = Path(sys.executable).parent / "celery"
INVALID_EMAIL_DOMAIN = "bench.invalid"  # RFC 2606: can never be a real address
UNUSABLE_PASSWORD = "!"  # noqa: S105 - not a secret: what set_unusable_password() stores, minus the random suffix
RATES = (Decimal("0.5000"), Decimal("0.3000"), Decimal("0.2000"))
# (title, price, commission rate) of the three catalogue products every shop lists.
PRODUCTS = (("Tea", Decimal("19.90"), Decimal("0.1000")), ("Rice", Decimal("35.50"), Decimal("0.1500")),
            ("Soap", Decimal("8.80"), Decimal("0.2000")))  # fmt: skip
ROWS_PER_LINE = 4  # three member shares and the platform remainder
POLL_SECONDS = 0.25

RUN_HEADER = (
    "| messages | batch | worker processes | orders | all split s | orders/s | ledger rows/s "
    "| 1st half orders/s | 2nd half orders/s | queue drained s | orders/s incl. draining | load at start "
    "| scoring ms per order (again, one process) |\n"
    "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--orders", type=int, default=50_000, help="paid orders per run (default 50,000)")
    parser.add_argument("--batch", type=int, nargs="+", default=[500], help="COMMISSION_SPLIT_BATCH values")
    parser.add_argument("--workers", type=int, nargs="+", default=[2], help="worker pool sizes (prefork processes)")
    parser.add_argument(
        "--messages",
        nargs="+",
        choices=["payment", "order", "batch"],
        default=["payment"],
        help="as production's payment hook does (one message, then runs chain), one message per order, or one "
        "per batch (the sweep's); default payment",
    )
    parser.add_argument("--sharers", type=int, default=200, help="three-member chains, one shop each (default 200)")
    parser.add_argument("--pgbench-seconds", type=int, default=30, help="pgbench -T (0 skips pgbench; default 30)")
    parser.add_argument(
        "--celery-app",
        default="config",
        help="the app workers load (celery -A); default config. Another module (on PYTHONPATH) that imports "
        "config.celery and changes something lets you measure a variant without editing the project",
    )
    parser.add_argument("--timeout", type=int, default=1800, help="give up on a run after this many seconds")
    parser.add_argument("--seed", type=int, default=1, help="random seed for sharers and quantities (default 1)")
    args = parser.parse_args(argv)
    if args.orders < 1 or args.sharers < 1 or min(args.batch) < 1 or min(args.workers) < 1:
        parser.error("--orders, --sharers, --batch and --workers must be at least 1")
    return args


def setup_django() -> None:
    sys.path.insert(0, str(REPO_ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    # It measures a three-level plan: the international preset (the code's ceiling), in its workers too.
    os.environ["COMPLIANCE_PRESET"] = "international"
    # Its rules start at once in its throwaway database: no members to give notice to (RULES_CHANGE_NOTICE_DAYS).
    os.environ["RULES_CHANGE_NOTICE_DAYS"] = "0"
    import django

    django.setup()


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def database_url(settings_dict: dict) -> str:
    password = f":{quote(settings_dict['PASSWORD'], safe='')}" if settings_dict["PASSWORD"] else ""
    port = f":{settings_dict['PORT']}" if settings_dict["PORT"] else ""
    user = quote(settings_dict["USER"] or "", safe="")
    return f"postgres://{user}{password}@{settings_dict['HOST'] or 'localhost'}{port}/{settings_dict['NAME']}"


# --- pgbench ------------------------------------------------------------------------------------------------------


def pgbench_ceiling(seconds: int, database: str) -> tuple[float, str]:
    """pgbench simple-update (-N) tps in a throwaway database; returns (tps, the command)."""
    from django.db import connection

    pgbench = shutil.which("pgbench") or "/usr/lib/postgresql/15/bin/pgbench"
    db = connection.settings_dict
    env = {**os.environ, "PGHOST": db["HOST"] or "localhost", "PGPORT": str(db["PORT"] or 5432)}
    env["PGUSER"] = db["USER"] or env.get("PGUSER", "")
    if db["PASSWORD"]:
        env["PGPASSWORD"] = db["PASSWORD"]
    quoted = connection.ops.quote_name(database)
    with connection._nodb_cursor() as cursor:
        cursor.execute(f"DROP DATABASE IF EXISTS {quoted}")
        cursor.execute(f"CREATE DATABASE {quoted}")
    try:
        log(f"pgbench: initialising {database} at scale 10")
        initialise = [pgbench, "-i", "-q", "-s", "10", database]
        subprocess.run(initialise, env=env, check=True, capture_output=True)  # noqa: S603 - our own argv
        command = [pgbench, "-N", "-c", "8", "-j", "2", "-T", str(seconds), database]
        log(f"pgbench: {' '.join(command[1:])}")
        result = subprocess.run(command, env=env, check=True, capture_output=True, text=True)  # noqa: S603 - our own argv
        match = re.search(r"tps = ([0-9.]+) \(without initial connection time\)", result.stdout)
        if not match:
            raise RuntimeError(f"no tps in pgbench's output:\n{result.stdout}\n{result.stderr}")
        return float(match.group(1)), "pgbench -N -c 8 -j 2 -T " + str(seconds)
    finally:
        with connection._nodb_cursor() as cursor:
            cursor.execute(f"DROP DATABASE IF EXISTS {quoted}")


# --- Data ---------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Catalogue:
    sharers: list[tuple[int, int, str]]  # (member id, shop id, upline snapshot as SplitQueue.chain JSON)
    products: list[tuple[int, str, Decimal, Decimal]]  # (id, title, price, commission rate)


def make_catalogue(sharers: int) -> Catalogue:
    """A three-level plan in force and `sharers` chains root → sponsor → sharer, made through the services."""
    from accounts.models import User
    from commissions.calculations import HARD_MAX_LEVELS
    from commissions.services import plan_activate, plan_create, policy_publish
    from referrals.selectors import member_uplines
    from referrals.services import member_join
    from shops.models import Product
    from shops.services import shop_listing_add, shop_open

    policy_publish(actor=None, max_levels=3, note="benchmark: three paid levels")
    plan_activate(plan=plan_create(actor=None, name="benchmark 50/30/20", rates=RATES), actor=None)
    products = [
        Product.objects.create(title=title, price=price, stock=10**9, commission_rate=rate)
        for title, price, rate in PRODUCTS
    ]
    made = []
    for i in range(sharers):
        chain = []
        for depth in range(3):
            user = User.objects.create(email=f"s{i}-{depth}@{INVALID_EMAIL_DOMAIN}", password=UNUSABLE_PASSWORD)
            chain.append(member_join(user=user, sponsor=chain[-1] if chain else None, use_default_sponsor=False))
        shop = shop_open(owner=chain[-1], name=f"Bench shop {i}", slug=f"bench-shop-{i}")
        for product in products:
            shop_listing_add(shop=shop, product=product)
        made.append((chain[-1].pk, shop.pk))
    # The upline snapshot commission_orders_paid stores on each queue row, read with the same selector.
    uplines = member_uplines([member_id for member_id, _shop_id in made], HARD_MAX_LEVELS)
    sharers_with_chains = [
        (member_id, shop_id, json.dumps([[upline_id, eligible] for upline_id, eligible in uplines[member_id]]))
        for member_id, shop_id in made
    ]
    return Catalogue(
        sharers=sharers_with_chains, products=[(p.pk, p.title, p.price, p.commission_rate) for p in products]
    )


def reset_orders() -> None:
    from django.db import connection

    from commissions.models import CommissionEntry, OrderSplit, RefundApplied, SplitQueue
    from shops.models import Order, OrderEvent, OrderLine

    models = [CommissionEntry, OrderSplit, RefundApplied, SplitQueue, OrderEvent, OrderLine, Order]
    tables = ", ".join(connection.ops.quote_name(model._meta.db_table) for model in models)
    with connection.cursor() as cursor:
        cursor.execute(f"TRUNCATE {tables} RESTART IDENTITY CASCADE")


def load_paid_orders(n: int, catalogue: Catalogue, rng: random.Random) -> list[int]:
    """COPY n paid orders (3 lines each) and their SplitQueue rows (with the upline snapshot); return the ids."""
    from django.core.management.color import no_style
    from django.db import connection, transaction
    from django.utils import timezone

    from commissions.models import SplitQueue
    from shops.models import Order, OrderLine

    now = timezone.now()
    quote_name = connection.ops.quote_name
    connection.ensure_connection()
    raw = connection.connection
    order_ids = list(range(1, n + 1))
    with transaction.atomic(), raw.cursor() as cursor:
        order_copy = (
            f"COPY {quote_name(Order._meta.db_table)} (id, number, shop_id, sharer_id, is_self_purchase, status,"
            " buyer_name, buyer_phone, buyer_email, shipping_address, total, refunded_total, currency, created_at,"
            " paid_at, client_key, attribution, courier, waybill_number, network_key, device_key) FROM STDIN"
        )
        line_copy = (
            f"COPY {quote_name(OrderLine._meta.db_table)} (order_id, product_id, title, unit_price, quantity,"
            " net_amount, commission_rate, refunded_quantity, refunded_amount, discount) FROM STDIN"
        )
        lines, chains = [], []
        with cursor.copy(order_copy) as copy:
            for order_id in order_ids:
                sharer_id, shop_id, chain = rng.choice(catalogue.sharers)
                chains.append(chain)
                total = Decimal("0.00")
                for product_id, title, price, rate in catalogue.products:
                    quantity = rng.randint(1, 3)
                    net = price * quantity
                    total += net
                    lines.append(
                        (order_id, product_id, title, price, quantity, net, rate, 0, Decimal("0.00"), Decimal("0.00"))
                    )
                copy.write_row(
                    (order_id, f"B{order_id:012d}", shop_id, sharer_id, False, Order.Status.PAID, "Bench buyer",
                     "13900001111", "", "1 Bench Road", total, Decimal("0.00"), "CNY", now, now, "",
                     Order.Attribution.LINK, "", "", f"{order_id:032x}", f"{order_id * 7:032x}")
                )  # fmt: skip
        with cursor.copy(line_copy) as copy:
            for row in lines:
                copy.write_row(row)
        queue_copy = f"COPY {quote_name(SplitQueue._meta.db_table)} (order_id, queued_at, chain) FROM STDIN"
        with cursor.copy(queue_copy) as copy:
            for order_id, chain in zip(order_ids, chains, strict=True):
                copy.write_row((order_id, now, chain))
    with connection.cursor() as cursor:
        # Ids were given explicitly: move the sequence past them, as a real insert would have.
        for statement in connection.ops.sequence_reset_sql(no_style(), [Order]):
            cursor.execute(statement)
        # A freshly loaded table with planner statistics and a clean checkpoint, so runs start alike.
        cursor.execute("VACUUM ANALYZE")
        cursor.execute("CHECKPOINT")
    return order_ids


def verify_ledger(n: int) -> int:
    """Every order split once, nothing left queued, 12 rows per order, every line reconciled; return the rows."""
    from django.db import connection

    from commissions.models import CommissionEntry, OrderSplit, SplitQueue
    from shops.models import OrderLine

    splits, queued, rows = OrderSplit.objects.count(), SplitQueue.objects.count(), CommissionEntry.objects.count()
    expected_rows = n * len(PRODUCTS) * ROWS_PER_LINE
    if (splits, queued, rows) != (n, 0, expected_rows):
        raise RuntimeError(f"expected {n} splits, 0 queued, {expected_rows} rows; got {splits}, {queued}, {rows}")
    with connection.cursor() as cursor:
        # A line's pool is its net amount × rate rounded half-up to the cent (numeric round() on positives).
        cursor.execute(
            f"""
            SELECT count(*) FROM (
                SELECT l.id FROM {OrderLine._meta.db_table} l
                JOIN {CommissionEntry._meta.db_table} e ON e.order_line_id = l.id
                GROUP BY l.id, l.net_amount, l.commission_rate
                HAVING sum(e.amount) <> round(l.net_amount * l.commission_rate, 2) OR count(*) <> %s
            ) AS unreconciled
            """,
            [ROWS_PER_LINE],
        )
        unreconciled = cursor.fetchone()[0]
    if unreconciled:
        raise RuntimeError(f"{unreconciled} lines do not reconcile to their pool")
    return rows


# --- Workers and the timed run ------------------------------------------------------------------------------------


@dataclass
class Worker:
    node: str
    process: subprocess.Popen
    log: Path

    def tail(self, lines: int = 30) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])

    def stop(self) -> None:
        if self.process.poll() is None:
            # The main process only: it finishes running tasks, then stops its pool (the group would die at once).
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.process.pid, signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(timeout=60)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=30)


def start_worker(
    *,
    celery_app: str,
    gate: str,
    queue: str,
    node: str,
    batch: int,
    concurrency: int,
    log_path: Path,
    extra_env: dict[str, str] | None = None,
) -> Worker:
    """A real worker (prefork) on the throwaway database, listening only on an empty gate queue until told.
    `extra_env`: more settings for it (bench/notifications.py's email server, batch)."""
    from django.conf import settings
    from django.db import connection

    from bench import production_secrets
    from config.celery import app

    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "DATABASE_URL": database_url(connection.settings_dict),
        "CELERY_BROKER_URL": settings.CELERY_BROKER_URL,
        "COMMISSION_SPLIT_BATCH": str(batch),
        # The cache that holds the "run on its way" flag, and the queue a run's follow-up goes to.
        "REDIS_URL": settings.REDIS_URL,
        "CELERY_TASK_DEFAULT_QUEUE": queue,
        # As in production: DEBUG off (no query log kept in memory), warnings only in the log.
        "DEBUG": "0",
        **production_secrets(),  # and the sandbox providers allowed, as on staging
        "LOG_LEVEL": "WARNING",
        **(extra_env or {}),
    }
    command = [
        str(CELERY), "-A", celery_app, "worker", "--pool", "prefork", "--concurrency", str(concurrency),
        "-Q", gate, "-n", node, "--without-gossip", "--without-mingle", "--without-heartbeat", "--loglevel", "WARNING",
    ]  # fmt: skip
    with log_path.open("wb") as output:
        process = subprocess.Popen(  # noqa: S603 - our own argv
            command, cwd=REPO_ROOT, env=env, stdout=output, stderr=subprocess.STDOUT, start_new_session=True
        )
    worker = Worker(node=node, process=process, log=log_path)
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"worker exited with {process.returncode} while starting:\n{worker.tail()}")
        if app.control.ping(destination=[node], timeout=0.5):
            return worker
    worker.stop()
    raise RuntimeError(f"worker did not answer a ping within 90 s:\n{worker.tail()}")


def broker_forget(broker, queue: str) -> None:
    """Delete a run's queues, kombu's bindings for them and the worker's control binding (the name is random)."""
    for key in broker.scan_iter(match=f"*{queue}*"):
        broker.delete(key)
    for member in broker.smembers("_kombu.binding.celery.pidbox"):
        if queue.encode() in member:
            broker.srem("_kombu.binding.celery.pidbox", member)


def send_messages(queue: str, order_ids: list[int], *, messages: str, batch: int) -> int:
    """Put the split messages in the queue: the payment hook's, one per order, or one per batch (the sweep)."""
    from django.core.cache import cache

    from commissions.services import SPLIT_SCHEDULED_KEY, commission_split_requested
    from commissions.tasks import commission_split_order_task
    from config.celery import app

    cache.delete(SPLIT_SCHEDULED_KEY)
    if messages == "payment":
        saved, app.conf.task_default_queue = app.conf.task_default_queue, queue
        try:
            return sum(commission_split_requested() for _order_id in order_ids)
        finally:
            app.conf.task_default_queue = saved
    ids = order_ids if messages == "order" else [None] * -(-len(order_ids) // batch)
    with app.producer_or_acquire() as producer:
        for order_id in ids:
            commission_split_order_task.apply_async((order_id,), queue=queue, producer=producer)
    return len(ids)


@dataclass(frozen=True)
class RunResult:
    messages: str
    batch: int
    workers: int
    orders: int
    rows: int
    split_s: float
    half_s: float
    drained_s: float
    load: float
    scoring_s: float

    def row(self) -> str:
        first = self.orders / 2 / self.half_s
        second = self.orders / 2 / max(self.split_s - self.half_s, 1e-9)
        return (
            f"| {self.messages} | {self.batch:,} | {self.workers} | {self.orders:,} | {self.split_s:.1f} "
            f"| {self.orders / self.split_s:,.0f} | {self.rows / self.split_s:,.0f} | {first:,.0f} | {second:,.0f} "
            f"| {self.drained_s:.1f} | {self.orders / self.drained_s:,.0f} | {self.load:.1f} "
            f"| {self.scoring_s * 1000 / self.orders:.3f} |"
        )


def scoring_again(order_ids: list[int], batch: int) -> float:
    """The fraud rules' scoring at the split (`risk_score_orders`, which each split run calls in its transaction on
    the orders it wrote: docs/risk.md) run again in this process over the split orders, in the split's batches:
    what scoring costs per paid order (issue #25: at most 1 ms), measured on the same data and machine state as the
    split. It is idempotent (one flag per order and rule), so the ledger is unchanged."""
    from django.db import transaction

    from commissions.services.risk import risk_score_orders

    started = time.perf_counter()
    for first in range(0, len(order_ids), batch):
        with transaction.atomic():
            risk_score_orders(order_ids[first : first + batch])
    return time.perf_counter() - started


def timed_run(args, catalogue: Catalogue, broker, run_dir: Path, *, messages: str, batch: int, workers: int):
    from commissions.models import OrderSplit
    from config.celery import app

    label = f"messages={messages} batch={batch} workers={workers}"
    rng = random.Random(f"{args.seed}:orders")  # the same orders for every configuration
    log(f"[{label}] loading {args.orders:,} paid orders")
    reset_orders()
    started = time.perf_counter()
    order_ids = load_paid_orders(args.orders, catalogue, rng)
    log(f"[{label}] loaded in {time.perf_counter() - started:.1f} s")

    queue = f"{run_dir.name}-{messages}-{batch}-{workers}"
    gate = f"{queue}-gate"
    worker = None
    try:
        started = time.perf_counter()
        sent = send_messages(queue, order_ids, messages=messages, batch=batch)
        log(f"[{label}] sent {sent:,} messages in {time.perf_counter() - started:.1f} s (not timed)")
        worker = start_worker(
            celery_app=args.celery_app,
            gate=gate,
            queue=queue,
            node=f"bench@{queue}",
            batch=batch,
            concurrency=workers,
            log_path=run_dir / f"{queue}.log",
        )
        load = os.getloadavg()[0]
        started = time.perf_counter()
        app.control.add_consumer(queue, destination=[worker.node], reply=True, timeout=10)
        split_s = half_s = drained_s = None
        done, last_report = 0, started
        while True:
            now = time.perf_counter() - started
            if split_s is None:
                done = OrderSplit.objects.count()
                if half_s is None and done * 2 >= args.orders:
                    half_s = now
                if done == args.orders:
                    split_s = now
            if drained_s is None and broker.llen(queue) == 0:
                drained_s = now
            if split_s is not None and drained_s is not None:
                break
            if now > args.timeout:
                raise RuntimeError(f"[{label}] {done:,} of {args.orders:,} split after {now:.0f} s\n{worker.tail()}")
            if worker.process.poll() is not None:
                raise RuntimeError(f"[{label}] the worker died:\n{worker.tail()}")
            if time.perf_counter() - last_report > 10:
                last_report = time.perf_counter()
                log(f"[{label}] {now:.0f} s: {done:,} split, {broker.llen(queue):,} messages waiting")
            time.sleep(POLL_SECONDS)
    finally:
        if worker is not None:
            worker.stop()
        broker_forget(broker, queue)
    problems = [line for line in worker.log.read_text(errors="replace").splitlines() if "ERROR" in line]
    if problems:
        raise RuntimeError(f"[{label}] tasks failed:\n" + "\n".join(problems[:20]))
    rows = verify_ledger(args.orders)
    scoring_s = scoring_again(order_ids, batch)
    result = RunResult(
        messages, batch, workers, args.orders, rows, split_s, half_s, max(drained_s, split_s), load, scoring_s
    )
    log(
        f"[{label}] all split in {split_s:.1f} s ({args.orders / split_s:,.0f} orders/s), queue drained in "
        f"{drained_s:.1f} s, load average {load:.1f} at the start"
    )
    return result


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    # A plain `kill` must still stop the worker and drop the throwaway databases (the `finally` blocks).
    signal.signal(signal.SIGTERM, lambda _signum, _frame: sys.exit(143))
    setup_django()

    import celery
    import django
    import redis
    from django.conf import settings
    from django.db import connection

    redis_urls = (settings.CELERY_BROKER_URL, settings.REDIS_URL)
    if connection.vendor != "postgresql" or not all(url.startswith("redis://") for url in redis_urls):
        print(
            "bench/commissions.py needs PostgreSQL and Redis: set DATABASE_URL=postgres://user@host:5432/name "
            "(not touched; throwaway databases are created beside it), CELERY_BROKER_URL=redis://host:6379/0 "
            "and REDIS_URL=redis://host:6379/1 (the cache).",
            file=sys.stderr,
        )
        return 2
    settings.DEBUG = False  # no query log in this process either

    old_name = connection.settings_dict["NAME"]
    pgbench_db = f"test_bench_pgbench_{old_name}"
    broker = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    run_dir = Path(tempfile.mkdtemp(prefix=f"bench-commissions-{uuid.uuid4().hex[:8]}-"))

    with connection.cursor() as cursor:
        cursor.execute("SHOW server_version")
        server = cursor.fetchone()[0]
    log(f"workers load the Celery app `{args.celery_app}`")
    log(f"PostgreSQL {server}, {os.cpu_count()} CPUs, Python {platform.python_version()}, Django "
        f"{django.get_version()}, Celery {celery.__version__}")  # fmt: skip

    if args.pgbench_seconds:
        tps, command = pgbench_ceiling(args.pgbench_seconds, pgbench_db)
        log(f"pgbench: {tps:,.0f} tps")

    # Not pytest-django's `test_<name>`: a test run against the same server must not clobber us, nor we it.
    connection.settings_dict["TEST"]["NAME"] = f"test_bench_commissions_{old_name}"
    log(f"creating throwaway database test_bench_commissions_{old_name} ({old_name} is not touched)")
    connection.creation.create_test_db(verbosity=0, autoclobber=True, serialize=False, keepdb=False)
    try:
        started = time.perf_counter()
        catalogue = make_catalogue(args.sharers)
        log(f"{args.sharers} sharers three levels deep with their shops in {time.perf_counter() - started:.1f} s")
        results = []
        for messages, batch, workers in itertools.product(args.messages, args.batch, args.workers):
            results.append(timed_run(args, catalogue, broker, run_dir, messages=messages, batch=batch, workers=workers))
    finally:
        connection.creation.destroy_test_db(old_name, verbosity=0, keepdb=False)
        shutil.rmtree(run_dir, ignore_errors=True)

    print(RUN_HEADER)
    for result in results:
        print(result.row())
    if args.pgbench_seconds:
        print()
        print("| ceiling | transactions/s |\n| --- | ---: |")
        print(f"| `{command}` (scale 10, TPC-B without the branch/teller updates) | {tps:,.0f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
