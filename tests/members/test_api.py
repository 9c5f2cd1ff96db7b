"""The member's REST API: share links, team, attributed orders, commission entries, payouts.

Every endpoint: refused without credentials (in the one error shape), the owner's data, another member's object
answers 404, bad input answers 400 with {"code", "message", "fields"}. Money is a string with two decimals.
"""

import re
from decimal import Decimal

import pytest
from django.urls import reverse
from django.utils import timezone
from rest_framework.test import APIClient

from commissions.models import CommissionEntry
from payouts.models import PayoutAccount, Withdrawal
from payouts.services import payout_account_save, withdrawal_request
from shops.models import Order, ShareLink
from shops.services import share_link_create
from tests.factories import (
    BUYER,
    MemberFactory,
    ProductFactory,
    UserFactory,
    make_chain,
    pay_order,
    place_order,
    shop_with_products,
)

pytestmark = pytest.mark.django_db

ERROR_KEYS = {"code", "message", "fields"}
MONEY = re.compile(r"^-?\d+\.\d{2}$")
CARD = "6222021234567890"

LINKS = reverse("members-api:links")
LINK_CREATE = reverse("members-api:link_create")
TEAM = reverse("members-api:team")
TEAM_MEMBERS = reverse("members-api:team_members")
ORDERS = reverse("members-api:orders")
ENTRIES = reverse("members-api:commission_entries")
SUMMARY = reverse("members-api:commission_summary")
BALANCE = reverse("members-api:payout_balance")
STATEMENT = reverse("members-api:payout_statement")
ACCOUNT = reverse("members-api:payout_account")
WITHDRAWALS = reverse("members-api:withdrawals")
WITHDRAWAL_CREATE = reverse("members-api:withdrawal_create")


def _link_deactivate(link_id) -> str:
    return reverse("members-api:link_deactivate", args=[link_id])


def _entry_detail(entry_id) -> str:
    return reverse("members-api:commission_entry_detail", args=[entry_id])


def _withdrawal_cancel(withdrawal_id) -> str:
    return reverse("members-api:withdrawal_cancel", args=[withdrawal_id])


def _client(member=None) -> APIClient:
    client = APIClient()
    if member is not None:
        client.force_authenticate(member.user)
    return client


def _assert_error(response, status: int, code: str | None = None) -> dict:
    assert response.status_code == status, response.content
    body = response.json()
    assert set(body) == ERROR_KEYS
    assert isinstance(body["message"], str) and body["message"]
    assert isinstance(body["fields"], dict)
    if code is not None:
        assert body["code"] == code
    return body


def _assert_money(value, expected: str) -> None:
    assert isinstance(value, str) and MONEY.match(value), value
    assert value == expected


# --- fixtures -------------------------------------------------------------------------------------------


@pytest.fixture
def chain():
    """root ← sponsor ← sharer: the sharer earns level 1 and the sponsor level 2."""
    return make_chain(3)


@pytest.fixture
def sharer(chain):
    return chain[2]


@pytest.fixture
def product():
    return ProductFactory(price=Decimal("10.00"), commission_rate=Decimal("0.1000"), stock=1000)


@pytest.fixture
def shop(sharer, product):
    return shop_with_products(product, owner=sharer)


@pytest.fixture
def paid(django_capture_on_commit_callbacks):
    """paid(shop, {product: quantity}) → a paid order whose split has run."""

    def pay(shop, items=None):
        with django_capture_on_commit_callbacks(execute=True):
            return pay_order(place_order(shop, items))

    return pay


def credit(member, amount: str, status=CommissionEntry.Status.AVAILABLE) -> CommissionEntry:
    order = place_order(shop_with_products(ProductFactory()))
    return CommissionEntry.objects.create(
        order=order,
        order_line=order.lines.first(),
        beneficiary=member,
        level=1,
        kind=CommissionEntry.Kind.COMMISSION,
        base=Decimal(amount),
        rate=Decimal("1.0000"),
        amount=Decimal(amount),
        status=status,
        released_at=None if status == CommissionEntry.Status.PENDING else timezone.now(),
    )


def bank_account(member) -> PayoutAccount:
    return payout_account_save(
        member=member, method="bank", holder_name="王芳", bank_name="中国工商银行", account_number=CARD
    )


