"""Staff see how each order was paid and how each refund stands at the provider: the payment's provider, method
and status on the order list and page and the payment list; the refund's status on the refund list, its page, and
the order page; the order list filters by provider and refund status."""

from decimal import Decimal

import pytest
from django.urls import reverse

from shops.models import Payment, Refund
from shops.services import order_refund
from tests.factories import ProductFactory, pay_order, place_order, shop_with_products

pytestmark = pytest.mark.django_db  # `admin_client` is pytest-django's: a superuser, logged in


@pytest.fixture
def orders():
    """A paid order with a refund pending at the provider, and an unpaid one with a WeChat Pay Native payment."""
    shop = shop_with_products(ProductFactory(price=Decimal("10.00")))
    paid = pay_order(place_order(shop))
    refund = order_refund(order=paid, reason="damaged")
    Refund.objects.filter(pk=refund.pk).update(status=Refund.Status.PENDING)
    unpaid = place_order(shop)
    Payment.objects.create(
        order=unpaid,
        provider="wechatpay",
        method="native",
        reference="pay_wx_native_1",
        amount=unpaid.total,
        notify_url="https://shop.example.com/payments/webhook/wechatpay/",
        return_url="https://shop.example.com/orders/x/",
    )
    return paid, unpaid, refund


def cells(html: str, row_marker: str) -> str:
    """The table row of a changelist that holds `row_marker`."""
    return html.split(row_marker, 1)[1].split("</tr>", 1)[0]


def test_the_order_list_shows_each_orders_latest_payment(admin_client, orders):
    paid, unpaid, _refund = orders

    html = admin_client.get(reverse("admin:shops_order_changelist")).content.decode()

    assert "WeChat Pay · native · Pending" in cells(html, unpaid.number)
    assert "Sandbox (test payment, no money moves) · hosted · Succeeded" in cells(html, paid.number)


def test_the_order_list_filters_by_provider_and_refund_status(admin_client, orders):
    paid, unpaid, _refund = orders
    url = reverse("admin:shops_order_changelist")

    by_provider = admin_client.get(url, {"payment_provider": "wechatpay"}).context["cl"].result_list
    by_refund = admin_client.get(url, {"refunds__status__exact": "pending"}).context["cl"].result_list
    no_failed = admin_client.get(url, {"refunds__status__exact": "failed"}).context["cl"].result_list

    assert [order.pk for order in by_provider] == [unpaid.pk]
    assert [order.pk for order in by_refund] == [paid.pk]
    assert list(no_failed) == []


def test_the_order_page_shows_the_payment_method_and_the_refund_status(admin_client, orders):
    paid, unpaid, _refund = orders

    paid_page = admin_client.get(reverse("admin:shops_order_change", args=[paid.pk])).content.decode()
    unpaid_page = admin_client.get(reverse("admin:shops_order_change", args=[unpaid.pk])).content.decode()

    assert "Pending at the provider" in paid_page
    assert "native" in unpaid_page and "pay_wx_native_1" in unpaid_page


def test_the_refund_list_and_page_show_its_status_and_filter_by_it(admin_client, orders):
    _paid, _unpaid, refund = orders
    url = reverse("admin:shops_refund_changelist")

    listing = admin_client.get(url).content.decode()
    page = admin_client.get(reverse("admin:shops_refund_change", args=[refund.pk])).content.decode()
    succeeded = admin_client.get(url, {"status__exact": "succeeded"}).context["cl"].result_list

    assert "Pending at the provider" in cells(listing, f">{refund.pk}</a>")
    assert "Pending at the provider" in page
    assert list(succeeded) == []


def test_the_payment_list_shows_and_filters_the_method(admin_client, orders):
    url = reverse("admin:shops_payment_changelist")

    listing = admin_client.get(url).content.decode()
    native = admin_client.get(url, {"method": "native"}).context["cl"].result_list

    assert "native" in cells(listing, "pay_wx_native_1")
    assert [payment.reference for payment in native] == ["pay_wx_native_1"]
