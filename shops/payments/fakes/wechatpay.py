"""A local fake of WeChat Pay API v3 (微信支付 APIv3), faithful to the wire protocol so the wechatpayv3 SDK runs
against it unchanged (only its gateway URL is pointed here).

What it checks on each merchant request, as WeChat Pay does:
- `Authorization: WECHATPAY2-SHA256-RSA2048 mchid="…",nonce_str="…",signature="…",timestamp="…",serial_no="…"`,
  the signature RSA-SHA256 (PKCS#1 v1.5, base64) by the merchant's API certificate key over
  "METHOD\\nPATH?QUERY\\nTIMESTAMP\\nNONCE\\nBODY\\n"; the serial number is the merchant certificate's; a timestamp
  more than 5 minutes off, or a nonce seen before, is refused (401 SIGN_ERROR);
- the amounts: a prepay again under the same out_trade_no with another amount, a refund whose `amount.total` is not
  the order's, or a refund beyond what is left, are refused.

What it sends back: every answer signed by the platform key (`Wechatpay-Timestamp`, `-Nonce`, `-Signature`,
`-Serial`, `-Signature-Type`) over "TIMESTAMP\\nNONCE\\nBODY\\n". The serial is the platform public key's id
("PUB_KEY_ID_…", the 微信支付公钥 mode of merchants since 2024) or, in "certificate" mode, the platform certificate's
serial number, downloadable from /v3/certificates encrypted with the APIv3 key, as the SDK fetches it.

Notifications (payment TRANSACTION.SUCCESS; refund REFUND.SUCCESS / REFUND.ABNORMAL / REFUND.CLOSED) are POSTed to
the notify_url as JSON, the resource encrypted AEAD_AES_256_GCM with the APIv3 key, each attempt signed afresh.
The shop acknowledges with HTTP 200 or 204; anything else is a failure the fake can retry.

Endpoints: POST /v3/pay/transactions/{native,h5,jsapi}; GET /v3/pay/transactions/out-trade-no/{no}?mchid=…;
GET /v3/pay/transactions/id/{id}?mchid=…; POST /v3/pay/transactions/out-trade-no/{no}/close;
POST /v3/refund/domestic/refunds; GET /v3/refund/domestic/refunds/{out_refund_no}; GET /v3/certificates.
The buyer's side (what WeChat's app does) is `buyer_pays` and the unsigned pages under /fake/wechatpay/.
"""

import base64
import json
import re
import secrets
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from functools import cached_property
from html import escape
from urllib.parse import parse_qs, quote, urlencode, urlsplit

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from shops.payments.fakes.common import (
    KeyPair,
    Notification,
    Outbox,
    Request,
    Response,
    certificate_pem,
    html_response,
    nonce,
    redirect_response,
    verify_rsa_sha256,
)
from shops.payments.fakes.wechat_oauth import WeChatOAuthFake

CHINA = timezone(timedelta(hours=8))
TIMESTAMP_TOLERANCE = 300  # seconds, as WeChat Pay documents for request signatures
SIGNATURE_TYPE = "WECHATPAY2-SHA256-RSA2048"
AUTHORIZATION = re.compile(r"WECHATPAY2-SHA256-RSA2048 (?P<params>.+)")
AUTH_PARAM = re.compile(r'(\w+)="([^"]*)"')
OUT_TRADE_NO = re.compile(r"[0-9A-Za-z_\-|*]{6,32}")
OUT_REFUND_NO = re.compile(r"[0-9A-Za-z_\-|*@]{1,64}")
PAY_PATH = re.compile(r"/v3/pay/transactions/(?P<kind>native|h5|jsapi)")
QUERY_PATH = re.compile(r"/v3/pay/transactions/(?P<by>out-trade-no|id)/(?P<number>[^/?]+)")
CLOSE_PATH = re.compile(r"/v3/pay/transactions/out-trade-no/(?P<number>[^/?]+)/close")
REFUND_QUERY_PATH = re.compile(r"/v3/refund/domestic/refunds/(?P<number>[^/?]+)")


