"""The worked examples of docs/commissions.md, end to end through the real services.

Each test places an order in a shop, pays it through the sandbox webhook (the split task runs on commit, eagerly)
and asserts every ledger row the document lists, with the same numbers. Members are named as in the document:
Grace sponsored Paul, Paul sponsored Sara, and Sara owns the shop (so she is the sharer, level 1).
"""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from commissions.models import CommissionEntry
from commissions.services import commission_release_due, plan_activate, plan_create, policy_publish
from referrals.services import member_set_status
from shops.services import BuyerDetails, order_mark_completed, order_mark_shipped, order_place, order_refund
from tests.factories import ProductFactory, make_chain, pay_order, place_order, shop_with_products

pytestmark = pytest.mark.django_db

D = Decimal
Entry = CommissionEntry
COMMISSION, PLATFORM = Entry.Kind.COMMISSION, Entry.Kind.PLATFORM
REVERSAL, CLAWBACK = Entry.Kind.REVERSAL, Entry.Kind.CLAWBACK
PENDING, AVAILABLE, PAID = Entry.Status.PENDING, Entry.Status.AVAILABLE, Entry.Status.PAID
PAYOUT_CAP = "max_payout_ratio"


@pytest.fixture
def people(db):
    """Grace → Paul → Sara (Grace is the root); the tests open Sara's shop."""
    grace, paul, sara = make_chain(3)
    return grace, paul, sara


def pay(order, capture):
    with capture(execute=True):
        return pay_order(order)


def ledger(order, line=None) -> list[tuple]:
    """Every row of the order (or of one line), in the order written, as the tables of the document show them:
    (kind, level, beneficiary id, base, rate, amount, capped_by, status)."""
    entries = Entry.objects.filter(order=order)
    if line is not None:
        entries = entries.filter(order_line=line)
    return [
        (e.kind, e.level, e.beneficiary_id, e.base, e.rate, e.amount, e.capped_by, e.status)
        for e in entries.order_by("pk")
    ]


def versions(order) -> set[tuple]:
    """{(plan version, policy version)} of every row of the order."""
    return set(Entry.objects.filter(order=order).values_list("plan__version", "policy__version"))


def complete(order, *, days_later: int = 7):
    """Ship and complete the order, then run the release as if `days_later` days had passed."""
    order_mark_shipped(order=order)
    order = order_mark_completed(order=order)
    released = commission_release_due(now=order.completed_at + timedelta(days=days_later))
    return order, released


def simulate_payout(order) -> None:
    """What the payouts app does once a payout batch is paid: the members' entries become `paid`."""
    Entry.objects.filter(order=order, kind=COMMISSION, status=AVAILABLE).update(status=PAID, paid_at=timezone.now())


def three_level_plan(staff_user, **policy_changes):
    """Policy: 3 levels (plus `policy_changes`); plan 50 % / 30 % / 20 % in force now."""
    policy = policy_publish(actor=staff_user, note="allow three levels", max_levels=3, **policy_changes)
    plan = plan_create(actor=staff_user, name="50/30/20", rates=(D("0.5000"), D("0.3000"), D("0.2000")))
    plan_activate(plan=plan, actor=staff_user)
    return policy, plan


# --- (a) two levels under the default policy ---------------------------------------------------------------------


def test_example_a_two_levels_under_the_default_policy(people, django_capture_on_commit_callbacks):
    # given: the default policy v1 and plan v1 (80 % / 20 %); 3 × oolong tea at 19.90 with a 12.5 % commission
    grace, paul, sara = people
    tea = ProductFactory(title="Oolong tea", price=D("19.90"), commission_rate=D("0.1250"))
    order = place_order(shop_with_products(tea, owner=sara), {tea: 3})

    # when
    pay(order, django_capture_on_commit_callbacks)

    # then: net 59.70, pool 7.4625 → 7.46; Sara 5.968 → 5.96, Paul 1.492 → 1.49, the platform the cent left over.
    # Grace is three links up the chain: the default policy pays two levels, so she gets nothing, not even a row.
    line = order.lines.get()
    assert (line.net_amount, line.commission_rate) == (D("59.70"), D("0.1250"))
    assert ledger(order) == [
        (COMMISSION, 1, sara.pk, D("7.46"), D("0.8000"), D("5.96"), "", PENDING),
        (COMMISSION, 2, paul.pk, D("7.46"), D("0.2000"), D("1.49"), "", PENDING),
        (PLATFORM, 0, None, D("7.46"), D("1.0000"), D("0.01"), "", PENDING),
    ]
    assert versions(order) == {(1, 1)}  # the default plan v1 and policy v1
    assert not Entry.objects.filter(beneficiary=grace).exists()


