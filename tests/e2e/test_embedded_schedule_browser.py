"""`make run`'s server runs the beat schedule: a purchase through a share link shows on the owner's dashboard.

What `make run` does, in a throwaway folder: the sandbox network in the background, `migrate`, `demo`, then
`manage.py runserver` with the autoreloader, with the embedded default's settings (SQLite in a file, no broker:
tasks run eagerly, local-memory cache and click counter). Nothing else runs the schedule. A buyer follows a
member's share link in Chromium, buys and pays in the sandbox; the owner's links page and overview must show the
click, the unique visitor and the order within 90 seconds (the click flush runs every 30 s). The schedule is the
real one, untouched.

Before the server starts, the database gets what a server stopped for a while finds: an unpaid order past the
payment timeout and a completed order past its commission hold; the scheduler must cancel the one and release the
other. The back office must show every monitored job run, none "never" or "late".

Then the server is stopped as Ctrl-C stops it, and its output must show one scheduler start (in the serving
process only, not the autoreloader's parent), a clean stop, and no error (no "database is locked" from the
scheduler's and the requests' writes at the same time).
"""

import json
import os
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.request
from contextlib import closing
from pathlib import Path
from types import SimpleNamespace

import pytest

from tests.e2e.conftest import PHONE

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = ROOT / "artifacts" / "screenshots"  # kept by CI for people to look at
# Whatever the test run was given (a PostgreSQL database, a broker, Redis …) stays out: make run's defaults only.
SETTINGS_FROM_ENV = (
    "DATABASE_URL",
    "CELERY_BROKER_URL",
    "CELERY_RESULT_BACKEND",
    "REDIS_URL",
    "CACHE_URL",
    "CLICKS_REDIS_URL",
    "EMBEDDED_SCHEDULER",
    "DEBUG",
    "LANGUAGE_CODE",
    "MEDIA_ROOT",
    "DJANGO_SETTINGS_MODULE",
    "SITE_URL",
)
DEADLINE_SECONDS = 90  # the promise: counted on the owner's dashboard within 90 s of the purchase
OWNER = "member1@example.com"  # a demo member with a shop of their own
PASSWORD = "demo-pass-2026"
DESKTOP = {"width": 1280, "height": 800}
# Headless Chromium's own user agent is a bot's to the click counter (redirected, neither counted nor attributed).
PHONE_USER_AGENT = (
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko)"
    " Chrome/126.0.0.0 Mobile Safari/537.36"
)


# Run in the throwaway database before the server starts (what a server stopped for a while finds): an unpaid
# order past the payment timeout, and a completed order whose commission hold has passed. Prints their ids.
OVERDUE = """
import json
from datetime import timedelta
from django.conf import settings
from django.utils import timezone
from shops.models import Order, Shop
from shops.services import BuyerDetails, order_mark_completed, order_mark_shipped, order_place
from tests.factories import pay_order

shop = Shop.objects.get(slug="demo")
product = shop.listings.filter(product__stock__gte=2).first().product
buyer = BuyerDetails(name="Li Lei", phone="13900002222", email="", address="2 Nanjing Road, Shanghai")
unpaid = order_place(shop=shop, items={product.pk: 1}, buyer=buyer)
timeout = timedelta(minutes=settings.ORDER_PAYMENT_TIMEOUT_MINUTES, seconds=30)
Order.objects.filter(pk=unpaid.pk).update(created_at=timezone.now() - timeout)
completed = pay_order(order_place(shop=shop, items={product.pk: 1}, buyer=buyer))
order_mark_shipped(order=completed)
order_mark_completed(order=completed)
hold = timedelta(days=settings.COMMISSION_HOLD_DAYS, minutes=1)
Order.objects.filter(pk=completed.pk).update(completed_at=timezone.now() - hold)
print(json.dumps({"unpaid": unpaid.pk, "completed": completed.pk}))
"""


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _wait_until_served(url: str, process: subprocess.Popen, log: Path, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"the server exited with {process.returncode}:\n{log.read_text()}")
        try:
            with urllib.request.urlopen(url, timeout=2):  # noqa: S310 - our own loopback server
                return
        except OSError:
            time.sleep(0.3)
    pytest.fail(f"nothing answered at {url} within {seconds} s:\n{log.read_text()}")


