"""The risk review queue in the back office (issue #25): metrics per rule, evidence shown readably, bulk decisions
with a reason, refused without one, and only for staff who may review."""

from decimal import Decimal

import pytest
from django.contrib.admin import helpers
from django.contrib.auth.models import Group
from django.core.management import call_command
from django.urls import reverse

from accounts.approvals import ApprovalError, approval_decide
from accounts.models import ApprovalRequest
from commissions.models import CommissionEntry, RiskEvent, RiskFlag, RiskRule
from commissions.services.risk import risk_sighting_record
from shops.services import order_place
from staff.audit import AuditFilters, audit_rows
from staff.groups import COMPLIANCE, FINANCE
from tests.commissions.test_risk_review import STRANGER
from tests.factories import ProductFactory, UserFactory, make_chain, pay_order, shop_with_products

pytestmark = pytest.mark.django_db
URL = reverse("admin:commissions_riskflag_changelist")


@pytest.fixture
def flags(django_capture_on_commit_callbacks):
    _paul, sara = make_chain(2)
    shop = shop_with_products(ProductFactory(price=Decimal("100.00")), owner=sara)
    risk_sighting_record(member_id=sara.pk, device_key="dev-sara")
    product = shop.listings.get().product
    for _ in range(2):
        order = order_place(shop=shop, items={product.pk: 1}, buyer=STRANGER, device_key="dev-sara")
        with django_capture_on_commit_callbacks(execute=True):
            pay_order(order)
    return list(RiskFlag.objects.order_by("pk"))


def staff_in(group: str):
    call_command("staff_groups", verbosity=0)
    user = UserFactory(is_staff=True)
    user.groups.add(Group.objects.get(name=group))
    return user


def test_the_queue_shows_metrics_and_evidence(client, flags):
    client.force_login(staff_in(COMPLIANCE))
    response = client.get(URL, {"rule": "shared_identity"})
    assert response.status_code == 200
    page = response.content.decode()
    assert 'id="risk-metrics"' in page
    assert "shared: devices" in page
    metrics = {row["code"]: row for row in response.context["risk_metrics"]}
    assert (metrics["shared_identity"]["raised"], metrics["shared_identity"]["open"]) == (2, 2)


def test_bulk_reverse_asks_for_a_reason_then_decides_every_flag(client, flags):
    client.force_login(staff_in(COMPLIANCE))
    selected = {"action": "reverse", helpers.ACTION_CHECKBOX_NAME: [flag.pk for flag in flags]}
    # without a reason: the form again, nothing decided
    response = client.post(URL, {**selected, "apply": "1", "reason": ""})
    assert response.status_code == 400
    assert RiskFlag.objects.filter(status="open").count() == 2
    # with one: both reversed, each with its audit row
    response = client.post(URL, {**selected, "apply": "1", "reason": "Same phone as the sharer"}, follow=True)
    assert RiskFlag.objects.filter(status="confirmed", resolution="reversed").count() == 2
    assert RiskEvent.objects.filter(kind="reversed", reason="Same phone as the sharer").count() == 2
    assert not CommissionEntry.objects.filter(
        order__in=[f.order_id for f in flags], level__gte=1, status="pending"
    ).exists()


def test_finance_may_look_but_not_decide(client, flags):
    client.force_login(staff_in(FINANCE))
    assert client.get(URL).status_code == 200
    response = client.post(
        URL,
        {"action": "release", helpers.ACTION_CHECKBOX_NAME: [flags[0].pk], "apply": "1", "reason": "fine"},
    )
    assert response.status_code in (200, 302)
    assert RiskFlag.objects.filter(status="open").count() == 2


def test_decisions_and_rule_changes_are_in_the_audit_log(client, flags):
    reviewer = staff_in(COMPLIANCE)
    client.force_login(reviewer)
    selected = {"action": "release", helpers.ACTION_CHECKBOX_NAME: [flags[0].pk], "apply": "1"}
    client.post(URL, {**selected, "reason": "Her sister"})
    rule_url = reverse("admin:commissions_riskrule_change", args=[RiskRule.objects.get(code="click_spike").pk])
    response = client.post(rule_url, {"is_enabled": "on", "threshold": "12", "minimum": "200", "reason": ""})
    assert response.status_code == 200  # the reason is required: the form again, nothing changed
    assert RiskRule.objects.get(code="click_spike").threshold == Decimal("10")
    client.post(rule_url, {"is_enabled": "on", "threshold": "12", "minimum": "200", "reason": "Sale week"})
    assert RiskRule.objects.get(code="click_spike").threshold == Decimal("12")

    rows = audit_rows(AuditFilters(object_type="risk_flag"))
    assert [(row.kind, row.actor_id) for row in rows] == [
        ("risk.rule_changed", reviewer.pk),
        ("risk.released", reviewer.pk),
    ]
    assert "Her sister" in rows[1].detail and "threshold 10.0000 → 12" in rows[0].detail


def test_a_ban_is_asked_for_and_done_when_a_second_reviewer_approves_it(client, flags):
    first, second = staff_in(COMPLIANCE), staff_in(COMPLIANCE)
    member = flags[0].member
    client.force_login(first)
    client.post(
        URL, {"action": "ban", helpers.ACTION_CHECKBOX_NAME: [flags[0].pk], "apply": "1", "reason": "Ring of accounts"}
    )
    # asked for, not done: the member is still active
    member.refresh_from_db()
    assert member.status == "active"
    approval = ApprovalRequest.objects.get(action="payouts.member_ban", status="pending")
    with pytest.raises(ApprovalError):
        approval_decide(request=approval, approver=first, approve=True)
    # a second reviewer approves: banned, the ban's event names them
    approval_decide(request=approval, approver=second, approve=True)
    member.refresh_from_db()
    assert member.status == "suspended"
    assert RiskEvent.objects.filter(kind="banned", actor=second, reason="Ring of accounts").exists()
