"""Staff groups: each can do its job through the admin, and nothing more (staff/groups.py)."""

from decimal import Decimal

import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.contrib.auth.models import Group, Permission
from django.core.management import call_command
from django.urls import reverse

from accounts.models import ApprovalRequest
from commissions.models import CompliancePolicy
from payouts.models import Withdrawal
from payouts.services import withdrawal_request
from shops.models import Order
from staff.groups import COMPLIANCE, FINANCE, GROUP_PERMISSIONS, SUPPORT
from tests.factories import BUYER, MemberFactory, UserFactory, pay_order, place_order, shop_with_products
from tests.payouts.helpers import CARD, CARD_MASKED, bank_account, credit

pytestmark = pytest.mark.django_db

ORDERS = reverse("admin:shops_order_changelist")
WITHDRAWALS = reverse("admin:payouts_withdrawal_changelist")
ACCOUNTS = reverse("admin:payouts_payoutaccount_changelist")
POLICY_ADD = reverse("admin:commissions_compliancepolicy_add")
APPROVALS = reverse("admin:accounts_approvalrequest_changelist")
PLANS = reverse("admin:commissions_commissionplan_changelist")
MEMBERS = reverse("admin:referrals_member_changelist")
USERS = reverse("admin:accounts_user_changelist")
GROUPS = reverse("admin:auth_group_changelist")
PRODUCTS_ADD = reverse("admin:shops_product_add")
AUDIT = reverse("staff:audit_log")
OVERVIEW = reverse("staff:overview")
REPORT = reverse("staff:compliance_report")
SIMULATIONS = reverse("staff:simulation_list")


@pytest.fixture
def groups():
    call_command("staff_groups", verbosity=0)


def _person(group_name: str | None):
    user = UserFactory(is_staff=True)
    if group_name:
        user.groups.add(Group.objects.get(name=group_name))
    return user


@pytest.fixture
def paid_order():
    shop = shop_with_products()
    return pay_order(place_order(shop))


@pytest.fixture
def requested_withdrawal():
    member = MemberFactory()
    credit(member, "100.00")
    bank_account(member)
    return withdrawal_request(member=member, amount=Decimal("40.00"))


def _status(client, url) -> int:
    return client.get(url).status_code


def _codes(group: Group) -> set[str]:
    return {f"{app}.{code}" for app, code in group.permissions.values_list("content_type__app_label", "codename")}


def test_command_gives_each_group_exactly_its_permissions_and_is_idempotent(groups):
    # given: someone added a permission by hand
    support = Group.objects.get(name=SUPPORT)
    support.permissions.add(Permission.objects.get(codename="change_withdrawal"))

    # when
    call_command("staff_groups", verbosity=0)

    # then: the table wins, and nothing is duplicated
    assert Group.objects.filter(name__in=GROUP_PERMISSIONS).count() == 3
    for name, wanted in GROUP_PERMISSIONS.items():
        assert _codes(Group.objects.get(name=name)) == set(wanted)


def test_no_group_can_move_members_manage_people_or_edit_money(groups):
    # Tree moves, user accounts, groups and the catalogue's prices and rates stay with superusers.
    forbidden = {
        "referrals.change_member",
        "referrals.delete_member",
        "referrals.add_member",
        "accounts.change_user",
        "accounts.add_user",
        "auth.change_group",
        "auth.add_group",
        "shops.change_product",
        "shops.add_product",
        "commissions.change_commissionentry",
        "commissions.delete_commissionentry",
        "payouts.add_withdrawal",
        "payouts.delete_withdrawal",
    }
    for name in GROUP_PERMISSIONS:
        assert not _codes(Group.objects.get(name=name)) & forbidden, name


def test_support_handles_orders_and_refunds_and_nothing_else(groups, client, paid_order, requested_withdrawal):
    client.force_login(_person(SUPPORT))

    # its job: see orders with the buyer's contact, ship one, refund one
    page = client.get(reverse("admin:shops_order_change", args=[paid_order.pk]))
    assert page.status_code == 200 and BUYER.phone in page.content.decode()
    client.post(ORDERS, {"action": "mark_shipped", ACTION_CHECKBOX_NAME: [paid_order.pk]})
    assert Order.objects.get(pk=paid_order.pk).status == Order.Status.SHIPPED
    client.post(ORDERS, {"action": "refund_in_full", ACTION_CHECKBOX_NAME: [paid_order.pk]})
    assert Order.objects.get(pk=paid_order.pk).status == Order.Status.REFUNDED
    assert _status(client, OVERVIEW) == 200

    # nothing more
    for url in (WITHDRAWALS, ACCOUNTS, POLICY_ADD, AUDIT, REPORT, SIMULATIONS, USERS, GROUPS, PRODUCTS_ADD):
        assert _status(client, url) == 403, url
    assert Withdrawal.objects.get(pk=requested_withdrawal.pk).status == Withdrawal.Status.REQUESTED


