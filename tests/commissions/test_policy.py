"""Compliance policy and commission plan versions (commissions/services/plans.py, models.py, calculations.py).

The 3-level ceiling is refused everywhere reachable from here: the service, the calculation, the model's
validation and the database. (The admin and API forms are built and tested elsewhere.)
"""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from commissions.calculations import HARD_MAX_LEVELS, ChainMember, Plan, Policy, split_line
from commissions.models import CommissionEntry, CommissionPlan, CompliancePolicy
from commissions.services import (
    CommissionError,
    plan_activate,
    plan_create,
    plan_in_force,
    policy_in_force,
    policy_publish,
)
from tests.factories import ProductFactory, make_chain, pay_order, place_order, shop_with_products

pytestmark = pytest.mark.django_db

D = Decimal


def policies() -> list[tuple]:
    return list(
        CompliancePolicy.objects.order_by("version").values_list(
            "pk", "version", "is_active", "max_levels", "max_total_rate", "max_payout_ratio",
            "self_purchase_earns", "ineligible_share", "effective_from",
        )
    )  # fmt: skip


def plans() -> list[tuple]:
    return list(
        CommissionPlan.objects.order_by("version").values_list(
            "pk", "version", "level1_rate", "level2_rate", "level3_rate", "is_activated", "effective_from"
        )
    )


def messages(error: ValidationError) -> str:
    return " ".join(error.messages)


# --- the 3-level ceiling ------------------------------------------------------------------------------------------


def test_the_hard_ceiling_is_three():
    assert HARD_MAX_LEVELS == 3


@pytest.mark.parametrize("max_levels", [4, 5, 100, "4"])
def test_policy_publish_refuses_more_than_three_levels_and_changes_nothing(staff_user, max_levels):
    before = policies()

    with pytest.raises(CommissionError) as refused:
        policy_publish(actor=staff_user, note="four levels", max_levels=max_levels)

    assert "max_levels" in refused.value.message_dict
    assert "At most 3 levels" in messages(refused.value)
    assert policies() == before
    assert policy_in_force().version == 1


@pytest.mark.parametrize("max_levels", [0, -1])
def test_policy_publish_refuses_fewer_than_one_level(staff_user, max_levels):
    before = policies()

    with pytest.raises(CommissionError):
        policy_publish(actor=staff_user, note="no levels", max_levels=max_levels)

    assert policies() == before


@pytest.mark.parametrize("max_levels", [None, "four"])
def test_policy_publish_refuses_a_max_levels_that_is_not_a_number_with_a_commission_error(staff_user, max_levels):
    before = policies()

    with pytest.raises(CommissionError):
        policy_publish(actor=staff_user, note="typo", max_levels=max_levels)

    assert policies() == before


def test_policy_publish_accepts_exactly_three_levels(staff_user):
    policy = policy_publish(actor=staff_user, note="three", max_levels=3)

    assert (policy.version, policy.max_levels, policy.is_active) == (2, 3, True)


@pytest.mark.parametrize("max_levels", [4, 0])
def test_the_calculation_policy_refuses_levels_outside_one_to_three(max_levels):
    with pytest.raises(ValueError, match="max_levels must be between 1 and 3"):
        Policy(max_levels=max_levels)


def test_split_line_never_pays_a_fourth_level_even_with_a_four_rate_plan():
    # defence in depth: a plan that somehow had four rates is cut at the policy's levels (at most 3)
    chain = [ChainMember(member_id, True) for member_id in (1, 2, 3, 4)]
    split = split_line(
        pool=D("10.00"),
        net_amount=D("100.00"),
        chain=chain,
        plan=Plan((D("0.25"), D("0.25"), D("0.25"), D("0.25"))),
        policy=Policy(max_levels=3),
    )

    assert [(share.level, share.member_id, share.amount) for share in split.shares] == [
        (1, 1, D("2.50")),
        (2, 2, D("2.50")),
        (3, 3, D("2.50")),
    ]
    assert split.platform_remainder == D("2.50")


def test_the_database_refuses_a_policy_with_four_levels():
    before = policies()

    with pytest.raises(IntegrityError), transaction.atomic():
        CompliancePolicy.objects.create(version=99, max_levels=4, is_active=False, note="straight to the database")

    assert policies() == before


def test_the_database_refuses_raising_a_stored_policy_to_four_levels():
    before = policies()

    with pytest.raises(IntegrityError), transaction.atomic():
        CompliancePolicy.objects.filter(is_active=True).update(max_levels=4)

    assert policies() == before


def test_model_validation_refuses_four_levels():
    policy = CompliancePolicy(version=99, max_levels=4, is_active=False)

    with pytest.raises(ValidationError) as refused:
        policy.full_clean()

    assert list(refused.value.message_dict) == ["max_levels"]
    assert not CompliancePolicy.objects.filter(version=99).exists()


