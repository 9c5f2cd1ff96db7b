"""The member's payout pages (members/views/payouts.py): balance, payout account, withdrawals, cancel, statement
and CSV.

Balances come from released commission entries written directly (`credit`, tests/payouts/helpers.py), except in the
one test that earns them through the real services (pay, complete, release).
"""

import csv
import io
import re
from datetime import timedelta
from decimal import Decimal

import pytest
from django.urls import reverse
from django.utils import timezone

from commissions.models import CommissionEntry
from commissions.services import commission_release_due
from payouts.models import PayoutAccount, PayoutBatch, Withdrawal
from payouts.selectors import member_balance, member_statement
from payouts.services import (
    withdrawal_approve,
    withdrawal_reject,
    withdrawal_request,
)
from shops.services import order_mark_completed, order_mark_shipped
from tests.factories import MemberFactory, ProductFactory, UserFactory, pay_order, place_order, shop_with_products
from tests.payouts.helpers import CARD, CARD_MASKED, bank_account, credit, paid_withdrawal, snapshot

pytestmark = pytest.mark.django_db

D = Decimal
OVERVIEW = reverse("members:payouts")
ACCOUNT = reverse("members:payout_account")
STATEMENT = reverse("members:payout_statement")
STATEMENT_CSV = reverse("members:payout_statement_csv")


def stat(page: str, name: str) -> str:
    match = re.search(rf'id="balance-{name}"><b>([^<]*)</b>', page)
    assert match, f"no {name} figure on the page"
    return match.group(1)


# --- fixtures ----------------------------------------------------------------------------------------------


@pytest.fixture
def member(db):
    return MemberFactory()


@pytest.fixture
def member_client(client, member):
    client.force_login(member.user)
    return client


@pytest.fixture
def funded(member):
    """150.00 available, a payout account on file."""
    credit(member, "100.00")
    credit(member, "50.00")
    bank_account(member)
    return member


# --- overview ----------------------------------------------------------------------------------------------


def test_overview_shows_available_pending_in_flight_and_paid_out(member_client, funded):
    # given: 150.00 released, 7.00 pending, 20.00 paid out, 30.00 requested
    credit(funded, "7.00", status=CommissionEntry.Status.PENDING)
    paid_withdrawal(funded, "20.00")
    withdrawal_request(member=funded, amount=D("30.00"))

    # when
    response = member_client.get(OVERVIEW)

    # then
    assert response.status_code == 200
    page = response.content.decode()
    assert stat(page, "available") == "¥100.00"
    assert stat(page, "pending") == "¥7.00"
    assert stat(page, "in-flight") == "¥30.00"
    assert stat(page, "paid-out") == "¥20.00"
    assert 'id="negative-note"' not in page
    assert "Paid" in page and "Requested" in page


def test_overview_lists_withdrawals_in_bounded_queries(member_client, funded, django_assert_max_num_queries):
    # given: many withdrawals in every state a member sees
    for _ in range(12):
        withdrawal = withdrawal_request(member=funded, amount=D("10.00"))
        withdrawal_reject(withdrawal=withdrawal, actor=None, reason="test")
    paid_withdrawal(funded, "10.00")
    withdrawal_request(member=funded, amount=D("10.00"))

    # when: session, user, member, two balance aggregates, account, withdrawals, whether the identity is verified
    # +1: the unread notifications in the header (#22); +1: identity (#24); +1: the withdrawals' invoices (#24, business
    # payees: one prefetch, whatever the number of withdrawals); +1: the balance's staff adjustments (#25)
    with django_assert_max_num_queries(11):
        response = member_client.get(OVERVIEW)

    # then
    assert response.status_code == 200
    assert len(response.context["withdrawals"]) == 14


def test_negative_balance_is_shown_with_a_note(member_client, member):
    credit(member, "20.00")
    credit(member, "-30.00", kind=CommissionEntry.Kind.CLAWBACK)

    page = member_client.get(OVERVIEW).content.decode()

    assert stat(page, "available") == "-¥10.00"
    assert 'id="negative-note"' in page
    assert "netted against your future commission" in page


