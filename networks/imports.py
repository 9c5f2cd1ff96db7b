"""Import of the order-report files that 淘宝联盟 and 京东联盟 let operators export (CSV or XLSX).

`parse_report_file(network, filename, content)` returns every line of the file as a ReportedOrder, or raises
ImportRefused(row_number, reason) for the first row it cannot take: a file is taken whole or not at all. Column
names, status values and where they come from are in docs/networks-formats.md.

Row numbers are the spreadsheet's: the header is row 1 in a plain export, the first order row 2.
Times in the files are China time (UTC+8) and come back aware, in UTC. Money is Decimal, at most 2 decimals.
"""

import csv
import io
import re
import zipfile
from collections.abc import Callable, Iterator
from contextlib import closing
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, time, timedelta, timezone
from decimal import Decimal, InvalidOperation
from itertools import chain, islice

from django.conf import settings
from django.utils.translation import gettext as _
from django.utils.translation import gettext_noop

from networks.connectors.base import OrderStatus, ReportedOrder

CHINA = timezone(timedelta(hours=8), "CST")
CENT = Decimal("0.01")
MAX_ID_LENGTH = 128  # order, line, product and tracking ids (networks.models.ID_LENGTH)
HEADER_SEARCH_ROWS = 10  # some exports put a title line or two above the header
# An XLSX is a zip of a dozen parts; thousands of members are an attack on the zip reader, not a report.
XLSX_MAX_MEMBERS = 1000
PROGRESS_EVERY = 1000  # rows between two progress reports
EXACT_FLOAT_DIGITS = 2**53  # beyond this a number cell has lost digits of an id

NETWORKS = ("taobao", "jd")


class ImportRefused(Exception):
    """The file is refused whole: `row_number` (1 = the header) and a reason for people."""

    def __init__(self, row_number: int, reason: str):
        super().__init__(row_number, reason)
        self.row_number = row_number
        self.reason = reason

    @property
    def row(self) -> int:
        return self.row_number

    def __str__(self) -> str:
        return _("Row %(row)s: %(reason)s") % {"row": self.row_number, "reason": self.reason}


@dataclass(frozen=True)
class _Field:
    aliases: tuple[str, ...]  # header names as the network writes them, preferred first
    required: bool = False


# Header names are compared after _normalise_header: case, spaces and a unit suffix like "(元)" do not matter.
TAOBAO_FIELDS = {
    # 淘宝父订单编号 (trade_parent_id) in the current export; the 2017–2019 export had one 订单编号 column.
    "order_id": _Field(("淘宝父订单编号", "淘宝父订单号", "父订单编号", "订单编号", "订单号"), required=True),
    "line_id": _Field(("淘宝子订单编号", "淘宝子订单号", "子订单编号", "子订单号")),
    "product_id": _Field(("商品ID", "商品编号"), required=True),
    "title": _Field(("商品信息", "商品标题", "商品名称")),
    "quantity": _Field(("商品数", "商品数量", "成交商品数"), required=True),
    "paid_amount": _Field(("付款金额", "实际支付金额"), required=True),
    "status": _Field(("订单状态", "淘客订单状态"), required=True),
    "created_at": _Field(("创建时间", "订单创建时间")),
    "paid_at": _Field(("付款时间", "淘客付款时间", "淘宝付款时间")),
    "confirmed_at": _Field(("确认收货时间",)),
    "settled_at": _Field(("结算时间", "淘客结算时间")),
    "estimate": _Field(("付款预估收入", "效果预估"), required=True),
    "actual": _Field(("结算预估收入", "预估收入")),
    "tracking_id": _Field(("推广位ID", "广告位ID"), required=True),
}

