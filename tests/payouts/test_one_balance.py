"""One balance, the same everywhere (issue #19).

Members in five states, built through the services as production builds them (orders paid through the
webhook, split, refunded, released, withdrawn and paid out through the sandbox provider): every page that shows
money (overview, earnings, payouts, statement), the API (balance, statement, commission summary) and the admin's
wallet page must show the same figures under the same names. The figures are read back from what is rendered.
"""

import re
from decimal import Decimal

import pytest
from django.test import TestCase
from django.urls import reverse

from payouts.models import MemberWallet
from payouts.selectors import member_balance, member_statement
from payouts.services import withdrawal_request
from shops.services import order_refund
from tests.factories import UserFactory
from tests.payouts.test_money import earn, member_with_account, pay_out, sell

pytestmark = pytest.mark.django_db

D = Decimal
FIGURES = ("available", "pending", "in_flight", "paid_out", "clawed_back")
PAGES = {
    "overview": reverse("members:dashboard"),
    "earnings": reverse("members:commission_entries"),
    "payouts": reverse("members:payouts"),
}
STATEMENT = reverse("members:payout_statement")
API = {
    "balance": "/api/v1/payouts/balance/",
    "summary": "/api/v1/commissions/summary/",
    "statement": "/api/v1/payouts/statement/?page_size=200",
}


def _pending_order(member, price: str, quantity: int = 1, refunded: int = 0):
    """An order shared by `member`, paid (its commission on hold), `refunded` units refunded before release."""
    return sell(member, price, quantity, refund_before_release=refunded, release=False)


def figures(available: str, pending: str, in_flight: str, paid_out: str, clawed_back: str) -> dict[str, Decimal]:
    values = (available, pending, in_flight, paid_out, clawed_back)
    return {name: D(value) for name, value in zip(FIGURES, values, strict=True)}


def fresh():
    return member_with_account(), figures("0.00", "0.00", "0.00", "0.00", "0.00")


def pending_only():
    member = member_with_account()
    _pending_order(member, "100.00")  # 8.00 on hold
    return member, figures("0.00", "8.00", "0.00", "0.00", "0.00")


def after_partial_refund():
    member = member_with_account()
    released = sell(member, "50.00", 4)  # 16.00 released
    with TestCase.captureOnCommitCallbacks(execute=True):  # one of four after release: 4.00 clawed back
        order_refund(order=released, quantities={released.lines.get().pk: 1}, reason="One came back")
    _pending_order(member, "25.00", 4, refunded=1)  # 8.00 on hold, 2.00 of it reversed before release
    return member, figures("12.00", "6.00", "0.00", "0.00", "4.00")


def after_payout():
    member = member_with_account()
    earn(member, D("80.00"))
    pay_out(member, "30.00")
    withdrawal_request(member=member, amount="20.00")  # in flight
    _pending_order(member, "50.00")  # 4.00 on hold
    return member, figures("30.00", "4.00", "20.00", "30.00", "0.00")


def negative_after_clawback():
    member = member_with_account()
    order = earn(member, D("80.00"))
    pay_out(member, "80.00")
    with TestCase.captureOnCommitCallbacks(execute=True):
        order_refund(order=order, reason="Returned after the payout")
    return member, figures("-80.00", "0.00", "0.00", "80.00", "80.00")


STATES = [fresh, pending_only, after_partial_refund, after_payout, negative_after_clawback]


def money(text: str) -> Decimal:
    """ "¥1,234.50" or "-¥80.00" as a Decimal."""
    return D(text.strip().replace("¥", "").replace(",", ""))


def page_figures(html: str) -> dict[str, Decimal]:
    """The balance figures a member page rendered, by their element ids."""
    found = dict(re.findall(r'id="balance-([a-z-]+)"><b>([^<]+)</b>', html))
    return {name: money(found[name.replace("_", "-")]) for name in FIGURES}


def admin_figures(html: str) -> dict[str, Decimal]:
    found = dict(re.findall(r'field-balance_([a-z_]+)">.*?<div class="readonly">([^<]*)</div>', html, re.DOTALL))
    return {name: money(found[name]) for name in FIGURES}


@pytest.mark.parametrize("state", STATES, ids=[state.__name__ for state in STATES])
def test_every_page_the_api_and_the_admin_show_the_same_balance(client, state):
    # given
    member, expected = state()
    balance = member_balance(member)
    assert {name: getattr(balance, "withdrawable" if name == "available" else name) for name in FIGURES} == expected
    client.force_login(member.user)

    # then: the three pages with the balance show it, figure for figure
    for name, url in PAGES.items():
        response = client.get(url)
        assert response.status_code == 200, name
        assert page_figures(response.content.decode()) == expected, name

    # the statement runs to what is available to withdraw, on the page and in the API
    statement = client.get(STATEMENT).content.decode()
    closing = re.search(r'id="closing-balance">[^<]*<b>([^<]+)</b>', statement).group(1)
    assert money(closing) == expected["available"]
    lines = client.get(API["statement"]).json()["results"]
    assert D(lines[-1]["balance"] if lines else "0.00") == expected["available"]
    if not balance.clawed_back:  # never negative without a clawback
        assert all(D(line["balance"]) >= 0 for line in lines)

    # the API: the balance and the commission summary answer the same figures under the same names
    for name in ("balance", "summary"):
        body = client.get(API[name]).json()
        assert {figure: D(body[figure]) for figure in FIGURES} == expected, name
        assert D(body["released"]) == balance.released
        assert body["tax_withheld"] == "0.00"
    assert client.get(API["summary"]).json()["paid"] == f"{expected['paid_out']:.2f}"

    # and staff see the same figures on the member's wallet
    wallet, _created = MemberWallet.objects.get_or_create(member=member)
    client.force_login(UserFactory(is_staff=True, is_superuser=True))
    page = client.get(reverse("admin:payouts_memberwallet_change", args=[wallet.pk])).content.decode()
    assert admin_figures(page) == expected


def test_each_figure_has_its_own_label_on_every_page(client):
    member, _expected = after_payout()
    client.force_login(member.user)
    labels = {
        "available": "Available to withdraw",
        "pending": "Pending (on hold)",
        "in-flight": "Being withdrawn",
        "paid-out": "Paid out",
        "clawed-back": "Clawed back",
    }

    for url in PAGES.values():
        html = client.get(url).content.decode()
        shown = dict(re.findall(r'id="balance-([a-z-]+)"><b>[^<]+</b>([^<]+)</div>', html))
        assert shown == labels


@pytest.mark.parametrize("url", [*PAGES.values(), STATEMENT, *API.values()])
def test_the_balance_pages_make_the_same_queries_however_long_the_history(client, url, django_assert_num_queries):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    short, _expected = after_payout()
    client.force_login(short.user)
    with CaptureQueriesContext(connection) as few:
        assert client.get(url).status_code == 200
    long, _expected = after_payout()
    for _more in range(3):
        earn(long, D("40.00"))
        pay_out(long, "40.00")
    client.force_login(long.user)

    with django_assert_num_queries(len(few)):
        assert client.get(url).status_code == 200
    assert len(member_statement(long)) > len(member_statement(short))
