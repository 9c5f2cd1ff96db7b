"""The fraud rules (commissions/risk.py): pure functions, each flags at its threshold and not below."""

import importlib
from decimal import Decimal

import pytest

from commissions import risk

D = Decimal


def setting(threshold, minimum=0, enabled=True):
    return risk.Setting(threshold=D(str(threshold)), minimum=minimum, is_enabled=enabled)


def identity(**signals):
    return risk.Identity(**{kind: frozenset(values) for kind, values in signals.items()})


def test_shared_identity_flags_at_the_threshold_and_not_below():
    sharer = identity(phones={"+8613900001111"}, devices={"d1"}, networks={"n1"}, addresses={"a1"})
    # a shared network alone weighs 1: below the default threshold of 2
    below = risk.shared_identity(buyer=identity(networks={"n1"}), sharer=sharer, setting=setting(2))
    assert (below.is_flagged, below.score) == (False, D(1))
    # network and address: 2, at the threshold
    at = risk.shared_identity(buyer=identity(networks={"n1"}, addresses={"a1"}), sharer=sharer, setting=setting(2))
    assert (at.is_flagged, at.score, at.evidence) == (True, D(2), {"shared": ["addresses", "networks"]})
    # one device cookie alone weighs 2
    assert risk.shared_identity(buyer=identity(devices={"d1"}), sharer=sharer, setting=setting(2)).is_flagged
    # a different buyer shares nothing
    stranger = identity(phones={"+8613700000000"}, devices={"d9"}, networks={"n9"}, addresses={"a9"})
    assert risk.shared_identity(buyer=stranger, sharer=sharer, setting=setting(2)).score == 0


def test_a_disabled_rule_never_flags():
    sharer = identity(devices={"d1"})
    assert not risk.shared_identity(buyer=sharer, sharer=sharer, setting=setting(1, enabled=False)).is_flagged


def test_many_accounts_flags_at_the_threshold():
    assert risk.many_accounts(members_per_key={"device:k": 4, "network:n": 2}, setting=setting(4)).is_flagged
    below = risk.many_accounts(members_per_key={"device:k": 3}, setting=setting(4))
    assert (below.is_flagged, below.score) == (False, D(3))
    # a network address needs ten times as many (offices, carriers)
    assert not risk.many_accounts(members_per_key={"network:n": 39}, setting=setting(4)).is_flagged
    assert risk.many_accounts(members_per_key={"network:n": 40}, setting=setting(4)).is_flagged


def test_activity_spike_flags_at_the_ratio_and_minimum():
    history = [10] * 28  # 10 a day
    at = risk.activity_spike(rule=risk.CLICK_SPIKE, today=100, history=history, setting=setting(10, minimum=50))
    assert (at.is_flagged, at.score) == (True, D("10.00"))
    below = risk.activity_spike(rule=risk.CLICK_SPIKE, today=99, history=history, setting=setting(10, minimum=50))
    assert not below.is_flagged
    # a new member with no history: the average counts as 1, and the minimum keeps small numbers out
    assert not risk.activity_spike(
        rule=risk.CLICK_SPIKE, today=49, history=[0] * 28, setting=setting(10, 50)
    ).is_flagged
    assert risk.activity_spike(rule=risk.CLICK_SPIKE, today=50, history=[0] * 28, setting=setting(10, 50)).is_flagged


def test_refund_after_commission_flags_at_the_rate_and_minimum():
    at = risk.refund_after_commission(commissioned_orders=4, refunded_after_release=2, setting=setting("0.5", 4))
    assert (at.is_flagged, at.score) == (True, D("0.5000"))
    assert not risk.refund_after_commission(
        commissioned_orders=5, refunded_after_release=2, setting=setting("0.5", 4)
    ).is_flagged
    assert not risk.refund_after_commission(
        commissioned_orders=3, refunded_after_release=3, setting=setting("0.5", 4)
    ).is_flagged


def test_early_payout_flags_a_new_member_whose_orders_are_all_self_bought():
    rule = setting(14)
    assert risk.early_payout(
        days_since_joining=13, commissioned_orders=3, self_bought_orders=3, setting=rule
    ).is_flagged
    assert not risk.early_payout(
        days_since_joining=14, commissioned_orders=3, self_bought_orders=3, setting=rule
    ).is_flagged
    assert not risk.early_payout(
        days_since_joining=2, commissioned_orders=3, self_bought_orders=2, setting=rule
    ).is_flagged
    assert not risk.early_payout(
        days_since_joining=2, commissioned_orders=0, self_bought_orders=0, setting=rule
    ).is_flagged


def test_coupon_far_from_audience_flags_a_leaked_code():
    rule = setting("0.8", 5)
    leaked = risk.coupon_far_from_audience(
        coupon_regions=["x", "y", "z", "w", "shanghai"], audience_regions={"shanghai"}, setting=rule
    )
    assert (leaked.is_flagged, leaked.score) == (True, D("0.8000"))
    assert not risk.coupon_far_from_audience(
        coupon_regions=["x", "y", "z", "shanghai", "shanghai"], audience_regions={"shanghai"}, setting=rule
    ).is_flagged
    assert not risk.coupon_far_from_audience(coupon_regions=["x"] * 4, audience_regions=set(), setting=rule).is_flagged


@pytest.mark.parametrize(
    ("address", "region"), [("广东省深圳市南山区", "广东省深"), ("Shanghai 1 Nanjing Road", "shanghai"), ("", "")]
)
def test_address_region(address, region):
    assert risk.address_region(address) == region


def test_the_migration_seeds_the_defaults_of_the_code():
    seeded = importlib.import_module("commissions.migrations.0014_risk_review").DEFAULT_RULES
    assert {code: (D(t), m) for code, (t, m) in seeded.items()} == {
        code: (s.threshold, s.minimum) for code, s in risk.DEFAULTS.items()
    }
