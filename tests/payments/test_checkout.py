"""The buyer's way through checkout with the real rails, against the gateway fakes (no browser: the whole path in
Chromium is tests/e2e/test_payment_methods_browser.py).

The checkout offers the methods that fit the browser; a payment that sends the browser to another site goes through
our "paying" page (a form's answer may not redirect elsewhere under the CSP); a Native QR code is drawn on that page;
inside WeChat the buyer's openid comes from WeChat's silent OAuth first. The order page and its state endpoint ask
the provider when a notification is late; paying again or cancelling closes the earlier payment at the provider, and
finds it paid if the buyer did pay.
"""

import logging
import time
from urllib.parse import parse_qsl, urlsplit

import pytest
from django.core.cache import cache
from django.test import Client
from django.urls import reverse

from shops import checkout as checkout_session
from shops.models import Order, Payment
from shops.payments.wechatpay import WeChatPayProvider
from tests.payments.conftest import http
from tests.payments.test_methods import ANDROID_CHROME, DESKTOP_CHROME, WECHAT_ANDROID

CHECKOUT = {"name": "Wang Fang", "phone": "13900001111", "email": "", "address": "1 Nanjing Road"}
Status = Order.Status


@pytest.fixture
def rails(settings, wechat, alipay, oauth_fake, live_server):
    """Both rails offered, WeChat's OAuth configured; the fakes' notifications held until a test releases them."""
    settings.PAYMENT_PROVIDER = "wechatpay"
    settings.PAYMENT_RAILS = ["alipay"]
    settings.PAYMENTS_QUERY_INTERVAL = 60
    return settings


def browser(user_agent: str) -> Client:
    return Client(headers={"User-Agent": user_agent})


def checkout(client: Client, product, **data):
    """Put 2 of `product` in the cart and check out; the response to the checkout form."""
    shop = product.listings.first().shop
    client.post(reverse("shops:product_detail", args=[shop.slug, product.pk]), {"quantity": 2})
    return client.post(reverse("shops:checkout", args=[shop.slug]), {**CHECKOUT, **data})


def placed(before: Order) -> Order:
    return Order.objects.exclude(pk=before.pk).get()


def paying_url(order: Order) -> str:
    return reverse("shops:order_paying", args=[order.number])


def order_url(order: Order) -> str:
    return reverse("shops:order_detail", args=[order.number])


def test_the_checkout_offers_the_methods_that_fit_the_browser(rails, order, product):
    shop = product.listings.first().shop
    offered = {}
    for name, user_agent in (("desktop", DESKTOP_CHROME), ("phone", ANDROID_CHROME), ("wechat", WECHAT_ANDROID)):
        client = browser(user_agent)
        client.post(reverse("shops:product_detail", args=[shop.slug, product.pk]), {"quantity": 1})
        html = client.get(reverse("shops:checkout", args=[shop.slug])).content.decode()
        offered[name] = [key for key in ("wechatpay:native", "alipay:page", "wechatpay:h5", "alipay:wap",
                                         "wechatpay:jsapi") if f'value="{key}"' in html]  # fmt: skip

    assert offered == {
        "desktop": ["wechatpay:native", "alipay:page"],
        "phone": ["wechatpay:h5", "alipay:wap"],
        "wechat": [],  # one method: nothing to choose, "Place order and pay" starts it
    }


def test_the_sandbox_alone_goes_straight_to_its_page_as_before(client, order, product):
    response = checkout(client, product)

    payment = Payment.objects.get(order=placed(order))
    assert response["Location"] == reverse("shops:sandbox_pay", args=[payment.reference])
    assert (payment.provider, payment.method) == ("sandbox", "hosted")


