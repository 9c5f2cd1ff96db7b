"""A member's coupon code (issue #22): the buyer's discount is funded from the line's pool before the split.

The examples of docs/commissions.md §11 against the pure calculation (exact to the cent, Decimal), then end to end
through checkout, payment, the split, a refund and the ledger checker, and the policy refusing a discount larger than
a product's pool.
"""

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from commissions.calculations import ChainMember, Plan, Policy, line_pool, split_line
from commissions.forms import CompliancePolicyPublishForm
from commissions.models import CommissionEntry, CompliancePolicy
from commissions.services import CommissionError, policy_publish
from core.forms import add_service_errors
from shops.coupons import coupon_line_discount
from shops.models import AttributionOptions, Order
from shops.selectors import attribution_options
from shops.services import BuyerDetails, coupon_code_for_member, order_place, order_refund
from staff.audit import PolicySource
from staff.ledger_check import check_split_lines_reconcile, ledger_check
from tests.factories import ProductFactory, make_chain, pay_order, shop_with_products

D = Decimal
Entry = CommissionEntry
DEFAULT_PLAN = Plan(rates=(D("0.8000"), D("0.2000")))
CHAIN = [ChainMember(3, True), ChainMember(2, True), ChainMember(1, True)]  # Sara, Paul, Grace


DEFAULT_POLICY = Policy()


def coupon_split(*, unit_price, quantity, commission_rate, discount_rate, policy=DEFAULT_POLICY):
    """(discount, net charged, pool, split) of one line bought with a coupon code, as checkout and the split do it."""
    list_amount = unit_price * quantity
    discount = coupon_line_discount(list_amount, commission_rate, discount_rate)
    net = list_amount - discount
    pool = line_pool(net, commission_rate, discount)
    return discount, net, pool, split_line(pool=pool, net_amount=net, chain=CHAIN, plan=DEFAULT_PLAN, policy=policy)


# --- the pure calculation: docs/commissions.md §11 ---------------------------------------------------------------


def test_example_g1_the_discount_comes_out_of_the_pool_before_the_split():
    # given: a wool scarf at 100.00 with a 20 % commission rate, a 5 % coupon discount
    discount, net, pool, split = coupon_split(
        unit_price=D("100.00"), quantity=1, commission_rate=D("0.2000"), discount_rate=D("0.0500")
    )
    # then: the buyer pays 95.00; the pool of 20.00 pays the 5.00 first; 15.00 is split 80/20
    assert (discount, net, pool) == (D("5.00"), D("95.00"), D("15.00"))
    assert [(s.level, s.member_id, s.amount, s.capped_by) for s in split.shares] == [
        (1, 3, D("12.00"), None),
        (2, 2, D("3.00"), None),
    ]
    assert split.platform_remainder == D("0.00")
    # the platform's margin (what the buyer pays less the pool) is what it is without the code: 80.00
    assert net - pool == D("100.00") - line_pool(D("100.00"), D("0.2000")) == D("80.00")


def test_example_g2_rounding_the_discount_down_and_the_pool_half_up():
    # given: 3 × oolong tea at 19.90 (12.5 %), a 3 % coupon
    discount, net, pool, split = coupon_split(
        unit_price=D("19.90"), quantity=3, commission_rate=D("0.1250"), discount_rate=D("0.0300")
    )
    # then: 59.70 × 3 % = 1.791 → 1.79 (down); pool 7.4625 → 7.46 (half-up) − 1.79 = 5.67
    assert (discount, net, pool) == (D("1.79"), D("57.91"), D("5.67"))
    # Sara 5.67 × 0.8 = 4.536 → 4.53; Paul 1.134 → 1.13; the platform 0.01
    assert [s.amount for s in split.shares] == [D("4.53"), D("1.13")]
    assert split.platform_remainder == D("0.01")
    assert split.member_total + split.platform_remainder == pool


