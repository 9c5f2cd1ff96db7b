"""Every admin list staff use daily costs the same number of queries for N rows and for 3N (no N+1); the models
registered for the back office open; API keys never show; buyers' contact shows only with its permission."""

from decimal import Decimal

import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.contrib.admin.models import LogEntry
from django.contrib.auth.models import Permission
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from accounts.models import ApiToken
from accounts.services import token_create
from commissions.models import OrderSplit, RefundApplied, SplitQueue
from payouts.models import MemberWallet, PayoutBatch, SandboxTransfer
from payouts.services import payout_batch_create, withdrawal_approve, withdrawal_request
from referrals.services import member_move
from shops.models import ClickFlush, Order, OrderEvent, OrderLine, Payment, Refund, ShareLinkDailyStat, ShopListing
from shops.services import order_mark_shipped, order_refund, share_link_create
from shops.tasks import clicks_flush_task
from staff.models import JobRun
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
from tests.payouts.helpers import bank_account, credit, paid_withdrawal

pytestmark = pytest.mark.django_db

D = Decimal
BROWSER = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 Mobile/15E148"
N = 2


@pytest.fixture
def admin_client(client, staff_user):
    assert staff_user.is_superuser and staff_user.is_staff
    client.force_login(staff_user)
    return client


# --- row makers: each adds `count` rows to one list, through the services ---------------------------------------


class Maker:
    def __init__(self, capture):
        self.capture = capture  # django_capture_on_commit_callbacks

    def paid_orders(self, count: int, *, split: bool = True) -> list[Order]:
        orders = []
        for _ in range(count):
            sharer = make_chain(2)[-1]  # a sponsor above, so entries go to two members
            shop = shop_with_products(ProductFactory(price=D("100.00")), owner=sharer)
            if split:
                with self.capture(execute=True):
                    orders.append(pay_order(place_order(shop)))
            else:
                orders.append(pay_order(place_order(shop)))
        return orders

    def members(self, count: int) -> None:
        make_chain(count)

    def orders(self, count: int) -> None:
        for order in self.paid_orders(count, split=False):
            order_mark_shipped(order=order)

    def commission_entries(self, count: int) -> None:
        self.paid_orders(count)

    def withdrawals(self, count: int) -> None:
        for _ in range(count):
            member = MemberFactory()
            credit(member, "100.00")
            bank_account(member)
            withdrawal_request(member=member, amount=D("10.00"))

    def payout_batches(self, count: int) -> None:
        for _ in range(count):
            member = MemberFactory()
            credit(member, "100.00")
            bank_account(member)
            withdrawal_approve(withdrawal=withdrawal_request(member=member, amount=D("10.00")), actor=None)
            payout_batch_create(provider_name="manual", actor=UserFactory(is_staff=True))

    def payout_accounts(self, count: int) -> None:
        for _ in range(count):
            bank_account(MemberFactory())

    def share_links(self, count: int) -> None:
        for _ in range(count):
            product = ProductFactory()
            shop = shop_with_products(product)
            share_link_create(owner=shop.owner, product=product, campaign="spring")

    def products(self, count: int) -> None:
        ProductFactory.create_batch(count)

    def shops(self, count: int) -> None:
        for _ in range(count):
            shop_with_products()

    def tree_events(self, count: int) -> None:
        first, second = MemberFactory(), MemberFactory()
        for _ in range(count):
            member = MemberFactory(sponsor=first)
            member_move(member=member, new_sponsor=second, actor=UserFactory(is_staff=True), reason="test")

    def webhook_events(self, count: int) -> None:
        self.paid_orders(count, split=False)

    def api_tokens(self, count: int) -> None:
        for _ in range(count):
            token_create(user=UserFactory(), name="integration")

    def refunds(self, count: int) -> None:
        for order in self.paid_orders(count):
            with self.capture(execute=True):
                order_refund(order=order, quantities=None, actor=UserFactory(is_staff=True), reason="broken")

    # the lists of the models registered for the back office
    def order_lines(self, count: int) -> None:
        self.paid_orders(count, split=False)

    def payments(self, count: int) -> None:
        self.paid_orders(count, split=False)

    def order_events(self, count: int) -> None:
        self.paid_orders(count, split=False)

    def shop_listings(self, count: int) -> None:
        self.shops(count)

    def order_splits(self, count: int) -> None:
        self.paid_orders(count)

    def split_queue(self, count: int) -> None:
        self.paid_orders(count, split=False)

    def refunds_applied(self, count: int) -> None:
        self.refunds(count)

    def wallets(self, count: int) -> None:
        self.withdrawals(count)

    def sandbox_transfers(self, count: int) -> None:
        for _ in range(count):
            member = MemberFactory()
            credit(member, "100.00")
            bank_account(member)
            paid_withdrawal(member, "10.00")


