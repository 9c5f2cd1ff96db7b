"""The payment webhook over HTTP, as the provider calls it, and the sandbox provider's hosted page."""

import json
import logging
import time
from decimal import Decimal

import pytest
from django.urls import reverse

from shops import tasks as shop_tasks
from shops.models import Order, OrderEvent, Payment, Product, WebhookEvent
from shops.payments.sandbox import SIGNATURE_HEADER, build_webhook, sign
from shops.services import order_cancel, payment_start, payment_webhook_receive
from tests.factories import ProductFactory, place_order, shop_with_products

pytestmark = pytest.mark.django_db

Status = Order.Status
WEBHOOK_URL = reverse("shops:payment_webhook", args=["sandbox"])


@pytest.fixture
def product():
    return ProductFactory(price=Decimal("19.90"), stock=10)


@pytest.fixture
def payment(product) -> Payment:
    """A pending sandbox payment for an order of 2 × 19.90, opened as the checkout view opens it."""
    order = place_order(shop_with_products(product), {product: 2})
    payment, _url = payment_start(
        order=order,
        notify_url="http://testserver" + WEBHOOK_URL,
        return_url="http://testserver" + reverse("shops:order_detail", args=[order.number]),
    )
    return payment


def post_webhook(client, body: bytes, signature: str | None, url: str = WEBHOOK_URL):
    headers = {SIGNATURE_HEADER: signature} if signature is not None else {}
    return client.post(url, data=body, content_type="application/json", headers=headers)


def signed(payload: dict, *, now: float | None = None, secret: str | None = None) -> tuple[bytes, str]:
    body = json.dumps(payload, separators=(",", ":")).encode()
    timestamp = int(now if now is not None else time.time())
    return body, sign(body, timestamp, secret=secret)


def event_payload(for_payment: Payment, **data) -> dict:
    return {
        "id": "evt_test_1",
        "type": "payment.succeeded",
        "created": int(time.time()),
        "data": {"payment": for_payment.reference, "amount": str(for_payment.amount), "currency": "CNY", **data},
    }


def state(payment: Payment) -> dict:
    """What a refused webhook must leave alone."""
    order = Order.objects.get(pk=payment.order_id)
    fresh = Payment.objects.get(pk=payment.pk)
    return {
        "order": (order.status, order.paid_at, order.cancelled_at, order.refunded_total),
        "payment": (fresh.status, fresh.completed_at),
        "order_events": list(OrderEvent.objects.filter(order=order).values_list("pk", "kind")),
        "webhook_events": WebhookEvent.objects.count(),
        "stock": dict(Product.objects.values_list("pk", "stock")),
    }


def paid_transitions(order_id: int) -> int:
    return OrderEvent.objects.filter(order_id=order_id, kind=OrderEvent.Kind.STATUS, to_status=Status.PAID).count()


# --- the webhook endpoint ---------------------------------------------------------------


def test_valid_webhook_once_pays_the_order(client, payment):
    body, headers = build_webhook(payment, "succeeded")

    response = post_webhook(client, body, headers[SIGNATURE_HEADER])

    assert response.status_code == 200
    assert response.content == b"order paid"
    order = Order.objects.get(pk=payment.order_id)
    assert order.status == Status.PAID
    assert order.paid_at is not None
    assert Payment.objects.get(pk=payment.pk).status == Payment.Status.SUCCEEDED
    event_id = json.loads(body)["id"]
    assert list(WebhookEvent.objects.values_list("provider", "event_id", "event_type", "outcome")) == [
        ("sandbox", event_id, "payment.succeeded", "order paid")
    ]
    assert paid_transitions(order.pk) == 1


def test_the_same_event_again_answers_200_and_changes_nothing(client, payment):
    body, headers = build_webhook(payment, "succeeded")
    assert post_webhook(client, body, headers[SIGNATURE_HEADER]).status_code == 200
    before = state(payment)

    response = post_webhook(client, body, headers[SIGNATURE_HEADER])

    assert response.status_code == 200
    assert response.content == b"already processed"
    assert state(payment) == before
    assert WebhookEvent.objects.count() == 1
    assert paid_transitions(payment.order_id) == 1


