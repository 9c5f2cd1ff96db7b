"""Benchmark WeChat Pay's payment notifications: N signed and encrypted TRANSACTION.SUCCESS notifications verified
and applied (issue #21's target: 1,000 a second on this machine).

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/<db> REDIS_URL=redis://127.0.0.1:6379/<n> \\
        CELERY_BROKER_URL=redis://127.0.0.1:6379/<n+1> \\
        .venv/bin/python bench/payment_notifications.py [--notifications 4000] [--processes 2] [--threads 2] \\
        [--workers 1] [--apply worker|inline]

PostgreSQL only. The database named in DATABASE_URL is never read or written: a throwaway database beside it
(`test_bench_payment_notifications_<name>`, migrated from scratch) is used and dropped at the end (also on error).

Setup (not timed; reported): one shop and product, N orders placed through `order_place` and a pending WeChat Pay
Native payment each (bulk), the WeChat Pay fake's merchant (fresh RSA-2048 keys) as the settings; then N
notifications made by the fake exactly as it sends them: the transaction resource encrypted with the APIv3 key
(AEAD_AES_256_GCM), the body signed with the platform key (the Wechatpay-* headers, each with its own nonce). They
are made just before the clock starts: their timestamps must be within PAYMENTS_WEBHOOK_TOLERANCE when applied.

Timed, from the first POST until the last notice is applied: each notification POSTed to
`/payments/webhook/wechatpay/` through Django's WSGI handler as gunicorn's worker calls it (the request's signals,
which check the database connection's age and health, the view, the middleware,
`payment_webhook_receive`: the signature verified with the platform public key, the resource decrypted, the payment
looked up, the event recorded as waiting, and a run asked for after the commit, once a burst, through the broker of
CELERY_BROKER_URL), from --threads threads in each of --processes processes (forked, as gunicorn's workers are),
each thread with its own database connection. `--apply worker` (the default, as production runs): one real
`celery worker` (prefork, --workers processes) applies the waiting notices in batches of PAYMENT_NOTICES_BATCH
(payments succeeded, orders paid, their events, the splits queued; a full batch asks for the next at once); what it
asks for next (the split, the notifications, the outbound webhooks' events) is left in a queue nobody consumes
(bench/celery_parked.py: each has its own benchmark, and its own workers in production).
`--apply inline`: each request applies its own notice at once (tasks in-process, the embedded default) — one
transaction per notification, for comparison. No network between the gateway and the app: the app's side only.

Then the proof, which stops the script if it fails: every answer 200, every order paid with one paid transition,
one WebhookEvent per notification and none waiting, one queued split per order.

The markdown lines go to stdout, progress to stderr.
"""

import argparse
import contextlib
import multiprocessing
import os
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from bench.commissions import start_worker  # noqa: E402 - after the path
from bench.payout_rails import wechatpay_merchant  # noqa: E402
from bench.payouts import log, setup_django, throwaway_database  # noqa: E402

NOTICES_QUEUE = "bench-payment-notices"
PARKED_QUEUE = "bench-parked"  # what the runs ask for next (bench/celery_parked.py): nobody consumes it; purged

# What the forked processes post: set just before they are forked (a closure cannot be pickled to them).
_FORKED: dict = {}


def _post_share(index: int) -> list[int]:
    return _FORKED["post"](_FORKED["shares"][index])


