"""The mail server from one setting, EMAIL_URL (issue #26), read by config/settings.py.

    smtp+tls://user:password@smtp.example.com:587    STARTTLS on the submission port (what most providers ask for)
    smtps://user:password@smtp.example.com:465       TLS from the first byte (implicit TLS)
    smtp://relay.internal:25                          plain SMTP to a relay on a trusted network
    consolemail://  dummymail://                       print the emails / drop them (development)

A user name or password with `@`, `:` or `/` in it is percent-encoded (`%40`, `%3A`, `%2F`). `?timeout=` sets the
connection timeout in seconds. django-environ parses the URL; two of its readings are corrected here: `smtps://`
means implicit TLS (RFC 8314), not STARTTLS, and a URL without a port gets the scheme's own (587, 465, 25).
"""

from urllib.parse import urlsplit

import environ

PORTS = {"smtp": 25, "smtp+tls": 587, "smtps": 465, "smtp+ssl": 465}


def email_settings(url: str) -> dict:
    """The EMAIL_* settings that `url` names (only those it sets); ValueError on a scheme it does not know."""
    scheme = urlsplit(url).scheme
    if scheme not in environ.Env.EMAIL_SCHEMES:
        known = ", ".join(sorted(environ.Env.EMAIL_SCHEMES))
        raise ValueError(f"EMAIL_URL: unknown scheme {scheme!r} (one of {known})")
    parsed = environ.Env.email_url_config(url)
    found = {"EMAIL_BACKEND": parsed["EMAIL_BACKEND"]}
    if scheme in PORTS:
        found.update(
            EMAIL_HOST=parsed["EMAIL_HOST"] or "localhost",
            EMAIL_PORT=parsed["EMAIL_PORT"] or PORTS[scheme],
            EMAIL_HOST_USER=parsed["EMAIL_HOST_USER"] or "",
            EMAIL_HOST_PASSWORD=parsed["EMAIL_HOST_PASSWORD"] or "",
            EMAIL_USE_TLS=scheme == "smtp+tls",
            EMAIL_USE_SSL=scheme in ("smtps", "smtp+ssl"),
        )
        timeout = parsed.get("OPTIONS", {}).get("TIMEOUT")
        if timeout is not None:
            found["EMAIL_TIMEOUT"] = int(timeout)
    elif scheme == "filemail":
        found["EMAIL_FILE_PATH"] = parsed["EMAIL_FILE_PATH"]
    return found
