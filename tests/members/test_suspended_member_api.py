"""A suspended member and the API: 403 {"code": "suspended"} on every member endpoint, except reading their own
account, earnings, balance, statement, payout account and withdrawals (GET); nothing can be changed."""

from decimal import Decimal

import pytest

from payouts.models import PayoutAccount, Withdrawal
from payouts.services import withdrawal_request
from referrals.models import Member
from referrals.services import member_set_status
from shops.models import ShareLink
from shops.services import share_link_create
from tests.api.conftest import bearer
from tests.factories import shop_with_products
from tests.payouts.helpers import bank_account, credit

pytestmark = pytest.mark.django_db

SUSPENDED_BODY = {"code": "suspended", "message": "Your membership is suspended; contact support.", "fields": {}}

CLOSED = [
    ("get", "/api/v1/links/"),
    ("post", "/api/v1/links/create/"),
    ("get", "/api/v1/team/"),
    ("get", "/api/v1/team/members/?level=1"),
    ("get", "/api/v1/orders/"),
    ("get", "/api/v1/orders/26120700000000/"),
    ("get", "/api/v1/shop/"),
    ("patch", "/api/v1/shop/"),
    ("get", "/api/v1/shop/listings/"),
    ("post", "/api/v1/shop/listings/"),
    ("get", "/api/v1/catalogue/"),
    ("get", "/api/v1/catalogue/categories/"),
    ("post", "/api/v1/payouts/withdrawals/create/"),
    ("put", "/api/v1/payouts/account/"),
]
READABLE = [
    "/api/v1/me/",
    "/api/v1/commissions/",
    "/api/v1/commissions/summary/",
    "/api/v1/payouts/balance/",
    "/api/v1/payouts/statement/",
    "/api/v1/payouts/account/",
    "/api/v1/payouts/withdrawals/",
]


@pytest.fixture
def member():
    member = shop_with_products().owner
    credit(member, "100.00")
    bank_account(member)
    return member


@pytest.fixture
def headers(member):
    headers = bearer(member)
    member_set_status(member=member, status=Member.Status.SUSPENDED, actor=None)
    return headers


@pytest.mark.parametrize(("method", "url"), CLOSED)
def test_a_suspended_member_is_refused_the_member_endpoints(api_client, headers, method, url):
    response = getattr(api_client, method)(url, {}, format="json", **headers)

    assert response.status_code == 403
    assert response.json() == SUSPENDED_BODY


@pytest.mark.parametrize("url", READABLE)
def test_a_suspended_member_still_reads_account_earnings_and_withdrawals(api_client, headers, url):
    assert api_client.get(url, **headers).status_code == 200


def test_me_says_the_member_is_suspended(api_client, headers):
    assert api_client.get("/api/v1/me/", **headers).json()["status"] == "suspended"


def test_a_suspended_member_changes_nothing_through_the_api(api_client, member, headers):
    withdrawal = withdrawal_request(member=member, amount=Decimal("10.00"))
    account = PayoutAccount.objects.filter(member=member).values().get()

    answers = [
        api_client.post("/api/v1/links/create/", {}, format="json", **headers).status_code,
        api_client.post("/api/v1/payouts/withdrawals/create/", {"amount": "50"}, format="json", **headers).status_code,
        api_client.post(f"/api/v1/payouts/withdrawals/{withdrawal.pk}/cancel/", **headers).status_code,
        api_client.put(
            "/api/v1/payouts/account/", {"method": "alipay", "holder_name": "X", "alipay_account": "x@y.cn"},
            format="json", **headers,
        ).status_code,
    ]  # fmt: skip

    assert answers == [403, 403, 403, 403]
    assert not ShareLink.objects.filter(owner=member).exists()
    assert list(Withdrawal.objects.filter(member=member).values_list("pk", "status")) == [
        (withdrawal.pk, Withdrawal.Status.REQUESTED)
    ]
    assert PayoutAccount.objects.filter(member=member).values().get() == account


def test_a_suspended_member_signed_in_by_session_is_refused_too(api_client, member):
    member_set_status(member=member, status=Member.Status.SUSPENDED, actor=None)
    api_client.force_login(member.user)

    response = api_client.get("/api/v1/links/")

    assert response.status_code == 403
    assert response.json()["code"] == "suspended"


def test_a_reactivated_member_has_the_api_back(api_client, member, headers):
    member_set_status(member=member, status=Member.Status.ACTIVE, actor=None)
    share_link_create(owner=member)

    assert api_client.get("/api/v1/links/", **headers).status_code == 200


def test_a_non_member_still_gets_the_join_message(api_client, user_factory):
    api_client.force_login(user_factory())

    response = api_client.get("/api/v1/links/")

    assert response.status_code == 403
    assert response.json()["message"] == "Join the programme first."
