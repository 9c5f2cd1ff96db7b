"""The checkout's choice of payment methods for the buyer's browser (shops/payments/methods.py): pure functions of
the User-Agent and the settings, so tested without a browser or a gateway."""

import pytest

from shops.payments.methods import browser_kind, offered_providers, payment_methods

WECHAT_ANDROID = (
    "Mozilla/5.0 (Linux; Android 14; V2309A Build/UP1A.231005.007; wv) AppleWebKit/537.36 (KHTML, like Gecko)"
    " Version/4.0 Chrome/122.0.6261.120 Mobile Safari/537.36 XWEB/1220099 MMWEBSDK/20240404 MMWEBID/2307"
    " MicroMessenger/8.0.49.2600(0x28003133) WeChat/arm64 Weixin NetType/WIFI Language/zh_CN ABI/arm64"
)
WECHAT_IPHONE = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko)"
    " Mobile/15E148 MicroMessenger/8.0.48(0x18003029) NetType/WIFI Language/zh_CN"
)
WECHAT_WINDOWS = (
    "Mozilla/5.0 (Windows NT 10.0; WOW64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/81.0.4044.138 Safari/537.36"
    " NetType/WIFI MicroMessenger/7.0.20.1781(0x6700143B) WindowsWechat(0x63090a13) XWEB/9129 Flue"
)
ALIPAY_APP = (
    "Mozilla/5.0 (Linux; U; Android 13; zh-CN; PGT-AN10 Build/HONORPGT-AN10) AppleWebKit/537.36 (KHTML, like Gecko)"
    " Version/4.0 Chrome/69.0.3497.100 UWS/3.22.2.59 Mobile Safari/537.36 UCBS/3.22.2.59_230817200245"
    " NebulaSDK/1.8.100112 Nebula AlipayDefined(nt:WIFI,ws:384|784|2.8125) AliApp(AP/10.5.30.8000)"
    " AlipayClient/10.5.30.8000 Language/zh-Hans useStatusBar/true isConcaveScreen/true Region/CNAriver/1.0.0"
)
IPHONE_SAFARI = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko)"
    " Version/17.5 Mobile/15E148 Safari/604.1"
)
ANDROID_CHROME = (
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Mobile"
    " Safari/537.36"
)
HARMONY_BROWSER = (
    "Mozilla/5.0 (Phone; OpenHarmony 4.1) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/114.0.0.0 Safari/537.36"
    " ArkWeb/4.1.6.1 Mobile HuaweiBrowser/5.0.4.300"
)
IPAD = (
    "Mozilla/5.0 (iPad; CPU OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5"
    " Mobile/15E148 Safari/604.1"
)
DESKTOP_CHROME = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36"
)
MAC_SAFARI = (
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5"
    " Safari/605.1.15"
)
LINUX_FIREFOX = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"


@pytest.mark.parametrize(
    ("user_agent", "kind"),
    [
        (WECHAT_ANDROID, "wechat"),
        (WECHAT_IPHONE, "wechat"),
        (WECHAT_WINDOWS, "wechat"),  # WeChat for Windows' browser runs JSAPI too
        (ALIPAY_APP, "alipay"),
        (IPHONE_SAFARI, "phone"),
        (ANDROID_CHROME, "phone"),
        (HARMONY_BROWSER, "phone"),
        (IPAD, "phone"),
        (DESKTOP_CHROME, "desktop"),
        (MAC_SAFARI, "desktop"),
        (LINUX_FIREFOX, "desktop"),
        ("", "desktop"),
        ("curl/8.5.0", "desktop"),
    ],
)
def test_the_kind_of_browser_comes_from_its_user_agent(user_agent, kind):
    assert browser_kind(user_agent) == kind


@pytest.fixture
def rails(settings):
    """Both real rails configured (the values only need to be there), the OAuth too; the sandbox is not offered."""
    settings.PAYMENT_PROVIDER = "wechatpay"
    settings.PAYMENT_RAILS = ["alipay"]
    for name in ("MCHID", "APPID", "MERCHANT_SERIAL_NO", "MERCHANT_PRIVATE_KEY", "PLATFORM_PUBLIC_KEY",
                 "PLATFORM_PUBLIC_KEY_ID"):  # fmt: skip
        setattr(settings, f"WECHATPAY_{name}", "x")
    settings.WECHATPAY_APIV3_KEY = "k" * 32
    settings.ALIPAY_APP_ID, settings.ALIPAY_APP_PRIVATE_KEY, settings.ALIPAY_PUBLIC_KEY = "2021", "x", "x"
    settings.WECHAT_OAUTH_APPID, settings.WECHAT_OAUTH_SECRET = "x", "s" * 32
    return settings


def keys(user_agent: str) -> list[str]:
    return [method.key for method in payment_methods(user_agent)]


@pytest.mark.parametrize(
    ("user_agent", "methods"),
    [
        (WECHAT_ANDROID, ["wechatpay:jsapi"]),  # WeChat blocks Alipay's pages
        (WECHAT_IPHONE, ["wechatpay:jsapi"]),
        (ALIPAY_APP, ["alipay:wap"]),
        (IPHONE_SAFARI, ["wechatpay:h5", "alipay:wap"]),
        (ANDROID_CHROME, ["wechatpay:h5", "alipay:wap"]),
        (DESKTOP_CHROME, ["wechatpay:native", "alipay:page"]),
        (MAC_SAFARI, ["wechatpay:native", "alipay:page"]),
    ],
)
def test_each_browser_is_offered_the_methods_that_work_in_it(rails, user_agent, methods):
    assert keys(user_agent) == methods


def test_by_default_only_the_sandbox_is_offered_in_every_browser(settings):
    assert settings.PAYMENT_PROVIDER == "sandbox" and settings.PAYMENT_RAILS == []

    for user_agent in (WECHAT_ANDROID, ALIPAY_APP, IPHONE_SAFARI, DESKTOP_CHROME):
        assert keys(user_agent) == ["sandbox:hosted"]


def test_the_providers_come_in_the_order_of_the_settings(rails):
    rails.PAYMENT_PROVIDER, rails.PAYMENT_RAILS = "alipay", ["wechatpay", "alipay", "sandbox"]

    assert offered_providers() == ["alipay", "wechatpay", "sandbox"]
    assert keys(DESKTOP_CHROME) == ["alipay:page", "wechatpay:native", "sandbox:hosted"]


def test_a_rail_with_missing_settings_is_not_offered(rails):
    rails.WECHATPAY_APIV3_KEY = ""

    assert offered_providers() == ["alipay"]
    assert keys(DESKTOP_CHROME) == ["alipay:page"]
    assert keys(WECHAT_IPHONE) == []


def test_inside_wechat_jsapi_needs_the_oauth_settings(rails):
    rails.WECHAT_OAUTH_SECRET = ""

    assert keys(WECHAT_ANDROID) == []
    assert keys(IPHONE_SAFARI) == ["wechatpay:h5", "alipay:wap"]  # outside WeChat the secret is not needed


def test_an_unknown_provider_in_the_settings_is_ignored(rails):
    rails.PAYMENT_RAILS = ["paypal", "alipay"]

    assert offered_providers() == ["wechatpay", "alipay"]


def test_methods_have_a_label_and_a_hint(rails):
    native, page = payment_methods(DESKTOP_CHROME)

    assert (native.label, native.hint) == ("WeChat Pay", "Scan a QR code with WeChat.")
    assert (page.label, page.hint) == ("Alipay", "Pay on Alipay's checkout page.")
