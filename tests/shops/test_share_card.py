"""The share card of shop and product pages: Open Graph tags, and WeChat's JS-SDK config when a ticket provider is
set (shops/wechat_share.py)."""

import json
import re
from decimal import Decimal

import pytest
from django.core.cache import cache
from django.urls import reverse

from shops import wechat_share
from shops.wechat_share import TicketError, WeChatTicketProvider, jsapi_signature
from tests.factories import ProductFactory, shop_with_products

pytestmark = pytest.mark.django_db

WECHAT_UA = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 MicroMessenger/8.0.47"
FAKE_TICKET = "sM4AOVdWfPE4DxkXGEs8VMCPGGVi4C3VM0P37wVUCFvkVAy_90u5h9nbSlYy3-Sl-HhTdfl2fzFy1AOcHKP7qg"


class FakeTicketProvider:
    """What a configured provider gives: a ticket (the one of WeChat's documented example)."""

    def ticket(self) -> str:
        return FAKE_TICKET


class BrokenTicketProvider:
    def ticket(self) -> str:
        raise TicketError("WeChat /cgi-bin/token refused: 40164 invalid ip")


def meta(page: str, name: str) -> str | None:
    match = re.search(rf'<meta (?:property|name)="{re.escape(name)}" content="([^"]*)">', page)
    return match.group(1) if match else None


def test_signature_matches_wechats_documented_example():
    # JS-SDK 说明文档, 附录1: the worked example of the signature algorithm.
    signature = jsapi_signature(
        ticket=FAKE_TICKET, nonce="Wm3WZYTPz0wzccnW", timestamp=1414587457, url="http://mp.weixin.qq.com?params=value"
    )

    assert signature == "0f9de62fce790f9a083d5c99e95740ceb90c27ed"
    # The #fragment is not signed.
    assert signature == jsapi_signature(
        ticket=FAKE_TICKET, nonce="Wm3WZYTPz0wzccnW", timestamp=1414587457, url="http://mp.weixin.qq.com?params=value#x"
    )


def test_product_page_has_open_graph_tags(client, settings):
    settings.SITE_URL = "https://shop.example.com"
    product = ProductFactory(title="Longjing tea", description="Spring " * 40, price=Decimal("88.00"))
    shop = shop_with_products(product)

    page = client.get(reverse("shops:product_detail", args=[shop.slug, product.pk])).content.decode()

    assert meta(page, "og:title") == "Longjing tea"
    assert meta(page, "og:type") == "product"
    assert meta(page, "product:price:amount") == "88.00"
    assert meta(page, "product:price:currency") == "CNY"
    assert meta(page, "og:url") == f"https://shop.example.com/s/{shop.slug}/p/{product.pk}/"
    description = meta(page, "og:description")
    assert description.startswith("Spring Spring") and description.endswith("…") and len(description) <= 120
    assert "wechat-share" not in page  # no JS-SDK config unless a provider is set


def test_shop_page_has_open_graph_tags_with_the_logo(client, settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path)
    settings.SITE_URL = "https://shop.example.com"
    shop = shop_with_products(ProductFactory(), name="Tea House", description="Teas from Hangzhou")
    shop.logo.name = "shops/logo.png"
    shop.save()

    page = client.get(reverse("shops:shop_home", args=[shop.slug])).content.decode()

    assert meta(page, "og:title") == "Tea House"
    assert meta(page, "og:description") == "Teas from Hangzhou"
    assert meta(page, "og:image") == "https://shop.example.com/media/shops/logo.png"
    assert meta(page, "og:type") == "website"


