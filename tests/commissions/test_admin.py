"""Staff screens for commissions: policy versions, plans, the read-only ledger and the per-order split view."""

from decimal import Decimal

import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.contrib.auth.models import Permission
from django.db import IntegrityError
from django.urls import reverse

from accounts.models import ApprovalRequest
from commissions.models import CommissionEntry as Entry
from commissions.models import CommissionPlan, CompliancePolicy
from commissions.services import plan_create, plan_in_force, policy_in_force, policy_publish
from shops.services import order_refund
from tests.factories import (
    ProductFactory,
    UserFactory,
    make_chain,
    pay_order,
    place_order,
    second_approves,
    shop_with_products,
)

pytestmark = pytest.mark.django_db

POLICIES = reverse("admin:commissions_compliancepolicy_changelist")
POLICY_ADD = reverse("admin:commissions_compliancepolicy_add")
PLANS = reverse("admin:commissions_commissionplan_changelist")
PLAN_ADD = reverse("admin:commissions_commissionplan_add")
ENTRIES = reverse("admin:commissions_commissionentry_changelist")


def _split_url(order) -> str:
    return reverse("admin:commissions_order_split", args=[order.pk])


@pytest.fixture
def admin_client(client, staff_user):
    client.force_login(staff_user)
    return client


@pytest.fixture
def chain():
    return make_chain(3)  # root ← sponsor ← sharer


@pytest.fixture
def product():
    return ProductFactory(price=Decimal("10.00"), commission_rate=Decimal("0.1000"), stock=1000)


@pytest.fixture
def shop(chain, product):
    return shop_with_products(product, owner=chain[2])


@pytest.fixture
def paid(django_capture_on_commit_callbacks):
    def pay(shop, items=None):
        with django_capture_on_commit_callbacks(execute=True):
            return pay_order(place_order(shop, items))

    return pay


def _messages(response) -> list[tuple[str, str]]:
    return [(message.level_tag, str(message)) for message in response.context["messages"]]


def _policy_form(**overrides) -> dict:
    data = {
        "max_levels": "2",
        "max_total_rate": "1.0000",
        "max_payout_ratio": "0.3000",
        "ineligible_share": "platform",
        "note": "Quarterly review",
    }
    data.update(overrides)
    return {key: value for key, value in data.items() if value is not None}


def _activate(plan, reason: str = "Approved by the board") -> dict:
    return {"action": "activate_now", ACTION_CHECKBOX_NAME: [plan.pk], "apply": "1", "reason": reason}


def _policy_state() -> tuple:
    active = CompliancePolicy.objects.get(is_active=True)
    return CompliancePolicy.objects.count(), active.pk, active.max_levels, active.max_payout_ratio


# --- Compliance policy ------------------------------------------------------------------------------------


def test_policy_list_shows_every_version(admin_client, staff_user):
    policy_publish(actor=staff_user, note="tighter", max_payout_ratio=Decimal("0.2500"))

    response = admin_client.get(POLICIES)

    assert response.status_code == 200
    assert [policy.version for policy in response.context["cl"].result_list] == [2, 1]


def test_publishing_a_policy_through_the_add_form_makes_it_the_one_in_force(admin_client, staff_user):
    # given: the add form starts from the values in force
    form = admin_client.get(POLICY_ADD).context["form"]
    assert form.initial["max_levels"] == 2

    # when
    response = admin_client.post(
        POLICY_ADD, _policy_form(max_payout_ratio="0.2500", self_purchase_earns="on", ineligible_share="roll_up")
    )

    # then: asked for, not yet in force (four eyes)
    assert response.status_code == 302
    assert response.url == POLICIES
    assert policy_in_force().version == 1
    # and when a second staff member approves it, it is
    [approval] = second_approves("commissions.policy_publish")
    assert (approval.status, approval.requested_by) == ("approved", staff_user)
    policy = policy_in_force()
    assert policy.version == 2
    assert (policy.max_levels, policy.max_payout_ratio, policy.self_purchase_earns, policy.ineligible_share) == (
        2,
        Decimal("0.2500"),
        True,
        "roll_up",
    )
    assert policy.created_by == approval.decided_by
    assert policy.note == "Quarterly review"
    assert list(CompliancePolicy.objects.filter(is_active=True)) == [policy]