def test_desktop_alipay_goes_to_the_cashier_through_a_page_of_ours(rails, order, product, alipay):
    client = browser(DESKTOP_CHROME)

    response = checkout(client, product, method="alipay:page")
    new_order = placed(order)
    page = client.get(response["Location"])
    again = client.get(paying_url(new_order))

    payment = Payment.objects.get(order=new_order)
    assert response["Location"] == paying_url(new_order)
    assert (payment.provider, payment.method) == ("alipay", "page")
    html = page.content.decode()
    assert 'id="paying-forward"' in html and "Continue to Alipay" in html
    cashier = html.split('id="paying-forward" href="', 1)[1].split('"', 1)[0].replace("&amp;", "&")
    assert cashier.startswith(alipay.gateway_url + "?")
    assert dict(parse_qsl(urlsplit(cashier).query))["method"] == "alipay.trade.page.pay"
    assert page["Referrer-Policy"] == "strict-origin-when-cross-origin"
    assert again["Location"] == order_url(new_order)  # shown once: the back button does not send the buyer away
    status, cashier_page, _location = http(cashier)
    assert status == 200 and f"¥{new_order.total}" in cashier_page.decode()


def test_desktop_wechat_pay_draws_the_qr_code_on_our_page(rails, order, product, wechat):
    client = browser(DESKTOP_CHROME)

    response = checkout(client, product, method="wechatpay:native")
    new_order = placed(order)
    first, reload = client.get(response["Location"]), client.get(response["Location"])

    payment = Payment.objects.get(order=new_order)
    assert (payment.provider, payment.method) == ("wechatpay", "native")
    assert wechat.trade(payment.reference).trade_type == "NATIVE"
    for page in (first, reload):  # the QR code stays until the payment is settled
        html = page.content.decode()
        assert 'id="payment-qr" src="data:image/svg+xml;charset=utf-8,' in html
        assert f'data-state-url="{reverse("shops:order_state", args=[new_order.number])}"' in html
    assert checkout_session.step(client.session, new_order.number)["qr_text"].startswith("weixin://wxpay/bizpayurl")
    assert "Show the QR code again" in client.get(order_url(new_order)).content.decode()

    wechat.buyer_pays(payment.reference)
    assert wechat.outbox.release() == [True]
    assert client.get(response["Location"])["Location"] == order_url(new_order)  # paid: no QR code any more


def test_phone_wechat_h5_sends_the_buyer_to_wechat_with_a_referer(rails, order, product, wechat, live_server):
    client = browser(ANDROID_CHROME)
    wechat.h5_domains = {urlsplit(live_server.url).hostname}

    response = checkout(client, product, method="wechatpay:h5")
    page = client.get(response["Location"])

    payment = Payment.objects.get(order=placed(order))
    html = page.content.decode()
    h5_url = html.split('id="paying-forward" href="', 1)[1].split('"', 1)[0].replace("&amp;", "&")
    assert h5_url.startswith(wechat.base_url + "/fake/wechatpay/h5?prepay_id=")
    assert dict(parse_qsl(urlsplit(h5_url).query))["redirect_url"] == live_server.url + order_url(payment.order)
    assert page["Referrer-Policy"] == "strict-origin-when-cross-origin"
    assert http(h5_url, headers={"Referer": live_server.url + "/"})[0] == 200
    assert http(h5_url)[0] == 400  # WeChat's H5 page refuses a visit without the shop's Referer


def test_a_provider_that_cannot_be_reached_leaves_the_order_to_pay_again(rails, order, product):
    rails.WECHATPAY_GATEWAY_URL = "http://127.0.0.1:9"  # nothing listens
    rails.PAYMENTS_PROVIDER_TIMEOUT = 1
    client = browser(DESKTOP_CHROME)

    response = checkout(client, product, method="wechatpay:native")

    new_order = placed(order)
    assert response["Location"] == order_url(new_order)
    assert new_order.status == Status.PENDING_PAYMENT
    assert not Payment.objects.filter(order=new_order).exists()
    html = client.get(response["Location"]).content.decode()
    assert "The payment could not be started. Please try again." in html
    assert 'name="method" value="alipay:page"' in html  # another way to pay is offered


def test_a_method_that_does_not_fit_the_browser_is_refused(rails, order, product):
    client = browser(ANDROID_CHROME)

    response = checkout(client, product, method="wechatpay:native")

    assert response.status_code == 400
    assert "Choose how to pay." in response.content.decode()
    assert Order.objects.count() == 1


