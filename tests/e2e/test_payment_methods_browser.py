"""The buyer's whole path in Chromium with each payment method, against the local WeChat Pay and Alipay fakes.

- a desktop: WeChat Pay Native (the QR code on our page; the test plays the buyer's WeChat through the fake's
  control, and the page moves on to "paid" by itself) and Alipay's page cashier;
- a phone (375 px, a phone's User-Agent): WeChat Pay H5 (the fake checks the Referer, as WeChat does) and Alipay
  wap;
- WeChat's in-app browser (MicroMessenger): WeChat's silent OAuth, then the page hands the JSAPI parameters to
  WeixinJSBridge, which the test injects and which pays through the fake's control with the page's paySign;
- a notification that never comes: the page still ends paid, by our query;
- the buyer cancels: the payment is closed at WeChat Pay.

Every page of ours is checked for Content-Security-Policy violations. test_payment_screens photographs the method
choice and each order state at 375 and 1280 px, in English and Chinese (artifacts/screenshots/payments/).
"""

import time
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from django.db import OperationalError
from django.urls import reverse
from django.utils import timezone

from shops.models import Order, Payment
from shops.payments.base import Buyer
from shops.payments.fakes.wechatpay import WeChatPayError
from shops.services import orders_cancel_expired, payment_start, payment_start_method
from tests.factories import ProductFactory, place_order, shop_with_products
from tests.payments import conftest as payment_fixtures
from tests.payments.test_methods import ANDROID_CHROME, DESKTOP_CHROME, WECHAT_ANDROID

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

# The gateway fakes' fixtures of tests/payments/conftest.py, for these tests too.
gateways, wechat_settings = payment_fixtures.gateways, payment_fixtures.wechat_settings
wechat, alipay, oauth_fake = payment_fixtures.wechat, payment_fixtures.alipay, payment_fixtures.oauth_fake

SCREENSHOTS = Path(__file__).resolve().parents[2] / "artifacts" / "screenshots" / "payments"
PHONE = {"width": 375, "height": 800}
DESKTOP = {"width": 1280, "height": 800}
# Registered before any page script runs; collects the page's Content-Security-Policy violations.
LISTEN_CSP = """
window.__cspViolations = [];
document.addEventListener("securitypolicyviolation", (event) => {
  window.__cspViolations.push(`${event.violatedDirective} blocked ${event.blockedURI || "inline"}`);
});
"""
# WeChat's in-app browser gives pages WeixinJSBridge; this one pays through the fake's control (buyer_pays_jsapi),
# which checks the merchant's paySign over the parameters the page handed over.
FAKE_WEIXIN_JS_BRIDGE = """
window.WeixinJSBridge = {
  invoke: function (name, params, callback) {
    if (name !== "getBrandWCPayRequest") { callback({err_msg: name + ":fail"}); return; }
    window.fakeWeChatPays(params).then(function (paid) {
      callback({err_msg: paid ? "get_brand_wcpay_request:ok" : "get_brand_wcpay_request:fail"});
    });
  }
};
"""


@pytest.fixture
def rails(settings, live_server, wechat, alipay, oauth_fake):
    """WeChat Pay and Alipay offered, WeChat OAuth configured; notifications sent as soon as they happen."""
    settings.PAYMENT_PROVIDER = "wechatpay"
    settings.PAYMENT_RAILS = ["alipay"]
    settings.PAYMENTS_QUERY_INTERVAL = 60
    settings.RATE_LIMIT_ORDER_LOOKUP = "0"
    wechat.outbox.mode = alipay.outbox.mode = "immediate"
    wechat.auto_complete_refunds = True
    wechat.h5_domains = {urlsplit(live_server.url).hostname}  # the shop's H5 domain, as WeChat Pay checks it
    oauth_fake.domains = {urlsplit(live_server.url).hostname}  # the account's authorized domain
    return settings


@pytest.fixture
def product(transactional_db):
    product = ProductFactory(title="Longjing green tea 250 g", price=Decimal("88.00"), stock=20)
    shop_with_products(product, name="Tea corner", slug="tea")
    return product


def browser(chromium, user_agent: str, viewport: dict, language: str = "en", live_server=None):
    context = chromium.new_context(viewport=viewport, device_scale_factor=1, user_agent=user_agent)
    context.add_init_script(LISTEN_CSP)
    if language != "en":
        host = urlsplit(live_server.url).hostname
        context.add_cookies([{"name": "django_language", "value": language, "domain": host, "path": "/"}])
    page = context.new_page()
    page.set_default_timeout(15_000)
    return context, page