# --- (b) a cap binding ---------------------------------------------------------------------------------------------


def test_example_b_the_payout_ratio_cap_binds(people, django_capture_on_commit_callbacks):
    # given: the default policy (members may get at most 30 % of a line's net amount); two products whose
    # commission rate is 50 %, so the pool alone is more than the cap
    _grace, paul, sara = people
    scarf = ProductFactory(title="Silk scarf", price=D("100.00"), commission_rate=D("0.5000"))
    tie = ProductFactory(title="Silk tie", price=D("33.33"), commission_rate=D("0.5000"))
    square = ProductFactory(title="Silk pocket square", price=D("10.05"), commission_rate=D("0.5000"))
    order = place_order(shop_with_products(scarf, tie, square, owner=sara), {scarf: 1, tie: 1, square: 1})

    # when
    pay(order, django_capture_on_commit_callbacks)

    # then, scarf: pool 50.00, planned 40.00 + 10.00 = 50.00 > cap 30.00 → both scaled by 30/50
    lines = {line.product_id: line for line in order.lines.all()}
    scarf_line, tie_line, square_line = lines[scarf.pk], lines[tie.pk], lines[square.pk]
    assert ledger(order, scarf_line) == [
        (COMMISSION, 1, sara.pk, D("50.00"), D("0.8000"), D("24.00"), PAYOUT_CAP, PENDING),
        (COMMISSION, 2, paul.pk, D("50.00"), D("0.2000"), D("6.00"), PAYOUT_CAP, PENDING),
        (PLATFORM, 0, None, D("50.00"), D("1.0000"), D("20.00"), PAYOUT_CAP, PENDING),
    ]
    # the tie: pool 16.665 → 16.67, cap 30 % × 33.33 = 9.999 (exact, not rounded); shares scaled by 9.999/16.67:
    # 13.336 → 7.9992 → 7.99 and 3.334 → 1.9998 → 1.99; the platform keeps 16.67 − 9.98 = 6.69
    assert ledger(order, tie_line) == [
        (COMMISSION, 1, sara.pk, D("16.67"), D("0.8000"), D("7.99"), PAYOUT_CAP, PENDING),
        (COMMISSION, 2, paul.pk, D("16.67"), D("0.2000"), D("1.99"), PAYOUT_CAP, PENDING),
        (PLATFORM, 0, None, D("16.67"), D("1.0000"), D("6.69"), PAYOUT_CAP, PENDING),
    ]
    # and the pocket square: pool 5.025 → 5.03, planned 4.02 + 1.00; cap 30 % × 10.05 = 3.015 exact; shares
    # scaled by 3.015/5.03: 4.024 → 2.412 → 2.41 and 1.006 → 0.603 → 0.60, 3.01 in all (the cap rounded down
    # first, 3.01, would have paid 2.40 + 0.60 = 3.00); the platform keeps 5.03 − 3.01 = 2.02
    assert ledger(order, square_line) == [
        (COMMISSION, 1, sara.pk, D("5.03"), D("0.8000"), D("2.41"), PAYOUT_CAP, PENDING),
        (COMMISSION, 2, paul.pk, D("5.03"), D("0.2000"), D("0.60"), PAYOUT_CAP, PENDING),
        (PLATFORM, 0, None, D("5.03"), D("1.0000"), D("2.02"), PAYOUT_CAP, PENDING),
    ]
    assert versions(order) == {(1, 1)}


# --- (c) an inactive upline ----------------------------------------------------------------------------------------


def scarf_order_for(sara):
    product = ProductFactory(title="Wool scarf", price=D("100.00"), commission_rate=D("0.2000"))
    return place_order(shop_with_products(product, owner=sara), {product: 1})


def test_example_c1_suspended_upline_share_stays_with_the_platform(
    people, staff_user, django_capture_on_commit_callbacks
):
    # given: a 3-level policy that lets the platform keep an ineligible member's share, plan 50/30/20; Paul (level 2)
    # is suspended; a 100.00 scarf with a 20 % commission (pool 20.00, cap 30.00)
    grace, paul, sara = people
    policy, plan = three_level_plan(staff_user, ineligible_share="platform")
    member_set_status(member=paul, status="suspended", actor=staff_user, reason="example")
    order = scarf_order_for(sara)

    # when
    pay(order, django_capture_on_commit_callbacks)

    # then: Paul gets no row; his 6.00 stays with the platform
    assert ledger(order) == [
        (COMMISSION, 1, sara.pk, D("20.00"), D("0.5000"), D("10.00"), "", PENDING),
        (COMMISSION, 3, grace.pk, D("20.00"), D("0.2000"), D("4.00"), "", PENDING),
        (PLATFORM, 0, None, D("20.00"), D("1.0000"), D("6.00"), "", PENDING),
    ]
    assert versions(order) == {(plan.version, policy.version)}