def test_bad_signature_is_refused_with_400_and_changes_nothing(client, payment, caplog):
    body, headers = build_webhook(payment, "succeeded")
    timestamp = headers[SIGNATURE_HEADER].split(",")[0]
    before = state(payment)

    with caplog.at_level(logging.WARNING, logger="shops.views"):
        response = post_webhook(client, body, f"{timestamp},v1={'0' * 64}")

    assert response.status_code == 400
    assert state(payment) == before
    assert WebhookEvent.objects.count() == 0
    assert Order.objects.get(pk=payment.order_id).status == Status.PENDING_PAYMENT
    refusals = [record.getMessage() for record in caplog.records if record.name == "shops.views"]
    assert refusals == ["webhook from sandbox refused: signature does not match"]


@pytest.mark.parametrize("signature", [None, "", "garbage", "t=notanumber,v1=abc", "v1=abc"])
def test_missing_or_malformed_signature_header_is_refused(client, payment, signature):
    body, _headers = build_webhook(payment, "succeeded")
    before = state(payment)

    response = post_webhook(client, body, signature)

    assert response.status_code == 400
    assert state(payment) == before


def test_stale_timestamp_is_refused(client, payment, settings):
    body, headers = build_webhook(payment, "succeeded", now=time.time() - settings.PAYMENTS_WEBHOOK_TOLERANCE - 10)
    before = state(payment)

    response = post_webhook(client, body, headers[SIGNATURE_HEADER])

    assert response.status_code == 400
    assert b"tolerance" in response.content
    assert state(payment) == before


def test_timestamp_too_far_in_the_future_is_refused(client, payment, settings):
    body, headers = build_webhook(payment, "succeeded", now=time.time() + settings.PAYMENTS_WEBHOOK_TOLERANCE + 10)
    before = state(payment)

    response = post_webhook(client, body, headers[SIGNATURE_HEADER])

    assert response.status_code == 400
    assert state(payment) == before


def test_timestamp_within_the_tolerance_is_accepted(client, payment, settings):
    body, headers = build_webhook(payment, "succeeded", now=time.time() - settings.PAYMENTS_WEBHOOK_TOLERANCE + 30)

    response = post_webhook(client, body, headers[SIGNATURE_HEADER])

    assert response.status_code == 200
    assert Order.objects.get(pk=payment.order_id).status == Status.PAID


def test_signature_made_with_the_wrong_secret_is_refused(client, payment):
    body, signature = signed(event_payload(payment), secret="not-the-shared-secret")
    before = state(payment)

    response = post_webhook(client, body, signature)

    assert response.status_code == 400
    assert state(payment) == before


def test_tampered_body_with_the_original_signature_is_refused(client, payment):
    body, headers = build_webhook(payment, "failed")
    tampered = body.replace(b'"type":"payment.failed"', b'"type":"payment.succeeded"')
    assert tampered != body
    before = state(payment)

    response = post_webhook(client, tampered, headers[SIGNATURE_HEADER])

    assert response.status_code == 400
    assert state(payment) == before


def test_amount_different_from_the_payment_is_refused_and_the_order_stays_pending(client, payment):
    body, signature = signed(event_payload(payment, amount=str(payment.amount - Decimal("0.01"))))
    before = state(payment)

    response = post_webhook(client, body, signature)

    assert response.status_code == 400
    assert state(payment) == before
    assert Order.objects.get(pk=payment.order_id).status == Status.PENDING_PAYMENT
    assert WebhookEvent.objects.count() == 0


def test_refused_amount_does_not_burn_the_event_id(client, payment):
    # A provider that resends the event (same id) with the right amount is still heard.
    wrong, wrong_signature = signed(event_payload(payment, amount="0.01"))
    assert post_webhook(client, wrong, wrong_signature).status_code == 400
    right, right_signature = signed(event_payload(payment))

    response = post_webhook(client, right, right_signature)

    assert response.status_code == 200
    assert Order.objects.get(pk=payment.order_id).status == Status.PAID


