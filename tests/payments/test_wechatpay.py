"""WeChat Pay API v3 through the wechatpayv3 SDK (shops/payments/wechatpay.py) against the local fake: paying,
notifications (duplicate, out of order, late, never, forged), query, close and refunds."""

import base64
import json
import logging
import time
from datetime import timedelta
from decimal import Decimal
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
from django.utils import timezone
from wechatpayv3.type import RequestType
from wechatpayv3.utils import build_authorization

from shops.models import Order, OrderEvent, Payment, Refund, WebhookEvent
from shops.payments.fakes.common import KeyPair, nonce
from shops.payments.fakes.wechatpay import WeChatPayError
from shops.payments.wechatpay import WeChatPayProvider
from shops.services import ShopError, order_refund, orders_cancel_expired, payment_sync
from tests.payments.conftest import http, paid_transitions, post_webhook, snapshot

Status = Order.Status


def test_native_payment_and_its_notification_mark_the_order_paid(wechat, order, open_payment):
    # given a Native payment: the checkout shows the code_url as a QR code
    payment, action = open_payment(order, "wechatpay", "native")
    assert action.kind == "qr" and action.qr_text.startswith("weixin://wxpay/bizpayurl?pr=")
    trade = wechat.trade(payment.reference)
    assert (trade.total, trade.trade_type, trade.notify_url) == (4480, "NATIVE", payment.notify_url)

    # when the buyer pays in WeChat and WeChat Pay notifies the shop
    wechat.buyer_pays(payment.reference)
    assert wechat.outbox.release() == [True]

    # then
    order.refresh_from_db()
    payment.refresh_from_db()
    assert order.status == Status.PAID
    assert payment.status == Payment.Status.SUCCEEDED
    event = WebhookEvent.objects.get(provider="wechatpay")
    assert (event.event_type, event.outcome) == ("payment.succeeded", "order paid")
    assert event.payload["resource"]["out_trade_no"] == payment.reference
    assert event.payload["resource"]["payer"]["openid"].endswith("…")  # masked, never stored in full
    assert wechat.refused == []


def test_platform_certificate_mode_downloads_the_certificate_and_verifies_with_it(
    wechat_settings, gateways, order, open_payment, tmp_path
):
    # given a merchant still on platform certificates: no public key configured, a directory for the download
    gateways.wechatpay.platform_mode = "certificate"
    wechat_settings.WECHATPAY_PLATFORM_PUBLIC_KEY = ""
    wechat_settings.WECHATPAY_PLATFORM_PUBLIC_KEY_ID = ""
    wechat_settings.WECHATPAY_CERT_DIR = str(tmp_path)

    # when
    payment, _action = open_payment(order, "wechatpay", "native")
    gateways.wechatpay.buyer_pays(payment.reference)
    gateways.wechatpay.outbox.release()

    # then the certificate came from /v3/certificates (decrypted with the APIv3 key) and checked every answer
    assert [path.name for path in tmp_path.iterdir()] == [f"{gateways.wechatpay.platform_serial}.pem"]
    order.refresh_from_db()
    assert order.status == Status.PAID


def test_h5_sends_the_buyer_to_wechat_and_back(wechat, order, open_payment):
    payment, action = open_payment(order, "wechatpay", "h5", client_ip="203.0.113.7")
    assert action.kind == "redirect"
    query = parse_qs(urlsplit(action.url).query)
    assert query["redirect_url"] == [payment.return_url]

    # the buyer's phone opens the page and pays there; WeChat sends it back to the order page
    status, page, _location = http(action.url)
    assert status == 200 and "确认支付" in page.decode()
    form = urlencode({"prepay_id": query["prepay_id"][0], "redirect_url": payment.return_url}).encode()
    status, _page, location = http(wechat.base_url + "/fake/wechatpay/pay", data=form)
    assert (status, location) == (302, payment.return_url)
    wechat.outbox.release()

    order.refresh_from_db()
    assert order.status == Status.PAID
    assert wechat.trade(payment.reference).trade_type == "MWEB"


def test_jsapi_hands_wechat_the_merchant_signed_parameters(wechat, order, open_payment):
    payment, action = open_payment(order, "wechatpay", "jsapi", openid="oUpF8uMuAJO_M2pxb1Q9zNjWeS6o")
    params = action.jsapi_params
    assert action.kind == "jsapi"
    assert params["appId"] == wechat.appid and params["package"].startswith("prepay_id=")

    # a page that changed the package is refused by WeChat (the paySign no longer matches); so is another payer
    with pytest.raises(WeChatPayError, match="签名"):
        wechat.buyer_pays_jsapi({**params, "package": "prepay_id=wx0000"}, openid="oUpF8uMuAJO_M2pxb1Q9zNjWeS6o")
    with pytest.raises(WeChatPayError, match="支付者"):
        wechat.buyer_pays_jsapi(params, openid="oSomeoneElse")

    wechat.buyer_pays_jsapi(params, openid="oUpF8uMuAJO_M2pxb1Q9zNjWeS6o")
    wechat.outbox.release()
    order.refresh_from_db()
    assert order.status == Status.PAID