def test_paying_again_another_way_closes_the_first_payment_at_the_provider(rails, order, product, wechat):
    client = browser(DESKTOP_CHROME)
    checkout(client, product, method="wechatpay:native")
    new_order = placed(order)
    first = Payment.objects.get(order=new_order)

    response = client.post(reverse("shops:order_pay", args=[new_order.number]), {"method": "alipay:page"})

    first.refresh_from_db()
    second = Payment.objects.exclude(pk=first.pk).get(order=new_order)
    assert wechat.trade(first.reference).trade_state == "CLOSED"
    assert first.status == Payment.Status.CLOSED
    assert (second.provider, second.status) == ("alipay", Payment.Status.PENDING)
    assert response["Location"] == paying_url(new_order)


def test_paying_again_finds_the_first_payment_paid_and_opens_no_other(rails, order, product, wechat):
    client = browser(DESKTOP_CHROME)
    checkout(client, product, method="wechatpay:native")
    new_order = placed(order)
    first = Payment.objects.get(order=new_order)
    wechat.buyer_pays(first.reference)  # its notification is held: lost, so far

    response = client.post(reverse("shops:order_pay", args=[new_order.number]), {"method": "alipay:page"})

    new_order.refresh_from_db()
    assert new_order.status == Status.PAID
    assert list(Payment.objects.filter(order=new_order).values_list("status", flat=True)) == ["succeeded"]
    assert response["Location"] == order_url(new_order)
    assert "Your payment is confirmed" in client.get(response["Location"]).content.decode()


def test_the_buyer_cancelling_closes_the_payment_at_the_provider(rails, order, product, wechat):
    client = browser(DESKTOP_CHROME)
    checkout(client, product, method="wechatpay:native")
    new_order = placed(order)
    payment = Payment.objects.get(order=new_order)

    response = client.post(reverse("shops:order_cancel", args=[new_order.number]), follow=True)

    new_order.refresh_from_db()
    payment.refresh_from_db()
    assert new_order.status == Status.CANCELLED
    assert payment.status == Payment.Status.CLOSED
    assert wechat.trade(payment.reference).trade_state == "CLOSED"
    assert "Your order is cancelled." in response.content.decode()
    with pytest.raises(Exception, match="不能支付"):
        wechat.buyer_pays(payment.reference)  # the QR code no longer pays


def test_the_buyer_cancelling_an_order_they_had_paid_gets_it_paid(rails, order, product, alipay):
    client = browser(DESKTOP_CHROME)
    checkout(client, product, method="alipay:page")
    new_order = placed(order)
    payment = Payment.objects.get(order=new_order)
    http(checkout_session_url(client, new_order))  # the buyer opens Alipay's cashier ...
    alipay.buyer_pays(payment.reference)  # ... and pays; the notification is held

    response = client.post(reverse("shops:order_cancel", args=[new_order.number]), follow=True)

    new_order.refresh_from_db()
    assert new_order.status == Status.PAID
    html = response.content.decode()
    assert "Your payment had already arrived, so the order is not cancelled: it is paid." in html
    assert "Your payment is confirmed" in html


def checkout_session_url(client: Client, order: Order) -> str:
    """The provider's URL the paying page sends the browser to."""
    html = client.get(paying_url(order)).content.decode()
    return html.split('id="paying-forward" href="', 1)[1].split('"', 1)[0].replace("&amp;", "&")


def test_the_buyer_cannot_cancel_while_the_provider_cannot_be_reached(rails, order, product):
    client = browser(DESKTOP_CHROME)
    checkout(client, product, method="wechatpay:native")
    new_order = placed(order)
    rails.WECHATPAY_GATEWAY_URL = "http://127.0.0.1:9"
    rails.PAYMENTS_PROVIDER_TIMEOUT = 1

    response = client.post(reverse("shops:order_cancel", args=[new_order.number]), follow=True)

    new_order.refresh_from_db()
    assert new_order.status == Status.PENDING_PAYMENT
    assert Payment.objects.get(order=new_order).status == Payment.Status.PENDING
    assert "We could not reach the payment provider to stop your payment" in response.content.decode()


