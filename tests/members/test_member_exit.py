"""A member's rights and exit (issue #24, docs/privacy.md): "Download my data", closing the account, and the records
kept (then erased) after it.

The world: Ann (under Root) owns a shop and earns on a sale in it, which is completed, released and partly withdrawn;
Bob, another member, has his own shop, sales and ledger. Dan joined under Ann (for the closed member's downline)."""

import csv
import io
import json
import zipfile
from datetime import timedelta
from decimal import Decimal

import pytest
from allauth.socialaccount.models import SocialAccount
from django.contrib.auth import get_user_model
from django.test import RequestFactory
from django.urls import reverse
from django.utils import timezone

from accounts.identity import identities_erase_due
from accounts.models import ApiToken, Identity, IdentityEvent
from accounts.services import token_create
from commissions.models import CommissionEntry
from commissions.services import commission_release_due
from core.masking import mask_name
from members.notifications.models import NotificationSettings
from members.services import ClosureRefused, member_close
from payouts.adjustments import balance_adjustment_apply
from payouts.models import PayoutAccount, TaxWithholding, Withdrawal
from payouts.selectors import member_balance
from payouts.services import withdrawal_accounts_erase_due
from referrals.models import Member, TreeEvent
from shops.attribution import attribution_from_request
from shops.models import Order, Shop
from shops.services import ShopError, order_mark_completed, order_mark_shipped, order_place, share_link_create
from staff.ledger_check import ledger_check
from tests.factories import (
    BUYER,
    PASSWORD,
    MemberFactory,
    ProductFactory,
    UserFactory,
    make_chain,
    pay_order,
    shop_with_products,
)
from tests.payouts.helpers import CARD, CARD_MASKED, bank_account, paid_withdrawal

pytestmark = pytest.mark.django_db

D = Decimal
ACCOUNT = reverse("members:account")
EXPORT = reverse("members:data_export")
CLOSE = reverse("members:account_close")
SHOP_CLOSE = reverse("members:shop_close")


def ledger_problems() -> list[str]:
    return [f"{result.name}: {v}" for result in ledger_check() for v in result.violations]


@pytest.fixture
def world(django_capture_on_commit_callbacks):
    root, ann = make_chain(2)
    dan = MemberFactory(sponsor=ann)
    bob = MemberFactory()
    product = ProductFactory(price=D("200.00"), commission_rate=D("0.2000"), stock=1000)
    ann_shop = shop_with_products(product, owner=ann, name="Ann's tea", slug="ann-tea", description="WeChat: ann88")
    bob_shop = shop_with_products(product, owner=bob, name="Bob's tea", slug="bob-tea")

    def sell(shop, *, complete=True):
        order = order_place(shop=shop, items={product.pk: 1}, buyer=BUYER)
        with django_capture_on_commit_callbacks(execute=True):
            pay_order(order)
        if complete:
            order_mark_shipped(order=Order.objects.get(pk=order.pk))
            order_mark_completed(order=Order.objects.get(pk=order.pk))
        return Order.objects.get(pk=order.pk)

    ann_order = sell(ann_shop)
    bob_order = sell(bob_shop)
    commission_release_due(now=timezone.now() + timedelta(days=30))
    bank_account(ann)
    bank_account(bob)
    return {
        "root": root, "ann": ann, "dan": dan, "bob": bob, "product": product, "ann_shop": ann_shop,
        "bob_shop": bob_shop, "ann_order": ann_order, "bob_order": bob_order, "sell": sell,
    }  # fmt: skip


def _zip(response) -> zipfile.ZipFile:
    return zipfile.ZipFile(io.BytesIO(b"".join(response.streaming_content)))


# --- Download my data ------------------------------------------------------------------------------------------