def test_the_same_notification_twice_pays_once(wechat, order, open_payment):
    payment, _action = open_payment(order, "wechatpay", "native")
    wechat.buyer_pays(payment.reference)
    [notification] = wechat.outbox.held

    # when WeChat Pay sends it twice (each attempt signed afresh, the same id)
    assert wechat.outbox.release(times=2) == [True, True]
    after_first = snapshot(order)
    assert wechat.outbox.send(notification) is True

    # then
    assert paid_transitions(order) == 1
    assert WebhookEvent.objects.filter(provider="wechatpay").count() == 1
    assert snapshot(order) == after_first
    assert notification.attempts == [200, 200, 200]


def test_notifications_out_of_order_apply_once_each(wechat, order, open_payment, product):
    # given a payment whose notification is late: the shop learned it by a query first
    payment, _action = open_payment(order, "wechatpay", "native")
    wechat.buyer_pays(payment.reference)
    assert payment_sync(payment=payment) == "order paid"
    # and two partial refunds, both confirmed by WeChat Pay
    line = order.lines.get(product=product)
    first = order_refund(order=order, quantities={line.pk: 1}, reason="first")
    second = order_refund(order=order, quantities={line.pk: 1}, reason="second")
    assert [first.status, second.status] == [Refund.Status.PENDING, Refund.Status.PENDING]
    for refund in (first, second):
        wechat.complete_refund(_refund_number(refund))

    # when the notifications arrive newest first: second refund, first refund, then the payment
    assert wechat.outbox.release(reverse=True) == [True, True, True]

    # then each applied once, and the late payment notice changed nothing
    first.refresh_from_db()
    second.refresh_from_db()
    assert [first.status, second.status] == [Refund.Status.SUCCEEDED, Refund.Status.SUCCEEDED]
    assert paid_transitions(order) == 1
    outcomes = list(WebhookEvent.objects.order_by("pk").values_list("event_type", "outcome"))
    assert outcomes == [
        ("refund.succeeded", "refund succeeded"),
        ("refund.succeeded", "refund succeeded"),
        ("payment.succeeded", "payment already succeeded"),
    ]


def test_a_notification_that_never_comes_is_repaired_by_a_query(wechat, order, open_payment):
    payment, _action = open_payment(order, "wechatpay", "native")
    assert payment_sync(payment=payment) == "payment still pending"  # not paid yet: nothing changes
    wechat.buyer_pays(payment.reference)
    assert wechat.outbox.drop() == 1  # lost

    assert payment_sync(payment=payment) == "order paid"
    assert payment_sync(payment=payment) == "payment already succeeded"

    order.refresh_from_db()
    assert order.status == Status.PAID
    assert paid_transitions(order) == 1


def test_the_timeout_pays_an_order_whose_notification_was_lost_instead_of_cancelling_it(
    wechat, order, open_payment, settings
):
    payment, _action = open_payment(order, "wechatpay", "native")
    wechat.buyer_pays(payment.reference)
    wechat.outbox.drop()

    later = timezone.now() + timedelta(minutes=settings.ORDER_PAYMENT_TIMEOUT_MINUTES + 1)
    assert orders_cancel_expired(now=later) == 0

    order.refresh_from_db()
    assert order.status == Status.PAID


def test_the_timeout_closes_an_unpaid_payment_at_wechat_pay(wechat, order, open_payment, settings):
    payment, _action = open_payment(order, "wechatpay", "native")

    later = timezone.now() + timedelta(minutes=settings.ORDER_PAYMENT_TIMEOUT_MINUTES + 1)
    assert orders_cancel_expired(now=later) == 1

    order.refresh_from_db()
    payment.refresh_from_db()
    assert (order.status, payment.status) == (Status.CANCELLED, Payment.Status.CLOSED)
    assert wechat.trade(payment.reference).trade_state == "CLOSED"
    with pytest.raises(WeChatPayError) as refused:  # the buyer can no longer pay it
        wechat.buyer_pays(payment.reference)
    assert refused.value.code == "ORDER_CLOSED"


def test_the_timeout_keeps_the_order_while_wechat_pay_cannot_be_reached(wechat_settings, order, open_payment, settings):
    payment, _action = open_payment(order, "wechatpay", "native")
    wechat_settings.WECHATPAY_GATEWAY_URL = "http://127.0.0.1:9"  # nothing listens there

    later = timezone.now() + timedelta(minutes=settings.ORDER_PAYMENT_TIMEOUT_MINUTES + 1)
    assert orders_cancel_expired(now=later) == 0

    order.refresh_from_db()
    payment.refresh_from_db()
    assert (order.status, payment.status) == (Status.PENDING_PAYMENT, Payment.Status.PENDING)