def test_a_policy_with_four_levels_is_refused_by_the_form_and_nothing_is_created(admin_client):
    before = _policy_state()

    response = admin_client.post(POLICY_ADD, _policy_form(max_levels="4"))

    assert response.status_code == 200
    assert "max_levels" in response.context["form"].errors
    assert _policy_state() == before


def test_a_policy_that_would_make_the_plan_in_force_illegal_is_refused_with_the_reason(admin_client):
    before = _policy_state()

    # The plan in force pays two levels (80 % + 20 %): one level, or a total below 100 %, would break it.
    one_level = admin_client.post(POLICY_ADD, _policy_form(max_levels="1"))
    low_total = admin_client.post(POLICY_ADD, _policy_form(max_total_rate="0.5000"))

    for response in (one_level, low_total):
        assert response.status_code == 200
        errors = response.context["form"].non_field_errors()
        assert len(errors) == 1
        assert "would break this policy" in errors[0]
        assert "Change the plan first." in response.content.decode()
    assert "allows at most 1" in one_level.context["form"].non_field_errors()[0]
    assert _policy_state() == before


@pytest.mark.parametrize(
    "overrides",
    [
        {"note": ""},
        {"max_total_rate": "1.5"},
        {"max_payout_ratio": "-0.1"},
        {"max_payout_ratio": "0.12345"},
        {"ineligible_share": "burn_it"},
        {"max_levels": "0"},
        {"max_levels": "two"},
        {"max_levels": None},
    ],
)
def test_a_policy_with_bad_values_is_refused_by_the_form(admin_client, overrides):
    before = _policy_state()

    response = admin_client.post(POLICY_ADD, _policy_form(**overrides))

    assert response.status_code == 200
    assert response.context["form"].errors
    assert _policy_state() == before


def test_policy_versions_cannot_be_changed_or_deleted(admin_client):
    policy = CompliancePolicy.objects.get(is_active=True)
    change = reverse("admin:commissions_compliancepolicy_change", args=[policy.pk])

    view = admin_client.get(change)
    post = admin_client.post(change, _policy_form(max_levels="1"))
    delete = admin_client.post(reverse("admin:commissions_compliancepolicy_delete", args=[policy.pk]), {"post": "yes"})

    assert view.status_code == 200
    assert not view.context["has_change_permission"]
    assert post.status_code == 403
    assert delete.status_code == 403
    assert _policy_state()[:3] == (1, policy.pk, 2)


# --- Plans ------------------------------------------------------------------------------------------------


def _plan_state() -> tuple:
    return CommissionPlan.objects.count(), plan_in_force().pk


def test_adding_a_plan_creates_a_draft_that_is_not_in_force(admin_client, staff_user):
    before_in_force = plan_in_force()

    response = admin_client.post(
        PLAN_ADD, {"name": "Sharer-heavy", "level1_rate": "0.9000", "level2_rate": "0.1000", "level3_rate": ""}
    )

    assert response.status_code == 302
    plan = CommissionPlan.objects.get(name="Sharer-heavy")
    assert plan.rates == (Decimal("0.9000"), Decimal("0.1000"))
    assert not plan.is_activated
    assert plan.created_by == staff_user
    assert plan_in_force() == before_in_force


def test_a_plan_that_breaks_the_policy_is_refused_with_every_reason(admin_client):
    before = _plan_state()

    response = admin_client.post(
        PLAN_ADD, {"name": "Greedy", "level1_rate": "0.8000", "level2_rate": "0.2000", "level3_rate": "0.1000"}
    )

    assert response.status_code == 200
    errors = response.context["form"].non_field_errors()
    assert "The plan pays 3 levels; the compliance policy allows at most 2." in errors
    assert any("add up to 1.1000" in error for error in errors)
    assert _plan_state() == before


def test_a_plan_saved_at_the_same_moment_as_another_is_refused_with_a_message(admin_client, monkeypatch):
    before = _plan_state()

    def lost_race(**kwargs):
        raise IntegrityError("duplicate key value violates unique constraint")

    monkeypatch.setattr("commissions.forms.plan_create", lost_race)
    response = admin_client.post(PLAN_ADD, {"name": "Racy", "level1_rate": "0.5000"})

    assert response.status_code == 200
    assert response.context["form"].non_field_errors() == [
        "Another change was saved at the same moment. Nothing was saved: try again."
    ]
    assert _plan_state() == before