# --- Authentication, for every endpoint -------------------------------------------------------------------


EVERY_GET = [LINKS, TEAM, f"{TEAM_MEMBERS}?level=1", ORDERS, ENTRIES, SUMMARY, BALANCE, STATEMENT, ACCOUNT, WITHDRAWALS]
EVERY_POST = [LINK_CREATE, WITHDRAWAL_CREATE, "/api/v1/links/1/deactivate/", "/api/v1/payouts/withdrawals/1/cancel/"]


@pytest.mark.parametrize("url", [*EVERY_GET, "/api/v1/commissions/1/"])
def test_reads_without_credentials_are_refused_in_the_error_shape(url):
    response = _client().get(url)

    assert response.status_code in (401, 403)
    _assert_error(response, response.status_code, "not_authenticated")


@pytest.mark.parametrize("url", EVERY_POST)
def test_writes_without_credentials_are_refused_in_the_error_shape(url):
    response = _client().post(url, {"amount": "50.00"}, format="json")

    assert response.status_code in (401, 403)
    _assert_error(response, response.status_code, "not_authenticated")


def test_put_account_without_credentials_is_refused():
    response = _client().put(ACCOUNT, {"method": "bank"}, format="json")

    assert response.status_code in (401, 403)
    _assert_error(response, response.status_code, "not_authenticated")


@pytest.mark.parametrize("url", EVERY_GET)
def test_a_signed_in_user_who_is_not_a_member_is_refused(url):
    client = APIClient()
    client.force_authenticate(UserFactory())

    _assert_error(client.get(url), 403, "permission_denied")


def test_a_session_login_works_too(sharer):
    client = APIClient()
    client.force_login(sharer.user)

    assert client.get(SUMMARY).status_code == 200


# --- Share links ----------------------------------------------------------------------------------------


def test_links_list_shows_my_links_with_stats_urls_and_qr(sharer, shop, product, settings):
    settings.SITE_URL = "https://shop.example.com"  # links are built from it, not from the request's host
    shop_link = share_link_create(owner=sharer)
    product_link = share_link_create(owner=sharer, product=product, campaign="spring")
    order = place_order(shop, {product: 3})
    Order.objects.filter(pk=order.pk).update(share_link=product_link, sharer=sharer)
    pay_order(Order.objects.get(pk=order.pk))

    response = _client(sharer).get(LINKS)

    assert response.status_code == 200
    body = response.json()
    assert body["count"] == 2
    rows = {row["id"]: row for row in body["results"]}
    assert set(rows) == {shop_link.pk, product_link.pk}
    row = rows[product_link.pk]
    assert row["url"] == f"https://shop.example.com/l/{product_link.code}"
    assert row["qr_svg_url"] == f"https://shop.example.com/dashboard/links/{product_link.pk}/qr.svg"
    assert row["qr_png_url"] == f"https://shop.example.com/dashboard/links/{product_link.pk}/qr.png"
    assert row["product_id"] == product.pk and row["campaign"] == "spring"
    assert row["orders"] == 1
    _assert_money(row["sales"], "30.00")
    assert row["clicks"] == 0 and row["conversion_rate"] is None
    _assert_money(rows[shop_link.pk]["sales"], "0.00")


def test_links_list_never_shows_another_members_links(sharer, shop):
    other = MemberFactory()
    shop_with_products(owner=other)
    share_link_create(owner=other)

    body = _client(sharer).get(LINKS).json()

    assert body["count"] == 0


def test_link_create_for_the_shop_and_a_product(sharer, shop, product):
    response = _client(sharer).post(LINK_CREATE, {"product": product.pk, "campaign": " wechat "}, format="json")

    assert response.status_code == 201
    link = ShareLink.objects.get(owner=sharer)
    assert response.json()["id"] == link.pk and link.product == product and link.campaign == "wechat"
    assert response.json()["url"].endswith(f"/l/{link.code}")

    assert _client(sharer).post(LINK_CREATE, {}, format="json").status_code == 201
    assert ShareLink.objects.filter(owner=sharer, product=None).count() == 1


def test_link_create_refuses_a_product_not_in_my_shop(sharer, shop):
    other_product = ProductFactory()

    body = _assert_error(
        _client(sharer).post(LINK_CREATE, {"product": other_product.pk}, format="json"), 400, "not_listed"
    )

    assert "own shop" in body["message"]
    assert not ShareLink.objects.exists()