def test_example_g3_the_payout_cap_is_on_what_the_buyer_paid():
    # given: a silk scarf at 100.00 with a 50 % commission rate, a 10 % coupon
    discount, net, pool, split = coupon_split(
        unit_price=D("100.00"), quantity=1, commission_rate=D("0.5000"), discount_rate=D("0.1000")
    )
    # then: the buyer pays 90.00; pool 50.00 − 10.00 = 40.00; the plan would pay 32.00 + 8.00 = 40.00, more than
    # 30 % of 90.00 = 27.00: every share is scaled by 27 / 40
    assert (discount, net, pool) == (D("10.00"), D("90.00"), D("40.00"))
    assert [(s.amount, s.capped_by) for s in split.shares] == [
        (D("21.60"), "max_payout_ratio"),
        (D("5.40"), "max_payout_ratio"),
    ]
    assert split.platform_remainder == D("13.00")
    assert split.member_total <= D("0.30") * net


def test_example_g4_a_cap_with_rounding_keeps_the_cap_exact():
    # given: a silk tie at 33.33 with a 50 % commission rate, a 7.5 % coupon
    discount, net, pool, split = coupon_split(
        unit_price=D("33.33"), quantity=1, commission_rate=D("0.5000"), discount_rate=D("0.0750")
    )
    # then: 33.33 × 7.5 % = 2.49975 → 2.49; net 30.84; pool 16.665 → 16.67 − 2.49 = 14.18
    assert (discount, net, pool) == (D("2.49"), D("30.84"), D("14.18"))
    # the plan would pay 11.34 + 2.83 = 14.17 > 30 % × 30.84 = 9.252 (exact): scaled by 9.252 / 14.18
    # Sara 14.18 × 0.8 × 9.252 / 14.18 = 7.4016 → 7.40; Paul 1.8504 → 1.85; members 9.25 ≤ 9.252
    assert [s.amount for s in split.shares] == [D("7.40"), D("1.85")]
    assert split.platform_remainder == D("4.93")


def test_a_discount_larger_than_the_pool_is_impossible_in_the_calculation():
    # the list amount 100.00 at 5 % has a pool of 5.00: a 6.00 discount cannot be funded
    with pytest.raises(ValueError, match="larger than the line's commission pool"):
        line_pool(D("94.00"), D("0.0500"), D("6.00"))
    # and a coupon never asks for more than the pool: 10 % of 100.00 is capped at the 5.00 pool
    assert coupon_line_discount(D("100.00"), D("0.0500"), D("0.1000")) == D("5.00")
    assert line_pool(D("95.00"), D("0.0500"), D("5.00")) == D("0.00")


def test_a_discount_equal_to_the_pool_leaves_nothing_to_split():
    discount, net, pool, split = coupon_split(
        unit_price=D("40.00"), quantity=2, commission_rate=D("0.0500"), discount_rate=D("0.0500")
    )
    assert (discount, net, pool) == (D("4.00"), D("76.00"), D("0.00"))
    assert [s.amount for s in split.shares] == [D("0.00"), D("0.00")]
    assert split.platform_remainder == D("0.00")


money = st.decimals(min_value=D("0.01"), max_value=D("99999.99"), places=2)
rates = st.decimals(min_value=D("0"), max_value=D("1"), places=4)


@given(unit_price=money, quantity=st.integers(1, 99), commission_rate=rates, discount_rate=rates)
def test_every_checkout_discount_is_funded_by_the_pool_and_every_split_reconciles_within_the_cap(
    unit_price, quantity, commission_rate, discount_rate
):
    list_amount = unit_price * quantity
    discount = coupon_line_discount(list_amount, commission_rate, discount_rate)
    # never more than the price times the rate (rounded down), never more than the pool that pays it
    assert D("0.00") <= discount <= (list_amount * discount_rate).quantize(D("0.01"), rounding="ROUND_DOWN")
    net = list_amount - discount
    pool = line_pool(net, commission_rate, discount)
    assert D("0.00") <= pool <= line_pool(list_amount, commission_rate)
    split = split_line(pool=pool, net_amount=net, chain=CHAIN, plan=DEFAULT_PLAN, policy=Policy())
    assert split.member_total + split.platform_remainder == pool
    assert split.member_total <= D("0.30") * net
    assert all(share.amount >= 0 for share in split.shares)