@pytest.mark.parametrize(
    "data",
    [
        {"name": "Gap", "level1_rate": "0.5000", "level2_rate": "", "level3_rate": "0.1000"},
        {"name": "", "level1_rate": "0.5000"},
        {"name": "No rate", "level1_rate": ""},
        {"name": "Too big", "level1_rate": "1.2"},
        {"name": "Negative", "level1_rate": "0.5", "level2_rate": "-0.1"},
    ],
)
def test_a_malformed_plan_is_refused_by_the_form(admin_client, data):
    before = _plan_state()

    response = admin_client.post(PLAN_ADD, data)

    assert response.status_code == 200
    assert response.context["form"].errors
    assert _plan_state() == before


def test_activate_now_puts_a_draft_in_force(admin_client, staff_user):
    plan = plan_create(actor=staff_user, name="Flat", rates=(Decimal("0.7000"), Decimal("0.3000")))

    form = admin_client.post(PLANS, {"action": "activate_now", ACTION_CHECKBOX_NAME: [plan.pk]})
    assert "reason" in form.context["form"].fields
    asked = admin_client.post(PLANS, _activate(plan, reason="New season"), follow=True)

    plan.refresh_from_db()
    assert not plan.is_activated  # four eyes: waiting for a second person
    assert "Asked for a second approval" in _messages(asked)[0][1]
    [approval] = second_approves("commissions.plan_activate")
    assert approval.outcome == f"{plan} is in force from now."
    plan.refresh_from_db()
    assert plan.is_activated
    assert plan_in_force() == plan
    response = admin_client.get(PLANS)
    in_force = {row.pk: row.in_force_id == row.pk for row in response.context["cl"].result_list}
    assert in_force[plan.pk] is True
    assert sum(in_force.values()) == 1


def test_activate_now_refuses_a_plan_the_policy_no_longer_allows(admin_client, staff_user):
    # given: a draft paying 100 %, then a policy capping the total at 90 % (the plan in force pays 100 % too, so
    # first put a legal one in force)
    legal = plan_create(actor=staff_user, name="Legal", rates=(Decimal("0.7000"), Decimal("0.2000")))
    admin_client.post(PLANS, _activate(legal), follow=True)
    second_approves("commissions.plan_activate")
    draft = plan_create(actor=staff_user, name="Draft", rates=(Decimal("0.8000"), Decimal("0.2000")))
    policy_publish(actor=staff_user, note="cap", max_total_rate=Decimal("0.9000"))

    # when
    response = admin_client.post(PLANS, _activate(draft), follow=True)

    # then: refused when asked, nothing to approve
    assert not ApprovalRequest.objects.filter(status="pending").exists()
    draft.refresh_from_db()
    assert not draft.is_activated
    assert plan_in_force() == legal
    [(level, text)] = _messages(response)
    assert level == "error"
    assert "more than the compliance policy's maximum total rate of 0.9000" in text


def test_activate_now_refuses_an_activated_plan_and_more_than_one(admin_client, staff_user):
    current = plan_in_force()
    draft = plan_create(actor=staff_user, name="Draft", rates=(Decimal("0.5000"),))

    again = admin_client.post(PLANS, {"action": "activate_now", ACTION_CHECKBOX_NAME: [current.pk]}, follow=True)
    two = admin_client.post(
        PLANS, {"action": "activate_now", ACTION_CHECKBOX_NAME: [current.pk, draft.pk]}, follow=True
    )

    assert [level for level, _text in _messages(again)] == ["error"]
    assert "already activated" in _messages(again)[0][1]
    assert _messages(two) == [("error", "Choose exactly one plan to activate.")]
    draft.refresh_from_db()
    assert not draft.is_activated
    assert plan_in_force() == current


def test_plans_cannot_be_edited_or_deleted(admin_client):
    plan = plan_in_force()
    change = reverse("admin:commissions_commissionplan_change", args=[plan.pk])

    post = admin_client.post(change, {"name": "Edited", "level1_rate": "1.0000"})
    delete = admin_client.post(reverse("admin:commissions_commissionplan_delete", args=[plan.pk]), {"post": "yes"})

    assert admin_client.get(change).status_code == 200
    assert post.status_code == 403
    assert delete.status_code == 403
    plan.refresh_from_db()
    assert plan.level1_rate == Decimal("0.8000")