def test_model_validation_accepts_three_levels():
    CompliancePolicy(version=99, max_levels=3, is_active=False).full_clean()


def test_the_database_refuses_a_ledger_entry_above_level_three(staff_user, django_capture_on_commit_callbacks):
    _grace, _paul, sara = make_chain(3)
    product = ProductFactory(price=D("10.00"), commission_rate=D("0.1000"))
    with django_capture_on_commit_callbacks(execute=True):
        order = pay_order(place_order(shop_with_products(product, owner=sara), {product: 1}))
    entry = CommissionEntry.objects.get(order=order, level=1)

    with pytest.raises(IntegrityError), transaction.atomic():
        CommissionEntry.objects.filter(pk=entry.pk).update(level=4)

    assert CommissionEntry.objects.get(pk=entry.pk).level == 1


@pytest.mark.parametrize("rates", [("0.4", "0.3", "0.2", "0.1"), ("0.25", "0.25", "0.25", "0.25", "0")])
def test_plan_create_refuses_more_than_three_rates(staff_user, rates):
    # given: even a policy that allows the most levels there can be
    policy_publish(actor=staff_user, note="three", max_levels=3)
    before = plans()

    with pytest.raises(CommissionError) as refused:
        plan_create(actor=staff_user, name="four levels", rates=tuple(D(rate) for rate in rates))

    assert "At most 3 levels" in messages(refused.value)
    assert plans() == before


# --- policy versions ----------------------------------------------------------------------------------------------


def test_publishing_a_policy_creates_the_next_version_and_keeps_the_old_one(staff_user):
    # given: the default policy v1
    first = CompliancePolicy.objects.get()
    assert (first.version, first.is_active) == (1, True)

    # when
    second = policy_publish(actor=staff_user, note="tighter", max_payout_ratio=D("0.2500"))

    # then: v2 is active and in force, with v1's other values; v1 is kept, inactive, unchanged
    first_after = CompliancePolicy.objects.get(pk=first.pk)
    assert (second.version, second.is_active, second.created_by, second.note) == (2, True, staff_user, "tighter")
    assert (second.max_levels, second.max_total_rate, second.max_payout_ratio) == (2, D("1.0000"), D("0.2500"))
    assert (second.self_purchase_earns, second.ineligible_share) == (False, "platform")
    assert not first_after.is_active
    assert (first_after.max_payout_ratio, first_after.effective_from) == (D("0.3000"), first.effective_from)
    assert policy_in_force() == second

    # when: again
    third = policy_publish(actor=staff_user, note="roll up", ineligible_share="roll_up")

    # then: exactly one active, each version kept
    assert (third.version, third.max_payout_ratio, third.ineligible_share) == (3, D("0.2500"), "roll_up")
    assert list(CompliancePolicy.objects.order_by("version").values_list("version", "is_active")) == [
        (1, False),
        (2, False),
        (3, True),
    ]
    assert policy_in_force() == third
    assert policy_in_force(second.effective_from) == second


def test_the_database_allows_only_one_active_policy():
    with pytest.raises(IntegrityError), transaction.atomic():
        CompliancePolicy.objects.create(version=2, is_active=True)

    assert CompliancePolicy.objects.filter(is_active=True).count() == 1


def test_publish_refuses_unknown_fields_and_bad_values(staff_user):
    before = policies()

    for changes in (
        {"max_levels_per_team": 2},
        {"max_total_rate": D("1.5000")},
        {"max_payout_ratio": D("-0.1000")},
        {"ineligible_share": "split"},
    ):
        with pytest.raises(CommissionError):
            policy_publish(actor=staff_user, note="bad", **changes)

    assert policies() == before


# --- plans and the policy -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("rates", "message"),
    [
        (("0.5", "0.3", "0.2"), "The plan pays 3 levels; the compliance policy allows at most 2."),
        (
            ("0.8", "0.3"),
            "The level rates add up to 1.1000, more than the compliance policy's maximum total rate of 1.0000.",
        ),
        (("1.2",), "The level 1 rate 1.2 is outside 0 to 1."),
        (("0.12345",), "The level 1 rate 0.12345 has more than 4 decimal places."),
        ((), "A plan needs at least one level."),
    ],
)
def test_a_plan_breaking_the_policy_cannot_be_created(staff_user, rates, message):
    before = plans()

    with pytest.raises(CommissionError) as refused:
        plan_create(actor=staff_user, name="illegal", rates=tuple(D(rate) for rate in rates))

    assert message in messages(refused.value)
    assert plans() == before


