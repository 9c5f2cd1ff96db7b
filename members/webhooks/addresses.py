"""Which URLs an endpoint may have: guarding the server against being used to reach its own network (SSRF).

In production (WEBHOOKS_ALLOW_PRIVATE_URLS off, the default when DEBUG=0) an endpoint must be https, name no user
or password, and its host must resolve only to public addresses: loopback, private (10/8, 172.16/12, 192.168/16,
fc00::/7), link-local (169.254/16: cloud metadata services), shared, reserved, multicast and unspecified addresses
are refused, when the endpoint is saved and again before every attempt (the name may have been re-pointed since).
Redirects are never followed. What remains between the check and the connection (a name re-pointed in those
milliseconds) is closed by sending through an egress proxy that enforces the same rule (WEBHOOKS_PROXY_URL).
In development and tests (DEBUG=1) http and local addresses are allowed, so a receiver on localhost works.
"""

import ipaddress
import socket
from urllib.parse import urlsplit

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import URLValidator
from django.utils.translation import gettext as _


def _is_public(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast


def _resolve(host: str, port: int) -> list[str]:
    try:
        infos = socket.getaddrinfo(host, port, proto=socket.IPPROTO_TCP)
    except (socket.gaierror, UnicodeError, OSError):
        return []
    return sorted({info[4][0] for info in infos})


def endpoint_url_check(url: str, *, resolve: bool = True) -> str:
    """Return the URL (stripped) if an endpoint may have it; raise ValidationError saying why not."""
    url = (url or "").strip()
    try:
        URLValidator(schemes=["http", "https"])(url)
    except ValidationError:
        raise ValidationError(_("Enter a full URL starting with https://."), code="invalid") from None
    parts = urlsplit(url)
    if parts.username or parts.password:
        raise ValidationError(_("The URL must not contain a user name or password."), code="credentials")
    if settings.WEBHOOKS_ALLOW_PRIVATE_URLS:
        return url
    if parts.scheme != "https":
        raise ValidationError(_("The URL must start with https://."), code="insecure")
    if not resolve:
        return url
    host = parts.hostname or ""
    addresses = _resolve(host, parts.port or 443)
    if not addresses:
        raise ValidationError(_("The host %(host)s could not be found.") % {"host": host}, code="unresolved")
    if not all(_is_public(address) for address in addresses):
        raise ValidationError(
            _("The host %(host)s points to a private or internal address; webhooks go to public addresses only.")
            % {"host": host},
            code="private",
        )
    return url
