"""Mail from one setting, EMAIL_URL (config/mail.py), sent through Django's SMTP backend to a real local SMTP
server (aiosmtpd) that asks for what a provider's does: STARTTLS (or TLS from the first byte) with a certificate the
client must trust, and AUTH only over TLS."""

import datetime
import ipaddress
import socket
import ssl
from smtplib import SMTPAuthenticationError

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from django.core import mail

from config.mail import email_settings
from tests.config.test_settings import run_python

USER, PASSWORD = "notices@shop.example", "p@ss:w/rd"  # characters a URL must percent-encode


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def certificate(tmp_path_factory):
    """A self-signed certificate for 127.0.0.1, made for this run: (certificate file, key file)."""
    folder = tmp_path_factory.mktemp("smtp-tls")
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = folder / "cert.pem", folder / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert_file, key_file


class Mailbox:
    """What the server received: each message with the login it came under and whether the session was TLS."""

    def __init__(self):
        self.messages = []

    async def handle_DATA(self, server, session, envelope):  # aiosmtpd calls the hook by this name
        self.messages.append(
            {
                "to": envelope.rcpt_tos,
                "data": envelope.content.decode("utf-8", "replace"),
                "login": session.auth_data.login.decode() if isinstance(session.auth_data, LoginPassword) else None,
                "tls": server.transport.get_extra_info("ssl_object") is not None,
            }
        )
        return "250 OK"


def authenticate(server, session, envelope, mechanism, auth_data):
    ok = isinstance(auth_data, LoginPassword) and (auth_data.login, auth_data.password) == (
        USER.encode(),
        PASSWORD.encode(),
    )
    return AuthResult(success=ok, handled=False, auth_data=auth_data)  # not handled: the server answers 535 itself


@pytest.fixture
def smtp_server(certificate, request):
    """A local SMTP server; `implicit` (indirect parameter) for TLS from the first byte, else STARTTLS required."""
    implicit = getattr(request, "param", False)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(*certificate)
    mailbox, port = Mailbox(), free_port()
    tls = {"ssl_context": context} if implicit else {"tls_context": context, "require_starttls": True}
    controller = Controller(
        mailbox,
        hostname="127.0.0.1",
        port=port,
        authenticator=authenticate,
        auth_require_tls=not implicit,  # (aiosmtpd counts only STARTTLS as TLS here; implicit TLS is TLS throughout)
        # PLAIN only: smtplib then gives up after one refusal (aiosmtpd's LOGIN dialogue and smtplib's disagree on a
        # refused password, and the client waits for its timeout)
        auth_exclude_mechanism=["LOGIN"],
        server_hostname="127.0.0.1",
        **tls,
    )
    controller.start()
    try:
        yield mailbox, port
    finally:
        controller.stop()


@pytest.fixture
def trusted(certificate, monkeypatch):
    """The client trusts the test certificate as it would a provider's (the default verify paths: SSL_CERT_FILE)."""
    monkeypatch.setenv("SSL_CERT_FILE", str(certificate[0]))


def use(settings, url: str) -> None:
    for name, value in email_settings(url).items():
        setattr(settings, name, value)


def url_for(scheme: str, port: int, password: str = PASSWORD) -> str:
    quote = {"@": "%40", ":": "%3A", "/": "%2F"}
    encode = lambda text: "".join(quote.get(char, char) for char in text)  # noqa: E731
    return f"{scheme}://{encode(USER)}:{encode(password)}@127.0.0.1:{port}?timeout=5"


def test_the_url_names_each_setting():
    assert email_settings("smtp+tls://a%40b.cn:p%40ss@smtp.example.com") == {
        "EMAIL_BACKEND": "django.core.mail.backends.smtp.EmailBackend",
        "EMAIL_HOST": "smtp.example.com",
        "EMAIL_PORT": 587,
        "EMAIL_HOST_USER": "a@b.cn",
        "EMAIL_HOST_PASSWORD": "p@ss",
        "EMAIL_USE_TLS": True,
        "EMAIL_USE_SSL": False,
    }
    implicit = email_settings("smtps://u:p@smtp.example.com?timeout=7")
    assert (implicit["EMAIL_PORT"], implicit["EMAIL_USE_SSL"], implicit["EMAIL_USE_TLS"]) == (465, True, False)
    assert implicit["EMAIL_TIMEOUT"] == 7
    assert email_settings("smtp://relay")["EMAIL_PORT"] == 25
    assert email_settings("consolemail://") == {"EMAIL_BACKEND": "django.core.mail.backends.console.EmailBackend"}
    with pytest.raises(ValueError, match="unknown scheme 'smtpx'"):
        email_settings("smtpx://relay")


def test_starttls_with_login_delivers(settings, smtp_server, trusted):
    mailbox, port = smtp_server
    use(settings, url_for("smtp+tls", port))
    assert mail.send_mail("订单已付款", "Order 1001 is paid.", "noreply@shop.example", ["buyer@example.com"]) == 1
    [received] = mailbox.messages
    assert received["to"] == ["buyer@example.com"] and "Order 1001 is paid." in received["data"]
    assert received["login"] == USER and received["tls"] is True


@pytest.mark.parametrize("smtp_server", [True], indirect=True)
def test_implicit_tls_delivers(settings, smtp_server, trusted):
    mailbox, port = smtp_server
    use(settings, url_for("smtps", port))
    mail.send_mail("Receipt", "Thank you.", "noreply@shop.example", ["buyer@example.com"])
    assert [(m["login"], m["tls"]) for m in mailbox.messages] == [(USER, True)]


def test_a_wrong_password_is_refused(settings, smtp_server, trusted):
    mailbox, port = smtp_server
    use(settings, url_for("smtp+tls", port, password="wrong"))
    with pytest.raises(SMTPAuthenticationError):
        mail.send_mail("x", "y", "noreply@shop.example", ["buyer@example.com"])
    assert mailbox.messages == []


def test_an_untrusted_certificate_is_refused(settings, smtp_server, monkeypatch, tmp_path):
    mailbox, port = smtp_server
    monkeypatch.setenv("SSL_CERT_FILE", str(tmp_path / "no-such-ca.pem"))  # nothing trusted: not even the test's
    monkeypatch.setenv("SSL_CERT_DIR", str(tmp_path))
    use(settings, url_for("smtp+tls", port))
    with pytest.raises(ssl.SSLCertVerificationError):
        mail.send_mail("x", "y", "noreply@shop.example", ["buyer@example.com"])
    assert mailbox.messages == []


def test_settings_read_email_url_and_refuse_an_unknown_scheme():
    probe = "import django; django.setup(); from django.conf import settings as s; "
    probe += "print(s.EMAIL_HOST, s.EMAIL_PORT, s.EMAIL_USE_TLS, s.EMAIL_HOST_USER)"
    result = run_python(probe, EMAIL_URL="smtp+tls://a%40b.cn:secret@smtp.example.com", EMAIL_HOST="ignored")
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["smtp.example.com", "587", "True", "a@b.cn"]
    refused = run_python(probe, EMAIL_URL="smtpx://relay")
    assert refused.returncode != 0 and "EMAIL_URL: unknown scheme 'smtpx'" in refused.stderr