def test_overview_without_an_account_asks_for_one(member_client, member):
    page = member_client.get(OVERVIEW).content.decode()

    assert "Add a payout account" in page
    assert reverse("members:payout_account") in page


def test_overview_shows_the_reason_of_a_rejection_and_of_a_failure(member_client, funded):
    rejected = withdrawal_request(member=funded, amount=D("10.00"))
    withdrawal_reject(withdrawal=rejected, actor=None, reason="Name does not match the card")
    failed = paid_withdrawal(funded, "20.13")  # the sandbox fails amounts ending in .13

    page = member_client.get(OVERVIEW).content.decode()

    assert failed.status == Withdrawal.Status.FAILED
    assert "Name does not match the card" in page
    assert "account frozen" in page


# --- requesting a withdrawal -------------------------------------------------------------------------------


def test_member_requests_a_withdrawal(member_client, funded):
    response = member_client.post(OVERVIEW, {"amount": "40.00"})

    assert response.status_code == 302
    withdrawal = Withdrawal.objects.get()
    assert (withdrawal.member, withdrawal.amount, withdrawal.status) == (funded, D("40.00"), "requested")
    assert withdrawal.account["account_number"] == CARD  # the snapshot keeps the full number for finance
    assert member_balance(funded).withdrawable == D("110.00")
    page = member_client.get(OVERVIEW).content.decode()
    assert "Withdrawal of ¥40.00 requested" in page
    assert f'action="{reverse("members:withdrawal_cancel", args=[withdrawal.pk])}"' in page


@pytest.mark.parametrize(
    ("amount", "error"),
    [
        ("150.01", "You can withdraw at most 150.00."),
        ("9.99", "The minimum withdrawal is 10.00."),
        ("0", "The minimum withdrawal is 10.00."),
        ("-20.00", "The minimum withdrawal is 10.00."),
        ("abc", "Enter a number."),
        ("", "This field is required."),
        ("12.345", "Ensure that there are no more than 2 decimal places."),
        ("1e400", "Ensure that there are no more than 14 digits in total."),
        ("NaN", "Enter a number."),
    ],
)
def test_a_bad_amount_is_a_form_error_beside_the_field_and_changes_nothing(member_client, funded, amount, error):
    before = snapshot()

    response = member_client.post(OVERVIEW, {"amount": amount})

    assert response.status_code == 400
    assert response.context["form"].errors == {"amount": [error]}
    assert error.replace("'", "&#x27;") in response.content.decode()
    assert snapshot() == before
    assert member_balance(funded).withdrawable == D("150.00")


def test_withdrawing_without_a_payout_account_is_refused(member_client, member):
    credit(member, "100.00")

    response = member_client.post(OVERVIEW, {"amount": "50.00"})

    assert response.status_code == 400
    assert response.context["form"].non_field_errors() == ["Add a payout account first."]
    assert not Withdrawal.objects.exists()


def test_too_many_open_withdrawals_are_refused(member_client, funded, settings):
    settings.WITHDRAWAL_MAX_OPEN = 1
    withdrawal_request(member=funded, amount=D("10.00"))
    before = snapshot()

    response = member_client.post(OVERVIEW, {"amount": "10.00"})

    assert response.status_code == 400
    assert "withdrawals in progress" in response.context["form"].non_field_errors()[0]
    assert snapshot() == before


def test_a_small_request_is_approved_automatically(member_client, funded, settings):
    settings.WITHDRAWAL_AUTO_APPROVE_MAX = D("50.00")

    member_client.post(OVERVIEW, {"amount": "50.00"})

    assert Withdrawal.objects.get().status == Withdrawal.Status.APPROVED
    page = member_client.get(OVERVIEW).content.decode()
    assert "approved; it goes out with the next payout batch" in page
    assert "Cancel</button>" not in page