def test_the_state_endpoint_repairs_a_lost_notification_by_a_query_once_per_interval(
    rails, order, product, wechat, monkeypatch
):
    client = browser(DESKTOP_CHROME)
    checkout(client, product, method="wechatpay:native")
    new_order = placed(order)
    state_url = reverse("shops:order_state", args=[new_order.number])
    asked = []
    monkeypatch.setattr("shops.payments.wechatpay.WeChatPayProvider.query", counting(asked))

    waiting = client.get(state_url).json()
    soon_after = client.get(state_url).json()
    wechat.buyer_pays(Payment.objects.get(order=new_order).reference)
    wechat.outbox.drop()  # the notification never comes
    still = client.get(state_url).json()
    cache.delete(f"payment-sync:{Payment.objects.get(order=new_order).pk}")  # the interval has passed
    paid = client.get(state_url).json()

    assert waiting == soon_after == still == {"code": "awaiting_confirmation", "status": "pending_payment"}
    assert paid == {"code": "paid", "status": "paid"}
    assert len(asked) == 2


def counting(asked: list):
    original = WeChatPayProvider.query

    def query(self, payment):
        asked.append(payment.reference)
        return original(self, payment)

    return query


def test_a_payment_closed_at_the_provider_is_shown_closed_with_pay_again(rails, order, product, wechat):
    client = browser(DESKTOP_CHROME)
    checkout(client, product, method="wechatpay:native")
    new_order = placed(order)
    payment = Payment.objects.get(order=new_order)
    wechat.trade(payment.reference).trade_state = "CLOSED"  # its time_expire passed at WeChat Pay

    html = client.get(order_url(new_order)).content.decode()

    payment.refresh_from_db()
    assert payment.status == Payment.Status.CLOSED
    assert '<strong id="order-status">Payment closed</strong>' in html
    assert "Your payment was closed before it was paid" in html
    assert "Pay again with" in html and ">WeChat Pay</button>" in html and ">Alipay</button>" in html
    assert '<meta http-equiv="refresh"' not in html


def test_the_state_endpoint_is_the_buyers_only(rails, order):
    assert Client().get(reverse("shops:order_state", args=[order.number])).status_code == 404


# --- inside WeChat: the openid from WeChat's silent OAuth, then JSAPI ----------------------------------------------


def wechat_oauth_round_trip(client: Client, order: Order) -> str:
    """What WeChat's browser does on the paying page: open the authorize URL; the address WeChat sends it back to."""
    html = client.get(paying_url(order)).content.decode()
    authorize = html.split('id="paying-forward" href="', 1)[1].split('"', 1)[0].replace("&amp;", "&")
    status, _body, back = http(authorize, headers={"User-Agent": WECHAT_ANDROID})
    assert status == 302, _body
    return back


def test_inside_wechat_the_openid_comes_from_oauth_then_jsapi_pays(
    rails, order, product, wechat, oauth_fake, live_server, caplog
):
    caplog.set_level(logging.INFO)
    client = browser(WECHAT_ANDROID)

    response = checkout(client, product)  # the only method in WeChat: no choice to make
    new_order = placed(order)
    back = wechat_oauth_round_trip(client, new_order)
    assert back.startswith(live_server.url + reverse("shops:wechat_oauth_return") + "?code=")
    returned = client.get(back.removeprefix(live_server.url))
    jsapi_page = client.get(returned["Location"]).content.decode()

    assert response["Location"] == paying_url(new_order)
    assert returned["Location"] == paying_url(new_order)
    payment = Payment.objects.get(order=new_order)
    assert (payment.provider, payment.method) == ("wechatpay", "jsapi")
    assert wechat.trade(payment.reference).openid == oauth_fake.openid_for()
    assert client.session[checkout_session.OPENID_SESSION_KEY] == oauth_fake.openid_for()
    params = checkout_session.step(client.session, new_order.number)["jsapi_params"]
    assert '<script id="jsapi-params" type="application/json">' in jsapi_page
    wechat.buyer_pays_jsapi(params, openid=oauth_fake.openid_for())
    assert wechat.outbox.release() == [True]
    new_order.refresh_from_db()
    assert new_order.status == Status.PAID
    logs = "\n".join(record.getMessage() for record in caplog.records)
    assert oauth_fake.openid_for() not in logs
    assert oauth_fake.openid_for()[:4] + "…" in logs
    assert oauth_fake.secret not in logs


