"""End to end in a real browser: Playwright driving Debian's Chromium against a live server."""

import os

import pytest
from django.core.management import call_command

from shops.models import Order

# The `browser_page` fixture (and `chromium`, for tests that need several contexts) is in conftest.py.
pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


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
