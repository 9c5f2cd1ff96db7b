"""Import of 淘宝联盟 / 京东联盟 order-report files: whole files in, or refused with the row and the reason."""

import csv
import io
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
from openpyxl import Workbook

from networks.connectors.base import OrderStatus
from networks.imports import ImportRefused, parse_report_file

TAOBAO_HEADER = [
    "创建时间",
    "点击时间",
    "商品信息",
    "商品ID",
    "掌柜旺旺",
    "所属店铺",
    "商品数",
    "商品单价",
    "订单状态",
    "订单类型",
    "收入比率",
    "分成比率",
    "付款金额",
    "付款预估收入",
    "结算金额",
    "结算预估收入",
    "结算时间",
    "佣金比率",
    "佣金金额",
    "淘宝父订单编号",
    "淘宝子订单编号",
    "推广位ID",
    "推广位名称",
    "付款时间",
]


def _taobao_row(**changes):
    row = {
        "创建时间": "2026-01-05 10:00:00",
        "点击时间": "2026-01-05 09:58:00",
        "商品信息": "小米 便携保温杯",
        "商品ID": "620000000001",
        "掌柜旺旺": "xiaomi",
        "所属店铺": "小米官方旗舰店",
        "商品数": "1",
        "商品单价": "59.90",
        "订单状态": "已付款",
        "订单类型": "天猫",
        "收入比率": "10.00 %",
        "分成比率": "100.00 %",
        "付款金额": "59.90",
        "付款预估收入": "5.99",
        "结算金额": "0.00",
        "结算预估收入": "0.00",
        "结算时间": "--",
        "佣金比率": "10.00 %",
        "佣金金额": "0.00",
        "淘宝父订单编号": "1867000000000000001",
        "淘宝子订单编号": "1867000000000000002",
        "推广位ID": "110732600234",
        "推广位名称": "member-17",
        "付款时间": "2026-01-05 10:00:05",
    }
    row.update(changes)
    return row


def _csv(rows, header=TAOBAO_HEADER, delimiter=","):
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter=delimiter)
    writer.writerow(header)
    writer.writerows([row.get(name, "") for name in header] for row in rows)
    return buffer.getvalue()


def _taobao_file(rows=None, **kwargs):
    return _csv(rows if rows is not None else [_taobao_row()], **kwargs).encode("utf-8")


def _refusal(network, content, filename="report.csv", **kwargs):
    with pytest.raises(ImportRefused) as refused:
        parse_report_file(network, filename, content, **kwargs)
    return refused.value


def test_a_good_taobao_csv_is_read_line_by_line():
    rows = [
        _taobao_row(),
        _taobao_row(
            **{
                "淘宝子订单编号": "1867000000000000003",
                "订单状态": "已结算",
                "商品数": "2",
                "付款金额": "119.80",
                "付款预估收入": "11.98",
                "结算预估收入": "10.50",
                "结算时间": "2026-01-20 08:00:00",
            }
        ),
        _taobao_row(**{"淘宝子订单编号": "1867000000000000004", "订单状态": "已收货"}),
        _taobao_row(**{"淘宝子订单编号": "1867000000000000005", "订单状态": "已失效"}),
    ]

    paid, settled, confirmed, invalid = parse_report_file("taobao", "订单明细.csv", _taobao_file(rows))

    assert paid.external_order_id == "1867000000000000001"
    assert paid.line_id == "1867000000000000002"
    assert paid.tracking_id == "110732600234"
    assert paid.product_id == "620000000001"
    assert paid.title == "小米 便携保温杯"
    assert paid.quantity == 1
    assert paid.paid_amount == Decimal("59.90")
    assert paid.commission == Decimal("5.99")
    assert paid.status == OrderStatus.PAID
    assert paid.paid_at == datetime(2026, 1, 5, 2, 0, 5, tzinfo=UTC)  # China time in the file
    assert paid.updated_at == paid.paid_at
    assert paid.settled_at is None
    assert paid.raw["推广位名称"] == "member-17"
    assert settled.status == OrderStatus.SETTLED
    assert settled.commission == Decimal("10.50")  # the actual, not the estimate
    assert settled.quantity == 2
    assert settled.settled_at == datetime(2026, 1, 20, 0, 0, tzinfo=UTC)
    assert settled.updated_at == settled.settled_at
    assert confirmed.status == OrderStatus.CONFIRMED
    assert confirmed.commission == Decimal("5.99")
    assert invalid.status == OrderStatus.INVALID
    assert invalid.commission == Decimal("0.00")


