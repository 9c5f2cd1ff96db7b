"""WeChat Pay API v3 through the wechatpayv3 SDK: Native (a QR code), H5 (a phone's browser) and JSAPI (WeChat's
in-app browser), notifications verified and decrypted, query, close and refunds.

Settings (config/settings.py, docs/payments.md): WECHATPAY_GATEWAY_URL, WECHATPAY_MCHID, WECHATPAY_APPID,
WECHATPAY_MERCHANT_SERIAL_NO, WECHATPAY_MERCHANT_PRIVATE_KEY, WECHATPAY_APIV3_KEY, and either
WECHATPAY_PLATFORM_PUBLIC_KEY with WECHATPAY_PLATFORM_PUBLIC_KEY_ID or (platform certificates) WECHATPAY_CERT_DIR.

Nothing here logs a key, a signature or an openid (openids are masked in the stored payload too).
"""

import contextlib
import json
import re
import secrets
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta, timezone
from decimal import Decimal
from functools import lru_cache
from urllib.parse import quote

import requests
from django.conf import settings
from wechatpayv3 import WeChatPay, WeChatPayType
from wechatpayv3.core import Core

from shops.payments.base import (
    Buyer,
    PaymentAction,
    PaymentAlreadyPaid,
    PaymentProvider,
    PaymentState,
    ProviderError,
    RefundResult,
    RefundState,
    WebhookNotice,
    WebhookRejected,
    from_fen,
    is_storable_json,
    is_storable_text,
    mask,
    merchant_refund_number,
    to_fen,
)

CHINA = timezone(timedelta(hours=8))
SIGNATURE_TYPE = "WECHATPAY2-SHA256-RSA2048"
TIMESTAMP_SHAPE = re.compile(r"[0-9]{1,12}")
NONCE_SHAPE = re.compile(r"[0-9A-Za-z_-]{1,64}")
SERIAL_SHAPE = re.compile(r"[0-9A-Za-z_]{1,64}")
SIGNATURE_SHAPE = re.compile(r"[A-Za-z0-9+/=]{1,1024}")
EVENT_ID_MAX_LENGTH = 100  # WebhookEvent.event_id
REFERENCE_MAX_LENGTH = 64  # Payment.reference, out_refund_no
DESCRIPTION_MAX_BYTES = 127
CERTIFICATE_REFRESH_SECONDS = 60  # an unknown serial downloads the platform certificates at most this often
PAYMENT_STATES = {
    "SUCCESS": "succeeded",
    "REFUND": "succeeded",  # paid, then (partly) refunded
    "NOTPAY": "pending",
    "USERPAYING": "pending",
    "CLOSED": "closed",
    "REVOKED": "closed",
    "PAYERROR": "closed",
}
REFUND_STATUSES = {"SUCCESS": "succeeded", "PROCESSING": "pending", "ABNORMAL": "failed", "CLOSED": "failed"}
HEADERS = ("Wechatpay-Timestamp", "Wechatpay-Nonce", "Wechatpay-Signature", "Wechatpay-Serial")


@dataclass(frozen=True)
class WeChatPayConfig:
    gateway_url: str
    mchid: str
    appid: str
    merchant_serial_no: str
    merchant_private_key: str
    apiv3_key: str
    platform_public_key: str
    platform_public_key_id: str
    cert_dir: str
    timeout: float

    @classmethod
    def from_settings(cls) -> "WeChatPayConfig":
        return cls(
            gateway_url=settings.WECHATPAY_GATEWAY_URL.rstrip("/"),
            mchid=settings.WECHATPAY_MCHID,
            appid=settings.WECHATPAY_APPID,
            merchant_serial_no=settings.WECHATPAY_MERCHANT_SERIAL_NO,
            merchant_private_key=settings.WECHATPAY_MERCHANT_PRIVATE_KEY,
            apiv3_key=settings.WECHATPAY_APIV3_KEY,
            platform_public_key=settings.WECHATPAY_PLATFORM_PUBLIC_KEY,
            platform_public_key_id=settings.WECHATPAY_PLATFORM_PUBLIC_KEY_ID,
            cert_dir=settings.WECHATPAY_CERT_DIR,
            timeout=settings.PAYMENTS_PROVIDER_TIMEOUT,
        )

    def __repr__(self) -> str:  # never the keys, should a config reach a traceback
        return f"WeChatPayConfig(mchid={self.mchid!r}, gateway_url={self.gateway_url!r})"


