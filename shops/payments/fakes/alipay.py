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
import json
import secrets
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from decimal import Decimal, InvalidOperation
from html import escape
from urllib.parse import parse_qsl, urlencode

from shops.payments.fakes.common import (
    KeyPair,
    Notification,
    Outbox,
    Request,
    Response,
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
    if not amount.is_finite() or amount != amount.quantize(CENT) or not CENT <= amount <= MAX_AMOUNT:
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


class AlipayFake:
    """One application's Alipay, in memory. Keys are made fresh for each instance."""

    def __init__(
        self,
        *,
        app_id: str = "2021000000000001",
        seller_id: str = "2088000000000001",
        app_keys: KeyPair | None = None,
        alipay_keys: KeyPair | None = None,
    ):
        self.app_id, self.seller_id = app_id, seller_id
        self.app_keys = app_keys or KeyPair.generate()  # the application's key pair (its public half uploaded)
        self.alipay_keys = alipay_keys or KeyPair.generate()  # Alipay's own key pair (its public half downloaded)
        self.base_url = ""
        self.outbox = Outbox()
        self.trades: dict[str, Trade] = {}
        self.refunds: dict[tuple[str, str], Refund] = {}
        self.refused: list[tuple[str, str]] = []  # (method, sub_code) of every refused request
        self._lock = threading.RLock()

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
        if request.path != GATEWAY_PATH:
            return None
        params = dict(parse_qsl(request.query, keep_blank_values=True))
        if request.method == "POST":
            params.update(parse_qsl(request.body.decode("utf-8", "replace"), keep_blank_values=True))
        method = params.get("method", "")
        response_key = method.replace(".", "_") + "_response"
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
