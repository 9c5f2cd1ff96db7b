"""Alipay through python-alipay-sdk: alipay.trade.page.pay (a desktop browser) and alipay.trade.wap.pay (a phone's
browser), RSA2-signed asynchronous notifications, alipay.trade.query, alipay.trade.close and alipay.trade.refund.

Settings (config/settings.py, docs/payments.md): ALIPAY_GATEWAY_URL, ALIPAY_APP_ID, ALIPAY_APP_PRIVATE_KEY,
ALIPAY_PUBLIC_KEY. Nothing here logs a key, a signature or a buyer's account.
"""

import binascii
import json
import re
import urllib.error
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta, timezone
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from urllib.parse import parse_qsl

from alipay import AliPay
from alipay.exceptions import AliPayException, AliPayValidationError
from alipay.utils import AliPayConfig
from django.conf import settings

from shops.payments.base import (
    CENT,
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
    is_storable_json,
    is_storable_text,
    mask,
    merchant_refund_number,
)

CHINA = timezone(timedelta(hours=8))
WIRE_TIME = "%Y-%m-%d %H:%M:%S"
NOTIFY_ID_SHAPE = re.compile(r"[0-9A-Za-z_-]{1,100}")
REFERENCE_MAX_LENGTH = 64
SUBJECT_MAX_LENGTH = 256
MAX_AMOUNT = Decimal("1e12")  # far above any Alipay amount (100,000,000.00 at most)
METHODS = {"page": "api_alipay_trade_page_pay", "wap": "api_alipay_trade_wap_pay"}
PAID = ("TRADE_SUCCESS", "TRADE_FINISHED")


@dataclass(frozen=True)
class AlipayConfig:
    gateway_url: str
    app_id: str
    app_private_key: str
    alipay_public_key: str
    timeout: float

    @classmethod
    def from_settings(cls) -> "AlipayConfig":
        return cls(
            gateway_url=settings.ALIPAY_GATEWAY_URL,
            app_id=settings.ALIPAY_APP_ID,
            app_private_key=settings.ALIPAY_APP_PRIVATE_KEY,
            alipay_public_key=settings.ALIPAY_PUBLIC_KEY,
            timeout=settings.PAYMENTS_PROVIDER_TIMEOUT,
        )

    def __repr__(self) -> str:  # never the keys
        return f"AlipayConfig(app_id={self.app_id!r}, gateway_url={self.gateway_url!r})"


def missing_settings() -> list[str]:
    """The Alipay settings a deployment must still set (empty when the rail can run)."""
    names = ("ALIPAY_APP_ID", "ALIPAY_APP_PRIVATE_KEY", "ALIPAY_PUBLIC_KEY")
    return [name for name in names if not getattr(settings, name)]


@lru_cache(maxsize=4)
def _client(config: AlipayConfig) -> AliPay:
    try:
        client = AliPay(
            appid=config.app_id,
            app_private_key_string=config.app_private_key,
            alipay_public_key_string=config.alipay_public_key,
            sign_type="RSA2",
            config=AliPayConfig(timeout=config.timeout),
        )
    except (ValueError, IndexError, TypeError) as error:  # a key that does not load
        raise ProviderError(f"Alipay client cannot start: {type(error).__name__}") from None
    client._gateway = config.gateway_url  # the SDK (3.4.0) keeps its gateway URL here; the fakes' address in tests
    return client


def _money(value) -> Decimal | None:
    try:
        amount = Decimal(str(value))
    except InvalidOperation:
        return None
    # Bounded before quantize: Decimal("1e999").quantize(CENT) raises InvalidOperation (the context's precision).
    if not amount.is_finite() or not 0 < amount < MAX_AMOUNT or amount != amount.quantize(CENT):
        return None
    return amount.quantize(CENT)


