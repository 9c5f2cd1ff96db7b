"""The providers' daily bills, downloaded through their SDKs and read into lines the reconciliation compares with
our payments, refunds and transfers (staff.reconciliation).

- WeChat Pay: the trade bill (GET /v3/bill/tradebill, bill_type ALL: a row per payment and per refund) and the
  fund-flow bill (GET /v3/bill/fundflowbill: every money movement of the account; 商家转账 rows are our transfers),
  each answered with a download_url and the SHA1 of the bill; the file (gzip) is downloaded with a signed request
  and checked against that hash. Rows are CSV, each value prefixed with a backquote, a summary after them.
- Alipay: alipay.data.dataservice.bill.downloadurl.query answers a short-lived URL of a zip of GBK CSV files:
  bill_type "trade" (业务明细: 交易 and 退款 rows) and "signcustomer" (账务明细: every movement; 转账 rows are our
  transfers), comment lines starting with "#" around them, values padded with tabs.

A bill for a day with no business is no bill (WeChat Pay: NO_STATEMENT_EXIST): that is an empty list. A bill not
made yet, one that cannot be downloaded or does not match its hash is a ProviderError: the run fails and is retried.
"""

import csv
import gzip
import hashlib
import io
import urllib.error
import urllib.request
import zipfile
from dataclasses import dataclass
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Literal

from shops.payments.alipay import AlipayProvider
from shops.payments.base import CENT, ProviderError
from shops.payments.wechatpay import WeChatPayProvider

BILL_MAX_BYTES = 200 * 1024 * 1024  # a day's bill larger than this is refused rather than read into memory
DOWNLOAD_TIMEOUT = 60


@dataclass(frozen=True)
class BillLine:
    """One payment, refund or transfer as the provider's bill has it."""

    subject: Literal["payment", "refund", "transfer"]
    reference: str  # our number at the provider: out_trade_no, out_refund_no / out_request_no, out_bill_no / out_biz_no
    amount: Decimal  # positive
    state: str  # the provider's word for it on the bill (SUCCESS, REFUND, REVOKED …; 交易, 退款, 转账 …)
    provider_reference: str = ""  # the provider's number (transaction_id, trade_no, transfer_bill_no, order_id)
    payment_reference: str = ""  # refunds: the payment's out_trade_no


def _amount(text: str) -> Decimal:
    try:
        value = Decimal(text.strip().replace(",", ""))
    except InvalidOperation:
        raise ProviderError(f"bill: {text[:20]!r} is not an amount") from None
    if not value.is_finite() or abs(value) >= Decimal("1e12"):
        raise ProviderError(f"bill: {text[:20]!r} is not an amount")
    return value.quantize(CENT)


def _rows(text: str, *, header_starts: str, end: tuple[str, ...]) -> list[dict[str, str]]:
    """The rows of a bill's CSV as dicts by column name: from the header line (the first starting with
    `header_starts`) to the first line starting with one of `end`; cells stripped of the backquote and padding."""
    lines = text.lstrip("\ufeff").splitlines()
    start = next((i for i, line in enumerate(lines) if line.startswith(header_starts)), None)
    if start is None:
        raise ProviderError("bill: no header line")
    body = []
    for line in lines[start + 1 :]:
        if not line.strip():
            continue
        if line.startswith(end):
            break
        body.append(line)
    header = [cell.strip() for cell in next(csv.reader([lines[start]]))]
    rows = []
    for cells in csv.reader(body):
        rows.append({name: cell.strip().lstrip("`").strip() for name, cell in zip(header, cells, strict=False)})
    return rows


def _line(row: dict, subject: str, state: str, reference: str, amounts: tuple[str, ...], number: str, payment=""):
    """A bill line from a row: its reference, amount (the first of `amounts` the row has, made positive) and the
    provider's number, by column name; refunds also name their payment's column."""
    amount = next((row[name] for name in amounts if row.get(name)), "0")
    return BillLine(
        subject,
        row.get(reference, ""),
        abs(_amount(amount)),
        state,
        provider_reference=row.get(number, ""),
        payment_reference=row.get(payment, "") if payment else "",
    )


def _net_transfers(movements: list[tuple[str, str, Decimal, str]]) -> list[BillLine]:
    """Transfer lines from (reference, provider number, outgoing amount, state) movements: what left for each
    reference, net of what came back; a transfer whose money all came back is no transfer."""
    net: dict[str, list] = {}
    for reference, number, amount, state in movements:
        entry = net.setdefault(reference, [Decimal("0.00"), number, state])
        entry[0] += amount
    return [
        BillLine("transfer", reference, amount, state, provider_reference=number)
        for reference, (amount, number, state) in net.items()
        if amount > 0
    ]


# --- WeChat Pay ------------------------------------------------------------------------------------------------


