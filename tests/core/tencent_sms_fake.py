"""A local fake of Tencent Cloud SMS's SendSms (API 2021-01-11), faithful to the protocol the SDK speaks.

It checks what the real service checks before sending: the TC3-HMAC-SHA256 signature over the canonical request
(https://cloud.tencent.com/document/api/382/52072, "签名方法 v3"), the timestamp (within 5 minutes), the action and
version headers, the SDK app id, the signature name and the template; and it answers in the documented shapes:
`{"Response": {"SendStatusSet": [{"Code": "Ok", "SerialNo": …}], "RequestId": …}}` for a send, a per-number
`Code` such as `LimitExceeded.PhoneNumberThirtySecondLimit` (one text a number per 30 s) or
`LimitExceeded.PhoneNumberDailyLimit`, and `{"Response": {"Error": {"Code": "AuthFailure.SignatureFailure", …}}}`
for a request it refuses whole. `fail_next` makes the next request fail with a given top-level error code.
"""

import hashlib
import hmac
import json
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

SECRET_ID = "AKIDfakeSecretId0000000000000000000"
SECRET_KEY = "fakeSecretKey000000000000000000000"
SDK_APP_ID = "1400000001"
SIGN_NAME = "微店测试"
TEMPLATES = {"100001", "100002"}


def tc3_signature(secret_key: str, *, method: str, host: str, content_type: str, payload: bytes, timestamp: int,
                  service: str = "sms") -> str:  # fmt: skip
    date = time.strftime("%Y-%m-%d", time.gmtime(timestamp))
    canonical = "\n".join(
        [method, "/", "", f"content-type:{content_type}\nhost:{host}\n", "content-type;host",
         hashlib.sha256(payload).hexdigest()]
    )  # fmt: skip
    to_sign = "\n".join(
        [
            "TC3-HMAC-SHA256",
            str(timestamp),
            f"{date}/{service}/tc3_request",
            hashlib.sha256(canonical.encode()).hexdigest(),
        ]
    )

    def sign(key: bytes, message: str) -> bytes:
        return hmac.new(key, message.encode(), hashlib.sha256).digest()

    key = sign(sign(sign(("TC3" + secret_key).encode(), date), service), "tc3_request")
    return hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()


class TencentSmsFake:
    def __init__(self):
        self.sent: list[dict] = []
        self.requests = 0
        self.fail_next: str = ""
        self.daily_limit = 10
        self._last: dict[str, float] = {}
        self._count: dict[str, int] = {}
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                answer = fake.handle(self.headers, body)
                data = json.dumps({"Response": answer}).encode()
                self.send_response(200)  # the API answers 200 with an Error object, as the real one does
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()

    @staticmethod
    def _error(code: str, message: str) -> dict:
        return {"Error": {"Code": code, "Message": message}, "RequestId": str(uuid.uuid4())}

    def handle(self, headers, body: bytes) -> dict:
        self.requests += 1
        if self.fail_next:
            code, self.fail_next = self.fail_next, ""
            return self._error(code, "injected by the test")
        if headers.get("X-TC-Action") != "SendSms" or headers.get("X-TC-Version") != "2021-01-11":
            return self._error("InvalidAction", "unknown action or version")
        authorization = headers.get("Authorization", "")
        try:
            algorithm, rest = authorization.split(" ", 1)
            parts = dict(part.strip().split("=", 1) for part in rest.split(","))
            secret_id, date, service, _term = parts["Credential"].split("/")
            timestamp = int(headers.get("X-TC-Timestamp", "0"))
        except (ValueError, KeyError):
            return self._error("AuthFailure.SignatureFailure", "malformed Authorization")
        if algorithm != "TC3-HMAC-SHA256" or parts.get("SignedHeaders") != "content-type;host" or service != "sms":
            return self._error("AuthFailure.SignatureFailure", "unsupported signature")
        if abs(time.time() - timestamp) > 300:
            return self._error("AuthFailure.SignatureExpire", "timestamp out of range")
        if secret_id != SECRET_ID:
            return self._error("AuthFailure.SecretIdNotFound", "unknown SecretId")
        expected = tc3_signature(
            SECRET_KEY, method="POST", host=headers.get("Host", ""), content_type=headers.get("Content-Type", ""),
            payload=body, timestamp=timestamp,
        )  # fmt: skip
        if date != time.strftime("%Y-%m-%d", time.gmtime(timestamp)) or not hmac.compare_digest(
            expected, parts.get("Signature", "")
        ):
            return self._error("AuthFailure.SignatureFailure", "signature mismatch")
        params = json.loads(body)
        if params.get("SmsSdkAppId") != SDK_APP_ID:
            return self._error("FailedOperation.SmsSdkAppIdVerifyFail", "SmsSdkAppId verify fail")
        if params.get("SignName") != SIGN_NAME:
            return self._error("FailedOperation.SignatureIncorrectOrUnapproved", "signature not approved")
        statuses = []
        for phone in params.get("PhoneNumberSet", []):
            statuses.append(self._send_one(phone, params))
        return {"SendStatusSet": statuses, "RequestId": str(uuid.uuid4())}

    def _send_one(self, phone: str, params: dict) -> dict:
        status = {"PhoneNumber": phone, "SessionContext": "", "IsoCode": "CN", "Fee": 0, "SerialNo": ""}
        if params.get("TemplateId") not in TEMPLATES:
            return status | {
                "Code": "FailedOperation.TemplateIncorrectOrUnapproved",
                "Message": "template not approved",
            }
        if not phone.startswith("+") or not phone[1:].isdigit():
            return status | {"Code": "InvalidParameterValue.IncorrectPhoneNumber", "Message": "bad number"}
        now = time.time()
        if now - self._last.get(phone, 0) < 30:
            return status | {"Code": "LimitExceeded.PhoneNumberThirtySecondLimit", "Message": "30 s limit"}
        if self._count.get(phone, 0) >= self.daily_limit:
            return status | {"Code": "LimitExceeded.PhoneNumberDailyLimit", "Message": "daily limit"}
        self._last[phone] = now
        self._count[phone] = self._count.get(phone, 0) + 1
        self.sent.append({"phone": phone, "template": params["TemplateId"], "params": params.get("TemplateParamSet")})
        return status | {"Code": "Ok", "Message": "send success", "Fee": 1, "SerialNo": f"5000:{uuid.uuid4().int}"}