# --- cancelling --------------------------------------------------------------------------------------------


def test_member_cancels_a_requested_withdrawal(member_client, funded):
    withdrawal = withdrawal_request(member=funded, amount=D("60.00"))

    response = member_client.post(reverse("members:withdrawal_cancel", args=[withdrawal.pk]))

    assert response.status_code == 302
    withdrawal.refresh_from_db()
    assert withdrawal.status == Withdrawal.Status.CANCELLED
    assert member_balance(funded).withdrawable == D("150.00")
    assert list(withdrawal.events.values_list("from_status", "to_status", "actor_label")) == [
        ("", "requested", "member"),
        ("requested", "cancelled", "member"),
    ]


def test_an_approved_withdrawal_cannot_be_cancelled(member_client, funded):
    withdrawal = withdrawal_request(member=funded, amount=D("60.00"))
    withdrawal_approve(withdrawal=withdrawal, actor=None)
    before = snapshot()

    response = member_client.post(reverse("members:withdrawal_cancel", args=[withdrawal.pk]), follow=True)

    assert response.status_code == 200
    assert [str(message) for message in response.context["messages"]] == [
        "Only a request that is not approved yet can be cancelled."
    ]
    assert snapshot() == before


def test_cancel_is_post_only(member_client, funded):
    withdrawal = withdrawal_request(member=funded, amount=D("60.00"))

    assert member_client.get(reverse("members:withdrawal_cancel", args=[withdrawal.pk])).status_code == 405
    withdrawal.refresh_from_db()
    assert withdrawal.status == Withdrawal.Status.REQUESTED


# --- another member ----------------------------------------------------------------------------------------


@pytest.fixture
def other_client(client, funded):
    """Logged in as another member; `funded` has a withdrawal, an account and a statement."""
    other = MemberFactory()
    credit(other, "12.00")
    client.force_login(other.user)
    client.other = other
    return client


def test_another_member_gets_404_cancelling_my_withdrawal(other_client, funded):
    withdrawal = withdrawal_request(member=funded, amount=D("60.00"))
    before = snapshot()

    response = other_client.post(reverse("members:withdrawal_cancel", args=[withdrawal.pk]))

    assert response.status_code == 404
    assert snapshot() == before


def test_a_missing_withdrawal_is_404(member_client, funded):
    assert member_client.post(reverse("members:withdrawal_cancel", args=[987654])).status_code == 404


def test_another_member_sees_only_their_own_pages(other_client, funded):
    mine = withdrawal_request(member=funded, amount=D("60.00"))

    overview = other_client.get(OVERVIEW).content.decode()
    account = other_client.get(ACCOUNT).content.decode()
    statement = other_client.get(STATEMENT).content.decode()
    statement_csv = other_client.get(STATEMENT_CSV).content.decode("utf-8-sig")

    assert stat(overview, "available") == "¥12.00"
    assert f"withdrawal-{mine.pk}" not in overview
    for page in (overview, account, statement, statement_csv):
        assert CARD_MASKED not in page and CARD not in page and "王芳" not in page
        assert f"Withdrawal {mine.pk}" not in page
    assert [line.description for line in member_statement(other_client.other)] == [
        line[1] for line in list(csv.reader(io.StringIO(statement_csv)))[1:]
    ]
    assert "¥100.00" not in statement and "¥12.00" in statement


def test_pages_need_login_and_membership(client):
    for url in (OVERVIEW, ACCOUNT, STATEMENT, STATEMENT_CSV):
        response = client.get(url)
        assert response.status_code == 302 and response.url.startswith(reverse("login"))

    client.force_login(UserFactory())  # a user who never joined
    for url in (OVERVIEW, ACCOUNT, STATEMENT, STATEMENT_CSV):
        response = client.get(url)
        assert response.status_code == 302 and response.url == reverse("members:join")
    assert client.post(reverse("members:withdrawal_cancel", args=[1])).status_code == 404


