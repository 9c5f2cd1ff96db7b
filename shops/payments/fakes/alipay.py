"""A local fake of Alipay's open API gateway (支付宝开放平台 gateway.do), faithful to the wire protocol so
python-alipay-sdk runs against it unchanged (only its gateway URL is pointed here).

Requests: GET (or form POST) to /gateway.do with the common parameters (app_id, method, charset=utf-8,
sign_type=RSA2, timestamp "YYYY-MM-DD HH:MM:SS", version=1.0, biz_content as JSON, notify_url, return_url) and
`sign`: RSA-SHA256 (PKCS#1 v1.5, base64) by the application's private key over every other non-empty parameter,
sorted by name, as "name=value" joined by "&". An unknown app_id or a bad signature is refused (40002
isv.invalid-signature, unsigned); so are amounts that do not match (a trade opened again under the same
out_trade_no with another total_amount, a refund beyond what is left).

Answers: `{"<method with _>_response": {…}, "sign": "…"}`, the sign by Alipay's private key over the exact text of
the inner object, as the SDK verifies it. Business failures answer code 40004 with a sub_code (ACQ.TRADE_NOT_EXIST,
ACQ.TRADE_STATUS_ERROR, ACQ.REFUND_AMT_NOT_EQUAL_TOTAL, ACQ.DISCORDANT_REPEAT_REQUEST).

Methods: alipay.trade.wap.pay and alipay.trade.page.pay (the buyer's browser opens the signed URL and gets the
cashier page; the trade exists from then on), alipay.trade.query, alipay.trade.close, alipay.trade.refund,
alipay.trade.fastpay.refund.query.

Asynchronous notifications (notify_type=trade_status_sync): a form POST to the notify_url given when the trade was
opened, signed by Alipay's key over every parameter but sign and sign_type, with a `notify_id`; trade_status
TRADE_SUCCESS when paid, and on each refund TRADE_SUCCESS (part refunded) or TRADE_CLOSED (all refunded) with
out_biz_no (the refund's out_request_no), refund_fee (refunded so far) and gmt_refund. The shop acknowledges by
answering the text "success"; anything else is a failure the fake can retry.
"""

import base64
import hashlib
import io
import json
import re
import secrets
import threading
import zipfile
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal, InvalidOperation
from html import escape
from urllib.parse import parse_qsl, urlencode

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.x509.oid import NameOID

from shops.payments.fakes.common import (
    KeyPair,
    Notification,
    Outbox,
    Request,
    Response,
    certificate_pem,
    html_response,
    redirect_response,
    verify_rsa_sha256,
)

CHINA = timezone(timedelta(hours=8))
WIRE_TIME = "%Y-%m-%d %H:%M:%S"
GATEWAY_PATH = "/gateway.do"
CENT = Decimal("0.01")
MAX_AMOUNT = Decimal("100000000.00")
PAGE_METHODS = {"alipay.trade.wap.pay": "QUICK_WAP_WAY", "alipay.trade.page.pay": "FAST_INSTANT_TRADE_PAY"}


def wire_time(moment: datetime | None = None) -> str:
    return (moment or datetime.now(CHINA)).astimezone(CHINA).strftime(WIRE_TIME)


def signing_text(params: dict[str, str], *, drop: tuple[str, ...]) -> str:
    """Alipay's string to sign: the non-empty parameters but `drop`, sorted by name, as name=value joined by &."""
    return "&".join(f"{name}={value}" for name, value in sorted(params.items()) if name not in drop and value != "")


class AlipayError(Exception):
    def __init__(self, code: str, msg: str, sub_code: str, sub_msg: str, *, signed: bool = True):
        super().__init__(sub_msg)
        self.body = {"code": code, "msg": msg, "sub_code": sub_code, "sub_msg": sub_msg}
        self.signed = signed


def _business(sub_code: str, sub_msg: str) -> AlipayError:
    return AlipayError("40004", "Business Failed", sub_code, sub_msg)


def _invalid(sub_code: str, sub_msg: str, *, signed: bool = True) -> AlipayError:
    return AlipayError("40002", "Invalid Arguments", sub_code, sub_msg, signed=signed)


def money(value) -> Decimal:
    """An Alipay amount ("12.30"): a number with at most two decimals, 0.01 to 100000000."""
    try:
        amount = Decimal(str(value))
    except InvalidOperation:
        raise _invalid("isv.invalid-parameter", f"金额格式错误: {value!r:.40}") from None
    if not amount.is_finite() or not CENT <= amount <= MAX_AMOUNT or amount != amount.quantize(CENT):
        raise _invalid("isv.invalid-parameter", f"金额格式错误: {value!r:.40}")
    return amount.quantize(CENT)


@dataclass
class Trade:
    out_trade_no: str
    subject: str
    total_amount: Decimal
    method: str
    notify_url: str
    trade_no: str
    trade_status: str = "WAIT_BUYER_PAY"  # WAIT_BUYER_PAY | TRADE_SUCCESS | TRADE_CLOSED
    buyer_id: str = ""
    gmt_create: str = ""
    gmt_payment: str = ""
    gmt_close: str = ""
    time_expire: datetime | None = None  # biz_content.time_expire: past it the trade closes unpaid
    refunded: Decimal = Decimal("0.00")

    def expire_if_due(self) -> None:
        if self.trade_status == "WAIT_BUYER_PAY" and self.time_expire and datetime.now(CHINA) > self.time_expire:
            self.trade_status, self.gmt_close = "TRADE_CLOSED", wire_time()