def test_unknown_payment_reference_is_refused(client, payment):
    body, signature = signed(event_payload(payment, payment="pay_doesnotexist"))
    before = state(payment)

    response = post_webhook(client, body, signature)

    assert response.status_code == 400
    assert state(payment) == before
    assert WebhookEvent.objects.count() == 0


@pytest.mark.parametrize("payload", [{"type": "payment.succeeded"}, {"id": "evt_1", "type": "payment.refunded"}])
def test_malformed_or_unknown_event_is_refused(client, payment, payload):
    body, signature = signed(payload)
    before = state(payment)

    response = post_webhook(client, body, signature)

    assert response.status_code == 400
    assert state(payment) == before


def test_unknown_provider_in_the_url_is_refused(client, payment):
    body, headers = build_webhook(payment, "succeeded")
    before = state(payment)

    response = post_webhook(
        client, body, headers[SIGNATURE_HEADER], url=reverse("shops:payment_webhook", args=["stripe"])
    )

    assert response.status_code == 400
    assert state(payment) == before


def test_get_is_not_allowed(client, payment):
    response = client.get(WEBHOOK_URL)

    assert response.status_code == 405
    assert WebhookEvent.objects.count() == 0


def test_header_given_as_a_wsgi_meta_key_is_read(client, payment):
    body, headers = build_webhook(payment, "succeeded")

    response = client.post(
        WEBHOOK_URL, data=body, content_type="application/json", HTTP_X_SANDBOX_SIGNATURE=headers[SIGNATURE_HEADER]
    )

    assert response.status_code == 200
    assert Order.objects.get(pk=payment.order_id).status == Status.PAID


def test_failed_then_succeeded_for_the_same_payment_ends_paid(client, payment):
    failed, failed_headers = build_webhook(payment, "failed")
    succeeded, succeeded_headers = build_webhook(payment, "succeeded")

    first = post_webhook(client, failed, failed_headers[SIGNATURE_HEADER])
    second = post_webhook(client, succeeded, succeeded_headers[SIGNATURE_HEADER])

    assert (first.status_code, first.content) == (200, b"payment failed")
    assert (second.status_code, second.content) == (200, b"order paid")
    assert Order.objects.get(pk=payment.order_id).status == Status.PAID
    assert Payment.objects.get(pk=payment.pk).status == Payment.Status.SUCCEEDED
    assert WebhookEvent.objects.count() == 2
    assert paid_transitions(payment.order_id) == 1


def test_succeeded_then_a_late_failed_for_the_same_payment_stays_paid(client, payment):
    succeeded, succeeded_headers = build_webhook(payment, "succeeded")
    failed, failed_headers = build_webhook(payment, "failed")
    assert post_webhook(client, succeeded, succeeded_headers[SIGNATURE_HEADER]).status_code == 200

    response = post_webhook(client, failed, failed_headers[SIGNATURE_HEADER])

    assert response.status_code == 200
    assert Order.objects.get(pk=payment.order_id).status == Status.PAID
    assert Payment.objects.get(pk=payment.pk).status == Payment.Status.SUCCEEDED


def test_payment_for_an_order_already_cancelled_keeps_it_cancelled_and_records_a_refund(client, payment, product):
    # given: the order timed out and its stock went back
    order_cancel(order=payment.order, actor_label="system", reason="Not paid in time.")
    assert Product.objects.get(pk=product.pk).stock == 10
    body, headers = build_webhook(payment, "succeeded")

    # when the buyer's payment arrives anyway
    response = post_webhook(client, body, headers[SIGNATURE_HEADER])

    # then
    assert (response.status_code, response.content) == (200, b"late payment refunded")
    order = Order.objects.get(pk=payment.order_id)
    assert order.status == Status.CANCELLED
    assert order.paid_at is None
    assert paid_transitions(order.pk) == 0
    refunds = list(
        OrderEvent.objects.filter(order=order, kind=OrderEvent.Kind.REFUND).values_list("amount", "actor_label")
    )
    assert refunds == [(Decimal("39.80"), "system")]
    assert Product.objects.get(pk=product.pk).stock == 10
    assert WebhookEvent.objects.get().outcome == "late payment refunded"


