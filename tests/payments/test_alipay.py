"""Alipay through python-alipay-sdk (shops/payments/alipay.py) against the local fake: page and wap payments,
asynchronous notifications (duplicate, out of order, never, forged), query, close and refunds."""

import base64
import logging
from datetime import timedelta
from decimal import Decimal
from urllib.parse import parse_qsl, urlencode, urlsplit

import pytest
from django.utils import timezone

from shops.models import Order, Payment, Refund, WebhookEvent
from shops.payments.alipay import AlipayProvider
from shops.payments.base import Buyer
from shops.payments.fakes.alipay import AlipayError, signing_text
from shops.payments.fakes.common import KeyPair
from shops.services import ShopError, order_refund, orders_cancel_expired, payment_close, payment_sync
from tests.payments.conftest import http, paid_transitions, post_webhook, snapshot

Status = Order.Status


def buyer_opens(url: str) -> str:
    """The buyer's browser follows the signed URL to Alipay's cashier; the page's HTML."""
    status, page, _location = http(url)
    assert status == 200, page.decode()
    return page.decode()


@pytest.mark.parametrize(
    ("method", "alipay_method"), [("page", "alipay.trade.page.pay"), ("wap", "alipay.trade.wap.pay")]
)
def test_payment_and_its_notification_mark_the_order_paid(alipay, order, open_payment, method, alipay_method):
    payment, action = open_payment(order, "alipay", method)
    assert action.kind == "redirect" and action.url.startswith(alipay.gateway_url + "?")
    assert dict(parse_qsl(urlsplit(action.url).query))["method"] == alipay_method

    assert "¥44.80" in buyer_opens(action.url)
    trade = alipay.trade(payment.reference)
    assert (trade.total_amount, trade.notify_url) == (Decimal("44.80"), payment.notify_url)
    # the buyer pays on the cashier page, which sends them back to the order page
    form = urlencode({"out_trade_no": payment.reference, "return_url": payment.return_url}).encode()
    status, _page, location = http(alipay.base_url + "/fake/alipay/pay", data=form)
    assert status == 302 and location.startswith(payment.return_url + "?")
    assert alipay.outbox.release() == [True]  # the shop answered "success"

    order.refresh_from_db()
    payment.refresh_from_db()
    assert (order.status, payment.status) == (Status.PAID, Payment.Status.SUCCEEDED)
    event = WebhookEvent.objects.get(provider="alipay")
    assert (event.event_type, event.outcome) == ("payment.succeeded", "order paid")
    assert event.payload["buyer_id"].endswith("…")
    assert alipay.refused == []


def test_a_changed_amount_in_the_signed_url_is_refused_by_alipay(alipay, order, open_payment):
    _payment, action = open_payment(order, "alipay", "wap")
    tampered = action.url.replace("44.80", "0.01")
    assert tampered != action.url

    status, page, _location = http(tampered)

    assert status == 400 and "isv.invalid-signature" in page.decode()
    assert alipay.trades == {}


def test_the_same_notification_twice_pays_once(alipay, order, open_payment):
    payment, action = open_payment(order, "alipay", "page")
    buyer_opens(action.url)
    alipay.buyer_pays(payment.reference)

    assert alipay.outbox.release(times=3) == [True, True, True]

    assert paid_transitions(order) == 1
    assert list(WebhookEvent.objects.values_list("outcome", flat=True)) == ["order paid"]


def test_a_notification_that_never_comes_is_repaired_by_a_query(alipay, order, open_payment):
    payment, action = open_payment(order, "alipay", "page")
    assert payment_sync(payment=payment) == "payment still pending"  # the cashier not even opened
    buyer_opens(action.url)
    alipay.buyer_pays(payment.reference)
    alipay.outbox.drop()

    assert payment_sync(payment=payment) == "order paid"

    order.refresh_from_db()
    assert order.status == Status.PAID