@dataclass
class Refund:
    out_request_no: str
    out_trade_no: str
    amount: Decimal
    gmt_refund: str


# --- Part C of issue #21: 单笔转账 (alipay.fund.trans.uni.transfer), its query, and the bills -------------------
# Shapes and constants of the payouts side; its operations and controls are the last section of AlipayFake.

PAYOUT_METHODS = (
    "alipay.fund.trans.uni.transfer",
    "alipay.fund.trans.common.query",
    "alipay.data.dataservice.bill.downloadurl.query",
)
# Alipay takes fund transfers only from applications in the certificate mode (公钥证书): the request carries
# app_cert_sn and alipay_root_cert_sn, the answer alipay_cert_sn.
CERTIFICATE_METHODS = ("alipay.fund.trans.uni.transfer", "alipay.fund.trans.common.query")
BILL_DOWNLOAD_PATH = "/fake/alipay/bill"
OUT_BIZ_NO = re.compile(r"[0-9A-Za-z_]{1,64}")
TRANSFER_MIN_AMOUNT = Decimal("0.10")
ROOT_NAME = {
    "C": "CN",
    "O": "Ant Financial (fake)",
    "OU": "Certification Authority",
    "CN": "Ant Financial Certification Authority Class 1 R1 (fake)",
}
TRADE_BILL_HEADER = (
    "支付宝交易号,商户订单号,业务类型,商品名称,创建时间,完成时间,门店编号,门店名称,操作员,终端号,对方账户,订单金额（元）,"
    "商家实收（元）,支付宝红包（元）,集分宝（元）,支付宝优惠（元）,商家优惠（元）,券核销金额（元）,券名称,商家红包消费金额（元）,"
    "卡消费金额（元）,退款批次号/请求号,服务费（元）,分润（元）,备注"
)
ACCOUNT_BILL_HEADER = (
    "账务流水号,业务流水号,商户订单号,商品名称,发生时间,对方账号,收入金额（+元）,支出金额（-元）,账户余额（元）,交易渠道,业务类型,"
    "备注"
)


@dataclass
class FundTransfer:
    """One single transfer to an Alipay account (转账到支付宝账户)."""

    out_biz_no: str
    order_id: str
    pay_fund_order_id: str
    amount: Decimal
    identity_type: str
    identity: str
    name: str
    order_title: str
    status: str = "SUCCESS"  # SUCCESS | DEALING | FAIL (| REFUND when the money came back)
    trans_date: str = ""
    fail_reason: str = ""

    def request_fingerprint(self) -> tuple:
        return (self.amount, self.identity_type, self.identity, self.name)


def _digits(count: int) -> str:
    return "".join(secrets.choice("0123456789") for _ in range(count))


def _name(fields: dict[str, str]) -> x509.Name:
    oids = {"C": NameOID.COUNTRY_NAME, "O": NameOID.ORGANIZATION_NAME, "OU": NameOID.ORGANIZATIONAL_UNIT_NAME}
    oids["CN"] = NameOID.COMMON_NAME
    return x509.Name([x509.NameAttribute(oids[key], value) for key, value in fields.items()])


def _certificate(keys: KeyPair, subject: dict[str, str], issuer_keys: KeyPair, issuer: dict[str, str]):
    """A certificate of `keys` for `subject`, signed by `issuer_keys` (the fake's root stands in for Alipay's CA)."""
    now = datetime.now(UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(_name(subject))
        .issuer_name(_name(issuer))
        .public_key(keys.public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=365))
        .sign(issuer_keys.private_key, hashes.SHA256())
    )


def certificate_sn(certificate) -> str:
    """Alipay's serial number of a certificate: MD5 of the issuer as "CN=…,OU=…,O=…,C=…" followed by the serial
    number in decimal."""

    def part(oid) -> str:
        values = certificate.issuer.get_attributes_for_oid(oid)
        return values[0].value if values else "None"

    issuer = (
        f"CN={part(NameOID.COMMON_NAME)},OU={part(NameOID.ORGANIZATIONAL_UNIT_NAME)},"
        f"O={part(NameOID.ORGANIZATION_NAME)},C={part(NameOID.COUNTRY_NAME)}"
    )
    return hashlib.md5((issuer + str(certificate.serial_number)).encode()).hexdigest()  # noqa: S324 - Alipay's rule