def _stop(process: subprocess.Popen) -> None:
    """Ctrl-C, to the whole process group (runserver's autoreloader and the serving child), as a terminal sends it."""
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGINT)
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(5)


@pytest.fixture
def make_run(tmp_path):
    """The storefront as `make run` serves it, in tmp_path: yields its URL, log, process, database file, and the
    ids of the overdue orders (OVERDUE)."""
    port, sandbox_port = _free_port(), _free_port()
    env = {key: value for key, value in os.environ.items() if key not in SETTINGS_FROM_ENV}
    env.update(
        DATABASE_URL=f"sqlite:///{tmp_path / 'db.sqlite3'}",
        MEDIA_ROOT=str(tmp_path / "media"),
        NETWORK_SANDBOX_URL=f"http://127.0.0.1:{sandbox_port}",
        SITE_URL=f"http://127.0.0.1:{port}",  # as `make run` sets it from HOST: webhooks come back to this server
        PYTHONUNBUFFERED="1",
    )
    manage = [sys.executable, str(ROOT / "manage.py")]
    started = []
    try:
        sandbox_log = tmp_path / "sandbox.log"
        with sandbox_log.open("w") as output:
            started.append(
                subprocess.Popen(
                    [*manage, "sandbox_network", "--port", str(sandbox_port)],
                    cwd=ROOT,
                    env=env,
                    stdout=output,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            )
        for command in (["migrate", "--noinput"], ["demo", "--wait-for-sandbox", "15"], ["shell", "-c", OVERDUE]):
            done = subprocess.run(
                [*manage, *command], cwd=ROOT, env=env, capture_output=True, text=True, timeout=180, check=False
            )
            assert done.returncode == 0, f"{command[0]}: {done.stdout}\n{done.stderr}"
        overdue = json.loads(done.stdout.strip().splitlines()[-1])
        server_log = tmp_path / "server.log"
        with server_log.open("w") as output:
            server = subprocess.Popen(
                [*manage, "runserver", f"127.0.0.1:{port}"],  # the autoreloader on, as `make run` has it
                cwd=ROOT,
                env=env,
                stdout=output,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        started.append(server)
        url = f"http://127.0.0.1:{port}"
        _wait_until_served(f"{url}/s/demo/", server, server_log)
        yield SimpleNamespace(url=url, log=server_log, server=server, database=tmp_path / "db.sqlite3", **overdue)
    finally:
        for process in reversed(started):
            _stop(process)


def _log_in(page, base_url: str, email: str) -> None:
    page.goto(f"{base_url}/login/")
    page.get_by_label("Email or phone").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(lambda url: "/login/" not in url)


def _figures(page, base_url: str) -> dict[str, int]:
    """Today's clicks and orders on the owner's overview."""
    page.goto(f"{base_url}/dashboard/")
    table = page.locator("#performance")
    return {
        row: int(table.locator("tr", has=page.locator("th", has_text=row)).locator("td").first.inner_text())
        for row in ("Clicks", "Orders")
    }


def _link_figures(page, base_url: str, card_id: str) -> dict[str, int]:
    page.goto(f"{base_url}/dashboard/links/")
    card = page.locator(f"#{card_id}")
    return {
        label: int(card.locator(".stat", has_text=label).locator("b").inner_text())
        for label in ("clicks", "unique visitors", "orders")
    }


def test_a_purchase_through_a_share_link_shows_on_the_owners_dashboard_under_make_run(make_run, chromium):
    base_url, server_log = make_run.url, make_run.log

    # given: the owner signed in, with a new link to their whole shop
    owner_context = chromium.new_context(viewport=DESKTOP, device_scale_factor=1)
    owner = owner_context.new_page()
    owner.set_default_timeout(15_000)
    _log_in(owner, base_url, OWNER)
    before = _figures(owner, base_url)
    owner.goto(f"{base_url}/dashboard/links/")
    owner.get_by_label("Link to", exact=True).select_option(label="My whole shop")
    owner.get_by_role("button", name="Create link").click()
    card = owner.locator(".card[id^=link-]").first
    card_id = card.get_attribute("id")
    link_url = card.locator(".copy").inner_text().strip()
    assert re.fullmatch(re.escape(base_url) + r"/l/\S+", link_url), link_url
    assert _link_figures(owner, base_url, card_id) == {"clicks": 0, "unique visitors": 0, "orders": 0}

    # when: a buyer on a phone follows the link, buys and pays
    buyer_context = chromium.new_context(viewport=PHONE, device_scale_factor=1, user_agent=PHONE_USER_AGENT)
    buyer = buyer_context.new_page()
    buyer.set_default_timeout(15_000)
    buyer.goto(link_url)
    buyer.locator("a.product-card").first.click()
    buyer.get_by_role("button", name="Add to cart").click()
    buyer.get_by_role("link", name="Check out").click()
    buyer.get_by_label("Name", exact=True).fill("Wang Fang")
    buyer.get_by_label("Phone").fill("13900001111")
    buyer.get_by_label("Delivery address").fill("1 Nanjing Road, Shanghai")
    buyer.get_by_role("button", name="Place order and pay").click()
    buyer.get_by_role("button", name="Pay", exact=True).click()
    buyer.locator("#order-status", has_text="Paid").wait_for()
    paid_at = time.monotonic()
    buyer_context.close()

    # then: within 90 s the owner's pages count the click, the visitor and the order (polled as a person reloads)
    expected_link = {"clicks": 1, "unique visitors": 1, "orders": 1}
    expected_overview = {"Clicks": before["Clicks"] + 1, "Orders": before["Orders"] + 1}
    while True:
        link_seen = _link_figures(owner, base_url, card_id)
        overview_seen = _figures(owner, base_url)
        if (link_seen, overview_seen) == (expected_link, expected_overview):
            break
        if time.monotonic() - paid_at > DEADLINE_SECONDS:
            pytest.fail(
                f"after {DEADLINE_SECONDS} s the links page shows {link_seen} (expected {expected_link}) and the "
                f"overview {overview_seen} (expected {expected_overview}):\n{server_log.read_text()[-4000:]}"
            )
        time.sleep(3)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    owner.screenshot(path=str(SCREENSHOTS / "embedded-schedule-overview.png"), full_page=True)
    _link_figures(owner, base_url, card_id)
    owner.screenshot(path=str(SCREENSHOTS / "embedded-schedule-links.png"), full_page=True)
    owner_context.close()

    # and: the back office shows every periodic job run on time (none "never", none "late")
    staff_context = chromium.new_context(viewport=DESKTOP, device_scale_factor=1)
    staff = staff_context.new_page()
    staff.set_default_timeout(15_000)
    _log_in(staff, base_url, "admin@example.com")
    staff.goto(f"{base_url}/admin/back-office/overview/")
    jobs = staff.locator("#jobs tbody tr")
    jobs.first.wait_for()
    rows = [" ".join(row.split()) for row in jobs.all_inner_texts()]
    assert len(rows) == 4, rows
    assert [row for row in rows if "never" in row or "late" in row] == [], rows
    staff.screenshot(path=str(SCREENSHOTS / "embedded-schedule-back-office.png"), full_page=True)
    staff_context.close()

    # and: what came due while the server was stopped was done: the unpaid order past the timeout is cancelled,
    # the commission past its hold released
    with closing(sqlite3.connect(make_run.database)) as database:
        order_status = database.execute("SELECT status FROM shops_order WHERE id = ?", [make_run.unpaid]).fetchone()
        entry_statuses = database.execute(
            "SELECT DISTINCT status FROM commissions_commissionentry WHERE order_id = ?", [make_run.completed]
        ).fetchall()
    assert order_status == ("cancelled",)
    assert entry_statuses == [("available",)]

    # and: the server, stopped as Ctrl-C stops it, started one scheduler, stopped it, and logged no error
    _stop(make_run.server)
    output = server_log.read_text()
    assert output.count("Embedded scheduler started") == 1, output
    assert "Embedded scheduler stopped" in output, output
    assert "database is locked" not in output, output
    assert "Traceback" not in output, output
    assert " failed; it runs again when next due" not in output, output