def test_notifications_out_of_order_apply_once_each(alipay, order, open_payment, product):
    payment, action = open_payment(order, "alipay", "wap")
    buyer_opens(action.url)
    alipay.buyer_pays(payment.reference)
    payment_sync(payment=payment)  # the payment notice is late: a query applied it
    line = order.lines.get(product=product)
    partial = order_refund(order=order, quantities={line.pk: 1}, reason="one")
    rest = order_refund(order=order, reason="the rest")
    # Alipay refunds at once: both succeeded already, and the trade is closed (all refunded)
    assert [partial.status, rest.status] == [Refund.Status.SUCCEEDED, Refund.Status.SUCCEEDED]
    assert alipay.trade(payment.reference).trade_status == "TRADE_CLOSED"
    before = snapshot(order)

    # the notices: full refund (TRADE_CLOSED), partial refund (TRADE_SUCCESS), payment; newest first
    assert [n.kind for n in alipay.outbox.held] == ["TRADE_SUCCESS", "TRADE_SUCCESS", "TRADE_CLOSED"]
    assert alipay.outbox.release(reverse=True) == [True, True, True]

    after = snapshot(order)
    assert after["webhook_events"] == before["webhook_events"] + 3
    assert {key: value for key, value in after.items() if key != "webhook_events"} == {
        key: value for key, value in before.items() if key != "webhook_events"
    }
    assert list(WebhookEvent.objects.order_by("pk").values_list("event_type", "outcome")) == [
        ("refund.succeeded", "refund already succeeded"),
        ("refund.succeeded", "refund already succeeded"),
        ("payment.succeeded", "payment already succeeded"),
    ]


def _forge(params: dict[str, str], key: KeyPair) -> bytes:
    text = signing_text(params, drop=("sign", "sign_type"))
    return urlencode({**params, "sign": base64.b64encode(key.sign(text.encode())).decode()}).encode()


@pytest.mark.parametrize("forgery", ["another key", "amount changed", "no signature", "another app"])
def test_a_forged_notification_is_refused_and_changes_nothing(alipay, order, open_payment, live_server, forgery):
    payment, action = open_payment(order, "alipay", "page")
    buyer_opens(action.url)
    alipay.buyer_pays(payment.reference)
    [notification] = alipay.outbox.take()
    body, headers = notification.prepare()
    params = dict(parse_qsl(body.decode()))
    if forgery == "another key":
        body = _forge({**params, "notify_id": "forged1"}, KeyPair.generate())
    elif forgery == "amount changed":  # the genuine signature over other values
        body = urlencode({**params, "total_amount": "0.01"}).encode()
    elif forgery == "no signature":
        body = urlencode({name: value for name, value in params.items() if name != "sign"}).encode()
    else:  # signed by Alipay, but for another application
        body = _forge({**params, "app_id": "2021999999999999"}, alipay.alipay_keys)
    before = snapshot(order)

    status, answer = post_webhook(live_server, "alipay", body, headers)

    assert status == 400, answer
    assert snapshot(order) == before
    assert alipay.outbox.send(notification) is True  # the genuine one still pays
    order.refresh_from_db()
    assert order.status == Status.PAID


def test_a_genuine_notification_with_another_amount_is_refused(alipay, order, open_payment, live_server):
    # Alipay never signs this: its key stands for a compromised one
    payment, action = open_payment(order, "alipay", "page")
    buyer_opens(action.url)
    alipay.buyer_pays(payment.reference)
    [notification] = alipay.outbox.take()
    params = dict(parse_qsl(notification.prepare()[0].decode()))
    body = _forge({**params, "total_amount": "0.01"}, alipay.alipay_keys)
    before = snapshot(order)

    status, answer = post_webhook(live_server, "alipay", body, notification.prepare()[1])

    assert status == 400 and b"does not match" in answer
    assert snapshot(order) == before


def test_close_of_an_unpaid_order_at_the_timeout(alipay, order, open_payment, settings):
    payment, action = open_payment(order, "alipay", "page")
    buyer_opens(action.url)

    later = timezone.now() + timedelta(minutes=settings.ORDER_PAYMENT_TIMEOUT_MINUTES + 1)
    assert orders_cancel_expired(now=later) == 1

    order.refresh_from_db()
    payment.refresh_from_db()
    assert (order.status, payment.status) == (Status.CANCELLED, Payment.Status.CLOSED)
    assert alipay.trade(payment.reference).trade_status == "TRADE_CLOSED"
    with pytest.raises(AlipayError, match="交易状态不合法"):
        alipay.buyer_pays(payment.reference)