def test_example_c2_suspended_upline_share_rolls_up(people, staff_user, django_capture_on_commit_callbacks):
    # given: the same, but the policy rolls an ineligible member's share up to the next eligible upline
    grace, paul, sara = people
    policy, plan = three_level_plan(staff_user, ineligible_share="roll_up")
    member_set_status(member=paul, status="suspended", actor=staff_user, reason="example")
    order = scarf_order_for(sara)

    # when
    pay(order, django_capture_on_commit_callbacks)

    # then: Grace gets Paul's level 2 share (recorded as rolled up from Paul) and her own level 3 share
    assert ledger(order) == [
        (COMMISSION, 1, sara.pk, D("20.00"), D("0.5000"), D("10.00"), "", PENDING),
        (COMMISSION, 2, grace.pk, D("20.00"), D("0.3000"), D("6.00"), "", PENDING),
        (COMMISSION, 3, grace.pk, D("20.00"), D("0.2000"), D("4.00"), "", PENDING),
        (PLATFORM, 0, None, D("20.00"), D("1.0000"), D("0.00"), "", PENDING),
    ]
    assert list(Entry.objects.filter(order=order).order_by("pk").values_list("rolled_up_from_id", flat=True)) == [
        None,
        paul.pk,
        None,
        None,
    ]
    assert versions(order) == {(plan.version, policy.version)}


@pytest.mark.parametrize("ineligible_share", ["platform", "roll_up"])
def test_example_c3_under_two_levels_a_suspended_sponsor_share_never_reaches_further_up(
    people, staff_user, ineligible_share, django_capture_on_commit_callbacks
):
    # given: the default two levels and plan 80/20; Paul suspended; Grace is active but two links above Sara
    grace, paul, sara = people
    if ineligible_share != "platform":
        policy_publish(actor=staff_user, note="roll up", ineligible_share=ineligible_share)
    member_set_status(member=paul, status="suspended", actor=staff_user, reason="example")
    order = scarf_order_for(sara)

    # when
    pay(order, django_capture_on_commit_callbacks)

    # then: with either option, Paul's 4.00 stays with the platform: rolling it up to Grace would pay someone
    # more than max_levels − 1 = 1 link above the sharer
    assert ledger(order) == [
        (COMMISSION, 1, sara.pk, D("20.00"), D("0.8000"), D("16.00"), "", PENDING),
        (PLATFORM, 0, None, D("20.00"), D("1.0000"), D("4.00"), "", PENDING),
    ]
    assert not Entry.objects.filter(beneficiary__in=[grace, paul]).exists()


# --- (d) self-purchase --------------------------------------------------------------------------------------------


def self_purchase(sara):
    product = ProductFactory(title="Wool scarf", price=D("100.00"), commission_rate=D("0.2000"))
    shop = shop_with_products(product, owner=sara)
    buyer = BuyerDetails(name="Sara", phone="", email=sara.user.email, address="2 Huaihai Road, Shanghai")
    order = order_place(shop=shop, items={product.pk: 1}, buyer=buyer)
    assert order.is_self_purchase
    return order


def test_example_d1_self_purchase_earns_nothing_by_default(people, django_capture_on_commit_callbacks):
    # given: the default policy; Sara buys a 100.00 scarf (20 %) in her own shop with her own email address
    _grace, _paul, sara = people
    order = self_purchase(sara)

    # when
    pay(order, django_capture_on_commit_callbacks)

    # then: nobody earns, neither Sara nor her upline; the whole pool is one platform row
    assert ledger(order) == [(PLATFORM, 0, None, D("20.00"), D("1.0000"), D("20.00"), "", PENDING)]
    assert Entry.objects.get(order=order).note == "self-purchase"
    assert versions(order) == {(1, 1)}


def test_example_d2_self_purchase_split_as_any_sale_when_the_policy_allows(
    people, staff_user, django_capture_on_commit_callbacks
):
    # given: a policy version that lets self-purchases earn
    _grace, paul, sara = people
    policy = policy_publish(actor=staff_user, note="self-purchase earns", self_purchase_earns=True)
    order = self_purchase(sara)

    # when
    pay(order, django_capture_on_commit_callbacks)

    # then
    assert ledger(order) == [
        (COMMISSION, 1, sara.pk, D("20.00"), D("0.8000"), D("16.00"), "", PENDING),
        (COMMISSION, 2, paul.pk, D("20.00"), D("0.2000"), D("4.00"), "", PENDING),
        (PLATFORM, 0, None, D("20.00"), D("1.0000"), D("0.00"), "", PENDING),
    ]
    assert versions(order) == {(1, policy.version)}


