"""Orders and tracking in a real browser (issue #22), at 375 and 1280 px, in English and Chinese.

A shop owner opens "Orders" from the dashboard's tab bar, sees the paid and shipped order with the buyer masked and
what they earn, and opens it: the progress shows the courier and waybill number. The buyer, in another browser,
looks the order up by number and phone and sees the same: paid, shipped with SF Express and a tracking link,
completion still to come. Every page is photographed at both widths (artifacts/screenshots/orders/) and checked
for sideways scrolling.
"""

from decimal import Decimal
from pathlib import Path

import pytest
from django.test import Client
from django.urls import reverse

from commissions.models import CommissionEntry
from core.money import format_money
from shops.services import order_mark_shipped
from tests.e2e.test_dashboard_flow import commission_terms  # noqa: F401 - fixture: the default plan and policy
from tests.factories import BUYER, ProductFactory, make_chain, pay_order, place_order, shop_with_products

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

SCREENSHOTS = Path(__file__).resolve().parents[2] / "artifacts" / "screenshots" / "orders"
WIDTHS = (375, 1280)
HEIGHT = 800
SF = "SF1234567890123"
# Written out, not looked up: a missing translation of what was translated before fails here.
TEXT = {
    "en": {"orders_tab": "Orders", "find": "Find my order", "shipped": "Shipped", "paid": "Paid"},
    "zh-hans": {"orders_tab": "订单", "find": "查找我的订单", "shipped": "已发货", "paid": "已付款"},
}


def _photograph(page, name: str, language: str) -> list[tuple[str, int, int]]:
    """Full-page PNGs of the current page at each width; the widths at which it scrolls sideways."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    overflowing = []
    for width in WIDTHS:
        page.set_viewport_size({"width": width, "height": HEIGHT})
        scroll_width = page.evaluate("document.documentElement.scrollWidth")
        if scroll_width > width:
            overflowing.append((name, width, scroll_width))
        # As tall as the page: the sticky tab bar would otherwise cover what the first screen's end shows.
        height = page.evaluate("document.documentElement.scrollHeight")
        page.set_viewport_size({"width": width, "height": max(height, HEIGHT)})
        page.screenshot(path=str(SCREENSHOTS / f"{language}-{name}-{width}.png"), full_page=True)
    page.set_viewport_size({"width": WIDTHS[0], "height": HEIGHT})
    return overflowing


@pytest.mark.parametrize("language", ["en", "zh-hans"])
def test_owner_sees_their_orders_and_buyer_sees_the_shipped_timeline(
    live_server,
    chromium,
    settings,
    commission_terms,  # noqa: F811
    language,
):
    text = TEXT[language]
    _root, owner = make_chain(2)
    product = ProductFactory(title="Longjing tea", price=Decimal("36.00"), commission_rate=Decimal("0.2000"))
    shop = shop_with_products(product, owner=owner, name="Ann's tea")
    order = pay_order(place_order(shop, {product: 2}))
    order_mark_shipped(order=order, courier="sf", waybill=SF)
    place_order(shop, {product: 1})  # one more, still awaiting payment
    login = Client()
    login.force_login(owner.user)
    overflowing = []

    # --- the owner, on a phone -----------------------------------------------------------------------------
    owner_context = chromium.new_context(viewport={"width": 375, "height": HEIGHT}, device_scale_factor=1)
    owner_context.add_cookies(
        [
            {"name": settings.SESSION_COOKIE_NAME, "value": login.cookies[settings.SESSION_COOKIE_NAME].value,
             "url": live_server.url},
            {"name": settings.LANGUAGE_COOKIE_NAME, "value": language, "url": live_server.url},
        ]
    )  # fmt: skip
    page = owner_context.new_page()
    page.set_default_timeout(15_000)
    page.goto(live_server.url + reverse("members:dashboard"))
    page.locator("nav.tabbar").get_by_role("link", name=text["orders_tab"], exact=True).click()
    page.wait_for_url(live_server.url + reverse("members:orders"))
    assert page.locator("html").get_attribute("lang") == language
    row = page.locator("a.order-row", has_text=order.number)
    assert row.is_visible()
    assert "139****1111" in row.inner_text() and "W**" in row.inner_text()
    earned = CommissionEntry.objects.get(beneficiary=owner, order=order).amount
    assert earned > 0 and format_money(earned) in row.locator(".earn").inner_text()
    assert page.locator("a.order-row").count() == 2
    page_text = page.locator("main").inner_text()
    for value in (BUYER.name, BUYER.address, "13900001111"):
        assert value not in page_text
    overflowing += _photograph(page, "owner-orders", language)

    row.click()
    page.wait_for_url(live_server.url + reverse("members:order_detail", args=[order.number]))
    shipped = page.locator('li[data-step="shipped"]')
    assert SF in shipped.inner_text()
    assert shipped.get_by_role("link").get_attribute("href").endswith(f"nu={SF}")
    overflowing += _photograph(page, "owner-order", language)
    owner_context.close()

    # --- the buyer, in another browser ---------------------------------------------------------------------
    buyer_context = chromium.new_context(viewport={"width": 375, "height": HEIGHT}, device_scale_factor=1)
    buyer_context.add_cookies([{"name": settings.LANGUAGE_COOKIE_NAME, "value": language, "url": live_server.url}])
    buyer = buyer_context.new_page()
    buyer.set_default_timeout(15_000)
    buyer.goto(live_server.url + reverse("shops:order_lookup"))
    buyer.locator("#id_number").fill(order.number)
    buyer.locator("#id_contact").fill("139 0000 1111")
    buyer.get_by_role("button", name=text["find"]).click()
    buyer.wait_for_url(live_server.url + reverse("shops:order_detail", args=[order.number]))
    assert buyer.locator("#order-status").inner_text() == text["shipped"]
    steps = buyer.locator("ol.timeline > li")
    assert [steps.nth(i).get_attribute("data-step") for i in range(steps.count())] == [
        "placed",
        "paid",
        "shipped",
        "completed",
    ]
    assert text["paid"] in buyer.locator('li[data-step="paid"]').inner_text()
    track = buyer.locator('li[data-step="shipped"] a')
    assert track.get_attribute("href") == f"https://www.kuaidi100.com/chaxun?com=shunfeng&nu={SF}"
    assert track.get_attribute("rel") == "noopener noreferrer"
    assert "upcoming" in buyer.locator('li[data-step="completed"]').get_attribute("class")
    overflowing += _photograph(buyer, "buyer-order", language)
    buyer_context.close()

    assert not overflowing, f"pages wider than the screen (page, width, scrollWidth): {overflowing}"