class AlipayFake:
    """One application's Alipay, in memory. Keys are made fresh for each instance unless given."""

    def __init__(
        self,
        *,
        app_id: str = "2021000000000001",
        seller_id: str = "2088000000000001",
        app_keys: KeyPair | None = None,
        alipay_keys: KeyPair | None = None,
        root_keys: KeyPair | None = None,
    ):
        self.app_id, self.seller_id = app_id, seller_id
        self.app_keys = app_keys or KeyPair.generate()  # the application's key pair (its public half uploaded)
        self.alipay_keys = alipay_keys or KeyPair.generate()  # Alipay's own key pair (its public half downloaded)
        self.root_keys = root_keys or KeyPair.generate()  # the root CA's, which signs both certificates
        self.base_url = ""
        self.outbox = Outbox()
        self.trades: dict[str, Trade] = {}
        self.refunds: dict[tuple[str, str], Refund] = {}
        self.refused: list[tuple[str, str]] = []  # (method, sub_code) of every refused request
        self._lock = threading.RLock()
        self._payouts_init()

    @property
    def gateway_url(self) -> str:
        return self.base_url + GATEWAY_PATH

    def merchant_settings(self) -> dict[str, str]:
        """What a merchant copies from the open platform: the values of the ALIPAY_* settings."""
        return {
            "app_id": self.app_id,
            "app_private_key": self.app_keys.private_pem(),
            "alipay_public_key": self.alipay_keys.public_pem(),
        }

    # --- the buyer's side ------------------------------------------------------------------------------------

    def buyer_pays(self, out_trade_no: str) -> Trade:
        """The buyer pays on the cashier page: the trade succeeds and TRADE_SUCCESS is queued."""
        with self._lock:
            trade = self.trades.get(out_trade_no)
            if trade is None:
                raise _business("ACQ.TRADE_NOT_EXIST", "交易不存在(收银台未打开)")
            trade.expire_if_due()
            if trade.trade_status != "WAIT_BUYER_PAY":
                raise _business("ACQ.TRADE_STATUS_ERROR", "交易状态不合法")
            trade.trade_status = "TRADE_SUCCESS"
            trade.buyer_id = "2088" + "".join(secrets.choice("0123456789") for _ in range(12))
            trade.gmt_payment = wire_time()
            params = self._trade_params(trade)
        self._notify(trade.notify_url, "TRADE_SUCCESS", out_trade_no, params)
        return trade

    def trade(self, out_trade_no: str) -> Trade:
        with self._lock:
            return self.trades[out_trade_no]

    # --- HTTP ------------------------------------------------------------------------------------------------

    def handle(self, request: Request) -> Response | None:
        if request.path == "/fake/alipay/pay" and request.method == "POST":
            return self._cashier_pay(dict(parse_qsl(request.body.decode("utf-8", "replace"))))
        if request.path == BILL_DOWNLOAD_PATH:
            return self._bill_download(request)
        if request.path != GATEWAY_PATH:
            return None
        params = dict(parse_qsl(request.query, keep_blank_values=True))
        if request.method == "POST":
            params.update(parse_qsl(request.body.decode("utf-8", "replace"), keep_blank_values=True))
        method = params.get("method", "")
        response_key = method.replace(".", "_") + "_response"
        if method in PAYOUT_METHODS:
            return self._payouts_handle(method, params, response_key)
        try:
            self._authenticate(params)
            biz = self._biz_content(params)
            if method in PAGE_METHODS:
                return self._cashier_page(method, params, biz)
            operations = {
                "alipay.trade.query": self._query,
                "alipay.trade.close": self._close,
                "alipay.trade.refund": self._refund,
                "alipay.trade.fastpay.refund.query": self._refund_query,
            }
            if method not in operations:
                raise _invalid("isv.invalid-method", f"不存在的方法名: {method!r:.60}", signed=False)
            answer, signed = {"code": "10000", "msg": "Success", **operations[method](biz)}, True
        except AlipayError as error:
            with self._lock:
                self.refused.append((method, error.body["sub_code"]))
            if method in PAGE_METHODS:
                page = f"<p>错误代码 {escape(error.body['sub_code'])}: {escape(error.body['sub_msg'])}</p>"
                return html_response(400, page)
            answer, signed = error.body, error.signed
        return self._answer(response_key, answer, signed=signed)

    def _authenticate(self, params: dict[str, str]) -> None:
        if params.get("app_id") != self.app_id:
            raise _invalid("isv.invalid-app-id", "无效的AppID参数", signed=False)
        if params.get("sign_type") != "RSA2":
            raise _invalid("isv.invalid-signature-type", "无效的签名类型", signed=False)
        if params.get("charset", "utf-8").lower() != "utf-8":
            raise _invalid("isv.invalid-charset", "字符集错误", signed=False)
        try:
            datetime.strptime(params.get("timestamp", ""), WIRE_TIME)
        except ValueError:
            raise _invalid("isv.invalid-timestamp", "非法的时间戳参数", signed=False) from None
        try:
            signature = base64.b64decode(params.get("sign", ""), validate=True)
        except ValueError:
            signature = b""
        message = signing_text(params, drop=("sign",)).encode()
        if not verify_rsa_sha256(self.app_keys.public_key, message, signature):
            raise _invalid("isv.invalid-signature", "验签出错，请检查签名私钥与应用公钥是否匹配", signed=False)

    @staticmethod
    def _biz_content(params: dict[str, str]) -> dict:
        try:
            biz = json.loads(params.get("biz_content") or "{}")
        except ValueError:
            raise _invalid("isv.invalid-parameter", "biz_content 不是合法的 JSON") from None
        if not isinstance(biz, dict):
            raise _invalid("isv.invalid-parameter", "biz_content 不是 JSON 对象")
        return biz

    def _answer(self, response_key: str, answer: dict, *, signed: bool) -> Response:
        inner = json.dumps(answer, ensure_ascii=False, separators=(",", ":"))
        text = f'{{"{response_key}":{inner}'
        if signed:
            text += f',"sign":"{base64.b64encode(self.alipay_keys.sign(inner.encode())).decode()}"'
        text += "}"
        return Response(200, text.encode(), {"Content-Type": "application/json;charset=utf-8"})

    def sign_params(self, params: dict[str, str]) -> dict[str, str]:
        """`params` with Alipay's sign over all of them but sign and sign_type (notifications, return URLs)."""
        text = signing_text(params, drop=("sign", "sign_type"))
        return {**params, "sign": base64.b64encode(self.alipay_keys.sign(text.encode())).decode()}

    # --- the cashier (wap.pay / page.pay) --------------------------------------------------------------------

    def _cashier_page(self, method: str, params: dict[str, str], biz: dict) -> Response:
        out_trade_no, subject = biz.get("out_trade_no"), biz.get("subject")
        if not (isinstance(out_trade_no, str) and 1 <= len(out_trade_no) <= 64):
            raise _invalid("isv.missing-parameter", "缺少 out_trade_no")
        if not (isinstance(subject, str) and 1 <= len(subject) <= 256):
            raise _invalid("isv.missing-parameter", "缺少 subject")
        total = money(biz.get("total_amount"))
        time_expire = None
        if biz.get("time_expire"):
            try:
                time_expire = datetime.strptime(biz["time_expire"], WIRE_TIME).replace(tzinfo=CHINA)
            except (TypeError, ValueError):
                raise _invalid("isv.invalid-parameter", "time_expire 格式错误") from None
        with self._lock:
            trade = self.trades.get(out_trade_no)
            if trade is None:
                trade = Trade(
                    out_trade_no=out_trade_no,
                    subject=subject,
                    total_amount=total,
                    method=method,
                    notify_url=params.get("notify_url", ""),
                    trade_no=datetime.now(CHINA).strftime("%Y%m%d") + "2200" + secrets.token_hex(8)[:14],
                    gmt_create=wire_time(),
                    time_expire=time_expire,
                )
                self.trades[out_trade_no] = trade
            trade.expire_if_due()
            if trade.total_amount != total:
                raise _business("ACQ.CONTEXT_INCONSISTENT", "交易信息被篡改(金额与原交易不一致)")
            elif trade.trade_status == "TRADE_SUCCESS":
                raise _business("ACQ.TRADE_HAS_SUCCESS", "交易已被支付")
            elif trade.trade_status == "TRADE_CLOSED":
                raise _business("ACQ.TRADE_HAS_CLOSE", "交易已经关闭")
        hidden = "".join(
            f'<input type="hidden" name="{name}" value="{escape(value)}">'
            for name, value in (("out_trade_no", out_trade_no), ("return_url", params.get("return_url", "")))
        )
        return html_response(
            200,
            '<!doctype html><html lang="zh-CN"><meta charset="utf-8"><title>支付宝 (fake)</title>'
            f"<h1>支付宝 收银台 (fake)</h1><p>{escape(subject)}</p><p>¥{total}</p>"
            f'<form method="post" action="/fake/alipay/pay">{hidden}<button type="submit">确认付款 (pay)</button>'
            "</form></html>",
        )

    def _cashier_pay(self, form: dict[str, str]) -> Response:
        try:
            trade = self.buyer_pays(form.get("out_trade_no", ""))
        except AlipayError as error:
            return html_response(400, f"<p>{escape(error.body['sub_msg'])}</p>")
        return_url = form.get("return_url", "")
        if not return_url:
            return html_response(200, "<p>付款成功 (paid)</p>")
        back = self.sign_params(
            {
                "app_id": self.app_id,
                "auth_app_id": self.app_id,
                "charset": "utf-8",
                "method": trade.method + ".return",
                "out_trade_no": trade.out_trade_no,
                "seller_id": self.seller_id,
                "sign_type": "RSA2",
                "timestamp": wire_time(),
                "total_amount": str(trade.total_amount),
                "trade_no": trade.trade_no,
                "version": "1.0",
            }
        )
        return redirect_response(return_url + ("&" if "?" in return_url else "?") + urlencode(back))

    # --- the API's operations --------------------------------------------------------------------------------

    def _find(self, biz: dict) -> Trade:
        trade = self.trades.get(biz.get("out_trade_no") or "")
        if trade is None and biz.get("trade_no"):
            trade = next((t for t in self.trades.values() if t.trade_no == biz["trade_no"]), None)
        if trade is None:
            raise _business("ACQ.TRADE_NOT_EXIST", "交易不存在")
        trade.expire_if_due()
        return trade

    def _query(self, biz: dict) -> dict:
        with self._lock:
            trade = self._find(biz)
            answer = {
                "trade_no": trade.trade_no,
                "out_trade_no": trade.out_trade_no,
                "trade_status": trade.trade_status,
                "total_amount": str(trade.total_amount),
            }
            if trade.gmt_payment:
                answer.update(
                    buyer_logon_id="buy***@example.com",
                    buyer_user_id=trade.buyer_id,
                    buyer_pay_amount=str(trade.total_amount),
                    receipt_amount=str(trade.total_amount - trade.refunded),
                    send_pay_date=trade.gmt_payment,
                )
            return answer

    def _close(self, biz: dict) -> dict:
        with self._lock:
            trade = self._find(biz)
            if trade.trade_status != "WAIT_BUYER_PAY":
                raise _business("ACQ.TRADE_STATUS_ERROR", "交易状态不合法")
            trade.trade_status, trade.gmt_close = "TRADE_CLOSED", wire_time()
            return {"trade_no": trade.trade_no, "out_trade_no": trade.out_trade_no}

    def _refund(self, biz: dict) -> dict:
        amount = money(biz.get("refund_amount"))
        with self._lock:
            trade = self._find(biz)
            out_request_no = biz.get("out_request_no") or trade.out_trade_no
            if not (isinstance(out_request_no, str) and len(out_request_no) <= 64):
                raise _invalid("isv.invalid-parameter", "out_request_no 格式错误")
            existing = self.refunds.get((trade.out_trade_no, out_request_no))
            if existing is not None:  # the same request again: the same refund, no money moves
                if existing.amount != amount:
                    raise _business("ACQ.DISCORDANT_REPEAT_REQUEST", "请求信息不一致(退款金额与原请求不同)")
                return {**self._refund_answer(trade), "fund_change": "N"}
            if trade.trade_status != "TRADE_SUCCESS":
                raise _business("ACQ.TRADE_STATUS_ERROR", "交易状态不合法")
            if amount > trade.total_amount - trade.refunded:
                raise _business("ACQ.REFUND_AMT_NOT_EQUAL_TOTAL", "退款金额超限")
            refund = Refund(out_request_no, trade.out_trade_no, amount, wire_time())
            self.refunds[(trade.out_trade_no, out_request_no)] = refund
            trade.refunded += amount
            if trade.refunded == trade.total_amount:
                trade.trade_status, trade.gmt_close = "TRADE_CLOSED", refund.gmt_refund
            params = {
                **self._trade_params(trade),
                "out_biz_no": out_request_no,
                "refund_fee": str(trade.refunded),
                "gmt_refund": refund.gmt_refund + ".000",
            }
            answer = {**self._refund_answer(trade), "fund_change": "Y", "gmt_refund_pay": refund.gmt_refund}
        self._notify(trade.notify_url, params["trade_status"], out_request_no, params)
        return answer

    def _refund_query(self, biz: dict) -> dict:
        with self._lock:
            trade = self._find(biz)
            refund = self.refunds.get((trade.out_trade_no, biz.get("out_request_no") or ""))
            answer = {"trade_no": trade.trade_no, "out_trade_no": trade.out_trade_no}
            if refund is not None:  # Alipay answers an unknown refund with Success and no refund fields
                answer.update(
                    out_request_no=refund.out_request_no,
                    refund_amount=str(refund.amount),
                    total_amount=str(trade.total_amount),
                    refund_status="REFUND_SUCCESS",
                )
            return answer

    def _refund_answer(self, trade: Trade) -> dict:
        return {
            "trade_no": trade.trade_no,
            "out_trade_no": trade.out_trade_no,
            "buyer_logon_id": "buy***@example.com",
            "buyer_user_id": trade.buyer_id,
            "refund_fee": str(trade.refunded),
        }

    # --- notifications ---------------------------------------------------------------------------------------

    def _trade_params(self, trade: Trade) -> dict[str, str]:
        params = {
            "app_id": self.app_id,
            "auth_app_id": self.app_id,
            "charset": "utf-8",
            "version": "1.0",
            "sign_type": "RSA2",
            "notify_type": "trade_status_sync",
            "trade_no": trade.trade_no,
            "out_trade_no": trade.out_trade_no,
            "seller_id": self.seller_id,
            "buyer_id": trade.buyer_id,
            "buyer_logon_id": "buy***@example.com",
            "trade_status": trade.trade_status,
            "total_amount": str(trade.total_amount),
            "receipt_amount": str(trade.total_amount),
            "buyer_pay_amount": str(trade.total_amount),
            "invoice_amount": str(trade.total_amount),
            "point_amount": "0.00",
            "subject": trade.subject,
            "gmt_create": trade.gmt_create,
            "gmt_payment": trade.gmt_payment,
            "fund_bill_list": json.dumps([{"amount": str(trade.total_amount), "fundChannel": "ALIPAYACCOUNT"}]),
        }
        if trade.gmt_close:
            params["gmt_close"] = trade.gmt_close
        return params

    def _notify(self, url: str, kind: str, reference: str, params: dict[str, str]) -> None:
        if not url:
            return  # no notify_url given when the trade was opened: Alipay sends nothing
        # Alipay sends no parameter without a value, so the SDK's check (which keeps empty ones) agrees.
        params = {name: value for name, value in params.items() if value != ""}
        params = self.sign_params(
            {**params, "notify_time": wire_time(), "notify_id": "2024" + secrets.token_hex(16) + "00"}
        )
        body = urlencode(params).encode()
        self.outbox.put(
            Notification(
                url=url,
                kind=kind,
                reference=reference,
                prepare=lambda: (body, {"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"}),
                is_acknowledged=lambda status, answer: status == 200 and answer.strip() == b"success",
            )
        )

    # =========================================================================================================
    # Part C of issue #21: 单笔转账 (alipay.fund.trans.uni.transfer, product TRANS_ACCOUNT_NO_PWD, scene
    # DIRECT_TRANSFER), its query (alipay.fund.trans.common.query), and the bills
    # (alipay.data.dataservice.bill.downloadurl.query). Apart from the payment side above; its hooks there are
    # `_payouts_init`, `_payouts_handle` and `_bill_download`.
    #
    # Fund transfers are taken only in the certificate mode: the application's certificate and Alipay's root
    # certificate named by their serial numbers (app_cert_sn, alipay_root_cert_sn: MD5 of the issuer's
    # "CN=…,OU=…,O=…,C=…" and the serial number, as Alipay defines them); `certificate_settings()` gives the three
    # certificates a merchant downloads. A payee is an Alipay account (`register_account`: its login, a phone
    # or an email, and the real name Alipay verified); a transfer to a login Alipay does not know is refused
    # (PAYEE_NOT_EXIST), and so is one whose payee_info.name is not the account's real name
    # (PAYEE_USER_INFO_ERROR): no order is made, no money moves. The same out_biz_no again answers the same
    # transfer; other parameters under it are refused (PAYMENT_INFO_INCONSISTENCY). `transfers_dealing` makes new
    # transfers answer DEALING until `complete_fund_transfer`; `balance` (None: unlimited) refuses what it cannot
    # cover (PAYER_BALANCE_NOT_ENOUGH).
    #
    # Bills: the query answers a bill_download_url for a past day; the URL (unsigned, as Alipay's download
    # centre) gives a zip of two GBK CSV files, the detail and its summary: bill_type "trade" (业务明细: a row per
    # payment and per refund) or "signcustomer" (账务明细: each money movement, transfers included). Differences on
    # request as the WeChat Pay fake's: `bill_changes[number]`, `bill_extra_rows`.
    # =========================================================================================================

    def _payouts_init(self) -> None:
        self.accounts: dict[str, str] = {}  # Alipay login -> the real name Alipay verified (register_account)
        self.accounts_open = False  # make run: any login is an account, its real name the one given
        self.fund_transfers: dict[str, FundTransfer] = {}
        self.transfers_dealing = False
        self.balance: Decimal | None = None
        self.bill_changes: dict[str, dict] = {}
        self.bill_extra_rows: list[dict] = []
        self._bill_files: dict[str, bytes] = {}
        self.root_certificate = _certificate(self.root_keys, ROOT_NAME, self.root_keys, ROOT_NAME)
        self.app_certificate = _certificate(
            self.app_keys, {**ROOT_NAME, "CN": self.app_id, "OU": "Alipay Open Platform"}, self.root_keys, ROOT_NAME
        )
        self.alipay_certificate = _certificate(
            self.alipay_keys, {**ROOT_NAME, "CN": "支付宝(中国)网络技术有限公司"}, self.root_keys, ROOT_NAME
        )

    def certificate_settings(self) -> dict[str, str]:
        """What a merchant in the certificate mode downloads: the application's public key certificate
        (appCertPublicKey_<app id>.crt), Alipay's (alipayCertPublicKey_RSA2.crt) and the root (alipayRootCert.crt)."""
        return {
            "app_cert": certificate_pem(self.app_certificate),
            "alipay_public_cert": certificate_pem(self.alipay_certificate),
            "alipay_root_cert": certificate_pem(self.root_certificate),
        }

    def register_account(self, logon_id: str, real_name: str) -> None:
        """An Alipay account: its login (phone or email) and the real name Alipay verified."""
        with self._lock:
            self.accounts[logon_id] = real_name

    def complete_fund_transfer(self, out_biz_no: str, status: str = "SUCCESS", fail_reason: str = "") -> FundTransfer:
        """A DEALING transfer ends: SUCCESS, or FAIL (the money stays with the merchant)."""
        if status not in ("SUCCESS", "FAIL"):
            raise ValueError("status is SUCCESS or FAIL")
        with self._lock:
            transfer = self.fund_transfers[out_biz_no]
            if transfer.status != "DEALING":
                raise _business("ORDER_STATUS_ERROR", "订单状态不正确")
            transfer.status, transfer.fail_reason = status, fail_reason
            if status == "FAIL" and self.balance is not None:
                self.balance += transfer.amount
            return transfer

    # --- the operations --------------------------------------------------------------------------------------

    def _payouts_handle(self, method: str, params: dict[str, str], response_key: str) -> Response:
        try:
            self._authenticate(params)
            if method in CERTIFICATE_METHODS:
                self._certificates_check(params)
            biz = self._biz_content(params)
            operation = {
                "alipay.fund.trans.uni.transfer": self._fund_transfer,
                "alipay.fund.trans.common.query": self._fund_query,
                "alipay.data.dataservice.bill.downloadurl.query": self._bill_url,
            }[method]
            answer, signed = {"code": "10000", "msg": "Success", **operation(biz)}, True
        except AlipayError as error:
            with self._lock:
                self.refused.append((method, error.body["sub_code"]))
            answer, signed = error.body, error.signed
        inner = json.dumps(answer, ensure_ascii=False, separators=(",", ":"))
        text = f'{{"{response_key}":{inner}'
        if params.get("app_cert_sn"):
            text += f',"alipay_cert_sn":"{certificate_sn(self.alipay_certificate)}"'
        if signed:
            text += f',"sign":"{base64.b64encode(self.alipay_keys.sign(inner.encode())).decode()}"'
        return Response(200, (text + "}").encode(), {"Content-Type": "application/json;charset=utf-8"})

    def _certificates_check(self, params: dict[str, str]) -> None:
        roots = params.get("alipay_root_cert_sn", "").split("_")
        if params.get("app_cert_sn") != certificate_sn(self.app_certificate) or (
            certificate_sn(self.root_certificate) not in roots
        ):
            # The fake's wording: Alipay refuses a fund transfer outside the certificate mode.
            raise _invalid(
                "isv.invalid-app-cert-sn",
                "应用公钥证书序列号或支付宝根证书序列号不正确(资金类接口只支持公钥证书方式)",
                signed=False,
            )

    def _fund_transfer(self, biz: dict) -> dict:
        if biz.get("product_code") != "TRANS_ACCOUNT_NO_PWD" or biz.get("biz_scene") != "DIRECT_TRANSFER":
            raise _invalid(
                "isv.invalid-parameter", "product_code 须为 TRANS_ACCOUNT_NO_PWD,biz_scene 须为 DIRECT_TRANSFER"
            )
        out_biz_no, title = biz.get("out_biz_no"), biz.get("order_title")
        if not isinstance(out_biz_no, str) or not OUT_BIZ_NO.fullmatch(out_biz_no):
            raise _invalid("isv.invalid-parameter", "out_biz_no 格式错误")
        if not isinstance(title, str) or not 1 <= len(title) <= 128:
            raise _invalid("isv.missing-parameter", "缺少 order_title")
        amount = money(biz.get("trans_amount"))
        if amount < TRANSFER_MIN_AMOUNT:
            raise _business("EXCEED_LIMIT_SM_MIN_AMOUNT", "单笔最低转账金额0.1元")
        payee = biz.get("payee_info") if isinstance(biz.get("payee_info"), dict) else {}
        identity_type, identity, name = payee.get("identity_type"), payee.get("identity"), payee.get("name")
        if identity_type not in ("ALIPAY_LOGON_ID", "ALIPAY_USER_ID") or not isinstance(identity, str) or not identity:
            raise _invalid("isv.invalid-parameter", "payee_info.identity 或 identity_type 错误")
        if identity_type == "ALIPAY_LOGON_ID" and not (isinstance(name, str) and name):
            raise _invalid("isv.missing-parameter", "identity_type 为 ALIPAY_LOGON_ID 时 payee_info.name 必填")
        with self._lock:
            existing = self.fund_transfers.get(out_biz_no)
            if existing is not None:  # the same request again: the same transfer, no money moves
                if existing.request_fingerprint() != (amount, identity_type, identity, name or ""):
                    raise _business("PAYMENT_INFO_INCONSISTENCY", "两次请求商户单号一样，但是参数不一致")
                return self._fund_answer(existing)
            registered = self.accounts.get(identity) or (name if self.accounts_open else None)
            if registered is None:
                raise _business("PAYEE_NOT_EXIST", "收款账号不存在")
            if name and name != registered:
                raise _business("PAYEE_USER_INFO_ERROR", "支付宝账号和姓名不匹配，请确认姓名是否正确")
            if self.balance is not None and amount > self.balance:
                raise _business("PAYER_BALANCE_NOT_ENOUGH", "付款方余额不足")
            if self.balance is not None:
                self.balance -= amount
            transfer = FundTransfer(
                out_biz_no=out_biz_no,
                order_id=datetime.now(CHINA).strftime("%Y%m%d") + "110070000" + _digits(15),
                pay_fund_order_id=datetime.now(CHINA).strftime("%Y%m%d") + "110070001" + _digits(15),
                amount=amount,
                identity_type=identity_type,
                identity=identity,
                name=name or "",
                order_title=title,
                status="DEALING" if self.transfers_dealing else "SUCCESS",
                trans_date=wire_time(),
            )
            self.fund_transfers[out_biz_no] = transfer
            return self._fund_answer(transfer)

    def _fund_answer(self, transfer: FundTransfer) -> dict:
        return {
            "out_biz_no": transfer.out_biz_no,
            "order_id": transfer.order_id,
            "pay_fund_order_id": transfer.pay_fund_order_id,
            "status": transfer.status,
            "trans_date": transfer.trans_date,
        }

    def _fund_query(self, biz: dict) -> dict:
        with self._lock:
            transfer = self.fund_transfers.get(biz.get("out_biz_no") or "")
            if transfer is None and biz.get("order_id"):
                transfer = next((t for t in self.fund_transfers.values() if t.order_id == biz["order_id"]), None)
            if transfer is None:
                raise _business("ORDER_NOT_EXIST", "转账订单不存在")
            answer = {
                "order_id": transfer.order_id,
                "pay_fund_order_id": transfer.pay_fund_order_id,
                "out_biz_no": transfer.out_biz_no,
                "trans_amount": str(transfer.amount),
                "status": transfer.status,
                "pay_date": transfer.trans_date,
            }
            if transfer.status == "FAIL":
                answer.update(fail_reason=transfer.fail_reason or "转账失败", error_code=transfer.fail_reason or "FAIL")
            return answer

    # --- bills -----------------------------------------------------------------------------------------------

    def _bill_url(self, biz: dict) -> dict:
        bill_type = biz.get("bill_type")
        if bill_type not in ("trade", "signcustomer"):
            raise _invalid("isv.invalid-parameter", "bill_type 只能是 trade 或 signcustomer")
        try:
            day = datetime.strptime(str(biz.get("bill_date")), "%Y-%m-%d").date()
        except ValueError:
            raise _invalid("isv.invalid-parameter", "bill_date 格式错误(yyyy-MM-dd)") from None
        if day >= datetime.now(CHINA).date():
            raise _business("isp.bill_not_exist", "账单不存在(当日账单次日生成)")
        with self._lock:
            archive = self._bill_zip(bill_type, day)
            token = secrets.token_urlsafe(24)
            self._bill_files[token] = archive
        return {"bill_download_url": f"{self.base_url}{BILL_DOWNLOAD_PATH}?token={token}"}

    def _bill_download(self, request: Request) -> Response:
        with self._lock:
            data = self._bill_files.get(dict(parse_qsl(request.query)).get("token", ""))
        if data is None:
            return Response(404, "账单下载地址已失效".encode(), {"Content-Type": "text/plain; charset=utf-8"})
        return Response(200, data, {"Content-Type": "application/oct-stream"})

    def _bill_zip(self, bill_type: str, day) -> bytes:
        stamp = day.strftime("%Y%m%d")
        name = "业务明细" if bill_type == "trade" else "账务明细"
        header, rows = (
            (TRADE_BILL_HEADER, self._trade_rows(day))
            if bill_type == "trade"
            else (ACCOUNT_BILL_HEADER, self._account_rows(day))
        )
        period = (
            f"#起始日期：[{day:%Y年%m月%d日} 00:00:00]   终止日期：[{day + timedelta(days=1):%Y年%m月%d日} 00:00:00]"
        )
        lines = [
            f"#支付宝{name}查询",
            f"#账号：[{self.seller_id}0156]",
            period,
            f"#-----------------------------------------{name}列表----------------------------------------",
            header,
            *(",".join(value + "\t" for value in row) for row in rows),
            f"#-----------------------------------------{name}列表结束------------------------------------",
            f"#导出时间：[{wire_time()}]",
        ]
        summary = [f"#支付宝{name}汇总查询", f"#账号：[{self.seller_id}0156]", period, f"#总笔数：{len(rows)}"]
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
            archive.writestr(f"{self.seller_id}0156_{stamp}_{name}.csv", "\r\n".join(lines).encode("gb18030"))
            archive.writestr(f"{self.seller_id}0156_{stamp}_{name}(汇总).csv", "\r\n".join(summary).encode("gb18030"))
        return buffer.getvalue()

    @staticmethod
    def _on(day, wire: str) -> bool:
        return bool(wire) and wire[:10] == day.isoformat()

    def _trade_rows(self, day) -> list[list[str]]:
        rows = []
        for trade in self.trades.values():
            change = self.bill_changes.get(trade.out_trade_no, {})
            if not self._on(day, trade.gmt_payment) or change.get("omit"):
                continue
            total = str(change.get("amount", trade.total_amount))
            rows.append([
                trade.trade_no, trade.out_trade_no, change.get("state", "交易"), trade.subject, trade.gmt_create,
                trade.gmt_payment, "", "", "", "", "buy***@example.com", total, total, "0.00", "0.00", "0.00", "0.00",
                "0.00", "", "0.00", "0.00", "", "0.00", "0.00", "",
            ])  # fmt: skip
        for refund in self.refunds.values():
            change = self.bill_changes.get(refund.out_request_no, {})
            if not self._on(day, refund.gmt_refund) or change.get("omit"):
                continue
            trade = self.trades[refund.out_trade_no]
            amount = Decimal(str(change.get("amount", refund.amount)))
            rows.append([
                trade.trade_no, trade.out_trade_no, change.get("state", "退款"), trade.subject, trade.gmt_create,
                refund.gmt_refund, "", "", "", "", "buy***@example.com", str(trade.total_amount), str(-amount),
                "0.00", "0.00", "0.00", "0.00", "0.00", "", "0.00", "0.00", refund.out_request_no, "0.00", "0.00", "",
            ])  # fmt: skip
        for extra in self.bill_extra_rows:
            if extra.get("bill") == "trade" and extra.get("date") == day:
                amount = str(extra["amount"])
                rows.append([
                    extra.get("trade_no", "20240101220000000000"), extra["out_trade_no"], extra.get("state", "交易"),
                    "extra", f"{day} 12:00:00", f"{day} 12:00:00", "", "", "", "", "buy***@example.com", amount,
                    amount, "0.00", "0.00", "0.00", "0.00", "0.00", "", "0.00", "0.00", "", "0.00", "0.00", "",
                ])  # fmt: skip
        return rows

    def _account_rows(self, day) -> list[list[str]]:
        movements = []  # (time, business number, merchant number, title, income, outgo, kind)
        for trade in self.trades.values():
            if self._on(day, trade.gmt_payment):
                movements.append((trade.gmt_payment, trade.trade_no, trade.out_trade_no, trade.subject,
                                  trade.total_amount, None, "在线支付"))  # fmt: skip
        for refund in self.refunds.values():
            if self._on(day, refund.gmt_refund):
                trade = self.trades[refund.out_trade_no]
                movements.append((refund.gmt_refund, trade.trade_no, refund.out_request_no, trade.subject, None,
                                  refund.amount, "交易退款"))  # fmt: skip
        for transfer in self.fund_transfers.values():
            if transfer.status == "SUCCESS" and self._on(day, transfer.trans_date):
                movements.append((transfer.trans_date, transfer.order_id, transfer.out_biz_no, transfer.order_title,
                                  None, transfer.amount, "转账"))  # fmt: skip
        for extra in self.bill_extra_rows:
            if extra.get("bill") == "signcustomer" and extra.get("date") == day:
                movements.append((f"{day} 12:00:00", extra.get("order_id", "20240101110070000"), extra["reference"],
                                  "extra", None, Decimal(str(extra["amount"])), extra.get("kind", "转账")))  # fmt: skip
        rows, balance = [], Decimal("100000.00")
        for at, number, reference, title, income, outgo, kind in sorted(movements, key=lambda m: m[0]):
            change = self.bill_changes.get(reference, {})
            if change.get("omit"):
                continue
            if "amount" in change:
                income, outgo = (
                    (Decimal(str(change["amount"])), None)
                    if income is not None
                    else (None, Decimal(str(change["amount"])))
                )
            balance += income or -outgo
            rows.append([
                secrets.token_hex(10), number, reference, title, at, "***", str(income) if income is not None else "",
                str(-outgo) if outgo is not None else "", str(balance), "支付宝", change.get("state", kind), "",
            ])  # fmt: skip
        return rows
