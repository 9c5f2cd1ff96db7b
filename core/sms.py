"""The SMS port: one function, `sms_send`, and a backend chosen by `settings.SMS_BACKEND`.

On the ground floor because the storefront (the buyer's one-time code) and the notifications above it both send.

- `core.sms.ConsoleSmsBackend` (the default): logs the message with the number masked; in development the one-time
  code is read from the server's log.
- `core.sms.LocmemSmsBackend`: keeps messages in `core.sms.outbox` (tests), like Django's locmem mail backend.
- `core.sms.TencentSmsBackend`: Tencent Cloud SMS (短信 SendSms, API 2021-01-11) through Tencent's official
  Python SDK (`tencentcloud-sdk-python-sms`), which signs each request with TC3-HMAC-SHA256. Settings:
  `SMS_TENCENT_SECRET_ID`, `SMS_TENCENT_SECRET_KEY`, `SMS_TENCENT_SDK_APP_ID`, `SMS_TENCENT_SIGN_NAME`,
  `SMS_TENCENT_REGION` (ap-guangzhou), `SMS_TENCENT_ENDPOINT` (sms.tencentcloudapi.com; tests point it at a local
  fake over http) and `SMS_TEMPLATES` (our template names → the template ids approved in the console).

A provider only sends approved templates with parameters, never free text: every message is a template name
(`otp`, `order_paid`, …) with its parameters in order, and the text the console backend shows. Numbers are never
logged in full (`phone_masked`).

Errors: `SmsThrottled` (the provider's frequency limits: try later), `SmsUnavailable` (network, 5xx, internal
errors: try later) and `SmsRejected` (a wrong number, template or signature, bad credentials: trying again will
not help). Callers that retry (notifications) retry the first two only.
"""

import logging
from dataclasses import dataclass

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.utils.module_loading import import_string

logger = logging.getLogger(__name__)

__all__ = [
    "SmsError",
    "SmsMessage",
    "SmsRejected",
    "SmsThrottled",
    "SmsUnavailable",
    "outbox",
    "phone_masked",
    "sms_send",
]


class SmsError(Exception):
    """The message was not sent. `code` is the provider's error code when there is one."""

    transient = False

    def __init__(self, message: str, *, code: str = ""):
        super().__init__(message)
        self.code = code


class SmsRejected(SmsError):
    """The provider refused the message for good (number, template, signature, credentials)."""


class SmsThrottled(SmsError):
    """The provider's frequency limit for this number or account was hit: try again later."""

    transient = True


class SmsUnavailable(SmsError):
    """The provider could not be reached or failed on its side: try again later."""

    transient = True


@dataclass(frozen=True)
class SmsMessage:
    phone: str  # E.164
    template: str  # our template name, a key of settings.SMS_TEMPLATES
    params: tuple[str, ...]
    text: str  # what the message says, for the console and the tests


outbox: list[SmsMessage] = []


def phone_masked(phone: str) -> str:
    """ "+8613800138000" → "+86*******8000": enough to tell numbers apart in a log, not to call one."""
    phone = phone or ""
    keep_start = 3 if phone.startswith("+") else 0
    if len(phone) <= keep_start + 4:
        return "*" * len(phone)
    return phone[:keep_start] + "*" * (len(phone) - keep_start - 4) + phone[-4:]


def sms_send(*, phone: str, template: str, params: list[str] | tuple[str, ...], text: str) -> str:
    """Send one SMS through settings.SMS_BACKEND; return the provider's message id. Raises an `SmsError`."""
    message = SmsMessage(phone=phone, template=template, params=tuple(str(p) for p in params), text=text)
    backend = import_string(settings.SMS_BACKEND)()
    return backend.send(message)


class ConsoleSmsBackend:
    def send(self, message: SmsMessage) -> str:
        logger.info("SMS to %s (%s): %s", phone_masked(message.phone), message.template, message.text)
        return "console"


