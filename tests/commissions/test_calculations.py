"""The pure commission split (commissions/calculations.py): worked examples and property tests, no database."""

from decimal import Decimal
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from commissions.calculations import (
    CAP_MAX_PAYOUT_RATIO,
    CAP_MAX_TOTAL_RATE,
    HARD_MAX_LEVELS,
    HARD_MAX_PAYOUT_RATIO,
    INELIGIBLE_SHARE_CHOICES,
    INELIGIBLE_SHARE_PLATFORM,
    INELIGIBLE_SHARE_ROLL_UP,
    ChainMember,
    Plan,
    Policy,
    Reversal,
    Share,
    Split,
    line_pool,
    plan_violations,
    proportional_amount,
    refund_reversals,
    reversal_amount,
    split_line,
    take_back,
)
from core.money import CENT, ROUND_DOWN, ZERO, quantize_money

D = Decimal
PROPERTY_SETTINGS = settings(max_examples=1000, deadline=None)


def plan(*rates: str) -> Plan:
    return Plan(tuple(D(rate) for rate in rates))


def chain(*eligibility: bool) -> list[ChainMember]:
    """Members 1, 2, 3, ... nearest first: member 1 is the sharer."""
    return [ChainMember(member_id=index, is_eligible=is_eligible) for index, is_eligible in enumerate(eligibility, 1)]


def paid(split: Split) -> list[tuple[int, int, Decimal]]:
    return [(share.level, share.member_id, share.amount) for share in split.shares]


# --- the pool -----------------------------------------------------------------------------------------------------


def test_pool_is_net_times_rate_rounded_half_up():
    assert line_pool(D("100.00"), D("0.2000")) == D("20.00")
    assert line_pool(D("33.33"), D("0.1500")) == D("5.00")  # 4.9995
    assert line_pool(D("0.05"), D("0.1000")) == D("0.01")  # 0.005 rounds up
    assert line_pool(D("0.04"), D("0.1000")) == D("0.00")  # 0.004 rounds down
    assert line_pool(D("100.00"), D("0")) == D("0.00")


def test_pool_refuses_floats_and_bad_rates():
    with pytest.raises(TypeError):
        line_pool(100.0, D("0.2"))
    with pytest.raises(ValueError):
        line_pool(D("100.00"), D("1.0001"))
    with pytest.raises(ValueError):
        line_pool(D("100.00"), D("0.12345"))
    with pytest.raises(ValueError):
        line_pool(D("100.001"), D("0.1"))


# --- worked examples (docs/commissions.md) -----------------------------------------------------------------------


def test_two_levels_under_the_default_policy():
    # given: the default policy (2 levels, total rate 1, payout ratio 0.30), a 60/40 plan, a 100.00 line at 20%
    pool = line_pool(D("100.00"), D("0.2000"))

    # when
    split = split_line(
        pool=pool, net_amount=D("100.00"), chain=chain(True, True), plan=plan("0.6", "0.4"), policy=Policy()
    )

    # then
    assert pool == D("20.00")
    assert paid(split) == [(1, 1, D("12.00")), (2, 2, D("8.00"))]
    assert split.platform_remainder == D("0.00")
    assert split.capped_by is None
    assert [share.rate for share in split.shares] == [D("0.6"), D("0.4")]
    assert all(share.capped_by is None for share in split.shares)


def test_two_levels_leave_the_unplanned_rate_to_the_platform():
    split = split_line(
        pool=D("20.00"), net_amount=D("100.00"), chain=chain(True, True), plan=plan("0.5", "0.2"), policy=Policy()
    )

    assert paid(split) == [(1, 1, D("10.00")), (2, 2, D("4.00"))]
    assert split.platform_remainder == D("6.00")


def test_the_payout_ratio_cap_scales_every_share_by_the_same_factor():
    # given: a 50% commission makes a 50.00 pool on 100.00 net; 60/40 would pay 50.00 > 30% of net
    pool = line_pool(D("100.00"), D("0.5000"))

    # when
    split = split_line(
        pool=pool, net_amount=D("100.00"), chain=chain(True, True), plan=plan("0.6", "0.4"), policy=Policy()
    )

    # then: scaled by 0.6 to exactly 30.00
    assert paid(split) == [(1, 1, D("18.00")), (2, 2, D("12.00"))]
    assert split.member_total == D("30.00")
    assert split.platform_remainder == D("20.00")
    assert split.capped_by == CAP_MAX_PAYOUT_RATIO
    assert [share.capped_by for share in split.shares] == [CAP_MAX_PAYOUT_RATIO, CAP_MAX_PAYOUT_RATIO]
    assert [share.rate for share in split.shares] == [D("0.6"), D("0.4")]  # the plan rate, for the explanation