def _post(live_server, body: bytes, headers: dict) -> tuple[int, bytes]:
    return post_webhook(live_server, "wechatpay", body, headers)


def _forged_signature_headers(body: bytes, key: KeyPair, serial: str, timestamp: int | None = None) -> dict:
    timestamp = str(timestamp or int(time.time()))
    nonce_str = nonce()
    signature = base64.b64encode(key.sign(f"{timestamp}\n{nonce_str}\n".encode() + body + b"\n")).decode()
    return {
        "Content-Type": "application/json",
        "Wechatpay-Timestamp": timestamp,
        "Wechatpay-Nonce": nonce_str,
        "Wechatpay-Signature": signature,
        "Wechatpay-Serial": serial,
        "Wechatpay-Signature-Type": "WECHATPAY2-SHA256-RSA2048",
    }


@pytest.mark.parametrize("forgery", ["another key", "body changed", "stale", "another APIv3 key", "unknown serial"])
def test_a_forged_notification_is_refused_and_changes_nothing(wechat, order, open_payment, live_server, forgery):
    payment, _action = open_payment(order, "wechatpay", "native")
    wechat.buyer_pays(payment.reference)
    [notification] = wechat.outbox.take()
    body, headers = notification.prepare()
    if forgery == "another key":
        headers = _forged_signature_headers(body, KeyPair.generate(), wechat.platform_serial)
    elif forgery == "body changed":
        envelope = json.loads(body)
        envelope["id"] = "EV-forged"
        body = json.dumps(envelope).encode()
    elif forgery == "stale":
        headers = _forged_signature_headers(body, wechat.platform_keys, wechat.platform_serial, int(time.time()) - 600)
    elif forgery == "another APIv3 key":  # genuine-looking envelope, resource sealed with a key the forger chose
        envelope = json.loads(body)
        other = type(wechat)(platform_keys=wechat.platform_keys)
        envelope["resource"]["ciphertext"] = other.encrypt(
            json.dumps({"mchid": wechat.mchid, "out_trade_no": payment.reference}),
            envelope["resource"]["nonce"],
            "transaction",
        )
        body = json.dumps(envelope).encode()
        headers = _forged_signature_headers(body, wechat.platform_keys, wechat.platform_serial)
    else:
        headers = {**headers, "Wechatpay-Serial": "PUB_KEY_ID_0000"}
    before = snapshot(order)

    status, answer = _post(live_server, body, headers)

    assert status == 400, answer
    assert snapshot(order) == before
    # and the genuine one still pays afterwards
    assert wechat.outbox.send(notification) is True
    order.refresh_from_db()
    assert order.status == Status.PAID


def test_a_notification_with_another_amount_is_refused(wechat, order, open_payment, live_server):
    # WeChat Pay itself would never sign this: the fake's platform key stands for a compromised one
    payment, _action = open_payment(order, "wechatpay", "native")
    wechat.buyer_pays(payment.reference)
    [notification] = wechat.outbox.take()
    envelope = json.loads(notification.prepare()[0])
    resource = wechat._transaction(wechat.trade(payment.reference))
    resource["amount"]["total"] = 1
    envelope["resource"]["ciphertext"] = wechat.encrypt(
        json.dumps(resource), envelope["resource"]["nonce"], "transaction"
    )
    body = json.dumps(envelope).encode()
    before = snapshot(order)

    status, answer = _post(
        live_server, body, _forged_signature_headers(body, wechat.platform_keys, wechat.platform_serial)
    )

    assert status == 400 and b"does not match" in answer
    assert snapshot(order) == before


def _refund_number(refund: Refund) -> str:
    return WeChatPayProvider().refund_reference(refund.idempotency_key)


def test_partial_then_full_refund_with_their_notifications(wechat, order, open_payment, product):
    payment, _action = open_payment(order, "wechatpay", "native")
    wechat.buyer_pays(payment.reference)
    wechat.outbox.release()
    line = order.lines.get(product=product)

    # a partial refund: WeChat Pay accepts it (PROCESSING), then confirms it
    partial = order_refund(order=order, quantities={line.pk: 1}, reason="one broken")
    assert (partial.amount, partial.status) == (Decimal("19.90"), Refund.Status.PENDING)
    wx_refund = wechat.refunds[_refund_number(partial)]
    assert (wx_refund.refund, wx_refund.total) == (1990, 4480)
    wechat.complete_refund(wx_refund.out_refund_no)
    assert wechat.outbox.release() == [True]
    partial.refresh_from_db()
    assert partial.status == Refund.Status.SUCCEEDED

    # the rest: the order becomes refunded
    rest = order_refund(order=order, reason="all of it")
    assert rest.amount == Decimal("24.90")
    wechat.complete_refund(_refund_number(rest))
    assert wechat.outbox.release(times=2) == [True, True]  # and a duplicate of its notification

    rest.refresh_from_db()
    order.refresh_from_db()
    assert (rest.status, order.status, order.refunded_total) == (Refund.Status.SUCCEEDED, Status.REFUNDED, order.total)
    assert wechat.trade(payment.reference).refunded == 4480
    assert list(WebhookEvent.objects.filter(event_type="refund.succeeded").values_list("outcome", flat=True)) == [
        "refund succeeded",
        "refund succeeded",
    ]