def test_the_export_holds_the_members_own_data_as_json_and_csv_with_a_readme(client, world):
    # given: Ann has withdrawn part of her balance (tax computed), Bob has sales of his own
    ann, bob = world["ann"], world["bob"]
    withdrawal = paid_withdrawal(ann, "10.00")
    finance = UserFactory(is_staff=True, is_superuser=True)
    for member, note in ((ann, "Goodwill for Ann"), (bob, "Goodwill for Bob")):
        balance_adjustment_apply(
            member=member, amount=D("3.00"), member_note=note, internal_note="Ticket 99", requested_by=finance,
            key=note,
        )  # fmt: skip
    client.force_login(ann.user)

    # when
    response = client.post(EXPORT)

    # then
    assert response.status_code == 200
    assert response["Content-Type"] == "application/zip"
    assert response["Content-Disposition"].startswith("attachment;")
    archive = _zip(response)
    names = set(archive.namelist())
    tables = ["profile", "shop", "listings", "share_links", "orders", "commissions", "withdrawals",
              "balance_adjustments", "payout_account"]  # fmt: skip
    assert names == {"README.txt"} | {f"{t}.json" for t in tables} | {f"{t}.csv" for t in tables}
    readme = archive.read("README.txt").decode()
    assert all(f"{t}.json, {t}.csv" in readme for t in tables)

    orders = json.loads(archive.read("orders.json"))
    assert [o["number"] for o in orders] == [world["ann_order"].number]  # not Bob's
    assert orders[0]["amount"] == "200.00"  # a Decimal's string, never a float
    assert set(orders[0]) == {"number", "placed_at", "paid_at", "shop", "through", "products", "amount", "refunded",
                              "status"}  # fmt: skip
    entries = json.loads(archive.read("commissions.json"))
    assert entries and {e["id"] for e in entries} == set(
        CommissionEntry.objects.filter(beneficiary=ann).values_list("pk", flat=True)
    )
    assert all(isinstance(e["amount"], str) for e in entries)
    [row] = json.loads(archive.read("withdrawals.json"))
    assert (row["gross"], row["tax_withheld"], row["net"]) == (
        str(withdrawal.amount),
        str(withdrawal.tax_withheld),
        str(withdrawal.net_amount),
    )
    [adjustment] = json.loads(archive.read("balance_adjustments.json"))
    assert (adjustment["amount"], adjustment["note"]) == ("3.00", "Goodwill for Ann")
    [profile] = json.loads(archive.read("profile.json"))
    assert profile["email"] == ann.user.email
    assert profile["identity_number_masked"].count("*") >= 8  # masked, never in full
    [account] = json.loads(archive.read("payout_account.json"))
    assert CARD not in json.dumps(account) and account["account_masked"] == "**** 7890"

    everything = b"".join(archive.read(name) for name in names).decode("utf-8")
    assert bob.user.email not in everything and world["bob_order"].number not in everything
    assert "Goodwill for Bob" not in everything and "Ticket 99" not in everything
    assert BUYER.phone not in everything and BUYER.address not in everything and BUYER.name not in everything
    assert Identity.objects.get(user=ann.user).id_number_encrypted not in everything
    rows = list(csv.reader(io.StringIO(archive.read("orders.csv").decode("utf-8-sig"))))
    assert rows[0][0] == "number" and rows[1][0] == world["ann_order"].number
    assert not ledger_problems()


def test_csv_cells_from_members_cannot_run_as_formulas(client, world):
    ann = world["ann"]
    Shop.objects.filter(pk=world["ann_shop"].pk).update(description='=HYPERLINK("http://evil")')
    client.force_login(ann.user)
    archive = _zip(client.post(EXPORT))
    rows = list(csv.reader(io.StringIO(archive.read("shop.csv").decode("utf-8-sig"))))
    assert rows[1][2].startswith("'=")


def test_the_export_is_only_the_signed_in_members_and_is_rate_limited(client, world, settings):
    settings.RATE_LIMIT_DATA_EXPORT = "2/day"
    client.force_login(world["bob"].user)
    first = _zip(client.post(EXPORT))
    assert world["ann_order"].number not in first.read("orders.json").decode()
    assert client.post(EXPORT).status_code == 200
    assert client.post(EXPORT).status_code == 429
    assert client.get(EXPORT).status_code == 405  # a download is a POST (a prefetch never spends the quota)


