"""WeChat Pay 商家转账 (a merchant transfer to the payee's WeChat 零钱) in the user-confirmation mode WeChat Pay
requires since 2025-01-15, through the wechatpayv3 SDK (its mch_transfer_bills methods: signing and answer checks
stay the SDK's) with the payment rail's credentials (WECHATPAY_*: shops.payments.wechatpay).

A transfer bill is made per withdrawal (out_bill_no: the withdrawal's idempotency key) and waits for the payee:
WeChat Pay answers WAIT_USER_CONFIRM with a package_info, which the member's payout page hands to WeChat
(WeixinJSBridge requestMerchantTransfer) so they confirm receipt. Then TRANSFERING, and SUCCESS (the withdrawal is
paid) or FAIL; a bill cancelled (CANCELLED) or not confirmed within 24 hours (FAIL, OVERDUE_CLOSE) returns the
money to the member's balance. Final states arrive by notification (MCHTRANSFER.BILL.FINISHED, verified and
decrypted as payment notifications are) and are asked for by the periodic sync (payouts.services).

Nothing here logs an openid, a name or a key.
"""

import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import datetime, timedelta

from django.conf import settings
from django.urls import reverse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_noop

from core.site_url import absolute_url
from payouts.providers import PayoutProvider, PayoutResult, TransferNotice, TransferState, rail_reason
from shops.payments.base import ProviderError, WebhookRejected, from_fen, is_storable_json, mask, to_fen
from shops.payments.wechatpay import WeChatPayProvider
from shops.payments.wechatpay import missing_settings as wechatpay_missing_settings

logger = logging.getLogger(__name__)

RAIL = "wechat_transfer"
FINAL_STATES = ("SUCCESS", "FAIL", "CANCELLED")
WAITING_STATES = ("ACCEPTED", "PROCESSING", "WAIT_USER_CONFIRM")  # not yet confirmed by the payee: cancellable
# Refusals that mean no bill was made and none will be under this number: the withdrawal fails, nothing was paid.
# Any other (SYSTEM_ERROR, FREQUENCY_LIMITED, NOT_ENOUGH, no answer) may hide a bill that exists: the withdrawal
# waits, and the same out_bill_no is sent again later, as WeChat Pay asks (never a new number before a query).
REFUSED = ("PARAM_ERROR", "INVALID_REQUEST", "NO_AUTH", "APPID_MCHID_NOT_MATCH")
FREQUENCY_RETRIES = 3  # a FREQUENCY_LIMITED answer is retried after RETRY_PAUSE_SECONDS, then twice that
RETRY_PAUSE_SECONDS = 1.0
# What each failure code means for the member, as WeChat Pay's list of transfer failure reasons says it.
REASONS = {
    "OVERDUE_CLOSE": gettext_noop(
        "You did not confirm receipt in WeChat within 24 hours; the money is back in your balance."
    ),
    "MCH_CANCEL": gettext_noop("The transfer was cancelled before you confirmed it."),
    "NAME_NOT_CORRECT": gettext_noop("The name on your payout account is not the real name of your WeChat account."),
    "REAL_NAME_CHECK_FAIL": gettext_noop("Your WeChat account is not verified with your real name (实名认证)."),
    "ACCOUNT_FROZEN": gettext_noop("Your WeChat account is frozen."),
    "ACCOUNT_NOT_EXIST": gettext_noop("Your WeChat account does not exist."),
    "OPENID_INVALID": gettext_noop("The WeChat account bound for payouts is not valid; bind it again."),
    "TRANSFER_QUOTA_EXCEED": gettext_noop("The amount is above what your WeChat account may receive in one transfer."),
    "DAY_RECEIVED_QUOTA_EXCEED": gettext_noop("Your WeChat account has received as much as it may today."),
    "DAY_RECEIVED_COUNT_EXCEED": gettext_noop("Your WeChat account has received as many transfers as it may today."),
    "PAYEE_ACCOUNT_ABNORMAL": gettext_noop(
        "Your WeChat account cannot receive money; complete your identity in WeChat Pay."
    ),
}


def reason_text(code: str, message: str = "") -> str:
    return rail_reason("WeChat Pay", REASONS, code, message)


def missing_settings() -> list[str]:
    """The settings the WeChat Pay transfer rail still needs (empty when it can run): the payment rail's credentials
    and the transfer scene with its report fields."""
    missing = wechatpay_missing_settings()
    missing += [
        name for name in ("WECHATPAY_TRANSFER_SCENE_ID", "WECHATPAY_TRANSFER_REMARK") if not getattr(settings, name)
    ]
    if not report_infos() or not all(info["info_type"] and info["info_content"] for info in report_infos()):
        missing.append("WECHATPAY_TRANSFER_REPORT_INFOS (info_type=content;…)")
    return missing


