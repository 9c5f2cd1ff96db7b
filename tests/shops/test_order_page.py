"""The buyer's order page tells the truth about payment and closing (issue #19): a declined payment says so and
offers to pay again (a new payment for the same order, which works), and only a payment on its way refreshes the
page; cancelled orders say who cancelled them and whether anything was charged."""

from datetime import timedelta
from urllib.parse import urlparse

import pytest
from django.urls import reverse
from django.utils import timezone

from shops.models import Order, Payment
from shops.services import order_cancel, orders_cancel_expired
from tests.factories import shop_with_products

pytestmark = pytest.mark.django_db

REFRESH = '<meta http-equiv="refresh" content="5">'


@pytest.fixture
def webhooks_via_client(client, monkeypatch):
    """Deliver the sandbox provider's webhooks to our endpoint through the test client, as HTTP would."""

    def deliver(url, body, headers):
        client.generic("POST", urlparse(url).path, body.encode(), content_type="application/json", headers=headers)

    monkeypatch.setattr("shops.tasks.sandbox_webhook_deliver_task.delay", deliver)


@pytest.fixture
def placed(client):
    """An order placed through checkout by this browser; returns (order, the sandbox payment page's path)."""
    shop = shop_with_products()
    product = shop.listings.first().product
    client.post(reverse("shops:product_detail", args=[shop.slug, product.pk]), {"quantity": 1})
    response = client.post(
        reverse("shops:checkout", args=[shop.slug]),
        {"name": "Li", "phone": "", "email": "li@example.com", "address": "2 Huaihai Road"},
    )
    return Order.objects.get(), response["Location"]


def page(client, order) -> str:
    response = client.get(reverse("shops:order_detail", args=[order.number]))
    assert response.status_code == 200
    return response.content.decode()


def test_a_payment_on_its_way_is_awaited_and_the_page_refreshes(client, placed):
    order, _pay_url = placed

    html = page(client, order)

    assert REFRESH in html
    assert "Waiting for your payment to be confirmed. This page refreshes by itself." in html
    assert "Pay now" in html


def test_a_declined_payment_says_it_failed_offers_to_pay_again_and_stops_refreshing(
    client, placed, webhooks_via_client
):
    order, pay_url = placed

    back = client.post(pay_url, {"outcome": "failed"})
    html = page(client, order)

    assert back["Location"].endswith(reverse("shops:order_detail", args=[order.number]))
    assert REFRESH not in html
    assert "Waiting for your payment" not in html
    assert '<strong id="order-status">Payment failed</strong>' in html
    assert "Your payment failed: it was declined and nothing was charged." in html
    assert "Pay again or cancel the order. We keep it for you until" in html
    assert ">Pay again</button>" in html
    assert ">Cancel order</button>" in html
    assert Order.objects.get(pk=order.pk).status == "pending_payment"


def test_paying_again_after_a_decline_opens_a_new_payment_that_pays_the_order(client, placed, webhooks_via_client):
    # given: a declined first attempt
    order, pay_url = placed
    client.post(pay_url, {"outcome": "failed"})
    first = Payment.objects.get()

    # when: the buyer presses "Pay again"
    again = client.post(reverse("shops:order_pay", args=[order.number]))

    # then: a new payment for the same order, on the provider's page; the order page awaits it
    second = Payment.objects.exclude(pk=first.pk).get()
    assert (second.order_id, second.amount, second.status) == (order.pk, order.total, "pending")
    assert again.status_code == 302
    assert again["Location"] == reverse("shops:sandbox_pay", args=[second.reference])
    assert REFRESH in page(client, order)

    # and paying it pays the order
    client.post(again["Location"], {"outcome": "succeeded"})
    html = page(client, order)
    assert Order.objects.get(pk=order.pk).status == "paid"
    assert list(Payment.objects.order_by("pk").values_list("status", flat=True)) == ["failed", "succeeded"]
    assert "Your payment is confirmed" in html
    assert REFRESH not in html
    assert "Pay again" not in html


@pytest.mark.parametrize(
    ("cancel", "sentence"),
    [
        (lambda order: order_cancel(order=order, actor_label="buyer", reason="changed my mind"),
         "You cancelled this order."),
        (lambda order: order_cancel(order=order, actor_label="staff", reason="out of stock"),
         "The shop cancelled this order."),
        (lambda order: orders_cancel_expired(now=timezone.now() + timedelta(minutes=31)),
         "This order was cancelled because it was not paid within 30 minutes."),
    ],
)  # fmt: skip
def test_a_cancelled_order_says_who_cancelled_it_and_that_nothing_was_charged(client, placed, cancel, sentence):
    order, _pay_url = placed

    cancel(order)
    html = page(client, order)

    assert Order.objects.get(pk=order.pk).status == "cancelled"
    assert sentence in html
    assert "Nothing was charged." in html
    assert REFRESH not in html
    assert "Pay now" not in html
    assert "Pay again" not in html


def test_a_payment_that_arrived_after_the_order_was_cancelled_is_said_to_be_refunded(
    client, placed, webhooks_via_client
):
    order, pay_url = placed
    order_cancel(order=order, actor_label="buyer")

    client.post(pay_url, {"outcome": "succeeded"})  # the provider's success arrives late
    html = page(client, order)

    assert Payment.objects.get().status == "refunded"
    assert "A payment that arrived after it was cancelled has been refunded in full." in html
    assert "Nothing was charged." not in html


def test_the_order_page_query_count_is_pinned(client, placed, django_assert_max_num_queries):
    order, _pay_url = placed
    order_cancel(order=order, actor_label="buyer")

    with django_assert_max_num_queries(6):
        page(client, order)
