"""The member's commission pages: earnings summary, entry list with filters, and each entry's explanation.

Entries are made as in production: orders are paid through the sandbox webhook, and the split runs in the
on-commit hook; refunds and releases go through the services too.
"""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.urls import reverse
from django.utils import timezone

from commissions.models import CommissionEntry as Entry
from commissions.selectors import member_commission_entries
from commissions.services import commission_release_due, policy_publish
from payouts.selectors import member_balance
from referrals.models import Member
from referrals.services import member_set_status
from shops.services import order_mark_completed, order_mark_shipped, order_refund
from tests.factories import BUYER, ProductFactory, make_chain, pay_order, place_order, shop_with_products

pytestmark = pytest.mark.django_db

ENTRIES = reverse("members:commission_entries")


def _detail(entry) -> str:
    return reverse("members:commission_entry_detail", args=[entry.pk])


@pytest.fixture
def chain():
    """root ← sponsor ← sharer: the sharer earns level 1 and the sponsor level 2 (default plan 80 % / 20 %)."""
    root, sponsor, sharer = make_chain(3)
    return root, sponsor, sharer


@pytest.fixture
def product():
    return ProductFactory(price=Decimal("10.00"), commission_rate=Decimal("0.1000"), stock=1000)


@pytest.fixture
def shop(chain, product):
    return shop_with_products(product, owner=chain[2])


@pytest.fixture
def paid(django_capture_on_commit_callbacks):
    """paid(shop, {product: quantity}) → a paid order whose split has run."""

    def pay(shop, items=None):
        with django_capture_on_commit_callbacks(execute=True):
            return pay_order(place_order(shop, items))

    return pay


@pytest.fixture
def refund(django_capture_on_commit_callbacks):
    def do_refund(order, quantities=None):
        with django_capture_on_commit_callbacks(execute=True):
            return order_refund(order=order, quantities=quantities, reason="test")

    return do_refund


def _release(order):
    order_mark_shipped(order=order)
    order_mark_completed(order=order)
    commission_release_due(now=timezone.now() + timedelta(days=30))


def _login(client, member: Member):
    client.force_login(member.user)
    return client


def _entry(member, order, kind=Entry.Kind.COMMISSION) -> Entry:
    return Entry.objects.get(beneficiary=member, order=order, kind=kind)


# --- Access ---------------------------------------------------------------------------------------------


def test_entries_page_requires_login(client):
    response = client.get(ENTRIES)

    assert response.status_code == 302
    assert response.url.startswith(reverse("login"))


def test_entries_page_sends_a_user_who_is_not_a_member_to_join(client, user_factory):
    client.force_login(user_factory())

    response = client.get(ENTRIES)

    assert response.status_code == 302
    assert response.url == reverse("members:join")


def test_dashboard_links_to_the_commission_page(client, chain):
    response = _login(client, chain[2]).get(reverse("members:dashboard"))

    assert ENTRIES in response.content.decode()


# --- Summary ----------------------------------------------------------------------------------------------


def test_summary_sums_pending_released_and_clawed_back(client, chain, shop, product, paid, refund):
    _root, _sponsor, sharer = chain
    # given: one order on hold, one released, one released then refunded in full
    on_hold = paid(shop, {product: 1})  # pool 1.00: sharer 0.80
    released = paid(shop, {product: 2})  # pool 2.00: sharer 1.60
    _release(released)
    refunded = paid(shop, {product: 3})  # pool 3.00: sharer 2.40
    _release(refunded)
    refund(refunded)  # after release: a clawback of 2.40, available

    # when
    balance = member_balance(sharer)
    response = _login(client, sharer).get(ENTRIES)

    # then
    assert _entry(sharer, on_hold).amount == Decimal("0.80")
    assert _entry(sharer, refunded, Entry.Kind.CLAWBACK).amount == Decimal("-2.40")
    assert balance.pending == Decimal("0.80")
    assert balance.released == Decimal("1.60")  # 1.60 + 2.40 released − 2.40 clawed back
    assert balance.withdrawable == Decimal("1.60")
    assert balance.paid_out == Decimal("0.00")
    assert balance.clawed_back == Decimal("2.40")
    assert response.status_code == 200
    page = response.content.decode()
    assert 'id="balance-pending"><b>¥0.80</b>' in page
    assert 'id="balance-available"><b>¥1.60</b>' in page
    assert 'id="balance-clawed-back"><b>¥2.40</b>' in page


def test_summary_of_a_member_without_entries_is_zero(chain):
    balance = member_balance(chain[0])

    assert (balance.pending, balance.withdrawable, balance.paid_out, balance.clawed_back) == (Decimal("0.00"),) * 4