def test_the_total_rate_cap_binds_on_a_plan_that_slipped_past_validation():
    policy = Policy(max_total_rate=D("0.8"))
    illegal = plan("0.6", "0.4")
    assert plan_violations(illegal, policy)

    split = split_line(pool=D("20.00"), net_amount=D("100.00"), chain=chain(True, True), plan=illegal, policy=policy)

    assert paid(split) == [(1, 1, D("9.60")), (2, 2, D("6.40"))]
    assert split.platform_remainder == D("4.00")
    assert split.capped_by == CAP_MAX_TOTAL_RATE
    assert {share.capped_by for share in split.shares} == {CAP_MAX_TOTAL_RATE}


def test_when_both_caps_bind_the_tightest_one_is_applied_and_recorded():
    # rate cap alone: 50.00 × 0.8 = 40.00; payout cap: 30.00, tighter
    policy = Policy(max_total_rate=D("0.8"))

    split = split_line(
        pool=D("50.00"), net_amount=D("100.00"), chain=chain(True, True), plan=plan("0.6", "0.4"), policy=policy
    )

    assert paid(split) == [(1, 1, D("18.00")), (2, 2, D("12.00"))]
    assert split.capped_by == CAP_MAX_PAYOUT_RATIO


def test_a_cap_that_rounding_already_respects_does_not_bind():
    # 30.004 unrounded would be over 30.00, but the shares, rounded down, are not
    split = split_line(
        pool=D("30.01"), net_amount=D("100.00"), chain=chain(True), plan=plan("0.9998"), policy=Policy(max_levels=1)
    )

    assert paid(split) == [(1, 1, D("30.00"))]
    assert split.capped_by is None


def test_a_binding_payout_cap_scales_to_the_exact_cap_not_to_the_cap_in_cents():
    # given: net 10.05 at a 50 % commission rate, the default plan (80/20) and policy (30 %): pool 5.025 → 5.03,
    # planned 4.02 + 1.00 = 5.02, more than the cap 30 % × 10.05 = 3.015 (exact)
    pool = line_pool(D("10.05"), D("0.5000"))

    # when
    split = split_line(
        pool=pool, net_amount=D("10.05"), chain=chain(True, True), plan=plan("0.8", "0.2"), policy=Policy()
    )

    # then: 3.015 × 0.8 = 2.412 → 2.41 and 3.015 × 0.2 = 0.603 → 0.60, 3.01 in all (scaling to the cap rounded
    # down first, 3.01, paid 2.408 → 2.40 and 0.602 → 0.60: 3.00, a cent less than the cap allows)
    assert pool == D("5.03")
    assert paid(split) == [(1, 1, D("2.41")), (2, 2, D("0.60"))]
    assert split.member_total == D("3.01")
    assert split.platform_remainder == D("2.02")
    assert split.capped_by == CAP_MAX_PAYOUT_RATIO


def test_the_rule_before_the_exact_cap_can_still_be_reproduced_for_history():
    split = split_line(
        pool=D("5.03"),
        net_amount=D("10.05"),
        chain=chain(True, True),
        plan=plan("0.8", "0.2"),
        policy=Policy(),
        payout_cap_in_cents=True,
    )

    assert paid(split) == [(1, 1, D("2.40")), (2, 2, D("0.60"))]


@pytest.mark.parametrize("ratio", ["0.3001", "0.3100", "0.5000", "0.9000", "1"])
def test_a_policy_above_the_payout_ceiling_cannot_exist(ratio):
    with pytest.raises(ValueError, match=r"max_payout_ratio must be at most 0\.3000"):
        Policy(max_payout_ratio=D(ratio))


def test_a_policy_at_the_payout_ceiling_or_below_is_allowed():
    assert [Policy(max_payout_ratio=D(r)).max_payout_ratio for r in ("0", "0.1", "0.3")] == [
        D("0"),
        D("0.1"),
        HARD_MAX_PAYOUT_RATIO,
    ]


def test_the_split_never_pays_over_the_payout_ceiling_even_if_handed_a_policy_that_does():
    # given: a policy forced past its own check (as a bug or a tampered object might)
    policy = Policy()
    object.__setattr__(policy, "max_payout_ratio", D("0.9000"))

    # when: a 100 % commission line, plan 80/20, would pay 100.00 of a 100.00 line
    split = split_line(
        pool=D("100.00"), net_amount=D("100.00"), chain=chain(True, True), plan=plan("0.8", "0.2"), policy=policy
    )

    # then: 30.00, the legal ceiling
    assert paid(split) == [(1, 1, D("24.00")), (2, 2, D("6.00"))]
    assert split.capped_by == CAP_MAX_PAYOUT_RATIO


# --- the rate cap tests the rates actually applied (SPEC §7) ---------------------------------------------------------


