"""`check --deploy` and the production start-up refuse an enabled payout rail without its credentials (cps.E005) or
on a non-https gateway (cps.E006), and a PAYOUT_RAILS entry that names no rail (cps.E007); binding a WeChat payee."""

import pytest
from django.core.exceptions import ImproperlyConfigured

from config.checks import payment_rail_refusals, refuse_to_start_with_sandbox_settings
from payouts.models import PayoutAccount
from payouts.services import PayoutError, payout_account_bind_wechat, payout_account_save
from shops.payments.fakes import AlipayFake
from tests.config.test_checks import production  # noqa: F401 - the fixtures
from tests.factories import MemberFactory
from tests.payments.test_deploy_checks import configure_wechatpay, unconfigured  # noqa: F401

ALIPAY_TRANSFER_NAMES = (
    "ALIPAY_TRANSFER_APP_ID",
    "ALIPAY_TRANSFER_APP_PRIVATE_KEY",
    "ALIPAY_APP_CERT",
    "ALIPAY_PUBLIC_CERT",
    "ALIPAY_ROOT_CERT",
)


@pytest.fixture
def payouts_unconfigured(unconfigured):  # noqa: F811
    for name in ALIPAY_TRANSFER_NAMES:
        setattr(unconfigured, name, "")
    unconfigured.PAYOUT_RAILS = []
    return unconfigured


def test_payout_rails_not_enabled_need_nothing(payouts_unconfigured):
    payouts_unconfigured.PAYOUT_PROVIDER = "rails"

    assert payment_rail_refusals() == []


def test_an_enabled_wechat_transfer_rail_without_credentials_is_refused_at_deploy_and_start(payouts_unconfigured):
    payouts_unconfigured.PAYOUT_PROVIDER = "rails"
    payouts_unconfigured.PAYOUT_RAILS = ["wechat_transfer"]

    [error] = payment_rail_refusals()

    assert error.id == "cps.E005"
    assert error.msg.startswith("The wechat_transfer payout rail is enabled but not configured: WECHATPAY_MCHID")
    payouts_unconfigured.IS_PRODUCTION = True
    with pytest.raises(ImproperlyConfigured, match=r"cps\.E005"):
        refuse_to_start_with_sandbox_settings()


def test_the_wechat_transfer_rail_needs_its_scene_and_report_fields(payouts_unconfigured):
    configure_wechatpay(payouts_unconfigured)
    payouts_unconfigured.PAYOUT_PROVIDER = "wechat_transfer"
    assert payment_rail_refusals() == []

    payouts_unconfigured.WECHATPAY_TRANSFER_REPORT_INFOS = "岗位类型="
    [error] = payment_rail_refusals()

    assert "WECHATPAY_TRANSFER_REPORT_INFOS" in error.msg


def test_an_enabled_alipay_transfer_rail_needs_the_certificates(payouts_unconfigured):
    fake = AlipayFake()
    payouts_unconfigured.PAYOUT_PROVIDER = "alipay_transfer"
    payouts_unconfigured.ALIPAY_TRANSFER_APP_ID = fake.app_id
    payouts_unconfigured.ALIPAY_TRANSFER_APP_PRIVATE_KEY = fake.app_keys.private_pem()

    [error] = payment_rail_refusals()
    assert error.msg.endswith("ALIPAY_APP_CERT, ALIPAY_PUBLIC_CERT, ALIPAY_ROOT_CERT.")

    certificates = fake.certificate_settings()
    payouts_unconfigured.ALIPAY_APP_CERT = certificates["app_cert"]
    payouts_unconfigured.ALIPAY_PUBLIC_CERT = certificates["alipay_public_cert"]
    payouts_unconfigured.ALIPAY_ROOT_CERT = certificates["alipay_root_cert"]
    assert payment_rail_refusals() == []

    payouts_unconfigured.ALIPAY_GATEWAY_URL = "http://127.0.0.1:8770/gateway.do"  # the fake
    assert [error.id for error in payment_rail_refusals()] == ["cps.E006"]


def test_a_payout_rail_that_does_not_exist_is_refused(payouts_unconfigured):
    payouts_unconfigured.PAYOUT_RAILS = ["wechat"]

    [error] = payment_rail_refusals()

    assert error.id == "cps.E007"
    assert "'wechat'" in error.msg


@pytest.mark.django_db
def test_a_wechat_payee_is_bound_to_a_wechat_payout_account_only():
    member = MemberFactory()
    with pytest.raises(PayoutError):
        payout_account_bind_wechat(member=member, openid="oUpF8uMuAJO_M2pxb1Q9zNjWeS6o")  # no account yet
    payout_account_save(member=member, method="alipay", holder_name="王芳", alipay_account="w@example.com")
    with pytest.raises(PayoutError):
        payout_account_bind_wechat(member=member, openid="oUpF8uMuAJO_M2pxb1Q9zNjWeS6o")
    payout_account_save(member=member, method="wechat", holder_name="王芳", wechat_id="wangfang88")
    for bad in ("", " ", "o" * 65, "o\x00x", "微信"):
        with pytest.raises(PayoutError):
            payout_account_bind_wechat(member=member, openid=bad)

    account = payout_account_bind_wechat(member=member, openid=" oUpF8uMuAJO_M2pxb1Q9zNjWeS6o ")

    assert account.wechat_openid == "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o"
    assert account.snapshot()["wechat_openid"] == "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o"
    # saved again as WeChat Pay the payee stays bound; another method unbinds it
    payout_account_save(member=member, method="wechat", holder_name="王芳", wechat_id="wangfang99")
    assert PayoutAccount.objects.get(member=member).wechat_openid == "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o"
    payout_account_save(member=member, method="alipay", holder_name="王芳", alipay_account="w@example.com")
    assert PayoutAccount.objects.get(member=member).wechat_openid == ""
