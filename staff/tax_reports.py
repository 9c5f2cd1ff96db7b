"""The platform's tax reports (issue #24; docs/tax.md, "The quarterly report (国务院令第810号) and the monthly
summary"): the quarterly report of every earner's identity and income that 国务院令第810号 asks of an internet
platform, and the monthly summary of the income tax withheld at payout, for the withholding filing.

Both are built from the payout ledger (`payouts.TaxWithholding`, the rows still withheld, by income date), on the
server side: one aggregate query per member, ordered by member and read through an iterator (a server-side cursor
on PostgreSQL), the identities of each chunk of members in one query and decrypted here, the rows streamed into an
XLSX (core.spreadsheets.XlsxStreamWriter; a sheet continues on the next after Excel's 1,048,576 rows) and a CSV at
once, each file cut into pieces of 4 MB stored encrypted with the identity keys (`staff.TaxReportPiece`): the
files hold full ID numbers and never exist in clear outside this process and the download.

The run is a Celery task (`staff.tasks.tax_report_generate_task`) that may run twice, at once, or not at all: the
lease, the pieces and the swap are staff/file_jobs.py's, shared with the evidence packs.
"""

import codecs
import csv
import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal

from django.core.exceptions import PermissionDenied
from django.db.models import Count, Max, Q, Sum
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts.models import Identity
from core.encryption import decrypt_many
from core.money import ZERO, money_sum
from core.spreadsheets import XLSX_MAX_ROWS, XlsxStreamWriter, spreadsheet_safe
from core.task_helpers import task_send
from payouts.models import TaxWithholding, Withdrawal
from staff.file_jobs import FileJob, FileJobBusy, PieceWriter, file_job_request, file_job_run, pieces_stream
from staff.models import TaxReport, TaxReportEvent, TaxReportPiece

logger = logging.getLogger(__name__)

Kind = TaxReport.Kind
Status = TaxReport.Status
WITHHELD = TaxWithholding.Status.WITHHELD
DOWNLOAD_PERMISSION = "staff.download_taxreport"
FULL_READ_PERMISSION = "accounts.view_full_identity"
PROGRESS_EVERY = 5000  # rows written between two progress notes on the report's row
CHUNK = 2000  # members read, and their identities decrypted, at a time
SHEET_ROWS = XLSX_MAX_ROWS  # rows of one worksheet (header included): Excel's limit
LISTED_MAX = 20  # members named in the check's lists; the counts say how many there are
EARLIEST_YEAR = 2019  # the withholding rules of 2018 No. 61 start in 2019
JOB = FileJob(model=TaxReport, piece_model=TaxReportPiece, event_model=TaxReportEvent, parent="report")


class TaxReportError(Exception):
    """A refused request; the message is fit to show."""


# --- Periods ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Period:
    kind: str
    start: date
    end: date  # inclusive

    @property
    def after(self) -> date:
        return self.end + timedelta(days=1)