JD_FIELDS = {
    "order_id": _Field(("订单号", "订单编号", "订单ID", "子单号"), required=True),
    "parent_id": _Field(("父单号", "父订单号", "父单ID")),
    "product_id": _Field(("商品ID", "SKUID", "SKU", "skuId", "商品编号"), required=True),
    "title": _Field(("商品名称", "商品名", "SKU名称")),
    "quantity": _Field(("商品数量", "商品数", "skuNum"), required=True),
    # 预估计佣金额 (estimateCosPrice): what the buyer paid for the line, as JD counts it for commission
    "paid_amount": _Field(("预估计佣金额", "计佣金额", "付款金额", "实际计佣金额"), required=True),
    "estimate": _Field(("预估佣金", "预估收入", "estimateFee"), required=True),
    "actual": _Field(("实际佣金", "实际收入", "actualFee")),
    "status": _Field(("订单状态", "有效码", "状态", "validCode"), required=True),
    "paid_at": _Field(("下单时间", "付款时间", "orderTime"), required=True),
    "confirmed_at": _Field(("完成时间", "finishTime")),
    "settled_at": _Field(("结算时间", "预估结算时间", "payMonth")),
    "tracking_id": _Field(("推广位ID", "positionId"), required=True),
}

TAOBAO_STATUS = {
    "12": OrderStatus.PAID,
    "订单付款": OrderStatus.PAID,
    "已付款": OrderStatus.PAID,
    "付款": OrderStatus.PAID,
    "14": OrderStatus.CONFIRMED,
    "订单成功": OrderStatus.CONFIRMED,
    "订单收货": OrderStatus.CONFIRMED,
    "订单收货成功": OrderStatus.CONFIRMED,
    "已收货": OrderStatus.CONFIRMED,
    "确认收货": OrderStatus.CONFIRMED,
    "3": OrderStatus.SETTLED,
    "订单结算": OrderStatus.SETTLED,
    "已结算": OrderStatus.SETTLED,
    "结算成功": OrderStatus.SETTLED,
    "13": OrderStatus.INVALID,
    "订单失效": OrderStatus.INVALID,
    "已失效": OrderStatus.INVALID,
    "订单关闭": OrderStatus.INVALID,
    "已关闭": OrderStatus.INVALID,
}

# 京东联盟 validCode: 15 待付款, 16 已付款, 17 已完成, 18 已结算 (no longer written since 2019-05-09: a 17 line
# with a settlement date in the past is settled), every other documented code is "无效-…" (invalid).
JD_UNPAID = "unpaid"
JD_CODES = {15: JD_UNPAID, 16: OrderStatus.PAID, 17: OrderStatus.CONFIRMED, 18: OrderStatus.SETTLED}
JD_INVALID_CODES = frozenset([*range(2, 15), 19, 20, 21, 22])
JD_TEXTS = {
    "待付款": JD_UNPAID,
    "已付款": OrderStatus.PAID,
    "已完成": OrderStatus.CONFIRMED,
    "已结算": OrderStatus.SETTLED,
}

_EMPTY = {"", "--", "-", "—", "null", "none", "nan"}
_UNIT_SUFFIX = re.compile(r"[(（][^)）]*[)）]$")
_MONEY = re.compile(r"^\d+(\.\d+)?$|^\d{1,3}(,\d{3})+(\.\d+)?$")
_TIME_FORMATS = (
    "%Y-%m-%d %H:%M:%S",
    "%Y-%m-%d %H:%M",
    "%Y/%m/%d %H:%M:%S",
    "%Y/%m/%d %H:%M",
    "%Y-%m-%dT%H:%M:%S",
    "%Y-%m-%d",
    "%Y/%m/%d",
    "%Y%m%d",
)


def parse_report_file(
    network: str,
    filename: str,
    content: bytes,
    *,
    now: datetime | None = None,
    progress: Callable[[int], None] | None = None,
) -> list[ReportedOrder]:
    """Every order line of an exported report, or ImportRefused for the first row that cannot be taken.

    `network` is "taobao" (淘宝联盟) or "jd" (京东联盟); the format (XLSX or CSV in UTF-8, UTF-8 with BOM, UTF-16 or
    GB18030/GBK) is detected from the content, not the name. `now` (default: the current time) decides whether a
    京东联盟 line "已完成" with a settlement date is settled yet. 京东联盟 lines 待付款 (not paid: no commission
    yet) are left out; they come back as 已付款 in a later export. `progress`, if given, is called with the
    number of rows read so far every PROGRESS_EVERY rows.

    Bounded (settings NETWORK_IMPORT_MAX_*): the file's size, what an XLSX unpacks to (read from the zip's
    directory before anything is decompressed, `report_file_check`), the rows and the cells read. A file over a
    bound, or damaged anywhere, is refused (ImportRefused), never an exception of the parsers.
    """
    if network not in NETWORKS:
        raise ValueError(f"unknown network {network!r}; expected one of {NETWORKS}")
    report_file_check(content)
    with closing(_read_rows(filename, content)) as rows:
        return _parse_rows(network, rows, now=now, progress=progress)