def _client_clicks(client, count: int) -> None:
    for _ in range(count):
        product = ProductFactory()
        shop = shop_with_products(product)
        link = share_link_create(owner=shop.owner, product=product)
        client.get(reverse("share_link", args=[link.code]), HTTP_USER_AGENT=BROWSER, REMOTE_ADDR="10.0.0.1")
    clicks_flush_task.delay()


# (list, its URL name, the maker, the queries it takes for N and for 3N rows: session, user, count, rows, and
# any filter or date-hierarchy choices; a superuser, so no permission queries)
CHANGELISTS = [
    ("members", "admin:referrals_member_changelist", "members", 4),
    ("orders", "admin:shops_order_changelist", "orders", 6),
    ("commission entries", "admin:commissions_commissionentry_changelist", "commission_entries", 4),
    ("withdrawals", "admin:payouts_withdrawal_changelist", "withdrawals", 7),
    ("payout batches", "admin:payouts_payoutbatch_changelist", "payout_batches", 5),
    ("payout accounts", "admin:payouts_payoutaccount_changelist", "payout_accounts", 4),
    ("share links", "admin:shops_sharelink_changelist", "share_links", 5),
    ("products", "admin:shops_product_changelist", "products", 5),
    ("shops", "admin:shops_shop_changelist", "shops", 4),
    ("tree events", "admin:referrals_treeevent_changelist", "tree_events", 7),
    ("webhook events", "admin:shops_webhookevent_changelist", "webhook_events", 8),
    ("api tokens", "admin:accounts_apitoken_changelist", "api_tokens", 4),
    ("refunds", "admin:shops_refund_changelist", "refunds", 7),
    ("order lines", "admin:shops_orderline_changelist", "order_lines", 4),
    ("payments", "admin:shops_payment_changelist", "payments", 7),
    ("order events", "admin:shops_orderevent_changelist", "order_events", 7),
    ("shop listings", "admin:shops_shoplisting_changelist", "shop_listings", 4),
    ("order splits", "admin:commissions_ordersplit_changelist", "order_splits", 6),
    ("split queue", "admin:commissions_splitqueue_changelist", "split_queue", 4),
    ("refunds applied", "admin:commissions_refundapplied_changelist", "refunds_applied", 6),
    ("member wallets", "admin:payouts_memberwallet_changelist", "wallets", 4),
    ("sandbox transfers", "admin:payouts_sandboxtransfer_changelist", "sandbox_transfers", 6),
]


def _queries(client, url: str) -> tuple[int, int]:
    """(queries, rows) of one load of the list."""
    with CaptureQueriesContext(connection) as queries:
        response = client.get(url)
    assert response.status_code == 200, url
    return len(queries), len(response.context["cl"].result_list)