def _month_after(day: date) -> date:
    return date(day.year + day.month // 12, day.month % 12 + 1, 1)


def period_parse(kind: str, text: str, *, today: date | None = None) -> Period:
    """The period named by `text`: "2026Q1" (or "2026-Q1") for the quarterly report, "2026-03" for the monthly
    summary. Raises TaxReportError for a malformed period or one that is not over yet (local time)."""
    text = (text or "").strip().upper().replace(" ", "")
    today = today or timezone.localdate()
    try:
        if kind == Kind.QUARTERLY:
            year_text, quarter_text = text.replace("-Q", "Q").split("Q")
            year, quarter = int(year_text), int(quarter_text)
            if len(year_text) != 4 or not 1 <= quarter <= 4:
                raise ValueError
            start = date(year, 3 * quarter - 2, 1)
            end = _month_after(_month_after(_month_after(start))) - timedelta(days=1)
        elif kind == Kind.MONTHLY:
            year_text, month_text = text.split("-")
            if len(year_text) != 4:
                raise ValueError
            start = date(int(year_text), int(month_text), 1)
            end = _month_after(start) - timedelta(days=1)
        else:
            raise TaxReportError(_("Choose the report."))
    except ValueError:
        if kind == Kind.QUARTERLY:
            raise TaxReportError(_("Write the quarter as 2026Q1 (the year, Q, and 1 to 4).")) from None
        raise TaxReportError(_("Write the month as 2026-03 (the year, a dash, and 01 to 12).")) from None
    if start.year < EARLIEST_YEAR:
        raise TaxReportError(_("Choose a period from %(year)d on.") % {"year": EARLIEST_YEAR})
    if end >= today:
        raise TaxReportError(_("This period is not over yet: a report covers a finished period."))
    return Period(kind, start, end)


def period_of(report: TaxReport) -> Period:
    return Period(report.kind, report.period_start, report.period_end)


# --- Asking for a report ---------------------------------------------------------------------------------------


def tax_report_request(*, period: Period, actor=None) -> TaxReport:
    """Queue the report of `period` (new, or again: the run replaces the earlier files and check when it is done)
    and send its task after the commit. Refused while a run of it is under way. Writes a `requested` event."""
    try:
        return file_job_request(
            JOB,
            lookup={"kind": period.kind, "period_start": period.start},
            defaults={"period_end": period.end},
            actor=actor,
            send=tax_report_send,
        )
    except FileJobBusy:
        raise TaxReportError(_("This report is being generated now; wait for it to finish.")) from None


def tax_report_send(report_id: int) -> bool:
    """Send the report's task; False when the broker is unreachable (the report stays queued: run it again)."""
    from staff.tasks import tax_report_generate_task  # staff.tasks imports this module

    return task_send(tax_report_generate_task, report_id, logger=logger, fallback="finance can choose “Generate again”")


# --- The rows --------------------------------------------------------------------------------------------------

ID_TYPE_LABELS = {
    Identity.IdType.RESIDENT_ID: "居民身份证",
    Identity.IdType.PASSPORT: "护照",
    Identity.IdType.FOREIGN_PERMANENT: "外国人永久居留身份证",
}


def id_type_label(id_type: str, number: str) -> str:
    """The ID type as the tax bureau's forms name it. A permit number of 18 characters is a residence permit
    (居住证), else a travel permit (通行证)."""
    if id_type == Identity.IdType.HK_MACAU_PERMIT:
        return "港澳居民居住证" if len(number) == 18 else "港澳居民来往内地通行证"
    if id_type == Identity.IdType.TAIWAN_PERMIT:
        return "台湾居民居住证" if len(number) == 18 else "台湾居民来往大陆通行证"
    return ID_TYPE_LABELS.get(id_type, id_type)


def country_or_region(id_type: str, number: str) -> str:
    """国家或地区, where the ID says it: a resident ID is China's; a permit names Hong Kong, Macau or Taiwan (region
    code 81/82/83, or the H/M of a travel permit). A passport or foreign permanent resident ID does not say which
    country (we do not collect the nationality): empty, for finance to fill in."""
    if id_type == Identity.IdType.RESIDENT_ID:
        return "中国"
    if id_type == Identity.IdType.HK_MACAU_PERMIT:
        return "中国澳门" if number[:2] == "82" or number[:1] == "M" else "中国香港"
    if id_type == Identity.IdType.TAIWAN_PERMIT:
        return "中国台湾"
    return ""


@dataclass(frozen=True)
class Column:
    heading: str  # as the tax bureau's forms name it
    english: str


QUARTERLY_COLUMNS = (
    Column("序号", "row"),
    Column("平台内用户标识", "member id"),
    Column("主体类型", "payee kind"),
    Column("姓名（名称）", "legal name (company name)"),
    Column("证件类型", "ID type"),
    Column("证件号码（统一社会信用代码）", "ID number (credit code)"),
    Column("国家或地区", "country or region"),
    Column("收入类型", "income type"),
    Column("所得项目", "income item"),
    Column("收入所属期起", "period from"),
    Column("收入所属期止", "period to"),
    Column("收入总额", "gross income"),
    Column("退款金额", "refunds"),
    Column("收入净额", "net income"),
    Column("支付笔数", "payouts"),
    Column("已扣缴个人所得税", "income tax withheld"),
    Column("实际支付金额", "amount paid"),
)

MONTHLY_COLUMNS = (
    Column("序号", "row"),
    Column("平台内用户标识", "member id"),
    Column("姓名（名称）", "legal name (company name)"),
    Column("证件类型", "ID type"),
    Column("证件号码（统一社会信用代码）", "ID number (credit code)"),
    Column("所得项目", "income item"),
    Column("计税方法", "withholding rule"),
    Column("本期收入", "income this month"),
    Column("支付笔数", "payouts"),
    Column("计税收入额", "income taxed (year to date under the cumulative rule)"),
    Column("费用", "expenses (20 % or 800)"),
    Column("减除费用", "basic deduction"),
    Column("应纳税所得额", "taxable income"),
    Column("预扣率", "rate"),
    Column("速算扣除数", "quick deduction"),
    Column("应预扣预缴税额", "tax due"),
    Column("已预扣预缴税额", "tax withheld before"),
    Column("本期已扣缴税额", "tax withheld this month"),
    Column("实际支付金额", "amount paid"),
)


@dataclass
class Earner:
    member_id: int
    user_id: int
    payouts: int
    gross: Decimal
    tax: Decimal
    net: Decimal
    last_id: int
    identity: tuple | None = None  # (kind, name, id type label, number, country), decrypted
    identity_error: str = ""


def _ledger(period: Period):
    return TaxWithholding.objects.filter(status=WITHHELD, paid_on__gte=period.start, paid_on__lte=period.end)


def _earners(period: Period) -> Iterator[list[Earner]]:
    """Every member paid in the period, one aggregate row each, in member order, in chunks of CHUNK with their
    identities decrypted (one query a chunk)."""
    rows = (
        _ledger(period)
        .values("member_id")
        .annotate(
            user_id=Max("member__user_id"),
            payouts=Count("pk"),
            gross=Sum("gross"),
            tax=Sum("tax"),
            net=Sum("net"),
            last_id=Max("pk"),
        )
        .order_by("member_id")
        .values_list("member_id", "user_id", "payouts", "gross", "tax", "net", "last_id")
    )
    chunk: list[Earner] = []
    for member_id, user_id, payouts, gross, tax, net, last_id in rows.iterator(chunk_size=CHUNK):
        chunk.append(Earner(member_id, user_id, payouts, money_sum(gross), money_sum(tax), money_sum(net), last_id))
        if len(chunk) == CHUNK:
            yield _with_identities(chunk)
            chunk = []
    if chunk:
        yield _with_identities(chunk)


def _with_identities(chunk: list[Earner]) -> list[Earner]:
    identities = {
        row[0]: row[1:]
        for row in Identity.objects.filter(user_id__in=[earner.user_id for earner in chunk]).values_list(
            "user_id", "id_type", "legal_name_encrypted", "id_number_encrypted", "payee_kind", "company_name",
            "credit_code",
        )
    }  # fmt: skip
    people = []  # (earner, id type, name token, number token): decrypted together below
    for earner in chunk:
        found = identities.get(earner.user_id)
        if found is None:
            earner.identity_error = "none"
            continue
        id_type, name_token, number_token, payee_kind, company_name, credit_code = found
        if payee_kind == Identity.PayeeKind.BUSINESS and credit_code:
            earner.identity = ("企业", company_name, "统一社会信用代码", credit_code, "中国")
        else:
            people.append((earner, id_type, name_token, number_token))
    texts = decrypt_many([token for _e, _t, name, number in people for token in (name, number)])
    for (earner, id_type, _name, _number), name, number in zip(people, texts[::2], texts[1::2], strict=True):
        if name is None or number is None:
            earner.identity_error = "unreadable"
            continue
        earner.identity = ("自然人", name, id_type_label(id_type, number), number, country_or_region(id_type, number))
    return chunk


METHOD_LABELS = {
    "cumulative_2025": "累计预扣法",
    "cumulative_2025_restart": "累计预扣法",
    "per_payment_2018": "按次预扣",
    "none": "不扣缴",
}


def _quarterly_row(number: int, earner: Earner, period: Period) -> list:
    kind, name, id_type, id_number, country = earner.identity or ("", "", "", "", "")
    return [
        number,
        earner.member_id,
        kind,
        name,
        id_type,
        id_number,
        country,
        "佣金收入",
        "劳务报酬所得" if kind == "自然人" else ("经营所得" if kind == "企业" else ""),
        period.start.isoformat(),
        period.end.isoformat(),
        earner.gross,
        ZERO,
        earner.gross,
        earner.payouts,
        earner.tax,
        earner.net,
    ]


def _monthly_rows(chunk: list[Earner], start: int) -> list[list]:
    """The month's rows of a chunk: the month's sums, and the computation of the month's last payout (under the
    cumulative rule its year-to-date figures; under the per-payment rule the month's), one query a chunk."""
    last = {
        row["pk"]: row
        for row in TaxWithholding.objects.filter(pk__in=[earner.last_id for earner in chunk]).values(
            "pk", "method", "income", "expenses", "deduction", "taxable", "rate", "quick_deduction", "tax_due",
            "withheld_before",
        )
    }  # fmt: skip
    rows = []
    for offset, earner in enumerate(chunk):
        kind, name, id_type, id_number, _country = earner.identity or ("", "", "", "", "")
        figures = last[earner.last_id]
        rows.append(
            [
                start + offset,
                earner.member_id,
                name,
                id_type,
                id_number,
                "劳务报酬所得" if kind != "企业" else "经营所得",
                METHOD_LABELS.get(figures["method"], figures["method"]),
                earner.gross,
                earner.payouts,
                figures["income"].quantize(Decimal("0.01")),
                figures["expenses"].quantize(Decimal("0.01")),
                figures["deduction"],
                figures["taxable"].quantize(Decimal("0.01")),
                f"{figures['rate'] * 100:.0f}%",
                figures["quick_deduction"],
                figures["tax_due"],
                figures["withheld_before"],
                earner.tax,
                earner.net,
            ]
        )
    return rows


# --- The check -------------------------------------------------------------------------------------------------


def ledger_totals(period: Period) -> dict:
    """What the payout ledger says of the period: the members paid, the payouts, gross, tax and net."""
    totals = _ledger(period).aggregate(
        earners=Count("member_id", distinct=True), payouts=Count("pk"), gross=Sum("gross"), tax=Sum("tax"),
        net=Sum("net"),
    )  # fmt: skip
    return {
        "earners": totals["earners"],
        "payouts": totals["payouts"],
        "gross": str(money_sum(totals["gross"])),
        "tax": str(money_sum(totals["tax"])),
        "net": str(money_sum(totals["net"])),
    }


def withdrawals_totals(period: Period) -> dict:
    """The withdrawals behind the period's withheld entries: their amounts (each entry's gross is its withdrawal's
    amount), and how many of them are not sent or paid (their tax should be void)."""
    withdrawals = Withdrawal.objects.filter(
        withholding__status=WITHHELD, withholding__paid_on__gte=period.start, withholding__paid_on__lte=period.end
    )
    totals = withdrawals.aggregate(
        count=Count("pk"),
        amount=Sum("amount"),
        not_sent=Count("pk", filter=~Q(status__in=[Withdrawal.Status.PROCESSING, Withdrawal.Status.PAID])),
    )
    return {"count": totals["count"], "amount": str(money_sum(totals["amount"])), "not_sent": totals["not_sent"]}


class _Tally:
    """What the report wrote, counted as it goes (the check compares it with the ledger's own sums)."""

    def __init__(self):
        self.rows = 0
        self.payouts = 0
        self.gross = self.tax = self.net = ZERO
        self.last_member = 0
        self.duplicates: list[int] = []
        self.duplicate_count = 0
        self.without_identity: list[int] = []
        self.without_identity_count = 0
        self.unreadable: list[int] = []
        self.unreadable_count = 0

    def add(self, earner: Earner) -> None:
        self.rows += 1
        self.payouts += earner.payouts
        self.gross += earner.gross
        self.tax += earner.tax
        self.net += earner.net
        if earner.member_id <= self.last_member:  # rows come in member order: a repeat is a duplicate
            self.duplicate_count += 1
            if len(self.duplicates) < LISTED_MAX:
                self.duplicates.append(earner.member_id)
        self.last_member = max(self.last_member, earner.member_id)
        if earner.identity_error == "none":
            self.without_identity_count += 1
            if len(self.without_identity) < LISTED_MAX:
                self.without_identity.append(earner.member_id)
        elif earner.identity_error == "unreadable":
            self.unreadable_count += 1
            if len(self.unreadable) < LISTED_MAX:
                self.unreadable.append(earner.member_id)

    def check(self, ledger: dict, withdrawals: dict | None) -> dict:
        report = {
            "rows": self.rows,
            "payouts": self.payouts,
            "gross": str(self.gross),
            "tax": str(self.tax),
            "net": str(self.net),
        }
        missing = max(ledger["earners"] - (self.rows - self.duplicate_count), 0)
        passed = (
            missing == 0
            and self.duplicate_count == 0
            and self.without_identity_count == 0
            and self.unreadable_count == 0
            and all(report[key] == ledger[key] for key in ("payouts", "gross", "tax", "net"))
        )
        result = {
            "ledger": ledger,
            "report": report,
            "missing": missing,
            "duplicates": {"count": self.duplicate_count, "members": self.duplicates},
            "without_identity": {"count": self.without_identity_count, "members": self.without_identity},
            "unreadable_identity": {"count": self.unreadable_count, "members": self.unreadable},
        }
        if withdrawals is not None:
            result["withdrawals"] = withdrawals
            passed = passed and withdrawals["amount"] == ledger["gross"] and withdrawals["not_sent"] == 0
            passed = passed and withdrawals["count"] == ledger["payouts"]
        result["passed"] = passed
        return result


# --- Generating ------------------------------------------------------------------------------------------------


class _CsvOut:
    """CSV text (UTF-8 with a BOM, which Excel and WPS need to read Chinese) into a piece writer."""

    def __init__(self, pieces: PieceWriter):
        self._encoder = codecs.getincrementalencoder("utf-8")()
        self._pieces = pieces
        self._buffer: list[str] = []
        self._length = 0
        self.writer = csv.writer(self)
        pieces.sink.write(codecs.BOM_UTF8)

    def write(self, text: str) -> None:
        self._buffer.append(text)
        self._length += len(text)
        if self._length > 256 * 1024:
            self._drain()

    def _drain(self) -> None:
        self._pieces.sink.write(self._encoder.encode("".join(self._buffer)))
        self._buffer, self._length = [], 0

    def close(self) -> None:
        self._drain()
        self._pieces.sink.close()


def _csv_cells(row: list, name_column: int) -> list:
    """The row for the CSV: the name (a member's or a company's, typed by people) made formula-safe; the other
    text cells are ours (ID numbers were checked against their standard, labels are constants)."""
    row[name_column] = spreadsheet_safe(row[name_column])
    return row


def tax_report_generate(*, report_id: int) -> TaxReport | None:
    """Generate the report's files and its check. Safe to run twice or at once: only the run that took the lease
    writes, and its files replace the earlier ones only when it finished still holding the lease
    (staff.file_jobs). Any error is recorded on the report (failed, with the reason) and logged, never raised.
    Returns the report."""
    return file_job_run(JOB, report_id, _generated)


def _generated(report: TaxReport, run: int, mine) -> tuple[dict, dict]:
    check, xlsx, csv_file = _write(report, run, mine)
    fields = {
        "check_result": check,
        "is_check_passed": check["passed"],
        "rows_done": check["report"]["rows"],
        "xlsx_sha256": xlsx.sha256.hexdigest(),
        "csv_sha256": csv_file.sha256.hexdigest(),
    }
    detail = {
        "passed": check["passed"],
        "rows": check["report"]["rows"],
        "gross": check["report"]["gross"],
        "tax": check["report"]["tax"],
        "net": check["report"]["net"],
        "xlsx_sha256": fields["xlsx_sha256"],
        "csv_sha256": fields["csv_sha256"],
    }
    return fields, detail


def _write(report: TaxReport, run: int, mine) -> tuple[dict, PieceWriter, PieceWriter]:
    period = period_of(report)
    quarterly = report.kind == Kind.QUARTERLY
    columns = QUARTERLY_COLUMNS if quarterly else MONTHLY_COLUMNS
    header = [column.heading for column in columns]
    name_column = header.index("姓名（名称）")
    ledger = ledger_totals(period)
    mine.update(rows_total=ledger["earners"])
    xlsx, csv_pieces = PieceWriter(JOB, report, run, format="xlsx"), PieceWriter(JOB, report, run, format="csv")
    workbook = XlsxStreamWriter(xlsx.sink, max_rows=SHEET_ROWS)
    sheet_name = "收入信息" if quarterly else "扣缴明细"
    workbook.sheet(sheet_name, header)
    csv_out = _CsvOut(csv_pieces)
    csv_out.writer.writerow(header)
    tally = _Tally()
    noted = 0
    for chunk in _earners(period):
        if quarterly:
            rows = [_quarterly_row(tally.rows + offset + 1, earner, period) for offset, earner in enumerate(chunk)]
        else:
            rows = _monthly_rows(chunk, tally.rows + 1)
        for earner, row in zip(chunk, rows, strict=True):
            tally.add(earner)
            workbook.append(row)
            csv_out.writer.writerow(_csv_cells(row, name_column))
        if tally.rows - noted >= PROGRESS_EVERY:
            mine.update(rows_done=tally.rows)
            noted = tally.rows
    mine.update(rows_done=tally.rows)
    # The ledger read again after the rows: a payout voided while the report was written shows as a difference.
    check = tally.check(ledger_totals(period), None if quarterly else withdrawals_totals(period))
    workbook.sheet("合计", ["项目", "报表", "账本"])
    for label, key in (("人数", "rows"), ("支付笔数", "payouts"), ("收入总额", "gross"), ("已扣缴税额", "tax"),
                       ("实际支付金额", "net")):  # fmt: skip
        ledger_key = "earners" if key == "rows" else key
        workbook.append([label, _figure(check["report"][key]), _figure(check["ledger"][ledger_key])])
    workbook.append(["核对结果", "通过" if check["passed"] else "未通过", ""])
    workbook.close()
    csv_out.close()
    xlsx.sink.close()
    return check, xlsx, csv_pieces


def _figure(value):
    return Decimal(value) if isinstance(value, str) else value


# --- Reading the files back (the download) ---------------------------------------------------------------------


def tax_report_may_download(user) -> bool:
    return bool(
        user
        and user.is_active
        and user.is_staff
        and user.has_perm(FULL_READ_PERMISSION)
        and user.has_perm(DOWNLOAD_PERMISSION)
    )


def tax_report_download(*, report: TaxReport, file_format: str, actor) -> Iterable[bytes]:
    """The report's file in clear, piece by piece, for staff holding both permissions; records the download (who,
    which file, its SHA-256) before the first byte. Raises PermissionDenied for anyone else (nothing recorded)."""
    if not tax_report_may_download(actor):
        raise PermissionDenied(_("Only finance staff may download the tax reports."))
    TaxReportEvent.objects.create(
        report=report,
        kind=TaxReportEvent.Kind.DOWNLOADED,
        actor=actor,
        detail={
            "format": file_format,
            "run": report.generation,
            "sha256": report.xlsx_sha256 if file_format == "xlsx" else report.csv_sha256,
            "rows": report.rows_done,
        },
    )
    return pieces_stream(JOB, report, format=file_format)
