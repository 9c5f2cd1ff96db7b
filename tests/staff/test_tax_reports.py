"""The tax reports (staff/tax_reports.py, docs/tax.md): the quarterly report of 国务院令第810号 and the monthly
withholding summary, generated from the payout ledger, checked against it, stored encrypted, downloaded by
finance only (and audited)."""

import csv
import io
from datetime import date, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

import openpyxl
import pytest
from django.contrib.auth.models import Group
from django.core.management import call_command
from django.urls import reverse

from accounts.identity import identity_register_business
from accounts.models import Identity
from core.encryption import decrypt_bytes
from payouts.models import TaxWithholding, Withdrawal
from payouts.services import (
    payout_batch_create,
    payout_batch_send,
    withdrawal_approve,
    withdrawal_request,
    withdrawals_tax_withhold,
)
from staff import tax_reports
from staff.audit import AuditFilters, audit_rows
from staff.groups import COMPLIANCE, FINANCE, SUPPORT
from staff.models import TaxReport, TaxReportEvent, TaxReportPiece
from staff.tasks import tax_report_generate_task
from staff.tax_reports import TaxReportError, period_parse, tax_report_request
from tests.factories import UserFactory
from tests.payouts.helpers import funded_member
from tests.staff.tax_data import id_number, paid_members, pay

pytestmark = pytest.mark.django_db

D = Decimal
SHANGHAI = ZoneInfo("Asia/Shanghai")
TODAY = date(2026, 12, 7)
Q1 = tax_reports.Period(TaxReport.Kind.QUARTERLY, date(2026, 1, 1), date(2026, 3, 31))
MARCH = tax_reports.Period(TaxReport.Kind.MONTHLY, date(2026, 3, 1), date(2026, 3, 31))
GENERATE = reverse("admin:staff_taxreport_generate")


def generate(period) -> TaxReport:
    report = tax_report_request(period=period)  # eager Celery: the task runs after the commit (none in tests)
    return tax_report_generate_task.apply(args=[report.pk]).get() and TaxReport.objects.get(pk=report.pk)


def file_of(report: TaxReport, file_format: str) -> bytes:
    pieces = TaxReportPiece.objects.filter(report=report, generation=report.generation, format=file_format)
    return b"".join(decrypt_bytes(piece.data) for piece in pieces.order_by("number"))


def xlsx_rows(report: TaxReport) -> dict[str, list[tuple]]:
    workbook = openpyxl.load_workbook(io.BytesIO(file_of(report, "xlsx")), read_only=True)
    return {sheet.title: list(sheet.iter_rows(values_only=True)) for sheet in workbook.worksheets}


def csv_rows(report: TaxReport) -> list[list[str]]:
    return list(csv.reader(io.StringIO(file_of(report, "csv").decode("utf-8-sig"))))


def staff_in(group_name: str):
    call_command("staff_groups", verbosity=0)
    user = UserFactory(is_staff=True)
    user.groups.add(Group.objects.get(name=group_name))
    return user


# --- The figures -----------------------------------------------------------------------------------------------


def test_quarterly_report_totals_equal_the_ledger_for_10000_members():
    # given 10,000 members paid in the first quarter (over its three months), and others outside it
    paid_members(4000, on=date(2026, 1, 15), gross="100.00")
    paid_members(3000, on=date(2026, 2, 28), gross="250.50")
    paid_members(3000, on=date(2026, 3, 31), gross="1234.56")
    paid_members(50, on=date(2025, 12, 31))
    paid_members(50, on=date(2026, 4, 1))
    ledger = TaxWithholding.objects.filter(paid_on__range=(Q1.start, Q1.end))
    # when the quarterly report is generated
    report = generate(Q1)
    # then it has one row per member paid, and its totals are the ledger's
    gross = D("4000") * D("100.00") + D("3000") * D("250.50") + D("3000") * D("1234.56")
    tax = sum(row.tax for row in ledger)
    assert report.status == TaxReport.Status.DONE
    assert report.is_check_passed is True
    check = report.check_result
    assert check["ledger"]["earners"] == check["report"]["rows"] == 10000
    assert check["report"]["gross"] == check["ledger"]["gross"] == str(gross)
    assert check["report"]["tax"] == check["ledger"]["tax"] == str(tax)
    assert check["report"]["net"] == str(gross - tax)
    assert check["missing"] == check["duplicates"]["count"] == check["without_identity"]["count"] == 0
    # and the files say the same: every member once, the same sums
    sheets = xlsx_rows(report)
    rows = sheets["收入信息"][1:]
    assert len(rows) == 10000 and len({row[1] for row in rows}) == 10000
    assert sum(D(str(row[11])) for row in rows) == gross
    lines = csv_rows(report)
    assert lines[0][11] == "收入总额" and len(lines) == 10001
    assert sum(D(line[11]) for line in lines[1:]) == gross
    assert sum(D(line[15]) for line in lines[1:]) == tax
    assert sheets["合计"][-1][:2] == ("核对结果", "通过")