def test_a_refund_wechat_pay_cannot_complete_is_marked_failed_for_finance(wechat, order, open_payment):
    payment, _action = open_payment(order, "wechatpay", "native")
    wechat.buyer_pays(payment.reference)
    wechat.outbox.release()
    refund = order_refund(order=order, reason="all")

    wechat.complete_refund(_refund_number(refund), status="ABNORMAL")
    wechat.outbox.release()

    refund.refresh_from_db()
    assert refund.status == Refund.Status.FAILED
    note = OrderEvent.objects.filter(order=order, kind=OrderEvent.Kind.REFUND).latest("pk").note
    assert "could not return 44.80" in note


def test_a_refund_beyond_what_was_paid_is_refused_by_wechat_pay_and_nothing_changes(wechat, order, open_payment):
    payment, _action = open_payment(order, "wechatpay", "native")
    wechat.buyer_pays(payment.reference)
    wechat.outbox.release()
    wechat.trades[payment.reference].refunded = 4000  # refunded elsewhere (the merchant platform)
    before = snapshot(order)

    with pytest.raises(ShopError, match="refused the refund"):
        order_refund(order=order, reason="all")

    assert snapshot(order) == before
    assert wechat.refused[-1] == ("/v3/refund/domestic/refunds", "INVALID_REQUEST")


def test_the_fake_refuses_a_replayed_nonce_a_stale_timestamp_and_another_amount(wechat, order, open_payment):
    payment, _action = open_payment(order, "wechatpay", "native")
    core = WeChatPayProvider().client._core
    path = f"/v3/pay/transactions/out-trade-no/{payment.reference}?mchid={wechat.mchid}"

    def get(authorization: str) -> int:
        return http(wechat.base_url + path, headers={"Authorization": authorization})[0]

    signed = build_authorization(path, "GET", wechat.mchid, wechat.merchant_serial_no, core._private_key)
    assert get(signed) == 200
    assert get(signed) == 401  # the same nonce again
    stale = build_authorization(path, "GET", wechat.mchid, wechat.merchant_serial_no, core._private_key)
    stale = stale.replace(f'timestamp="{int(time.time())}"', f'timestamp="{int(time.time()) - 600}"')
    assert get(stale) == 401
    forged = build_authorization(path, "GET", wechat.mchid, wechat.merchant_serial_no, KeyPair.generate().private_key)
    assert get(forged) == 401
    # a second prepay of the same out_trade_no with another amount
    status, _text = core.request(
        "/v3/pay/transactions/native",
        method=RequestType.POST,
        data={
            "appid": wechat.appid,
            "mchid": wechat.mchid,
            "description": "x",
            "out_trade_no": payment.reference,
            "notify_url": payment.notify_url,
            "amount": {"total": 1, "currency": "CNY"},
        },
    )
    assert status == 400
    assert [code for _path, code in wechat.refused] == ["SIGN_ERROR", "SIGN_ERROR", "SIGN_ERROR", "INVALID_REQUEST"]


def test_logs_hold_no_key_secret_or_full_openid(wechat, order, open_payment, caplog, live_server):
    openid = "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o"
    caplog.set_level(logging.DEBUG)
    payment, action = open_payment(order, "wechatpay", "jsapi", openid=openid)
    wechat.buyer_pays_jsapi(action.jsapi_params, openid=openid)
    wechat.outbox.release()
    body, headers = wechat.outbox.sent[0].prepare()
    _post(live_server, body.replace(b"EV-", b"EV-x"), headers)  # a refused one is logged too
    refund = order_refund(order=Order.objects.get(pk=order.pk), reason="all")
    wechat.complete_refund(_refund_number(refund))
    wechat.outbox.release()

    text = "\n".join(record.getMessage() for record in caplog.records)
    assert "refused" in text  # the log was captured
    secrets = [
        openid,
        wechat.apiv3_key,
        wechat.merchant_keys.private_pem().splitlines()[1],
        headers["Wechatpay-Signature"],
    ]
    assert [secret for secret in secrets if secret in text] == []