# --- (e) a partial refund before release ------------------------------------------------------------------------


def test_example_e_partial_refund_before_release(people, staff_user, django_capture_on_commit_callbacks):
    # given: the order of example (a), paid: 3 × 19.90, pool 7.46, Sara 5.96, Paul 1.49, platform 0.01
    _grace, paul, sara = people
    tea = ProductFactory(title="Oolong tea", price=D("19.90"), commission_rate=D("0.1250"))
    order = pay(place_order(shop_with_products(tea, owner=sara), {tea: 3}), django_capture_on_commit_callbacks)
    line = order.lines.get()

    # when: one of the three is refunded (19.90 of 59.70) before the commission is released
    with django_capture_on_commit_callbacks(execute=True):
        order_refund(order=order, quantities={line.pk: 1}, actor=staff_user, reason="broken box")

    # then: a third of each member share is reversed, rounded down: 5.96 / 3 = 1.986… → 1.98, 1.49 / 3 → 0.49
    originals = [
        (COMMISSION, 1, sara.pk, D("7.46"), D("0.8000"), D("5.96"), "", PENDING),
        (COMMISSION, 2, paul.pk, D("7.46"), D("0.2000"), D("1.49"), "", PENDING),
        (PLATFORM, 0, None, D("7.46"), D("1.0000"), D("0.01"), "", PENDING),
    ]
    reversals = [
        (REVERSAL, 1, sara.pk, D("7.46"), D("0.8000"), D("-1.98"), "", PENDING),
        (REVERSAL, 2, paul.pk, D("7.46"), D("0.2000"), D("-0.49"), "", PENDING),
    ]
    assert ledger(order) == originals + reversals
    refund = order.refunds.get()
    assert list(Entry.objects.filter(kind=REVERSAL).values_list("refund", flat=True)) == [refund.pk, refund.pk]

    # when: the order is completed and the 7-day hold passes
    order, released = complete(order)

    # then: originals and reversals are released together; Sara nets 3.98 and Paul 1.00
    assert released == 5
    assert ledger(order) == [(*row[:7], AVAILABLE) for row in originals + reversals]
    assert member_total(sara, AVAILABLE) == D("3.98")
    assert member_total(paul, AVAILABLE) == D("1.00")


def member_total(member, status) -> Decimal:
    return sum(Entry.objects.filter(beneficiary=member, status=status).values_list("amount", flat=True), D("0.00"))


# --- (f) a refund after payout (clawback) -----------------------------------------------------------------------


def test_example_f_refund_after_payout_is_clawed_back(people, staff_user, django_capture_on_commit_callbacks):
    # given: 2 × tea set at 45.00 with a 10 % commission: net 90.00, pool 9.00, Sara 7.20, Paul 1.80, platform 0.00;
    # completed, released after the hold, and paid out to Sara and Paul
    _grace, paul, sara = people
    tea_set = ProductFactory(title="Tea set", price=D("45.00"), commission_rate=D("0.1000"))
    order = pay(place_order(shop_with_products(tea_set, owner=sara), {tea_set: 2}), django_capture_on_commit_callbacks)
    order, released = complete(order)
    assert released == 3
    simulate_payout(order)
    line = order.lines.get()

    # when: one tea set is refunded (45.00 of 90.00)
    with django_capture_on_commit_callbacks(execute=True):
        order_refund(order=order, quantities={line.pk: 1}, actor=staff_user, reason="returned")

    # then: the paid entries stay as they are; half of each is clawed back as a negative, available entry
    assert ledger(order) == [
        (COMMISSION, 1, sara.pk, D("9.00"), D("0.8000"), D("7.20"), "", PAID),
        (COMMISSION, 2, paul.pk, D("9.00"), D("0.2000"), D("1.80"), "", PAID),
        (PLATFORM, 0, None, D("9.00"), D("1.0000"), D("0.00"), "", AVAILABLE),
        (CLAWBACK, 1, sara.pk, D("9.00"), D("0.8000"), D("-3.60"), "", AVAILABLE),
        (CLAWBACK, 2, paul.pk, D("9.00"), D("0.2000"), D("-0.90"), "", AVAILABLE),
    ]
    # and their balances go negative, to be netted against future commission
    assert member_total(sara, AVAILABLE) == D("-3.60")
    assert member_total(paul, AVAILABLE) == D("-0.90")