@pytest.mark.parametrize(("label", "url_name", "maker", "bound"), CHANGELISTS, ids=[row[0] for row in CHANGELISTS])
def test_changelist_queries_do_not_grow_with_rows(
    admin_client, django_capture_on_commit_callbacks, django_assert_max_num_queries, label, url_name, maker, bound
):
    # given: N rows
    make = getattr(Maker(django_capture_on_commit_callbacks), maker)
    url = reverse(url_name)
    make(N)
    admin_client.get(url)  # warm Django's own caches (content types, permissions) first
    with django_assert_max_num_queries(bound):
        small_queries, small_rows = _queries(admin_client, url)

    # when: 3N rows
    make(2 * N)
    with django_assert_max_num_queries(bound):
        large_queries, large_rows = _queries(admin_client, url)

    # then: three times the rows, not one query more
    assert small_rows >= N
    assert large_rows >= 3 * small_rows - 2 * N  # all the new rows are on the page
    assert large_rows > small_rows
    assert large_queries == small_queries


@pytest.mark.parametrize("url_name", ["admin:shops_clickflush_changelist", "admin:shops_sharelinkdailystat_changelist"])
def test_click_lists_queries_do_not_grow_with_rows(client, admin_client, django_assert_max_num_queries, url_name):
    url = reverse(url_name)
    _client_clicks(client, N)
    admin_client.get(url)
    with django_assert_max_num_queries(6):
        small_queries, small_rows = _queries(admin_client, url)
    _client_clicks(client, 2 * N)
    with django_assert_max_num_queries(6):
        large_queries, large_rows = _queries(admin_client, url)
    assert large_rows > small_rows >= 1
    assert large_queries == small_queries


# --- the models registered for the back office open ---------------------------------------------------------


@pytest.fixture
def one_of_each(client, django_capture_on_commit_callbacks):
    """At least one row of every newly registered model, made through the services."""
    maker = Maker(django_capture_on_commit_callbacks)
    maker.refunds(1)  # an order, its lines, payment, events, split, refund and applied marker
    maker.paid_orders(1, split=False)  # a queued split
    maker.sandbox_transfers(1)  # a wallet and a transfer
    maker.api_tokens(1)
    _client_clicks(client, 1)  # a flush, a daily statistic and the flush's job run


NEW_MODELS = [
    ApiToken,
    OrderSplit,
    SplitQueue,
    RefundApplied,
    MemberWallet,
    SandboxTransfer,
    PayoutBatch,
    ShareLinkDailyStat,
    ClickFlush,
    OrderLine,
    Payment,
    Refund,
    OrderEvent,
    ShopListing,
    JobRun,
]


@pytest.mark.parametrize("model", NEW_MODELS, ids=[model._meta.label for model in NEW_MODELS])
def test_new_model_lists_and_pages_open_for_a_superuser(one_of_each, admin_client, model):
    opts = model._meta
    row = model.objects.order_by("pk").first()
    assert row is not None

    listing = admin_client.get(reverse(f"admin:{opts.app_label}_{opts.model_name}_changelist"))
    page = admin_client.get(reverse(f"admin:{opts.app_label}_{opts.model_name}_change", args=[row.pk]))

    assert listing.status_code == 200
    assert page.status_code == 200


@pytest.mark.parametrize("model", NEW_MODELS, ids=[model._meta.label for model in NEW_MODELS])
def test_new_model_rows_are_never_added_or_deleted_by_hand(one_of_each, admin_client, model):
    opts = model._meta
    row = model.objects.order_by("pk").first()

    assert admin_client.get(reverse(f"admin:{opts.app_label}_{opts.model_name}_add")).status_code == 403
    assert (
        admin_client.get(reverse(f"admin:{opts.app_label}_{opts.model_name}_delete", args=[row.pk])).status_code == 403
    )


def test_unregistered_on_purpose():
    from django.contrib import admin

    from staff.models import BackOffice

    assert not admin.site.is_registered(BackOffice)


# --- API tokens ---------------------------------------------------------------------------------------------


def test_api_token_admin_never_prints_the_key_or_its_hash(admin_client):
    owner = UserFactory(email="dev@example.com", first_name="Li", last_name="Lei")
    created = token_create(user=owner, name="warehouse sync")
    token = created.token

    listing = admin_client.get(reverse("admin:accounts_apitoken_changelist")).content.decode()
    page = admin_client.get(reverse("admin:accounts_apitoken_change", args=[token.pk])).content.decode()
    found = admin_client.get(reverse("admin:accounts_apitoken_changelist"), {"q": token.key_hash})

    for html in (listing, page):
        assert f"{token.prefix}…" in html
        assert "warehouse sync" in html and "Li Lei" in html
        assert created.key not in html
        assert token.key_hash not in html
        assert created.key[len(token.prefix) :] not in html
    assert list(found.context["cl"].result_list) == []  # the hash is not searchable either