def missing_settings() -> list[str]:
    """The WeChat Pay settings a deployment must still set (empty when the rail can run)."""
    required = [
        "WECHATPAY_MCHID",
        "WECHATPAY_APPID",
        "WECHATPAY_MERCHANT_SERIAL_NO",
        "WECHATPAY_MERCHANT_PRIVATE_KEY",
        "WECHATPAY_APIV3_KEY",
    ]
    missing = [name for name in required if not getattr(settings, name)]
    has_key, has_key_id = bool(settings.WECHATPAY_PLATFORM_PUBLIC_KEY), bool(settings.WECHATPAY_PLATFORM_PUBLIC_KEY_ID)
    if has_key != has_key_id:
        missing.append("WECHATPAY_PLATFORM_PUBLIC_KEY_ID" if has_key else "WECHATPAY_PLATFORM_PUBLIC_KEY")
    elif not has_key and not settings.WECHATPAY_CERT_DIR:
        missing.append("WECHATPAY_PLATFORM_PUBLIC_KEY (or WECHATPAY_CERT_DIR)")
    if settings.WECHATPAY_APIV3_KEY and len(settings.WECHATPAY_APIV3_KEY.encode()) != 32:
        missing.append("WECHATPAY_APIV3_KEY (32 characters)")
    return missing


class _Core(Core):
    """The SDK's core with its gateway URL set before it first calls the API: in platform-certificate mode the SDK
    downloads the certificates from its constructor, from the address it hard-codes."""

    def __init__(self, *, gateway_url: str, **kwargs):
        self._gateway_url = gateway_url
        super().__init__(**kwargs)
        self._gate_way = gateway_url

    def _init_certificates(self):
        self._gate_way = self._gateway_url
        super()._init_certificates()


class _WeChatPay(WeChatPay):
    """wechatpayv3's client (2.0.4: the same attributes as WeChatPay.__init__ sets) on `_Core`."""

    def __init__(self, config: WeChatPayConfig):
        self._type = WeChatPayType.NATIVE
        self._mchid = config.mchid
        self._appid = config.appid
        self._notify_url = None
        self._partner_mode = False
        self._core = _Core(
            gateway_url=config.gateway_url,
            mchid=config.mchid,
            cert_serial_no=config.merchant_serial_no,
            private_key=config.merchant_private_key,
            apiv3_key=config.apiv3_key,
            cert_dir=config.cert_dir or None,
            timeout=config.timeout,
            public_key=config.platform_public_key or None,
            public_key_id=config.platform_public_key_id or None,
        )
        self.certificates_refreshed_at = 0.0
        self.lock = threading.Lock()


@lru_cache(maxsize=4)
def _client(config: WeChatPayConfig) -> _WeChatPay:
    try:
        return _WeChatPay(config)
    except requests.RequestException as error:
        raise ProviderError(
            f"WeChat Pay cannot be reached for its platform certificates: {type(error).__name__}"
        ) from None
    except Exception as error:  # the SDK raises bare Exceptions: a key that does not load, no certificate
        raise ProviderError(f"WeChat Pay client cannot start: {error}") from None


def _wire_time(moment) -> str:
    return moment.astimezone(CHINA).isoformat(timespec="seconds")


def _description(payment) -> str:
    """ "<shop> <order number>", cut to WeChat Pay's 127 bytes."""
    text = f"{payment.order.shop.name} {payment.order.number}"
    while len(text.encode()) > DESCRIPTION_MAX_BYTES:
        text = text[:-1]
    return text