def _parse_rows(network: str, rows: Iterator, *, now: datetime | None, progress) -> list[ReportedOrder]:
    head = list(islice(rows, HEADER_SEARCH_ROWS))
    fields = TAOBAO_FIELDS if network == "taobao" else JD_FIELDS
    header_number, columns, headers = _find_header(head, fields)
    header_text = dict(headers)
    labels = {
        key: header_text.get(columns[key], spec.aliases[0]) if key in columns else spec.aliases[0]
        for key, spec in fields.items()
    }
    today = (now or datetime.now(UTC)).astimezone(CHINA).date()
    orders: list[ReportedOrder] = []
    seen: dict[tuple[str, str], int] = {}
    number = 0
    for number, cells in chain(head, rows):
        if progress is not None and number % PROGRESS_EVERY == 0:
            progress(number)
        if number <= header_number or _blank(cells):
            continue
        if len(orders) >= settings.NETWORK_IMPORT_MAX_ROWS:
            raise _too_many_rows(number)
        row = _Row(number, cells, columns, labels)
        order = _taobao_line(row) if network == "taobao" else _jd_line(row, today)
        if order is None:
            continue
        key = (order.external_order_id, order.line_id)
        if key in seen:
            raise ImportRefused(
                number,
                _("Order %(order)s line %(line)s is already in row %(row)s.")
                % {"order": key[0], "line": key[1], "row": seen[key]},
            )
        seen[key] = number
        raw = {header: _raw_text(cells[index] if index < len(cells) else None) for index, header in headers}
        orders.append(_with_raw(order, raw))
    if progress is not None:
        progress(number)  # every row read
    return orders


# --- reading the file ------------------------------------------------------------------------------------------


def _mb(size: int) -> str:
    return f"{size / (1024 * 1024):.0f}"


UNREADABLE_XLSX = gettext_noop("This file is not a readable XLSX workbook.")


def report_file_check(content: bytes) -> None:
    """Refuse (ImportRefused, row 1) a file larger than NETWORK_IMPORT_MAX_BYTES, or an XLSX whose zip is damaged,
    encrypted, has too many parts, or would unpack to more than NETWORK_IMPORT_MAX_UNCOMPRESSED_BYTES.

    Reads only the zip's directory: nothing is decompressed, so a zip bomb costs what its directory costs (cheap
    enough for the upload request). The sizes it declares are what the reader may unpack: Python's zipfile stops a
    member at its declared size (and then fails its checksum), whatever the compressed stream holds.
    """
    max_bytes = settings.NETWORK_IMPORT_MAX_BYTES
    if len(content) > max_bytes:
        raise ImportRefused(1, _("The file is larger than %(size)s MB.") % {"size": _mb(max_bytes)})
    if not content.startswith(b"PK\x03\x04"):
        return
    try:
        with zipfile.ZipFile(io.BytesIO(content)) as archive:
            members = archive.infolist()
    except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, OSError, EOFError, NotImplementedError):
        raise ImportRefused(1, _(UNREADABLE_XLSX)) from None
    if len(members) > XLSX_MAX_MEMBERS or any(
        member.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED) for member in members
    ):
        raise ImportRefused(1, _(UNREADABLE_XLSX))
    if any(member.flag_bits & 0x1 for member in members):
        raise ImportRefused(1, _("The workbook is protected with a password: save it without one."))
    unpacked, limit = sum(member.file_size for member in members), settings.NETWORK_IMPORT_MAX_UNCOMPRESSED_BYTES
    if unpacked > limit:
        raise ImportRefused(
            1,
            _(
                "The workbook would unpack to %(size)s MB, more than the %(max)s MB an import may: it is not an "
                "order report, or too large for one import (export a shorter period)."
            )
            % {"size": _mb(unpacked), "max": _mb(limit)},
        )