def test_the_rate_cap_ignores_the_rate_of_a_level_withheld_for_an_ineligible_member():
    # given: a plan of 0.8 + 0.4 = 1.2 (it slipped past validation) under a max total rate of 1; the sharer is
    # suspended and the platform keeps their share, so only 0.4 is applied
    split = split_line(
        pool=D("20.00"), net_amount=D("100.00"), chain=chain(False, True), plan=plan("0.8", "0.4"), policy=Policy()
    )

    # then: the sponsor gets the full 0.4 of the pool; nothing is scaled
    assert paid(split) == [(2, 2, D("8.00"))]
    assert split.capped_by is None
    assert split.withheld_levels == (1,)


def test_the_rate_cap_ignores_the_rate_of_a_level_nobody_is_at():
    # the same plan; the sharer has no sponsor: only 0.8 is applied
    split = split_line(
        pool=D("20.00"), net_amount=D("100.00"), chain=chain(True), plan=plan("0.8", "0.4"), policy=Policy()
    )

    assert paid(split) == [(1, 1, D("16.00"))]
    assert split.capped_by is None


def test_the_rate_cap_ignores_the_rates_of_levels_beyond_max_levels():
    # a three-level plan of 0.6 + 0.4 + 0.5 under a two-level policy: 1.0 is applied, within the cap
    split = split_line(
        pool=D("20.00"),
        net_amount=D("100.00"),
        chain=chain(True, True, True),
        plan=plan("0.6", "0.4", "0.5"),
        policy=Policy(),
    )

    assert paid(split) == [(1, 1, D("12.00")), (2, 2, D("8.00"))]
    assert split.capped_by is None


def test_the_rate_cap_counts_a_rolled_up_rate_as_applied():
    # given: 0.6 + 0.3 + 0.3 = 1.2 > 1 under a three-level roll-up policy; the sponsor is suspended and their
    # level rolls up to the third member, so all of 1.2 is applied
    policy = Policy(max_levels=3, ineligible_share=INELIGIBLE_SHARE_ROLL_UP)

    split = split_line(
        pool=D("20.00"),
        net_amount=D("100.00"),
        chain=chain(True, False, True),
        plan=plan("0.6", "0.3", "0.3"),
        policy=policy,
    )

    # then: every share scaled by 1 / 1.2: 10.00, 5.00, 5.00
    assert paid(split) == [(1, 1, D("10.00")), (2, 3, D("5.00")), (3, 3, D("5.00"))]
    assert split.capped_by == CAP_MAX_TOTAL_RATE


def test_an_inactive_upline_share_stays_with_the_platform_by_default():
    policy = Policy(max_levels=3)

    split = split_line(
        pool=D("20.00"),
        net_amount=D("100.00"),
        chain=chain(True, False, True),
        plan=plan("0.5", "0.3", "0.2"),
        policy=policy,
    )

    # member 2 gets no row; their 6.00 is the platform's
    assert paid(split) == [(1, 1, D("10.00")), (3, 3, D("4.00"))]
    assert split.platform_remainder == D("6.00")
    assert split.withheld_levels == (2,)


def test_an_inactive_upline_share_rolls_up_to_the_next_eligible_member_when_the_policy_says_so():
    policy = Policy(max_levels=3, ineligible_share=INELIGIBLE_SHARE_ROLL_UP)

    split = split_line(
        pool=D("20.00"),
        net_amount=D("100.00"),
        chain=chain(True, False, True),
        plan=plan("0.5", "0.3", "0.2"),
        policy=policy,
    )

    assert paid(split) == [(1, 1, D("10.00")), (2, 3, D("6.00")), (3, 3, D("4.00"))]
    assert split.shares[1].rolled_up_from == 2
    assert split.shares[1].rate == D("0.3")
    assert split.platform_remainder == D("0.00")
    assert split.withheld_levels == ()


def test_roll_up_never_goes_beyond_max_levels():
    # default max_levels=2: member 3 is two links above the sharer and may never be paid
    policy = Policy(ineligible_share=INELIGIBLE_SHARE_ROLL_UP)

    split = split_line(
        pool=D("20.00"), net_amount=D("100.00"), chain=chain(True, False, True), plan=plan("0.6", "0.4"), policy=policy
    )

    assert paid(split) == [(1, 1, D("12.00"))]
    assert split.platform_remainder == D("8.00")
    assert split.withheld_levels == (2,)


def test_an_ineligible_sharer_rolls_up_to_the_sponsor():
    policy = Policy(ineligible_share=INELIGIBLE_SHARE_ROLL_UP)

    split = split_line(
        pool=D("20.00"), net_amount=D("100.00"), chain=chain(False, True), plan=plan("0.6", "0.4"), policy=policy
    )

    assert paid(split) == [(1, 2, D("12.00")), (2, 2, D("8.00"))]
    assert split.shares[0].rolled_up_from == 1


def test_self_purchase_earns_nothing_by_default():
    split = split_line(
        pool=D("20.00"),
        net_amount=D("100.00"),
        chain=chain(True, True),
        plan=plan("0.6", "0.4"),
        policy=Policy(),
        is_self_purchase=True,
    )

    assert split.shares == ()
    assert split.platform_remainder == D("20.00")
    assert split.capped_by is None


