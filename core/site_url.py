"""Absolute URLs come from one configured origin, settings.SITE_URL, never from the request.

Django checks the Host header's name against ALLOWED_HOSTS but not its port, so `Host: 127.0.0.1:8199` passes and
`request.build_absolute_uri()` puts that port in every URL it builds. A URL that leaves the request (the payment
provider's webhook target and the buyer's return address, password-reset links in emails, share links, invite links
and their QR codes) would then point wherever the client said. Those URLs are built here instead.

SITE_URL is an origin: `https://shop.example.com` (a port if it is not the default one; no path). In development
(DEBUG=1) it defaults to http://127.0.0.1:8000, where `make run` serves; with DEBUG=0 it must be set, and the system
check below stops `manage.py check`, `migrate` and `check --deploy` until it is.
"""

from urllib.parse import urlsplit

from django.conf import settings
from django.core.checks import Error, Tags, Warning, register
from django.core.exceptions import ImproperlyConfigured
from django.http.request import split_domain_port, validate_host


def site_url_problem(value: str) -> str | None:
    """Why `value` is not a usable SITE_URL (an http(s) origin without path, query or credentials), or None."""
    try:
        parts = urlsplit(value)
        port = parts.port  # raises ValueError for a port that is not a number in range
    except ValueError:
        return "it is not a URL"
    if parts.scheme not in ("http", "https"):
        return "it must start with http:// or https://"
    if not parts.hostname:
        return "it names no host"
    if parts.username is not None or parts.password is not None:
        return "it must not carry a user name or password"
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        return "it must be an origin only (scheme, host and port), without a path, query or fragment"
    if port == 0:
        return "its port is 0"
    return None


def site_origin() -> str:
    """settings.SITE_URL without a trailing slash. ImproperlyConfigured if it is unset or malformed."""
    value = (settings.SITE_URL or "").strip()
    problem = "it is not set" if not value else site_url_problem(value)
    if problem:
        raise ImproperlyConfigured(f"SITE_URL is not usable: {problem} (e.g. https://shop.example.com).")
    return value.rstrip("/")


def absolute_url(path: str) -> str:
    """The absolute URL of a path on this site (`reverse(...)` output, starting with "/"), from SITE_URL."""
    if not path.startswith("/"):
        raise ValueError(f"absolute_url() takes a path starting with '/', not {path!r}")
    return site_origin() + path


@register(Tags.security)
def check_site_url(app_configs, **kwargs):
    """SITE_URL is set in production, well formed everywhere, names a host this site answers to, and is HTTPS in
    production (a warning under `check --deploy`: reset links and webhooks would travel in clear)."""
    value = (getattr(settings, "SITE_URL", "") or "").strip()
    if not value:
        if settings.DEBUG:
            return []
        return [
            Error(
                "SITE_URL is not set.",
                hint="Set SITE_URL to the site's public origin, e.g. https://shop.example.com: payment webhooks, "
                "return addresses, password-reset links and share links are built from it, never from the "
                "request's Host header.",
                id="config.E101",
            )
        ]
    problem = site_url_problem(value)
    if problem:
        return [
            Error(
                f"SITE_URL {value!r} is not usable: {problem}.",
                hint="For example https://shop.example.com",
                id="config.E102",
            )
        ]
    parts = urlsplit(value)
    errors = []
    host, _port = split_domain_port(parts.netloc.lower())
    if not validate_host(host, settings.ALLOWED_HOSTS):
        errors.append(
            Error(
                f"SITE_URL's host {parts.hostname!r} is not in ALLOWED_HOSTS.",
                hint="Payment webhooks and every link built from SITE_URL would be refused (400). Add it to "
                "ALLOWED_HOSTS.",
                id="config.E103",
            )
        )
    if not settings.DEBUG and parts.scheme != "https":
        errors.append(
            Warning(
                "SITE_URL does not use https in production.",
                hint="Password-reset links and payment webhooks built from it would travel unencrypted.",
                id="config.W101",
            )
        )
    return errors