class AlipayProvider(PaymentProvider):
    name = "alipay"
    methods = ("page", "wap")
    can_query = True

    def __init__(self) -> None:
        self.config = AlipayConfig.from_settings()

    @property
    def client(self) -> AliPay:
        return _client(self.config)

    def _call(self, operation: str, call) -> dict:
        """One signed API call; Alipay's answer (its "code" says the outcome), or ProviderError if Alipay cannot be
        reached or the answer is not signed by Alipay."""
        try:
            answer = call()
        except AliPayValidationError:
            raise ProviderError(f"Alipay {operation}: the answer's signature does not match") from None
        except AliPayException:
            raise ProviderError(f"Alipay {operation} refused the request (unsigned error answer)") from None
        except (urllib.error.URLError, TimeoutError, ConnectionError) as error:
            raise ProviderError(f"Alipay {operation}: cannot be reached ({type(error).__name__})") from None
        except ValueError:
            raise ProviderError(f"Alipay {operation}: malformed answer") from None
        return answer if isinstance(answer, dict) else {}

    @staticmethod
    def _refusal(operation: str, answer: dict) -> ProviderError:
        return ProviderError(
            f"Alipay {operation} refused ({answer.get('code')} {answer.get('sub_code', '')}): "
            f"{str(answer.get('sub_msg', answer.get('msg', '')))[:200]}"
        )

    # --- paying ----------------------------------------------------------------------------------------------

    def start(self, payment) -> str:
        return self.start_method(payment, "page", Buyer()).url

    def start_method(self, payment, method: str, buyer: Buyer) -> PaymentAction:
        if method not in METHODS:
            raise ProviderError(f"alipay has no payment method {method!r}")
        expires = payment.created_at + timedelta(minutes=settings.ORDER_PAYMENT_TIMEOUT_MINUTES)
        subject = f"{payment.order.shop.name} {payment.order.number}"[:SUBJECT_MAX_LENGTH]
        signed = getattr(self.client, METHODS[method])(
            subject=subject,
            out_trade_no=payment.reference,
            total_amount=str(payment.amount.quantize(CENT)),
            return_url=payment.return_url,
            notify_url=payment.notify_url,
            time_expire=expires.astimezone(CHINA).strftime(WIRE_TIME),
        )
        return PaymentAction(kind="redirect", url=f"{self.config.gateway_url}?{signed}")

    def query(self, payment) -> PaymentState:
        answer = self._call("query", lambda: self.client.api_alipay_trade_query(out_trade_no=payment.reference))
        if answer.get("code") == "40004" and answer.get("sub_code") == "ACQ.TRADE_NOT_EXIST":
            # The buyer has not opened the cashier yet: the trade exists at Alipay only from then on.
            return PaymentState(status="pending")
        if answer.get("code") != "10000":
            raise self._refusal("query", answer)
        if answer.get("out_trade_no") != payment.reference:
            raise ProviderError("Alipay query answered about something else")
        trade_status = answer.get("trade_status")
        # TRADE_CLOSED after a payment (send_pay_date) is a trade refunded in full: it was paid.
        if trade_status in PAID or (trade_status == "TRADE_CLOSED" and answer.get("send_pay_date")):
            amount = _money(answer.get("total_amount"))
            if amount is None:
                raise ProviderError("Alipay query answered without an amount")
            return PaymentState(status="succeeded", amount=amount, provider_payment_id=str(answer.get("trade_no", "")))
        if trade_status == "TRADE_CLOSED":
            return PaymentState(status="closed")
        return PaymentState(status="pending")

    def close(self, payment) -> None:
        answer = self._call("close", lambda: self.client.api_alipay_trade_close(out_trade_no=payment.reference))
        if answer.get("code") == "10000" or answer.get("sub_code") == "ACQ.TRADE_NOT_EXIST":
            # Not opened yet: nothing to close at Alipay, and the signed URL stops working at its time_expire.
            return
        if answer.get("sub_code") == "ACQ.TRADE_STATUS_ERROR":
            state = self.query(payment)
            if state.status == "succeeded":
                raise PaymentAlreadyPaid("Alipay: the buyer has paid")
            if state.status == "closed":
                return
        raise self._refusal("close", answer)

    # --- refunds ---------------------------------------------------------------------------------------------

    def refund_reference(self, idempotency_key: str) -> str:
        return merchant_refund_number(idempotency_key)

    def refund(self, payment, amount: Decimal, idempotency_key: str) -> RefundResult:
        out_request_no = self.refund_reference(idempotency_key)
        answer = self._call(
            "refund",
            lambda: self.client.api_alipay_trade_refund(
                refund_amount=str(amount.quantize(CENT)), out_trade_no=payment.reference, out_request_no=out_request_no
            ),
        )
        if answer.get("code") != "10000":
            raise self._refusal("refund", answer)
        # Alipay refunds at once: "fund_change": "Y" the money moved now, "N" it had already (the same request).
        return RefundResult(provider_refund_id=out_request_no, status="succeeded")

    def refund_query(self, payment, refund_reference: str) -> RefundState:
        """alipay.trade.fastpay.refund.query: a refund Alipay answers with its amount (and refund_status empty or
        REFUND_SUCCESS) was made; one it answers without was not (Alipay documents it so: retry the refund)."""
        answer = self._call(
            "refund query",
            lambda: self.client.api_alipay_trade_fastpay_refund_query(
                out_request_no=refund_reference, out_trade_no=payment.reference
            ),
        )
        if answer.get("code") != "10000":
            raise self._refusal("refund query", answer)
        if answer.get("out_trade_no") != payment.reference:
            raise ProviderError("Alipay refund query answered about something else")
        if not answer.get("refund_amount"):
            return RefundState(status="failed")
        amount = _money(answer["refund_amount"])
        if amount is None or answer.get("out_request_no", refund_reference) != refund_reference:
            raise ProviderError("Alipay refund query answered about something else")
        if answer.get("refund_status", "REFUND_SUCCESS") != "REFUND_SUCCESS":
            return RefundState(status="pending", amount=amount)
        return RefundState(status="succeeded", amount=amount)

    # --- notifications ---------------------------------------------------------------------------------------

    def webhook_reply(self, outcome: str) -> str:
        return "success"  # anything else and Alipay sends the notification again

    def parse_webhook(self, body: bytes, headers: Mapping[str, str]) -> WebhookNotice:
        try:
            pairs = parse_qsl(body.decode("utf-8"), keep_blank_values=True, strict_parsing=True)
        except (UnicodeDecodeError, ValueError):
            raise WebhookRejected("malformed body") from None
        params = dict(pairs)
        if len(params) != len(pairs) or not all(is_storable_text(value) for value in params.values()):
            raise WebhookRejected("malformed body")
        signature = params.pop("sign", "")
        if params.get("sign_type") != "RSA2" or not signature or len(signature) > 1024:
            raise WebhookRejected("missing or malformed signature")
        try:
            genuine = self.client.verify(dict(params), signature)  # the SDK drops sign_type itself
        except (binascii.Error, ValueError, AliPayException):
            genuine = False
        except ProviderError as error:  # misconfigured: refused, and Alipay sends it again
            raise WebhookRejected(str(error)) from None
        if not genuine:
            raise WebhookRejected("signature does not match")
        if params.get("app_id") != self.config.app_id:
            raise WebhookRejected("notification for another application")
        return self._notice(params)

    @staticmethod
    def _notice(params: dict[str, str]) -> WebhookNotice:
        notify_id, reference = params.get("notify_id", ""), params.get("out_trade_no", "")
        if not NOTIFY_ID_SHAPE.fullmatch(notify_id):
            raise WebhookRejected("malformed notify_id")
        if not 1 <= len(reference) <= REFERENCE_MAX_LENGTH:
            raise WebhookRejected("malformed out_trade_no")
        trade_status, refund_reference = params.get("trade_status"), params.get("out_biz_no", "")
        if refund_reference and params.get("refund_fee"):
            # A refund's notice: refund_fee is everything refunded on the trade so far.
            kind, amount, is_total = "refund.succeeded", _money(params["refund_fee"]), True
            if len(refund_reference) > REFERENCE_MAX_LENGTH:
                raise WebhookRejected("malformed out_biz_no")
        elif trade_status in PAID:
            kind, amount, is_total = "payment.succeeded", _money(params.get("total_amount")), False
        elif trade_status == "TRADE_CLOSED":
            kind, amount, is_total = "payment.closed", _money(params.get("total_amount")), False
        elif trade_status == "WAIT_BUYER_PAY":
            kind, amount, is_total = "payment.pending", _money(params.get("total_amount")), False
        else:
            raise WebhookRejected(f"unknown trade_status {trade_status!r:.60}")
        if amount is None:
            raise WebhookRejected("malformed amount")
        payload = {name: value for name, value in params.items() if name != "fund_bill_list"}
        if payload.get("buyer_id"):
            payload["buyer_id"] = mask(payload["buyer_id"])
        if "fund_bill_list" in params:
            try:
                payload["fund_bill_list"] = json.loads(params["fund_bill_list"])
            except ValueError:
                payload["fund_bill_list"] = params["fund_bill_list"]
        if not is_storable_json(payload):
            raise WebhookRejected("malformed body")
        return WebhookNotice(
            event_id=notify_id,
            event_type=kind,
            payment_reference=reference,
            amount=amount,
            payload=payload,
            refund_reference=refund_reference,
            amount_is_refunded_total=is_total,
        )