def test_finance_pays_out_and_sees_full_numbers_but_not_buyers(groups, client, paid_order, requested_withdrawal):
    client.force_login(_person(FINANCE))

    # its job: approve a withdrawal, see full account numbers
    client.post(WITHDRAWALS, {"action": "approve_withdrawals", ACTION_CHECKBOX_NAME: [requested_withdrawal.pk]})
    assert Withdrawal.objects.get(pk=requested_withdrawal.pk).status == Withdrawal.Status.APPROVED
    account_page = client.get(ACCOUNTS + "?q=")
    assert account_page.status_code == 200
    account = requested_withdrawal.member.payout_account
    detail = client.get(reverse("admin:payouts_payoutaccount_change", args=[account.pk])).content.decode()
    assert CARD in detail
    assert _status(client, OVERVIEW) == 200

    # nothing more: orders are visible (to trace a payout) but not their buyers, and not actionable
    order_page = client.get(reverse("admin:shops_order_change", args=[paid_order.pk])).content.decode()
    assert BUYER.phone not in order_page and BUYER.address not in order_page
    client.post(ORDERS, {"action": "mark_shipped", ACTION_CHECKBOX_NAME: [paid_order.pk]})
    assert Order.objects.get(pk=paid_order.pk).status == Order.Status.PAID
    for url in (POLICY_ADD, AUDIT, REPORT, SIMULATIONS, USERS, GROUPS, PRODUCTS_ADD):
        assert _status(client, url) == 403, url


def test_compliance_sets_caps_and_reads_reports_but_moves_no_money(groups, client, paid_order, requested_withdrawal):
    client.force_login(_person(COMPLIANCE))

    # its job: publish a policy version, read plans, the report, the simulator and the audit log
    before = CompliancePolicy.objects.count()
    response = client.post(
        POLICY_ADD,
        {
            "max_levels": "2",
            "max_total_rate": "1.0000",
            "max_payout_ratio": "0.2500",
            "ineligible_share": "platform",
            "note": "tighter ratio",
        },
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    # four eyes: a second compliance user approves it in the approval queue, which the first may see too
    assert CompliancePolicy.objects.count() == before
    approval = ApprovalRequest.objects.get(status="pending")
    assert _status(client, APPROVALS) == 200
    second = _person(COMPLIANCE)
    client.force_login(second)
    client.post(reverse("admin:accounts_approvalrequest_decide", args=[approval.pk]), {"approve": "1"})
    assert CompliancePolicy.objects.count() == before + 1
    for url in (PLANS, REPORT, SIMULATIONS, AUDIT, OVERVIEW):
        assert _status(client, url) == 200, url

    # nothing more: no withdrawals, no payout accounts, no order actions, no buyer contact
    for url in (WITHDRAWALS, ACCOUNTS, USERS, GROUPS, PRODUCTS_ADD):
        assert _status(client, url) == 403, url
    order_page = client.get(reverse("admin:shops_order_change", args=[paid_order.pk])).content.decode()
    assert BUYER.phone not in order_page
    client.post(ORDERS, {"action": "refund_in_full", ACTION_CHECKBOX_NAME: [paid_order.pk]})
    assert Order.objects.get(pk=paid_order.pk).status == Order.Status.PAID


def test_staff_outside_every_group_see_no_back_office_page(groups, client):
    client.force_login(_person(None))
    for url in (OVERVIEW, AUDIT, REPORT, SIMULATIONS):
        assert _status(client, url) == 403, url


def test_full_account_numbers_need_the_finance_permission(groups, client, requested_withdrawal):
    # A support member given view access to accounts by hand still sees them masked.
    user = _person(SUPPORT)
    user.user_permissions.add(Permission.objects.get(codename="view_payoutaccount"))
    client.force_login(user)
    account = requested_withdrawal.member.payout_account
    page = client.get(reverse("admin:payouts_payoutaccount_change", args=[account.pk])).content.decode()
    assert CARD not in page and CARD_MASKED in page
