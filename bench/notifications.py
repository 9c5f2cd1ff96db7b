"""Benchmark the notifications' fan-out end to end: recorded events → real Celery workers → inbox rows and emails.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/test CELERY_BROKER_URL=redis://127.0.0.1:6379/0 \\
        REDIS_URL=redis://127.0.0.1:6379/1 \\
        .venv/bin/python bench/notifications.py [--notifications 10000] [--members 2000] [--workers 2] \\
        [--batch 500] [--timeout 300]

PostgreSQL and Redis only. The database named in DATABASE_URL is never read or written: the script creates a
throwaway database next to it (`test_bench_notifications_<name>`, migrated from scratch) and drops it at the end
(also on error). On Redis it uses a queue of its own and deletes its keys at the end.

What it does:

1. `--members` members (users with an email address), made in bulk;
2. `--notifications` events for them (`NotificationEvent` rows, "commission available", spread over the members),
   what the collectors leave in the database when the ledger announces a release: recording them is not timed;
3. starts one `celery -A config worker --pool prefork --concurrency <workers>` (DEBUG=0, NOTIFICATIONS_BATCH=<batch>,
   email through SMTP to a local sink this script runs on loopback, one connection per batch), waits until it
   answers a ping, puts one `notifications_run_task` message in its queue (`notifications_requested`, as a
   receiver does), then starts the clock and tells the worker to consume: each run fans out a batch (claimed with
   SKIP LOCKED), asks for the next at once when its batch was full (so both processes work), then sends what is
   due;
4. polls until every event is fanned out and every email delivery is sent ("all sent"): every member has the
   message in their inbox and by email, each rendered in their language;
5. checks: one inbox row and one sent email delivery per event, as many emails received by the SMTP sink.

The markdown table goes to stdout, progress to stderr.
"""

import argparse
import asyncore
import contextlib
import multiprocessing
import os
import shutil
import signal
import smtpd
import sys
import tempfile
import time
import uuid
import warnings
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

from bench.commissions import Worker, broker_forget, log, setup_django  # noqa: E402
from bench.commissions import start_worker as commissions_worker  # noqa: E402

warnings.filterwarnings("ignore", category=DeprecationWarning)
POLL_SECONDS = 0.25


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--notifications", type=int, default=10_000)
    parser.add_argument("--members", type=int, default=2_000)
    parser.add_argument("--workers", type=int, default=2, help="worker processes (prefork concurrency)")
    parser.add_argument("--batch", type=int, default=500, help="NOTIFICATIONS_BATCH: events fanned out per run")
    parser.add_argument("--timeout", type=float, default=300.0)
    parser.add_argument(
        "--email",
        choices=["smtp", "dummy"],
        default="smtp",
        help="smtp (default): to a local SMTP sink; dummy: Django's dummy backend (measures everything but SMTP)",
    )
    return parser.parse_args(argv)


class SmtpSink(smtpd.SMTPServer):
    """Counts the messages it is sent (loopback only)."""

    def __init__(self, *args, counter, **kwargs):
        super().__init__(*args, **kwargs)
        self.counter = counter

    def process_message(self, peer, mailfrom, rcpttos, data, **kwargs):
        with self.counter.get_lock():
            self.counter.value += 1


def _serve_sink(ready, counter) -> None:
    sink = SmtpSink(("127.0.0.1", 0), None, decode_data=False, counter=counter)
    ready.put(sink.socket.getsockname()[1])
    asyncore.loop(timeout=0.1, use_poll=True)


def start_sink():
    """An SMTP sink in a process of its own (its own core: the sink's speed is not what is measured)."""
    ready, counter = multiprocessing.Queue(), multiprocessing.Value("i", 0)
    process = multiprocessing.Process(target=_serve_sink, args=(ready, counter), daemon=True)
    process.start()
    return ready.get(timeout=10), process, counter


def make_members(n: int) -> list[int]:
    from django.contrib.auth import get_user_model
    from django.utils import timezone

    from bench.commissions import UNUSABLE_PASSWORD
    from referrals.models import Member

    User = get_user_model()
    users = User.objects.bulk_create(
        [User(email=f"member{i}@bench.invalid", password=UNUSABLE_PASSWORD, first_name=f"M{i}") for i in range(n)],
        batch_size=2000,
    )
    now = timezone.now()
    members = Member.objects.bulk_create(
        [
            Member(
                user=user,
                invite_code=f"B{i:07d}",
                join_source="direct",
                lft=1,
                rght=2,
                tree_id=i + 1,  # each the root of a tree of its own: the tree is not what is measured
                level=0,
                joined_at=now,
            )
            for i, user in enumerate(users)
        ],
        batch_size=2000,
    )
    return [m.pk for m in members]


def record_events(n: int, member_ids: list[int]) -> None:
    from members.notifications.models import Event, NotificationEvent

    NotificationEvent.objects.bulk_create(
        [
            NotificationEvent(
                key=f"bench:{i}",
                event=Event.COMMISSION_AVAILABLE,
                member_id=member_ids[i % len(member_ids)],
                context={"amount": "12.34", "number": "", "url": "/dashboard/commissions/"},
            )
            for i in range(n)
        ],
        batch_size=5000,
    )