def test_api_token_revoke_action_calls_the_service(admin_client):
    active = token_create(user=UserFactory(), name="one").token
    other = token_create(user=UserFactory(), name="two").token

    response = admin_client.post(
        reverse("admin:accounts_apitoken_changelist"),
        {"action": "revoke_tokens", ACTION_CHECKBOX_NAME: [active.pk]},
        follow=True,
    )

    assert response.status_code == 200
    active.refresh_from_db()
    other.refresh_from_db()
    assert active.revoked_at is not None
    assert other.revoked_at is None
    assert "Revoked 1 token." in response.content.decode()
    assert LogEntry.objects.get(object_id=str(active.pk)).user_id == response.wsgi_request.user.pk


def test_api_token_cannot_be_revoked_without_the_change_permission(client):
    token = token_create(user=UserFactory(), name="one").token
    viewer = UserFactory(is_staff=True)
    viewer.user_permissions.add(Permission.objects.get(codename="view_apitoken"))
    client.force_login(viewer)

    response = client.post(
        reverse("admin:accounts_apitoken_changelist"), {"action": "revoke_tokens", ACTION_CHECKBOX_NAME: [token.pk]}
    )

    token.refresh_from_db()
    assert token.revoked_at is None
    assert response.status_code == 200  # the changelist again, with "No action selected"


# --- buyers' contact details ----------------------------------------------------------------------------------


def _staff(*, contact: bool):
    user = UserFactory(is_staff=True)
    codenames = ["view_order", "change_order", "view_refund"]
    if contact:
        codenames.append("view_buyer_contact")
    user.user_permissions.set(Permission.objects.filter(content_type__app_label="shops", codename__in=codenames))
    return user


@pytest.fixture
def refunded_order(django_capture_on_commit_callbacks):
    order = Maker(django_capture_on_commit_callbacks).paid_orders(1)[0]
    with django_capture_on_commit_callbacks(execute=True):
        refund = order_refund(order=order, quantities=None, actor=None, reason="broken")
    return order, refund


CONTACT = (BUYER.phone, BUYER.address, BUYER.name)


def test_staff_without_the_permission_do_not_see_buyer_contact(client, refunded_order):
    order, refund = refunded_order
    client.force_login(_staff(contact=False))

    pages = {
        "order list": client.get(reverse("admin:shops_order_changelist")),
        "order page": client.get(reverse("admin:shops_order_change", args=[order.pk])),
        "refund list": client.get(reverse("admin:shops_refund_changelist")),
        "refund page": client.get(reverse("admin:shops_refund_change", args=[refund.pk])),
    }

    for name, response in pages.items():
        assert response.status_code == 200, name
        html = response.content.decode()
        for value in CONTACT:
            assert value not in html, (name, value)
        assert order.number in html, name
    assert "W**" in pages["order list"].content.decode()
    assert "W**" in pages["refund list"].content.decode()


def test_staff_without_the_permission_cannot_find_an_order_by_contact(client, refunded_order):
    order, _refund = refunded_order
    client.force_login(_staff(contact=False))
    orders = reverse("admin:shops_order_changelist")
    refunds = reverse("admin:shops_refund_changelist")

    by_phone = client.get(orders, {"q": BUYER.phone})
    by_name = client.get(orders, {"q": "Wang"})
    refund_by_phone = client.get(refunds, {"q": BUYER.phone})
    filtered = client.get(orders, {"buyer_phone__startswith": BUYER.phone[:3]})
    refund_filtered = client.get(refunds, {"order__buyer_phone": BUYER.phone})
    by_number = client.get(orders, {"q": order.number})

    assert list(by_phone.context["cl"].result_list) == []
    assert list(by_name.context["cl"].result_list) == []
    assert list(refund_by_phone.context["cl"].result_list) == []
    assert filtered.status_code == 400  # a URL filter on a contact field is refused, not answered with a count
    assert refund_filtered.status_code == 400
    assert [found.pk for found in by_number.context["cl"].result_list] == [order.pk]
    assert client.get(refunds, {"q": "Wang"}).status_code == 200  # a word is not an id: that lookup is skipped