def _too_many_rows(number: int) -> ImportRefused:
    return ImportRefused(
        number, _("Too many rows: at most %(max)s per file.") % {"max": settings.NETWORK_IMPORT_MAX_ROWS}
    )


def _bounded(rows: Iterator[tuple[int, list]]) -> Iterator[tuple[int, list]]:
    """The rows, refused once there are more than NETWORK_IMPORT_MAX_ROWS (and the header's) or more cells than
    NETWORK_IMPORT_MAX_CELLS in all (blank ones included: an XLSX's rows are as wide as its declared dimension)."""
    max_rows, max_cells = settings.NETWORK_IMPORT_MAX_ROWS, settings.NETWORK_IMPORT_MAX_CELLS
    cells = 0
    with closing(rows):
        for number, values in rows:
            if number > max_rows + HEADER_SEARCH_ROWS + 1:
                raise _too_many_rows(number)
            cells += len(values)
            if cells > max_cells:
                raise ImportRefused(
                    number,
                    _("Too many cells: at most %(max)s per file (rows × columns, blank ones included).")
                    % {"max": max_cells},
                )
            yield number, values


def _read_rows(filename: str, content: bytes) -> Iterator[tuple[int, list]]:
    if content.startswith(b"PK\x03\x04"):
        return _bounded(_xlsx_rows(content))
    if content.startswith(b"\xd0\xcf\x11\xe0"):
        raise ImportRefused(1, _("This is an old Excel .xls file: open it and save it as .xlsx or .csv."))
    return _bounded(_csv_rows(content))


def _xlsx_rows(content: bytes) -> Iterator[tuple[int, list]]:
    # Imported here: the import module loads without openpyxl; only an XLSX upload needs it.
    from openpyxl import load_workbook

    # openpyxl parses the workbook's XML parts as it meets them, with defusedxml (no entity expansion). A damaged
    # part can raise almost anything from its parsers (ParseError, KeyError, ValueError, TypeError, zlib and zip
    # errors, …), when the workbook is opened or at any row: every one of them means the file cannot be read.
    try:
        workbook = load_workbook(io.BytesIO(content), read_only=True, data_only=True)
    except Exception:
        raise ImportRefused(1, _(UNREADABLE_XLSX)) from None
    try:
        if not workbook.worksheets:
            raise ImportRefused(1, _("The workbook has no sheet."))
        rows = workbook.worksheets[0].iter_rows(values_only=True)
        number = 0
        while True:
            try:
                values = next(rows, None)
            except Exception:
                raise ImportRefused(number + 1, _("The workbook is damaged here: this row cannot be read.")) from None
            if values is None:
                return
            number += 1
            yield number, list(values)
    finally:
        workbook.close()


def _decode(content: bytes) -> str:
    if content.startswith(b"\xef\xbb\xbf"):
        return content[3:].decode("utf-8", errors="strict")
    if content.startswith((b"\xff\xfe", b"\xfe\xff")):  # 淘宝联盟's older CSV exports were UTF-16
        return content.decode("utf-16")
    for encoding in ("utf-8", "gb18030"):  # GB18030 is a superset of GBK and GB2312 (Chinese Excel's CSV)
        try:
            return content.decode(encoding)
        except UnicodeDecodeError:
            continue
    raise ImportRefused(1, _("Cannot read the file: not XLSX, nor CSV in UTF-8, UTF-16 or GBK/GB18030."))


def _csv_rows(content: bytes) -> Iterator[tuple[int, list]]:
    try:
        text = _decode(content)
    except UnicodeDecodeError:
        raise ImportRefused(1, _("Cannot read the file: not XLSX, nor CSV in UTF-8, UTF-16 or GBK/GB18030.")) from None
    first_line = text.split("\n", 1)[0]
    delimiter = "\t" if first_line.count("\t") > first_line.count(",") else ","
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    try:
        yield from enumerate(reader, start=1)
    except csv.Error as error:
        raise ImportRefused(reader.line_num, _("Not valid CSV: %(error)s") % {"error": error}) from None