def checkout(page, base_url: str, product, method: str | None) -> None:
    """Add the product to the cart, fill in the checkout form, choose `method` ("provider:method"), place it."""
    shop = product.listings.first().shop
    page.goto(base_url + reverse("shops:product_detail", args=[shop.slug, product.pk]))
    page.locator("main form button[type=submit]").last.click()  # Add to cart
    page.goto(base_url + reverse("shops:checkout", args=[shop.slug]))
    page.locator("#id_name").fill("Wang Fang")
    page.locator("#id_phone").fill("13900001111")
    page.locator("#id_address").fill("1 Nanjing Road, Shanghai")
    if method:
        page.locator(f'input[name=method][value="{method}"]').check()
    page.locator("main form button[type=submit]").click()


def settled(read):
    """`read()` from the test's thread, tried again while the live server is writing: the default test run's SQLite
    database, shared in memory with the live server's threads, refuses a read during another connection's write
    ("database table is locked") instead of waiting, and a notification (and the commission split after it) may be
    applied in the background while the browser already shows the order paid."""
    for attempt in range(100):
        try:
            return read()
        except OperationalError as error:
            if "locked" not in str(error) or attempt == 99:
                raise
            time.sleep(0.05)
    return None


def latest_order() -> Order:
    return settled(lambda: Order.objects.order_by("-pk").first())


def latest_payment() -> Payment:
    return settled(lambda: Payment.objects.select_related("order").order_by("-pk").first())


def wait_paid(page, order: Order) -> None:
    page.wait_for_url(f"**{reverse('shops:order_detail', args=[order.number])}*")
    page.locator("#order-status", has_text="Paid").wait_for()


def csp_violations(page) -> list[str]:
    return page.evaluate("window.__cspViolations || []")


# --- each method, end to end ------------------------------------------------------------------------------------


def test_desktop_wechat_pay_native_qr_code_paid_by_the_buyers_wechat(rails, live_server, chromium, product, wechat):
    context, page = browser(chromium, DESKTOP_CHROME, DESKTOP)

    checkout(page, live_server.url, product, "wechatpay:native")
    page.locator("#payment-qr").wait_for()
    assert page.locator("#payment-qr").get_attribute("src").startswith("data:image/svg+xml")
    violations = csp_violations(page)
    payment = latest_payment()
    assert (payment.provider, payment.method) == ("wechatpay", "native")
    wechat.buyer_pays(payment.reference)  # the buyer scans the code and pays in WeChat

    wait_paid(page, payment.order)  # the page polled our order state and moved on by itself
    assert settled(lambda: Order.objects.get(pk=payment.order_id).status) == Order.Status.PAID
    assert violations == [] and csp_violations(page) == []
    context.close()


def test_desktop_alipay_page_cashier(rails, live_server, chromium, product, alipay):
    context, page = browser(chromium, DESKTOP_CHROME, DESKTOP)

    checkout(page, live_server.url, product, "alipay:page")
    page.wait_for_url(alipay.gateway_url + "?*")  # our paying page sent the browser on to Alipay
    payment = latest_payment()
    page.get_by_role("button", name="确认付款 (pay)").click()

    wait_paid(page, payment.order)
    assert (payment.provider, payment.method) == ("alipay", "page")
    assert alipay.trade(payment.reference).method == "alipay.trade.page.pay"
    assert csp_violations(page) == []
    context.close()


def test_phone_wechat_pay_h5(rails, live_server, chromium, product, wechat):
    context, page = browser(chromium, ANDROID_CHROME, PHONE)

    checkout(page, live_server.url, product, "wechatpay:h5")
    page.wait_for_url(wechat.base_url + "/fake/wechatpay/h5?*")  # WeChat Pay's H5 page accepted our Referer
    payment = latest_payment()
    page.get_by_role("button", name="确认支付 (pay)").click()

    wait_paid(page, payment.order)  # WeChat sent the buyer back to the order page
    assert (payment.provider, payment.method) == ("wechatpay", "h5")
    assert ("/fake/wechatpay/h5", "REFERER_INVALID") not in wechat.refused
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    context.close()


def test_phone_alipay_wap(rails, live_server, chromium, product, alipay):
    context, page = browser(chromium, ANDROID_CHROME, PHONE)

    checkout(page, live_server.url, product, "alipay:wap")
    page.wait_for_url(alipay.gateway_url + "?*")
    payment = latest_payment()
    page.get_by_role("button", name="确认付款 (pay)").click()

    wait_paid(page, payment.order)
    assert alipay.trade(payment.reference).method == "alipay.trade.wap.pay"
    context.close()