def cpu_by_process() -> dict[str, float]:
    """CPU seconds used so far by every process on this machine, summed by command name (Linux /proc; {} elsewhere):
    read before and after the timed part, the difference says where the machine's two cores went."""
    tick = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
    used: dict[str, float] = {}
    for pid in filter(str.isdigit, os.listdir("/proc") if os.path.isdir("/proc") else []):
        with contextlib.suppress(OSError, IndexError, ValueError):
            with open(f"/proc/{pid}/stat") as stat:
                name, fields = stat.read().rsplit(")", 1)
            seconds = sum(int(value) for value in fields.split()[11:15]) / tick  # utime stime cutime cstime
            command = name.split("(", 1)[1]
            used[command] = used.get(command, 0.0) + seconds
    return used


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--notifications", type=int, default=4000, help="orders paid by notification (default 4000)")
    parser.add_argument("--threads", type=int, default=2, help="threads posting notifications (default 2)")
    parser.add_argument(
        "--processes",
        type=int,
        default=2,
        help="processes (forked, as gunicorn's workers), each with --threads threads (default 2)",
    )
    parser.add_argument("--workers", type=int, default=1, help="the applying worker's processes (default 1)")
    parser.add_argument(
        "--apply",
        choices=["worker", "inline"],
        default="worker",
        help="worker: recorded, then applied in batches by a real Celery worker (default); inline: each request "
        "applies its own",
    )
    parser.add_argument(
        "--profile", metavar="FILE", help="write a cProfile of the posting (1 process, 1 thread only) to FILE"
    )
    args = parser.parse_args(argv)
    if args.profile and (args.processes, args.threads) != (1, 1):
        parser.error("--profile needs --processes 1 --threads 1")
    if min(args.notifications, args.threads, args.processes, args.workers) < 1:
        parser.error("--notifications, --threads, --processes and --workers must be at least 1")
    return args


def configure(settings, fake) -> None:
    wechatpay_merchant(settings, fake, "https://api.mch.weixin.qq.com")  # never called: notifications only
    settings.SITE_URL = "https://shop.example.com"
    settings.ALLOWED_HOSTS = ["*"]
    settings.ORDER_UNPAID_UNITS_PER_BUYER = settings.ORDER_UNPAID_UNITS_PER_ADDRESS = 0


def pending_payments(count: int) -> list:
    """`count` unpaid orders of one product in one shop, each with a pending WeChat Pay Native payment."""
    import secrets
    from decimal import Decimal

    from shops.models import Payment
    from shops.services import BuyerDetails, order_place
    from tests.factories import ProductFactory, shop_with_products

    product = ProductFactory(price=Decimal("19.90"), stock=count * 2)
    shop = shop_with_products(product)
    buyer = BuyerDetails(name="Wang Fang", phone="13900001111", email="", address="1 Nanjing Road, Shanghai")
    orders = [order_place(shop=shop, items={product.pk: 1}, buyer=buyer) for _ in range(count)]
    return Payment.objects.bulk_create(
        [
            Payment(
                order=order,
                provider="wechatpay",
                method="native",
                reference="bn" + secrets.token_hex(15),
                amount=order.total,
            )
            for order in orders
        ],
        batch_size=1000,
    )


def notifications(fake, payments) -> list[tuple[bytes, dict]]:
    """What the fake sends for each payment paid: (body, headers), signed now."""
    from shops.payments.fakes.wechatpay import Trade

    fake.outbox.mode = "hold"
    for payment in payments:
        fake.trades[payment.reference] = Trade(
            out_trade_no=payment.reference,
            appid=fake.appid,
            trade_type="NATIVE",
            total=int(payment.amount * 100),
            description="bench",
            notify_url="https://shop.example.com/payments/webhook/wechatpay/",
            prepay_id="",
        )
        fake.buyer_pays(payment.reference)
    return [notification.prepare() for notification in fake.outbox.take(kind="TRANSACTION.SUCCESS")]