def test_a_member_paid_several_times_is_one_row_with_the_sums():
    # given a member paid three times in the quarter
    member = paid_members(1, on=date(2026, 1, 5), gross="100.00")[0]
    pay([member], on=date(2026, 2, 5), gross="200.00")
    pay([member], on=date(2026, 3, 5), gross="300.00")
    # when the report is generated
    report = generate(Q1)
    # then one row, with the three payouts added up
    (row,) = csv_rows(report)[1:]
    assert (row[1], row[11], row[13], row[14], row[15], row[16]) == (
        str(member.pk),
        "600.00",
        "600.00",
        "3",
        "18.00",
        "582.00",
    )
    assert row[2:7] == ["自然人", "王芳", "居民身份证", id_number(member.user_id), "中国"]
    assert row[7:11] == ["佣金收入", "劳务报酬所得", "2026-01-01", "2026-03-31"]
    assert report.is_check_passed is True


@pytest.fixture
def payee():
    return funded_member("5000.00")


def sent(member, amount: str, *, at: datetime):
    withdrawal = withdrawal_request(member=member, amount=D(amount))
    withdrawal_approve(withdrawal=withdrawal, actor=None)
    batch = payout_batch_create(provider_name="sandbox")
    withdrawals_tax_withhold(withdrawal_ids=[withdrawal.pk], at=at)
    payout_batch_send(batch=batch)
    return withdrawal


def test_quarters_end_at_midnight_china_time(payee):
    # given a payout at 23:30 on 31 March in China (15:30 UTC) and one at 00:10 on 1 April (16:10 UTC on 31 March)
    sent(payee, "100.00", at=datetime(2026, 3, 31, 23, 30, tzinfo=SHANGHAI))
    sent(payee, "200.00", at=datetime(2026, 4, 1, 0, 10, tzinfo=SHANGHAI))
    # when the first two quarters are generated
    first = generate(Q1)
    second = generate(period_parse(TaxReport.Kind.QUARTERLY, "2026Q2", today=TODAY))
    # then the first payout is the first quarter's, the second the second's
    assert first.check_result["report"]["gross"] == "100.00"
    assert second.check_result["report"]["gross"] == "200.00"
    assert first.is_check_passed and second.is_check_passed


def test_void_entries_are_left_out():
    # given a member paid, and one whose only payout failed (its tax void)
    paid = paid_members(1, on=date(2026, 2, 1))[0]
    failed = paid_members(1, on=date(2026, 2, 1), identity=True)[0]
    TaxWithholding.objects.filter(member=failed).update(status=TaxWithholding.Status.VOID)
    # when the report is generated
    report = generate(Q1)
    # then only the paid member is in it, and the check passes
    assert [row[1] for row in csv_rows(report)[1:]] == [str(paid.pk)]
    assert report.check_result["ledger"]["earners"] == 1
    assert report.is_check_passed is True


def test_a_business_payee_is_reported_by_company_name_and_credit_code():
    member = paid_members(1, on=date(2026, 3, 1))[0]
    identity = Identity.objects.get(user_id=member.user_id)
    identity_register_business(identity=identity, company_name="杭州示例科技有限公司", credit_code="91350100M000100Y43")
    report = generate(Q1)
    (row,) = csv_rows(report)[1:]
    assert row[2:9] == ["企业", "杭州示例科技有限公司", "统一社会信用代码", "91350100M000100Y43", "中国", "佣金收入",
                        "经营所得"]  # fmt: skip


