"""A buyer types a member's coupon code at checkout in Chromium (issue #22), at 375 and 1280 px, in English and
Chinese: a wrong code is an error beside the field and orders nothing; the member's code takes the discount off, the
order is the member's and the order page says what the code saved. The member's "My links" page shows the code with
a copy button. Screenshots in artifacts/screenshots/coupons/ (kept by CI), checked for horizontal scrolling."""

import importlib
from decimal import Decimal
from pathlib import Path

import pytest
from django.apps import apps as django_apps
from django.urls import reverse

from commissions.services import plan_in_force, policy_in_force, policy_publish
from shops.models import Order
from shops.services import coupon_code_for_member
from tests.factories import MemberFactory, ProductFactory, shop_with_products

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

SCREENSHOTS = Path(__file__).resolve().parents[2] / "artifacts" / "screenshots" / "coupons"
VIEWPORTS = {375: {"width": 375, "height": 800}, 1280: {"width": 1280, "height": 800}}
# A person on a phone (HeadlessChrome is a bot to the click counter; nothing here depends on it, but be a person).
USER_AGENT = (
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko)"
    " Chrome/126.0.0.0 Mobile Safari/537.36"
)
# What a person reads, written out (not looked up with gettext) so that a missing translation fails.
TEXT = {
    "en": {
        "code": "Coupon code (optional)",
        "place": "Place order and pay",
        "pay": "Pay",
        "saved": "you saved",
        "apply": "Apply",
    },
    "zh-hans": {
        "code": "优惠码（选填）",
        "place": "提交订单并支付",
        "pay": "支付",
        "saved": "为您节省了",
        "apply": "使用",
    },
}


@pytest.fixture
def coupons_on(db, django_user_model):
    """The default plan and policy (a transactional test empties them: put them back), then a 5 % coupon policy."""
    if plan_in_force() is None or policy_in_force() is None:
        importlib.import_module("commissions.migrations.0002_default_policy_and_plan").create_defaults(
            django_apps, None
        )
    staff = django_user_model.objects.create_user(email="staff@example.com", password="x", is_staff=True)
    return policy_publish(actor=staff, note="coupons", coupons_enabled=True, coupon_discount_rate=Decimal("0.0500"))


def context_for(chromium, live_server, width: int, language: str, session: str = ""):
    context = chromium.new_context(viewport=VIEWPORTS[width], device_scale_factor=1, user_agent=USER_AGENT)
    cookies = [{"name": "django_language", "value": language, "url": live_server.url}]
    if session:
        cookies.append({"name": "sessionid", "value": session, "url": live_server.url})
    context.add_cookies(cookies)
    page = context.new_page()
    page.set_default_timeout(15_000)
    return context, page


def shoot(page, name: str, width: int, overflowing: list) -> None:
    page.wait_for_load_state("networkidle")
    page.screenshot(path=str(SCREENSHOTS / f"{name}-{width}.png"), full_page=True)
    scroll_width = page.evaluate("document.documentElement.scrollWidth")
    if scroll_width > width:
        overflowing.append((name, width, scroll_width))


@pytest.mark.parametrize("language", ["en", "zh-hans"])
def test_a_buyer_uses_a_members_coupon_code_at_checkout(live_server, chromium, client, coupons_on, settings, language):
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    text = TEXT[language]
    scarf = ProductFactory(title="Wool scarf", price=Decimal("100.00"), commission_rate=Decimal("0.2000"), stock=20)
    shop = shop_with_products(scarf)
    sara = MemberFactory()
    code = coupon_code_for_member(member=sara).code
    client.force_login(sara.user)
    session = client.cookies[settings.SESSION_COOKIE_NAME].value
    overflowing, read = [], []

    for width in (375, 1280):
        # the member's links page shows the code with a copy button
        context, page = context_for(chromium, live_server, width, language, session)
        page.goto(live_server.url + reverse("members:links"))
        assert page.locator("#coupon-code .coupon-code").inner_text() == code
        assert page.locator(f'#coupon-code button[data-copy="{code}"]').is_visible()
        shoot(page, f"{language}-member-code", width, overflowing)
        context.close()

        # a buyer: a wrong code first, then the member's
        context, page = context_for(chromium, live_server, width, language)
        before = Order.objects.count()
        page.goto(live_server.url + reverse("shops:product_detail", args=[shop.slug, scarf.pk]))
        page.locator("main form button[type=submit]").last.click()
        page.goto(live_server.url + reverse("shops:checkout", args=[shop.slug]))
        page.locator("#id_name").fill("王芳" if language == "zh-hans" else "Wang Fang")
        page.locator("#id_phone").fill("13900001111")
        page.locator("#id_address").fill("1 Nanjing Road, Shanghai")
        read.append(page.locator('label[for="id_coupon_code"]').inner_text())
        page.locator("#id_coupon_code").fill("NOSUCH23")
        page.get_by_role("button", name=text["place"]).click()
        error = page.locator("#id_coupon_code ~ .errorlist, .errorlist").filter(has_text="NOSUCH23")
        error.wait_for()
        shoot(page, f"{language}-checkout-unknown-code", width, overflowing)
        assert Order.objects.count() == before

        # "Apply" shows the discount first; what was typed stays in the fields
        page.locator("#id_coupon_code").fill(code.lower())
        page.locator('button[name="apply_coupon"]').click()
        page.locator("#coupon-quote").wait_for()
        assert "¥5.00" in page.locator("#coupon-quote").inner_text()
        assert "¥95.00" in page.locator(".total").inner_text()
        assert page.locator("#id_address").input_value() == "1 Nanjing Road, Shanghai"
        read.append(page.locator('button[name="apply_coupon"]').inner_text())
        shoot(page, f"{language}-checkout-applied", width, overflowing)
        page.get_by_role("button", name=text["place"]).click()
        page.get_by_role("button", name=text["pay"], exact=True).click()
        page.wait_for_selector("#coupon-saving")
        saving = page.locator("#coupon-saving").inner_text()
        assert code in saving
        assert "¥5.00" in saving
        read.append(saving)
        shoot(page, f"{language}-order-with-code", width, overflowing)
        context.close()

        order = Order.objects.order_by("-pk").first()
        assert (order.total, order.sharer, order.attribution) == (Decimal("95.00"), sara, "coupon")
        assert order.lines.get().discount == Decimal("5.00")

    assert overflowing == []
    # Last, so the screenshots are taken first: the new words in the page's language (zh-hans fails until the
    # lead's catalogue has them, like tests/config/test_i18n.py).
    assert all(text["code"] in label for label in read[0::3]), read
    assert all(text["apply"] == button for button in read[1::3]), read
    assert all(text["saved"] in saving for saving in read[2::3]), read