def run(args: argparse.Namespace, settings, fake) -> None:
    from django.core.cache import cache
    from django.db import connection, connections
    from django.db.models import Count
    from django.urls import reverse

    from commissions.models import SplitQueue
    from config.celery import app
    from shops.models import Order, OrderEvent, WebhookEvent
    from shops.services import PAYMENT_NOTICES_FLAG

    configure(settings, fake)
    started = time.perf_counter()
    payments = pending_payments(args.notifications)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    setup_s = time.perf_counter() - started
    log(f"setup: {len(payments)} orders with a pending WeChat Pay payment in {setup_s:.1f} s")
    started = time.perf_counter()
    deliveries = notifications(fake, payments)
    making_s = time.perf_counter() - started
    log(f"made {len(deliveries)} signed, encrypted notifications in {making_s:.1f} s")

    url = reverse("shops:payment_webhook", args=["wechatpay"])

    def post(chunk: list[tuple[bytes, dict]]) -> list[int]:
        """POST each notification through Django's WSGI handler, as gunicorn's worker calls it: the request's
        signals (the connection's age and health checked), the middleware, the view; the response closed."""
        import io

        from django.core.handlers.wsgi import WSGIHandler

        handler = WSGIHandler()
        statuses = []

        def start_response(status: str, _headers, _exc_info=None) -> None:
            statuses.append(int(status.split(" ", 1)[0]))

        try:
            for body, headers in chunk:
                environ = {
                    "REQUEST_METHOD": "POST",
                    "PATH_INFO": url,
                    "QUERY_STRING": "",
                    "SCRIPT_NAME": "",
                    "SERVER_NAME": "shop.example.com",
                    "SERVER_PORT": "443",
                    "SERVER_PROTOCOL": "HTTP/1.1",
                    "REMOTE_ADDR": "203.0.113.7",
                    "HTTP_HOST": "shop.example.com",
                    "CONTENT_TYPE": "application/json",
                    "CONTENT_LENGTH": str(len(body)),
                    "wsgi.input": io.BytesIO(body),
                    "wsgi.url_scheme": "https",
                    "wsgi.errors": sys.stderr,
                    "wsgi.multithread": args.threads > 1,
                    "wsgi.multiprocess": args.processes > 1,
                    "wsgi.run_once": False,
                    "wsgi.version": (1, 0),
                }
                for name, value in headers.items():
                    if name.lower() != "content-type":
                        environ[f"HTTP_{name.upper().replace('-', '_')}"] = value
                response = handler(environ, start_response)
                b"".join(response)
                response.close()  # request_finished: the connection closed if too old or broken, as gunicorn does
        finally:
            connections.close_all()
        return statuses

    def post_threads(share: list[tuple[bytes, dict]]) -> list[int]:
        if args.threads == 1 and args.profile:
            import cProfile

            with cProfile.Profile() as profiler:
                answer = post(share)
            profiler.dump_stats(args.profile)
            return answer
        if args.threads == 1:
            return post(share)
        with ThreadPoolExecutor(args.threads) as pool:
            chunks = [share[n :: args.threads] for n in range(args.threads)]
            return [status for answer in pool.map(post, chunks) for status in answer]

    worker = None
    if args.apply == "worker":
        worker = start_worker(
            celery_app="bench.celery_parked",
            gate=NOTICES_QUEUE,
            queue=NOTICES_QUEUE,
            node=f"notices-{os.getpid()}@bench",
            batch=settings.COMMISSION_SPLIT_BATCH,
            concurrency=args.workers,
            log_path=Path(tempfile.gettempdir()) / f"bench-payment-notices-worker-{os.getpid()}.log",
        )
        log(f"worker up: {args.workers} process(es), batches of {settings.PAYMENT_NOTICES_BATCH}")
    app.conf.task_always_eager = args.apply == "inline"
    app.conf.task_default_queue = NOTICES_QUEUE
    cache.delete(PAYMENT_NOTICES_FLAG)
    try:
        connections.close_all()  # each process opens its own
        cpu_started, machine_before = time.process_time(), cpu_by_process()
        started = time.perf_counter()
        if args.processes == 1:
            statuses = post_threads(deliveries)
        else:
            context = multiprocessing.get_context("fork")
            shares = [deliveries[n :: args.processes] for n in range(args.processes)]
            _FORKED.update(post=post_threads, shares=shares)
            with context.Pool(args.processes) as pool:
                statuses = [status for answer in pool.map(_post_share, range(args.processes)) for status in answer]
        received_s = time.perf_counter() - started
        # This process's CPU (the posting, when it posts itself: one process): the web side's cost per notification.
        web_cpu_ms = (time.process_time() - cpu_started) * 1000 / len(deliveries) if args.processes == 1 else None
        deadline = time.monotonic() + 300
        while WebhookEvent.objects.filter(applied_at__isnull=True).exists():
            if time.monotonic() > deadline:
                raise SystemExit("MISMATCHES: notices still waiting 300 s after the last was received")
            time.sleep(0.02)
        applied_s = time.perf_counter() - started
        machine_after = cpu_by_process()
    finally:
        if worker is not None:
            worker.stop()
        with contextlib.suppress(Exception), app.connection_for_write() as broker:
            for queue in (NOTICES_QUEUE, PARKED_QUEUE):
                broker.default_channel.queue_purge(queue)
    rate = len(deliveries) / applied_s
    spent = {name: machine_after[name] - machine_before.get(name, 0.0) for name in machine_after}
    top = sorted(((seconds, name) for name, seconds in spent.items() if seconds > 0.05), reverse=True)[:5]
    log(
        "CPU while timed (ms per notification): "
        + ", ".join(f"{name} {seconds * 1000 / len(deliveries):.2f}" for seconds, name in top)
    )
    if web_cpu_ms is not None:
        log(f"web side CPU: {web_cpu_ms:.2f} ms per notification (this process: client, handler, view)")
    log(
        f"timed: {len(deliveries)} notifications received in {received_s:.2f} s, all applied in {applied_s:.2f} s "
        f"({rate:,.0f}/s)"
    )

    problems = []
    if statuses.count(200) != len(deliveries):
        problems.append(f"answers {sorted(set(statuses))}: {len(deliveries) - statuses.count(200)} not 200")
    ids = [payment.order_id for payment in payments]
    paid = Order.objects.filter(pk__in=ids, status=Order.Status.PAID).count()
    transitions = (
        OrderEvent.objects.filter(order_id__in=ids, kind=OrderEvent.Kind.STATUS, to_status=Order.Status.PAID)
        .values("order_id")
        .annotate(n=Count("pk"))
        .filter(n__gt=1)
        .count()
    )
    events = WebhookEvent.objects.filter(provider="wechatpay", applied_at__isnull=False, outcome="order paid").count()
    queued = SplitQueue.objects.filter(order_id__in=ids).count()
    if (paid, transitions, events, queued) != (len(ids), 0, len(ids), len(ids)):
        problems.append(f"paid {paid}, paid twice {transitions}, events {events}, queued splits {queued}")
    if problems:
        raise SystemExit("MISMATCHES: " + "; ".join(problems))
    log(f"proof: {paid} orders paid once each, {events} events, {queued} splits queued")
    runs = WebhookEvent.objects.values("applied_at").distinct().count()  # a batch's notices share their applied_at
    log(f"applied by {runs} runs ({len(ids) / runs:,.0f} notices a run on average)")

    print(
        "| notifications | apply | web processes × threads | worker processes | all received s | all applied s "
        "| applied per s | target | all paid once |"
    )
    print("| ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |")
    workers = args.workers if args.apply == "worker" else "-"
    print(
        f"| {len(deliveries):,} | {args.apply} | {args.processes} × {args.threads} | {workers} | {received_s:.2f} "
        f"| {applied_s:.2f} | {rate:,.0f} | 1,000 | yes |"
    )
    print()
    print(f"setup {setup_s:.1f} s; notifications made in {making_s:.1f} s; CPUs {os.cpu_count()}")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    setup_django()

    from django.conf import settings
    from django.db import connection

    from shops.payments.fakes import WeChatPayFake

    if connection.vendor != "postgresql":
        print(
            "bench/payment_notifications.py needs PostgreSQL: set DATABASE_URL=postgres://user@host:5432/name",
            file=sys.stderr,
        )
        return 2
    settings.DEBUG = False
    with throwaway_database("payment_notifications"):
        run(args, settings, WeChatPayFake())
    return 0


if __name__ == "__main__":
    sys.exit(main())