def test_link_create_refuses_a_member_without_a_shop():
    member = MemberFactory()

    _assert_error(_client(member).post(LINK_CREATE, {}, format="json"), 400, "no_shop")
    assert not ShareLink.objects.exists()


@pytest.mark.parametrize(
    ("payload", "field"),
    [({"product": "abc"}, "product"), ({"product": 999999}, "product"), ({"campaign": "x" * 61}, "campaign")],
)
def test_link_create_refuses_bad_input(sharer, shop, payload, field):
    body = _assert_error(_client(sharer).post(LINK_CREATE, payload, format="json"), 400)

    assert field in body["fields"]
    assert not ShareLink.objects.exists()


def test_link_deactivate_mine(sharer, shop):
    link = share_link_create(owner=sharer)

    response = _client(sharer).post(_link_deactivate(link.pk))

    assert response.status_code == 200 and response.json()["is_active"] is False
    link.refresh_from_db()
    assert link.is_active is False


def test_link_deactivate_another_members_link_is_404(sharer, shop):
    other = MemberFactory()
    shop_with_products(owner=other)
    link = share_link_create(owner=other)

    _assert_error(_client(sharer).post(_link_deactivate(link.pk)), 404, "not_found")
    link.refresh_from_db()
    assert link.is_active is True


def test_link_deactivate_get_is_not_allowed(sharer, shop):
    link = share_link_create(owner=sharer)

    _assert_error(_client(sharer).get(_link_deactivate(link.pk)), 405)


# --- Team -----------------------------------------------------------------------------------------------


def test_team_shows_sponsor_and_level_counts(chain):
    root, sponsor, sharer = chain
    MemberFactory(sponsor=root)

    body = _client(root).get(TEAM).json()

    assert body["sponsor"] is None
    assert body["levels"][0] == {"level": 1, "members": 2}
    assert body["levels_in_force"] == len(body["levels"])
    if body["levels_in_force"] >= 2:
        assert body["levels"][1] == {"level": 2, "members": 1}
    assert body["invite_url"].endswith(f"/join/{root.invite_code}/")

    sharer_body = _client(sharer).get(TEAM).json()
    assert sharer_body["sponsor"]["display_name"] == sponsor.display_name


def test_team_members_of_one_level_paginated_without_contact_details(chain):
    root, sponsor, sharer = chain

    response = _client(root).get(TEAM_MEMBERS, {"level": 1})

    assert response.status_code == 200
    body = response.json()
    assert body["count"] == 1
    (row,) = body["results"]
    assert set(row) == {"display_name", "status", "joined_at", "sales_this_month"}
    assert row["display_name"] == sponsor.display_name
    _assert_money(row["sales_this_month"], "0.00")
    assert sponsor.user.email not in response.content.decode()


@pytest.mark.parametrize("query", [{}, {"level": "abc"}, {"level": 0}, {"level": -1}, {"level": 99}])
def test_team_members_refuses_a_bad_level(chain, query):
    body = _assert_error(_client(chain[0]).get(TEAM_MEMBERS, query), 400, "invalid")

    assert "level" in body["fields"]


# --- Orders of my shop and orders I shared --------------------------------------------------------------


BUYER_KEYS = {"buyer_name", "buyer_phone", "buyer_email", "shipping_address", "buyer_user", "buyer"}


