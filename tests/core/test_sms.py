"""The SMS port: the console backend never logs a whole number; the Tencent Cloud adapter (the official SDK) against
a local fake that checks the TC3-HMAC-SHA256 signature and answers in the documented shapes."""

import logging

import pytest

from core import sms
from tests.core import tencent_sms_fake as fake_module
from tests.core.tencent_sms_fake import TencentSmsFake

PHONE = "+8613800138000"


def test_phone_masked_keeps_the_country_code_and_last_four_digits():
    assert sms.phone_masked(PHONE) == "+86*******8000"
    assert sms.phone_masked("") == ""


def test_the_console_backend_logs_the_message_with_the_number_masked(settings, caplog):
    settings.SMS_BACKEND = "core.sms.ConsoleSmsBackend"
    with caplog.at_level(logging.INFO, logger="core.sms"):
        reference = sms.sms_send(phone=PHONE, template="otp", params=["123456", "10"], text="Your code is 123456.")
    assert reference == "console"
    assert "+86*******8000" in caplog.text and "123456" in caplog.text
    assert "13800138000" not in caplog.text


@pytest.fixture
def tencent(settings):
    pytest.importorskip("tencentcloud.sms", reason="needs tencentcloud-sdk-python-sms (requirements.txt)")
    with TencentSmsFake() as fake:
        settings.SMS_BACKEND = "core.sms.TencentSmsBackend"
        settings.SMS_TENCENT_SECRET_ID = fake_module.SECRET_ID
        settings.SMS_TENCENT_SECRET_KEY = fake_module.SECRET_KEY
        settings.SMS_TENCENT_SDK_APP_ID = fake_module.SDK_APP_ID
        settings.SMS_TENCENT_SIGN_NAME = fake_module.SIGN_NAME
        settings.SMS_TENCENT_ENDPOINT = fake.url
        settings.SMS_TEMPLATES = {"otp": "100001", "order_paid": "100002", "unapproved": "999999"}
        settings.SMS_TIMEOUT = 5
        yield fake


def _send(template="otp", phone=PHONE):
    return sms.sms_send(phone=phone, template=template, params=["123456", "10"], text="Your code is 123456.")


def test_a_signed_request_is_sent_with_the_template_and_its_parameters(tencent, caplog):
    with caplog.at_level(logging.INFO, logger="core.sms"):
        reference = _send()
    assert reference.startswith("5000:")
    assert tencent.sent == [{"phone": PHONE, "template": "100001", "params": ["123456", "10"]}]
    assert "13800138000" not in caplog.text


def test_a_wrong_secret_fails_the_signature_check_and_is_refused_for_good(tencent, settings):
    settings.SMS_TENCENT_SECRET_KEY = "not-the-secret"
    with pytest.raises(sms.SmsRejected) as refused:
        _send()
    assert refused.value.code == "AuthFailure.SignatureFailure"
    assert tencent.sent == []


def test_the_providers_frequency_limits_are_throttling_not_refusals(tencent):
    _send()
    with pytest.raises(sms.SmsThrottled) as throttled:
        _send()  # the same number within 30 seconds
    assert throttled.value.code == "LimitExceeded.PhoneNumberThirtySecondLimit"
    assert throttled.value.transient is True
    tencent.daily_limit = 0
    with pytest.raises(sms.SmsThrottled) as daily:
        _send(phone="+8613900001111")
    assert daily.value.code == "LimitExceeded.PhoneNumberDailyLimit"


def test_an_unapproved_template_or_a_missing_template_id_is_refused(tencent):
    with pytest.raises(sms.SmsRejected) as unapproved:
        _send(template="unapproved")
    assert unapproved.value.code == "FailedOperation.TemplateIncorrectOrUnapproved"
    with pytest.raises(sms.SmsRejected):
        _send(template="no-such-template")
    assert tencent.requests == 1  # no id: never sent to the provider


def test_a_provider_error_is_transient(tencent):
    tencent.fail_next = "InternalError.Timeout"
    with pytest.raises(sms.SmsUnavailable) as unavailable:
        _send()
    assert unavailable.value.transient is True
    tencent.fail_next = "RequestLimitExceeded"
    with pytest.raises(sms.SmsThrottled):
        _send()


def test_an_unreachable_provider_is_transient(tencent, settings):
    settings.SMS_TENCENT_ENDPOINT = "http://127.0.0.1:9"  # discard port: nothing listens
    with pytest.raises(sms.SmsUnavailable):
        _send()


def test_the_tencent_backend_needs_its_credentials(settings):
    pytest.importorskip("tencentcloud.sms", reason="needs tencentcloud-sdk-python-sms (requirements.txt)")
    from django.core.exceptions import ImproperlyConfigured

    settings.SMS_BACKEND = "core.sms.TencentSmsBackend"
    settings.SMS_TENCENT_SECRET_ID = ""
    with pytest.raises(ImproperlyConfigured):
        _send()
