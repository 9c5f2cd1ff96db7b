"""The identity verification port: does this legal name belong to this resident ID number? (issue #24)

One function, `id_verify(name=…, number=…)`, and a verifier chosen by `settings.IDENTITY_VERIFIER`, like the SMS port
(core/sms.py):

- `core.id_verification.ConsoleIdVerifier` (the default, development): logs the check with both values masked and
  answers MATCH, except for a name starting with "X" (MISMATCH), so both paths can be tried by hand.
- `core.id_verification.TencentIdVerifier`: Tencent Cloud 人脸核身 · 身份证二要素核验 (`IdCardVerification`, API
  2018-03-01) through Tencent's official Python SDK (`tencentcloud-sdk-python-faceid`), which signs each request
  with TC3-HMAC-SHA256. Settings: `IDENTITY_TENCENT_SECRET_ID`, `IDENTITY_TENCENT_SECRET_KEY`,
  `IDENTITY_TENCENT_REGION`, `IDENTITY_TENCENT_ENDPOINT` (faceid.tencentcloudapi.com; tests point it at a local fake
  over http), `IDENTITY_VERIFY_TIMEOUT`.

The two-factor check covers mainland resident ID cards only: the other ID types are verified by staff from the
document (accounts.identity). Outcomes: MATCH, MISMATCH and INVALID (the authority says the number or name is not
valid) are answers; `IdVerificationUnavailable` (the provider's outage, its daily limit, the network) means "ask
again later" and `IdVerificationRejected` our own misconfiguration (credentials, signature).
"""

import enum
import logging
from dataclasses import dataclass

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.utils.module_loading import import_string

from core.id_numbers import mask_id_number, mask_legal_name

logger = logging.getLogger(__name__)


class Outcome(enum.StrEnum):
    MATCH = "match"
    MISMATCH = "mismatch"
    INVALID = "invalid"  # the number or name is not valid, or the authority has no record of the number


@dataclass(frozen=True)
class IdVerificationResult:
    outcome: Outcome
    code: str  # the provider's result code, e.g. Tencent's "0", "-1"
    description: str  # the provider's words, for staff; never shown with the values
    reference: str  # the provider's request id


class IdVerificationError(Exception):
    """No answer. `code` is the provider's error code when there is one."""

    transient = False

    def __init__(self, message: str, *, code: str = ""):
        super().__init__(message)
        self.code = code


class IdVerificationUnavailable(IdVerificationError):
    """The provider could not answer now (outage, upgrade, daily limit, throttling, network): try later."""

    transient = True


class IdVerificationRejected(IdVerificationError):
    """The provider refused our request (credentials, signature, account): fix the settings."""


def id_verify(*, name: str, number: str) -> IdVerificationResult:
    """Ask settings.IDENTITY_VERIFIER whether `name` is the holder of resident ID `number`. Raises an
    IdVerificationError when there is no answer."""
    return import_string(settings.IDENTITY_VERIFIER)().verify(name=name, number=number)


class ConsoleIdVerifier:
    def verify(self, *, name: str, number: str) -> IdVerificationResult:
        outcome = Outcome.MISMATCH if name.upper().startswith("X") else Outcome.MATCH
        logger.info("Identity check (console) of %s %s: %s", mask_legal_name(name), mask_id_number(number), outcome)
        return IdVerificationResult(outcome, "console", "console verifier", "console")


# IdCardVerification's Result codes (the SDK's model documents them): the first two are answers (and charged).
TENCENT_RESULTS = {
    "0": Outcome.MATCH,
    "-1": Outcome.MISMATCH,
    "-2": Outcome.INVALID,  # 非法身份证号
    "-3": Outcome.INVALID,  # 非法姓名
    "-5": Outcome.INVALID,  # 证件库中无此身份证记录
}
TENCENT_RESULTS_LATER = {"-4", "-6", "-7"}  # 证件库服务异常, 升级中, 超过当日限制
TENCENT_ERRORS_LATER = (
    "RequestLimitExceeded",
    "LimitExceeded",
    "InternalError",
    "ServerError",
    "ClientNetworkError",
    "FailedOperation.TimeOut",
    "ResourceUnavailable",
)


class TencentIdVerifier:
    """Tencent Cloud 身份证二要素核验 through the official SDK (`tencentcloud.faceid.v20180301`)."""

    def __init__(self):
        try:
            from tencentcloud.common import credential
            from tencentcloud.common.profile.client_profile import ClientProfile
            from tencentcloud.common.profile.http_profile import HttpProfile
            from tencentcloud.faceid.v20180301 import faceid_client
        except ImportError as error:  # pragma: no cover - the pinned requirement is installed
            raise ImproperlyConfigured(
                "IDENTITY_VERIFIER=core.id_verification.TencentIdVerifier needs tencentcloud-sdk-python-faceid"
            ) from error
        for setting in ("IDENTITY_TENCENT_SECRET_ID", "IDENTITY_TENCENT_SECRET_KEY"):
            if not getattr(settings, setting, ""):
                raise ImproperlyConfigured(f"{setting} is required for Tencent Cloud identity verification")
        endpoint = settings.IDENTITY_TENCENT_ENDPOINT
        scheme = "https"
        if "://" in endpoint:
            scheme, endpoint = endpoint.split("://", 1)
        http = HttpProfile(endpoint=endpoint.rstrip("/"), protocol=scheme, reqTimeout=settings.IDENTITY_VERIFY_TIMEOUT)
        self.client = faceid_client.FaceidClient(
            credential.Credential(settings.IDENTITY_TENCENT_SECRET_ID, settings.IDENTITY_TENCENT_SECRET_KEY),
            settings.IDENTITY_TENCENT_REGION,
            ClientProfile(signMethod="TC3-HMAC-SHA256", httpProfile=http),
        )

    def verify(self, *, name: str, number: str) -> IdVerificationResult:
        from tencentcloud.common.exception.tencent_cloud_sdk_exception import TencentCloudSDKException
        from tencentcloud.faceid.v20180301 import models

        request = models.IdCardVerificationRequest()
        request.Name = name
        request.IdCard = number
        try:
            response = self.client.IdCardVerification(request)
        except TencentCloudSDKException as error:
            code = error.get_code() or ""
            if code.startswith(TENCENT_ERRORS_LATER):
                raise IdVerificationUnavailable(
                    f"Tencent Cloud identity check unavailable: {code}", code=code
                ) from None
            raise IdVerificationRejected(
                f"Tencent Cloud identity check refused: {code} {error.get_message() or ''}", code=code
            ) from None
        result = str(response.Result or "")
        if result in TENCENT_RESULTS_LATER:
            raise IdVerificationUnavailable(f"Tencent Cloud identity check: {response.Description}", code=result)
        outcome = TENCENT_RESULTS.get(result)
        if outcome is None:
            raise IdVerificationUnavailable(f"Tencent Cloud identity check: unknown result {result!r}", code=result)
        logger.info(
            "Identity check (Tencent) of %s %s: %s (%s)",
            mask_legal_name(name),
            mask_id_number(number),
            outcome,
            response.RequestId,
        )
        return IdVerificationResult(outcome, result, response.Description or "", response.RequestId or "")