def test_orders_show_amounts_my_commission_and_the_buyer_masked_never_the_address(sharer, shop, product, paid):
    order = paid(shop, {product: 2})
    earned = sum(entry.amount for entry in CommissionEntry.objects.filter(beneficiary=sharer, order=order))

    response = _client(sharer).get(ORDERS)

    assert response.status_code == 200
    body = response.json()
    assert body["count"] == 1
    (row,) = body["results"]
    assert set(row) == {
        "number", "status", "source", "shop", "total", "refunded_total", "commission", "currency", "buyer_name",
        "buyer_contact", "created_at", "paid_at", "shipped_at", "lines",
    }  # fmt: skip
    assert not (BUYER_KEYS - {"buyer_name"}) & set(row)
    assert row["number"] == order.number and row["status"] == "paid" and row["source"] == "shop"
    assert row["shop"] == shop.name
    _assert_money(row["total"], "20.00")
    _assert_money(row["refunded_total"], "0.00")
    assert earned > 0
    _assert_money(row["commission"], str(earned))
    assert row["buyer_name"] == "W**" and row["buyer_contact"] == "139****1111"
    assert row["paid_at"].endswith(("Z", "+00:00", "+08:00")) or re.search(r"[+-]\d\d:\d\d$", row["paid_at"])
    (line,) = row["lines"]
    assert set(line) == {"title", "quantity", "net_amount", "refunded_quantity", "refunded_amount"}
    assert line["title"] == product.title and line["quantity"] == 2
    _assert_money(line["net_amount"], "20.00")
    text = response.content.decode()
    for value in (BUYER.name, BUYER.phone, "+8613900001111", BUYER.address, "Nanjing"):
        assert value not in text


def test_orders_show_only_mine(sharer, shop, product, paid):
    paid(shop, {product: 1})
    other = MemberFactory()
    paid(shop_with_products(ProductFactory(), owner=other))

    body = _client(other).get(ORDERS).json()

    assert body["count"] == 1
    assert _client(MemberFactory()).get(ORDERS).json()["count"] == 0


def test_orders_filter_by_status_and_paid_dates(sharer, shop, product, paid):
    paid(shop, {product: 1})
    place_order(shop, {product: 1})  # unpaid
    today = timezone.localdate().isoformat()
    client = _client(sharer)

    assert client.get(ORDERS).json()["count"] == 2
    assert client.get(ORDERS, {"status": "paid"}).json()["count"] == 1
    assert client.get(ORDERS, {"status": "pending_payment"}).json()["count"] == 1
    assert client.get(ORDERS, {"paid_after": today, "paid_before": today}).json()["count"] == 1
    assert client.get(ORDERS, {"paid_after": "2999-01-01"}).json()["count"] == 0
    assert client.get(ORDERS, {"paid_before": "2000-01-01"}).json()["count"] == 0


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({"status": "lost"}, "status"),
        ({"paid_after": "yesterday"}, "paid_after"),
        ({"paid_before": "2024-13-45"}, "paid_before"),
    ],
)
def test_orders_refuse_bad_filters(sharer, query, field):
    body = _assert_error(_client(sharer).get(ORDERS, query), 400, "invalid")

    assert field in body["fields"]


def test_orders_bad_page_is_404_in_the_error_shape(sharer):
    _assert_error(_client(sharer).get(ORDERS, {"page": "abc"}), 404)


# --- Commission entries ---------------------------------------------------------------------------------


def test_entries_list_and_filters(chain, shop, product, paid):
    root, sponsor, sharer = chain
    order = paid(shop, {product: 1})

    body = _client(sharer).get(ENTRIES).json()

    assert body["count"] == 1
    (row,) = body["results"]
    entry = CommissionEntry.objects.get(beneficiary=sharer)
    assert row["id"] == entry.pk and row["order_number"] == order.number and row["level"] == 1
    assert row["kind"] == "commission" and row["status"] == "pending"
    _assert_money(row["amount"], f"{entry.amount:.2f}")
    client = _client(sharer)
    assert client.get(ENTRIES, {"status": "pending"}).json()["count"] == 1
    assert client.get(ENTRIES, {"status": "paid"}).json()["count"] == 0
    assert client.get(ENTRIES, {"level": 1}).json()["count"] == 1
    assert client.get(ENTRIES, {"level": 2}).json()["count"] == 0
    assert client.get(ENTRIES, {"kind": "clawback"}).json()["count"] == 0
    sponsor_rows = _client(sponsor).get(ENTRIES).json()["results"]
    assert [row["level"] for row in sponsor_rows] == [2]


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({"status": "nope"}, "status"),
        ({"level": "x"}, "level"),
        ({"level": 99}, "level"),
        ({"kind": "platform"}, "kind"),
    ],
)
def test_entries_refuse_bad_filters(sharer, query, field):
    body = _assert_error(_client(sharer).get(ENTRIES, query), 400, "invalid")

    assert field in body["fields"]