def test_a_member_paid_without_an_identity_fails_the_check_and_is_listed():
    # given a member paid before identities were asked for (legacy data), and one with an identity
    legacy = paid_members(1, on=date(2026, 1, 10), identity=False)[0]
    paid_members(1, on=date(2026, 1, 10))
    # when the report is generated
    report = generate(Q1)
    # then the legacy member is in the report with empty identity columns, and the check fails naming them
    assert report.status == TaxReport.Status.DONE
    assert report.is_check_passed is False
    assert report.check_result["without_identity"] == {"count": 1, "members": [legacy.pk]}
    assert report.check_result["report"]["gross"] == report.check_result["ledger"]["gross"]
    rows = {row[1]: row for row in csv_rows(report)[1:]}
    assert rows[str(legacy.pk)][3:6] == ["", "", ""]


def test_the_files_are_stored_encrypted():
    member = paid_members(1, on=date(2026, 2, 2))[0]
    number = id_number(member.user_id)
    report = generate(Q1)
    stored = b"".join(bytes(data) for data in TaxReportPiece.objects.values_list("data", flat=True))
    assert stored and number.encode() not in stored and "王芳".encode() not in stored
    assert number.encode() in file_of(report, "csv")
    assert report.xlsx_sha256 and report.csv_sha256


def test_a_long_report_continues_on_the_next_sheet(monkeypatch):
    monkeypatch.setattr(tax_reports, "SHEET_ROWS", 3)  # a header and two rows a sheet
    paid_members(5, on=date(2026, 1, 2))
    report = generate(Q1)
    sheets = xlsx_rows(report)
    assert list(sheets)[:4] == ["收入信息", "收入信息 (2)", "收入信息 (3)", "合计"]
    assert [len(sheets[name]) for name in list(sheets)[:3]] == [3, 3, 2]
    assert all(sheets[name][0][0] == "序号" for name in list(sheets)[:3])
    assert [row[0] for name in list(sheets)[:3] for row in sheets[name][1:]] == [1, 2, 3, 4, 5]


def test_monthly_summary_reconciles_with_the_months_payouts():
    # given members paid in March (one twice) and in February
    members = paid_members(3, on=date(2026, 3, 10), gross="1000.00")
    pay(members[:1], on=date(2026, 3, 20), gross="500.00")
    paid_members(2, on=date(2026, 2, 10))
    # when March's summary is generated
    report = generate(MARCH)
    # then three rows, the withdrawals' amounts equal the gross, and the check passes
    check = report.check_result
    assert check["passed"] is True
    assert check["report"]["rows"] == 3 and check["report"]["payouts"] == 4
    assert check["withdrawals"] == {"count": 4, "amount": "3500.00", "not_sent": 0}
    assert check["ledger"]["gross"] == "3500.00" and check["ledger"]["tax"] == "105.00"
    lines = csv_rows(report)
    assert lines[0][:8] == [
        "序号", "平台内用户标识", "姓名（名称）", "证件类型", "证件号码（统一社会信用代码）",
        "所得项目", "计税方法", "本期收入",
    ]  # fmt: skip
    first = next(line for line in lines[1:] if line[1] == str(members[0].pk))
    assert (first[7], first[8], first[13], first[17], first[18]) == ("1500.00", "2", "3%", "45.00", "1455.00")


def test_monthly_check_fails_when_a_taxed_withdrawal_is_not_paid():
    members = paid_members(2, on=date(2026, 3, 10))
    Withdrawal.objects.filter(member=members[0]).update(status=Withdrawal.Status.FAILED)  # tax not voided: wrong
    report = generate(MARCH)
    assert report.check_result["withdrawals"]["not_sent"] == 1
    assert report.is_check_passed is False


# --- Runs ------------------------------------------------------------------------------------------------------


def test_the_task_run_twice_gives_one_result():
    paid_members(3, on=date(2026, 1, 2))
    report = tax_report_request(period=Q1)
    tax_report_generate_task.apply(args=[report.pk])
    first = TaxReport.objects.get(pk=report.pk)
    # when the task's message is delivered again
    assert tax_report_generate_task.apply(args=[report.pk]).get() == "done"
    # then nothing ran again: one run, its files, one "generated" event
    again = TaxReport.objects.get(pk=report.pk)
    assert (again.attempts, again.generation, again.csv_sha256) == (1, 1, first.csv_sha256)
    assert set(TaxReportPiece.objects.values_list("generation", flat=True)) == {1}
    assert TaxReportEvent.objects.filter(kind=TaxReportEvent.Kind.GENERATED).count() == 1