def wire_time(moment: datetime | None = None) -> str:
    return (moment or datetime.now(CHINA)).astimezone(CHINA).isoformat(timespec="seconds")


class WeChatPayError(Exception):
    def __init__(self, status: int, code: str, message: str):
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


@dataclass
class Trade:
    out_trade_no: str
    appid: str
    description: str
    total: int  # fen
    trade_type: str  # NATIVE | MWEB (H5) | JSAPI
    notify_url: str
    prepay_id: str
    openid: str = ""  # JSAPI: the payer named at prepay; otherwise set when the buyer pays
    trade_state: str = "NOTPAY"  # NOTPAY | SUCCESS | REFUND | CLOSED
    transaction_id: str = ""
    success_time: str = ""
    refunded: int = 0  # fen refunded successfully or in progress
    created: str = field(default_factory=wire_time)
    time_expire: datetime | None = None  # past it an unpaid trade closes

    def expire_if_due(self) -> None:
        if self.trade_state == "NOTPAY" and self.time_expire and datetime.now(CHINA) > self.time_expire:
            self.trade_state = "CLOSED"


@dataclass
class Refund:
    out_refund_no: str
    refund_id: str
    out_trade_no: str
    transaction_id: str
    refund: int
    total: int
    notify_url: str
    status: str = "PROCESSING"  # PROCESSING | SUCCESS | ABNORMAL | CLOSED
    create_time: str = field(default_factory=wire_time)
    success_time: str = ""