def test_entry_detail_explains_the_entry(chain, shop, product, paid):
    sharer = chain[2]
    order = paid(shop, {product: 1})
    entry = CommissionEntry.objects.get(beneficiary=sharer)

    response = _client(sharer).get(_entry_detail(entry.pk))

    assert response.status_code == 200
    body = response.json()
    assert body["order_number"] == order.number and body["level"] == 1
    assert body["line"]["title"] == product.title and body["line"]["quantity"] == 1
    _assert_money(body["line"]["net_amount"], "10.00")
    _assert_money(body["base"], f"{entry.base:.2f}")
    _assert_money(body["amount"], f"{entry.amount:.2f}")
    _assert_money(body["before_cap"], f"{(entry.base * entry.rate).quantize(Decimal('0.01'), 'ROUND_DOWN'):.2f}")
    assert body["rate"] == f"{entry.rate:.4f}"
    assert body["plan_version"] == (entry.plan.version if entry.plan else None)
    assert body["policy_version"] == (entry.policy.version if entry.policy else None)
    assert body["capped_by"] == entry.capped_by
    assert [step["label"] for step in body["history"]] == ["Created"]
    assert body["related"] == []
    assert not BUYER_KEYS & set(body)
    assert BUYER.name not in response.content.decode()


def test_entry_detail_of_another_member_is_404(chain, shop, product, paid):
    root, sponsor, sharer = chain
    paid(shop, {product: 1})
    sponsors_entry = CommissionEntry.objects.get(beneficiary=sponsor)

    _assert_error(_client(sharer).get(_entry_detail(sponsors_entry.pk)), 404, "not_found")
    _assert_error(_client(sharer).get(_entry_detail(999999)), 404, "not_found")


def test_summary_sums_my_entries(sharer):
    credit(sharer, "12.50", status=CommissionEntry.Status.PENDING)
    credit(sharer, "30.00")
    credit(MemberFactory(), "99.00")

    body = _client(sharer).get(SUMMARY).json()

    _assert_money(body["pending"], "12.50")
    _assert_money(body["available"], "30.00")
    _assert_money(body["paid"], "0.00")
    _assert_money(body["clawed_back"], "0.00")


# --- Payouts: balance, statement, account -----------------------------------------------------------------


def test_balance_and_statement(sharer):
    credit(sharer, "100.00")
    bank_account(sharer)
    withdrawal_request(member=sharer, amount=Decimal("40.00"))
    credit(MemberFactory(), "77.00")

    balance = _client(sharer).get(BALANCE).json()
    statement = _client(sharer).get(STATEMENT).json()

    _assert_money(balance["available"], "60.00")
    _assert_money(balance["released"], "100.00")
    _assert_money(balance["in_flight"], "40.00")
    assert statement["count"] == 2
    amounts = [(line["amount"], line["balance"]) for line in statement["results"]]
    assert amounts == [("100.00", "100.00"), ("-40.00", "60.00")]


def test_account_read_is_masked_and_404_without_one(sharer):
    _assert_error(_client(sharer).get(ACCOUNT), 404, "not_found")
    bank_account(sharer)

    response = _client(sharer).get(ACCOUNT)

    assert response.status_code == 200
    assert response.json()["masked_identifier"] == "**** 7890"
    assert CARD not in response.content.decode()


def test_account_put_saves_and_keeps_the_number_when_left_empty(sharer):
    client = _client(sharer)
    payload = {"method": "bank", "holder_name": "王芳", "bank_name": "工行", "account_number": CARD}

    first = client.put(ACCOUNT, payload, format="json")
    second = client.put(ACCOUNT, {**payload, "account_number": "", "bank_name": "建行"}, format="json")

    assert first.status_code == 200 and second.status_code == 200
    assert CARD not in first.content.decode() + second.content.decode()
    account = PayoutAccount.objects.get(member=sharer)
    assert account.account_number == CARD and account.bank_name == "建行"


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"method": "cash", "holder_name": "A"}, "method"),
        ({"method": "bank", "holder_name": "A", "bank_name": "B", "account_number": "12"}, "account_number"),
        ({"method": "alipay", "holder_name": ""}, "holder_name"),
        ({"holder_name": "A"}, "method"),
    ],
)
def test_account_put_refuses_bad_input(sharer, payload, field):
    body = _assert_error(_client(sharer).put(ACCOUNT, payload, format="json"), 400)

    assert field in body["fields"]
    assert not PayoutAccount.objects.exists()