class LocmemSmsBackend:
    def send(self, message: SmsMessage) -> str:
        outbox.append(message)
        return f"locmem-{len(outbox)}"


# Tencent Cloud's error codes (SendStatusSet[].Code, or Response.Error.Code) that mean "later, not never".
TENCENT_THROTTLED = ("LimitExceeded.", "RequestLimitExceeded")
TENCENT_UNAVAILABLE = ("InternalError", "FailedOperation.TimeOut", "ServerError", "ClientNetworkError")


class TencentSmsBackend:
    """Tencent Cloud SMS through the official SDK (`tencentcloud.sms.v20210111`)."""

    def __init__(self):
        try:
            from tencentcloud.common import credential
            from tencentcloud.common.profile.client_profile import ClientProfile
            from tencentcloud.common.profile.http_profile import HttpProfile
            from tencentcloud.sms.v20210111 import sms_client
        except ImportError as error:  # pragma: no cover - the pinned requirement is installed
            raise ImproperlyConfigured(
                "SMS_BACKEND=core.sms.TencentSmsBackend needs tencentcloud-sdk-python-sms"
            ) from error
        for name in (
            "SMS_TENCENT_SECRET_ID",
            "SMS_TENCENT_SECRET_KEY",
            "SMS_TENCENT_SDK_APP_ID",
            "SMS_TENCENT_SIGN_NAME",
        ):
            if not getattr(settings, name, ""):
                raise ImproperlyConfigured(f"{name} is required for Tencent Cloud SMS")
        endpoint = settings.SMS_TENCENT_ENDPOINT
        scheme = "https"
        if "://" in endpoint:
            scheme, endpoint = endpoint.split("://", 1)
        http = HttpProfile(endpoint=endpoint.rstrip("/"), protocol=scheme, reqTimeout=settings.SMS_TIMEOUT)
        self.client = sms_client.SmsClient(
            credential.Credential(settings.SMS_TENCENT_SECRET_ID, settings.SMS_TENCENT_SECRET_KEY),
            settings.SMS_TENCENT_REGION,
            ClientProfile(signMethod="TC3-HMAC-SHA256", httpProfile=http),
        )

    def send(self, message: SmsMessage) -> str:
        from tencentcloud.common.exception.tencent_cloud_sdk_exception import TencentCloudSDKException
        from tencentcloud.sms.v20210111 import models

        template_id = settings.SMS_TEMPLATES.get(message.template)
        if not template_id:
            raise SmsRejected(f"no template id for {message.template!r} in SMS_TEMPLATES", code="NoTemplate")
        request = models.SendSmsRequest()
        request.PhoneNumberSet = [message.phone]
        request.SmsSdkAppId = settings.SMS_TENCENT_SDK_APP_ID
        request.SignName = settings.SMS_TENCENT_SIGN_NAME
        request.TemplateId = str(template_id)
        request.TemplateParamSet = list(message.params)
        try:
            response = self.client.SendSms(request)
        except TencentCloudSDKException as error:
            raise _tencent_error(error.get_code() or "", error.get_message() or "") from None
        statuses = response.SendStatusSet or []
        status = statuses[0] if statuses else None
        if status is None:
            raise SmsUnavailable("Tencent Cloud SMS answered without a send status", code="NoStatus")
        if status.Code != "Ok":
            raise _tencent_error(status.Code or "", status.Message or "")
        logger.info("SMS to %s sent (%s): %s", phone_masked(message.phone), message.template, status.SerialNo)
        return status.SerialNo or response.RequestId or ""


def _tencent_error(code: str, text: str) -> SmsError:
    if code.startswith(TENCENT_THROTTLED):
        return SmsThrottled(f"Tencent Cloud SMS throttled: {code}", code=code)
    if code.startswith(TENCENT_UNAVAILABLE):
        return SmsUnavailable(f"Tencent Cloud SMS unavailable: {code} {text}", code=code)
    return SmsRejected(f"Tencent Cloud SMS refused: {code} {text}", code=code)