def test_wechat_config_is_signed_for_the_page_in_wechat(client, settings):
    settings.SITE_URL = "https://shop.example.com"
    settings.WECHAT_JSSDK_TICKET_PROVIDER = "tests.shops.test_share_card.FakeTicketProvider"
    settings.WECHAT_JSSDK_APPID = "wx1234567890abcdef"
    product = ProductFactory(title="Longjing")
    shop = shop_with_products(product)
    url = reverse("shops:product_detail", args=[shop.slug, product.pk])

    response = client.get(url + "?from=timeline", HTTP_USER_AGENT=WECHAT_UA)

    page = response.content.decode()
    data = json.loads(re.search(r'<script id="wechat-share" type="application/json">(.*?)</script>', page).group(1))
    config = data["config"]
    assert config["appId"] == "wx1234567890abcdef"
    assert config["jsApiList"] == ["updateAppMessageShareData", "updateTimelineShareData"]
    assert config["signature"] == jsapi_signature(
        ticket=FAKE_TICKET,
        nonce=config["nonceStr"],
        timestamp=config["timestamp"],
        url=f"https://shop.example.com{url}?from=timeline",
    )
    assert data["share"]["title"] == "Longjing"
    assert "https://res.wx.qq.com" in response["Content-Security-Policy"]
    # Outside WeChat: no config, no WeChat script allowed.
    plain = client.get(url)
    assert "wechat-share" not in plain.content.decode()
    assert "res.wx.qq.com" not in plain["Content-Security-Policy"]


def test_page_renders_without_config_when_the_ticket_cannot_be_had(client, settings):
    settings.WECHAT_JSSDK_TICKET_PROVIDER = "tests.shops.test_share_card.BrokenTicketProvider"
    shop = shop_with_products(ProductFactory())

    response = client.get(reverse("shops:shop_home", args=[shop.slug]), HTTP_USER_AGENT=WECHAT_UA)

    assert response.status_code == 200
    assert "wechat-share" not in response.content.decode()


class FakeWeChatApi:
    """WeChat's /cgi-bin/token and /cgi-bin/ticket/getticket, as a requests session the provider is given."""

    def __init__(self, *, token_error: int = 0):
        self.calls: list[tuple[str, dict]] = []
        self.token_error = token_error

    def get(self, url, params=None, timeout=None):
        self.calls.append((url, dict(params)))
        if url.endswith("/cgi-bin/token"):
            if self.token_error:
                return FakeResponse({"errcode": self.token_error, "errmsg": "invalid ip"})
            return FakeResponse({"access_token": "ACCESS", "expires_in": 7200})
        assert params == {"access_token": "ACCESS", "type": "jsapi"}
        return FakeResponse({"errcode": 0, "errmsg": "ok", "ticket": FAKE_TICKET, "expires_in": 7200})


class FakeResponse:
    def __init__(self, body):
        self.body = body

    def json(self):
        return self.body


def test_wechat_provider_fetches_token_then_ticket_and_caches_both(settings):
    cache.clear()
    settings.WECHAT_API_URL = "https://api.weixin.example"
    settings.WECHAT_JSSDK_APPID, settings.WECHAT_JSSDK_SECRET = "wxapp", "secret"
    api = FakeWeChatApi()
    provider = WeChatTicketProvider(session=api)

    assert provider.ticket() == FAKE_TICKET
    assert provider.ticket() == FAKE_TICKET

    assert [url for url, _ in api.calls] == [
        "https://api.weixin.example/cgi-bin/token",
        "https://api.weixin.example/cgi-bin/ticket/getticket",
    ]
    assert api.calls[0][1] == {"grant_type": "client_credential", "appid": "wxapp", "secret": "secret"}


def test_wechat_provider_refusal_is_a_ticket_error_without_the_secret(settings):
    cache.clear()
    settings.WECHAT_JSSDK_APPID, settings.WECHAT_JSSDK_SECRET = "wxapp", "s3cret-value"
    provider = WeChatTicketProvider(session=FakeWeChatApi(token_error=40164))

    with pytest.raises(TicketError) as error:
        provider.ticket()

    assert "40164" in str(error.value)
    assert "s3cret-value" not in str(error.value)


def test_provider_setting(settings):
    settings.WECHAT_JSSDK_TICKET_PROVIDER = ""
    assert wechat_share.ticket_provider() is None
    settings.WECHAT_JSSDK_TICKET_PROVIDER = "wechat"
    assert isinstance(wechat_share.ticket_provider(), WeChatTicketProvider)