def test_self_purchase_is_split_as_any_sale_when_the_policy_allows_it():
    split = split_line(
        pool=D("20.00"),
        net_amount=D("100.00"),
        chain=chain(True, True),
        plan=plan("0.6", "0.4"),
        policy=Policy(self_purchase_earns=True),
        is_self_purchase=True,
    )

    assert paid(split) == [(1, 1, D("12.00")), (2, 2, D("8.00"))]


def test_a_one_cent_pool_goes_to_the_platform():
    split = split_line(
        pool=D("0.01"), net_amount=D("0.05"), chain=chain(True, True), plan=plan("0.3333", "0.3333"), policy=Policy()
    )

    assert paid(split) == [(1, 1, D("0.00")), (2, 2, D("0.00"))]
    assert split.platform_remainder == D("0.01")


def test_rounding_leftovers_go_to_the_platform():
    pool = line_pool(D("33.33"), D("0.1500"))  # 4.9995 → 5.00

    split = split_line(
        pool=pool, net_amount=D("33.33"), chain=chain(True, True), plan=plan("0.3333", "0.1667"), policy=Policy()
    )

    # 1.6665 → 1.66 and 0.8335 → 0.83
    assert paid(split) == [(1, 1, D("1.66")), (2, 2, D("0.83"))]
    assert split.platform_remainder == D("2.51")


def test_a_three_level_plan_under_max_levels_two_pays_only_two():
    three = plan("0.5", "0.3", "0.2")
    assert plan_violations(three, Policy()) != []

    split = split_line(
        pool=D("20.00"), net_amount=D("100.00"), chain=chain(True, True, True), plan=three, policy=Policy()
    )

    assert paid(split) == [(1, 1, D("10.00")), (2, 2, D("6.00"))]
    assert split.platform_remainder == D("4.00")


def test_a_short_chain_leaves_the_missing_levels_to_the_platform():
    split = split_line(
        pool=D("20.00"), net_amount=D("100.00"), chain=chain(True), plan=plan("0.6", "0.4"), policy=Policy()
    )

    assert paid(split) == [(1, 1, D("12.00"))]
    assert split.platform_remainder == D("8.00")
    assert split.withheld_levels == ()

    nobody = split_line(pool=D("20.00"), net_amount=D("100.00"), chain=[], plan=plan("0.6", "0.4"), policy=Policy())
    assert nobody.shares == ()
    assert nobody.platform_remainder == D("20.00")


def test_a_chain_with_a_member_twice_is_refused():
    looped = [ChainMember(1, True), ChainMember(2, True), ChainMember(1, True)]

    with pytest.raises(ValueError, match="twice"):
        split_line(pool=D("20.00"), net_amount=D("100.00"), chain=looped, plan=plan("0.6", "0.4"), policy=Policy())


def test_split_line_refuses_impossible_inputs():
    kwargs = {"net_amount": D("100.00"), "chain": chain(True), "policy": Policy()}
    with pytest.raises(ValueError):
        split_line(pool=D("-1.00"), plan=plan("0.5"), **kwargs)
    with pytest.raises(ValueError):
        split_line(pool=D("1.005"), plan=plan("0.5"), **kwargs)
    with pytest.raises(ValueError):
        split_line(pool=D("20.00"), plan=plan("-0.1"), **kwargs)
    with pytest.raises(ValueError):
        split_line(pool=D("20.00"), plan=plan("1.5"), **kwargs)
    with pytest.raises(TypeError):
        Plan((0.5,))


def test_a_split_that_does_not_reconcile_cannot_exist():
    share = Share(level=1, member_id=1, rate=D("0.5"), amount=D("10.00"))

    with pytest.raises(ValueError, match="reconcile"):
        Split(pool=D("20.00"), shares=(share,), platform_remainder=D("9.99"))
    with pytest.raises(ValueError):
        Split(pool=D("20.00"), shares=(share,), platform_remainder=D("-10.00"))
    with pytest.raises(ValueError):
        Share(level=1, member_id=1, rate=D("0.5"), amount=D("-0.01"))
    assert Split(pool=D("20.00"), shares=(share,), platform_remainder=D("10.00")).member_total == D("10.00")


# --- the policy and plan validation -------------------------------------------------------------------------------


def test_policy_defaults_are_the_specs():
    policy = Policy()

    assert policy.max_levels == 2
    assert policy.max_total_rate == D("1")
    assert policy.max_payout_ratio == D("0.30")
    assert policy.self_purchase_earns is False
    assert policy.ineligible_share == INELIGIBLE_SHARE_PLATFORM


@pytest.mark.parametrize("max_levels", [4, 5, 100, 0, -1])
def test_policy_refuses_levels_outside_one_to_three(max_levels):
    with pytest.raises(ValueError, match="max_levels"):
        Policy(max_levels=max_levels)


