"""Fixtures of the payout rails' tests: the gateway fakes (tests/payments/conftest.py), with the WeChat Pay transfer
and Alipay transfer rails pointed at them, and members bound to each rail."""

import pytest

from tests.payments.conftest import alipay, gateways, wechat, wechat_settings  # noqa: F401 - fixtures used here
from tests.payouts.helpers import ALIPAY_LOGIN, OPENID, REAL_NAME


@pytest.fixture
def rails(settings, live_server, wechat, alipay):  # noqa: F811 - the fixtures imported above
    """Both payment rails and, with PAYOUT_PROVIDER=rails, both payout rails on the fakes; transfer notifications reach
    the live server."""
    certificates = alipay.certificate_settings()
    settings.PAYMENT_RAILS = ["wechatpay", "alipay"]
    settings.PAYOUT_PROVIDER = "rails"
    settings.PAYOUT_RAILS = ["wechat_transfer", "alipay_transfer"]
    settings.WECHATPAY_TRANSFER_MAX_PER_SECOND = 0
    settings.ALIPAY_TRANSFER_APP_ID = settings.ALIPAY_APP_ID
    settings.ALIPAY_TRANSFER_APP_PRIVATE_KEY = settings.ALIPAY_APP_PRIVATE_KEY
    settings.ALIPAY_APP_CERT = certificates["app_cert"]
    settings.ALIPAY_PUBLIC_CERT = certificates["alipay_public_cert"]
    settings.ALIPAY_ROOT_CERT = certificates["alipay_root_cert"]
    wechat.register_payee(OPENID, REAL_NAME)
    alipay.register_account(ALIPAY_LOGIN, REAL_NAME)
    return settings