def test_paying_again_inside_wechat_reuses_the_openid(rails, order, product, wechat, oauth_fake, live_server):
    client = browser(WECHAT_ANDROID)
    checkout(client, product)
    new_order = placed(order)
    client.get(wechat_oauth_round_trip(client, new_order).removeprefix(live_server.url))

    again = client.post(reverse("shops:order_pay", args=[new_order.number]), {"method": "wechatpay:jsapi"})

    assert again["Location"] == paying_url(new_order)
    assert checkout_session.step(client.session, new_order.number)["kind"] == "jsapi"
    assert len(oauth_fake.codes) == 1  # WeChat was not asked again
    assert list(Payment.objects.filter(order=new_order).values_list("status", flat=True)) == ["pending", "closed"]


def test_an_oauth_return_with_another_state_is_refused_and_no_code_exchanged(
    rails, order, product, oauth_fake, live_server
):
    client = browser(WECHAT_ANDROID)
    checkout(client, product)
    new_order = placed(order)
    back = wechat_oauth_round_trip(client, new_order)
    forged = back.removeprefix(live_server.url).split("&state=")[0] + "&state=0123456789abcdef"

    response = client.get(forged)

    assert response.status_code == 400
    assert "WeChat sign-in not accepted" in response.content.decode()
    assert not any(code.used for code in oauth_fake.codes.values())
    assert not Payment.objects.filter(order=new_order).exists()
    assert checkout_session.OPENID_SESSION_KEY not in client.session


def test_an_oauth_return_from_another_browser_is_refused(rails, order, product, oauth_fake, live_server):
    buyer = browser(WECHAT_ANDROID)
    checkout(buyer, product)
    back = wechat_oauth_round_trip(buyer, placed(order))

    response = browser(WECHAT_ANDROID).get(back.removeprefix(live_server.url))  # the link, sent to someone else

    assert response.status_code == 400
    assert not any(code.used for code in oauth_fake.codes.values())


def test_an_oauth_return_works_once(rails, order, product, oauth_fake, live_server):
    client = browser(WECHAT_ANDROID)
    checkout(client, product)
    new_order = placed(order)
    back = wechat_oauth_round_trip(client, new_order).removeprefix(live_server.url)

    first, replay = client.get(back), client.get(back)

    assert first["Location"] == paying_url(new_order)
    assert replay.status_code == 400
    assert Payment.objects.filter(order=new_order).count() == 1


def test_an_expired_oauth_code_says_so_and_leaves_the_order_to_pay_again(
    rails, order, product, oauth_fake, live_server
):
    client = browser(WECHAT_ANDROID)
    checkout(client, product)
    new_order = placed(order)
    back = wechat_oauth_round_trip(client, new_order).removeprefix(live_server.url)
    oauth_fake.clock = lambda: time.time() + 301  # the buyer came back after 5 minutes

    response = client.get(back, follow=True)

    assert response.redirect_chain == [(order_url(new_order), 302)]
    assert "WeChat could not tell us who you are, so WeChat Pay cannot start. Please try again." in (
        response.content.decode()
    )
    assert oauth_fake.refused == [("/sns/oauth2/access_token", 42003)]
    assert not Payment.objects.filter(order=new_order).exists()
    assert checkout_session.OPENID_SESSION_KEY not in client.session


def test_inside_wechat_without_oauth_settings_the_buyer_is_told_to_open_a_browser(rails, order, product):
    rails.WECHAT_OAUTH_SECRET = ""
    client = browser(WECHAT_ANDROID)

    shop = product.listings.first().shop
    client.post(reverse("shops:product_detail", args=[shop.slug, product.pk]), {"quantity": 1})
    page = client.get(reverse("shops:checkout", args=[shop.slug]))
    response = checkout(client, product)

    assert "open this page in your browser" in page.content.decode()
    new_order = placed(order)
    assert response["Location"] == order_url(new_order)
    assert "open this page in your browser" in client.get(response["Location"]).content.decode()
    assert not Payment.objects.filter(order=new_order).exists()