def test_close_of_a_payment_whose_cashier_was_never_opened(alipay, order, open_payment):
    payment, _action = open_payment(order, "alipay", "wap")

    assert payment_close(payment=payment) == "payment closed"

    payment.refresh_from_db()
    assert payment.status == Payment.Status.CLOSED
    assert alipay.trades == {}


def test_close_finds_the_buyer_paid_and_applies_it(alipay, order, open_payment):
    payment, action = open_payment(order, "alipay", "wap")
    buyer_opens(action.url)
    alipay.buyer_pays(payment.reference)
    alipay.outbox.drop()

    assert payment_close(payment=payment) == "order paid"

    order.refresh_from_db()
    assert order.status == Status.PAID


def test_the_signed_url_stops_working_after_the_payment_timeout(alipay, order, open_payment, settings):
    # given a payment opened longer ago than the timeout (its URL carries time_expire)
    payment, _action = open_payment(order, "alipay", "page")
    payment.created_at -= timedelta(minutes=settings.ORDER_PAYMENT_TIMEOUT_MINUTES + 1)
    late_url = AlipayProvider().start_method(payment, "page", Buyer()).url

    status, page, _location = http(late_url)

    assert status == 400 and "ACQ.TRADE_HAS_CLOSE" in page.decode()
    assert alipay.trade(payment.reference).trade_status == "TRADE_CLOSED"


def test_partial_and_full_refunds_with_their_notifications(alipay, order, open_payment, product):
    payment, action = open_payment(order, "alipay", "wap")
    buyer_opens(action.url)
    alipay.buyer_pays(payment.reference)
    alipay.outbox.release()
    line = order.lines.get(product=product)

    partial = order_refund(order=order, quantities={line.pk: 2}, reason="both broken")
    assert (partial.amount, partial.status) == (Decimal("39.80"), Refund.Status.SUCCEEDED)
    [notice] = alipay.outbox.held
    assert (notice.kind, notice.reference) == (
        "TRADE_SUCCESS",
        AlipayProvider().refund_reference(partial.idempotency_key),
    )
    rest = order_refund(order=order, reason="the rest")

    assert alipay.outbox.release() == [True, True]

    order.refresh_from_db()
    assert (order.status, order.refunded_total) == (Status.REFUNDED, Decimal("44.80"))
    trade = alipay.trade(payment.reference)
    assert (trade.refunded, trade.trade_status) == (Decimal("44.80"), "TRADE_CLOSED")
    assert rest.status == Refund.Status.SUCCEEDED
    assert list(WebhookEvent.objects.filter(event_type="refund.succeeded").values_list("outcome", flat=True)) == [
        "refund already succeeded",
        "refund already succeeded",
    ]


def test_a_refund_alipay_refuses_is_not_recorded(alipay, order, open_payment):
    payment, action = open_payment(order, "alipay", "wap")
    buyer_opens(action.url)
    alipay.buyer_pays(payment.reference)
    alipay.outbox.release()
    alipay.trades[payment.reference].refunded = Decimal("40.00")  # refunded elsewhere
    before = snapshot(order)

    with pytest.raises(ShopError, match=r"ACQ\.REFUND_AMT_NOT_EQUAL_TOTAL"):
        order_refund(order=order, reason="all")

    assert snapshot(order) == before


def test_logs_hold_no_key_or_signature(alipay, order, open_payment, caplog, live_server):
    caplog.set_level(logging.DEBUG)
    payment, action = open_payment(order, "alipay", "page")
    buyer_opens(action.url)
    alipay.buyer_pays(payment.reference)
    [notification] = alipay.outbox.take()
    body, headers = notification.prepare()
    post_webhook(live_server, "alipay", body.replace(b"total_amount=44.80", b"total_amount=1.00"), headers)
    alipay.outbox.send(notification)
    order_refund(order=Order.objects.get(pk=order.pk), reason="all")

    text = "\n".join(record.getMessage() for record in caplog.records)
    assert "refused" in text
    signature = dict(parse_qsl(body.decode()))["sign"]
    secrets = [alipay.app_keys.private_pem().splitlines()[1], signature, dict(parse_qsl(body.decode()))["buyer_id"]]
    assert [secret for secret in secrets if secret in text] == []