# --- payout account ----------------------------------------------------------------------------------------


def test_member_saves_a_bank_account_and_sees_it_masked_from_then_on(member_client, member):
    response = member_client.post(
        ACCOUNT,
        {
            "method": "bank",
            "holder_name": "王芳",
            "bank_name": "中国工商银行",
            "bank_branch": "上海南京路支行",
            "account_number": "6222 0212 3456 7890",
        },
        follow=True,
    )

    assert response.redirect_chain == [(OVERVIEW, 302)]
    account = PayoutAccount.objects.get(member=member)
    assert (account.method, account.account_number, account.holder_name) == ("bank", CARD, "王芳")
    for page in (response.content.decode(), member_client.get(ACCOUNT).content.decode()):
        assert CARD_MASKED in page
        assert CARD not in page and "6222 0212" not in page and "34567890" not in page


@pytest.mark.parametrize(
    ("data", "errors"),
    [
        (
            {"method": "bank", "holder_name": "王芳", "bank_name": "ICBC", "account_number": "12345"},
            {"account_number": ["A bank card number has 12 to 19 digits."]},
        ),
        (
            {"method": "bank", "holder_name": "王芳", "account_number": CARD},
            {"bank_name": ["Required for this method."]},
        ),
        ({"method": "alipay", "holder_name": "王芳"}, {"alipay_account": ["Required for this method."]}),
        ({"method": "wechat", "wechat_id": "wang_fang"}, {"holder_name": ["Enter the account holder's real name."]}),
        (
            {"method": "paypal", "holder_name": "王芳"},
            {"method": ["Select a valid choice. paypal is not one of the available choices."]},
        ),
        ({"holder_name": "王芳"}, {"method": ["This field is required."]}),
        (
            {"method": "wechat", "holder_name": "王芳", "wechat_id": "x" * 41},
            {"wechat_id": ["Ensure this value has at most 40 characters (it has 41)."]},
        ),
    ],
)
def test_a_bad_account_is_a_form_error_beside_the_field_and_saves_nothing(member_client, member, data, errors):
    response = member_client.post(ACCOUNT, data)

    assert response.status_code == 400
    assert response.context["form"].errors == errors
    assert not PayoutAccount.objects.exists()


def test_leaving_the_number_empty_keeps_the_one_on_file(member_client, member):
    bank_account(member)

    response = member_client.post(
        ACCOUNT, {"method": "bank", "holder_name": "王芳", "bank_name": "招商银行", "account_number": ""}
    )

    assert response.status_code == 302
    account = PayoutAccount.objects.get(member=member)
    assert (account.bank_name, account.account_number) == ("招商银行", CARD)


def test_a_refused_edit_does_not_echo_the_number_on_file(member_client, member):
    bank_account(member)

    response = member_client.post(ACCOUNT, {"method": "bank", "holder_name": "王芳", "bank_name": ""})

    assert response.status_code == 400
    assert response.context["form"].errors == {"bank_name": ["Required for this method."]}
    page = response.content.decode()
    assert CARD not in page and CARD_MASKED in page
    assert PayoutAccount.objects.get(member=member).bank_name == "中国工商银行"


def test_switching_method_needs_the_new_identifier_and_drops_the_old(member_client, member):
    bank_account(member)

    refused = member_client.post(ACCOUNT, {"method": "alipay", "holder_name": "王芳"})
    saved = member_client.post(ACCOUNT, {"method": "alipay", "holder_name": "王芳", "alipay_account": "wf@example.com"})

    assert refused.status_code == 400
    assert refused.context["form"].errors == {"alipay_account": ["Required for this method."]}
    assert saved.status_code == 302
    account = PayoutAccount.objects.get(member=member)
    assert (account.method, account.alipay_account, account.account_number) == ("alipay", "wf@example.com", "")
    page = member_client.get(OVERVIEW).content.decode()
    assert "wf***@example.com" in page and "wf@example.com" not in page


# --- statement ---------------------------------------------------------------------------------------------


