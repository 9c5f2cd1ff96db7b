"""A local fake of Tencent Cloud 人脸核身's IdCardVerification (身份证二要素核验, API 2018-03-01), faithful to the
protocol the official SDK speaks.

Like the SMS fake (tests/core/tencent_sms_fake.py, whose TC3 signature it reuses) it checks what the real service
checks before answering: the TC3-HMAC-SHA256 signature over the canonical request with the service `faceid`, the
timestamp (within 5 minutes), the action and version headers and the SecretId. It answers in the documented shapes:
`{"Response": {"Result": "0", "Description": "姓名和身份证号一致", "RequestId": …}}` with the result codes of the API
(0 match, -1 mismatch, -2 invalid ID number, -3 invalid name, -4 service error, -5 no record, -6 upgrading, -7 daily
limit), and `{"Response": {"Error": {"Code": …, "Message": …}, "RequestId": …}}` for a request refused whole.
`people` is the authority's register (number → name); `fail_next` / `result_next` inject a top-level error or a
result code for the next request.
"""

import json
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from tests.core.tencent_sms_fake import tc3_signature

SECRET_ID = "AKIDfakeFaceIdSecretId00000000000000"
SECRET_KEY = "fakeFaceIdSecretKey00000000000000"
_CHECK = "10X98765432"
DESCRIPTIONS = {
    "0": "姓名和身份证号一致",
    "-1": "姓名和身份证号不一致",
    "-2": "非法身份证号（长度、校验位等不正确）",
    "-3": "非法姓名（长度、格式等不正确）",
    "-4": "证件库服务异常",
    "-5": "证件库中无此身份证记录",
    "-6": "权威比对系统升级中，请稍后再试",
    "-7": "认证次数超过当日限制",
}


def _valid_number(number: str) -> bool:
    if len(number) != 18 or not number[:17].isdigit():
        return False
    total = sum(int(digit) * pow(2, 17 - i, 11) for i, digit in enumerate(number[:17]))
    return _CHECK[total % 11] == number[17]


class TencentFaceIdFake:
    def __init__(self, people: dict[str, str] | None = None):
        self.people = dict(people or {})
        self.checked: list[dict] = []
        self.fail_next = ""
        self.result_next = ""
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                data = json.dumps({"Response": fake.handle(self.headers, body)}, ensure_ascii=False).encode()
                self.send_response(200)
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
        if self.fail_next:
            code, self.fail_next = self.fail_next, ""
            return self._error(code, "injected by the test")
        if headers.get("X-TC-Action") != "IdCardVerification" or headers.get("X-TC-Version") != "2018-03-01":
            return self._error("InvalidAction", "unknown action or version")
        try:
            algorithm, rest = headers.get("Authorization", "").split(" ", 1)
            parts = dict(part.strip().split("=", 1) for part in rest.split(","))
            secret_id, date, service, _term = parts["Credential"].split("/")
            timestamp = int(headers.get("X-TC-Timestamp", "0"))
        except (ValueError, KeyError):
            return self._error("AuthFailure.SignatureFailure", "malformed Authorization")
        if algorithm != "TC3-HMAC-SHA256" or parts.get("SignedHeaders") != "content-type;host" or service != "faceid":
            return self._error("AuthFailure.SignatureFailure", "unsupported signature")
        if abs(time.time() - timestamp) > 300:
            return self._error("AuthFailure.SignatureExpire", "timestamp out of range")
        if secret_id != SECRET_ID:
            return self._error("AuthFailure.SecretIdNotFound", "unknown SecretId")
        expected = tc3_signature(
            SECRET_KEY,
            method="POST",
            host=headers.get("Host", ""),
            content_type=headers.get("Content-Type", ""),
            payload=body,
            timestamp=timestamp,
            service="faceid",
        )
        if date != time.strftime("%Y-%m-%d", time.gmtime(timestamp)) or expected != parts.get("Signature", ""):
            return self._error("AuthFailure.SignatureFailure", "signature mismatch")
        params = json.loads(body)
        name, number = params.get("Name") or "", params.get("IdCard") or ""
        self.checked.append({"name": name, "number": number})
        if self.result_next:
            result, self.result_next = self.result_next, ""
        elif not _valid_number(number):
            result = "-2"
        elif not name or any(char.isdigit() for char in name):
            result = "-3"
        elif number not in self.people:
            result = "-5"
        else:
            result = "0" if self.people[number] == name else "-1"
        return {"Result": result, "Description": DESCRIPTIONS[result], "RequestId": str(uuid.uuid4())}
