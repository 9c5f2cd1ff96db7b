"""What both gateway fakes share: RSA keys, the loopback HTTP server, and the outbox of notifications.

The outbox is how tests play the network between a gateway and the shop. A notification is put in it when the
gateway would send one (the buyer paid, a refund went through); in "immediate" mode it is sent at once (after the
HTTP exchange that caused it has finished, as a real gateway sends it from another machine); in "hold" mode it waits
until the test sends it: late (after something else happened), twice, in another order, or never (`drop`).
"""

import secrets
import threading
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.asymmetric.padding import PKCS1v15
from cryptography.x509.oid import NameOID

from networks.sandbox.server import is_loopback

DELIVERY_TIMEOUT = 10  # seconds the fake waits for the shop to answer a notification


# --- keys ------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class KeyPair:
    """An RSA-2048 key pair made for one fake (one test), never written anywhere but a test's own directory."""

    private_key: rsa.RSAPrivateKey

    @classmethod
    def generate(cls) -> "KeyPair":
        return cls(rsa.generate_private_key(public_exponent=65537, key_size=2048))

    @property
    def public_key(self) -> rsa.RSAPublicKey:
        return self.private_key.public_key()

    def private_pem(self) -> str:
        """PKCS#8 PEM, as WeChat Pay's apiclient_key.pem and Alipay's application private key are given."""
        return self.private_key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        ).decode()

    def public_pem(self) -> str:
        return (
            self.public_key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
            .decode()
            .strip()
        )

    def sign(self, message: bytes) -> bytes:
        """RSA-SHA256 with PKCS#1 v1.5 padding: what both gateways call SHA256withRSA (WeChat) and RSA2 (Alipay)."""
        return self.private_key.sign(message, PKCS1v15(), hashes.SHA256())

    def certificate(self, common_name: str, *, serial_number: int | None = None, days: int = 365) -> x509.Certificate:
        """A self-signed certificate of this key (the fakes' stand-in for a CA-issued one)."""
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
        now = datetime.now(UTC)
        return (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(self.public_key)
            .serial_number(serial_number or x509.random_serial_number())
            .not_valid_before(now - timedelta(days=1))
            .not_valid_after(now + timedelta(days=days))
            .sign(self.private_key, hashes.SHA256())
        )


def verify_rsa_sha256(public_key: rsa.RSAPublicKey, message: bytes, signature: bytes) -> bool:
    from cryptography.exceptions import InvalidSignature

    try:
        public_key.verify(signature, message, PKCS1v15(), hashes.SHA256())
    except InvalidSignature:
        return False
    return True


def certificate_pem(certificate: x509.Certificate) -> str:
    return certificate.public_bytes(serialization.Encoding.PEM).decode()


# --- notifications ---------------------------------------------------------------------------------------------


@dataclass
class Notification:
    """One notification a gateway sends to a shop's notify_url. `prepare` gives the body and headers of one attempt
    (WeChat Pay signs each attempt afresh, with a new timestamp and nonce; the body, and so its id, stays)."""

    url: str
    kind: str  # e.g. "TRANSACTION.SUCCESS", "REFUND.SUCCESS", "TRADE_SUCCESS"
    reference: str  # the merchant's number it is about (out_trade_no, out_refund_no)
    prepare: Callable[[], tuple[bytes, dict[str, str]]]
    is_acknowledged: Callable[[int, bytes], bool]
    attempts: list[int] = field(default_factory=list)  # HTTP status of each attempt (0: no answer)
    acknowledged: bool = False  # the shop answered one attempt as the gateway requires


