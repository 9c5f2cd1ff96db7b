"""A member sees the income tax withheld from their payouts: on each withdrawal, in the statement and its CSV, and in
an annual income statement (page and CSV per year). Only their own."""

import csv
import io
from datetime import datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from rest_framework.test import APIClient

from payouts.services import (
    payout_batch_create,
    payout_batch_send,
    withdrawal_approve,
    withdrawal_request,
    withdrawals_tax_withhold,
)
from tests.factories import MemberFactory
from tests.payouts.helpers import funded_member, paid_withdrawal

pytestmark = pytest.mark.django_db

D = Decimal
INCOME = reverse("members:income_statement")


@pytest.fixture
def member():
    return funded_member("20000.00")


@pytest.fixture
def member_client(client, member):
    client.force_login(member.user)
    return client


def _csv_rows(response) -> list[list[str]]:
    body = response.content.decode("utf-8")
    assert body.startswith("\ufeff")
    return list(csv.reader(io.StringIO(body[1:])))


def test_each_withdrawal_shows_gross_tax_and_net(member_client, member):
    # given one withdrawal paid (10,000: 90 withheld) and one approved, not sent yet
    paid = paid_withdrawal(member, "10000.00")
    waiting = withdrawal_request(member=member, amount=D("50.00"))
    withdrawal_approve(withdrawal=waiting, actor=None)
    # when
    html = member_client.get(reverse("members:payouts")).content.decode()
    # then
    assert f'id="withdrawal-tax-{paid.pk}"' in html
    block = html[html.index(f'id="withdrawal-tax-{paid.pk}"') :]
    block = block[: block.index("</dl>")]
    assert "Gross" in block and "¥10,000.00" in block
    assert "Income tax withheld" in block and "¥90.00" in block
    assert "Net paid to you" in block and "¥9,910.00" in block
    assert f'id="withdrawal-tax-{waiting.pk}"' not in html
    assert "Income tax, if any, is withheld from it when it is sent." in html
    assert 'id="balance-tax-withheld"><b>¥90.00</b>Tax withheld' in html


def test_the_payouts_page_reads_the_tax_without_a_query_per_withdrawal(member_client, member):
    paid_withdrawal(member, "100.00")
    member_client.get(reverse("members:payouts"))
    with CaptureQueriesContext(connection) as one:
        first = member_client.get(reverse("members:payouts"))
    for _ in range(4):
        paid_withdrawal(member, "100.00")
    with CaptureQueriesContext(connection) as five:
        second = member_client.get(reverse("members:payouts"))
    assert first.content.decode().count('id="withdrawal-tax-') == 1
    assert second.content.decode().count('id="withdrawal-tax-') == 5
    assert len(five) == len(one)


def test_the_statement_and_its_csv_show_the_tax(member_client, member):
    paid = paid_withdrawal(member, "10000.00")
    html = member_client.get(reverse("members:payout_statement")).content.decode()
    assert f"Withdrawal {paid.pk}: gross 10000.00, tax withheld 90.00, net paid 9910.00" in html
    rows = _csv_rows(member_client.get(reverse("members:payout_statement_csv")))
    assert rows[0] == ["date", "description", "amount", "balance", "tax_withheld", "net_paid"]
    withdrawal_row = next(row for row in rows[1:] if row[1].startswith(f"Withdrawal {paid.pk}"))
    assert withdrawal_row[2:] == ["-10000.00", "10000.00", "90.00", "9910.00"]
    commission_row = next(row for row in rows[1:] if row[1].startswith("Commission"))
    assert commission_row[4:] == ["", ""]


def test_the_annual_income_statement_and_its_csv(member_client, member, settings):
    # given two payouts in January 2026 and one in February, under the cumulative rule
    shanghai = ZoneInfo("Asia/Shanghai")
    ids = []
    for amount, at in [
        ("6000.00", datetime(2026, 1, 10, tzinfo=shanghai)),
        ("4000.00", datetime(2026, 1, 25, tzinfo=shanghai)),
        ("10000.00", datetime(2026, 2, 3, tzinfo=shanghai)),
    ]:
        withdrawal = withdrawal_request(member=member, amount=D(amount))
        withdrawal_approve(withdrawal=withdrawal, actor=None)
        batch = payout_batch_create(provider_name="sandbox")
        withdrawals_tax_withhold(withdrawal_ids=[withdrawal.pk], at=at)
        payout_batch_send(batch=batch)
        ids.append(withdrawal.pk)
    # when
    page = member_client.get(INCOME)
    response = member_client.get(reverse("members:income_statement_csv", args=[2026]))
    # then: January 0 then 90 (10,000 cumulative), February 90
    html = page.content.decode()
    assert page.status_code == 200
    assert 'id="income-2026"' in html
    assert "2026-01" in html and "2026-02" in html
    assert response["Content-Disposition"] == f'attachment; filename="income-{member.invite_code}-2026.csv"'
    rows = _csv_rows(response)
    assert rows[0] == ["income_date", "withdrawal", "gross", "tax_withheld", "net_paid", "method"]
    assert rows[1:4] == [
        ["2026-01-10", str(ids[0]), "6000.00", "0.00", "6000.00", "cumulative_2025"],
        ["2026-01-25", str(ids[1]), "4000.00", "90.00", "3910.00", "cumulative_2025"],
        ["2026-02-03", str(ids[2]), "10000.00", "90.00", "9910.00", "cumulative_2025"],
    ]
    assert rows[5:] == [
        ["month", "payouts", "gross", "tax_withheld", "net_paid", ""],
        ["2026-01", "2", "10000.00", "90.00", "9910.00", ""],
        ["2026-02", "1", "10000.00", "90.00", "9910.00", ""],
        ["2026", "3", "20000.00", "180.00", "19820.00", ""],
    ]


