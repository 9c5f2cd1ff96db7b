"""End to end in a real browser: Playwright driving Debian's Chromium against a live server."""

import os
import shutil

import pytest
from django.core.management import call_command
from django.db import connection

from config.celery import app as celery_app
from shops.models import Order

CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def browser_page(monkeypatch, tmp_path, settings):
    sync_api = pytest.importorskip("playwright.sync_api", reason="needs the playwright package (requirements.txt)")
    if not shutil.which(CHROMIUM) and not os.path.exists(CHROMIUM):
        pytest.skip(f"needs Chromium at {CHROMIUM}: apt-get install chromium")
    # Playwright's sync API runs an event loop in this thread; the ORM calls the test makes are still synchronous.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    settings.MEDIA_ROOT = tmp_path / "media"
    # The sandbox provider's webhook is sent by a task: run it in-process so the live server receives it.
    monkeypatch.setitem(celery_app.conf, "task_always_eager", True)
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        context = browser.new_context(viewport={"width": 375, "height": 800}, device_scale_factor=1)
        page = context.new_page()
        page.set_default_timeout(15_000)
        yield page
        context.close()
        browser.close()
    _close_live_server_connections()


def _close_live_server_connections() -> None:
    # The live server's request threads keep persistent connections (CONN_MAX_AGE); end them so the
    # test database can be dropped at the end of the run.
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )


def test_a_buyer_buys_on_the_demo_shop_in_a_real_browser(live_server, browser_page, tmp_path):
    call_command("demo", stdout=open(os.devnull, "w"))  # noqa: SIM115
    page = browser_page
    before = Order.objects.count()

    page.goto(f"{live_server.url}/s/demo/")
    page.locator("a.product-card").first.click()
    page.get_by_role("button", name="Add to cart").click()
    page.get_by_role("link", name="Check out").click()
    page.get_by_role("button", name="Place order and pay").click()  # empty form first: errors, no order
    assert page.locator(".errorlist").count() >= 2
    page.get_by_label("Name").fill("Wang Fang")
    page.get_by_label("Phone").fill("13900001111")
    page.get_by_label("Delivery address").fill("1 Nanjing Road, Shanghai")
    page.get_by_role("button", name="Place order and pay").click()
    page.get_by_role("button", name="Pay", exact=True).click()
    page.wait_for_selector("#order-status")
    page.screenshot(path=str(tmp_path / "order-paid.png"), full_page=True)

    assert page.locator("#order-status").inner_text() == "Paid"
    assert Order.objects.count() == before + 1
    order = Order.objects.order_by("-pk").first()
    assert order.status == Order.Status.PAID
    assert order.shop.slug == "demo"
    # mobile-first: nothing wider than a 375 px phone
    assert page.evaluate("document.documentElement.scrollWidth") <= 375