def test_the_account_page_offers_download_and_closing(client, world):
    client.force_login(world["ann"].user)
    page = client.get(ACCOUNT).content.decode()
    assert 'id="data-export-button"' in page and 'id="shop-close-link"' in page and 'id="account-close-link"' in page


# --- Closing: refused while something stands in the way --------------------------------------------------------


def _state(member) -> tuple:
    member.refresh_from_db()
    user = get_user_model().objects.get(pk=member.user_id)
    return (member.status, user.is_active, user.email, Shop.objects.get(owner=member).closes_at,
            PayoutAccount.objects.filter(member=member).count())  # fmt: skip


def test_closing_is_refused_while_orders_are_open_commission_is_held_or_money_is_available(world):
    ann = world["ann"]
    world["sell"](world["ann_shop"], complete=False)  # paid, not completed: an open order and commission on hold
    before = _state(ann)

    with pytest.raises(ClosureRefused) as refused:
        member_close(member=ann, actor=ann.user, reason="moving on")

    assert {b.code for b in refused.value.blockers} == {"open_orders", "pending", "available"}
    assert _state(ann) == before  # nothing changed


def test_a_withdrawal_in_flight_blocks_and_giving_up_does_not_lift_it(world):
    ann = world["ann"]
    from payouts.services import withdrawal_request

    withdrawal_request(member=ann, amount=D("10.00"))
    with pytest.raises(ClosureRefused) as refused:
        member_close(member=ann, actor=ann.user, give_up_balance=True)
    assert [b.code for b in refused.value.blockers] == ["in_flight"]


def test_a_suspended_member_cannot_close(world):
    from referrals.services import member_set_status

    bob = world["bob"]
    member_set_status(member=bob, status=Member.Status.SUSPENDED, actor=None, reason="review")
    with pytest.raises(ClosureRefused) as refused:
        member_close(member=bob, actor=bob.user, give_up_balance=True)
    assert "suspended" in {b.code for b in refused.value.blockers}


def test_the_close_page_shows_the_blockers_with_when_commission_releases(client, world):
    ann = world["ann"]
    pending_order = world["sell"](world["ann_shop"], complete=True)
    client.force_login(ann.user)

    page = client.get(CLOSE).content.decode()

    release = pending_order.completed_at + timedelta(days=7)
    assert 'data-code="pending"' in page and 'data-code="available"' in page
    assert release.strftime("%Y") in page  # "It becomes available by <date>"
    assert 'id="account-close-button"' not in page  # a hard blocker: no form


def test_the_close_page_needs_a_recent_login(client, world):
    client.force_login(world["bob"].user)
    session = client.session
    session["login_at"] = 0
    session.save()
    response = client.get(CLOSE)
    assert response.status_code == 302 and response["Location"].startswith(reverse("login"))
    assert "next=%2Fdashboard%2Faccount%2Fclose%2F" in response["Location"]


# --- Closing: what is erased, what is kept --------------------------------------------------------------------


