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
import gzip
import hashlib
import json
import re
import secrets
import threading
import time
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from functools import cached_property
from html import escape
from urllib.parse import parse_qs, parse_qsl, quote, urlencode, urlsplit

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


# --- Part C of issue #21: 商家转账 (transfer bills) and the trade and fund-flow bills ---------------------------
# Shapes and constants of the payouts side; its endpoints and controls are the last section of WeChatPayFake.

TRANSFER_BILLS_PATH = "/v3/fund-app/mch-transfer/transfer-bills"
TRANSFER_QUERY_PATH = re.compile(r"/v3/fund-app/mch-transfer/transfer-bills/out-bill-no/(?P<number>[^/?]+)")
TRANSFER_CANCEL_PATH = re.compile(r"/v3/fund-app/mch-transfer/transfer-bills/out-bill-no/(?P<number>[^/?]+)/cancel")
BILL_PATHS = {"/v3/bill/tradebill": "trade", "/v3/bill/fundflowbill": "fundflow"}
BILL_DOWNLOAD_PATH = "/v3/billdownload/file"
TRANSFER_PAYEE_PAGE = "/fake/wechatpay/transfers"  # a person plays the payees here (make run)
OUT_BILL_NO = re.compile(r"[0-9A-Za-z]{1,32}")
# The scenes a merchant may have opened (商家转账 → 转账场景), each with the report fields it requires
# (transfer_scene_report_infos, every info_type exactly) and the receipt wordings it allows (user_recv_perception).
TRANSFER_SCENES = {
    # 现金营销
    "1000": {"infos": ("活动名称", "奖励说明"), "perceptions": ("活动奖励", "现金奖励")},
    # 佣金报酬: paying distributors their commission
    "1005": {"infos": ("岗位类型", "报酬说明"), "perceptions": ("劳务报酬", "报销款", "企业补贴", "开工利是")},
}
TRANSFER_FINAL_STATES = ("SUCCESS", "FAIL", "CANCELLED")
TRANSFER_CONFIRM_WINDOW = timedelta(hours=24)  # an unconfirmed bill is closed after this (FAIL, OVERDUE_CLOSE)
TRANSFER_NAME_REQUIRED_FEN = 200_000  # from 2,000 yuan the payee's real name is required (user_name)
TRADE_BILL_HEADER = (
    "交易时间,公众账号ID,商户号,特约商户号,设备号,微信订单号,商户订单号,用户标识,交易类型,交易状态,付款银行,货币种类,"
    "应结订单金额,代金券金额,微信退款单号,商户退款单号,退款金额,充值券退款金额,退款类型,退款状态,商品名称,商户数据包,"
    "手续费,费率,订单金额,申请退款金额,费率备注"
)
TRADE_BILL_SUMMARY = "总交易单数,应结订单总金额,退款总金额,充值券退款总金额,手续费总金额,订单总金额,申请退款总金额"
FUNDFLOW_BILL_HEADER = (
    "记账时间,微信支付业务单号,资金流水单号,业务名称,业务类型,收支类型,收支金额（元）,账户结余（元）,资金变更提交申请人,备注,"
    "业务凭证号"
)
FUNDFLOW_BILL_SUMMARY = "资金流水总笔数,收入笔数,收入金额,支出笔数,支出金额"


@dataclass
class TransferBill:
    """One 商家转账 bill: created by the merchant, confirmed (or not) by the payee in WeChat."""

    out_bill_no: str
    transfer_bill_no: str
    appid: str
    openid: str
    amount: int  # fen
    remark: str
    scene_id: str
    notify_url: str
    user_name: str  # the real name the merchant gave (decrypted), or ""
    package_info: str
    state: str = "WAIT_USER_CONFIRM"  # ACCEPTED … WAIT_USER_CONFIRM, TRANSFERING, SUCCESS | FAIL | CANCELING, CANCELLED
    fail_reason: str = ""
    created: datetime = field(default_factory=lambda: datetime.now(CHINA))
    updated: datetime = field(default_factory=lambda: datetime.now(CHINA))

    def request_fingerprint(self) -> tuple:
        return (self.appid, self.openid, self.amount, self.scene_id)


