"""Own-sales qualification of uplines (issue #25, docs/compliance.md#own-sales-qualification): an upline (level 2 and
up) earns on a downline's sale only with at least `upline_min_own_sales` own sales paid in the
`upline_qualification_days` before it; otherwise their share goes the way of an ineligible member's."""

from datetime import timedelta
from decimal import Decimal
from unittest import mock

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from commissions.calculations import INELIGIBLE_SHARE_ROLL_UP, ChainMember, Plan, Policy, split_line
from commissions.models import CommissionEntry, CompliancePolicy
from commissions.services import commission_split_queued, plan_activate, plan_create, policy_publish
from commissions.services import split as split_service
from networks.models import ExternalOrder, Network
from networks.services import tracking_id_for
from shops.models import Order
from shops.selectors import own_sales_paid_at
from shops.services import order_refund
from tests.commissions.test_external_ledger import T0, assert_ledger_clean, by_level, external_order_record, report
from tests.factories import ProductFactory, make_chain, pay_order, place_order, shop_with_products

D = Decimal
Entry = CommissionEntry

# --- the pure calculation ------------------------------------------------------------------------------------------

POOL, NET = D("10.00"), D("100.00")
PLAN = Plan((D("0.5000"), D("0.3000"), D("0.2000")))


def shares(split) -> list[tuple]:
    return [(share.level, share.member_id, share.amount, share.rolled_up_from) for share in split.shares]


def test_off_by_default_every_eligible_upline_earns_without_counting_sales():
    chain = [ChainMember(1, True), ChainMember(2, True), ChainMember(3, True)]

    split = split_line(pool=POOL, net_amount=NET, chain=chain, plan=PLAN, policy=Policy(max_levels=3))

    assert shares(split) == [(1, 1, D("5.00"), None), (2, 2, D("3.00"), None), (3, 3, D("2.00"), None)]
    assert split.unqualified_levels == ()


def test_an_upline_below_the_minimum_earns_nothing_and_the_platform_keeps_the_share():
    # given: two own sales needed; the sponsor made 1, the level 3 upline 2
    chain = [ChainMember(1, True), ChainMember(2, True, own_sales=1), ChainMember(3, True, own_sales=2)]
    policy = Policy(max_levels=3, max_payout_ratio=D("0.3000"), upline_min_own_sales=2)

    split = split_line(pool=POOL, net_amount=NET, chain=chain, plan=PLAN, policy=policy)

    assert shares(split) == [(1, 1, D("5.00"), None), (3, 3, D("2.00"), None)]
    assert split.unqualified_levels == (2,)
    assert split.withheld_levels == (2,)
    assert split.platform_remainder == D("3.00")
    assert split.member_total + split.platform_remainder == POOL


def test_the_sharer_is_never_asked_for_own_sales():
    # the sale is the sharer's own: even uncounted (None) the sharer earns
    chain = [ChainMember(1, True, own_sales=None)]

    split = split_line(pool=POOL, net_amount=NET, chain=chain, plan=PLAN, policy=Policy(upline_min_own_sales=5))

    assert shares(split) == [(1, 1, D("5.00"), None)]


def test_under_roll_up_an_unqualified_uplines_share_goes_to_the_next_qualified_one():
    chain = [ChainMember(1, True), ChainMember(2, True, own_sales=0), ChainMember(3, True, own_sales=1)]
    policy = Policy(max_levels=3, ineligible_share=INELIGIBLE_SHARE_ROLL_UP, upline_min_own_sales=1)

    split = split_line(pool=POOL, net_amount=NET, chain=chain, plan=PLAN, policy=policy)

    assert shares(split) == [(1, 1, D("5.00"), None), (2, 3, D("3.00"), 2), (3, 3, D("2.00"), None)]
    assert split.unqualified_levels == (2,) and split.withheld_levels == ()


def test_roll_up_never_goes_to_an_upline_who_is_unqualified_too():
    chain = [ChainMember(1, True), ChainMember(2, True, own_sales=0), ChainMember(3, True, own_sales=0)]
    policy = Policy(max_levels=3, ineligible_share=INELIGIBLE_SHARE_ROLL_UP, upline_min_own_sales=1)

    split = split_line(pool=POOL, net_amount=NET, chain=chain, plan=PLAN, policy=policy)

    assert shares(split) == [(1, 1, D("5.00"), None)]
    assert split.withheld_levels == (2, 3) and split.platform_remainder == D("5.00")