def test_closing_anonymises_the_person_keeps_the_ledger_and_the_node(client, world):
    # given: Ann withdrew 10.00 (tax row written); the rest of her balance she gives up, typed and ticked
    ann, dan = world["ann"], world["dan"]
    user = ann.user
    withdrawal = paid_withdrawal(ann, "10.00")
    token_create(user=user, name="app")
    SocialAccount.objects.create(user=user, provider="weixin", uid="wx-ann")
    NotificationSettings.objects.create(member=ann, channels={"order_paid": ["email"]})
    entries_before = list(
        CommissionEntry.objects.order_by("pk").values_list("pk", "beneficiary_id", "amount", "status")
    )
    balance = member_balance(ann)
    assert balance.withdrawable > 0
    client.force_login(user)

    # when
    response = client.post(CLOSE, {"confirmation": "CLOSE", "reason": "moving on", "give_up_balance": "on"})

    # then: the page says so, and the session is gone
    assert response.status_code == 200 and 'id="account-closed"' in response.content.decode()
    assert client.get(reverse("members:dashboard")).status_code == 302
    user.refresh_from_db()
    ann.refresh_from_db()
    assert (user.is_active, user.email, user.phone, user.first_name, user.has_usable_password()) == (
        False,
        None,
        None,
        "",
        False,
    )
    assert not SocialAccount.objects.filter(user=user).exists()
    assert not ApiToken.objects.filter(user=user, revoked_at__isnull=True).exists()
    assert not PayoutAccount.objects.filter(member=ann).exists()
    assert not NotificationSettings.objects.filter(member=ann).exists()
    # the node stays where it was, closed; Dan is still under Ann
    assert (ann.status, ann.parent_id) == (Member.Status.CLOSED, world["root"].pk)
    assert Member.objects.get(pk=dan.pk).parent_id == ann.pk
    # the records the law requires are untouched
    assert list(CommissionEntry.objects.order_by("pk").values_list("pk", "beneficiary_id", "amount", "status")) == (
        entries_before
    )
    assert Withdrawal.objects.get(pk=withdrawal.pk).status == Withdrawal.Status.PAID
    assert TaxWithholding.objects.filter(withdrawal=withdrawal).exists()
    identity = Identity.objects.get(user=user)
    assert identity.erased_at is None and identity.erase_after.year == timezone.now().year + 3
    assert member_balance(ann) == balance  # given up, not written off: the ledger says what was owed
    event = TreeEvent.objects.filter(member=ann, kind=TreeEvent.Kind.STATUS).latest("pk")
    assert (event.after["status"], event.after["balance_given_up"], event.reason) == (
        "closed",
        str(balance.withdrawable),
        "moving on",
    )
    shop = Shop.objects.get(pk=world["ann_shop"].pk)
    assert shop.is_open is False and shop.is_closing() and shop.description == ""
    assert not ledger_problems()


def test_closing_needs_the_typed_word_and_an_explicit_give_up(client, world):
    ann = world["ann"]
    client.force_login(ann.user)
    before = _state(ann)

    wrong_word = client.post(CLOSE, {"confirmation": "close it", "give_up_balance": "on"})
    no_give_up = client.post(CLOSE, {"confirmation": "CLOSE"})

    assert wrong_word.status_code == 400 and "Type CLOSE" in wrong_word.content.decode()
    assert no_give_up.status_code == 400 and "available to withdraw" in no_give_up.content.decode()
    assert _state(ann) == before


def test_a_closed_member_cannot_log_in_and_closing_twice_changes_nothing(client, world):
    bob = world["bob"]
    email = bob.user.email
    member_close(member=bob, actor=bob.user, give_up_balance=True)
    events = TreeEvent.objects.count()

    again = member_close(member=bob, actor=bob.user, give_up_balance=True)

    assert again.member.status == Member.Status.CLOSED and TreeEvent.objects.count() == events
    assert client.login(email=email, password=PASSWORD) is False
    response = client.post(reverse("login"), {"username": email, "password": PASSWORD})
    assert response.status_code == 200 and "_auth_user_id" not in client.session


def test_the_invite_link_of_a_closed_member_says_so(client, world):
    bob = world["bob"]
    member_close(member=bob, actor=bob.user, give_up_balance=True)
    response = client.get(reverse("members:join_with_code", args=[bob.invite_code]))
    assert response.status_code == 200
    assert "closed their account" in response.content.decode()


def test_uplines_still_earn_on_sales_below_a_closed_member(world):
    # given: Root → Ann (closed) → Dan → Eve; the default policy pays two levels, an ineligible member's share to
    # the platform (commissions/calculations.py)
    ann, dan = world["ann"], world["dan"]
    eve = MemberFactory(sponsor=dan)
    member_close(member=ann, actor=ann.user, give_up_balance=True)
    dan_shop = shop_with_products(world["product"], owner=dan, slug="dan-tea")
    eve_shop = shop_with_products(world["product"], owner=eve, slug="eve-tea")

    # when
    dans_sale = world["sell"](dan_shop, complete=False)
    eves_sale = world["sell"](eve_shop, complete=False)

    # then: Dan earns level 1 and Ann, closed, nothing (her level's share stays with the platform); on Eve's sale
    # the chain above her is exact: Eve level 1, Dan level 2
    def earned(order):
        return dict(
            CommissionEntry.objects.filter(order=order, kind=CommissionEntry.Kind.COMMISSION).values_list(
                "beneficiary_id", "level"
            )
        )

    assert earned(dans_sale) == {dan.pk: 1}
    assert CommissionEntry.objects.filter(order=dans_sale, kind=CommissionEntry.Kind.PLATFORM).exists()
    assert earned(eves_sale) == {eve.pk: 1, dan.pk: 2}
    assert not ledger_problems()