class Outbox:
    """The notifications a gateway has to send, and how the test wants them sent (see the module's docstring)."""

    def __init__(self) -> None:
        self.mode = "immediate"  # or "hold"
        self.held: list[Notification] = []
        self.sent: list[Notification] = []
        self._lock = threading.Lock()

    def put(self, notification: Notification) -> None:
        with self._lock:
            if self.mode == "hold":
                self.held.append(notification)
                return
        # After the current exchange: the shop may be waiting for this very response while holding a lock the
        # notification's handler needs.
        threading.Timer(0.05, self.send, args=[notification]).start()

    def send(self, notification: Notification) -> bool:
        """One attempt; True if the shop acknowledged it as the gateway requires."""
        body, headers = notification.prepare()
        request = urllib.request.Request(notification.url, data=body, headers=headers, method="POST")  # noqa: S310 - the shop's own notify_url
        try:
            with urllib.request.urlopen(request, timeout=DELIVERY_TIMEOUT) as response:  # noqa: S310
                status, answer = response.status, response.read()
        except urllib.error.HTTPError as error:
            status, answer = error.code, error.read()
        except (urllib.error.URLError, TimeoutError, ConnectionError):
            status, answer = 0, b""
        acknowledged = notification.is_acknowledged(status, answer)
        with self._lock:
            notification.attempts.append(status)
            notification.acknowledged = notification.acknowledged or acknowledged
            if notification not in self.sent:
                self.sent.append(notification)
        return acknowledged

    def take(self, kind: str | None = None, reference: str | None = None) -> list[Notification]:
        """Remove the held notifications that match, in the order they were made, and return them."""
        with self._lock:
            taken = [
                n
                for n in self.held
                if (kind is None or n.kind == kind) and (reference is None or n.reference == reference)
            ]
            self.held = [n for n in self.held if n not in taken]
        return taken

    def release(self, *, reverse: bool = False, times: int = 1, kind: str | None = None) -> list[bool]:
        """Send every held notification (of `kind`), oldest first or newest first, each `times` times."""
        notifications = self.take(kind)
        if reverse:
            notifications.reverse()
        return [self.send(n) for n in notifications for _attempt in range(times)]

    def drop(self, kind: str | None = None) -> int:
        """Lose the held notifications (of `kind`): they never arrive."""
        return len(self.take(kind))

    def retry_unacknowledged(self) -> list[bool]:
        """Send again every notification the shop did not acknowledge (a gateway retries on a schedule)."""
        with self._lock:
            pending = [n for n in self.sent if not n.acknowledged]
        return [self.send(n) for n in pending]


def nonce(length: int = 32) -> str:
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
    return "".join(secrets.choice(alphabet) for _ in range(length))


# --- the HTTP server -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Request:
    method: str
    target: str  # path and query, exactly as sent (WeChat Pay signs it so)
    headers: dict[str, str]  # names lower-cased
    body: bytes

    @property
    def path(self) -> str:
        return urlsplit(self.target).path

    @property
    def query(self) -> str:
        return urlsplit(self.target).query


@dataclass
class Response:
    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)


def html_response(status: int, html: str) -> Response:
    return Response(status, html.encode(), {"Content-Type": "text/html; charset=utf-8"})


def redirect_response(location: str) -> Response:
    return Response(302, b"", {"Location": location})


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address, handler, route: Callable[[Request], Response]):
        self.route = route
        super().__init__(address, handler)


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    server_version = "PaymentGatewaysFake/1"
    protocol_version = "HTTP/1.1"

    def log_message(self, format, *args):
        pass  # quiet; a request's signature and keys never reach a log

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        request = Request(
            method=self.command,
            target=self.path,
            headers={name.lower(): value for name, value in self.headers.items()},
            body=body,
        )
        try:
            response = self.server.route(request)
        except Exception as error:  # a fake's bug answers 500 with its reason, and the server goes on
            response = Response(500, f"fake gateway error: {error!r}".encode(), {"Content-Type": "text/plain"})
        self.send_response(response.status)
        for name, value in response.headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(response.body)))
        self.end_headers()
        self.wfile.write(response.body)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _serve


class LoopbackServer:
    """A threaded HTTP server on a loopback address, answering with `route(request)`."""

    def __init__(self, host: str, port: int, route: Callable[[Request], Response]):
        if not is_loopback(host):
            raise ValueError("the payment gateway fakes only listen on loopback (127.0.0.1, ::1, localhost)")
        self._server = _Server((host, port), _Handler, route)
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> None:
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, name="payment-gateways-fake", daemon=True
        )
        self._thread.start()

    def serve_forever(self) -> None:
        self._server.serve_forever()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        if self._thread:
            self._thread.join(timeout=5)
