"""Fuzzing the WeChat Pay and Alipay notification parsers with genuinely signed (and, for WeChat Pay, encrypted)
bodies of any shape, so the fuzzing reaches past the signature into the decoding.

Property: the parser returns a notice the service can store and compare (event id and references short storable
text, a finite positive amount, a storable payload), or raises WebhookRejected; never another exception."""

import json
import time
from decimal import Decimal
from urllib.parse import urlencode

import pytest
from django.test import override_settings
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from shops.payments.alipay import AlipayProvider
from shops.payments.base import WebhookNotice, WebhookRejected, is_storable_json, is_storable_text
from shops.payments.fakes import AlipayFake, WeChatPayFake
from shops.payments.fakes.common import nonce
from shops.payments.wechatpay import WeChatPayProvider

FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
WECHAT = WeChatPayFake()
ALIPAY = AlipayFake()

any_text = st.text(st.characters(codec=None, exclude_categories=()), max_size=30)
weird = st.sampled_from(["", "\x00", "\ud800", "x" * 200, "NaN", "-1", "0", "1e999", "19.90", "12.345", "CNY"])
scalars = st.none() | st.booleans() | st.integers() | st.floats() | any_text | weird | st.integers(10**20, 10**40)
values = st.recursive(
    scalars,
    lambda children: st.lists(children, max_size=3) | st.dictionaries(any_text, children, max_size=3),
    max_leaves=10,
)


def wechat_settings():
    merchant = WECHAT.merchant_settings()
    return override_settings(
        WECHATPAY_MCHID=merchant["mchid"],
        WECHATPAY_APPID=merchant["appid"],
        WECHATPAY_MERCHANT_SERIAL_NO=merchant["merchant_serial_no"],
        WECHATPAY_MERCHANT_PRIVATE_KEY=merchant["merchant_private_key"],
        WECHATPAY_APIV3_KEY=merchant["apiv3_key"],
        WECHATPAY_PLATFORM_PUBLIC_KEY=merchant["platform_public_key"],
        WECHATPAY_PLATFORM_PUBLIC_KEY_ID=merchant["platform_public_key_id"],
        WECHATPAY_CERT_DIR="",
    )


def assert_storable(notice: WebhookNotice) -> None:
    assert is_storable_text(notice.event_id) and 1 <= len(notice.event_id) <= 100
    assert is_storable_text(notice.payment_reference) and 1 <= len(notice.payment_reference) <= 64
    assert len(notice.refund_reference) <= 64
    assert isinstance(notice.amount, Decimal) and notice.amount.is_finite() and notice.amount > 0
    assert is_storable_json(notice.payload)
    json.dumps(notice.payload)


resources = st.fixed_dictionaries(
    {
        "mchid": st.just(WECHAT.mchid) | values,
        "appid": st.just(WECHAT.appid) | values,
        "out_trade_no": st.text(min_size=1, max_size=40) | values,
        "trade_state": st.sampled_from(["SUCCESS", "NOTPAY"]) | values,
        "amount": st.fixed_dictionaries({"total": st.integers(-5, 10**12) | values}) | values,
    },
    optional={"out_refund_no": st.text(max_size=70) | values, "payer": values},
)
envelopes = st.fixed_dictionaries(
    {
        "id": st.text(min_size=1, max_size=120) | values,
        "event_type": st.sampled_from(["TRANSACTION.SUCCESS", "REFUND.SUCCESS", "REFUND.ABNORMAL"]) | values,
        "resource_type": st.just("encrypt-resource") | values,
    }
)


VALID_RESOURCE = {
    "mchid": WECHAT.mchid,
    "appid": WECHAT.appid,
    "out_trade_no": "pay_0123456789abcdef01234567",
    "trade_state": "SUCCESS",
    "amount": {"total": 1990},
    "payer": {"openid": "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o"},
}


@FUZZ
@given(envelope=envelopes, resource=resources | values, algorithm=st.just("AEAD_AES_256_GCM") | values)
@example(
    envelope={"id": "EV-1", "event_type": "TRANSACTION.SUCCESS", "resource_type": "encrypt-resource"},
    resource=VALID_RESOURCE,
    algorithm="AEAD_AES_256_GCM",
)
def test_wechatpay_signed_and_encrypted_notifications_of_any_shape(envelope, resource, algorithm):
    nonce_str = nonce(12)
    envelope = {
        **envelope,
        "resource": {
            "algorithm": algorithm,
            "nonce": nonce_str,
            "associated_data": "transaction",
            "ciphertext": WECHAT.encrypt(json.dumps(resource), nonce_str, "transaction"),
        },
    }
    body = json.dumps(envelope).encode()
    with wechat_settings():
        try:
            notice = WeChatPayProvider().parse_webhook(body, WECHAT.signature_headers(body))
        except WebhookRejected:
            return
    assert_storable(notice)


@FUZZ
@given(
    body=st.binary(max_size=200),
    headers=st.dictionaries(
        any_text
        | st.sampled_from(["Wechatpay-Timestamp", "Wechatpay-Nonce", "Wechatpay-Signature", "Wechatpay-Serial"]),
        any_text,
        max_size=5,
    ),
)
def test_wechatpay_unsigned_anything_is_refused(body, headers):  # fmt: skip
    with wechat_settings(), pytest.raises(WebhookRejected):
        WeChatPayProvider().parse_webhook(body, {**headers, "Wechatpay-Timestamp": str(int(time.time()))})


form_text = st.text(max_size=30)  # a form body is UTF-8: no lone surrogates
form_weird = st.sampled_from(["\x00", "x" * 200, "NaN", "-1", "0", "1e999", "19.90", "12.345", "0.001"])
alipay_params = st.fixed_dictionaries(
    {
        "app_id": st.just(ALIPAY.app_id) | form_text,
        "notify_id": st.text(min_size=1, max_size=120) | form_text,
        "out_trade_no": st.text(min_size=1, max_size=70) | form_text,
        "trade_status": st.sampled_from(["TRADE_SUCCESS", "TRADE_CLOSED", "WAIT_BUYER_PAY"]) | form_text,
        "total_amount": form_weird | form_text,
        "sign_type": st.just("RSA2"),
    },
    optional={
        "out_biz_no": form_text,
        "refund_fee": form_weird | form_text,
        "fund_bill_list": form_text,
        "buyer_id": form_text,
    },
)


def alipay_settings():
    merchant = ALIPAY.merchant_settings()
    return override_settings(
        ALIPAY_APP_ID=merchant["app_id"],
        ALIPAY_APP_PRIVATE_KEY=merchant["app_private_key"],
        ALIPAY_PUBLIC_KEY=merchant["alipay_public_key"],
    )


@FUZZ
@given(params=alipay_params)
@example(
    params={
        "app_id": ALIPAY.app_id,
        "notify_id": "n1",
        "out_trade_no": "pay_1",
        "trade_status": "TRADE_SUCCESS",
        "total_amount": "19.90",
        "sign_type": "RSA2",
    }
)
def test_alipay_signed_notifications_of_any_shape(params):
    body = urlencode(ALIPAY.sign_params({name: value for name, value in params.items() if value != ""})).encode()
    with alipay_settings():
        try:
            notice = AlipayProvider().parse_webhook(body, {})
        except WebhookRejected:
            return
    assert_storable(notice)


@FUZZ
@given(body=st.binary(max_size=300) | form_text.map(str.encode))
def test_alipay_unsigned_anything_is_refused(body):
    with alipay_settings(), pytest.raises(WebhookRejected):
        AlipayProvider().parse_webhook(body, {})