def _normalise_header(value) -> str:
    text = str(value or "").replace("\ufeff", "").strip().strip('"').strip()
    text = _UNIT_SUFFIX.sub("", text)
    return re.sub(r"\s+", "", text).casefold()


def _find_header(rows, fields: dict[str, _Field]) -> tuple[int, dict[str, int], list[tuple[int, str]]]:
    """The header row (the first of the top rows naming an order-id column) and where each field is."""
    order_aliases = {_normalise_header(alias) for alias in fields["order_id"].aliases}
    for number, cells in rows[:HEADER_SEARCH_ROWS]:
        names = [_normalise_header(cell) for cell in cells]
        if not order_aliases.intersection(names):
            continue
        columns: dict[str, int] = {}
        missing = []
        for key, spec in fields.items():
            for alias in spec.aliases:
                if _normalise_header(alias) in names:
                    columns[key] = names.index(_normalise_header(alias))
                    break
            else:
                if spec.required:
                    missing.append(" / ".join(spec.aliases[:3]))
        if "created_at" in fields and "paid_at" not in columns and "created_at" not in columns:
            missing.append(" / ".join(fields["paid_at"].aliases[:2]))
        if missing:
            raise ImportRefused(number, _("Missing required column(s): %(columns)s.") % {"columns": "; ".join(missing)})
        headers = [(index, str(cell).replace("\ufeff", "").strip()) for index, cell in enumerate(cells) if cell]
        return number, columns, headers
    names = " / ".join(fields["order_id"].aliases[:3])
    raise ImportRefused(
        1, _("No header row found: the first rows name no order number column (%(names)s).") % {"names": names}
    )


def _blank(cells: list) -> bool:
    return all(cell is None or str(cell).strip() == "" for cell in cells)


def _raw_text(value) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime | date):
        return value.isoformat()
    return str(value).strip()


# --- one row ---------------------------------------------------------------------------------------------------


