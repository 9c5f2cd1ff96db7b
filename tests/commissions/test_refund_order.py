"""Refund tasks that arrive out of order still reverse exactly once."""

from decimal import Decimal

import pytest

from commissions.models import CommissionEntry
from commissions.services import commission_apply_refund
from shops.services import order_refund
from tests.factories import ProductFactory, make_chain, pay_order, place_order, shop_with_products

pytestmark = pytest.mark.django_db


def test_a_late_earlier_refund_is_not_reversed_twice(django_capture_on_commit_callbacks):
    chain = make_chain(2)
    product = ProductFactory(price=Decimal("10.00"), commission_rate=Decimal("0.3000"))
    shop = shop_with_products(product, owner=chain[1])
    order = place_order(shop, {product: 4})
    with django_capture_on_commit_callbacks(execute=True):
        pay_order(order)
    line = order.lines.get()
    # two refunds whose commission tasks are lost for now
    first = order_refund(order=order, quantities={line.pk: 1})
    second = order_refund(order=order, quantities={line.pk: 1})

    commission_apply_refund(refund_id=second.pk)  # the later one arrives first
    commission_apply_refund(refund_id=first.pk)
    commission_apply_refund(refund_id=second.pk)

    entries = CommissionEntry.objects.filter(order_line=line)
    reversed_total = sum(e.amount for e in entries if e.kind == "reversal")
    original_total = sum(e.amount for e in entries if e.kind == "commission")
    # pool 12.00 → 9.60 + 2.40; half the line refunded → half of each share reversed
    assert original_total == Decimal("12.00")
    assert reversed_total == Decimal("-6.00")
    assert entries.filter(kind="reversal").count() == 4
