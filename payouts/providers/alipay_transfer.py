"""Alipay 单笔转账 (alipay.fund.trans.uni.transfer: product TRANS_ACCOUNT_NO_PWD, scene DIRECT_TRANSFER) to the
member's Alipay account, and its query (alipay.fund.trans.common.query), through python-alipay-sdk in the
certificate mode Alipay requires for fund transfers (DCAliPay: the request names the application's and Alipay's
root certificates by serial number; the SDK signs, and checks the answer's signature with Alipay's certificate).

The payee is named by their Alipay login (ALIPAY_LOGON_ID: a phone or an email) and their real name, which Alipay
checks against the account's verified one: a name that differs is refused (PAYEE_USER_INFO_ERROR), no money moves,
and the withdrawal fails with that reason. out_biz_no is the withdrawal's idempotency key, so a transfer sent again
(a crash, a timeout) is answered with the first one, never made twice. Alipay answers at once (SUCCESS) or, rarely,
DEALING, which the periodic sync asks about.

Settings (config/settings.py): ALIPAY_GATEWAY_URL, ALIPAY_TRANSFER_APP_ID, ALIPAY_TRANSFER_APP_PRIVATE_KEY,
ALIPAY_APP_CERT, ALIPAY_PUBLIC_CERT, ALIPAY_ROOT_CERT. Nothing here logs an account, a name or a key.
"""

import logging
import warnings
from dataclasses import dataclass
from functools import lru_cache

from alipay import DCAliPay
from alipay.utils import AliPayConfig
from django.conf import settings
from django.utils.translation import gettext as _
from django.utils.translation import gettext_noop

from payouts.providers import PayoutProvider, PayoutResult, TransferState, rail_reason
from shops.payments.alipay import AlipayProvider
from shops.payments.base import CENT, ProviderError

logger = logging.getLogger(__name__)

RAIL = "alipay_transfer"
PRODUCT = {"product_code": "TRANS_ACCOUNT_NO_PWD", "biz_scene": "DIRECT_TRANSFER"}
# Business refusals that mean no transfer was made and none will be: the withdrawal fails, nothing was paid. Any
# other answer (SYSTEM_ERROR, PAYER_BALANCE_NOT_ENOUGH, no answer, an unsigned error) leaves it waiting, and the same
# out_biz_no is sent again later, as Alipay asks.
REFUSED = {
    "PAYEE_USER_INFO_ERROR": gettext_noop(
        "The name on your payout account is not the real name of the Alipay account; correct it and withdraw again."
    ),
    "PAYEE_NOT_EXIST": gettext_noop(
        "No Alipay account has this login (phone or email); correct it and withdraw again."
    ),
    "PAYEE_ACCOUNT_STATUS_ERROR": gettext_noop("The Alipay account cannot receive money (its status at Alipay)."),
    "PAYEE_ACC_OCUPIED": gettext_noop("Several Alipay accounts use this login; give the one to be paid."),
    "PERM_AML_NOT_REALNAME_REV": gettext_noop("The Alipay account must complete its identity (实名) at Alipay."),
    "PAYEE_USERINFO_STATUS_ERROR": gettext_noop("The Alipay account cannot receive money (its status at Alipay)."),
    "EXCEED_LIMIT_SM_MIN_AMOUNT": gettext_noop("Alipay transfers start at 0.10."),
    "PAYMENT_INFO_INCONSISTENCY": gettext_noop("Alipay has another transfer under this number; finance will check."),
}


def reason_text(code: str, message: str = "") -> str:
    return rail_reason("Alipay", REFUSED, code, message)


@dataclass(frozen=True)
class AlipayTransferConfig:
    gateway_url: str
    app_id: str
    app_private_key: str
    app_cert: str
    alipay_public_cert: str
    alipay_root_cert: str
    timeout: float

    @classmethod
    def from_settings(cls) -> "AlipayTransferConfig":
        return cls(
            gateway_url=settings.ALIPAY_GATEWAY_URL,
            app_id=settings.ALIPAY_TRANSFER_APP_ID,
            app_private_key=settings.ALIPAY_TRANSFER_APP_PRIVATE_KEY,
            app_cert=settings.ALIPAY_APP_CERT,
            alipay_public_cert=settings.ALIPAY_PUBLIC_CERT,
            alipay_root_cert=settings.ALIPAY_ROOT_CERT,
            timeout=settings.PAYMENTS_PROVIDER_TIMEOUT,
        )

    def __repr__(self) -> str:  # never the keys
        return f"AlipayTransferConfig(app_id={self.app_id!r}, gateway_url={self.gateway_url!r})"


def missing_settings() -> list[str]:
    """The settings the Alipay transfer rail still needs (empty when it can run)."""
    names = (
        "ALIPAY_TRANSFER_APP_ID",
        "ALIPAY_TRANSFER_APP_PRIVATE_KEY",
        "ALIPAY_APP_CERT",
        "ALIPAY_PUBLIC_CERT",
        "ALIPAY_ROOT_CERT",
    )
    return [name for name in names if not getattr(settings, name)]