def test_generating_a_period_again_replaces_its_files():
    paid_members(3, on=date(2026, 1, 2))
    first = generate(Q1)
    paid_members(1, on=date(2026, 1, 3))  # a payout recorded late
    second = generate(Q1)
    assert TaxReport.objects.count() == 1
    assert second.generation == 2 and second.rows_done == 4 and second.csv_sha256 != first.csv_sha256
    assert set(TaxReportPiece.objects.values_list("generation", flat=True)) == {2}
    assert TaxReportEvent.objects.filter(kind=TaxReportEvent.Kind.GENERATED).count() == 2


def test_a_report_never_run_stays_queued_and_a_run_in_progress_refuses_another():
    report = tax_report_request(period=Q1)
    assert TaxReport.objects.get(pk=report.pk).status == TaxReport.Status.QUEUED  # no commit: the task never went
    TaxReport.objects.filter(pk=report.pk).update(status=TaxReport.Status.RUNNING, started_at=datetime.now(SHANGHAI))
    with pytest.raises(TaxReportError):
        tax_report_request(period=Q1)


def test_progress_moves_as_rows_are_written(monkeypatch):
    monkeypatch.setattr(tax_reports, "CHUNK", 2)
    monkeypatch.setattr(tax_reports, "PROGRESS_EVERY", 2)
    paid_members(7, on=date(2026, 1, 2))
    seen = []
    original = tax_reports._with_identities

    def spy(chunk):
        row = TaxReport.objects.get()
        seen.append((row.status, row.rows_done, row.rows_total))
        return original(chunk)

    monkeypatch.setattr(tax_reports, "_with_identities", spy)
    report = generate(Q1)
    assert seen == [("running", 0, 7), ("running", 2, 7), ("running", 4, 7), ("running", 6, 7)]
    assert (report.rows_done, report.progress_percent) == (7, 100)


def test_an_error_is_recorded_not_raised(monkeypatch):
    paid_members(1, on=date(2026, 1, 2))

    def broken(chunk):
        raise RuntimeError("disk full")

    monkeypatch.setattr(tax_reports, "_with_identities", broken)
    report = generate(Q1)
    assert (report.status, report.error) == (TaxReport.Status.FAILED, "disk full")
    assert not TaxReportPiece.objects.exists()


# --- Periods and the form --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "text", "start", "end"),
    [
        ("quarterly_810", "2026Q1", date(2026, 1, 1), date(2026, 3, 31)),
        ("quarterly_810", "2025-q4", date(2025, 10, 1), date(2025, 12, 31)),
        ("monthly_withholding", "2026-02", date(2026, 2, 1), date(2026, 2, 28)),
        ("monthly_withholding", "2025-12", date(2025, 12, 1), date(2025, 12, 31)),
    ],
)
def test_periods(kind, text, start, end):
    period = period_parse(kind, text, today=TODAY)
    assert (period.start, period.end) == (start, end)


@pytest.mark.parametrize(
    ("kind", "text"),
    [
        ("quarterly_810", "2026Q5"),
        ("quarterly_810", "2026"),
        ("quarterly_810", "Q1"),
        ("quarterly_810", "2026Q4"),  # not over on 7 December 2026
        ("quarterly_810", "2027Q1"),
        ("monthly_withholding", "2026-13"),
        ("monthly_withholding", "2026-12"),
        ("monthly_withholding", "03-2026"),
        ("monthly_withholding", "1990-01"),
        ("monthly_withholding", "x" * 10),
    ],
)
def test_bad_periods_are_refused(kind, text):
    with pytest.raises(TaxReportError):
        period_parse(kind, text, today=TODAY)


@pytest.mark.parametrize("period", ["2026Q5", "next", "2999Q1", ""])
def test_the_form_says_what_is_wrong_with_a_period(client, period):
    client.force_login(staff_in(FINANCE))
    assert client.get(GENERATE).status_code == 200
    response = client.post(GENERATE, {"kind": "quarterly_810", "period": period})
    assert response.status_code == 200
    assert response.context["form"].errors["period"]
    assert not TaxReport.objects.exists()