# --- end to end: checkout, payment, split, refund ----------------------------------------------------------------


@pytest.fixture
def coupons_on(db, django_user_model):
    staff = django_user_model.objects.create_user(email="staff@example.com", password="x", is_staff=True)
    return policy_publish(actor=staff, note="coupons", coupons_enabled=True, coupon_discount_rate=D("0.0500"))


BUYER = BuyerDetails(name="Wang Fang", phone="13900001111", email="", address="1 Nanjing Road, Shanghai")


def test_a_coupon_order_is_split_from_the_reduced_pool_and_the_ledger_reconciles(
    coupons_on, django_capture_on_commit_callbacks
):
    # given: Grace → Paul → Sara; Sara's code; a buyer in another member's shop
    grace, paul, sara = make_chain(3)
    scarf = ProductFactory(title="Wool scarf", price=D("100.00"), commission_rate=D("0.2000"))
    shop = shop_with_products(scarf)
    code = coupon_code_for_member(member=sara)

    # when
    order = order_place(shop=shop, items={scarf.pk: 1}, buyer=BUYER, coupon_code=code.code.lower())
    with django_capture_on_commit_callbacks(execute=True):
        pay_order(order)

    # then: the buyer paid 95.00; Sara is the sharer; the ledger is example (g1)
    order.refresh_from_db()
    line = order.lines.get()
    assert (order.total, line.net_amount, line.discount) == (D("95.00"), D("95.00"), D("5.00"))
    assert (order.sharer, order.attribution, order.coupon_code) == (sara, Order.Attribution.COUPON, code)
    rows = list(
        Entry.objects.filter(order=order).order_by("pk").values_list("kind", "beneficiary_id", "base", "amount")
    )
    assert rows == [
        ("commission", sara.pk, D("15.00"), D("12.00")),
        ("commission", paul.pk, D("15.00"), D("3.00")),
        ("platform", None, D("15.00"), D("0.00")),
    ]
    assert check_split_lines_reconcile().passed

    # and a full refund gives back what the buyer paid and reverses exactly what was paid out
    with django_capture_on_commit_callbacks(execute=True):
        refund = order_refund(order=order)
    assert refund.amount == D("95.00")
    reversed_ = dict(Entry.objects.filter(order=order, kind="reversal").values_list("beneficiary_id", "amount"))
    assert reversed_ == {sara.pk: D("-12.00"), paul.pk: D("-3.00")}


def test_a_partial_refund_of_a_discounted_line_returns_its_share_of_what_was_paid(coupons_on):
    _grace, _paul, sara = make_chain(3)
    tea = ProductFactory(price=D("19.90"), commission_rate=D("0.1250"))
    shop = shop_with_products(tea)
    order = order_place(shop=shop, items={tea.pk: 3}, buyer=BUYER, coupon_code=coupon_code_for_member(member=sara).code)
    pay_order(order)
    line = order.lines.get()
    # 59.70 − 5 % (2.98) = 56.72 charged
    assert (line.discount, line.net_amount) == (D("2.98"), D("56.72"))
    first = order_refund(order=order, quantities={line.pk: 1})
    second = order_refund(order=Order.objects.get(pk=order.pk), quantities={line.pk: 2})
    # 56.72 / 3 = 18.9066… → 18.90; then the rest, 37.82: together exactly what was paid
    assert (first.amount, second.amount) == (D("18.90"), D("37.82"))
    assert first.amount + second.amount == line.net_amount


# --- staff set the discount -----------------------------------------------------------------------------------------