def test_a_reversal_before_release_lowers_pending(chain, shop, product, paid, refund):
    sharer = chain[2]
    order = paid(shop, {product: 2})  # sharer 1.60
    line = order.lines.get()

    refund(order, {line.pk: 1})  # half the line: 0.80 reversed

    balance = member_balance(sharer)
    assert _entry(sharer, order, Entry.Kind.REVERSAL).amount == Decimal("-0.80")
    assert balance.pending == Decimal("0.80")
    assert balance.clawed_back == Decimal("0.00")


# --- List and filters --------------------------------------------------------------------------------------


def test_list_shows_only_the_members_own_entries(client, chain, shop, product, paid):
    _root, sponsor, sharer = chain
    sponsor_shop = shop_with_products(product, owner=sponsor)
    own = paid(shop)
    other = paid(sponsor_shop)  # the sharer earns nothing on the sponsor's sale

    response = _login(client, sharer).get(ENTRIES)

    entries = list(response.context["page"])
    assert [entry.order_id for entry in entries] == [own.pk]
    assert other.number not in response.content.decode()


def test_list_filters_by_level_and_status(client, chain, product, paid):
    _root, sponsor, sharer = chain
    sponsor_shop = shop_with_products(product, owner=sponsor)
    sharer_shop = shop_with_products(product, owner=sharer)
    own_sale = paid(sponsor_shop)  # sponsor: level 1
    team_sale = paid(sharer_shop)  # sponsor: level 2
    _release(team_sale)
    client = _login(client, sponsor)

    level_2 = client.get(ENTRIES, {"level": "2"}).context["page"]
    available = client.get(ENTRIES, {"status": "available"}).context["page"]
    level_1_available = client.get(ENTRIES, {"level": "1", "status": "available"}).context["page"]
    everything = client.get(ENTRIES).context["page"]

    assert [(e.order_id, e.level) for e in level_2] == [(team_sale.pk, 2)]
    assert [(e.order_id, e.status) for e in available] == [(team_sale.pk, "available")]
    assert list(level_1_available) == []
    assert {e.order_id for e in everything} == {own_sale.pk, team_sale.pk}


@pytest.mark.parametrize(
    "params",
    [
        {"status": "bogus"},
        {"level": "9"},
        {"level": "-1"},
        {"level": "x"},
        {"level": "99999999999999999999999"},
        {"page": "abc"},
        {"page": "999"},
        {"page": "-3"},
        {"status": ["pending", "paid"], "level": ["1", "2"]},
        {"status": "\x00"},
    ],
)
def test_bad_list_parameters_never_fail(client, chain, shop, paid, params):
    paid(shop)

    response = _login(client, chain[2]).get(ENTRIES, params)

    # A NUL anywhere in a request is a 400 before any view runs (tests/security/test_bad_input.py).
    assert response.status_code == (400 if params == {"status": "\x00"} else 200)


def test_selector_refuses_unknown_levels_with_no_rows(chain, shop, paid):
    paid(shop)

    assert member_commission_entries(chain[2], level=1).count() == 1
    assert member_commission_entries(chain[2], level=4).count() == 0
    assert member_commission_entries(chain[2], status="nonsense").count() == 0


def test_list_page_is_paginated_in_bounded_queries(client, chain, paid, django_assert_max_num_queries):
    sharer = chain[2]
    products = [ProductFactory(price=Decimal("10.00"), stock=10) for _ in range(30)]
    shop = shop_with_products(*products, owner=sharer)
    order = paid(shop)  # 30 lines: 30 level-1 entries for the sharer
    client = _login(client, sharer)
    assert Entry.objects.filter(beneficiary=sharer).count() == 30

    # +2 (#25): the balance's staff adjustments, and the list of them
    with django_assert_max_num_queries(10):
        first = client.get(ENTRIES)
    with django_assert_max_num_queries(10):
        second = client.get(ENTRIES, {"page": "2", "level": "1"})

    assert first.status_code == second.status_code == 200
    assert len(first.context["page"]) == 20
    assert len(second.context["page"]) == 10
    assert order.number in first.content.decode()
    assert "level=1" in second.content.decode()  # the pager keeps the filters


# --- Explanation --------------------------------------------------------------------------------------------


def test_entry_explains_itself_without_the_buyers_details(client, chain, shop, paid):
    _root, sponsor, sharer = chain
    order = paid(shop)
    entry = _entry(sponsor, order)

    response = _login(client, sponsor).get(_detail(entry))

    assert response.status_code == 200
    page = response.content.decode()
    line = order.lines.get()
    assert entry.level == 2
    assert entry.amount == Decimal("0.20")
    for shown in (
        order.number,
        line.title,
        "¥10.00",  # net amount
        "10%",  # the platform's commission rate on the line
        "¥1.00",  # the pool
        "20%",  # level 2's rate
        "¥0.20",
        f"version {entry.plan.version}",
        f"version {entry.policy.version}",
        "No cap bound.",
        "Created",
    ):
        assert shown in page, shown
    for hidden in (BUYER.name, BUYER.phone, BUYER.address):
        assert hidden not in page