def test_policy_allows_one_to_three_levels():
    assert [Policy(max_levels=n).max_levels for n in (1, 2, 3)] == [1, 2, HARD_MAX_LEVELS]


@pytest.mark.parametrize(
    "kwargs, error",
    [
        ({"max_levels": 2.0}, TypeError),
        ({"max_levels": True}, TypeError),
        ({"max_total_rate": D("1.0001")}, ValueError),
        ({"max_total_rate": D("-0.1")}, ValueError),
        ({"max_total_rate": 1}, TypeError),
        ({"max_payout_ratio": D("1.5")}, ValueError),
        ({"max_payout_ratio": 0.3}, TypeError),
        ({"max_payout_ratio": D("0.12345")}, ValueError),
        ({"max_payout_ratio": D("NaN")}, ValueError),
        ({"self_purchase_earns": "no"}, TypeError),
        ({"ineligible_share": "upline"}, ValueError),
    ],
)
def test_policy_refuses_invalid_values(kwargs, error):
    with pytest.raises(error):
        Policy(**kwargs)


def test_a_legal_plan_has_no_violations():
    assert plan_violations(plan("0.6", "0.4"), Policy()) == []
    assert plan_violations(plan("1"), Policy(max_levels=1)) == []
    assert plan_violations(plan("0.5", "0.3", "0.2"), Policy(max_levels=3)) == []
    assert plan_violations(plan("0", "0"), Policy(max_total_rate=D("0"))) == []


def test_plan_violations_explain_every_problem():
    assert plan_violations(plan("0.5", "0.3", "0.2"), Policy()) == [
        "The plan pays 3 levels; the compliance policy allows at most 2."
    ]
    assert plan_violations(plan("0.6", "0.4"), Policy(max_total_rate=D("0.8"))) == [
        "The level rates add up to 1.0000, more than the compliance policy's maximum total rate of 0.8."
    ]
    assert plan_violations(plan("1.2"), Policy()) == ["The level 1 rate 1.2 is outside 0 to 1."]
    assert plan_violations(plan("0.5", "-0.1"), Policy()) == ["The level 2 rate -0.1 is outside 0 to 1."]
    assert plan_violations(plan("0.12345"), Policy()) == ["The level 1 rate 0.12345 has more than 4 decimal places."]
    assert plan_violations(Plan(()), Policy()) == ["A plan needs at least one level."]
    assert len(plan_violations(plan("0.5", "0.4", "0.3", "0.2"), Policy(max_levels=3))) == 2


def test_a_policy_change_that_would_make_the_plan_illegal_is_detected():
    active = plan("0.6", "0.4")

    assert plan_violations(active, Policy(max_levels=1)) != []
    assert plan_violations(active, Policy(max_total_rate=D("0.9"))) != []


# --- refunds ------------------------------------------------------------------------------------------------------


def test_proportional_amount_rounds_down():
    assert proportional_amount(D("12.00"), D("33.33"), D("100.00")) == D("3.99")  # 3.9996
    assert proportional_amount(D("10.00"), 1, 3) == D("3.33")
    assert proportional_amount(D("10.00"), 3, 3) == D("10.00")
    assert proportional_amount(D("10.00"), 0, 3) == D("0.00")
    with pytest.raises(ValueError):
        proportional_amount(D("10.00"), 4, 3)
    with pytest.raises(ValueError):
        proportional_amount(D("10.00"), 0, 0)


def test_three_partial_refunds_reverse_exactly_the_original_in_total():
    # given: a 12.00 share on a 100.00 line, refunded in thirds
    reversed_so_far = ZERO
    reversals = []
    for refunded_net_total in (D("33.33"), D("66.66"), D("100.00")):
        # when
        amount = reversal_amount(
            original_amount=D("12.00"),
            net_amount=D("100.00"),
            refunded_net_total=refunded_net_total,
            already_reversed=reversed_so_far,
        )
        reversals.append(amount)
        reversed_so_far += amount

    # then: 3.99 (of 3.9996), 4.00 (7.99 of 7.9992), then the rest
    assert reversals == [D("3.99"), D("4.00"), D("4.01")]
    assert reversed_so_far == D("12.00")


def test_a_rerun_of_the_same_refund_reverses_nothing_more():
    assert (
        reversal_amount(
            original_amount=D("12.00"),
            net_amount=D("100.00"),
            refunded_net_total=D("33.33"),
            already_reversed=D("3.99"),
        )
        == ZERO
    )


def test_a_refund_total_passed_per_refund_instead_of_cumulative_is_refused():
    with pytest.raises(ValueError, match="cumulative"):
        reversal_amount(
            original_amount=D("12.00"),
            net_amount=D("100.00"),
            refunded_net_total=D("10.00"),  # but 7.99 was reversed for 66.66 already
            already_reversed=D("7.99"),
        )
    with pytest.raises(ValueError):
        reversal_amount(original_amount=D("12.00"), net_amount=D("100.00"), refunded_net_total=D("100.01"))