def start_worker(*, queue: str, batch: int, concurrency: int, smtp_port: int, email: str, log_path: Path) -> Worker:
    """bench/commissions.py's worker, with the notifications' batch and email server."""
    return commissions_worker(
        celery_app="config",
        gate=f"{queue}-gate",
        queue=queue,
        node=f"bench@{queue}",
        batch=500,
        concurrency=concurrency,
        log_path=log_path,
        extra_env={
            "NOTIFICATIONS_BATCH": str(batch),
            "EMAIL_BACKEND": f"django.core.mail.backends.{email}.EmailBackend",
            "EMAIL_HOST": "127.0.0.1",
            "EMAIL_PORT": str(smtp_port),
            "SMS_BACKEND": "core.sms.LocmemSmsBackend",
            "SITE_URL": "https://shop.example.com",  # the links in the emails
        },
    )


def main(argv=None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, lambda _signum, _frame: sys.exit(143))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    if not os.environ.get("CELERY_BROKER_URL") or not os.environ.get("REDIS_URL"):
        sys.exit("set CELERY_BROKER_URL and REDIS_URL (Redis), and DATABASE_URL (PostgreSQL)")
    os.environ["EMAIL_BACKEND"] = "django.core.mail.backends.locmem.EmailBackend"  # this process sends nothing
    setup_django()
    import django
    import redis
    from django.conf import settings
    from django.db import connection

    from config.celery import app

    if connection.vendor != "postgresql":
        sys.exit("DATABASE_URL must name a PostgreSQL database")
    broker = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    old_name = connection.settings_dict["NAME"]
    run_dir = Path(tempfile.mkdtemp(prefix="bench-notifications-"))
    smtp_port, sink, received_count = start_sink()
    log(f"SMTP sink on 127.0.0.1:{smtp_port}; Django {django.get_version()}")
    connection.settings_dict["TEST"]["NAME"] = f"test_bench_notifications_{old_name}"
    log(f"creating throwaway database test_bench_notifications_{old_name} ({old_name} is not touched)")
    connection.creation.create_test_db(verbosity=0, autoclobber=True, serialize=False, keepdb=False)
    queue = f"bench-notifications-{uuid.uuid4().hex[:8]}"
    worker = None
    try:
        from members.notifications.models import Delivery, Notification, NotificationEvent
        from members.notifications.services import RUN_SCHEDULED_KEY, notifications_requested

        started = time.perf_counter()
        member_ids = make_members(args.members)
        record_events(args.notifications, member_ids)
        log(f"{args.members:,} members and {args.notifications:,} events recorded in "
            f"{time.perf_counter() - started:.1f} s (not timed)")  # fmt: skip
        from django.core.cache import cache

        cache.delete(RUN_SCHEDULED_KEY)
        saved, app.conf.task_default_queue = app.conf.task_default_queue, queue
        try:
            assert notifications_requested()
        finally:
            app.conf.task_default_queue = saved
        worker = start_worker(
            queue=queue, batch=args.batch, concurrency=args.workers, smtp_port=smtp_port, email=args.email,
            log_path=run_dir / "worker.log",
        )  # fmt: skip
        load = os.getloadavg()[0]
        started = time.perf_counter()
        app.control.add_consumer(queue, destination=[worker.node], reply=True, timeout=10)
        fanned_s = None
        while True:
            now = time.perf_counter() - started
            if fanned_s is None and not NotificationEvent.objects.filter(fanned_out_at__isnull=True).exists():
                fanned_s = now
            sent = Delivery.objects.filter(status=Delivery.Status.SENT).count()
            if fanned_s is not None and sent == args.notifications:
                all_s = now
                break
            if now > args.timeout:
                raise RuntimeError(f"{sent:,} of {args.notifications:,} sent after {now:.0f} s\n{worker.tail()}")
            if worker.process.poll() is not None:
                raise RuntimeError(f"the worker died:\n{worker.tail()}")
            time.sleep(POLL_SECONDS)
    finally:
        if worker is not None:
            worker.stop()
        broker_forget(broker, queue)
        try:
            inbox = Notification.objects.count()
            failed = Delivery.objects.exclude(status=Delivery.Status.SENT).count()
        except Exception:
            inbox = failed = -1
        problems = (
            [line for line in (run_dir / "worker.log").read_text(errors="replace").splitlines() if "ERROR" in line]
            if (run_dir / "worker.log").exists()
            else []
        )
        connection.creation.destroy_test_db(old_name, verbosity=0, keepdb=False)
        shutil.rmtree(run_dir, ignore_errors=True)
        sink.terminate()
    time.sleep(0.5)
    if problems:
        raise RuntimeError("tasks failed:\n" + "\n".join(problems[:20]))
    received = received_count.value if args.email == "smtp" else args.notifications
    if inbox != args.notifications or failed or received != args.notifications:
        raise RuntimeError(f"inbox {inbox:,}, unsent {failed:,}, emails received {received:,}")
    log(f"all fanned out in {fanned_s:.1f} s, all sent in {all_s:.1f} s, load average {load:.1f} at the start")
    channel = "SMTP, loopback" if args.email == "smtp" else "dummy backend"
    print("| notifications | worker processes | batch | channels | all fanned out s | all sent s | notifications/s "
          "| load at start |")  # fmt: skip
    print("| ---: | ---: | ---: | --- | ---: | ---: | ---: | ---: |")
    print(f"| {args.notifications:,} | {args.workers} | {args.batch} | inbox + email ({channel}) | {fanned_s:.1f} "
          f"| {all_s:.1f} | {args.notifications / all_s:,.0f} | {load:.1f} |")  # fmt: skip
    return 0


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        sys.exit(main())