def test_inside_wechat_jsapi_after_the_silent_oauth(rails, live_server, chromium, product, wechat, oauth_fake):
    context, page = browser(chromium, WECHAT_ANDROID, PHONE)
    handed_over = []

    def fake_wechat_pays(params: dict) -> bool:
        handed_over.append(params)
        try:
            wechat.buyer_pays_jsapi(params, openid=oauth_fake.openid_for())
        except WeChatPayError:
            return False
        return True

    page.expose_function("fakeWeChatPays", fake_wechat_pays)
    context.add_init_script(FAKE_WEIXIN_JS_BRIDGE)

    checkout(page, live_server.url, product, None)  # inside WeChat JSAPI is the only method: nothing to choose
    page.locator("#wechat-pay").wait_for(state="attached")
    wait_paid(page, latest_order())

    payment = latest_payment()
    assert (payment.provider, payment.method) == ("wechatpay", "jsapi")
    assert len(handed_over) == 1 and handed_over[0]["package"].startswith("prepay_id=")
    assert wechat.trade(payment.reference).openid == oauth_fake.openid_for()
    assert [code.used for code in oauth_fake.codes.values()] == [True]
    assert csp_violations(page) == []
    context.close()


def test_a_notification_that_never_comes_still_ends_paid(rails, live_server, chromium, product, wechat):
    rails.PAYMENTS_QUERY_INTERVAL = 1
    wechat.outbox.mode = "hold"
    context, page = browser(chromium, DESKTOP_CHROME, DESKTOP)

    checkout(page, live_server.url, product, "wechatpay:native")
    page.locator("#payment-qr").wait_for()
    payment = latest_payment()
    wechat.buyer_pays(payment.reference)
    assert wechat.outbox.drop() == 1  # WeChat Pay's notification is lost

    wait_paid(page, payment.order)  # the state endpoint asked WeChat Pay
    assert settled(lambda: Payment.objects.get(pk=payment.pk).status) == Payment.Status.SUCCEEDED
    assert wechat.outbox.sent == []
    context.close()


def test_the_buyer_cancelling_closes_the_payment_at_wechat_pay(rails, live_server, chromium, product, wechat):
    context, page = browser(chromium, DESKTOP_CHROME, DESKTOP)
    checkout(page, live_server.url, product, "wechatpay:native")
    page.locator("#payment-qr").wait_for()
    payment = latest_payment()

    page.get_by_role("link", name="Pay another way, or cancel the order").click()
    page.get_by_role("button", name="Cancel order").click()

    page.locator("#order-status", has_text="Cancelled").wait_for()
    assert "Your order is cancelled." in page.content()
    assert settled(lambda: Payment.objects.get(pk=payment.pk).status) == Payment.Status.CLOSED
    assert wechat.trade(payment.reference).trade_state == "CLOSED"
    assert settled(lambda: Order.objects.get(pk=payment.order_id).status) == Order.Status.CANCELLED
    context.close()


# --- screenshots: the method choice and each order state, at 375 and 1280 px, in English and Chinese ----------------


def open_order(page, base_url: str, order: Order) -> None:
    """Find the order through the look-up form (so this browser may see it) and open its page.

    The order page left behind reloads itself while a payment is waiting (`refresh-after`); a reload that fires as we
    leave can win the race and put the order page back, so the look-up page is opened again until it is there."""
    for _attempt in range(3):
        page.goto(base_url + reverse("shops:order_lookup"))
        page.wait_for_load_state("load")
        if page.locator("#id_number").count():
            break
    page.locator("#id_number").fill(order.number)
    page.locator("#id_contact").fill("13900001111")
    page.locator("main form button[type=submit]").click()
    page.wait_for_selector("#order-status")


def open_payment(order: Order, provider: str, method: str, base_url: str) -> Payment:
    payment, _action = payment_start_method(
        order=order,
        provider_name=provider,
        method=method,
        buyer=Buyer(client_ip="127.0.0.1"),
        notify_url=base_url + reverse("shops:payment_webhook", args=[provider]),
        return_url=base_url + reverse("shops:order_detail", args=[order.number]),
    )
    return payment