def test_refund_reversals_per_level():
    split = split_line(
        pool=D("20.00"), net_amount=D("100.00"), chain=chain(True, True), plan=plan("0.6", "0.4"), policy=Policy()
    )

    first = refund_reversals(shares=split.shares, net_amount=D("100.00"), refunded_net_total=D("25.00"))
    rest = refund_reversals(
        shares=split.shares,
        net_amount=D("100.00"),
        refunded_net_total=D("100.00"),
        already_reversed={1: D("3.00"), 2: D("2.00")},
    )
    again = refund_reversals(
        shares=split.shares,
        net_amount=D("100.00"),
        refunded_net_total=D("100.00"),
        already_reversed={1: D("12.00"), 2: D("8.00")},
    )

    assert first == (Reversal(1, 1, D("3.00")), Reversal(2, 2, D("2.00")))
    assert rest == (Reversal(1, 1, D("9.00")), Reversal(2, 2, D("6.00")))
    assert again == ()


# --- properties ---------------------------------------------------------------------------------------------------

rates = st.integers(min_value=0, max_value=10_000).map(lambda n: D(n).scaleb(-4))
payout_ratios = st.integers(min_value=0, max_value=int(HARD_MAX_PAYOUT_RATIO.scaleb(4))).map(lambda n: D(n).scaleb(-4))
net_amounts = st.integers(min_value=1, max_value=100_000_000).map(lambda cents: D(cents).scaleb(-2))


@st.composite
def policies(draw) -> Policy:
    return Policy(
        max_levels=draw(st.integers(min_value=1, max_value=HARD_MAX_LEVELS)),
        max_total_rate=draw(rates),
        max_payout_ratio=draw(payout_ratios),
        self_purchase_earns=draw(st.booleans()),
        ineligible_share=draw(st.sampled_from(INELIGIBLE_SHARE_CHOICES)),
    )


@st.composite
def legal_plans(draw, policy: Policy) -> Plan:
    levels = draw(st.integers(min_value=1, max_value=policy.max_levels))
    budget = int(policy.max_total_rate.scaleb(4))
    units = []
    for _ in range(levels):
        unit = draw(st.integers(min_value=0, max_value=budget))
        budget -= unit
        units.append(unit)
    return Plan(tuple(D(unit).scaleb(-4) for unit in draw(st.permutations(units))))


any_plans = st.lists(rates, min_size=0, max_size=5).map(lambda rs: Plan(tuple(rs)))

chains = st.lists(st.booleans(), min_size=0, max_size=5).flatmap(
    lambda eligibility: st.permutations(range(1, 100)).map(
        lambda ids: [ChainMember(member_id=ids[i], is_eligible=e) for i, e in enumerate(eligibility)]
    )
)


def assert_split_holds(split, *, pool, net_amount, chain, plan, policy, is_self_purchase):
    depth = min(len(plan.rates), policy.max_levels, HARD_MAX_LEVELS)
    considered = chain[:depth]
    amounts = [share.amount for share in split.shares]

    # reconciles exactly
    assert split.member_total + split.platform_remainder == pool
    assert sum(amounts, ZERO) + split.platform_remainder == pool
    assert split.platform_remainder >= 0
    # each share ≥ 0, in cents, never more than its unrounded planned amount
    for share in split.shares:
        assert share.amount >= 0
        assert share.amount == quantize_money(share.amount, ROUND_DOWN)
        assert share.amount.as_tuple().exponent >= -2
        assert share.amount <= pool * share.rate
        assert share.rate == plan.rates[share.level - 1]
        assert share.capped_by == split.capped_by
    # every cap holds: the members' total, and so every share, never exceeds net × ratio (exact), nor 30 % of net
    assert split.member_total <= policy.max_payout_ratio * net_amount
    assert split.member_total <= HARD_MAX_PAYOUT_RATIO * net_amount
    assert split.member_total <= pool * policy.max_total_rate
    applied_rate = sum((share.rate for share in split.shares), D(0))
    assert applied_rate <= policy.max_total_rate or split.capped_by is not None
    # nobody beyond max_levels, nobody ineligible, at most one share per level
    assert len(split.shares) <= policy.max_levels
    assert [share.level for share in split.shares] == sorted({share.level for share in split.shares})
    paid_ids = {share.member_id for share in split.shares}
    assert paid_ids <= {member.member_id for member in considered if member.is_eligible}
    if policy.ineligible_share == INELIGIBLE_SHARE_PLATFORM:
        assert all(share.rolled_up_from is None for share in split.shares)
    # self-purchase
    if is_self_purchase and not policy.self_purchase_earns:
        assert split.shares == ()
        assert split.platform_remainder == pool
    # without a cap, each share is exactly its planned amount rounded down; with one, scaled not zeroed
    if split.capped_by is None:
        for share in split.shares:
            assert share.amount == quantize_money(pool * share.rate, ROUND_DOWN)
    elif split.capped_by == CAP_MAX_PAYOUT_RATIO:
        limit = quantize_money(policy.max_payout_ratio * net_amount, ROUND_DOWN)
        assert split.member_total > limit - CENT * len(split.shares)
    else:
        assert split.member_total > pool * policy.max_total_rate - CENT * len(split.shares)
    # and every amount, and the cap that bound, are what an independent exact reference gives for the rates
    # actually applied
    applied = [share.rate for share in split.shares]
    reference = _reference(pool=pool, net_amount=net_amount, rates=applied, policy=policy)
    assert ([share.amount for share in split.shares], split.capped_by) == reference


