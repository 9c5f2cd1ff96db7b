"""A suspended member: every member page refuses them with a 403 that says why, except their earnings, statement and
withdrawals, which stay readable (GET) but cannot be changed (no withdrawal requested or cancelled, no payout account
changed). SPEC says nothing on this, so: the shop-owner tools close, what they already earned stays visible."""

from decimal import Decimal

import pytest
from django.urls import reverse

from payouts.models import PayoutAccount, Withdrawal
from payouts.services import withdrawal_request
from referrals.models import Member
from referrals.services import member_set_status
from shops.models import ShareLink
from shops.services import share_link_create
from tests.factories import MemberFactory, shop_with_products
from tests.payouts.helpers import bank_account, credit

pytestmark = pytest.mark.django_db

SUSPENDED = "Your membership is suspended; contact support."


@pytest.fixture
def member():
    member = shop_with_products().owner
    credit(member, "100.00")
    bank_account(member)
    return member


@pytest.fixture
def link(member):
    return share_link_create(owner=member)


@pytest.fixture
def withdrawal(member):
    return withdrawal_request(member=member, amount=Decimal("60.00"))


def suspend(member):
    return member_set_status(member=member, status=Member.Status.SUSPENDED, actor=None, reason="under review")


@pytest.fixture
def suspended_client(client, member, link, withdrawal):
    suspend(member)
    client.force_login(member.user)
    return client


def assert_refused(response):
    assert response.status_code == 403
    assert SUSPENDED in response.content.decode()


CLOSED_PAGES = [
    "members:dashboard",
    "members:team",
    "members:links",
    "members:my_shop",
    "members:my_shop_address_check",
    "members:my_shop_products",
    "members:my_shop_catalogue",
    "members:orders",
    "members:share_shop",
    "members:share_invite",
    "members:invite_poster",
    "members:invite_poster_page",
]
READABLE_PAGES = ["members:commission_entries", "members:payouts", "members:payout_account", "members:payout_statement"]


@pytest.mark.parametrize("name", CLOSED_PAGES)
def test_a_suspended_member_is_refused_the_shop_owner_pages(suspended_client, name):
    assert_refused(suspended_client.get(reverse(name)))


def test_the_refusal_page_points_to_what_stays_open(suspended_client):
    page = suspended_client.get(reverse("members:dashboard")).content.decode()

    assert reverse("members:commission_entries") in page
    assert reverse("members:payouts") in page


def test_a_suspended_member_gets_no_qr_codes(suspended_client, link):
    assert_refused(suspended_client.get(reverse("members:link_qr", args=[link.pk, "png"])))
    assert_refused(suspended_client.get(reverse("members:invite_qr", args=["svg"])))
    assert_refused(suspended_client.get(reverse("members:link_poster", args=[link.pk])))
    assert_refused(suspended_client.get(reverse("members:link_poster_page", args=[link.pk])))


def test_a_suspended_member_cannot_change_links(suspended_client, link):
    assert_refused(suspended_client.post(reverse("members:link_deactivate", args=[link.pk])))
    assert_refused(suspended_client.post(reverse("members:links"), {}))

    assert ShareLink.objects.get(pk=link.pk).is_active
    assert ShareLink.objects.filter(owner=link.owner).count() == 1


def test_a_suspended_member_cannot_change_the_shop(suspended_client, member):
    shop = member.shop
    response = suspended_client.post(reverse("members:my_shop"), {"name": "Renamed", "slug": "renamed", "is_open": ""})

    assert_refused(response)
    shop.refresh_from_db()
    assert (shop.name, shop.slug, shop.is_open) != ("Renamed", "renamed", False)


@pytest.mark.parametrize("name", READABLE_PAGES)
def test_a_suspended_member_still_sees_earnings_and_withdrawals(suspended_client, name):
    assert suspended_client.get(reverse(name)).status_code == 200


def test_a_suspended_member_still_downloads_the_statement(suspended_client):
    response = suspended_client.get(reverse("members:payout_statement_csv"))

    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")


def test_a_suspended_member_cannot_request_or_cancel_a_withdrawal(suspended_client, member, withdrawal):
    assert_refused(suspended_client.post(reverse("members:payouts"), {"amount": "10.00"}))
    assert_refused(suspended_client.post(reverse("members:withdrawal_cancel", args=[withdrawal.pk])))

    assert list(Withdrawal.objects.filter(member=member).values_list("pk", "status")) == [
        (withdrawal.pk, Withdrawal.Status.REQUESTED)
    ]


def test_a_suspended_member_cannot_change_the_payout_account(suspended_client, member):
    before = PayoutAccount.objects.filter(member=member).values().get()

    response = suspended_client.post(
        reverse("members:payout_account"),
        {"method": "alipay", "holder_name": "Someone Else", "alipay_account": "x@y.cn"},
    )

    assert_refused(response)
    assert PayoutAccount.objects.filter(member=member).values().get() == before


def test_a_reactivated_member_has_every_page_back(suspended_client, member):
    member_set_status(member=member, status=Member.Status.ACTIVE, actor=None)

    for name in CLOSED_PAGES + READABLE_PAGES:
        assert suspended_client.get(reverse(name)).status_code == 200, name


def test_other_members_are_not_affected(client, member):
    suspend(member)
    client.force_login(MemberFactory().user)

    assert client.get(reverse("members:dashboard")).status_code == 200


def test_signed_out_visitors_still_go_to_the_login_page(client, member):
    suspend(member)

    response = client.get(reverse("members:dashboard"))

    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))