def report_infos() -> list[dict[str, str]]:
    """settings.WECHATPAY_TRANSFER_REPORT_INFOS ("岗位类型=推广员;报酬说明=…") as transfer_scene_report_infos."""
    pairs = (part.partition("=") for part in settings.WECHATPAY_TRANSFER_REPORT_INFOS.split(";") if part.strip())
    return [{"info_type": kind.strip(), "info_content": content.strip()} for kind, _sep, content in pairs]


def _wire_time(value) -> datetime | None:
    try:
        return datetime.fromisoformat(value) if isinstance(value, str) else None
    except ValueError:
        return None


class _TransferAPI(WeChatPayProvider):
    """The payment rail's client, call wrapper and notification check (shops.payments.wechatpay), for bills."""


class _Pace:
    """At most `per_second` starts a second across threads (0: no limit)."""

    def __init__(self, per_second: float):
        self.interval = 1.0 / per_second if per_second > 0 else 0.0
        self.next_at = time.monotonic()
        self.lock = threading.Lock()

    def wait(self) -> None:
        if not self.interval:
            return
        with self.lock:
            now = time.monotonic()
            start = max(self.next_at, now)
            self.next_at = start + self.interval
        if start > now:
            time.sleep(start - now)


class WeChatTransferProvider(PayoutProvider):
    name = RAIL
    follows_transfers = True

    def __init__(self) -> None:
        self.api = _TransferAPI()

    @property
    def config(self):
        return self.api.config

    # --- sending ---------------------------------------------------------------------------------------------

    def send_many(self, withdrawals) -> dict[int, PayoutResult]:
        """Each withdrawal's bill, made from WECHATPAY_TRANSFER_THREADS threads at most
        WECHATPAY_TRANSFER_MAX_PER_SECOND a second (WeChat Pay takes 100 a second per merchant)."""
        withdrawals = list(withdrawals)
        pace = _Pace(settings.WECHATPAY_TRANSFER_MAX_PER_SECOND)

        def one(withdrawal):
            return withdrawal.pk, self._send(withdrawal, withdrawal.idempotency_key, pace)

        threads = max(1, min(settings.WECHATPAY_TRANSFER_THREADS, len(withdrawals)))
        if threads == 1:
            return dict(map(one, withdrawals))
        with ThreadPoolExecutor(max_workers=threads, thread_name_prefix="wechat-transfer") as pool:
            return dict(pool.map(one, withdrawals))

    def send(self, withdrawal, idempotency_key: str) -> PayoutResult:
        return self._send(withdrawal, idempotency_key, _Pace(0))

    def _send(self, withdrawal, number: str, pace: _Pace) -> PayoutResult:
        account = withdrawal.account or {}
        openid = account.get("wechat_openid") or ""
        if account.get("method") != "wechat" or not openid:
            return PayoutResult(
                status="failed",
                reason=_("No WeChat account is bound for payouts; bind one, then withdraw again."),
            )
        arguments = {
            "out_bill_no": number,
            "transfer_scene_id": settings.WECHATPAY_TRANSFER_SCENE_ID,
            "openid": openid,
            "transfer_amount": to_fen(withdrawal.net_amount),  # less the tax withheld
            "transfer_remark": settings.WECHATPAY_TRANSFER_REMARK[:32],
            # WeChat Pay checks the name against the payee's verified one (required from 2,000 yuan); encrypted by
            # the SDK with the platform key.
            "user_name": (account.get("holder_name") or "").strip() or None,
            "user_recv_perception": settings.WECHATPAY_TRANSFER_RECV_PERCEPTION or None,
            "transfer_scene_report_infos": report_infos(),
            "notify_url": absolute_url(reverse("payouts:transfer_notification", args=[RAIL])),
        }
        for attempt in range(FREQUENCY_RETRIES):
            pace.wait()
            try:
                status, answer = self.api._call("transfer", lambda: self.api.client.mch_transfer_bills(**arguments))
            except ProviderError as error:
                logger.warning(
                    "withdrawal %s: WeChat Pay transfer not sent (%s); sent again later", withdrawal.pk, error
                )
                return PayoutResult(status="pending")
            if status == 429 and attempt + 1 < FREQUENCY_RETRIES:
                time.sleep(RETRY_PAUSE_SECONDS * (attempt + 1))
                continue
            break
        if status == 200:
            if answer.get("out_bill_no") != number:
                logger.error("withdrawal %s: WeChat Pay answered about another bill", withdrawal.pk)
                return PayoutResult(status="pending")
            state = self._state(answer, number)
            return self.transfer_result(state)
        code, message = str(answer.get("code", "")), str(answer.get("message", ""))
        if status in (400, 403) and code in REFUSED:
            logger.warning("withdrawal %s: WeChat Pay refused the transfer (%s %s)", withdrawal.pk, status, code)
            return PayoutResult(status="failed", reason=reason_text(code, message))
        logger.warning(
            "withdrawal %s: WeChat Pay transfer not made (%s %s); the same bill is sent again later",
            withdrawal.pk,
            status,
            code,
        )
        return PayoutResult(status="pending")

    def _state(self, answer: dict, number: str) -> TransferState:
        created = _wire_time(answer.get("create_time"))
        hours = settings.PAYOUT_TRANSFER_CONFIRM_HOURS
        return TransferState(
            rail=RAIL,
            number=number,
            state=str(answer.get("state", ""))[:20],
            rail_reference=str(answer.get("transfer_bill_no", ""))[:64],
            package_info=str(answer.get("package_info", "")),
            fail_reason=str(answer.get("fail_reason", ""))[:100],
            confirm_by=created + timedelta(hours=hours) if created else None,
        )

    def transfer_result(self, state: TransferState) -> PayoutResult:
        if state.state == "SUCCESS":
            return PayoutResult(status="paid", reference=state.rail_reference, transfer=state)
        if state.state in ("FAIL", "CANCELLED"):
            code = state.fail_reason or ("MCH_CANCEL" if state.state == "CANCELLED" else "")
            return PayoutResult(
                status="failed", reference=state.rail_reference, reason=reason_text(code), transfer=state
            )
        return PayoutResult(status="pending", reference=state.rail_reference, transfer=state)

    # --- following a bill ------------------------------------------------------------------------------------

    def transfer_query(self, transfer) -> TransferState | None:
        status, answer = self.api._call(
            "transfer query", lambda: self.api.client.mch_transfer_bills_query(out_bill_no=transfer.number)
        )
        if status == 404 and answer.get("code") == "NOT_FOUND":
            return None
        if status != 200:
            raise self.api._refusal("transfer query", status, answer)
        if answer.get("out_bill_no") != transfer.number or answer.get("mch_id") != self.config.mchid:
            raise ProviderError("WeChat Pay transfer query answered about another bill")
        return replace(self._state(answer, transfer.number), package_info=transfer.package_info)

    def transfer_cancel(self, transfer) -> TransferState:
        status, answer = self.api._call(
            "transfer cancel", lambda: self.api.client.mch_transfer_bills_cancel(out_bill_no=transfer.number)
        )
        if status != 200:
            raise self.api._refusal("transfer cancel", status, answer)
        return TransferState(
            rail=RAIL,
            number=transfer.number,
            state=str(answer.get("state", ""))[:20],
            rail_reference=str(answer.get("transfer_bill_no", transfer.rail_reference))[:64],
            package_info=transfer.package_info,
        )

    # --- notifications ---------------------------------------------------------------------------------------

    def parse_notification(self, body: bytes, headers) -> TransferNotice:
        data = self.api.verified_notification(body, headers)
        event_id, resource = data.get("id"), data.get("resource")
        if data.get("event_type") != "MCHTRANSFER.BILL.FINISHED":
            raise WebhookRejected(f"unhandled event type {data.get('event_type')!r:.60}")
        if not (isinstance(event_id, str) and 1 <= len(event_id) <= 100):
            raise WebhookRejected("malformed event id")
        if not isinstance(resource, dict) or resource.get("mch_id") != self.config.mchid:
            raise WebhookRejected("notification for another merchant")
        number, state, fen = resource.get("out_bill_no"), resource.get("state"), resource.get("transfer_amount")
        if not (isinstance(number, str) and 1 <= len(number) <= 64):
            raise WebhookRejected("malformed out_bill_no")
        if state not in FINAL_STATES:
            raise WebhookRejected(f"not a final state: {state!r:.30}")
        if not isinstance(fen, int) or isinstance(fen, bool) or fen <= 0:
            raise WebhookRejected("malformed amount")
        openid = resource.get("openid") if isinstance(resource.get("openid"), str) else ""
        payload = {key: data.get(key) for key in ("id", "create_time", "event_type", "summary")}
        payload["resource"] = {**resource, "openid": mask(openid)}
        if not is_storable_json(payload):
            raise WebhookRejected("malformed body")
        transfer = TransferState(
            rail=RAIL,
            number=number,
            state=state,
            rail_reference=str(resource.get("transfer_bill_no", ""))[:64],
            fail_reason=str(resource.get("fail_reason", ""))[:100],
        )
        return TransferNotice(event_id=event_id, transfer=transfer, amount=from_fen(fen), payee=openid, payload=payload)

    def payee_of(self, withdrawal) -> str:
        return (withdrawal.account or {}).get("wechat_openid") or ""

    def confirm_params(self, transfer) -> dict[str, str]:
        """What the member's page hands to WeixinJSBridge.invoke("requestMerchantTransfer", …)."""
        return {"mchId": self.config.mchid, "appId": self.config.appid, "package": transfer.package_info}
