"""A buyer pays in a real browser, then the shop owner sees the notification in their inbox with the unread count in
the header (375 and 1280 px); a buyer lists their orders by phone with a texted code. Screenshots of the new pages
(en and zh-hans) go to artifacts/screenshots/, kept by CI for people to look at."""

import re
from pathlib import Path

import pytest
from django.urls import reverse

from core import sms
from members.notifications.models import Notification
from tests.factories import ProductFactory, default_commissions, make_chain, shop_with_products

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture(autouse=True)
def _default_plan(transactional_db):
    """Real commits (the announcements run after them): the default policy and plan, emptied by each flush."""
    default_commissions()


SCREENSHOTS = Path(__file__).resolve().parents[2] / "artifacts" / "screenshots"
PHONE_USER_AGENT = (
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko)"
    " Chrome/126.0.0.0 Mobile Safari/537.36"
)


@pytest.fixture(autouse=True)
def _texts(settings):
    settings.SMS_BACKEND = "core.sms.LocmemSmsBackend"
    sms.outbox.clear()
    yield
    sms.outbox.clear()


def _context(chromium, width, live_server, settings, *, client=None, user=None, language="en"):
    context = chromium.new_context(
        viewport={"width": width, "height": 800}, device_scale_factor=1, user_agent=PHONE_USER_AGENT
    )
    cookies = [{"name": "django_language", "value": language, "url": live_server.url}]
    if user is not None:
        client.force_login(user)
        cookies.append(
            {"name": settings.SESSION_COOKIE_NAME, "value": client.cookies[settings.SESSION_COOKIE_NAME].value,
             "url": live_server.url}
        )  # fmt: skip
    context.add_cookies(cookies)
    page = context.new_page()
    page.set_default_timeout(15_000)
    return context, page


def _shot(page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    width = page.viewport_size["width"]
    height = page.evaluate("document.documentElement.scrollHeight")
    page.set_viewport_size({"width": width, "height": max(height, 800)})
    page.screenshot(path=str(SCREENSHOTS / f"{name}-{width}.png"), full_page=True)
    page.set_viewport_size({"width": width, "height": 800})


@pytest.mark.parametrize("width", [375, 1280])
def test_a_purchase_reaches_the_sharers_inbox_with_the_unread_count(live_server, chromium, client, settings, width):
    settings.SITE_URL = live_server.url
    sponsor, sharer = make_chain(2)
    shop = shop_with_products(ProductFactory(title="Jasmine tea"), owner=sharer)

    # the buyer buys on the sharer's shop
    context, page = _context(chromium, width, live_server, settings)
    page.goto(f"{live_server.url}/s/{shop.slug}/")
    page.locator("a.product-card").first.click()
    page.get_by_role("button", name="Add to cart").click()
    page.get_by_role("link", name="Check out").click()
    page.get_by_label("Name").fill("Wang Fang")
    page.get_by_label("Phone").fill("13900001111")
    page.get_by_label("Delivery address").fill("1 Nanjing Road, Shanghai")
    page.get_by_role("button", name="Place order and pay").click()
    page.get_by_role("button", name="Pay", exact=True).click()
    page.wait_for_selector("#order-status")
    assert page.locator("#order-status").inner_text() == "Paid"
    context.close()
    assert [t.template for t in sms.outbox] == ["order_paid"]  # the buyer's confirmation, by text

    # the sharer sees the count in the header, opens the inbox, reads it
    context, page = _context(chromium, width, live_server, settings, client=client, user=sharer.user)
    page.goto(live_server.url + reverse("members:dashboard"))
    count = page.locator("header .unread-count")
    assert count.inner_text() == "1"
    page.locator("header a.inbox-link").click()
    note = page.locator("#inbox .notification.unread")
    assert note.count() == 1
    assert "commission pending" in note.inner_text()
    _shot(page, "en-notifications-inbox")
    assert page.evaluate("document.documentElement.scrollWidth") <= width
    note.get_by_role("button", name="Mark read").click()
    page.wait_for_url(live_server.url + reverse("members:notifications"))
    assert page.locator("header .unread-count").count() == 0
    assert page.locator("#inbox .notification.unread").count() == 0
    context.close()
    assert Notification.objects.filter(member=sponsor).count() == 1  # the sponsor earns too: told in their inbox


@pytest.mark.parametrize("language", ["en", "zh-hans"])
def test_screenshots_of_the_new_pages(live_server, chromium, client, settings, language):
    """Every new page at 375 and 1280 px in both languages, none scrolling sideways."""
    settings.SITE_URL = live_server.url
    from members.notifications.models import Event
    from members.notifications.services import notifications_fan_out, notify
    from tests.factories import place_order

    sponsor, sharer = make_chain(2)
    shop = shop_with_products(owner=sharer)
    place_order(shop)
    place_order(shop)
    for i, (event, context) in enumerate(
        [
            (Event.COMMISSION_PENDING, {"amount": "3.18"}),
            (Event.COMMISSION_AVAILABLE, {"amount": "12.50"}),
            (Event.WITHDRAWAL_FAILED, {"amount": "50.00", "reason": "账户已注销 / account closed"}),
        ]
    ):
        notify(key=f"shot:{i}", event=event, member=sharer, context=context | {"url": "/dashboard/commissions/"})
    notifications_fan_out()
    for width in (375, 1280):
        context, page = _context(chromium, width, live_server, settings, client=client, user=sharer.user,
                                 language=language)  # fmt: skip
        for name, url in (
            ("notifications-inbox", reverse("members:notifications")),
            ("notifications-settings", reverse("members:notification_settings")),
        ):
            assert page.goto(live_server.url + url).status == 200
            _shot(page, f"{language}-{name}")
            assert page.evaluate("document.documentElement.scrollWidth") <= width, (name, width)
        context.close()
        context, page = _context(chromium, width, live_server, settings, language=language)
        page.goto(live_server.url + reverse("shops:orders_by_phone"))
        _shot(page, f"{language}-orders-by-phone")
        page.locator("#id_phone").fill("13900001111")
        page.locator("main form button[type=submit]").click()
        page.wait_for_selector("#id_code")
        _shot(page, f"{language}-orders-by-phone-code")
        code = re.search(r"\b(\d{6})\b", sms.outbox[-1].text).group(1)
        page.locator("#id_code").fill(code)
        page.locator("main form button[type=submit]").click()
        page.wait_for_url(live_server.url + reverse("shops:orders_by_phone_list"))
        assert page.locator("main a.row").count() == 2
        _shot(page, f"{language}-orders-by-phone-list")
        assert page.evaluate("document.documentElement.scrollWidth") <= width
        context.close()
