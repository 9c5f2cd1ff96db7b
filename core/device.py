"""The device cookie (issue #25): a random token that says "the same browser as before", for the fraud rules.

Only its keyed hash (`core.ratelimit.ip_key`) is ever stored (on an order, on a member's sighting). A token is given
only where the rules need one (checkout, sign-in): `device_key` makes one up if the browser has none and marks the
request, and `config.middleware.DeviceCookieMiddleware` then sets it on the response; other pages set nothing.
"""

import re
import secrets

from django.conf import settings

from core.ratelimit import ip_key

DEVICE_COOKIE_MAX_AGE = 2 * 365 * 24 * 60 * 60
NEW_DEVICE_ATTRIBUTE = "_device_token_new"
_TOKEN = re.compile(r"^[0-9a-f]{32}$")


def device_key(request) -> str:
    """The hashed device token of this browser; a new token (set on the response by the middleware) if it has none."""
    token = request.COOKIES.get(settings.DEVICE_COOKIE, "")
    if not _TOKEN.match(token):
        token = getattr(request, NEW_DEVICE_ATTRIBUTE, "") or secrets.token_hex(16)
        setattr(request, NEW_DEVICE_ATTRIBUTE, token)
    return ip_key(f"device:{token}")


def device_cookie_set(request, response) -> None:
    token = getattr(request, NEW_DEVICE_ATTRIBUTE, "")
    if token:
        response.set_cookie(
            settings.DEVICE_COOKIE,
            token,
            max_age=DEVICE_COOKIE_MAX_AGE,
            httponly=True,
            samesite="Lax",
            secure=settings.SESSION_COOKIE_SECURE or request.is_secure(),
        )