def test_a_qualified_but_suspended_upline_still_earns_nothing():
    chain = [ChainMember(1, True), ChainMember(2, False, own_sales=9)]

    split = split_line(pool=POOL, net_amount=NET, chain=chain, plan=PLAN, policy=Policy(upline_min_own_sales=1))

    assert shares(split) == [(1, 1, D("5.00"), None)]
    assert split.unqualified_levels == () and split.withheld_levels == (2,)


def test_an_uncounted_upline_never_passes_for_a_qualified_one():
    chain = [ChainMember(1, True), ChainMember(2, True)]

    with pytest.raises(ValueError, match="were not counted"):
        split_line(pool=POOL, net_amount=NET, chain=chain, plan=PLAN, policy=Policy(upline_min_own_sales=1))


@pytest.mark.parametrize("value", [-1, True, "1"])
def test_the_policy_refuses_a_minimum_that_is_not_a_count(value):
    with pytest.raises((TypeError, ValueError)):
        Policy(upline_min_own_sales=value)


# --- end to end ----------------------------------------------------------------------------------------------------


@pytest.fixture
def world(db, staff_user, django_capture_on_commit_callbacks):
    """grace → paul → sara (the sharer); paul has a shop of his own. Plan v1 (80/20), two levels."""
    grace, paul, sara = make_chain(3)
    tea = ProductFactory(title="Tea", price=D("100.00"), commission_rate=D("0.1000"))
    sara_shop = shop_with_products(tea, owner=sara)
    paul_shop = shop_with_products(tea, owner=paul)
    grace_shop = shop_with_products(tea, owner=grace)

    def sale(shop, *, paid_days_ago=0):
        with django_capture_on_commit_callbacks(execute=True):
            order = pay_order(place_order(shop, {tea: 1}))
        if paid_days_ago:
            Order.objects.filter(pk=order.pk).update(paid_at=timezone.now() - timedelta(days=paid_days_ago))
        return order

    return type(
        "World",
        (),
        {"grace": grace, "paul": paul, "sara": sara, "sara_shop": sara_shop, "paul_shop": paul_shop,
         "grace_shop": grace_shop, "sale": staticmethod(sale), "staff": staff_user},
    )  # fmt: skip


def qualification(world, minimum=1, days=30, **changes):
    return policy_publish(
        actor=world.staff, note="own sales", upline_min_own_sales=minimum, upline_qualification_days=days, **changes
    )


def commission(order) -> list[tuple]:
    return list(
        Entry.objects.filter(order=order)
        .order_by("level")
        .values_list("level", "kind", "beneficiary_id", "amount", "rolled_up_from_id", "note")
    )


def test_an_upline_without_own_sales_earns_nothing_on_a_downlines_sale(world):
    qualification(world)

    order = world.sale(world.sara_shop)

    # pool 10.00: Sara 8.00; Paul's 2.00 stays with the platform, and the platform line says why
    assert commission(order) == [
        (0, "platform", None, D("2.00"), None, "upline without the own sales the policy asks: level 2"),
        (1, "commission", world.sara.pk, D("8.00"), None, ""),
    ]


def test_an_upline_with_an_own_sale_in_the_period_earns(world):
    qualification(world)
    world.sale(world.paul_shop, paid_days_ago=29)

    order = world.sale(world.sara_shop)

    assert commission(order) == [
        (0, "platform", None, D("0.00"), None, ""),
        (1, "commission", world.sara.pk, D("8.00"), None, ""),
        (2, "commission", world.paul.pk, D("2.00"), None, ""),
    ]


def test_an_own_sale_before_the_period_does_not_count(world):
    qualification(world, days=30)
    world.sale(world.paul_shop, paid_days_ago=31)

    order = world.sale(world.sara_shop)

    assert [row[:3] for row in commission(order)] == [(0, "platform", None), (1, "commission", world.sara.pk)]


def test_a_self_purchase_does_not_qualify(world):
    qualification(world)
    own = world.sale(world.paul_shop)
    Order.objects.filter(pk=own.pk).update(is_self_purchase=True)

    order = world.sale(world.sara_shop)

    assert [row[:3] for row in commission(order)] == [(0, "platform", None), (1, "commission", world.sara.pk)]


def test_a_fully_refunded_own_sale_does_not_qualify(world):
    qualification(world)
    own = world.sale(world.paul_shop)
    order_refund(order=own, reason="returned")

    order = world.sale(world.sara_shop)

    assert [row[:3] for row in commission(order)] == [(0, "platform", None), (1, "commission", world.sara.pk)]