def yuan(amount: int) -> str:
    """Fen as a bill shows yuan: 4480 -> "44.80", -27 -> "-0.27"."""
    sign = "-" if amount < 0 else ""
    return f"{sign}{abs(amount) // 100}.{abs(amount) % 100:02d}"


def fen(text: str) -> int:
    """The inverse of `yuan`."""
    sign = -1 if text.startswith("-") else 1
    whole, _dot, cents = text.lstrip("-").partition(".")
    return sign * (int(whole) * 100 + int((cents + "00")[:2]))


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
        self._payouts_init()

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
        if request.path == TRANSFER_PAYEE_PAGE:
            return self._payee_page(request)
        if (response := self._handle_buyer_browser(request)) is not None:
            return response
        if request.path.startswith("/fake/wechatpay/"):
            return self._buyer_page(request)
        if not request.path.startswith("/v3/"):
            return None
        if request.path == BILL_DOWNLOAD_PATH:
            return self._bill_download(request)
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
        return self._payouts_api(request)

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

    # =========================================================================================================
    # Part C of issue #21: 商家转账 (transfer bills, in the user-confirmation mode required since 2025-01-15), and
    # the trade and fund-flow bills. Apart from the payment side above; its hooks there are `_payouts_init`,
    # `_payouts_api` and `_bill_download`.
    #
    # POST /v3/fund-app/mch-transfer/transfer-bills creates a bill: checked as WeChat Pay checks it (appid, an
    # out_bill_no of letters and digits, a scene the merchant has with exactly its report fields and an allowed
    # receipt wording, the payee's real name encrypted with the platform key under the Wechatpay-Serial header and
    # required from 2,000 yuan), answered WAIT_USER_CONFIRM with the package_info the payee's WeChat needs. The
    # same out_bill_no again answers the same bill (nobody is paid twice); other parameters under it are refused.
    # The payee confirms in WeChat (`payee_confirms`, what WeixinJSBridge requestMerchantTransfer does with mchId,
    # appId and package): TRANSFERING, then SUCCESS, or FAIL (a real name that is not the payee's: NAME_NOT_CORRECT;
    # `transfer_fails` for any other reason). Unconfirmed for 24 hours a bill is closed: FAIL with OVERDUE_CLOSE
    # (`transfer_expires` plays the day passing). The merchant may cancel a bill that is not final: CANCELING,
    # then CANCELLED. Each final state is notified (MCHTRANSFER.BILL.FINISHED, resource mch_payment, encrypted and
    # signed as payment notifications are, through the outbox). GET …/out-bill-no/{no} answers the bill.
    #
    # Bills: GET /v3/bill/tradebill?bill_date=…&bill_type=ALL&tar_type=GZIP and /v3/bill/fundflowbill?bill_date=…
    # &account_type=BASIC&tar_type=GZIP answer a download_url and the SHA1 of the bill; GET /v3/billdownload/file?
    # token=… (signed like any request) answers the file itself, gzip, unsigned. The trade bill has a row per
    # payment that succeeded that day (China time) and per refund that succeeded; the fund-flow bill one per money
    # movement: payments in, refunds and transfers out. Every value is prefixed with a backquote, and a summary
    # follows, as in WeChat Pay's bills. Differences on request: `bill_changes[number]` = {"omit": True} (the row
    # is left out), {"amount": fen} or {"state": "…"}; `bill_extra_rows` are rows the merchant never made.
    # =========================================================================================================

    def _payouts_init(self) -> None:
        self.transfer_bills: dict[str, TransferBill] = {}
        self.payees: dict[str, str] = {}  # openid -> the real name the payee registered in WeChat (register_payee)
        self.transfer_fail_reasons: dict[str, str] = {}  # openid -> why every transfer to them fails when confirmed
        self.auto_complete_transfers = True  # a confirmed bill succeeds at once (else it stays TRANSFERING)
        self.transfer_rate_limit: int | None = None  # transfer API requests a second before FREQUENCY_LIMITED
        self.bill_changes: dict[str, dict] = {}
        self.bill_extra_rows: list[dict] = []
        self._bill_files: dict[str, bytes] = {}
        self._transfer_request_times: list[float] = []

    # --- the payee's side (WeChat's app) ---------------------------------------------------------------------

    def register_payee(self, openid: str, real_name: str) -> None:
        """A WeChat user under the merchant's AppID, with the real name WeChat Pay knows them by."""
        with self._lock:
            self.payees[openid] = real_name

    def payee_confirms(self, params: dict[str, str], *, openid: str) -> TransferBill:
        """The payee taps 确认收款 in WeChat: what WeixinJSBridge.invoke("requestMerchantTransfer", {mchId, appId,
        package}) does. The package must be a bill of this merchant and AppID waiting for confirmation, and the
        WeChat user the bill's payee."""
        with self._lock:
            bill = next((b for b in self.transfer_bills.values() if b.package_info == params.get("package")), None)
            if bill is None or params.get("mchId") != self.mchid or params.get("appId") != bill.appid:
                raise WeChatPayError(400, "PARAM_ERROR", "package 参数有误")
            self._transfer_expire_if_due(bill)
            if bill.state != "WAIT_USER_CONFIRM":
                raise WeChatPayError(400, "INVALID_REQUEST", f"转账单状态为 {bill.state},不能确认收款")
            if openid != bill.openid:
                raise WeChatPayError(400, "PARAM_ERROR", "收款用户与转账单不一致")
            self._transfer_set(bill, "TRANSFERING")
            if self.auto_complete_transfers:
                self._transfer_settle(bill)
            return bill

    def complete_transfer(self, out_bill_no: str) -> TransferBill:
        """A TRANSFERING bill (auto_complete_transfers off) reaches its end: SUCCESS, or FAIL as the payee's account
        makes it."""
        with self._lock:
            bill = self._transfer_bill(out_bill_no)
            if bill.state != "TRANSFERING":
                raise WeChatPayError(400, "INVALID_REQUEST", f"转账单状态为 {bill.state}")
            self._transfer_settle(bill)
            return bill

    def transfer_fails(self, out_bill_no: str, reason: str = "ACCOUNT_FROZEN") -> TransferBill:
        """WeChat Pay fails a bill that is not final (the payee's account frozen, a risk control …)."""
        with self._lock:
            bill = self._transfer_bill(out_bill_no)
            if bill.state in TRANSFER_FINAL_STATES:
                raise WeChatPayError(400, "INVALID_REQUEST", f"转账单已是终态 {bill.state}")
            self._transfer_set(bill, "FAIL", fail_reason=reason)
            return bill

    def transfer_expires(self, out_bill_no: str) -> TransferBill:
        """24 hours pass without the payee confirming: WeChat Pay closes the bill (FAIL, OVERDUE_CLOSE)."""
        with self._lock:
            bill = self._transfer_bill(out_bill_no)
            bill.created -= TRANSFER_CONFIRM_WINDOW
            self._transfer_expire_if_due(bill)
            return bill

    def transfer_bill(self, out_bill_no: str) -> TransferBill:
        with self._lock:
            return self._transfer_bill(out_bill_no)

    # --- the transfer API ------------------------------------------------------------------------------------

    def _payouts_api(self, request: Request) -> tuple[int, dict | None]:
        path, method = request.path, request.method
        if path.startswith("/v3/fund-app/mch-transfer/"):
            self._transfer_rate_check()
        if method == "POST" and path == TRANSFER_BILLS_PATH:
            return 200, self._transfer_create(request)
        if method == "POST" and (match := TRANSFER_CANCEL_PATH.fullmatch(path)):
            return 200, self._transfer_cancel(match["number"])
        if method == "GET" and (match := TRANSFER_QUERY_PATH.fullmatch(path)):
            with self._lock:
                bill = self.transfer_bills.get(match["number"])
                if bill is None:
                    raise WeChatPayError(404, "NOT_FOUND", "记录不存在")
                self._transfer_expire_if_due(bill)
                return 200, self._transfer_resource(bill, query=True)
        if method == "GET" and path in BILL_PATHS:
            return 200, self._bill_apply(BILL_PATHS[path], parse_qs(request.query))
        raise WeChatPayError(404, "NOT_FOUND", "请求的资源不存在")

    def _transfer_rate_check(self) -> None:
        if not self.transfer_rate_limit:
            return
        now = time.monotonic()
        with self._lock:
            self._transfer_request_times = [t for t in self._transfer_request_times if now - t < 1.0]
            if len(self._transfer_request_times) >= self.transfer_rate_limit:
                raise WeChatPayError(429, "FREQUENCY_LIMITED", "频率超限,请降低请求频率")
            self._transfer_request_times.append(now)

    def _transfer_create(self, request: Request) -> dict:
        body = self._json(request)
        if body.get("appid") != self.appid:
            raise WeChatPayError(400, "PARAM_ERROR", "appid 与商户号不匹配")
        out_bill_no, openid = body.get("out_bill_no"), body.get("openid")
        if not isinstance(out_bill_no, str) or not OUT_BILL_NO.fullmatch(out_bill_no):
            raise WeChatPayError(400, "PARAM_ERROR", "out_bill_no 只能由数字、大小写字母组成,最长32位")
        if not isinstance(openid, str) or not 1 <= len(openid) <= 64:
            raise WeChatPayError(400, "PARAM_ERROR", "openid 格式错误")
        scene_id = body.get("transfer_scene_id")
        scene = TRANSFER_SCENES.get(scene_id) if isinstance(scene_id, str) else None
        if scene is None:
            raise WeChatPayError(403, "NO_AUTH", "商户未开通该转账场景")
        amount = body.get("transfer_amount")
        if not isinstance(amount, int) or isinstance(amount, bool) or amount <= 0:
            raise WeChatPayError(400, "PARAM_ERROR", "transfer_amount 必须是正整数(分)")
        remark = body.get("transfer_remark")
        if not isinstance(remark, str) or not 1 <= len(remark) <= 32:
            raise WeChatPayError(400, "PARAM_ERROR", "transfer_remark 必填,最多32个字符")
        notify_url = body.get("notify_url", "")
        if notify_url and (
            not isinstance(notify_url, str) or not notify_url.startswith(("https://", "http://")) or "?" in notify_url
        ):
            raise WeChatPayError(400, "PARAM_ERROR", "notify_url 格式错误(不能携带参数)")
        perception = body.get("user_recv_perception")
        if perception is not None and perception not in scene["perceptions"]:
            raise WeChatPayError(400, "INVALID_REQUEST", "暂不支持展示当前传入的用户收款感知")
        infos = body.get("transfer_scene_report_infos")
        given = (
            {info.get("info_type"): info.get("info_content") for info in infos if isinstance(info, dict)}
            if isinstance(infos, list)
            else {}
        )
        if sorted(given) != sorted(scene["infos"]) or not all(
            isinstance(content, str) and content for content in given.values()
        ):
            raise WeChatPayError(400, "PARAM_ERROR", "需传入转账场景报备信息,请检查")
        user_name = self._transfer_user_name(request, body.get("user_name"))
        if amount >= TRANSFER_NAME_REQUIRED_FEN and not user_name:
            raise WeChatPayError(400, "PARAM_ERROR", "转账金额 >= 2,000元时,收款用户姓名必填")
        with self._lock:
            bill = self.transfer_bills.get(out_bill_no)
            if bill is not None:  # the same request again (a retry): the same bill, nothing new is paid
                if bill.request_fingerprint() != (self.appid, openid, amount, scene_id):
                    raise WeChatPayError(400, "INVALID_REQUEST", "商户单号重复,且请求参数与原单不一致")
                self._transfer_expire_if_due(bill)
            else:
                bill = TransferBill(
                    out_bill_no=out_bill_no,
                    transfer_bill_no="1330000" + "".join(secrets.choice("0123456789") for _ in range(33)),
                    appid=self.appid,
                    openid=openid,
                    amount=amount,
                    remark=remark,
                    scene_id=scene_id,
                    notify_url=notify_url or "",
                    user_name=user_name,
                    package_info=base64.b64encode(secrets.token_bytes(48)).decode(),
                )
                self.transfer_bills[out_bill_no] = bill
            answer = {
                "out_bill_no": bill.out_bill_no,
                "transfer_bill_no": bill.transfer_bill_no,
                "create_time": wire_time(bill.created),
                "state": bill.state,
            }
            if bill.state == "WAIT_USER_CONFIRM":
                answer["package_info"] = bill.package_info
            if bill.fail_reason:
                answer["fail_reason"] = bill.fail_reason
            return answer

    def _transfer_user_name(self, request: Request, value) -> str:
        """The real name, decrypted with the platform private key (RSA-OAEP, SHA-1), as sensitive fields are sent;
        the Wechatpay-Serial header must name the key it was encrypted with."""
        if value in (None, ""):
            return ""
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric.padding import MGF1, OAEP

        if request.headers.get("wechatpay-serial") != self.platform_serial:
            raise WeChatPayError(400, "PARAM_ERROR", "Wechatpay-Serial 与加密敏感信息所用的公钥不一致")
        try:
            plain = self.platform_keys.private_key.decrypt(
                base64.b64decode(value, validate=True),
                OAEP(mgf=MGF1(algorithm=hashes.SHA1()), algorithm=hashes.SHA1(), label=None),  # noqa: S303
            )
            return plain.decode("utf-8")
        except (TypeError, ValueError):
            raise WeChatPayError(400, "PARAM_ERROR", "user_name 解密失败") from None

    def _transfer_cancel(self, out_bill_no: str) -> dict:
        with self._lock:
            bill = self.transfer_bills.get(out_bill_no)
            if bill is None:
                raise WeChatPayError(404, "NOT_FOUND", "记录不存在")
            self._transfer_expire_if_due(bill)
            if bill.state in ("SUCCESS", "FAIL"):
                raise WeChatPayError(400, "INVALID_REQUEST", f"转账单已是终态 {bill.state},不能撤销")
            if bill.state != "CANCELLED":
                # Accepted now (CANCELING); the money goes back and the bill is CANCELLED (and notified) at once.
                self._transfer_set(bill, "CANCELLED", fail_reason="MCH_CANCEL")
                state = "CANCELING"
            else:
                state = "CANCELLED"
            return {
                "out_bill_no": bill.out_bill_no,
                "transfer_bill_no": bill.transfer_bill_no,
                "state": state,
                "update_time": wire_time(bill.updated),
            }

    def _transfer_bill(self, out_bill_no: str) -> TransferBill:
        bill = self.transfer_bills.get(out_bill_no)
        if bill is None:
            raise WeChatPayError(404, "NOT_FOUND", "记录不存在")
        return bill

    def _transfer_expire_if_due(self, bill: TransferBill) -> None:
        overdue = datetime.now(CHINA) - bill.created > TRANSFER_CONFIRM_WINDOW
        if bill.state in ("ACCEPTED", "WAIT_USER_CONFIRM") and overdue:
            self._transfer_set(bill, "FAIL", fail_reason="OVERDUE_CLOSE")

    def _transfer_settle(self, bill: TransferBill) -> None:
        registered = self.payees.get(bill.openid)
        if bill.user_name and registered is not None and registered != bill.user_name:
            self._transfer_set(bill, "FAIL", fail_reason="NAME_NOT_CORRECT")
        elif bill.openid in self.transfer_fail_reasons:
            self._transfer_set(bill, "FAIL", fail_reason=self.transfer_fail_reasons[bill.openid])
        else:
            self._transfer_set(bill, "SUCCESS")

    def _transfer_set(self, bill: TransferBill, state: str, *, fail_reason: str = "") -> None:
        bill.state, bill.updated = state, datetime.now(CHINA)
        if fail_reason:
            bill.fail_reason = fail_reason
        if state in TRANSFER_FINAL_STATES and bill.notify_url:
            resource = self._transfer_resource(bill, query=False)
            self._notify(
                bill.notify_url,
                "MCHTRANSFER.BILL.FINISHED",
                "mch_payment",
                bill.out_bill_no,
                "商家转账单据终态通知",
                resource,
            )

    def _transfer_resource(self, bill: TransferBill, *, query: bool) -> dict:
        """The bill as the query answers it (`query`), or as its notification's resource carries it."""
        resource = {
            "mch_id": self.mchid,
            "out_bill_no": bill.out_bill_no,
            "transfer_bill_no": bill.transfer_bill_no,
            "state": bill.state,
            "transfer_amount": bill.amount,
            "openid": bill.openid,
            "create_time": wire_time(bill.created),
            "update_time": wire_time(bill.updated),
        }
        if query:
            resource.update(appid=bill.appid, transfer_remark=bill.remark)
        if bill.fail_reason and bill.state != "SUCCESS":
            resource["fail_reason"] = bill.fail_reason
        return resource

    def _payee_page(self, request: Request) -> Response:
        """For a person trying the rail (make run has no WeChat): every bill waiting for its payee, each with a
        确认收款 button that confirms it as that payee would (unsigned, loopback only, like the buyer's pages)."""
        if request.method == "POST":
            number = dict(parse_qsl(request.body.decode("utf-8", "replace"))).get("out_bill_no", "")
            with self._lock:
                bill = self.transfer_bills.get(number)
                params = {"mchId": self.mchid, "appId": bill.appid, "package": bill.package_info} if bill else {}
            try:
                self.payee_confirms(params, openid=bill.openid if bill else "")
            except WeChatPayError as error:
                return html_response(400, f"<p>{escape(error.message)}</p>")
            return redirect_response(TRANSFER_PAYEE_PAGE)
        with self._lock:
            waiting = [b for b in self.transfer_bills.values() if b.state == "WAIT_USER_CONFIRM"]
            rows = "".join(
                f"<li>{escape(b.out_bill_no)}: ¥{yuan(b.amount)} → {escape(b.openid[:4])}… "
                f'<form method="post" style="display:inline"><input type="hidden" name="out_bill_no" '
                f'value="{escape(b.out_bill_no)}"><button type="submit">确认收款 (confirm receipt)</button></form></li>'
                for b in waiting
            )
        return html_response(
            200,
            '<!doctype html><html lang="zh-CN"><meta charset="utf-8"><title>商家转账 (fake)</title>'
            f"<h1>商家转账: 待确认收款 (fake)</h1><ul>{rows or '<li>none</li>'}</ul></html>",
        )

    # --- bills -----------------------------------------------------------------------------------------------

    def _bill_apply(self, kind: str, query: dict[str, list[str]]) -> dict:
        try:
            day = date.fromisoformat(query.get("bill_date", [""])[0])
        except ValueError:
            raise WeChatPayError(400, "PARAM_ERROR", "bill_date 格式错误(YYYY-MM-DD)") from None
        tar_type = query.get("tar_type", [""])[0]
        if tar_type not in ("", "GZIP"):
            raise WeChatPayError(400, "PARAM_ERROR", "tar_type 只能是 GZIP")
        if kind == "trade" and query.get("bill_type", ["ALL"])[0] not in ("ALL", "SUCCESS", "REFUND"):
            raise WeChatPayError(400, "PARAM_ERROR", "bill_type 错误")
        if kind == "fundflow" and query.get("account_type", ["BASIC"])[0] not in ("BASIC", "OPERATION", "FEES"):
            raise WeChatPayError(400, "PARAM_ERROR", "account_type 错误")
        if day >= datetime.now(CHINA).date():
            raise WeChatPayError(400, "INVALID_REQUEST", "账单尚未生成(次日生成前一日的账单)")
        with self._lock:
            bill = self._trade_bill(day) if kind == "trade" else self._fundflow_bill(day)
            if bill is None:
                raise WeChatPayError(400, "NO_STATEMENT_EXIST", "该日期没有账单")
            text = bill.encode("utf-8")
            token = secrets.token_urlsafe(32)
            self._bill_files[token] = gzip.compress(text) if tar_type == "GZIP" else text
        return {
            "hash_type": "SHA1",
            "hash_value": hashlib.sha1(text).hexdigest(),  # noqa: S324 - the algorithm WeChat Pay uses for bills
            "download_url": f"{self.base_url}{BILL_DOWNLOAD_PATH}?token={token}",
        }

    def _bill_download(self, request: Request) -> Response:
        try:
            self._authenticate(request)
            with self._lock:
                data = self._bill_files.get(parse_qs(request.query).get("token", [""])[0])
            if data is None:
                raise WeChatPayError(404, "NOT_FOUND", "账单文件不存在或下载地址已过期")
        except WeChatPayError as error:
            with self._lock:
                self.refused.append((request.path, error.code))
            return self._signed_response(error.status, {"code": error.code, "message": error.message})
        return Response(200, data, {"Content-Type": "application/octet-stream"})

    @staticmethod
    def _on(day: date, moment: str | datetime) -> bool:
        if isinstance(moment, str):
            moment = datetime.fromisoformat(moment) if moment else None
        return moment is not None and moment.astimezone(CHINA).date() == day

    @staticmethod
    def _bill_time(moment: str | datetime) -> str:
        moment = datetime.fromisoformat(moment) if isinstance(moment, str) else moment
        return moment.astimezone(CHINA).strftime("%Y-%m-%d %H:%M:%S")

    def _changed(self, number: str) -> dict:
        return self.bill_changes.get(number, {})

    def _trade_bill(self, day: date) -> str | None:
        rows = []
        for trade in self.trades.values():
            change = self._changed(trade.out_trade_no)
            if not trade.transaction_id or not self._on(day, trade.success_time) or change.get("omit"):
                continue
            total = change.get("amount", trade.total)
            fee = round(total * 6 / 1000)
            rows.append([
                self._bill_time(trade.success_time), trade.appid, self.mchid, "0", "", trade.transaction_id,
                trade.out_trade_no, trade.openid, trade.trade_type, change.get("state", "SUCCESS"), "OTHERS", "CNY",
                yuan(total), "0.00", "0", "0", "0.00", "0.00", "", "", trade.description, "", yuan(fee), "0.60%",
                yuan(total), "0.00", "",
            ])  # fmt: skip
        for refund in self.refunds.values():
            change = self._changed(refund.out_refund_no)
            if refund.status != "SUCCESS" or not self._on(day, refund.success_time) or change.get("omit"):
                continue
            trade = self.trades[refund.out_trade_no]
            amount = change.get("amount", refund.refund)
            rows.append([
                self._bill_time(refund.success_time), trade.appid, self.mchid, "0", "", trade.transaction_id,
                trade.out_trade_no, trade.openid, trade.trade_type, change.get("state", "REFUND"), "OTHERS", "CNY",
                "0.00", "0.00", refund.refund_id, refund.out_refund_no, yuan(amount), "0.00", "ORIGINAL", "SUCCESS",
                trade.description, "", yuan(-round(amount * 6 / 1000)), "0.60%", "0.00", yuan(amount), "",
            ])  # fmt: skip
        for extra in self.bill_extra_rows:
            if extra.get("bill") == "trade" and extra.get("date") == day:
                rows.append([
                    f"{day} 12:00:00", self.appid, self.mchid, "0", "", extra.get("transaction_id", "4200000000"),
                    extra["out_trade_no"], "oEXTRA", "NATIVE", extra.get("state", "SUCCESS"), "OTHERS", "CNY",
                    yuan(extra["amount"]), "0.00", "0", "0", "0.00", "0.00", "", "", "extra", "", "0.00", "0.60%",
                    yuan(extra["amount"]), "0.00", "",
                ])  # fmt: skip
        if not rows:
            return None
        rows.sort(key=lambda row: row[0])
        settled = sum(fen(row[12]) for row in rows)
        refunded = sum(fen(row[16]) for row in rows)
        fees = sum(fen(row[22]) for row in rows)
        summary = [str(len(rows)), yuan(settled), yuan(refunded), "0.00", yuan(fees), yuan(settled), yuan(refunded)]
        return _bill_text(TRADE_BILL_HEADER, rows, TRADE_BILL_SUMMARY, summary)

    def _fundflow_bill(self, day: date) -> str | None:
        movements = []  # (time, business number, name, direction, fen, voucher number)
        for trade in self.trades.values():
            if trade.transaction_id and self._on(day, trade.success_time):
                movements.append(
                    (trade.success_time, trade.transaction_id, "交易", "收入", trade.total, trade.out_trade_no)
                )
        for refund in self.refunds.values():
            if refund.status == "SUCCESS" and self._on(day, refund.success_time):
                movements.append(
                    (refund.success_time, refund.refund_id, "退款", "支出", refund.refund, refund.out_refund_no)
                )
        for bill in self.transfer_bills.values():
            if bill.state == "SUCCESS" and self._on(day, bill.updated):
                movements.append(
                    (bill.updated, bill.transfer_bill_no, "商家转账", "支出", bill.amount, bill.out_bill_no)
                )
        for extra in self.bill_extra_rows:
            if extra.get("bill") == "fundflow" and extra.get("date") == day:
                movements.append((
                    datetime.combine(day, datetime.min.time(), CHINA).replace(hour=12), extra.get("number", "1330000"),
                    extra.get("name", "商家转账"), extra.get("direction", "支出"), extra["amount"], extra["reference"],
                ))  # fmt: skip
        rows, balance = [], 10_000_000
        for at, number, name, direction, amount, voucher in sorted(movements, key=lambda m: self._bill_time(m[0])):
            change = self._changed(voucher)
            if change.get("omit"):
                continue
            amount = change.get("amount", amount)
            balance += amount if direction == "收入" else -amount
            rows.append([
                self._bill_time(at), number, secrets.token_hex(12), name, name, direction, yuan(amount), yuan(balance),
                "system", "", voucher,
            ])  # fmt: skip
        if not rows:
            return None
        income = [fen(row[6]) for row in rows if row[5] == "收入"]
        outgo = [fen(row[6]) for row in rows if row[5] == "支出"]
        summary = [str(len(rows)), str(len(income)), yuan(sum(income)), str(len(outgo)), yuan(sum(outgo))]
        return _bill_text(FUNDFLOW_BILL_HEADER, rows, FUNDFLOW_BILL_SUMMARY, summary)

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


def _bill_text(header: str, rows: list[list[str]], summary_header: str, summary: list[str]) -> str:
    """A WeChat Pay bill: the header, each row's values prefixed with a backquote, then the summary."""
    lines = [header, *(",".join("`" + value for value in row) for row in rows), summary_header]
    lines.append(",".join("`" + value for value in summary))
    return "\r\n".join(lines) + "\r\n"
