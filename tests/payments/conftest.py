"""The real rails' adapters, through their SDKs, against the local gateway fakes (shops/payments/fakes).

Each test gets its own fakes (their RSA-2048 keys made once per test process: gateway_keys in tests/conftest.py),
served on a free loopback port; the settings point the providers at them. Notifications are held by default
(`outbox.mode = "hold"`) and sent by the test over HTTP to the live server, so a test says exactly when each
arrives: late, twice, out of order, or never.
"""

import urllib.error
import urllib.request
from decimal import Decimal

import pytest
from django.urls import reverse

from shops.models import Order, OrderEvent, Payment, Product, Refund, WebhookEvent
from shops.payments.base import Buyer
from shops.payments.fakes import AlipayFake, PaymentGatewaysFake, WeChatPayFake
from shops.services import payment_start_method
from tests.factories import ProductFactory, place_order, shop_with_products


@pytest.fixture
def gateways(gateway_keys):
    wechatpay = WeChatPayFake(merchant_keys=gateway_keys["merchant"], platform_keys=gateway_keys["platform"])
    alipay = AlipayFake(
        app_keys=gateway_keys["app"], alipay_keys=gateway_keys["alipay"], root_keys=gateway_keys["root"]
    )
    with PaymentGatewaysFake(wechatpay=wechatpay, alipay=alipay) as fake:
        fake.wechatpay.outbox.mode = fake.alipay.outbox.mode = "hold"
        fake.wechatpay.auto_complete_refunds = False
        yield fake


@pytest.fixture
def wechat_settings(settings, gateways):
    """The WECHATPAY_* settings of the fake merchant (public key mode)."""
    values = gateways.wechatpay.merchant_settings()
    settings.WECHATPAY_GATEWAY_URL = gateways.url
    settings.WECHATPAY_MCHID = values["mchid"]
    settings.WECHATPAY_APPID = values["appid"]
    settings.WECHATPAY_MERCHANT_SERIAL_NO = values["merchant_serial_no"]
    settings.WECHATPAY_MERCHANT_PRIVATE_KEY = values["merchant_private_key"]
    settings.WECHATPAY_APIV3_KEY = values["apiv3_key"]
    settings.WECHATPAY_PLATFORM_PUBLIC_KEY = values.get("platform_public_key", "")
    settings.WECHATPAY_PLATFORM_PUBLIC_KEY_ID = values.get("platform_public_key_id", "")
    settings.WECHATPAY_CERT_DIR = ""
    settings.PAYMENTS_PROVIDER_TIMEOUT = 5
    return settings


@pytest.fixture
def wechat(wechat_settings, gateways):
    return gateways.wechatpay


@pytest.fixture
def alipay(settings, gateways):
    values = gateways.alipay.merchant_settings()
    settings.ALIPAY_GATEWAY_URL = gateways.alipay.gateway_url
    settings.ALIPAY_APP_ID = values["app_id"]
    settings.ALIPAY_APP_PRIVATE_KEY = values["app_private_key"]
    settings.ALIPAY_PUBLIC_KEY = values["alipay_public_key"]
    settings.PAYMENTS_PROVIDER_TIMEOUT = 5
    return gateways.alipay


@pytest.fixture
def product(transactional_db):
    return ProductFactory(price=Decimal("19.90"), stock=10)


@pytest.fixture
def order(product) -> Order:
    """An unpaid order of 2 × 19.90 and 1 × 5.00 (44.80)."""
    other = ProductFactory(price=Decimal("5.00"), stock=10)
    return place_order(shop_with_products(product, other), {product: 2, other: 1})


@pytest.fixture
def open_payment(live_server):
    """open_payment(order, provider, method, **buyer) -> (payment, action), as the checkout opens it."""

    def open_payment(order: Order, provider: str, method: str, **buyer) -> tuple[Payment, object]:
        return payment_start_method(
            order=order,
            provider_name=provider,
            method=method,
            buyer=Buyer(**buyer),
            notify_url=live_server.url + reverse("shops:payment_webhook", args=[provider]),
            return_url=live_server.url + reverse("shops:order_detail", args=[order.number]),
        )

    return open_payment


def snapshot(order: Order) -> dict:
    """Everything a refused or repeated notification must leave as it was."""
    order = Order.objects.get(pk=order.pk)
    return {
        "order": (order.status, order.paid_at, order.cancelled_at, order.refunded_total),
        "payments": list(Payment.objects.filter(order=order).values_list("pk", "status", "completed_at")),
        "refunds": list(Refund.objects.filter(order=order).values_list("pk", "status", "amount")),
        "events": list(OrderEvent.objects.filter(order=order).values_list("pk", "kind", "to_status")),
        "webhook_events": WebhookEvent.objects.count(),
        "stock": dict(Product.objects.values_list("pk", "stock")),
    }


def paid_transitions(order: Order) -> int:
    return OrderEvent.objects.filter(order=order, kind=OrderEvent.Kind.STATUS, to_status=Order.Status.PAID).count()


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, req, fp, code, msg, headers, newurl):
        return None


def http(url: str, *, data: bytes | None = None, headers: dict | None = None) -> tuple[int, bytes, str]:
    """One request as a browser or a gateway sends it, redirects not followed: (status, body, Location)."""
    request = urllib.request.Request(url, data=data, headers=headers or {})  # noqa: S310 - loopback test servers
    opener = urllib.request.build_opener(_NoRedirect)
    try:
        with opener.open(request, timeout=5) as response:
            return response.status, response.read(), response.headers.get("Location", "")
    except urllib.error.HTTPError as error:
        return error.code, error.read(), error.headers.get("Location", "")


def post_webhook(live_server, provider: str, body: bytes, headers: dict) -> tuple[int, bytes]:
    status, answer, _location = http(
        live_server.url + reverse("shops:payment_webhook", args=[provider]), data=body, headers=headers
    )
    return status, answer


@pytest.fixture
def oauth_fake(settings, gateways):
    """WeChat's web OAuth of the fake merchant's official account (the WECHAT_OAUTH_* and WECHAT_API_URL settings)."""
    settings.WECHAT_OAUTH_APPID = gateways.wechatpay.appid
    settings.WECHAT_OAUTH_SECRET = gateways.wechatpay.oauth.secret
    settings.WECHAT_OAUTH_URL = gateways.url
    settings.WECHAT_API_URL = gateways.url
    settings.PAYMENTS_PROVIDER_TIMEOUT = 5
    return gateways.wechatpay.oauth