class _Row:
    def __init__(self, number: int, cells: list, columns: dict[str, int], labels: dict[str, str]):
        self.number = number
        self.cells = cells
        self.columns = columns
        self.labels = labels

    def label(self, key: str) -> str:
        """The column's name as this file writes it, for reasons people can find in their spreadsheet."""
        return self.labels[key]

    def has(self, key: str) -> bool:
        return key in self.columns

    def value(self, key: str):
        index = self.columns.get(key)
        if index is None or index >= len(self.cells):
            return None
        value = self.cells[index]
        if isinstance(value, str):
            value = _unwrap(value)
            return None if value.casefold() in _EMPTY else value
        return value

    def refuse(self, reason: str) -> ImportRefused:
        return ImportRefused(self.number, reason)

    def identifier(self, key: str, label: str, *, required: bool = True) -> str:
        value = self.value(key)
        if value is None:
            if required:
                raise self.refuse(_("%(column)s is empty.") % {"column": label})
            return ""
        if isinstance(value, bool):
            raise self.refuse(_("%(column)s is not an id: %(value)s.") % {"column": label, "value": value})
        if isinstance(value, float):
            if not value.is_integer() or abs(value) >= EXACT_FLOAT_DIGITS:
                raise self.refuse(
                    _("%(column)s %(value)s was stored as a number and lost digits: format the column as text.")
                    % {"column": label, "value": value}
                )
            return str(int(value))
        text = str(value)
        if len(text) > MAX_ID_LENGTH:
            raise self.refuse(
                _("%(column)s is longer than %(max)d characters.") % {"column": label, "max": MAX_ID_LENGTH}
            )
        if re.fullmatch(r"[\d.]+[eE]\+?\d+", text):
            raise self.refuse(
                _("%(column)s %(value)s is in scientific notation and lost digits: format the column as text.")
                % {"column": label, "value": text}
            )
        return text

    def quantity(self, label: str) -> int:
        value = self.value("quantity")
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        text = "" if value is None else str(value)
        if not re.fullmatch(r"\d{1,6}", text) or int(text) < 1:
            raise self.refuse(
                _("%(column)s is not a whole number of items: %(value)s.") % {"column": label, "value": text}
            )
        return int(text)

    def money(self, key: str, label: str, *, required: bool = True) -> Decimal | None:
        value = self.value(key)
        if value is None:
            if required:
                raise self.refuse(_("%(column)s is empty.") % {"column": label})
            return None
        if isinstance(value, bool):
            raise self.refuse(_("%(column)s is not an amount: %(value)s.") % {"column": label, "value": value})
        # A number cell comes as int or float: str() gives the shortest text that reads back as the same float,
        # i.e. what Excel shows, so 0.1 stays "0.1" and not 0.1000000000000000055….
        text = str(value).strip().lstrip("¥￥").removesuffix("元").strip()
        if not _MONEY.match(text):
            raise self.refuse(_("%(column)s is not an amount: %(value)s.") % {"column": label, "value": value})
        try:
            amount = Decimal(text.replace(",", ""))
        except InvalidOperation:
            raise self.refuse(
                _("%(column)s is not an amount: %(value)s.") % {"column": label, "value": value}
            ) from None
        if amount != amount.quantize(CENT):
            raise self.refuse(_("%(column)s has more than 2 decimals: %(value)s.") % {"column": label, "value": value})
        return amount.quantize(CENT)

    def moment(self, key: str, label: str, *, required: bool = False) -> datetime | None:
        value = self.value(key)
        if value is None or (isinstance(value, str) and value == "0") or (isinstance(value, int) and value == 0):
            if required:
                raise self.refuse(_("%(column)s is empty.") % {"column": label})
            return None
        if isinstance(value, datetime):
            moment = value
        elif isinstance(value, date):
            moment = datetime.combine(value, time())
        else:
            moment = _parse_time(str(value))
            if moment is None:
                raise self.refuse(
                    _("%(column)s is not a date and time (YYYY-MM-DD HH:MM:SS): %(value)s.")
                    % {"column": label, "value": value}
                )
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=CHINA)
        return moment.astimezone(UTC)


def _unwrap(text: str) -> str:
    """Strip what exports wrap cells in to keep Excel from mangling them: tabs, ="…", a leading apostrophe."""
    text = text.strip().strip("\t").strip()
    if text.startswith('="') and text.endswith('"'):
        text = text[2:-1]
    return text.removeprefix("'").strip()


def _parse_time(text: str) -> datetime | None:
    text = text.strip()
    if re.fullmatch(r"\d+\.0", text):  # 20240115.0: a yyyyMMdd date that went through a number cell
        text = text[:-2]
    for fmt in _TIME_FORMATS:
        try:
            return datetime.strptime(text, fmt)
        except ValueError:
            continue
    return None


def _taobao_line(row: _Row) -> ReportedOrder:
    label = row.label
    text = str(row.value("status") or "").replace(" ", "").replace("（", "(").replace("）", ")")
    status = TAOBAO_STATUS.get(text) or TAOBAO_STATUS.get(text.replace("(", "").replace(")", ""))
    if status is None:
        raise row.refuse(_("Unknown order status %(value)s.") % {"value": text or "(empty)"})
    order_id = row.identifier("order_id", label("order_id"))
    product_id = row.identifier("product_id", label("product_id"))
    # The 2017–2019 export has no sub-order column: a line there is one product of the order.
    line_id = row.identifier("line_id", label("line_id"), required=False) or product_id
    tracking_id = row.identifier("tracking_id", label("tracking_id"))
    created_at = row.moment("created_at", label("created_at"))
    paid_at = row.moment("paid_at", label("paid_at")) or created_at
    if paid_at is None:
        raise row.refuse(_("%(column)s is empty.") % {"column": label("paid_at")})
    settled_at = row.moment("settled_at", label("settled_at"))
    estimate = row.money("estimate", label("estimate"))
    actual = row.money("actual", label("actual"), required=False)
    if status == OrderStatus.SETTLED:
        if actual is None:
            raise row.refuse(_("A settled line needs %(column)s.") % {"column": label("actual")})
        if settled_at is None:
            raise row.refuse(_("A settled line needs %(column)s.") % {"column": label("settled_at")})
        commission = actual
    elif status == OrderStatus.INVALID:
        commission = Decimal("0.00")  # the network pays nothing for an invalid line, whatever it estimated
    else:
        commission = estimate
        settled_at = None
    # The export has no "last changed" column: the line changed last at the latest time it names.
    times = [created_at, paid_at, row.moment("confirmed_at", label("confirmed_at")), settled_at]
    updated_at = max(moment for moment in times if moment)
    if status == OrderStatus.INVALID:
        settled_at = None  # refunded after settlement: no longer settled
    return ReportedOrder(
        external_order_id=order_id,
        line_id=line_id,
        tracking_id=tracking_id,
        product_id=product_id,
        title=str(row.value("title") or ""),
        quantity=row.quantity(label("quantity")),
        paid_amount=row.money("paid_amount", label("paid_amount")),
        commission=commission,
        status=status,
        paid_at=paid_at,
        updated_at=updated_at,
        settled_at=settled_at,
    )


