"""Risk decisions under concurrency, on PostgreSQL (issue #25): real threads, one connection each, released together
by a barrier. Two staff deciding one flag at once decide it once; a decision and the release never cross."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from commissions.models import CommissionEntry, RiskEvent, RiskFlag
from commissions.services import commission_release_due
from commissions.services.risk import RELEASE, REVERSE, risk_flag_resolve, risk_sighting_record
from shops.models import Order
from shops.services import order_mark_completed, order_mark_shipped, order_place
from tests.commissions.test_risk_review import STRANGER
from tests.factories import (
    ProductFactory,
    UserFactory,
    default_commissions,
    make_chain,
    pay_order,
    shop_with_products,
)
from tests.payouts.test_concurrency import run_together

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

Entry = CommissionEntry


@pytest.fixture
def flagged_order():
    default_commissions()
    _paul, sara = make_chain(2)
    shop = shop_with_products(ProductFactory(price=Decimal("100.00")), owner=sara)
    risk_sighting_record(member_id=sara.pk, device_key="dev-sara")
    order = order_place(shop=shop, items={shop.listings.get().product_id: 1}, buyer=STRANGER, device_key="dev-sara")
    order = pay_order(order)
    order_mark_shipped(order=order)
    order = order_mark_completed(order=order)
    Order.objects.filter(pk=order.pk).update(completed_at=timezone.now() - timedelta(days=30))
    assert RiskFlag.objects.filter(order=order).exists()
    return order


def test_two_decisions_at_once_decide_once(flagged_order):
    staff = UserFactory(is_staff=True)
    flag = RiskFlag.objects.get()
    results, errors = run_together(
        [lambda action=action: risk_flag_resolve(flag=flag, action=action, actor=staff, reason="x")
         for action in (REVERSE, REVERSE, RELEASE)]
    )  # fmt: skip
    assert errors == []
    assert RiskEvent.objects.count() == 1
    flag.refresh_from_db()
    reversals = Entry.objects.filter(order=flagged_order, kind="reversal").count()
    assert reversals == (2 if flag.resolution == "reversed" else 0)


def test_a_reversal_and_the_release_never_cross(flagged_order):
    staff = UserFactory(is_staff=True)
    flag = RiskFlag.objects.get()
    results, errors = run_together(
        [lambda: risk_flag_resolve(flag=flag, action=REVERSE, actor=staff, reason="x"), commission_release_due]
    )
    assert errors == []
    # reversed before the release saw it, or held when the release ran: never released
    assert set(Entry.objects.filter(order=flagged_order, level__gte=1).values_list("status", flat=True)) == {"reversed"}
