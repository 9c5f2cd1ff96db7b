"""`check --deploy` and the production start-up refuse an enabled real rail without its credentials (cps.E005) or
pointed at a non-https gateway such as the local fakes (cps.E006); keys come from the environment or from files."""

import pytest
from django.core.checks import run_checks
from django.core.exceptions import ImproperlyConfigured

from config.checks import payment_rail_refusals, refuse_to_start_with_sandbox_settings
from config.settings import env_secret
from shops.payments.fakes import AlipayFake, WeChatPayFake
from tests.config.test_checks import production  # noqa: F401 - the fixture: settings with nothing refused

WECHATPAY_NAMES = (
    "WECHATPAY_MCHID",
    "WECHATPAY_APPID",
    "WECHATPAY_MERCHANT_SERIAL_NO",
    "WECHATPAY_MERCHANT_PRIVATE_KEY",
    "WECHATPAY_APIV3_KEY",
    "WECHATPAY_PLATFORM_PUBLIC_KEY",
    "WECHATPAY_PLATFORM_PUBLIC_KEY_ID",
    "WECHATPAY_CERT_DIR",
)


@pytest.fixture
def unconfigured(production):  # noqa: F811
    for name in (*WECHATPAY_NAMES, "ALIPAY_APP_ID", "ALIPAY_APP_PRIVATE_KEY", "ALIPAY_PUBLIC_KEY"):
        setattr(production, name, "")
    production.WECHATPAY_GATEWAY_URL = "https://api.mch.weixin.qq.com"
    production.ALIPAY_GATEWAY_URL = "https://openapi.alipay.com/gateway.do"
    production.PAYMENT_RAILS = []
    return production


def configure_wechatpay(settings) -> None:
    values = WeChatPayFake().merchant_settings()
    settings.WECHATPAY_MCHID, settings.WECHATPAY_APPID = values["mchid"], values["appid"]
    settings.WECHATPAY_MERCHANT_SERIAL_NO = values["merchant_serial_no"]
    settings.WECHATPAY_MERCHANT_PRIVATE_KEY = values["merchant_private_key"]
    settings.WECHATPAY_APIV3_KEY = values["apiv3_key"]
    settings.WECHATPAY_PLATFORM_PUBLIC_KEY = values["platform_public_key"]
    settings.WECHATPAY_PLATFORM_PUBLIC_KEY_ID = values["platform_public_key_id"]


def test_a_rail_not_enabled_needs_nothing(unconfigured):
    assert payment_rail_refusals() == []


def test_wechatpay_as_the_provider_without_credentials_is_refused_at_deploy_and_start(unconfigured):
    unconfigured.PAYMENT_PROVIDER = "wechatpay"

    [error] = payment_rail_refusals()

    assert error.id == "cps.E005"
    for name in WECHATPAY_NAMES[:5]:
        assert name in error.msg
    assert "WECHATPAY_PLATFORM_PUBLIC_KEY (or WECHATPAY_CERT_DIR)" in error.msg
    assert [m.id for m in run_checks(include_deployment_checks=True) if m.id == "cps.E005"] == ["cps.E005"]
    unconfigured.IS_PRODUCTION = True
    with pytest.raises(ImproperlyConfigured, match=r"cps\.E005"):
        refuse_to_start_with_sandbox_settings()


def test_wechatpay_configured_passes_and_a_half_configured_public_key_does_not(unconfigured):
    unconfigured.PAYMENT_PROVIDER = "wechatpay"
    configure_wechatpay(unconfigured)
    assert payment_rail_refusals() == []

    unconfigured.WECHATPAY_PLATFORM_PUBLIC_KEY_ID = ""
    assert "WECHATPAY_PLATFORM_PUBLIC_KEY_ID" in payment_rail_refusals()[0].msg

    unconfigured.WECHATPAY_PLATFORM_PUBLIC_KEY = ""
    unconfigured.WECHATPAY_CERT_DIR = "/var/lib/shop/wechatpay-certificates"  # platform-certificate mode
    assert payment_rail_refusals() == []

    unconfigured.WECHATPAY_APIV3_KEY = "too short"
    assert "WECHATPAY_APIV3_KEY (32 characters)" in payment_rail_refusals()[0].msg


def test_alipay_listed_in_payment_rails_is_checked_too(unconfigured):
    unconfigured.PAYMENT_RAILS = ["alipay"]
    [error] = payment_rail_refusals()
    assert error.msg == (
        "The alipay payment rail is enabled but not configured: ALIPAY_APP_ID, ALIPAY_APP_PRIVATE_KEY, "
        "ALIPAY_PUBLIC_KEY."
    )

    values = AlipayFake().merchant_settings()
    unconfigured.ALIPAY_APP_ID = values["app_id"]
    unconfigured.ALIPAY_APP_PRIVATE_KEY = values["app_private_key"]
    unconfigured.ALIPAY_PUBLIC_KEY = values["alipay_public_key"]
    assert payment_rail_refusals() == []


def test_a_gateway_that_is_not_https_is_refused_unless_staging(unconfigured):
    unconfigured.PAYMENT_RAILS = ["wechatpay"]
    configure_wechatpay(unconfigured)
    unconfigured.WECHATPAY_GATEWAY_URL = "http://127.0.0.1:8770"

    assert [error.id for error in payment_rail_refusals()] == ["cps.E006"]

    unconfigured.ALLOW_SANDBOX_PROVIDERS = True
    assert payment_rail_refusals() == []


def test_a_key_comes_from_the_variable_or_from_the_file_it_names(monkeypatch, tmp_path):
    key_file = tmp_path / "apiclient_key.pem"
    key_file.write_text("-----BEGIN PRIVATE KEY-----\nabc\n-----END PRIVATE KEY-----\n")
    monkeypatch.setenv("SOME_KEY", "from the variable")
    assert env_secret("SOME_KEY") == "from the variable"

    monkeypatch.setenv("SOME_KEY_FILE", str(key_file))
    assert env_secret("SOME_KEY") == "-----BEGIN PRIVATE KEY-----\nabc\n-----END PRIVATE KEY-----"

    monkeypatch.setenv("SOME_KEY_FILE", str(tmp_path / "missing.pem"))
    with pytest.raises(ImproperlyConfigured, match="SOME_KEY_FILE"):
        env_secret("SOME_KEY")


def test_wechat_oauth_pointed_at_the_fake_is_refused_with_wechatpay(unconfigured):
    unconfigured.PAYMENT_PROVIDER = "wechatpay"
    configure_wechatpay(unconfigured)
    unconfigured.WECHAT_OAUTH_APPID = unconfigured.WECHATPAY_APPID
    unconfigured.WECHAT_OAUTH_SECRET = "s" * 32
    unconfigured.WECHAT_OAUTH_URL = unconfigured.WECHAT_API_URL = "http://127.0.0.1:8770"

    refused = [error.msg for error in payment_rail_refusals()]
    unconfigured.ALLOW_SANDBOX_PROVIDERS = True
    waived = payment_rail_refusals()
    unconfigured.ALLOW_SANDBOX_PROVIDERS = False
    unconfigured.WECHAT_OAUTH_URL, unconfigured.WECHAT_API_URL = (
        "https://open.weixin.qq.com",
        "https://api.weixin.qq.com",
    )

    assert refused == [
        "WECHAT_OAUTH_URL is not an https address: a local fake, not WeChat.",
        "WECHAT_API_URL is not an https address: a local fake, not WeChat.",
    ]
    assert waived == []
    assert payment_rail_refusals() == []