def test_the_older_taobao_export_with_its_own_column_names_and_status_words():
    header = ["创建时间", "商品信息", "商品ID", "商品数", "订单状态", "付款金额", "效果预估", "预估收入", "结算时间"]
    header += ["订单编号", "广告位ID"]
    rows = [
        {
            "创建时间": "2018/05/01 12:30",
            "商品信息": "旧版",
            "商品ID": "55",
            "商品数": "1",
            "订单状态": "订单结算",
            "付款金额": "10",
            "效果预估": "1.00",
            "预估收入": "0.90",
            "结算时间": "2018/05/20 00:00",
            "订单编号": "1001",
            "广告位ID": "42",
        },
        {
            "创建时间": "2018/05/01 12:30",
            "商品ID": "56",
            "商品数": "1",
            "订单状态": "订单付款",
            "付款金额": "¥1,234.50",
            "效果预估": "1.00",
            "订单编号": "1001",
            "广告位ID": "42",
        },
        {"创建时间": "2018-05-01 12:30:00", "商品ID": "57", "商品数": "1", "订单状态": "订单成功"}
        | {"付款金额": "3", "效果预估": "0.3", "订单编号": "1001", "广告位ID": "42"},
        {"创建时间": "2018-05-01 12:30:00", "商品ID": "58", "商品数": "1", "订单状态": "订单失效"}
        | {"付款金额": "3", "效果预估": "0.3", "订单编号": "1001", "广告位ID": "42"},
    ]

    settled, paid, confirmed, invalid = parse_report_file("taobao", "old.csv", _csv(rows, header).encode("utf-8"))

    assert (settled.external_order_id, settled.line_id) == ("1001", "55")  # no sub-order column: line = product
    assert settled.status == OrderStatus.SETTLED
    assert settled.commission == Decimal("0.90")
    assert settled.paid_at == datetime(2018, 5, 1, 4, 30, tzinfo=UTC)  # 创建时间 when there is no 付款时间
    assert paid.status == OrderStatus.PAID
    assert paid.paid_amount == Decimal("1234.50")
    assert confirmed.status == OrderStatus.CONFIRMED
    assert invalid.status == OrderStatus.INVALID


def test_a_gbk_csv_from_chinese_excel_is_read():
    content = _csv([_taobao_row()]).encode("gbk")

    [line] = parse_report_file("taobao", "report.csv", content)

    assert line.title == "小米 便携保温杯"
    assert line.tracking_id == "110732600234"


def test_a_utf8_csv_with_a_byte_order_mark_is_read():
    content = b"\xef\xbb\xbf" + _taobao_file()

    [line] = parse_report_file("taobao", "report.csv", content)

    assert line.external_order_id == "1867000000000000001"


def test_a_tab_separated_utf16_export_is_read():
    content = _csv([_taobao_row()], delimiter="\t").encode("utf-16")

    [line] = parse_report_file("taobao", "report.csv", content)

    assert line.commission == Decimal("5.99")


def test_excel_guards_around_ids_are_removed():
    row = _taobao_row(**{"淘宝父订单编号": '="1867000000000000001"', "推广位ID": "\t110732600234"})

    [line] = parse_report_file("taobao", "report.csv", _taobao_file([row]))

    assert line.external_order_id == "1867000000000000001"
    assert line.tracking_id == "110732600234"