def test_the_closed_members_shop_takes_no_more_orders_and_their_links_credit_nobody(client, world, settings):
    # given: a link of Ann's followed before she closed (its signed cookie is in the buyer's browser)
    ann, bob_shop = world["ann"], world["bob_shop"]
    link = share_link_create(owner=ann)
    followed = client.get(f"/l/{link.code}", HTTP_USER_AGENT="Mozilla/5.0 (iPhone) Safari/604.1")
    request = RequestFactory().get("/")
    request.COOKIES[settings.ATTRIBUTION_COOKIE] = followed.cookies[settings.ATTRIBUTION_COOKIE].value
    assert attribution_from_request(request).sharer == ann  # credits her while she is a member
    member_close(member=ann, actor=ann.user, give_up_balance=True)

    # then: her shop refuses orders, and the cookie credits nobody (SPEC §5: an active member only)
    with pytest.raises(ShopError):
        order_place(shop=Shop.objects.get(pk=world["ann_shop"].pk), items={world["product"].pk: 1}, buyer=BUYER)
    assert attribution_from_request(request) is None
    assert bob_shop.owner.is_active


# --- After the retention period ------------------------------------------------------------------------------


def test_identities_are_erased_only_after_the_retention_period_and_twice_is_harmless(world):
    ann = world["ann"]
    withdrawal = paid_withdrawal(ann, "10.00")
    bobs = paid_withdrawal(world["bob"], "10.00")
    holder = withdrawal.account["holder_name"]
    taxes = list(TaxWithholding.objects.filter(member=ann).values_list("pk", "gross", "tax", "net"))
    closure = member_close(member=ann, actor=ann.user, give_up_balance=True)
    identity = Identity.objects.get(user=ann.user)
    ciphertext = identity.id_number_encrypted

    assert identities_erase_due(now=closure.retain_until - timedelta(seconds=1)) == 0
    assert Identity.objects.get(pk=identity.pk).id_number_encrypted == ciphertext

    assert identities_erase_due(now=closure.retain_until) == 1
    assert identities_erase_due(now=closure.retain_until + timedelta(days=1)) == 0  # twice: nothing more

    identity.refresh_from_db()
    assert (identity.legal_name_encrypted, identity.id_number_encrypted) == ("", "")
    assert identity.id_number_index == f"erased:{identity.pk}" and identity.erased_at is not None
    assert IdentityEvent.objects.filter(identity=identity, kind=IdentityEvent.Kind.ERASED).count() == 1
    assert Identity.objects.filter(user=world["bob"].user, erased_at__isnull=True).exists()  # Bob's is untouched
    assert list(TaxWithholding.objects.filter(member=ann).values_list("pk", "gross", "tax", "net")) == taxes
    # the payout account saved with her withdrawal is masked next (the daily task after the identities'), once
    assert withdrawal_accounts_erase_due() == 1
    assert withdrawal_accounts_erase_due() == 0
    withdrawal.refresh_from_db()
    assert withdrawal.account["erased"] is True and withdrawal.status == "paid"
    assert CARD not in str(withdrawal.account) and withdrawal.account["account_number"] == CARD_MASKED
    assert withdrawal.account["holder_name"] == mask_name(holder)
    bobs.refresh_from_db()
    assert bobs.account["account_number"] == CARD and "erased" not in bobs.account  # Bob's is untouched
    assert not ledger_problems()