class WeChatPayProvider(PaymentProvider):
    name = "wechatpay"
    methods = ("native", "h5", "jsapi")
    can_query = True

    def __init__(self) -> None:
        self.config = WeChatPayConfig.from_settings()

    @property
    def client(self) -> _WeChatPay:
        return _client(self.config)

    def _call(self, operation: str, call) -> tuple[int, dict]:
        """Run one SDK call; its answer's status and JSON, or ProviderError if WeChat Pay cannot be reached or its
        answer is not signed by the platform."""
        try:
            status, text = call()
        except requests.RequestException as error:
            raise ProviderError(f"WeChat Pay {operation}: cannot be reached ({type(error).__name__})") from None
        except Exception as error:  # the SDK's "failed to verify the signature", a certificate it cannot find
            raise ProviderError(f"WeChat Pay {operation}: {error}") from None
        try:
            answer = json.loads(text) if text else {}
        except (TypeError, ValueError):
            answer = {}
        return status, answer if isinstance(answer, dict) else {}

    @staticmethod
    def _refusal(operation: str, status: int, answer: dict) -> ProviderError:
        code, message = str(answer.get("code", "")), str(answer.get("message", ""))
        return ProviderError(f"WeChat Pay {operation} refused ({status} {code}): {message[:200]}")

    # --- paying ----------------------------------------------------------------------------------------------

    def start(self, payment) -> str:
        raise ProviderError("WeChat Pay needs a payment method (native, h5 or jsapi): call start_method")

    def start_method(self, payment, method: str, buyer: Buyer) -> PaymentAction:
        if method not in self.methods:
            raise ProviderError(f"wechatpay has no payment method {method!r}")
        expires = payment.created_at + timedelta(minutes=settings.ORDER_PAYMENT_TIMEOUT_MINUTES)
        arguments = {
            "description": _description(payment),
            "out_trade_no": payment.reference,
            "amount": {"total": to_fen(payment.amount), "currency": "CNY"},
            "notify_url": payment.notify_url,
            "time_expire": _wire_time(expires),
        }
        if method == "h5":
            if not buyer.client_ip:
                raise ProviderError("WeChat Pay H5 needs the buyer's IP address")
            arguments["scene_info"] = {"payer_client_ip": buyer.client_ip, "h5_info": {"type": "Wap"}}
            pay_type = WeChatPayType.H5
        elif method == "jsapi":
            if not buyer.openid:
                raise ProviderError("WeChat Pay JSAPI needs the buyer's openid")
            arguments["payer"] = {"openid": buyer.openid}
            pay_type = WeChatPayType.JSAPI
        else:
            pay_type = WeChatPayType.NATIVE
        status, answer = self._call("prepay", lambda: self.client.pay(pay_type=pay_type, **arguments))
        if status != 200:
            raise self._refusal("prepay", status, answer)
        if method == "native" and isinstance(answer.get("code_url"), str):
            return PaymentAction(kind="qr", qr_text=answer["code_url"])
        if method == "h5" and isinstance(answer.get("h5_url"), str):
            # WeChat sends the buyer back to redirect_url when the payment page closes (paid or not).
            url = answer["h5_url"] + "&redirect_url=" + quote(payment.return_url, safe="")
            return PaymentAction(kind="redirect", url=url)
        if method == "jsapi" and isinstance(answer.get("prepay_id"), str):
            return PaymentAction(kind="jsapi", jsapi_params=self.jsapi_params(answer["prepay_id"]))
        raise ProviderError(f"WeChat Pay prepay ({method}) answered without what it should")

    def jsapi_params(self, prepay_id: str) -> dict[str, str]:
        """The arguments of WeixinJSBridge.invoke("getBrandWCPayRequest", …): paySign is the merchant's RSA-SHA256
        signature over appId, timeStamp, nonceStr and package, one per line."""
        params = {
            "appId": self.config.appid,
            "timeStamp": str(int(time.time())),
            "nonceStr": secrets.token_hex(16),
            "package": f"prepay_id={prepay_id}",
            "signType": "RSA",
        }
        params["paySign"] = self.client.sign(
            [params["appId"], params["timeStamp"], params["nonceStr"], params["package"]]
        )
        return params

    def query(self, payment) -> PaymentState:
        status, answer = self._call("query", lambda: self.client.query(out_trade_no=payment.reference))
        if status == 404 and answer.get("code") == "ORDER_NOT_EXIST":
            return PaymentState(status="closed")  # never opened at WeChat Pay: nothing can be paid
        if status != 200:
            raise self._refusal("query", status, answer)
        state = PAYMENT_STATES.get(answer.get("trade_state"))
        if state is None or answer.get("out_trade_no") != payment.reference or answer.get("mchid") != self.config.mchid:
            raise ProviderError("WeChat Pay query answered about something else")
        if state != "succeeded":
            return PaymentState(status=state)
        total = (answer.get("amount") or {}).get("total")
        if not isinstance(total, int) or isinstance(total, bool):
            raise ProviderError("WeChat Pay query answered without an amount")
        return PaymentState(
            status="succeeded", amount=from_fen(total), provider_payment_id=answer.get("transaction_id", "")
        )

    def close(self, payment) -> None:
        status, answer = self._call("close", lambda: self.client.close(out_trade_no=payment.reference))
        if status == 204 or answer.get("code") in ("ORDER_CLOSED", "ORDER_NOT_EXIST"):
            return
        if answer.get("code") == "ORDERPAID":
            raise PaymentAlreadyPaid("WeChat Pay: the buyer has paid")
        raise self._refusal("close", status, answer)

    # --- refunds ---------------------------------------------------------------------------------------------

    def refund_reference(self, idempotency_key: str) -> str:
        """out_refund_no: WeChat allows 64 characters of [0-9A-Za-z_-|*@]; the key may be longer or hold other
        characters, so its SHA-256 stands for it (the same key, the same number: a retry refunds once)."""
        return merchant_refund_number(idempotency_key)

    def refund(self, payment, amount: Decimal, idempotency_key: str) -> RefundResult:
        out_refund_no = self.refund_reference(idempotency_key)
        status, answer = self._call(
            "refund",
            lambda: self.client.refund(
                out_refund_no=out_refund_no,
                amount={"refund": to_fen(amount), "total": to_fen(payment.amount), "currency": "CNY"},
                out_trade_no=payment.reference,
                notify_url=payment.notify_url,
            ),
        )
        if status != 200:
            raise self._refusal("refund", status, answer)
        refund_status = REFUND_STATUSES.get(answer.get("status"))
        if refund_status is None or answer.get("out_refund_no") != out_refund_no:
            raise ProviderError("WeChat Pay refund answered about something else")
        return RefundResult(provider_refund_id=str(answer.get("refund_id", ""))[:64], status=refund_status)

    def refund_query(self, payment, refund_reference: str) -> RefundState:
        """GET /v3/refund/domestic/refunds/{out_refund_no}: the refund's status and amount (amount.refund)."""
        status, answer = self._call("refund query", lambda: self.client.query_refund(out_refund_no=refund_reference))
        if status != 200:
            raise self._refusal("refund query", status, answer)
        refund_status = REFUND_STATUSES.get(answer.get("status"))
        if (
            refund_status is None
            or answer.get("out_refund_no") != refund_reference
            or answer.get("out_trade_no") != payment.reference
        ):
            raise ProviderError("WeChat Pay refund query answered about something else")
        fen = (answer.get("amount") or {}).get("refund")
        if not isinstance(fen, int) or isinstance(fen, bool) or fen <= 0:
            raise ProviderError("WeChat Pay refund query answered without an amount")
        return RefundState(status=refund_status, amount=from_fen(fen))

    # --- notifications ---------------------------------------------------------------------------------------

    def parse_webhook(self, body: bytes, headers: Mapping[str, str]) -> WebhookNotice:
        return self._notice(self.verified_notification(body, headers))

    def verified_notification(self, body: bytes, headers: Mapping[str, str]) -> dict:
        """A notification's envelope with its resource decrypted, once its signature headers, timestamp and
        signature are checked (any WeChat Pay notification: payments, refunds, transfer bills); WebhookRejected if
        it is not genuine."""
        lowered = {name.lower(): value for name, value in headers.items()}
        timestamp, nonce, signature, serial = (lowered.get(name.lower(), "") for name in HEADERS)
        # By shape first (as the sandbox's parser, after fuzzing): int() of a huge timestamp, a non-ASCII signature.
        if lowered.get("wechatpay-signature-type", SIGNATURE_TYPE) != SIGNATURE_TYPE:
            raise WebhookRejected("unknown signature type")
        if not (
            TIMESTAMP_SHAPE.fullmatch(timestamp)
            and NONCE_SHAPE.fullmatch(nonce)
            and SIGNATURE_SHAPE.fullmatch(signature)
            and SERIAL_SHAPE.fullmatch(serial)
        ):
            raise WebhookRejected("missing or malformed signature headers")
        if abs(time.time() - int(timestamp)) > settings.PAYMENTS_WEBHOOK_TOLERANCE:
            raise WebhookRejected("timestamp outside the tolerance")
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError:
            raise WebhookRejected("malformed body") from None
        try:
            client = self.client
        except ProviderError as error:  # misconfigured, or the certificates cannot be fetched: refused, sent again
            raise WebhookRejected(str(error)) from None
        if not self._knows_serial(client, serial):
            raise WebhookRejected("unknown platform serial")
        sdk_headers = dict(zip(HEADERS, (timestamp, nonce, signature, serial), strict=True))
        sdk_headers["Wechatpay-Signature-Type"] = SIGNATURE_TYPE
        try:
            data = client.callback(sdk_headers, text)
        except Exception:  # the SDK raises on an algorithm it does not know and on malformed JSON
            raise WebhookRejected("malformed notification") from None
        if not data:
            raise WebhookRejected("signature does not match, or the resource does not decrypt")
        return data

    def _knows_serial(self, client: _WeChatPay, serial: str) -> bool:
        """A serial the client can check a signature with: the platform public key's id, or a downloaded platform
        certificate. An unknown one refreshes the certificates (the platform rotated them), at most once a minute,
        so forged notifications cannot make every request a download."""
        core = client._core
        if self.config.platform_public_key_id:
            return serial == self.config.platform_public_key_id
        if not re.fullmatch(r"[0-9A-Fa-f]{1,64}", serial):
            return False
        number = int(serial, 16)
        if any(certificate.serial_number == number for certificate in core._certificates):
            return True
        with client.lock:
            if time.monotonic() - client.certificates_refreshed_at < CERTIFICATE_REFRESH_SECONDS:
                return False
            client.certificates_refreshed_at = time.monotonic()
        # Unreachable, or refused: the serial stays unknown and the notification is refused.
        with contextlib.suppress(Exception):
            core._update_certificates()
        return any(certificate.serial_number == number for certificate in core._certificates)

    def _notice(self, data: dict) -> WebhookNotice:
        event_id, event_type, resource = data.get("id"), data.get("event_type"), data.get("resource")
        if not (is_storable_text(event_id) and 1 <= len(event_id) <= EVENT_ID_MAX_LENGTH):
            raise WebhookRejected("malformed event id")
        if not isinstance(resource, dict) or resource.get("mchid") != self.config.mchid:
            raise WebhookRejected("notification for another merchant")
        reference = resource.get("out_trade_no")
        if not (is_storable_text(reference) and 1 <= len(reference) <= REFERENCE_MAX_LENGTH):
            raise WebhookRejected("malformed out_trade_no")
        amount = resource.get("amount") if isinstance(resource.get("amount"), dict) else {}
        if event_type == "TRANSACTION.SUCCESS":
            if resource.get("appid") != self.config.appid or resource.get("trade_state") != "SUCCESS":
                raise WebhookRejected("malformed transaction")
            fen, kind, refund_reference = amount.get("total"), "payment.succeeded", ""
        elif event_type in ("REFUND.SUCCESS", "REFUND.ABNORMAL", "REFUND.CLOSED"):
            refund_reference = resource.get("out_refund_no")
            if not (is_storable_text(refund_reference) and 1 <= len(refund_reference) <= REFERENCE_MAX_LENGTH):
                raise WebhookRejected("malformed out_refund_no")
            fen = amount.get("refund")
            kind = "refund.succeeded" if event_type == "REFUND.SUCCESS" else "refund.failed"
        else:
            raise WebhookRejected(f"unhandled event type {event_type!r:.60}")
        if not isinstance(fen, int) or isinstance(fen, bool) or fen <= 0 or amount.get("currency", "CNY") != "CNY":
            raise WebhookRejected("malformed amount")
        payer = resource.get("payer")
        if isinstance(payer, dict) and isinstance(payer.get("openid"), str):
            resource = {**resource, "payer": {**payer, "openid": mask(payer["openid"])}}
        payload = {key: data.get(key) for key in ("id", "create_time", "event_type", "summary")}
        payload["resource"] = resource
        if not is_storable_json(payload):
            raise WebhookRejected("malformed body")
        return WebhookNotice(
            event_id=event_id,
            event_type=kind,
            payment_reference=reference,
            amount=from_fen(fen),
            payload=payload,
            refund_reference=refund_reference,
        )