def _wechatpay_bill(api: WeChatPayProvider, kind: str, bill_date: date) -> str | None:
    client = api.client
    if kind == "trade":
        status, answer = api._call("trade bill", lambda: client.trade_bill(bill_date=bill_date.isoformat()))
    else:
        status, answer = api._call("fund-flow bill", lambda: client.fundflow_bill(bill_date=bill_date.isoformat()))
    if status == 400 and answer.get("code") == "NO_STATEMENT_EXIST":
        return None
    if status != 200 or not isinstance(answer.get("download_url"), str):
        raise api._refusal(f"{kind} bill", status, answer)
    try:
        status, data = client.download_bill(answer["download_url"])
    except Exception as error:  # requests' errors, the SDK's own
        raise ProviderError(f"WeChat Pay {kind} bill download: {type(error).__name__}") from None
    if status != 200 or not isinstance(data, bytes) or len(data) > BILL_MAX_BYTES:
        raise ProviderError(f"WeChat Pay {kind} bill download answered {status}")
    try:
        raw = gzip.decompress(data) if data[:2] == b"\x1f\x8b" else data
    except (OSError, EOFError):
        raise ProviderError(f"WeChat Pay {kind} bill: not a gzip file") from None
    if answer.get("hash_type", "SHA1") == "SHA1":
        digest = hashlib.sha1(raw).hexdigest()  # noqa: S324 - the hash WeChat Pay gives for its bills
        if digest != str(answer.get("hash_value", "")).lower():
            raise ProviderError(f"WeChat Pay {kind} bill does not match its hash")
    return raw.decode("utf-8")


def wechatpay_bill_lines(api: WeChatPayProvider, bill_date: date) -> list[BillLine]:
    """Every payment, refund and transfer on WeChat Pay's bills of `bill_date` (China time)."""
    lines = []
    trade = _wechatpay_bill(api, "trade", bill_date)
    for row in _rows(trade, header_starts="交易时间", end=("总交易单数",)) if trade else []:
        state = row.get("交易状态", "")
        if state == "REFUND":
            line = _line(
                row, "refund", state, "商户退款单号", ("退款金额", "申请退款金额"), "微信退款单号", "商户订单号"
            )
        else:
            line = _line(row, "payment", state, "商户订单号", ("订单金额", "应结订单金额"), "微信订单号")
        lines.append(line)
    flow = _wechatpay_bill(api, "fund-flow", bill_date)
    movements = []
    for row in _rows(flow, header_starts="记账时间", end=("资金流水总笔数",)) if flow else []:
        if "转账" not in row.get("业务名称", "") + row.get("业务类型", ""):
            continue
        amount = _amount(row.get("收支金额（元）", "0"))
        outgoing = amount if row.get("收支类型") == "支出" else -amount
        movements.append((row.get("业务凭证号", ""), row.get("微信支付业务单号", ""), outgoing, "SUCCESS"))
    return lines + _net_transfers(movements)


# --- Alipay ----------------------------------------------------------------------------------------------------


def _alipay_bill(api: AlipayProvider, bill_type: str, bill_date: date) -> str | None:
    answer = api._call(
        f"{bill_type} bill",
        lambda: api.client.server_api(
            "alipay.data.dataservice.bill.downloadurl.query",
            {"bill_type": bill_type, "bill_date": bill_date.isoformat()},
        ),
    )
    if answer.get("code") == "40004" and answer.get("sub_code") == "isp.bill_not_exist":
        raise ProviderError(f"Alipay {bill_type} bill of {bill_date} is not made yet")
    url = answer.get("bill_download_url")
    if answer.get("code") != "10000" or not isinstance(url, str) or not url.startswith(("https://", "http://")):
        raise api._refusal(f"{bill_type} bill", answer)
    try:
        with urllib.request.urlopen(url, timeout=DOWNLOAD_TIMEOUT) as response:  # noqa: S310 - Alipay's signed answer
            data = response.read(BILL_MAX_BYTES + 1)
    except (urllib.error.URLError, TimeoutError, ConnectionError) as error:
        raise ProviderError(f"Alipay {bill_type} bill download: {type(error).__name__}") from None
    if len(data) > BILL_MAX_BYTES:
        raise ProviderError(f"Alipay {bill_type} bill is too large")
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            names = [name for name in archive.namelist() if name.endswith(".csv") and "汇总" not in name]
            if len(names) != 1:
                raise ProviderError(f"Alipay {bill_type} bill: {len(names)} detail files")
            return archive.read(names[0]).decode("gb18030")
    except (zipfile.BadZipFile, UnicodeDecodeError):
        raise ProviderError(f"Alipay {bill_type} bill is not a zip of CSV files") from None


def alipay_bill_lines(api: AlipayProvider, bill_date: date, *, trades: bool = True) -> list[BillLine]:
    """Every payment, refund (业务明细, when `trades`) and transfer (账务明细) on Alipay's bills of `bill_date`."""
    lines = []
    if trades:
        detail = _alipay_bill(api, "trade", bill_date)
        for row in _rows(detail, header_starts="支付宝交易号", end=("#",)):
            kind = row.get("业务类型", "")
            if kind == "退款":  # 商家实收 is negative on a refund's row
                line = _line(
                    row, "refund", kind, "退款批次号/请求号", ("商家实收（元）",), "支付宝交易号", "商户订单号"
                )
            else:
                line = _line(row, "payment", kind, "商户订单号", ("订单金额（元）",), "支付宝交易号")
            lines.append(line)
    movements = []
    for row in _rows(_alipay_bill(api, "signcustomer", bill_date), header_starts="账务流水号", end=("#",)):
        if "转账" not in row.get("业务类型", ""):
            continue
        outgoing = -_amount(row.get("支出金额（-元）") or "0") - _amount(row.get("收入金额（+元）") or "0")
        movements.append((row.get("商户订单号", ""), row.get("业务流水号", ""), outgoing, "SUCCESS"))
    return lines + _net_transfers(movements)