def test_wallet_links_to_the_members_withdrawals(admin_client, django_capture_on_commit_callbacks):
    Maker(django_capture_on_commit_callbacks).withdrawals(2)
    wallet = MemberWallet.objects.order_by("pk").first()

    page = admin_client.get(reverse("admin:payouts_memberwallet_change", args=[wallet.pk])).content.decode()
    url = reverse("admin:payouts_withdrawal_changelist") + f"?member__id__exact={wallet.member_id}"
    listing = admin_client.get(url)

    assert url in page and "¥90.00" in page  # 100.00 credited, 10.00 requested
    assert [withdrawal.member_id for withdrawal in listing.context["cl"].result_list] == [wallet.member_id]


def test_staff_with_the_permission_see_and_find_buyer_contact(client, refunded_order):
    order, refund = refunded_order
    client.force_login(_staff(contact=True))
    orders = reverse("admin:shops_order_changelist")

    listing = client.get(orders).content.decode()
    page = client.get(reverse("admin:shops_order_change", args=[order.pk])).content.decode()
    refund_page = client.get(reverse("admin:shops_refund_change", args=[refund.pk])).content.decode()
    by_phone = client.get(orders, {"q": BUYER.phone})
    refund_by_phone = client.get(reverse("admin:shops_refund_changelist"), {"q": BUYER.phone})

    assert BUYER.name in listing
    for value in CONTACT:
        assert value in page
        assert value in refund_page
    assert [found.pk for found in by_phone.context["cl"].result_list] == [order.pk]
    assert [found.pk for found in refund_by_phone.context["cl"].result_list] == [refund.pk]


@pytest.mark.parametrize("spelling", ["139 0000 1111", "+86 139-0000-1111", "+8613900001111"])
def test_staff_with_the_permission_find_an_order_by_any_spelling_of_the_phone(client, refunded_order, spelling):
    order, refund = refunded_order
    client.force_login(_staff(contact=True))

    by_phone = client.get(reverse("admin:shops_order_changelist"), {"q": spelling})
    refund_by_phone = client.get(reverse("admin:shops_refund_changelist"), {"q": spelling})

    assert [found.pk for found in by_phone.context["cl"].result_list] == [order.pk]
    assert [found.pk for found in refund_by_phone.context["cl"].result_list] == [refund.pk]


def test_staff_without_the_permission_cannot_find_an_order_by_another_spelling_either(client, refunded_order):
    client.force_login(_staff(contact=False))

    by_phone = client.get(reverse("admin:shops_order_changelist"), {"q": "139 0000 1111"})

    assert list(by_phone.context["cl"].result_list) == []


def test_superuser_sees_buyer_contact(admin_client, refunded_order):
    order, _refund = refunded_order

    page = admin_client.get(reverse("admin:shops_order_change", args=[order.pk])).content.decode()

    assert BUYER.phone in page and BUYER.address in page


# --- shop listings: the actions call the shop services ------------------------------------------------------


def test_shop_listing_actions(admin_client):
    shop = shop_with_products()
    first, second = shop.listings.order_by("pk")
    url = reverse("admin:shops_shoplisting_changelist")

    admin_client.post(url, {"action": "feature_listings", ACTION_CHECKBOX_NAME: [first.pk]})
    admin_client.post(url, {"action": "remove_listings", ACTION_CHECKBOX_NAME: [second.pk]})

    assert list(ShopListing.objects.filter(shop=shop).values_list("pk", "is_featured")) == [(first.pk, True)]