def test_a_plan_within_the_policy_is_created_as_a_draft(staff_user):
    plan = plan_create(actor=staff_user, name="sharer only", rates=(D("1.0000"),))

    assert (plan.version, plan.rates, plan.is_activated, plan.effective_from) == (2, (D("1.0000"),), False, None)
    assert plan_in_force().version == 1


def test_a_draft_that_breaks_the_policy_in_force_cannot_be_activated(staff_user):
    # given: a 3-level draft made while 3 levels were allowed, then the policy went back to 2
    policy_publish(actor=staff_user, note="three", max_levels=3)
    draft = plan_create(actor=staff_user, name="50/30/20", rates=(D("0.5"), D("0.3"), D("0.2")))
    policy_publish(actor=staff_user, note="back to two", max_levels=2)
    before = plans()

    # when
    with pytest.raises(CommissionError) as refused:
        plan_activate(plan=draft, actor=staff_user)

    # then
    assert "The plan pays 3 levels; the compliance policy allows at most 2." in messages(refused.value)
    assert plans() == before
    assert plan_in_force().version == 1


def test_a_plan_stored_around_the_service_cannot_be_activated(staff_user):
    # given: a draft written straight to the table (say by a data migration) paying 95 % + 10 %
    draft = CommissionPlan.objects.create(version=7, name="bad", level1_rate=D("0.95"), level2_rate=D("0.10"))
    before = plans()

    with pytest.raises(CommissionError) as refused:
        plan_activate(plan=draft, actor=staff_user)

    assert "add up to 1.05" in messages(refused.value)
    assert plans() == before


def test_an_activated_plan_cannot_be_activated_again(staff_user):
    plan = plan_create(actor=staff_user, name="sharer only", rates=(D("1.0000"),))
    plan_activate(plan=plan, actor=staff_user)
    before = plans()

    with pytest.raises(CommissionError):
        plan_activate(plan=plan, actor=staff_user, effective_from=timezone.now() + timedelta(days=1))

    assert plans() == before


def test_a_policy_change_that_would_make_the_plan_in_force_illegal_is_refused_until_the_plan_changes(
    staff_user, django_capture_on_commit_callbacks
):
    # given: plan v1 pays 2 levels (80/20)
    before = policies()

    # when: staff try to allow only direct-sale commission
    with pytest.raises(CommissionError) as refused:
        policy_publish(actor=staff_user, note="direct sale only", max_levels=1)

    # then: refused with the reason, nothing changed
    assert "plan v1" in messages(refused.value)
    assert "Change the plan first" in messages(refused.value)
    assert "The plan pays 2 levels; the compliance policy allows at most 1." in messages(refused.value)
    assert policies() == before

    # when: a 1-level plan is created and put in force first
    direct = plan_create(actor=staff_user, name="direct sale", rates=(D("1.0000"),))
    plan_activate(plan=direct, actor=staff_user)
    policy = policy_publish(actor=staff_user, note="direct sale only", max_levels=1)

    # then: the policy is published, and a sale pays the sharer only
    assert (policy.version, policy.max_levels, policy.is_active) == (2, 1, True)
    _grace, _paul, sara = make_chain(3)
    product = ProductFactory(price=D("50.00"), commission_rate=D("0.2000"))
    with django_capture_on_commit_callbacks(execute=True):
        order = pay_order(place_order(shop_with_products(product, owner=sara), {product: 1}))
    assert list(
        CommissionEntry.objects.filter(order=order).order_by("pk").values_list("kind", "level", "beneficiary", "amount")
    ) == [("commission", 1, sara.pk, D("10.00")), ("platform", 0, None, D("0.00"))]


def test_a_policy_change_that_would_break_a_lower_total_rate_is_refused(staff_user):
    before = policies()

    with pytest.raises(CommissionError) as refused:
        policy_publish(actor=staff_user, note="keep some", max_total_rate=D("0.9000"))

    assert "add up to 1.0000, more than the compliance policy's maximum total rate of 0.9000" in messages(refused.value)
    assert policies() == before


def test_a_policy_change_that_would_break_a_scheduled_plan_is_refused(staff_user):
    # given: the policy allows 3 levels and a 3-level plan is scheduled for next week
    policy_publish(actor=staff_user, note="three", max_levels=3)
    plan = plan_create(actor=staff_user, name="50/30/20", rates=(D("0.5"), D("0.3"), D("0.2")))
    plan_activate(plan=plan, actor=staff_user, effective_from=timezone.now() + timedelta(days=7))
    before = policies()

    # when / then: going back to 2 levels is refused because of the scheduled plan
    with pytest.raises(CommissionError) as refused:
        policy_publish(actor=staff_user, note="back to two", max_levels=2)

    assert f"plan v{plan.version}" in messages(refused.value)
    assert policies() == before
