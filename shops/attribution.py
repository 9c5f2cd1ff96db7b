"""The signed attribution cookie a share link sets: who shared (member id), through which link, when.

Signed with SECRET_KEY (django.core.signing), so a forged or edited cookie is ignored; its signature
carries the time it was set, so one older than ATTRIBUTION_WINDOW_DAYS is ignored too.
"""

import functools
from dataclasses import dataclass

from django.conf import settings
from django.core import signing

from referrals.models import Member
from shops.models import ShareLink

SALT = "cps.attribution.v1"


@dataclass(frozen=True)
class Attribution:
    sharer: Member
    link: ShareLink | None


def _window_seconds() -> int:
    return settings.ATTRIBUTION_WINDOW_DAYS * 24 * 60 * 60


def _read(request) -> tuple[int, int] | None:
    name = settings.ATTRIBUTION_COOKIE
    cookie = request.COOKIES.get(name)
    if not cookie:
        return None
    signer = _cookie_signer(name, settings.SECRET_KEY, tuple(settings.SECRET_KEY_FALLBACKS))
    try:
        value = signer.unsign(cookie, max_age=_window_seconds())
    # What request.get_signed_cookie() does, but it lets through what the signer raises on a genuine signature
    # over a malformed timestamp: ValueError (not base 62, or no timestamp at all), IndexError (an empty one) and
    # OverflowError (one too large for a float). Found by tests/security/test_fuzz_attribution.py.
    except (signing.BadSignature, ValueError, IndexError, OverflowError):
        return None
    if not value:
        return None
    try:
        sharer_id, link_id = (int(part) for part in value.split(":"))
    except ValueError:
        return None
    return sharer_id, link_id


def attribution_cookie_set(request, response, *, sharer_id: int, link_id: int) -> None:
    """Remember this click on `response`. Last click wins, unless ATTRIBUTION_MODEL is "first" and one is valid."""
    if settings.ATTRIBUTION_MODEL == "first" and _read(request) is not None:
        return
    name = settings.ATTRIBUTION_COOKIE
    response.set_cookie(
        name,
        _cookie_signer(name, settings.SECRET_KEY, tuple(settings.SECRET_KEY_FALLBACKS)).sign(f"{sharer_id}:{link_id}"),
        max_age=_window_seconds(),
        httponly=True,
        samesite="Lax",
        secure=settings.ATTRIBUTION_COOKIE_SECURE or request.is_secure(),
    )


@functools.lru_cache(maxsize=4)
def _cookie_signer(name: str, secret_key: str, fallbacks: tuple) -> signing.Signer:
    """The signer `set_signed_cookie(name, salt=SALT)` would build on every call, built once per key.

    `request.get_signed_cookie(name, salt=SALT)` checks what it signs. The arguments are the cache key, so a key
    rotation (tests change SECRET_KEY) gets a new signer.
    """
    return signing.get_cookie_signer(salt=name + SALT)


def attribution_from_request(request) -> Attribution | None:
    """The valid attribution in the request: signed, within the window, of an active member; else None."""
    found = _read(request)
    if found is None:
        return None
    sharer_id, link_id = found
    sharer = Member.objects.select_related("user").filter(pk=sharer_id, status=Member.Status.ACTIVE).first()
    if sharer is None:
        return None
    link = ShareLink.objects.filter(pk=link_id, owner=sharer).first()
    return Attribution(sharer=sharer, link=link)
