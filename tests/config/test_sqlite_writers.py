"""The embedded default's SQLite file takes the scheduler's writes and the requests' writes at the same time.

The scheduler runs its tasks in threads of the serving process while request threads write too. SQLite has one
writer at a time; settings.py makes every transaction BEGIN IMMEDIATE (a writer queues for the lock up front,
instead of failing with "database is locked" when it upgrades a read lock half-way) with a busy timeout, so they
wait for each other. Here, in a fresh interpreter on a real database file (the tests' own database is in memory):
every entry of the real schedule but the network sync (it talks HTTP) forced due every 50 ms, while buyer threads
place and pay orders and a visitor thread clicks share links. Nothing may fail.
"""

import json
import os
import sqlite3
import subprocess
import sys
from contextlib import closing
from pathlib import Path

import pytest
from django.db import connection

ROOT = Path(__file__).resolve().parents[2]
SETTINGS_FROM_ENV = ("DATABASE_URL", "CELERY_BROKER_URL", "REDIS_URL", "CACHE_URL", "CLICKS_REDIS_URL", "DEBUG")

STRESS = """
import json, logging, threading, time
from datetime import date, timedelta

import django
django.setup()
from django.db import connections

from config.celery import app
from config.scheduler import EmbeddedScheduler
from shops.clicks import click_counter
from shops.services import share_link_create
from tests.factories import ProductFactory, pay_order, place_order, shop_with_products

failures = []


class Failures(logging.Handler):
    def emit(self, record):
        if record.levelno >= logging.ERROR:
            failures.append(record.getMessage())


logging.getLogger().addHandler(Failures())
product = ProductFactory(stock=10_000)
shop = shop_with_products(product)
link = share_link_create(owner=shop.owner, product=product)
app.autodiscover_tasks(force=True)
schedule = {name: entry for name, entry in app.conf.beat_schedule.items() if name != "networks-sync"}
scheduler = EmbeddedScheduler(app=app, beat_schedule=schedule, max_sleep=0.01)
runs = [0]
done = threading.Event()


def schedule_loop():
    while not done.is_set():
        for entry in scheduler.entries.values():
            entry.last_run_at = entry.default_now() - timedelta(days=8)
        scheduler.run_pending()
        runs[0] += 1
        time.sleep(0.05)
    scheduler.join(60)


def in_thread(work):
    def run():
        try:
            work()
        except Exception as error:
            failures.append(repr(error))
        finally:
            connections.close_all()
    return threading.Thread(target=run)


def buy():
    for number in range(6):
        order = place_order(shop, {product: 1})
        if number % 3:
            pay_order(order)


def click():
    for number in range(100):
        click_counter().record(link_id=link.pk, day=date.today(), visitor=str(number))
        time.sleep(0.005)


scheduler_thread = threading.Thread(target=schedule_loop)
scheduler_thread.start()
workers = [in_thread(buy) for _ in range(4)] + [in_thread(click)]
for worker in workers:
    worker.start()
for worker in workers:
    worker.join()
time.sleep(0.5)
done.set()
scheduler_thread.join()
scheduler.run_all()  # one last flush of the clicks, after every writer
scheduler.join(60)

from shops.models import ShareLinkDailyStat
from shops.models import Order
from staff.models import JobRun

print(json.dumps({
    "failures": failures,
    "orders": Order.objects.count(),
    "paid": Order.objects.filter(paid_at__isnull=False).count(),
    "clicks": sum(ShareLinkDailyStat.objects.values_list("clicks", flat=True)),
    "looks": runs[0],
    "flushes": JobRun.objects.filter(name="clicks_flush").count(),
}))
"""


@pytest.mark.django_db(transaction=True)
def test_scheduler_and_request_threads_write_the_sqlite_file_at_once_without_locking_errors(tmp_path):
    if connection.vendor != "sqlite":
        pytest.skip("needs SQLite, the embedded default's database: runs with DATABASE_URL unset (make test)")
    # The tests' database, migrated and empty, copied to a file (faster than migrating one).
    database = tmp_path / "db.sqlite3"
    connection.ensure_connection()
    with closing(sqlite3.connect(database)) as copy:
        connection.connection.backup(copy)
    env = {key: value for key, value in os.environ.items() if key not in SETTINGS_FROM_ENV}
    env.update(DATABASE_URL=f"sqlite:///{database}", DJANGO_SETTINGS_MODULE="config.settings")

    stress = subprocess.run(
        [sys.executable, "-c", STRESS], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300, check=False
    )

    assert stress.returncode == 0, stress.stderr
    seen = json.loads(stress.stdout.strip().splitlines()[-1])
    assert seen["failures"] == [], stress.stderr[-5000:]
    assert (seen["orders"], seen["paid"], seen["clicks"]) == (24, 16, 100)
    assert seen["looks"] >= 10  # the schedule really ran alongside the writers, many times over
    assert seen["flushes"] == 1