def orders_in_each_state(product, base_url: str, wechat_fake) -> dict[str, Order]:
    """An order waiting for its payment, one paid, one whose payment failed, one whose payment was closed unpaid,
    and one cancelled because it was not paid in time. Made before any browser opens, the notification sent while
    this thread waits: nothing else writes to the database meanwhile."""
    wechat_fake.outbox.mode = "hold"
    shop = product.listings.first().shop
    orders = {name: place_order(shop, {product: 1}) for name in ("waiting", "paid", "failed", "closed", "timed-out")}
    open_payment(orders["waiting"], "wechatpay", "native", base_url)
    paid = open_payment(orders["paid"], "wechatpay", "native", base_url)
    wechat_fake.buyer_pays(paid.reference)
    assert wechat_fake.outbox.release() == [True]
    failed, _url = payment_start(  # declined: the sandbox is the provider that says so
        order=orders["failed"], provider_name="sandbox", notify_url=base_url + "/wh", return_url=base_url + "/r"
    )
    Payment.objects.filter(pk=failed.pk).update(status=Payment.Status.FAILED, completed_at=timezone.now())
    closed = open_payment(orders["closed"], "wechatpay", "native", base_url)
    wechat_fake.trade(closed.reference).trade_state = "CLOSED"  # timed out at WeChat Pay: the order page finds out
    timed_out = open_payment(orders["timed-out"], "alipay", "page", base_url)
    Order.objects.filter(pk=orders["timed-out"].pk).update(created_at=timezone.now() - timedelta(minutes=31))
    assert timed_out.order_id and orders_cancel_expired() == 1
    wechat_fake.outbox.mode = "immediate"
    return orders


def shoot(page, name: str, width: int, overflowing: list) -> None:
    page.wait_for_load_state("networkidle")
    path = SCREENSHOTS / f"{name}-{width}.png"
    page.screenshot(path=str(path), full_page=True)
    scroll_width = page.evaluate("document.documentElement.scrollWidth")
    if scroll_width > width:
        overflowing.append((name, width, scroll_width))


@pytest.mark.parametrize("language", ["en", "zh-hans"])
def test_payment_screens(rails, live_server, chromium, product, wechat, language):
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    overflowing, violations = [], {}
    orders = orders_in_each_state(product, live_server.url, wechat)
    for width, user_agent, viewport in ((375, ANDROID_CHROME, PHONE), (1280, DESKTOP_CHROME, DESKTOP)):
        context, page = browser(chromium, user_agent, viewport, language, live_server)
        # The method choice (a phone: H5 and wap; a desktop: Native and page), with the first chosen.
        checkout_page(page, live_server.url, product)
        shoot(page, f"{language}-checkout-methods", width, overflowing)
        # The QR code page (a desktop's Native payment), photographed at both widths.
        page.locator("main form button[type=submit]").click()
        if width == 1280:
            page.locator("#payment-qr").wait_for()
            shoot(page, f"{language}-paying-qr", width, overflowing)
        for state, order in orders.items():
            open_order(page, live_server.url, order)
            shoot(page, f"{language}-order-{state}", width, overflowing)
            violations.update({f"{state}-{width}": found for found in [csp_violations(page)] if found})
        context.close()
    # Inside WeChat: the JSAPI page (the bridge never answers here: the page waits).
    context, page = browser(chromium, WECHAT_ANDROID, PHONE, language, live_server)
    checkout_page(page, live_server.url, product)
    page.locator("main form button[type=submit]").click()
    page.locator("#wechat-pay").wait_for()
    shoot(page, f"{language}-paying-jsapi", 375, overflowing)
    context.close()

    for order in orders.values():
        settled(order.refresh_from_db)
    assert [orders[name].status for name in ("waiting", "paid", "failed", "closed", "timed-out")] == [
        "pending_payment",
        "paid",
        "pending_payment",
        "pending_payment",
        "cancelled",
    ]
    assert settled(lambda: Payment.objects.get(order=orders["closed"]).status) == Payment.Status.CLOSED
    assert not overflowing, f"pages wider than the screen (page, width, scrollWidth): {overflowing}"
    assert violations == {}


def checkout_page(page, base_url: str, product) -> None:
    shop = product.listings.first().shop
    page.goto(base_url + reverse("shops:product_detail", args=[shop.slug, product.pk]))
    page.locator("main form button[type=submit]").last.click()
    page.goto(base_url + reverse("shops:checkout", args=[shop.slug]))
    chinese = page.locator("html").get_attribute("lang").startswith("zh")
    page.locator("#id_name").fill("王芳" if chinese else "Wang Fang")
    page.locator("#id_phone").fill("13900001111")
    page.locator("#id_address").fill("1 Nanjing Road, Shanghai")