@lru_cache(maxsize=4)
def _client(config: AlipayTransferConfig) -> DCAliPay:
    try:
        client = DCAliPay(
            appid=config.app_id,
            app_private_key_string=config.app_private_key,
            app_public_key_cert_string=config.app_cert,
            alipay_public_key_cert_string=config.alipay_public_cert,
            alipay_root_cert_string=config.alipay_root_cert,
        )
        with warnings.catch_warnings():
            # The SDK (3.4.0) reads the certificates' issuers through pyOpenSSL calls that pyOpenSSL now deprecates.
            warnings.simplefilter("ignore", DeprecationWarning)
            client.app_cert_sn, client.alipay_root_cert_sn  # noqa: B018 - read the certificates now, once
    except Exception as error:  # a key or certificate that does not load (OpenSSL, PyCryptodome errors)
        raise ProviderError(f"Alipay transfer client cannot start: {type(error).__name__}") from None
    client._gateway = config.gateway_url  # the SDK (3.4.0) keeps its gateway URL here; the fake's address in tests
    client._config = AliPayConfig(timeout=config.timeout)  # DCAliPay's constructor takes no config
    return client


class _TransferAPI(AlipayProvider):
    """The payment rail's call wrapper (shops.payments.alipay), on the certificate-mode client of transfers."""

    def __init__(self) -> None:
        self.config = AlipayTransferConfig.from_settings()

    @property
    def client(self) -> DCAliPay:
        return _client(self.config)


class AlipayTransferProvider(PayoutProvider):
    name = RAIL
    follows_transfers = True

    def __init__(self) -> None:
        self.api = _TransferAPI()

    def send(self, withdrawal, idempotency_key: str) -> PayoutResult:
        account = withdrawal.account or {}
        login, name = account.get("alipay_account") or "", (account.get("holder_name") or "").strip()
        if account.get("method") != "alipay" or not login or not name:
            return PayoutResult(
                status="failed", reason=_("This payout account is not an Alipay account with its holder's real name.")
            )
        try:
            answer = self.api._call(
                "transfer",
                lambda: self.api.client.api_alipay_fund_trans_uni_transfer(
                    out_biz_no=idempotency_key,
                    identity_type="ALIPAY_LOGON_ID",
                    identity=login,
                    trans_amount=str(withdrawal.net_amount.quantize(CENT)),  # less the tax withheld
                    name=name,
                    order_title=settings.ALIPAY_TRANSFER_ORDER_TITLE,
                ),
            )
        except ProviderError as error:
            logger.warning("withdrawal %s: Alipay transfer not sent (%s); sent again later", withdrawal.pk, error)
            return PayoutResult(status="pending")
        if answer.get("code") == "10000" and answer.get("out_biz_no") == idempotency_key:
            return self.transfer_result(self._state(answer, idempotency_key))
        sub_code = str(answer.get("sub_code", ""))
        if answer.get("code") == "40004" and sub_code in REFUSED:
            logger.warning("withdrawal %s: Alipay refused the transfer (%s)", withdrawal.pk, sub_code)
            state = TransferState(rail=RAIL, number=idempotency_key, state="FAIL", fail_reason=sub_code[:100])
            return PayoutResult(status="failed", reason=reason_text(sub_code), transfer=state)
        logger.warning(
            "withdrawal %s: Alipay transfer not made (%s %s); the same transfer is sent again later",
            withdrawal.pk,
            answer.get("code"),
            sub_code,
        )
        return PayoutResult(status="pending")

    @staticmethod
    def _state(answer: dict, number: str) -> TransferState:
        return TransferState(
            rail=RAIL,
            number=number,
            state=str(answer.get("status", ""))[:20],
            rail_reference=str(answer.get("order_id", ""))[:64],
            fail_reason=str(answer.get("error_code") or answer.get("fail_reason") or "")[:100],
        )

    def transfer_result(self, state: TransferState) -> PayoutResult:
        if state.state == "SUCCESS":
            return PayoutResult(status="paid", reference=state.rail_reference, transfer=state)
        if state.state in ("FAIL", "REFUND", "CLOSED"):  # REFUND: paid, then returned to the merchant
            return PayoutResult(
                status="failed", reference=state.rail_reference, reason=reason_text(state.fail_reason), transfer=state
            )
        return PayoutResult(status="pending", reference=state.rail_reference, transfer=state)

    def transfer_query(self, transfer) -> TransferState | None:
        answer = self.api._call(
            "transfer query",
            lambda: self.api.client.server_api(
                "alipay.fund.trans.common.query", {**PRODUCT, "out_biz_no": transfer.number}
            ),
        )
        if answer.get("code") == "40004" and answer.get("sub_code") == "ORDER_NOT_EXIST":
            return None
        if answer.get("code") != "10000":
            raise self.api._refusal("transfer query", answer)
        if answer.get("out_biz_no") != transfer.number:
            raise ProviderError("Alipay transfer query answered about another transfer")
        return self._state(answer, transfer.number)

    def transfer_cancel(self, transfer) -> TransferState:
        raise ProviderError("Alipay transfers cannot be cancelled")

    def payee_of(self, withdrawal) -> str:
        return (withdrawal.account or {}).get("alipay_account") or ""
