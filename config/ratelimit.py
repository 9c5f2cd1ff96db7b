"""Fixed-window rate limits in the cache (Redis in production, local memory in the embedded default).

Rates are strings like "10/hour" (settings RATE_LIMIT_*; "0" or empty switches a limit off). A request over its
limit gets a 429 page (templates/rate_limited.html) with Retry-After and the view never runs, so nothing changes.
The share-link redirect does not use this module: its counter lives in the click counter's one Redis script
(referrals.clicks), so a click stays one round trip.
"""

import functools
import hashlib
import time
from collections.abc import Callable

from django.conf import settings
from django.core.cache import cache
from django.shortcuts import render

from config.client_ip import client_ip

PERIODS = {"s": 1, "second": 1, "m": 60, "minute": 60, "h": 3600, "hour": 3600, "d": 86400, "day": 86400}


@functools.lru_cache(maxsize=32)
def parse_rate(rate: str | None) -> tuple[int, int] | None:
    """ "120/minute" -> (120, 60); None when the limit is off ("", "0", None)."""
    if not rate or rate.strip() in ("0", "off", "none"):
        return None
    count, _sep, period = rate.strip().partition("/")
    period = period.strip().lower()
    seconds = PERIODS.get(period, PERIODS.get(period.removesuffix("s")))
    if seconds is None or not count.strip().isdigit():
        raise ValueError(f"Not a rate: {rate!r} (expected e.g. '10/hour')")
    limit = int(count)
    return (limit, seconds) if limit > 0 else None


def ip_key(ip: str) -> str:
    """Keys never hold a raw address (the cache is not a place for personal data)."""
    return hashlib.sha256(f"{settings.SECRET_KEY}|{ip}".encode()).hexdigest()[:32]


def rate_limit_exceeded(scope: str, ident: str, rate: str | None) -> int:
    """Count one hit for `ident` in `scope`; 0 while within the rate, else the seconds until the window ends."""
    parsed = parse_rate(rate)
    if parsed is None:
        return 0
    limit, window = parsed
    now = time.time()
    start = int(now // window) * window
    key = f"cps:rl:{scope}:{start}:{ident}"
    if cache.add(key, 1, timeout=window + 1):
        count = 1
    else:
        try:
            count = cache.incr(key)
        except ValueError:  # expired between add and incr
            cache.set(key, 1, timeout=window + 1)
            count = 1
    return max(1, int(start + window - now)) if count > limit else 0


def rate_limited_response(request, retry_after: int):
    response = render(
        request,
        "rate_limited.html",
        {"retry_minutes": max(1, (retry_after + 59) // 60)},
        status=429,
    )
    response["Retry-After"] = str(retry_after)
    return response


def rate_limit(scope: str, setting: str, *, methods: tuple[str, ...] = ("POST",)) -> Callable:
    """Limit a view per client IP: the rate is settings.<setting>, read on each request (tests change it)."""

    def decorator(view):
        @functools.wraps(view)
        def wrapped(request, *args, **kwargs):
            if request.method in methods:
                retry_after = rate_limit_exceeded(scope, ip_key(client_ip(request)), getattr(settings, setting))
                if retry_after:
                    return rate_limited_response(request, retry_after)
            return view(request, *args, **kwargs)

        return wrapped

    return decorator