# --- Ledger -----------------------------------------------------------------------------------------------


def test_entry_list_shows_entries_in_bounded_queries(admin_client, chain, paid, django_assert_max_num_queries):
    products = [ProductFactory(price=Decimal("10.00"), stock=10) for _ in range(15)]
    shop = shop_with_products(*products, owner=chain[2])
    paid(shop)  # 15 lines × (sharer, sponsor, platform) = 45 entries
    paid(shop)  # 90 in all, more than a page

    with django_assert_max_num_queries(6):
        response = admin_client.get(ENTRIES)

    assert response.status_code == 200
    assert len(response.context["cl"].result_list) == 50
    page = response.content.decode()
    assert "¥0.80" in page
    assert reverse("admin:commissions_order_split_lookup") in page


def test_entry_list_filters_and_searches(admin_client, chain, product, paid, django_capture_on_commit_callbacks):
    _root, sponsor, sharer = chain
    shop = shop_with_products(product, owner=sharer)
    first = paid(shop)
    second = paid(shop, {product: 2})
    with django_capture_on_commit_callbacks(execute=True):
        order_refund(order=second, quantities={second.lines.get().pk: 1}, reason="test")

    def pks(**params):
        response = admin_client.get(ENTRIES, params)
        assert response.status_code == 200
        return {entry.pk for entry in response.context["cl"].result_list}

    assert pks(kind="reversal") == set(Entry.objects.filter(kind="reversal").values_list("pk", flat=True))
    assert len(pks(kind="reversal")) == 2
    assert pks(level="2", kind="commission") == set(
        Entry.objects.filter(beneficiary=sponsor, kind="commission").values_list("pk", flat=True)
    )
    assert pks(q=first.number) == set(Entry.objects.filter(order=first).values_list("pk", flat=True))
    assert pks(q=sponsor.invite_code) == set(Entry.objects.filter(beneficiary=sponsor).values_list("pk", flat=True))
    assert pks(q=sharer.user.email) == set(Entry.objects.filter(beneficiary=sharer).values_list("pk", flat=True))
    assert pks(status="pending", kind="platform") == set(
        Entry.objects.filter(kind="platform").values_list("pk", flat=True)
    )


def test_entry_list_filters_by_the_cap_that_bound(admin_client, chain, paid):
    generous = ProductFactory(price=Decimal("10.00"), commission_rate=Decimal("0.5000"))
    capped = paid(shop_with_products(generous, owner=chain[2]))

    uncapped = paid(shop_with_products(ProductFactory(), owner=chain[1]))

    def rows(**params):
        return list(admin_client.get(ENTRIES, params).context["cl"].result_list)

    assert {entry.order_id for entry in rows(capped_by="max_payout_ratio")} == {capped.pk}
    assert len(rows(capped_by="max_payout_ratio")) == 3  # both shares and the platform remainder
    assert {entry.order_id for entry in rows(capped_by="none")} == {uncapped.pk}
    assert rows(capped_by="max_total_rate") == []
    assert {(entry.order_id, entry.kind) for entry in rows(level="0")} == {
        (capped.pk, "platform"),
        (uncapped.pk, "platform"),
    }
    assert len(rows(level="bogus", capped_by="bogus")) == 6  # an unknown value filters nothing


def test_entries_cannot_be_added_changed_or_deleted(admin_client, shop, paid):
    entry = Entry.objects.filter(order=paid(shop)).first()
    change = reverse("admin:commissions_commissionentry_change", args=[entry.pk])

    view = admin_client.get(change)

    assert view.status_code == 200
    assert _split_url(entry.order) in view.content.decode()
    assert admin_client.get(reverse("admin:commissions_commissionentry_add")).status_code == 403
    assert admin_client.post(change, {"amount": "999.00"}).status_code == 403
    delete = reverse("admin:commissions_commissionentry_delete", args=[entry.pk])
    assert admin_client.post(delete, {"post": "yes"}).status_code == 403
    entry.refresh_from_db()
    assert entry.amount != Decimal("999.00")


