"""Ledger entries of a known amount at a known time, for the tests of reads over periods (leaderboards)."""

from datetime import datetime
from decimal import Decimal

from commissions.models import CommissionEntry
from shops.models import Order, Shop
from tests.factories import ProductFactory, place_order, shop_with_products

VEHICLE = "Orders for test entries"


def entry_at(beneficiary, amount: str, at: datetime, kind=CommissionEntry.Kind.COMMISSION) -> CommissionEntry:
    """An entry of `amount` for `beneficiary` (None: the platform's remainder) created at `at`, on an order of its
    own in one shared shop; the order is then cancelled (only a vehicle), so any number of them may be made."""
    shop = Shop.objects.filter(name=VEHICLE).first() or shop_with_products(ProductFactory(stock=100_000), name=VEHICLE)
    order = place_order(shop)
    Order.objects.filter(pk=order.pk).update(status=Order.Status.CANCELLED)
    return CommissionEntry.objects.create(
        order=order,
        order_line=order.lines.first(),
        beneficiary=beneficiary,
        level=1 if beneficiary else 0,
        kind=kind,
        base=Decimal("1.00"),
        rate=Decimal("1.0000"),
        amount=Decimal(amount),
        created_at=at,
    )