def test_direct_call_with_a_plain_dict_of_headers_is_accepted(payment):
    body, headers = build_webhook(payment, "succeeded")

    result = payment_webhook_receive(
        provider_name="sandbox", body=body, headers={"x-sandbox-signature": headers[SIGNATURE_HEADER]}
    )

    assert (result.duplicate, result.outcome) == (False, "order paid")


# --- the sandbox provider's hosted page ------------------------------------------------------


@pytest.fixture
def deliveries(monkeypatch):
    """Capture what the sandbox would send: [(url, body, headers)]."""
    sent: list[tuple] = []
    monkeypatch.setattr(
        shop_tasks.sandbox_webhook_deliver_task, "delay", lambda url, body, headers: sent.append((url, body, headers))
    )
    return sent


def test_sandbox_page_shows_the_amount(client, payment):
    response = client.get(reverse("shops:sandbox_pay", args=[payment.reference]))

    assert response.status_code == 200
    assert "Pay ¥39.80" in response.content.decode()
    assert payment.order.number in response.content.decode()


def test_sandbox_page_for_an_unknown_reference_is_404(client, payment):
    response = client.get(reverse("shops:sandbox_pay", args=["pay_nope"]))

    assert response.status_code == 404


def test_sandbox_page_refuses_an_unknown_outcome(client, payment, deliveries):
    before = state(payment)

    response = client.post(reverse("shops:sandbox_pay", args=[payment.reference]), {"outcome": "bogus"})

    assert response.status_code == 400
    assert deliveries == []
    assert state(payment) == before


def test_sandbox_pay_sends_a_webhook_the_endpoint_accepts_and_returns_the_buyer(client, payment, deliveries):
    # when the buyer presses Pay
    response = client.post(reverse("shops:sandbox_pay", args=[payment.reference]), {"outcome": "succeeded"})

    # then the buyer goes back to the shop
    assert response.status_code == 302
    assert response["Location"] == payment.return_url
    # and the sandbox sends one signed webhook to the payment's notify URL
    assert len(deliveries) == 1
    url, body, headers = deliveries[0]
    assert url == payment.notify_url == "http://testserver" + WEBHOOK_URL
    assert isinstance(body, str)
    assert json.loads(body)["data"] == {"payment": payment.reference, "amount": "39.80", "currency": "CNY"}
    assert Order.objects.get(pk=payment.order_id).status == Status.PENDING_PAYMENT  # until the webhook lands

    # which the webhook endpoint accepts
    delivered = client.post(
        url,
        data=body.encode(),
        content_type=headers["Content-Type"],
        headers={name: value for name, value in headers.items() if name != "Content-Type"},
    )
    assert (delivered.status_code, delivered.content) == (200, b"order paid")
    assert Order.objects.get(pk=payment.order_id).status == Status.PAID


def test_sandbox_decline_sends_a_failed_webhook(client, payment, deliveries):
    client.post(reverse("shops:sandbox_pay", args=[payment.reference]), {"outcome": "failed"})

    (url, body, headers) = deliveries[0]
    delivered = client.post(
        url, data=body.encode(), content_type="application/json", headers={SIGNATURE_HEADER: headers[SIGNATURE_HEADER]}
    )
    assert (delivered.status_code, delivered.content) == (200, b"payment failed")
    assert Payment.objects.get(pk=payment.pk).status == Payment.Status.FAILED
    assert Order.objects.get(pk=payment.order_id).status == Status.PENDING_PAYMENT


def test_sandbox_page_sends_nothing_for_a_payment_already_settled(client, payment, deliveries):
    body, headers = build_webhook(payment, "succeeded")
    assert post_webhook(client, body, headers[SIGNATURE_HEADER]).status_code == 200

    response = client.post(reverse("shops:sandbox_pay", args=[payment.reference]), {"outcome": "succeeded"})

    assert response.status_code == 302
    assert response["Location"] == payment.return_url
    assert deliveries == []