# --- The split of one order -------------------------------------------------------------------------------


def test_order_split_shows_every_level_the_remainder_and_the_check(admin_client, chain, paid):
    _root, sponsor, sharer = chain
    # pool 3.33 on 33.30: 80 % → 2.664 → 2.66, 20 % → 0.666 → 0.66; the platform keeps the cent: 0.01
    product = ProductFactory(price=Decimal("33.30"), commission_rate=Decimal("0.1000"))
    order = paid(shop_with_products(product, owner=sharer))

    response = admin_client.get(_split_url(order))

    assert response.status_code == 200
    report = response.context["report"]
    [line] = report.lines
    assert line.pool == Decimal("3.33")
    assert [(e.level, e.beneficiary_id, e.amount) for e in line.commissions] == [
        (1, sharer.pk, Decimal("2.66")),
        (2, sponsor.pk, Decimal("0.66")),
    ]
    assert line.platform.amount == Decimal("0.01")
    assert line.reconciles and report.reconciles
    page = response.content.decode()
    for shown in (order.number, "¥3.33", "¥2.66", "¥0.66", "¥0.01", "Platform remainder", "= ¥3.33", "plan v1"):
        assert shown in page, shown


def test_order_split_shows_refunds_with_their_reversals(
    admin_client, shop, product, paid, django_capture_on_commit_callbacks
):
    order = paid(shop, {product: 2})
    line = order.lines.get()
    with django_capture_on_commit_callbacks(execute=True):
        order_refund(order=order, quantities={line.pk: 1}, reason="broken")

    response = admin_client.get(_split_url(order))

    [row] = response.context["report"].lines
    [refund] = row.refunds
    assert refund.amount == Decimal("10.00")
    assert sorted(e.amount for e in refund.entries) == [Decimal("-0.80"), Decimal("-0.20")]
    assert row.member_net == Decimal("1.00")
    page = response.content.decode()
    assert "-¥0.80" in page
    assert "Reversal (refund before release)" in page


def test_order_split_of_an_unsplit_order_says_so(admin_client, shop):
    order = place_order(shop)  # not paid

    response = admin_client.get(_split_url(order))

    assert response.status_code == 200
    assert "Not paid: nothing to split." in response.content.decode()
    assert admin_client.get(reverse("admin:commissions_order_split", args=[10**9])).status_code == 404


def test_order_split_is_found_by_number_or_id(admin_client, shop, paid):
    order = paid(shop)
    lookup = reverse("admin:commissions_order_split_lookup")

    by_number = admin_client.get(lookup, {"order": order.number})
    by_id = admin_client.get(lookup, {"order": str(order.pk)})
    unknown = admin_client.get(lookup, {"order": "nope"}, follow=True)

    assert by_number.status_code == by_id.status_code == 302
    assert by_number.url == by_id.url == _split_url(order)
    assert _messages(unknown) == [("error", "No order with that number or id.")]


def test_order_split_runs_in_bounded_queries(admin_client, chain, paid, django_assert_max_num_queries):
    products = [ProductFactory(price=Decimal("10.00"), stock=10) for _ in range(10)]
    order = paid(shop_with_products(*products, owner=chain[2]))

    with django_assert_max_num_queries(8):
        response = admin_client.get(_split_url(order))

    assert len(response.context["report"].lines) == 10


def test_order_split_is_for_staff_only(client, shop, paid):
    order = paid(shop)
    member_user = shop.owner.user
    staff_without_permission = UserFactory(is_staff=True)
    staff_who_may_view = UserFactory(is_staff=True)
    staff_who_may_view.user_permissions.add(Permission.objects.get(codename="view_commissionentry"))

    anonymous = client.get(_split_url(order))
    client.force_login(member_user)
    member = client.get(_split_url(order))
    client.force_login(staff_without_permission)
    no_permission = client.get(_split_url(order))
    client.force_login(staff_who_may_view)
    allowed = client.get(_split_url(order))

    assert anonymous.status_code == 302 and "/admin/login/" in anonymous.url
    assert member.status_code == 302 and "/admin/login/" in member.url
    assert no_permission.status_code == 403
    assert allowed.status_code == 200