def test_finance_generates_from_the_admin(client, django_capture_on_commit_callbacks):
    paid_members(2, on=date(2026, 1, 2))
    client.force_login(staff_in(FINANCE))
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(GENERATE, {"kind": "quarterly_810", "period": "2026Q1"})
    report = TaxReport.objects.get()
    assert response.status_code == 302 and response["Location"] == reverse(
        "admin:staff_taxreport_change", args=[report.pk]
    )
    assert report.status == TaxReport.Status.DONE and report.requested_by is not None
    listing = client.get(reverse("admin:staff_taxreport_changelist"))
    assert listing.status_code == 200
    page = listing.content.decode()
    assert "2026Q1" in page and reverse("admin:staff_taxreport_download", args=[report.pk, "xlsx"]) in page
    detail = client.get(reverse("admin:staff_taxreport_change", args=[report.pk]))
    assert detail.status_code == 200 and "Download CSV" in detail.content.decode()


# --- Downloads -------------------------------------------------------------------------------------------------


@pytest.fixture
def done_report():
    paid_members(2, on=date(2026, 1, 2))
    return generate(Q1)


def test_finance_downloads_and_the_download_is_audited(client, done_report):
    finance = staff_in(FINANCE)
    client.force_login(finance)
    response = client.get(reverse("admin:staff_taxreport_download", args=[done_report.pk, "xlsx"]))
    assert response.status_code == 200
    assert "no-store" in response["Cache-Control"]
    assert 'filename="tax-810-2026Q1.xlsx"' in response["Content-Disposition"]
    body = b"".join(response.streaming_content)
    assert len(list(openpyxl.load_workbook(io.BytesIO(body), read_only=True)["收入信息"].iter_rows())) == 3
    event = TaxReportEvent.objects.get(kind=TaxReportEvent.Kind.DOWNLOADED)
    assert (event.actor, event.detail["format"], event.detail["sha256"]) == (finance, "xlsx", done_report.xlsx_sha256)
    # and the audit log shows it
    rows = audit_rows(AuditFilters(object_type="tax_report", object_id=str(done_report.pk)))
    assert [row.kind for row in rows] == ["tax_report.downloaded", "tax_report.generated", "tax_report.requested"]
    assert rows[0].actor_id == finance.pk


@pytest.mark.parametrize("group_name", [SUPPORT, COMPLIANCE])
def test_support_and_compliance_may_not_download(client, done_report, group_name):
    client.force_login(staff_in(group_name))
    assert client.get(reverse("admin:staff_taxreport_download", args=[done_report.pk, "csv"])).status_code == 403
    assert client.get(reverse("admin:staff_taxreport_changelist")).status_code == 403
    assert client.get(GENERATE).status_code == 403
    assert not TaxReportEvent.objects.filter(kind=TaxReportEvent.Kind.DOWNLOADED).exists()


def test_finance_without_the_full_identity_permission_may_not_download(client, done_report):
    finance = staff_in(FINANCE)
    finance.user_permissions.clear()
    Group.objects.get(name=FINANCE).permissions.remove(
        *Group.objects.get(name=FINANCE).permissions.filter(codename="view_full_identity")
    )
    client.force_login(finance)
    assert client.get(reverse("admin:staff_taxreport_download", args=[done_report.pk, "csv"])).status_code == 403


def test_anonymous_is_sent_to_the_login(client, done_report):
    response = client.get(reverse("admin:staff_taxreport_download", args=[done_report.pk, "csv"]))
    assert response.status_code == 302 and "login" in response["Location"]


def test_a_report_not_done_or_missing_is_404(client, done_report):
    client.force_login(staff_in(FINANCE))
    TaxReport.objects.filter(pk=done_report.pk).update(status=TaxReport.Status.QUEUED)
    assert client.get(reverse("admin:staff_taxreport_download", args=[done_report.pk, "csv"])).status_code == 404
    assert client.get(reverse("admin:staff_taxreport_download", args=[done_report.pk + 1, "csv"])).status_code == 404
    assert client.get(reverse("admin:staff_taxreport_download", args=[done_report.pk, "pdf"])).status_code == 404