def test_another_member_sees_none_of_it(client, member):
    paid_withdrawal(member, "10000.00")
    other = MemberFactory()
    client.force_login(other.user)
    assert 'id="income-' not in client.get(INCOME).content.decode()
    year = str(member.tax_withholdings.get().paid_on.year)
    rows = _csv_rows(client.get(reverse("members:income_statement_csv", args=[int(year)])))
    assert rows[1:] == [
        [],
        ["month", "payouts", "gross", "tax_withheld", "net_paid", ""],
        [year, "0", "0.00", "0.00", "0.00", ""],
    ]


def test_a_year_out_of_range_is_a_404_and_visitors_log_in_first(member_client, client):
    assert member_client.get(reverse("members:income_statement_csv", args=[1999])).status_code == 404
    assert member_client.get("/dashboard/payouts/income/abc.csv").status_code == 404
    client.logout()
    assert client.get(INCOME).status_code == 302


def test_the_api_gives_each_withdrawal_its_tax_and_net(member):
    paid = paid_withdrawal(member, "10000.00")
    client = APIClient()
    client.force_authenticate(member.user)
    rows = client.get(reverse("members-api:withdrawals")).json()
    rows = rows.get("results", rows) if isinstance(rows, dict) else rows
    row = next(row for row in rows if row["id"] == paid.pk)
    assert (row["amount"], row["tax_withheld"], row["net_amount"]) == ("10000.00", "90.00", "9910.00")
    balance = client.get(reverse("members-api:payout_balance")).json()
    assert balance["tax_withheld"] == "90.00"


def _pdf_text(response) -> str:
    from pypdf import PdfReader

    assert response["Content-Type"] == "application/pdf"
    reader = PdfReader(io.BytesIO(response.content))
    return "\n".join(page.extract_text() for page in reader.pages)


def test_the_annual_income_statement_as_pdf(member_client, member):
    # given a paid withdrawal of 10,000 (90 withheld) and a verified identity
    paid = paid_withdrawal(member, "10000.00")
    year = paid.withholding.paid_on.year
    # when
    response = member_client.get(reverse("members:income_statement_pdf", args=[year]))
    # then: a PDF with the year's figures and each payout, the identity masked
    assert response.status_code == 200
    assert response["Content-Disposition"] == f'attachment; filename="income-{member.invite_code}-{year}.pdf"'
    text = _pdf_text(response)
    assert f"Annual income statement {year}" in text
    assert "¥10,000.00" in text and "¥90.00" in text and "¥9,910.00" in text
    assert f"#{paid.pk}" in text
    assert member.invite_code in text
    assert "劳务报酬" in text


def test_the_pdf_speaks_the_members_language(member_client, member):
    paid = paid_withdrawal(member, "10000.00")
    year = paid.withholding.paid_on.year
    member_client.cookies["django_language"] = "zh-hans"
    text = _pdf_text(member_client.get(reverse("members:income_statement_pdf", args=[year])))
    assert f"{year}" in text and "年度收入明细" in text


def test_the_pdf_is_the_members_own_and_a_year_without_income_is_a_404(client, member):
    paid = paid_withdrawal(member, "10000.00")
    year = paid.withholding.paid_on.year
    other = MemberFactory()
    client.force_login(other.user)
    assert client.get(reverse("members:income_statement_pdf", args=[year])).status_code == 404
    client.force_login(member.user)
    assert client.get(reverse("members:income_statement_pdf", args=[year - 1])).status_code == 404
    assert client.get(reverse("members:income_statement_pdf", args=[1999])).status_code == 404
    client.logout()
    assert client.get(reverse("members:income_statement_pdf", args=[year])).status_code == 302


def test_without_a_cjk_font_the_pdf_uses_the_built_in_chinese_font(member_client, member, monkeypatch):
    from pypdf import PdfReader

    from members import income_pdf

    paid = paid_withdrawal(member, "10000.00")
    monkeypatch.setattr(income_pdf, "font_path", lambda: None)
    income_pdf._font_name.cache_clear()
    try:
        response = member_client.get(reverse("members:income_statement_pdf", args=[paid.withholding.paid_on.year]))
    finally:
        income_pdf._font_name.cache_clear()
    page = PdfReader(io.BytesIO(response.content)).pages[0]
    fonts = {font["/BaseFont"] for font in page["/Resources"]["/Font"].values()}
    assert any("STSong-Light" in name for name in fonts)
    assert "¥10,000.00" in page.extract_text()