def _floor_to_cent(value: Fraction) -> Decimal:
    cents = (value * 100).numerator // (value * 100).denominator  # floor, exactly (value >= 0)
    return D(cents).scaleb(-2).quantize(CENT)


def _reference(*, pool, net_amount, rates, policy) -> tuple[list[Decimal], str | None]:
    """SPEC §7 in exact rational arithmetic, written apart from split_line: the rate cap tests the applied rates;
    a binding cap scales every share by one factor, the payout cap's being (net × ratio) / planned total with the
    cap exact; each share is then rounded down to the cent once."""
    pool_f, applied = Fraction(pool), sum((Fraction(rate) for rate in rates), Fraction(0))
    factor, capped_by = Fraction(1), None
    if applied > Fraction(policy.max_total_rate):
        factor, capped_by = Fraction(policy.max_total_rate) / applied, CAP_MAX_TOTAL_RATE
    amounts = [_floor_to_cent(pool_f * Fraction(rate) * factor) for rate in rates]
    cap = Fraction(policy.max_payout_ratio) * Fraction(net_amount)
    if sum((Fraction(amount) for amount in amounts), Fraction(0)) > cap:
        factor, capped_by = cap / (pool_f * applied), CAP_MAX_PAYOUT_RATIO
        amounts = [_floor_to_cent(pool_f * Fraction(rate) * factor) for rate in rates]
    return amounts, capped_by


@PROPERTY_SETTINGS
@given(data=st.data(), net_amount=net_amounts, commission_rate=rates, chain=chains, is_self_purchase=st.booleans())
def test_any_legal_plan_splits_within_every_cap_and_reconciles(
    data, net_amount, commission_rate, chain, is_self_purchase
):
    policy = data.draw(policies())
    legal = data.draw(legal_plans(policy))
    assert plan_violations(legal, policy) == []
    pool = line_pool(net_amount, commission_rate)

    split = split_line(
        pool=pool, net_amount=net_amount, chain=chain, plan=legal, policy=policy, is_self_purchase=is_self_purchase
    )

    assert split.capped_by != CAP_MAX_TOTAL_RATE  # a legal plan never needs the rate cap
    assert_split_holds(
        split,
        pool=pool,
        net_amount=net_amount,
        chain=chain,
        plan=legal,
        policy=policy,
        is_self_purchase=is_self_purchase,
    )


@PROPERTY_SETTINGS
@given(
    policy=policies(),
    any_plan=any_plans,
    net_amount=net_amounts,
    commission_rate=rates,
    chain=chains,
    is_self_purchase=st.booleans(),
)
def test_even_an_illegal_plan_is_capped_at_split_time(
    policy, any_plan, net_amount, commission_rate, chain, is_self_purchase
):
    pool = line_pool(net_amount, commission_rate)

    split = split_line(
        pool=pool, net_amount=net_amount, chain=chain, plan=any_plan, policy=policy, is_self_purchase=is_self_purchase
    )

    assert_split_holds(
        split,
        pool=pool,
        net_amount=net_amount,
        chain=chain,
        plan=any_plan,
        policy=policy,
        is_self_purchase=is_self_purchase,
    )