def _jd_status(row: _Row) -> str:
    value = row.value("status")
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    text = str(value or "").strip()
    code = int(text) if re.fullmatch(r"-?\d{1,3}", text) else None
    if code is not None:
        if code in JD_CODES:
            return JD_CODES[code]
        if code in JD_INVALID_CODES:
            return OrderStatus.INVALID
    elif text in JD_TEXTS:
        return JD_TEXTS[text]
    elif text.startswith("无效"):
        return OrderStatus.INVALID
    raise row.refuse(_("Unknown order status %(value)s.") % {"value": text or "(empty)"})


def _jd_line(row: _Row, today: date) -> ReportedOrder | None:
    label = row.label
    status = _jd_status(row)
    if status == JD_UNPAID:
        return None
    order_id = row.identifier("order_id", label("order_id"))
    product_id = row.identifier("product_id", label("product_id"))
    tracking_id = row.identifier("tracking_id", label("tracking_id"))
    if tracking_id == "0":
        raise row.refuse(
            _("%(column)s is 0: the order came through no promotion position.") % {"column": label("tracking_id")}
        )
    paid_at = row.moment("paid_at", label("paid_at"), required=True)
    confirmed_at = row.moment("confirmed_at", label("confirmed_at"))
    settled_at = row.moment("settled_at", label("settled_at"))
    if status == OrderStatus.CONFIRMED and settled_at is not None and settled_at.astimezone(CHINA).date() <= today:
        status = OrderStatus.SETTLED  # JD stopped writing validCode 18: a past settlement date means settled
    estimate = row.money("estimate", label("estimate"))
    actual = row.money("actual", label("actual"), required=False)
    if status == OrderStatus.SETTLED:
        if actual is None:
            raise row.refuse(_("A settled line needs %(column)s.") % {"column": label("actual")})
        if settled_at is None:
            raise row.refuse(_("A settled line needs %(column)s.") % {"column": label("settled_at")})
        commission = actual
    else:
        commission = Decimal("0.00") if status == OrderStatus.INVALID else estimate
    # The export has no "last changed" column: the line changed last at the latest time it names, settlement
    # included (a line refunded after settlement names it), before an invalid line's settlement is dropped.
    times = [moment for moment in (paid_at, confirmed_at, settled_at) if moment]
    if status != OrderStatus.SETTLED:
        settled_at = None
    return ReportedOrder(
        external_order_id=order_id,
        line_id=product_id,  # 京东联盟's order line is order + SKU
        tracking_id=tracking_id,
        product_id=product_id,
        title=str(row.value("title") or ""),
        quantity=row.quantity(label("quantity")),
        paid_amount=row.money("paid_amount", label("paid_amount")),
        commission=commission,
        status=status,
        paid_at=paid_at,
        updated_at=max(times),
        settled_at=settled_at,
    )


def _with_raw(order: ReportedOrder, raw: dict) -> ReportedOrder:
    return replace(order, raw=raw)