def _csv_rows(response) -> list[list[str]]:
    body = response.content.decode("utf-8")
    assert body.startswith("\ufeff")
    return list(csv.reader(io.StringIO(body[1:])))


def test_statement_runs_to_the_available_balance_and_the_csv_matches(member_client, funded):
    # given: credits, a clawback, a paid, a failed, a rejected, a cancelled and an open withdrawal
    credit(funded, "-5.50", kind=CommissionEntry.Kind.CLAWBACK)
    paid_withdrawal(funded, "20.00")
    paid_withdrawal(funded, "20.13")  # fails: the money comes back
    rejected = withdrawal_request(member=funded, amount=D("15.00"))
    withdrawal_reject(withdrawal=rejected, actor=None, reason="test")
    member_client.post(
        reverse("members:withdrawal_cancel", args=[withdrawal_request(member=funded, amount=D("11.00")).pk])
    )
    withdrawal_request(member=funded, amount=D("30.00"))
    lines = member_statement(funded)

    # when
    page = member_client.get(STATEMENT)
    by_query = member_client.get(STATEMENT, {"format": "csv"})
    by_path = member_client.get(STATEMENT_CSV)

    # then: the running balance ends where the balance is
    available = member_balance(funded).withdrawable
    assert available == D("94.50")  # 150.00 − 5.50 − 20.00 − 30.00
    assert lines[-1].balance == available
    assert sum(line.amount for line in lines) == available
    assert page.status_code == 200
    html = page.content.decode()
    assert html.count('class="row statement-line"') == len(lines) == 11
    assert 'id="closing-balance">Available to withdraw <b>¥94.50</b><' in html
    for response in (by_query, by_path):
        assert response["Content-Type"] == "text/csv; charset=utf-8"
        assert response["Content-Disposition"].startswith('attachment; filename="statement-')
        rows = _csv_rows(response)
        assert rows[0] == ["date", "description", "amount", "balance", "tax_withheld", "net_paid"]
        assert [row[1:4] for row in rows[1:]] == [
            [line.description, f"{line.amount:.2f}", f"{line.balance:.2f}"] for line in lines
        ]
    assert _csv_rows(by_query)[-1][2:] == ["-30.00", "94.50", "", ""]


def test_an_empty_statement(member_client, member):
    assert "Nothing yet" in member_client.get(STATEMENT).content.decode()
    assert _csv_rows(member_client.get(STATEMENT_CSV)) == [
        ["date", "description", "amount", "balance", "tax_withheld", "net_paid"]
    ]


# --- through the real services -----------------------------------------------------------------------------


def test_commission_earned_released_and_withdrawn_through_the_services(
    client, django_capture_on_commit_callbacks, settings
):
    # given: a shop owner whose buyer pays 100.00 at 20 %: a pool of 20.00, 16.00 to the owner under plan 80/20
    settings.WITHDRAWAL_MINIMUM = D("10.00")
    shop = shop_with_products(ProductFactory(price=D("100.00"), commission_rate=D("0.2000")))
    owner = shop.owner
    with django_capture_on_commit_callbacks(execute=True):
        order = pay_order(place_order(shop))
    order_mark_shipped(order=order)
    order_mark_completed(order=order)
    client.force_login(owner.user)
    pending = member_balance(owner)

    # when: the hold passes
    commission_release_due(now=timezone.now() + timedelta(days=8))
    bank_account(owner)
    earned = member_balance(owner).withdrawable
    page = client.get(OVERVIEW).content.decode()
    response = client.post(OVERVIEW, {"amount": str(earned)})

    # then
    assert pending.withdrawable == D("0.00") and pending.pending == earned > D("10.00")
    assert stat(page, "available") == f"¥{earned}"
    assert response.status_code == 302
    assert member_balance(owner).withdrawable == D("0.00")
    assert member_statement(owner)[-1].balance == D("0.00")
    assert not PayoutBatch.objects.exists()