@PROPERTY_SETTINGS
@given(
    net_amount=net_amounts,
    commission_rate=st.integers(min_value=3_001, max_value=10_000).map(lambda n: D(n).scaleb(-4)),
    ratio=payout_ratios,
    level1_units=st.integers(min_value=1, max_value=10_000),
    levels=st.integers(min_value=1, max_value=HARD_MAX_LEVELS),
)
def test_a_binding_payout_cap_pays_the_exact_scaled_shares_rounded_down(
    net_amount, commission_rate, ratio, level1_units, levels
):
    # given: a commission rate above 30 %, a plan sharing the whole pool: the payout cap binds on most lines
    units = [level1_units, *([(10_000 - level1_units) // (levels - 1)] * (levels - 1) if levels > 1 else [])]
    rates_applied = tuple(D(unit).scaleb(-4) for unit in units)
    policy = Policy(max_levels=HARD_MAX_LEVELS, max_payout_ratio=ratio)
    pool = line_pool(net_amount, commission_rate)

    split = split_line(
        pool=pool, net_amount=net_amount, chain=chain(*[True] * levels), plan=Plan(rates_applied), policy=policy
    )

    # then: whenever it binds, each share is floor-to-cent of pool × rate × (net × ratio) / (pool × Σ rates),
    # computed exactly with fractions; the members' total never exceeds the exact cap and falls short of it by
    # less than a cent per share
    if split.capped_by == CAP_MAX_PAYOUT_RATIO:
        exact_cap = Fraction(ratio) * Fraction(net_amount)
        total_rate = sum((Fraction(rate) for rate in rates_applied), Fraction(0))
        expected = [
            _floor_to_cent(Fraction(pool) * Fraction(rate) * exact_cap / (Fraction(pool) * total_rate))
            for rate in rates_applied
        ]
        assert [share.amount for share in split.shares] == expected
        assert Fraction(split.member_total) <= exact_cap
        assert Fraction(split.member_total) > exact_cap - Fraction(len(split.shares), 100)
    else:
        assert split.member_total <= ratio * net_amount


@PROPERTY_SETTINGS
@given(data=st.data(), net_amount=net_amounts, original_amounts=st.lists(net_amounts, min_size=1, max_size=3))
def test_cumulative_partial_refunds_never_reverse_more_than_was_paid(data, net_amount, original_amounts):
    shares = [
        Share(level=level, member_id=level * 10, rate=D("0.1"), amount=amount)
        for level, amount in enumerate(original_amounts, start=1)
    ]
    net_cents = int(net_amount.scaleb(2))
    refunded_cents = 0
    reversed_by_level: dict[int, Decimal] = {}
    is_full = data.draw(st.booleans(), label="ends with a full refund")

    refunds = data.draw(st.lists(st.integers(min_value=1, max_value=net_cents), max_size=6), label="refunds")
    for refund_cents in refunds:
        refund_cents = min(refund_cents, net_cents - refunded_cents)
        if refund_cents == 0:
            break
        refunded_cents += refund_cents
        refunded_net_total = D(refunded_cents).scaleb(-2)
        for reversal in refund_reversals(
            shares=shares,
            net_amount=net_amount,
            refunded_net_total=refunded_net_total,
            already_reversed=reversed_by_level,
        ):
            assert reversal.amount > 0
            reversed_by_level[reversal.level] = reversed_by_level.get(reversal.level, ZERO) + reversal.amount
        for share in shares:
            done = reversed_by_level.get(share.level, ZERO)
            assert done <= share.amount
            # no drift: the running total is always the cumulative proportion, rounded down
            assert done == proportional_amount(share.amount, refunded_net_total, net_amount)

    if is_full:
        for reversal in refund_reversals(
            shares=shares, net_amount=net_amount, refunded_net_total=net_amount, already_reversed=reversed_by_level
        ):
            reversed_by_level[reversal.level] = reversed_by_level.get(reversal.level, ZERO) + reversal.amount
        assert {share.level: reversed_by_level.get(share.level, ZERO) for share in shares} == {
            share.level: share.amount for share in shares
        }


# --- take_back: how money taken back is booked ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("amount", "pending", "booked"),
    [
        ("9.60", "9.60", ("9.60", "0.00", "0.00")),  # all on hold: reversed, and the share leaves the balances
        ("4.80", "9.60", ("4.80", "0.00", "4.80")),  # a partial refund on hold: half stays to earn
        ("16.00", "0.00", ("0.00", "16.00", "0.00")),  # all released: clawed back
        ("20.00", "4.00", ("4.00", "16.00", "0.00")),  # both: what waits is reversed first, the rest clawed back
        ("0.00", "3.00", ("0.00", "0.00", "3.00")),
    ],
)
def test_take_back_reverses_what_is_on_hold_first_and_claws_back_the_rest(amount, pending, booked):
    result = take_back(D(amount), pending=D(pending))

    assert (result.reversed, result.clawed_back, result.pending_left) == tuple(D(value) for value in booked)


@given(
    amount=st.integers(min_value=0, max_value=10**8).map(lambda cents: D(cents).scaleb(-2)),
    pending=st.integers(min_value=-(10**6), max_value=10**8).map(lambda cents: D(cents).scaleb(-2)),
)
def test_take_back_books_exactly_the_amount_and_never_more_than_is_on_hold(amount, pending):
    result = take_back(amount, pending=pending)

    assert result.reversed + result.clawed_back == amount
    assert ZERO <= result.reversed <= max(pending, ZERO)
    assert result.clawed_back >= ZERO
    assert result.pending_left == pending - result.reversed


@pytest.mark.parametrize("amount", [D("-0.01"), D("0.001")])
def test_take_back_refuses_a_negative_amount_or_a_fraction_of_a_cent(amount):
    with pytest.raises(ValueError, match="amount"):
        take_back(amount, pending=D("1.00"))