def test_a_discount_larger_than_a_products_pool_is_refused_when_staff_set_it(db, django_user_model):
    staff = django_user_model.objects.create_user(email="staff@example.com", password="x", is_staff=True)
    ProductFactory(title="Rice", commission_rate=D("0.0300"))
    ProductFactory(title="Tea", commission_rate=D("0.1000"))
    before = CompliancePolicy.objects.count()

    with pytest.raises(CommissionError) as refused:
        policy_publish(actor=staff, note="too much", coupons_enabled=True, coupon_discount_rate=D("0.0500"))

    assert "Rice (3%)" in refused.value.message_dict["coupon_discount_rate"][0]
    assert CompliancePolicy.objects.count() == before
    assert attribution_options().coupons_enabled is False
    # at most the lowest commission rate is accepted, and put in force at checkout
    policy = policy_publish(actor=staff, note="ok", coupons_enabled=True, coupon_discount_rate=D("0.0300"))
    options = AttributionOptions.objects.get(pk=1)
    assert (options.coupons_enabled, options.coupon_discount_rate, options.policy_version) == (
        True,
        D("0.0300"),
        policy.version,
    )
    # the staff audit log shows who turned coupons on, with the rate
    detail = PolicySource().row(policy).detail
    assert "coupons_enabled=True coupon_discount_rate=0.0300" in detail
    assert detail.endswith("ok")


def test_the_policy_form_shows_the_refusal_on_the_discount_field(db, django_user_model):
    staff = django_user_model.objects.create_user(email="staff@example.com", password="x", is_staff=True)
    ProductFactory(title="Rice", commission_rate=D("0.0300"))
    form = CompliancePolicyPublishForm(
        data={
            "max_levels": "2",
            "max_total_rate": "1",
            "max_payout_ratio": "0.3",
            "ineligible_share": "platform",
            "coupons_enabled": "on",
            "coupon_discount_rate": "0.05",
            "binding_days": "0",
            "binding_mode": "keep",
            "note": "coupons",
        }
    )
    assert form.is_valid(), form.errors
    with pytest.raises(CommissionError) as refused:
        form.save(actor=staff)
    add_service_errors(form, refused.value)
    assert "larger than the commission pool" in form.errors["coupon_discount_rate"][0]


def test_many_coupon_orders_with_refunds_keep_every_ledger_check_green(coupons_on, django_capture_on_commit_callbacks):
    # given: Grace → Paul → Sara, Sara's code, products at awkward prices and rates (all ≥ the 5 % discount)
    _grace, _paul, sara = make_chain(3)
    products = [
        ProductFactory(price=D(price), commission_rate=D(rate), stock=1000)
        for price, rate in (("19.90", "0.1250"), ("33.33", "0.5000"), ("10.05", "0.0500"), ("0.99", "0.0700"))
    ]
    shop = shop_with_products(*products)
    code = coupon_code_for_member(member=sara).code
    orders = []
    for quantity in (1, 2, 3, 7):
        order = order_place(shop=shop, items={p.pk: quantity for p in products}, buyer=BUYER, coupon_code=code)
        with django_capture_on_commit_callbacks(execute=True):
            orders.append(pay_order(order))

    # when: some lines are refunded in part, one order in full
    for order in orders[1:]:
        line = order.lines.order_by("pk").first()
        with django_capture_on_commit_callbacks(execute=True):
            order_refund(order=order, quantities={line.pk: 1})
    with django_capture_on_commit_callbacks(execute=True):
        order_refund(order=Order.objects.get(pk=orders[-1].pk))

    # then: every line's pool is its reduced pool, shares + remainder = pool, members within 30 % of what was paid,
    # refunds never return more than was paid, and every check of the ledger checker passes
    for order in orders:
        for line in order.lines.all():
            entries = Entry.objects.filter(order_line=line, refund__isnull=True)
            pool = line_pool(line.net_amount, line.commission_rate, line.discount)
            assert {e.base for e in entries} == {pool}
            assert sum(e.amount for e in entries) == pool
            assert sum(e.amount for e in entries if e.level >= 1) <= D("0.30") * line.net_amount
            line.refresh_from_db()
            assert line.refunded_amount <= line.net_amount
    last = Order.objects.get(pk=orders[-1].pk)
    assert (last.status, last.refunded_total) == ("refunded", last.total)
    failing = [(result.name, result.violations) for result in ledger_check() if not result.passed]
    assert failing == []