# --- Withdrawals ----------------------------------------------------------------------------------------


def test_withdrawals_list_only_mine_with_masked_account(sharer):
    credit(sharer, "100.00")
    bank_account(sharer)
    mine = withdrawal_request(member=sharer, amount=Decimal("50.00"))
    other = MemberFactory()
    credit(other, "100.00")
    bank_account(other)
    withdrawal_request(member=other, amount=Decimal("60.00"))

    response = _client(sharer).get(WITHDRAWALS)

    body = response.json()
    assert body["count"] == 1
    (row,) = body["results"]
    assert row["id"] == mine.pk and row["method"] == "bank" and row["masked_account"] == "**** 7890"
    _assert_money(row["amount"], "50.00")
    assert CARD not in response.content.decode()


def test_withdrawal_create(sharer):
    credit(sharer, "100.00")
    bank_account(sharer)

    response = _client(sharer).post(WITHDRAWAL_CREATE, {"amount": "50.00"}, format="json")

    assert response.status_code == 201
    withdrawal = Withdrawal.objects.get(member=sharer)
    assert response.json()["id"] == withdrawal.pk and withdrawal.amount == Decimal("50.00")
    _assert_money(response.json()["amount"], "50.00")


@pytest.mark.parametrize(
    ("amount", "field"),
    [("abc", "amount"), ("1.234", "amount"), ("", "amount"), ("0.01", "amount"), ("1000.00", "amount")],
)
def test_withdrawal_create_refuses_bad_amounts(sharer, amount, field):
    credit(sharer, "100.00")
    bank_account(sharer)

    body = _assert_error(_client(sharer).post(WITHDRAWAL_CREATE, {"amount": amount}, format="json"), 400)

    assert field in body["fields"]
    assert not Withdrawal.objects.exists()


def test_withdrawal_create_refuses_without_an_account(sharer):
    credit(sharer, "100.00")

    _assert_error(_client(sharer).post(WITHDRAWAL_CREATE, {"amount": "50.00"}, format="json"), 400, "no_account")
    assert not Withdrawal.objects.exists()


def test_withdrawal_create_refuses_too_many_open(sharer, settings):
    settings.WITHDRAWAL_MAX_OPEN = 1
    credit(sharer, "500.00")
    bank_account(sharer)
    withdrawal_request(member=sharer, amount=Decimal("50.00"))

    _assert_error(_client(sharer).post(WITHDRAWAL_CREATE, {"amount": "50.00"}, format="json"), 400, "too_many_open")
    assert Withdrawal.objects.count() == 1


def test_withdrawal_cancel_mine(sharer, settings):
    settings.WITHDRAWAL_AUTO_APPROVE_MAX = Decimal("0.00")
    credit(sharer, "100.00")
    bank_account(sharer)
    withdrawal = withdrawal_request(member=sharer, amount=Decimal("50.00"))

    response = _client(sharer).post(_withdrawal_cancel(withdrawal.pk))

    assert response.status_code == 200 and response.json()["status"] == "cancelled"
    withdrawal.refresh_from_db()
    assert withdrawal.status == Withdrawal.Status.CANCELLED


def test_withdrawal_cancel_refuses_an_approved_one(sharer, settings):
    settings.WITHDRAWAL_AUTO_APPROVE_MAX = Decimal("1000.00")
    credit(sharer, "100.00")
    bank_account(sharer)
    withdrawal = withdrawal_request(member=sharer, amount=Decimal("50.00"))

    _assert_error(_client(sharer).post(_withdrawal_cancel(withdrawal.pk)), 400, "not_cancellable")
    withdrawal.refresh_from_db()
    assert withdrawal.status == Withdrawal.Status.APPROVED


def test_withdrawal_cancel_of_another_member_is_404(sharer, settings):
    settings.WITHDRAWAL_AUTO_APPROVE_MAX = Decimal("0.00")
    other = MemberFactory()
    credit(other, "100.00")
    bank_account(other)
    withdrawal = withdrawal_request(member=other, amount=Decimal("50.00"))

    _assert_error(_client(sharer).post(_withdrawal_cancel(withdrawal.pk)), 404, "not_found")
    withdrawal.refresh_from_db()
    assert withdrawal.status == Withdrawal.Status.REQUESTED