def test_a_sale_paid_after_the_downlines_does_not_qualify_it(world):
    # Only sales paid before the downline's count: the answer does not depend on when the split runs.
    qualification(world)
    own = world.sale(world.paul_shop)
    Order.objects.filter(pk=own.pk).update(paid_at=timezone.now() + timedelta(minutes=5))

    order = world.sale(world.sara_shop)

    assert [row[:3] for row in commission(order)] == [(0, "platform", None), (1, "commission", world.sara.pk)]


def test_under_roll_up_the_share_of_an_unqualified_sponsor_goes_to_a_qualified_upline(world):
    qualification(world, max_levels=3, ineligible_share="roll_up")
    plan_activate(
        plan=plan_create(actor=world.staff, name="Three", rates=(D("0.5000"), D("0.3000"), D("0.2000"))),
        actor=world.staff,
    )
    world.sale(world.grace_shop, paid_days_ago=1)  # Grace qualifies, Paul does not

    order = world.sale(world.sara_shop)

    assert [row[:5] for row in commission(order)] == [
        (0, "platform", None, D("0.00"), None),
        (1, "commission", world.sara.pk, D("5.00"), None),
        (2, "commission", world.grace.pk, D("3.00"), world.paul.pk),
        (3, "commission", world.grace.pk, D("2.00"), None),
    ]


def test_own_sales_are_counted_in_one_query_per_split_batch(world, django_capture_on_commit_callbacks):
    qualification(world)
    world.sale(world.paul_shop, paid_days_ago=2)
    # given: three sales by Sara, paid but not yet split (their on-commit split never ran)
    tea = world.sara_shop.listings.get().product
    orders = [pay_order(place_order(world.sara_shop, {tea: 1})) for _ in range(3)]

    with mock.patch.object(split_service, "own_sales_paid_at", wraps=own_sales_paid_at) as counted:
        assert commission_split_queued(limit=500) == 3

    assert counted.call_count == 1
    assert all(row[2] == world.paul.pk for order in orders for row in commission(order) if row[0] == 2)
    assert all(len(commission(order)) == 3 for order in orders)
    # and the count itself is one query
    with CaptureQueriesContext(connection) as queries:
        own_sales_paid_at({world.paul.pk, world.grace.pk}, timezone.now() - timedelta(days=30), timezone.now())
    assert len(queries) == 1


def test_nothing_is_counted_when_the_policy_asks_for_no_qualification(world):
    with mock.patch.object(split_service, "own_sales_paid_at", wraps=own_sales_paid_at) as counted:
        order = world.sale(world.sara_shop)

    assert counted.call_count == 0
    assert [row[:3] for row in commission(order)][-1] == (2, "commission", world.paul.pk)


def test_the_policy_refuses_a_qualification_out_of_range(world):
    from commissions.services import CommissionError

    with pytest.raises(CommissionError) as refused:
        qualification(world, days=0)
    assert "upline_qualification_days" in refused.value.message_dict

    with pytest.raises(CommissionError) as refused:
        qualification(world, minimum=-1)
    assert "upline_min_own_sales" in refused.value.message_dict


# --- sales on external networks ------------------------------------------------------------------------------------


@pytest.fixture
def network(db):
    return Network.objects.get_or_create(code="sandbox", defaults={"name": "Sandbox"})[0]


def test_an_external_sale_splits_over_the_uplines_own_sales_counted_at_its_first_split(network, staff_user):
    root, middle, sharer = make_chain(3)
    policy = policy_publish(actor=staff_user, note="own sales", upline_min_own_sales=1)
    CompliancePolicy.objects.filter(pk=policy.pk).update(effective_from=T0 - timedelta(days=1))
    tracking = tracking_id_for(network=network, member=sharer).value

    external_order_record(network=network, reported=report(tracking), source="sync")

    line = ExternalOrder.objects.get()
    # pool 12.00: the sharer 80 % = 9.60; the sponsor made no own sale, so the platform keeps their 2.40
    assert by_level(line) == {0: D("2.40"), 1: D("9.60")}
    assert line.split.chain == [[sharer.pk, True], [middle.pk, True, 0], [root.pk, True, 0]]
    # when: the network restates the commission, the line is split anew over the same answer
    external_order_record(
        network=network, reported=report(tracking, commission="20.00", at=T0 + timedelta(hours=1)), source="sync"
    )
    assert by_level(line)[1] == D("16.00") and 2 not in by_level(line)
    assert_ledger_clean()
