"""Error reports (config/error_reports.py): with SENTRY_DSN set, an exception and an error log line reach a local
server that speaks Sentry's envelope protocol, redacted like the logs down to the stack frames' variables; without
it, nothing is set up."""

import gzip
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from tests.config.test_settings import run_python

PUBLIC_KEY = "0123456789abcdef0123456789abcdef"
RAW = ("li.na@example.com", "13800138000", "abc123", "hunter2-secret")

PROBE = """
import logging
import django
import sentry_sdk
django.setup()

def charge(phone, email):
    password = "hunter2-secret"
    raise ValueError(f"payment failed for {email} phone {phone} token=abc123")

try:
    charge("13800138000", "li.na@example.com")
except ValueError:
    sentry_sdk.capture_exception()
logging.getLogger("shops.probe").error("refund failed for li.na@example.com token=abc123")
print("active", sentry_sdk.get_client().is_active())
sentry_sdk.flush(10)
"""


class Receiver(BaseHTTPRequestHandler):
    """Sentry's envelope endpoint: checks the key, keeps each envelope's decoded body."""

    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        if self.headers.get("Content-Encoding") == "gzip":
            body = gzip.decompress(body)
        auth = self.headers.get("X-Sentry-Auth", "")
        if self.path == "/api/1/envelope/" and f"sentry_key={PUBLIC_KEY}" in auth:
            self.server.envelopes.append(body.decode("utf-8"))
            self.send_response(200)
        else:
            self.send_response(403)
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, *_args):
        pass


@pytest.fixture
def receiver():
    server = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    server.envelopes = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


def events(envelopes: list[str]) -> list[dict]:
    """The event items of the envelopes (each: a header line, then item header and payload lines)."""
    found = []
    for envelope in envelopes:
        lines = envelope.split("\n")
        for header, payload in zip(lines[1::2], lines[2::2], strict=False):
            if json.loads(header).get("type") == "event":
                found.append(json.loads(payload))
    return found


def test_an_exception_and_an_error_line_are_reported_redacted(receiver):
    dsn = f"http://{PUBLIC_KEY}@127.0.0.1:{receiver.server_address[1]}/1"
    result = run_python(PROBE, SENTRY_DSN=dsn, SENTRY_ENVIRONMENT="ci")
    assert result.returncode == 0, result.stderr
    assert "active True" in result.stdout

    body = "\n".join(receiver.envelopes)
    reported = events(receiver.envelopes)
    assert len(reported) == 2, body[:2000]
    for raw in RAW:
        assert raw not in body, raw
    exception = next(event for event in reported if "exception" in event)
    [value] = exception["exception"]["values"]
    assert value["type"] == "ValueError"
    assert value["value"] == "payment failed for l***@example.com phone ***00 token=[redacted]"
    frame = value["stacktrace"]["frames"][-1]
    assert frame["function"] == "charge" and frame["vars"]["password"] == "[redacted]"
    assert exception["environment"] == "ci" and "user" not in exception
    line = next(event for event in reported if "logentry" in event)
    assert line["logentry"]["message"] == "refund failed for l***@example.com token=[redacted]"


def test_nothing_is_set_up_without_a_dsn(receiver):
    result = run_python(PROBE)
    assert result.returncode == 0, result.stderr
    assert "active False" in result.stdout and receiver.envelopes == []