def test_entry_says_which_cap_bound(client, chain, paid):
    sharer = chain[2]
    generous = ProductFactory(price=Decimal("10.00"), commission_rate=Decimal("0.5000"))
    shop = shop_with_products(generous, owner=sharer)
    # pool 5.00, but members may get at most 30 % of the net amount (3.00): shares scaled 4.00/1.00 → 2.40/0.60
    order = paid(shop)
    entry = _entry(sharer, order)

    response = _login(client, sharer).get(_detail(entry))

    assert entry.capped_by == "max_payout_ratio"
    assert entry.amount == Decimal("2.40")
    page = response.content.decode()
    assert "A cap bound" in page
    assert "30%" in page
    assert "¥4.00" in page  # what the plan rate alone would have given


def test_another_members_entry_is_not_found(client, chain, shop, paid):
    _root, sponsor, sharer = chain
    order = paid(shop)
    sponsors_entry = _entry(sponsor, order)
    platform_entry = Entry.objects.get(order=order, kind=Entry.Kind.PLATFORM)
    client = _login(client, sharer)

    assert client.get(_detail(sponsors_entry)).status_code == 404
    assert client.get(_detail(platform_entry)).status_code == 404
    assert client.get(reverse("members:commission_entry_detail", args=[10**9])).status_code == 404
    assert client.get(reverse("members:commission_entry_detail", args=[10**30])).status_code == 404


def test_entry_detail_requires_login(client, chain, shop, paid):
    entry = _entry(chain[2], paid(shop))

    response = client.get(_detail(entry))

    assert response.status_code == 302


def test_entry_shows_its_reversals_and_a_reversal_explains_itself(client, chain, shop, product, paid, refund):
    sharer = chain[2]
    order = paid(shop, {product: 2})
    line = order.lines.get()
    refund(order, {line.pk: 1})
    commission = _entry(sharer, order)
    reversal = _entry(sharer, order, Entry.Kind.REVERSAL)
    client = _login(client, sharer)

    commission_page = client.get(_detail(commission)).content.decode()
    reversal_page = client.get(_detail(reversal)).content.decode()

    assert _detail(reversal) in commission_page
    assert "-¥0.80" in commission_page
    assert "refund of ¥10.00" in commission_page
    assert _detail(commission) in reversal_page
    assert "refunded ¥10.00 of this item before your commission was released" in reversal_page


def test_a_released_entry_shows_its_history_and_a_clawback(client, chain, shop, paid, refund):
    sharer = chain[2]
    order = paid(shop)
    _release(order)
    refund(order)
    commission = _entry(sharer, order)
    clawback = _entry(sharer, order, Entry.Kind.CLAWBACK)
    client = _login(client, sharer)

    commission_page = client.get(_detail(commission)).content.decode()
    clawback_page = client.get(_detail(clawback)).content.decode()

    assert commission.released_at is not None
    assert "Released (available)" in commission_page
    assert _detail(clawback) in commission_page
    assert clawback.amount == Decimal("-0.80")
    assert "clawed back from your available balance" in clawback_page


def test_a_rolled_up_share_names_the_member_it_came_from(client, chain, shop, paid, staff_user):
    _root, sponsor, sharer = chain
    policy_publish(actor=staff_user, note="roll up", ineligible_share="roll_up")
    member_set_status(member=sharer, status=Member.Status.SUSPENDED, actor=staff_user)
    order = paid(shop)
    rolled = Entry.objects.get(beneficiary=sponsor, order=order, level=1)

    response = _login(client, sponsor).get(_detail(rolled))

    assert rolled.rolled_up_from_id == sharer.pk
    assert f"rolled up to you from {sharer.display_name}" in response.content.decode()


def test_orders_and_commission_show_the_product_in_the_members_language(client, chain, shop, product, paid):
    # given: a product named in both languages, bought by a buyer reading English
    product.title_en, product.title_zh_hans = "Honey 500 g", "蜂蜜 500 克"
    product.save()
    order = paid(shop)
    order.lines.update(title="Honey 500 g")
    entry = _entry(chain[2], order)
    client.force_login(chain[2].user)

    for url in (reverse("members:orders"), ENTRIES, _detail(entry)):
        # when: the sharer reads their orders and commission in either language
        chinese = client.get(url, HTTP_ACCEPT_LANGUAGE="zh-hans").content.decode()
        english = client.get(url, HTTP_ACCEPT_LANGUAGE="en").content.decode()

        # then: the product is named in the page's language
        assert "蜂蜜 500 克" in chinese and "Honey 500 g" not in chinese, url
        assert "Honey 500 g" in english and "蜂蜜" not in english, url
    # and the buyer's receipt keeps the title as bought
    assert order.lines.get().title == "Honey 500 g"