def _jd_workbook(rows, header=None, title_row=False):
    header = header or [
        "订单号",
        "父单号",
        "下单时间",
        "完成时间",
        "预估结算时间",
        "商品ID",
        "商品名称",
        "商品数量",
        "预估计佣金额",
        "佣金比例",
        "分成比例",
        "预估佣金",
        "实际计佣金额",
        "实际佣金",
        "订单状态",
        "推广位ID",
    ]
    workbook = Workbook()
    sheet = workbook.active
    if title_row:
        sheet.append(["京东联盟 订单明细 2026-01-01 至 2026-01-31"])
    sheet.append(header)
    for row in rows:
        sheet.append([row.get(name) for name in header])
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


def _jd_row(**changes):
    row = {
        "订单号": 280000000001,
        "父单号": 0,
        "下单时间": datetime(2026, 1, 5, 10, 0, 0),
        "完成时间": None,
        "预估结算时间": None,
        "商品ID": 100012345678,
        "商品名称": "京东 智能台灯",
        "商品数量": 1,
        "预估计佣金额": 199.0,
        "佣金比例": "5%",
        "分成比例": "90%",
        "预估佣金": 8.96,
        "实际计佣金额": 0,
        "实际佣金": 0,
        "订单状态": 16,
        "推广位ID": 3003456789,
    }
    row.update(changes)
    return row


def test_a_good_jd_xlsx_is_read_with_numbers_dates_and_codes():
    rows = [
        _jd_row(),
        _jd_row(**{"订单号": 280000000002, "订单状态": 17, "完成时间": datetime(2026, 1, 8, 9, 0)}),
        _jd_row(
            **{
                "订单号": 280000000003,
                "订单状态": "已完成",
                "完成时间": datetime(2026, 1, 8, 9, 0),
                "预估结算时间": 20260120,
                "实际计佣金额": 199.0,
                "实际佣金": 7.5,
            }
        ),
        _jd_row(**{"订单号": 280000000004, "订单状态": 18, "预估结算时间": "2026-01-20", "实际佣金": "8.96"}),
        _jd_row(**{"订单号": 280000000005, "订单状态": 3}),
        _jd_row(**{"订单号": 280000000006, "订单状态": "无效-拆单"}),
        _jd_row(**{"订单号": 280000000007, "订单状态": 15}),  # 待付款: left out
    ]
    now = datetime(2026, 1, 25, tzinfo=UTC)

    lines = parse_report_file("jd", "jd.xlsx", _jd_workbook(rows, title_row=True), now=now)

    paid, confirmed, settled_by_date, settled, cancelled, invalid = lines
    assert paid.external_order_id == "280000000001"
    assert paid.line_id == paid.product_id == "100012345678"
    assert paid.tracking_id == "3003456789"
    assert paid.title == "京东 智能台灯"
    assert paid.paid_amount == Decimal("199.00")
    assert paid.commission == Decimal("8.96")
    assert paid.status == OrderStatus.PAID
    assert paid.paid_at == datetime(2026, 1, 5, 2, 0, tzinfo=UTC)
    assert confirmed.status == OrderStatus.CONFIRMED
    assert confirmed.updated_at == datetime(2026, 1, 8, 1, 0, tzinfo=UTC)
    assert settled_by_date.status == OrderStatus.SETTLED  # 17 with a settlement date in the past
    assert settled_by_date.commission == Decimal("7.50")
    assert settled_by_date.settled_at == datetime(2026, 1, 19, 16, 0, tzinfo=UTC)
    assert settled.status == OrderStatus.SETTLED
    assert settled.commission == Decimal("8.96")
    assert cancelled.status == invalid.status == OrderStatus.INVALID
    assert cancelled.commission == Decimal("0.00")


def test_a_jd_line_completed_with_a_future_settlement_date_is_not_settled_yet():
    row = _jd_row(**{"订单状态": 17, "预估结算时间": 20260220, "实际佣金": 7.5})

    [line] = parse_report_file("jd", "jd.xlsx", _jd_workbook([row]), now=datetime(2026, 1, 25, tzinfo=UTC))

    assert line.status == OrderStatus.CONFIRMED
    assert line.commission == Decimal("8.96")
    assert line.settled_at is None