class WeChatPayFake:
    """One merchant's WeChat Pay, in memory. Keys are made fresh for each instance."""

    STATE_DESCRIPTIONS = {"NOTPAY": "未支付", "SUCCESS": "支付成功", "REFUND": "转入退款", "CLOSED": "已关闭"}

    def __init__(
        self,
        *,
        mchid: str = "1900000109",
        appid: str = "wxd678efh567hg6787",
        platform_mode: str = "public_key",
        merchant_keys: KeyPair | None = None,
        platform_keys: KeyPair | None = None,
    ):
        if platform_mode not in ("public_key", "certificate"):
            raise ValueError("platform_mode is 'public_key' or 'certificate'")
        self.mchid, self.appid, self.platform_mode = mchid, appid, platform_mode
        self.apiv3_key = secrets.token_hex(16)  # 32 characters, as the APIv3 key is
        self.merchant_keys = merchant_keys or KeyPair.generate()
        self.merchant_serial_no = secrets.token_hex(20).upper()
        self.platform_keys = platform_keys or KeyPair.generate()
        self.platform_certificate = self.platform_keys.certificate("Tenpay.com Root CA (fake)")
        self.platform_public_key_id = "PUB_KEY_ID_" + secrets.token_hex(16).upper()
        self.base_url = ""  # set by the server that serves it
        self.outbox = Outbox()
        self.auto_complete_refunds = True  # a refund succeeds (and notifies) right after it is accepted
        self.trades: dict[str, Trade] = {}
        self.refunds: dict[str, Refund] = {}
        self.refused: list[tuple[str, str]] = []  # (path, error code) of every refused merchant request
        self._prepay: dict[str, str] = {}  # prepay_id / code_url token -> out_trade_no
        self._nonces: dict[str, float] = {}
        self._lock = threading.RLock()

    # --- what the merchant configures ------------------------------------------------------------------------

    @property
    def platform_serial(self) -> str:
        """The serial the platform signs with: the public key id, or the certificate's serial number (hex)."""
        if self.platform_mode == "public_key":
            return self.platform_public_key_id
        return format(self.platform_certificate.serial_number, "X")

    def merchant_settings(self) -> dict[str, str]:
        """What a merchant copies from the merchant platform: the values of the WECHATPAY_* settings (keys as PEM
        text; the settings themselves read them from files)."""
        values = {
            "mchid": self.mchid,
            "appid": self.appid,
            "apiv3_key": self.apiv3_key,
            "merchant_serial_no": self.merchant_serial_no,
            "merchant_private_key": self.merchant_keys.private_pem(),
        }
        if self.platform_mode == "public_key":
            values["platform_public_key"] = self.platform_keys.public_pem()
            values["platform_public_key_id"] = self.platform_public_key_id
        return values

    # --- the buyer's side (WeChat's app) ---------------------------------------------------------------------

    def buyer_pays(self, out_trade_no: str, *, openid: str | None = None) -> Trade:
        """The buyer confirms the payment in WeChat: the trade succeeds and the payment notification is queued."""
        with self._lock:
            trade = self._trade(out_trade_no)
            if trade.trade_state != "NOTPAY":
                raise WeChatPayError(400, "ORDER_CLOSED" if trade.trade_state == "CLOSED" else "ORDERPAID", "不能支付")
            trade.trade_state = "SUCCESS"
            trade.openid = trade.openid or openid or "o" + secrets.token_urlsafe(21)[:27]
            trade.transaction_id = "4200" + datetime.now(CHINA).strftime("%Y%m%d") + secrets.token_hex(7)[:14]
            trade.success_time = wire_time()
            transaction = self._transaction(trade)
        self._notify(trade.notify_url, "TRANSACTION.SUCCESS", "transaction", out_trade_no, "支付成功", transaction)
        return trade

    def buyer_pays_jsapi(self, params: dict[str, str], *, openid: str) -> Trade:
        """WeixinJSBridge getBrandWCPayRequest: the parameters the shop's page handed over must carry the merchant's
        paySign over "appId\\ntimeStamp\\nnonceStr\\npackage\\n", and the payer must be the one named at prepay."""
        message = "".join(f"{params.get(name, '')}\n" for name in ("appId", "timeStamp", "nonceStr", "package"))
        try:
            signature = base64.b64decode(params.get("paySign", ""), validate=True)
        except ValueError:
            signature = b""
        if params.get("signType") != "RSA" or not verify_rsa_sha256(
            self.merchant_keys.public_key, message.encode(), signature
        ):
            raise WeChatPayError(400, "SIGN_ERROR", "支付验证签名失败")
        prepay_id = params.get("package", "").removeprefix("prepay_id=")
        with self._lock:
            out_trade_no = self._prepay.get(prepay_id)
            if out_trade_no is None or params.get("appId") != self.trades[out_trade_no].appid:
                raise WeChatPayError(400, "PARAM_ERROR", "prepay_id 无效")
            if self.trades[out_trade_no].openid != openid:
                raise WeChatPayError(400, "PARAM_ERROR", "支付者与下单时不一致")
        return self.buyer_pays(out_trade_no, openid=openid)

    def complete_refund(self, out_refund_no: str, status: str = "SUCCESS") -> Refund:
        """The money reaches the buyer (SUCCESS) or cannot (ABNORMAL, CLOSED); the refund notification is queued."""
        if status not in ("SUCCESS", "ABNORMAL", "CLOSED"):
            raise ValueError("status is SUCCESS, ABNORMAL or CLOSED")
        with self._lock:
            refund = self.refunds[out_refund_no]
            if refund.status != "PROCESSING":
                raise WeChatPayError(400, "INVALID_REQUEST", "退款已处理")
            refund.status = status
            if status == "SUCCESS":
                refund.success_time = wire_time()
            else:
                self.trades[refund.out_trade_no].refunded -= refund.refund
            resource = self._refund_resource(refund)
        summary = {"SUCCESS": "退款成功", "ABNORMAL": "退款异常", "CLOSED": "退款关闭"}[status]
        self._notify(refund.notify_url, f"REFUND.{status}", "refund", out_refund_no, summary, resource)
        return refund

    def trade(self, out_trade_no: str) -> Trade:
        with self._lock:
            return self._trade(out_trade_no)

    # --- HTTP ------------------------------------------------------------------------------------------------

    def handle(self, request: Request) -> Response | None:
        """The answer to `request`, or None if the path is not WeChat Pay's."""
        if (response := self._handle_buyer_browser(request)) is not None:
            return response
        if request.path.startswith("/fake/wechatpay/"):
            return self._buyer_page(request)
        if not request.path.startswith("/v3/"):
            return None
        try:
            self._authenticate(request)
            status, body = self._api(request)
        except WeChatPayError as error:
            with self._lock:
                self.refused.append((request.path, error.code))
            status, body = error.status, {"code": error.code, "message": error.message}
        return self._signed_response(status, body)

    def _api(self, request: Request) -> tuple[int, dict | None]:
        path, method = request.path, request.method
        if method == "GET" and path == "/v3/certificates":
            return 200, self._certificates()
        if method == "POST" and (match := PAY_PATH.fullmatch(path)):
            return 200, self._prepay_create(match["kind"], self._json(request))
        if method == "POST" and (match := CLOSE_PATH.fullmatch(path)):
            self._close(match["number"], self._json(request))
            return 204, None
        if method == "GET" and (match := QUERY_PATH.fullmatch(path)):
            return 200, self._query(match["by"], match["number"], parse_qs(request.query).get("mchid", [""])[0])
        if method == "POST" and path == "/v3/refund/domestic/refunds":
            return 200, self._refund_create(self._json(request))
        if method == "GET" and (match := REFUND_QUERY_PATH.fullmatch(path)):
            with self._lock:
                refund = self.refunds.get(match["number"])
                if refund is None:
                    raise WeChatPayError(404, "RESOURCE_NOT_EXISTS", "退款单不存在")
                return 200, self._refund_resource(refund)
        raise WeChatPayError(404, "NOT_FOUND", "请求的资源不存在")

    def _authenticate(self, request: Request) -> None:
        match = AUTHORIZATION.fullmatch(request.headers.get("authorization", ""))
        if not match:
            raise WeChatPayError(401, "SIGN_ERROR", "Authorization 缺失或格式错误")
        params = dict(AUTH_PARAM.findall(match["params"]))
        if params.get("mchid") != self.mchid:
            raise WeChatPayError(401, "SIGN_ERROR", "商户号不匹配")
        if params.get("serial_no") != self.merchant_serial_no:
            raise WeChatPayError(401, "SIGN_ERROR", "商户证书序列号不存在")
        timestamp, nonce_str = params.get("timestamp", ""), params.get("nonce_str", "")
        is_number = timestamp.isdigit() and len(timestamp) <= 12
        if not is_number or abs(time.time() - int(timestamp)) > TIMESTAMP_TOLERANCE:
            raise WeChatPayError(401, "SIGN_ERROR", "时间戳超出有效范围")
        if not nonce_str or len(nonce_str) > 64:
            raise WeChatPayError(401, "SIGN_ERROR", "nonce_str 缺失")
        body = request.body.decode("utf-8", "replace")
        message = f"{request.method}\n{request.target}\n{timestamp}\n{nonce_str}\n{body}\n"
        try:
            signature = base64.b64decode(params.get("signature", ""), validate=True)
        except ValueError:
            signature = b""
        if not verify_rsa_sha256(self.merchant_keys.public_key, message.encode(), signature):
            raise WeChatPayError(401, "SIGN_ERROR", "签名错误")
        now = time.time()
        with self._lock:
            self._nonces = {seen: at for seen, at in self._nonces.items() if now - at <= TIMESTAMP_TOLERANCE * 2}
            if nonce_str in self._nonces:
                raise WeChatPayError(401, "SIGN_ERROR", "重复的请求(nonce_str 已使用)")
            self._nonces[nonce_str] = now

    def _signed_response(self, status: int, body: dict | None) -> Response:
        text = json.dumps(body, ensure_ascii=False, separators=(",", ":")) if body is not None else ""
        headers = {"Content-Type": "application/json; charset=utf-8", "Request-ID": secrets.token_hex(16)}
        headers.update(self.signature_headers(text.encode()))
        return Response(status, text.encode(), headers)

    def signature_headers(self, body: bytes) -> dict[str, str]:
        """The platform's signature headers over `body`, made now (every answer and notification attempt)."""
        timestamp, nonce_str = str(int(time.time())), nonce()
        message = f"{timestamp}\n{nonce_str}\n".encode() + body + b"\n"
        return {
            "Wechatpay-Timestamp": timestamp,
            "Wechatpay-Nonce": nonce_str,
            "Wechatpay-Signature": base64.b64encode(self.platform_keys.sign(message)).decode(),
            "Wechatpay-Serial": self.platform_serial,
            "Wechatpay-Signature-Type": SIGNATURE_TYPE,
        }

    @staticmethod
    def _json(request: Request) -> dict:
        try:
            body = json.loads(request.body)
        except ValueError:
            raise WeChatPayError(400, "PARAM_ERROR", "请求体不是合法的 JSON") from None
        if not isinstance(body, dict):
            raise WeChatPayError(400, "PARAM_ERROR", "请求体不是 JSON 对象")
        return body

    # --- the API's operations --------------------------------------------------------------------------------

    def _certificates(self) -> dict:
        nonce_str, associated = nonce(12), "certificate"
        pem = certificate_pem(self.platform_certificate)
        certificate = self.platform_certificate
        return {
            "data": [
                {
                    "serial_no": format(certificate.serial_number, "X"),
                    "effective_time": wire_time(certificate.not_valid_before_utc),
                    "expire_time": wire_time(certificate.not_valid_after_utc),
                    "encrypt_certificate": {
                        "algorithm": "AEAD_AES_256_GCM",
                        "nonce": nonce_str,
                        "associated_data": associated,
                        "ciphertext": self.encrypt(pem, nonce_str, associated),
                    },
                }
            ]
        }

    def _prepay_create(self, kind: str, body: dict) -> dict:
        if body.get("mchid") != self.mchid or body.get("appid") != self.appid:
            raise WeChatPayError(400, "PARAM_ERROR", "appid 和 mch_id 不匹配")
        out_trade_no = body.get("out_trade_no")
        if not isinstance(out_trade_no, str) or not OUT_TRADE_NO.fullmatch(out_trade_no):
            raise WeChatPayError(400, "PARAM_ERROR", "out_trade_no 格式错误")
        description, notify_url = body.get("description"), body.get("notify_url")
        if not isinstance(description, str) or not description or len(description.encode()) > 127:
            raise WeChatPayError(400, "PARAM_ERROR", "description 格式错误")
        if not isinstance(notify_url, str) or not notify_url.startswith(("https://", "http://")):
            raise WeChatPayError(400, "PARAM_ERROR", "notify_url 格式错误")
        amount = body.get("amount") or {}
        total = amount.get("total") if isinstance(amount, dict) else None
        if not isinstance(total, int) or isinstance(total, bool) or total <= 0:
            raise WeChatPayError(400, "PARAM_ERROR", "amount.total 必须是正整数(分)")
        if amount.get("currency", "CNY") != "CNY":
            raise WeChatPayError(400, "PARAM_ERROR", "仅支持人民币")
        openid = ""
        if kind == "jsapi":
            openid = (body.get("payer") or {}).get("openid") if isinstance(body.get("payer"), dict) else None
            if not isinstance(openid, str) or not openid:
                raise WeChatPayError(400, "PARAM_ERROR", "JSAPI 下单需要 payer.openid")
        if kind == "h5":
            scene = body.get("scene_info")
            if not (
                isinstance(scene, dict) and scene.get("payer_client_ip") and isinstance(scene.get("h5_info"), dict)
            ):
                raise WeChatPayError(400, "PARAM_ERROR", "H5 下单需要 scene_info.payer_client_ip 和 h5_info")
        time_expire = None
        if body.get("time_expire") is not None:
            try:
                time_expire = datetime.fromisoformat(body["time_expire"])
            except (TypeError, ValueError):
                raise WeChatPayError(400, "PARAM_ERROR", "time_expire 格式错误") from None
            if time_expire.tzinfo is None:
                raise WeChatPayError(400, "PARAM_ERROR", "time_expire 需要时区")
        trade_type = {"native": "NATIVE", "h5": "MWEB", "jsapi": "JSAPI"}[kind]
        with self._lock:
            trade = self.trades.get(out_trade_no)
            if trade is not None:
                trade.expire_if_due()
                if trade.trade_state == "SUCCESS" or trade.trade_state == "REFUND":
                    raise WeChatPayError(400, "ORDERPAID", "该订单已支付")
                if trade.trade_state == "CLOSED":
                    raise WeChatPayError(400, "ORDER_CLOSED", "订单已关闭")
                if (trade.total, trade.description, trade.trade_type) != (total, description, trade_type):
                    raise WeChatPayError(400, "INVALID_REQUEST", "201 商户订单号重复(参数与原订单不一致)")
            else:
                trade = Trade(
                    out_trade_no=out_trade_no,
                    appid=self.appid,
                    description=description,
                    total=total,
                    trade_type=trade_type,
                    notify_url=notify_url,
                    prepay_id="wx" + datetime.now(CHINA).strftime("%d%H%M%S") + secrets.token_hex(13),
                    openid=openid,
                    time_expire=time_expire,
                )
                self.trades[out_trade_no] = trade
                self._prepay[trade.prepay_id] = out_trade_no
            if kind == "jsapi":
                return {"prepay_id": trade.prepay_id}
            if kind == "native":
                return {"code_url": f"weixin://wxpay/bizpayurl?pr={trade.prepay_id[-12:]}"}
            return {"h5_url": f"{self.base_url}/fake/wechatpay/h5?{urlencode({'prepay_id': trade.prepay_id})}"}

    def _query(self, by: str, number: str, mchid: str) -> dict:
        if mchid != self.mchid:
            raise WeChatPayError(400, "PARAM_ERROR", "mchid 不匹配")
        with self._lock:
            if by == "id":
                trade = next((t for t in self.trades.values() if t.transaction_id == number), None)
                if trade is None:
                    raise WeChatPayError(404, "ORDER_NOT_EXIST", "订单不存在")
            else:
                trade = self._trade(number)
            return self._transaction(trade)

    def _close(self, out_trade_no: str, body: dict) -> None:
        if body.get("mchid") != self.mchid:
            raise WeChatPayError(400, "PARAM_ERROR", "mchid 不匹配")
        with self._lock:
            trade = self._trade(out_trade_no)
            if trade.trade_state in ("SUCCESS", "REFUND"):
                raise WeChatPayError(400, "ORDERPAID", "订单已支付,不能关闭")
            trade.trade_state = "CLOSED"

    def _refund_create(self, body: dict) -> dict:
        out_refund_no, notify_url = body.get("out_refund_no"), body.get("notify_url", "")
        if not isinstance(out_refund_no, str) or not OUT_REFUND_NO.fullmatch(out_refund_no):
            raise WeChatPayError(400, "PARAM_ERROR", "out_refund_no 格式错误")
        amount = body.get("amount")
        if not isinstance(amount, dict):
            raise WeChatPayError(400, "PARAM_ERROR", "amount 缺失")
        refund_fen, total = amount.get("refund"), amount.get("total")
        if not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in (refund_fen, total)):
            raise WeChatPayError(400, "PARAM_ERROR", "amount.refund 和 amount.total 必须是正整数(分)")
        if amount.get("currency") != "CNY":
            raise WeChatPayError(400, "PARAM_ERROR", "amount.currency 必须是 CNY")
        with self._lock:
            if "out_trade_no" in body:
                trade = self._trade(body["out_trade_no"])
            else:
                trade = next((t for t in self.trades.values() if t.transaction_id == body.get("transaction_id")), None)
                if trade is None:
                    raise WeChatPayError(404, "ORDER_NOT_EXIST", "订单不存在")
            existing = self.refunds.get(out_refund_no)
            if existing is not None:  # the same request again (a retry) answers the same refund
                if (existing.out_trade_no, existing.refund, existing.total) != (trade.out_trade_no, refund_fen, total):
                    raise WeChatPayError(400, "INVALID_REQUEST", "退款单号重复(参数与原退款不一致)")
                return self._refund_resource(existing)
            if trade.trade_state not in ("SUCCESS", "REFUND"):
                raise WeChatPayError(400, "INVALID_REQUEST", "订单未支付,不能退款")
            if total != trade.total:
                raise WeChatPayError(400, "PARAM_ERROR", "订单金额或退款金额与之前请求不一致")
            if refund_fen > trade.total - trade.refunded:
                raise WeChatPayError(400, "INVALID_REQUEST", "申请退款金额超过订单可退金额")
            refund = Refund(
                out_refund_no=out_refund_no,
                refund_id="50" + secrets.token_hex(14),
                out_trade_no=trade.out_trade_no,
                transaction_id=trade.transaction_id,
                refund=refund_fen,
                total=total,
                notify_url=notify_url if isinstance(notify_url, str) else "",
            )
            self.refunds[out_refund_no] = refund
            trade.refunded += refund_fen
            trade.trade_state = "REFUND"
            answer = self._refund_resource(refund)
        if self.auto_complete_refunds:
            threading.Timer(0.05, self.complete_refund, args=[out_refund_no]).start()
        return answer

    # --- shapes ----------------------------------------------------------------------------------------------

    def _trade(self, out_trade_no: str) -> Trade:
        trade = self.trades.get(out_trade_no)
        if trade is None:
            raise WeChatPayError(404, "ORDER_NOT_EXIST", "订单不存在")
        trade.expire_if_due()
        return trade

    def _transaction(self, trade: Trade) -> dict:
        answer = {
            "appid": trade.appid,
            "mchid": self.mchid,
            "out_trade_no": trade.out_trade_no,
            "trade_type": trade.trade_type,
            "trade_state": trade.trade_state,
            "trade_state_desc": self.STATE_DESCRIPTIONS[trade.trade_state],
            "amount": {"total": trade.total, "currency": "CNY"},
        }
        if trade.transaction_id:
            answer.update(
                transaction_id=trade.transaction_id,
                bank_type="OTHERS",
                success_time=trade.success_time,
                payer={"openid": trade.openid},
                amount={"total": trade.total, "payer_total": trade.total, "currency": "CNY", "payer_currency": "CNY"},
            )
        return answer

    def _refund_resource(self, refund: Refund) -> dict:
        answer = {
            "mchid": self.mchid,
            "refund_id": refund.refund_id,
            "out_refund_no": refund.out_refund_no,
            "transaction_id": refund.transaction_id,
            "out_trade_no": refund.out_trade_no,
            "channel": "ORIGINAL",
            "user_received_account": "支付用户零钱",
            "create_time": refund.create_time,
            "status": refund.status,
            "refund_status": refund.status,  # the notification's name for it
            "amount": {
                "total": refund.total,
                "refund": refund.refund,
                "payer_total": refund.total,
                "payer_refund": refund.refund,
                "currency": "CNY",
            },
        }
        if refund.success_time:
            answer["success_time"] = refund.success_time
        return answer

    def encrypt(self, plaintext: str, nonce_str: str, associated_data: str) -> str:
        """AEAD_AES_256_GCM with the APIv3 key, base64 of ciphertext and tag: how notifications and certificates
        are encrypted."""
        aead = AESGCM(self.apiv3_key.encode())
        sealed = aead.encrypt(nonce_str.encode(), plaintext.encode(), associated_data.encode())
        return base64.b64encode(sealed).decode()

    def _notify(self, url: str, event_type: str, original_type: str, reference: str, summary: str, resource: dict):
        nonce_str = nonce(12)
        envelope = {
            "id": f"EV-{secrets.token_hex(10)}",
            "create_time": wire_time(),
            "resource_type": "encrypt-resource",
            "event_type": event_type,
            "summary": summary,
            "resource": {
                "original_type": original_type,
                "algorithm": "AEAD_AES_256_GCM",
                "ciphertext": self.encrypt(json.dumps(resource, ensure_ascii=False), nonce_str, original_type),
                "associated_data": original_type,
                "nonce": nonce_str,
            },
        }
        body = json.dumps(envelope, ensure_ascii=False, separators=(",", ":")).encode()

        def prepare() -> tuple[bytes, dict[str, str]]:
            return body, {"Content-Type": "application/json", **self.signature_headers(body)}

        self.outbox.put(
            Notification(
                url=url,
                kind=event_type,
                reference=reference,
                prepare=prepare,
                is_acknowledged=lambda status, _answer: status in (200, 204),
            )
        )

    # --- pages a person uses as the buyer's WeChat (make run) ------------------------------------------------

    def _buyer_page(self, request: Request) -> Response:
        params = {name: values[0] for name, values in parse_qs(request.query).items()}
        if request.method == "POST":
            params.update({name: values[0] for name, values in parse_qs(request.body.decode()).items()})
        with self._lock:
            out_trade_no = self._prepay.get(params.get("prepay_id", ""))
            if out_trade_no is None and request.path == "/fake/wechatpay/native":
                code = params.get("pr", "")
                out_trade_no = next((t.out_trade_no for t in self.trades.values() if t.prepay_id.endswith(code)), None)
            trade = self.trades.get(out_trade_no or "")
        if trade is None:
            return html_response(404, "<p>支付单不存在 (no such payment)</p>")
        if request.method == "POST":
            try:
                self.buyer_pays(trade.out_trade_no)
            except WeChatPayError as error:
                return html_response(400, f"<p>{escape(error.message)}</p>")
            if params.get("redirect_url"):
                return redirect_response(params["redirect_url"])
            return html_response(200, "<p>支付成功 (paid). You may close this page.</p>")
        amount = f"{trade.total // 100}.{trade.total % 100:02d}"
        hidden = "".join(
            f'<input type="hidden" name="{escape(name)}" value="{escape(value)}">'
            for name, value in (("prepay_id", trade.prepay_id), ("redirect_url", params.get("redirect_url", "")))
        )
        return html_response(
            200,
            '<!doctype html><html lang="zh-CN"><meta charset="utf-8"><title>微信支付 (fake)</title>'
            f"<h1>微信支付 (fake)</h1><p>{escape(trade.description)}</p><p>¥{amount}</p>"
            f"<p>状态 (state): {escape(trade.trade_state)}</p>"
            f'<form method="post" action="/fake/wechatpay/pay">{hidden}<button type="submit">确认支付 (pay)</button>'
            "</form></html>",
        )

    # --- the buyer's browser: WeChat's web OAuth, and the H5 page's Referer check (issue #21, checkout) ---------

    # The merchant's H5 payment domains (H5支付域名): WeChat's H5 page refuses a visit whose Referer is not on one of
    # them ("商家参数格式有误"), so the shop's page must send one. None: not checked.
    h5_domains: set[str] | None = None

    @cached_property
    def oauth(self) -> WeChatOAuthFake:
        """The web OAuth of the official account whose AppID this merchant pays with (the openids JSAPI needs)."""
        return WeChatOAuthFake(appid=self.appid)

    def _handle_buyer_browser(self, request: Request) -> Response | None:
        if self.h5_domains is not None and request.method == "GET" and request.path == "/fake/wechatpay/h5":
            referer = urlsplit(request.headers.get("referer", "")).hostname
            if referer not in self.h5_domains:
                with self._lock:
                    self.refused.append((request.path, "REFERER_INVALID"))
                return html_response(400, "<p>商家参数格式有误，请联系商家解决 (the Referer is not an H5 domain)</p>")
        return self.oauth.handle(request)


def fake_code_url_page(base_url: str, code_url: str) -> str:
    """Where a person can play the buyer who scanned a Native `code_url` (make run has no phone to scan with)."""
    return f"{base_url}/fake/wechatpay/native?pr={quote(code_url.rsplit('pr=', 1)[-1])}"
