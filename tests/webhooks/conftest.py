"""A real HTTP receiver for the webhook tests: http.server in a thread on 127.0.0.1, which checks each request's
signature with the secret it was given (webhooks.signing.signature_verify, the documented check) and answers what
the test asks for: a status, a slow answer (to time out), a redirect, a long body."""

import json
import socket
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from members.webhooks.signing import signature_verify


@dataclass
class Received:
    headers: dict
    body: bytes
    verified: bool

    @property
    def payload(self) -> dict:
        return json.loads(self.body)


@dataclass
class Receiver:
    url: str
    secrets: list[str] = field(default_factory=list)
    status: int = 200
    delay: float = 0.0
    body: bytes = b'{"ok": true}'
    headers: dict = field(default_factory=dict)
    received: list[Received] = field(default_factory=list)

    @property
    def verified(self) -> list[Received]:
        return [request for request in self.received if request.verified]


@pytest.fixture
def receiver():
    state = Receiver(url="")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            header = self.headers.get("X-Signature", "")
            verified = any(signature_verify(secret, header, body) for secret in state.secrets)
            state.received.append(Received(dict(self.headers), body, verified))
            if state.delay:
                time.sleep(state.delay)
            try:
                self.send_response(state.status if verified or state.status != 200 else 400)
                for name, value in state.headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(state.body)))
                self.end_headers()
                self.wfile.write(state.body)
            except (BrokenPipeError, ConnectionResetError):
                pass

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{server.server_address[1]}/hooks"
    yield state
    server.shutdown()
    server.server_close()


@pytest.fixture
def closed_port_url():
    """A local URL where nothing listens: the connection is refused."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/hooks"