# --- refusals: the first bad row, with its number (the header is row 1) and a reason ---------------------------


def test_a_missing_required_column_refuses_the_header():
    header = [name for name in TAOBAO_HEADER if name != "推广位ID"]

    refused = _refusal("taobao", _csv([_taobao_row()], header).encode())

    assert refused.row_number == 1
    assert "推广位ID" in refused.reason


def test_a_file_without_an_order_column_is_refused_at_row_1():
    refused = _refusal("taobao", b"a,b,c\r\n1,2,3\r\n")

    assert refused.row_number == 1
    assert "淘宝父订单编号" in refused.reason


@pytest.mark.parametrize(
    ("change", "words"),
    [
        ({"付款金额": "五十九"}, "付款金额"),
        ({"付款预估收入": "5.999"}, "more than 2 decimals"),
        ({"付款金额": "-1.00"}, "付款金额"),
        ({"付款时间": "2026-13-45 10:00:00"}, "付款时间"),
        ({"订单状态": "已发货"}, "Unknown order status 已发货"),
        ({"推广位ID": ""}, "推广位ID is empty"),
        ({"商品数": "1.5"}, "商品数"),
        ({"淘宝父订单编号": "1.867E+18"}, "scientific notation"),
        ({"订单状态": "已结算", "结算预估收入": "", "结算时间": "2026-01-20 08:00:00"}, "结算预估收入"),
    ],
)
def test_a_bad_row_refuses_the_file_with_its_number_and_reason(change, words):
    rows = [_taobao_row(), _taobao_row(**{"淘宝子订单编号": "9"}), _taobao_row(**{"淘宝子订单编号": "10"} | change)]

    refused = _refusal("taobao", _taobao_file(rows))

    assert refused.row_number == 4
    assert words in refused.reason
    assert str(refused).startswith("Row 4: ")


def test_the_same_line_twice_in_a_file_is_refused():
    refused = _refusal("taobao", _taobao_file([_taobao_row(), _taobao_row()]))

    assert refused.row_number == 3
    assert "row 2" in refused.reason


def test_jd_refusals_in_an_xlsx():
    cases = [
        ({"预估佣金": 8.965}, "more than 2 decimals"),
        ({"订单号": 1.8670000000000001e19}, "lost digits"),
        ({"下单时间": "昨天"}, "下单时间"),
        ({"订单状态": -1}, "Unknown order status -1"),
        ({"推广位ID": None}, "推广位ID is empty"),
        ({"推广位ID": 0}, "推广位ID is 0"),
        ({"订单状态": 18, "实际佣金": None, "预估结算时间": "2026-01-20"}, "实际佣金"),
    ]
    for change, words in cases:
        content = _jd_workbook([_jd_row(), _jd_row(**{"订单号": 2} | change)])

        refused = _refusal("jd", content, "jd.xlsx")

        assert (refused.row_number, words in refused.reason) == (3, True), (change, refused.reason)


def test_an_old_xls_and_a_broken_xlsx_and_unreadable_bytes_are_refused():
    assert "xls" in _refusal("taobao", b"\xd0\xcf\x11\xe0" + b"\0" * 100, "report.xls").reason
    assert _refusal("jd", b"PK\x03\x04 not really a zip", "jd.xlsx").row_number == 1
    assert _refusal("taobao", bytes(range(128, 256)) * 3).row_number == 1


def test_an_unknown_network_is_a_programming_error():
    with pytest.raises(ValueError, match="unknown network"):
        parse_report_file("pdd", "x.csv", b"")


def test_dates_in_xlsx_cells_without_time_are_midnight_china_time():
    row = _jd_row(**{"下单时间": date(2026, 1, 5)})

    [line] = parse_report_file("jd", "jd.xlsx", _jd_workbook([row]))

    assert line.paid_at == datetime(2026, 1, 4, 16, 0, tzinfo=UTC)
