"""Checkout with a real rail as PAYMENT_PROVIDER (the method picker comes later): Alipay sends the buyer to its
cashier; a provider that cannot start (WeChat Pay needs a method, a gateway that cannot be reached) leaves the order
placed and says so on the order page, never a server error."""

from urllib.parse import parse_qsl, urlsplit

from django.urls import reverse

from shops.models import Order, Payment
from tests.payments.conftest import http

CHECKOUT = {"name": "Wang Fang", "phone": "13900001111", "email": "", "address": "1 Nanjing Road"}


def checkout(client, order_shop_product) -> object:
    shop, product = order_shop_product
    client.post(reverse("shops:product_detail", args=[shop.slug, product.pk]), {"quantity": 2})
    return client.post(reverse("shops:checkout", args=[shop.slug]), CHECKOUT)


def test_checkout_sends_the_buyer_to_the_alipay_cashier(client, alipay, settings, order, product):
    settings.PAYMENT_PROVIDER = "alipay"

    response = checkout(client, (order.shop, product))

    new_order = Order.objects.exclude(pk=order.pk).get()
    payment = Payment.objects.get(order=new_order)
    assert response.status_code == 302 and response["Location"].startswith(alipay.gateway_url + "?")
    params = dict(parse_qsl(urlsplit(response["Location"]).query))
    assert params["method"] == "alipay.trade.page.pay"
    assert params["notify_url"] == settings.SITE_URL + "/payments/webhook/alipay/"
    status, page, _location = http(response["Location"])
    assert status == 200 and f"¥{new_order.total}" in page.decode()
    assert alipay.trade(payment.reference).total_amount == new_order.total


def test_a_provider_that_cannot_start_leaves_the_order_to_pay_again(client, wechat, settings, order, product):
    settings.PAYMENT_PROVIDER = "wechatpay"  # without a method WeChat Pay cannot start

    response = checkout(client, (order.shop, product))

    new_order = Order.objects.exclude(pk=order.pk).get()
    assert response.status_code == 302
    assert response["Location"] == reverse("shops:order_detail", args=[new_order.number])
    assert new_order.status == Order.Status.PENDING_PAYMENT
    assert not Payment.objects.filter(order=new_order).exists()
    page = client.get(response["Location"]).content.decode()
    assert "The payment could not be started. Please try again." in page


def test_pay_again_with_a_provider_that_cannot_start_says_so(client, alipay, wechat, settings, order, product):
    settings.PAYMENT_PROVIDER = "alipay"
    checkout(client, (order.shop, product))
    new_order = Order.objects.exclude(pk=order.pk).get()
    settings.PAYMENT_PROVIDER = "wechatpay"

    again = client.post(reverse("shops:order_pay", args=[new_order.number]), follow=True)

    assert again.redirect_chain == [(reverse("shops:order_detail", args=[new_order.number]), 302)]
    assert "The payment could not be started. Please try again." in again.content.decode()
    assert Payment.objects.filter(order=new_order).count() == 1  # the Alipay one, still pending
