"""Rate limits in the cache (Redis in production, local memory in the embedded default), each count atomic.

- Fixed windows (`rate_limit_exceeded`, `rate_limit`): one counter per client and clock-aligned window, created by
  `cache.add` and counted by `cache.incr`, both atomic in Redis and in local memory, so parallel requests never
  count twice as one. Rates are strings like "10/hour" (settings RATE_LIMIT_*; "0" or empty switches a limit off).
  A request over its limit gets a 429 page (templates/rate_limited.html) with Retry-After and the view never runs,
  so nothing changes. `rate_limit_count_once`, `rate_limit_forget` and `rate_limit_reached` count distinct things
  per window (the accounts one address failed to log in to), take one back, and ask whether the limit is reached.
- A sliding window (`sliding_window_hit`, the API throttles): at most `limit` admitted in ANY `window` seconds,
  not 2 × limit across a window's edge. On Redis one Lua script per request prunes, counts and records (a sorted
  set of times); in local memory the same under a process lock (that cache lives in one process anyway); any
  other cache backend gets the fixed window above.
The share-link redirect does not use this module: its counter lives in the click counter's one Redis script
(shops.clicks), so a click stays one round trip.
"""

import contextlib
import functools
import hashlib
import math
import threading
import time
import uuid
from collections.abc import Callable

from django.conf import settings
from django.core.cache import cache, caches
from django.core.cache.backends.locmem import LocMemCache
from django.core.cache.backends.redis import RedisCache
from django.shortcuts import render
from redis.commands.core import Script

from core.client_ip import client_ip

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


def _fixed_window(scope: str, ident: str, window: int) -> tuple[str, int]:
    """The counter's key for the clock-aligned window we are in, and the seconds until that window ends."""
    now = time.time()
    start = int(now // window) * window
    return f"cps:rl:{scope}:{start}:{ident}", max(1, math.ceil(start + window - now))


def _count(key: str, timeout: int) -> int:
    """Add one to the counter at `key` and return the new count: `add` creates it, `incr` counts, both atomic."""
    for _attempt in range(3):
        if cache.add(key, 1, timeout=timeout):
            return 1
        try:
            return cache.incr(key)
        except ValueError:  # expired between add and incr: add it again
            continue
    return 1


def rate_limit_exceeded(scope: str, ident: str, rate: str | None) -> int:
    """Count one hit for `ident` in `scope`; 0 while within the rate, else the seconds until the window ends."""
    parsed = parse_rate(rate)
    if parsed is None:
        return 0
    limit, window = parsed
    key, remaining = _fixed_window(scope, ident, window)
    return remaining if _count(key, window + 1) > limit else 0


def _item_key(key: str, item: str) -> str:
    return f"{key}:{hashlib.sha256(item.encode()).hexdigest()[:32]}"  # no personal data in a cache key


def rate_limit_count_once(scope: str, ident: str, rate: str | None, item: str) -> None:
    """Count `item` against `ident` at most once per window: a count of distinct items (say, accounts)."""
    parsed = parse_rate(rate)
    if parsed is None:
        return
    key, _remaining = _fixed_window(scope, ident, parsed[1])
    if cache.add(_item_key(key, item), 1, timeout=parsed[1] + 1):
        _count(key, parsed[1] + 1)


def rate_limit_forget(scope: str, ident: str, rate: str | None, item: str) -> None:
    """Take `item` back out of this window's count of distinct items, if it is in it (once, however many ask)."""
    parsed = parse_rate(rate)
    if parsed is None:
        return
    key, _remaining = _fixed_window(scope, ident, parsed[1])
    if cache.delete(_item_key(key, item)):  # True for the one caller that removed it
        with contextlib.suppress(ValueError):  # the window's count expired meanwhile
            cache.decr(key)


def rate_limit_reached(scope: str, ident: str, rate: str | None) -> int:
    """Counting nothing: 0 while fewer than the limit are counted in this window, else the seconds until it ends."""
    parsed = parse_rate(rate)
    if parsed is None:
        return 0
    key, remaining = _fixed_window(scope, ident, parsed[1])
    return remaining if (cache.get(key) or 0) >= parsed[0] else 0


# --- The sliding window ----------------------------------------------------------------------------------------

# KEYS[1]: a sorted set of admitted requests scored by time (ms). ARGV: now (ms), window (ms), limit, a unique member.
# Returns 0 (admitted and recorded) or the milliseconds until the oldest request leaves the window.
_SLIDING_SCRIPT = """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', tonumber(ARGV[1]) - tonumber(ARGV[2]))
if redis.call('ZCARD', KEYS[1]) < tonumber(ARGV[3]) then
  redis.call('ZADD', KEYS[1], ARGV[1], ARGV[4])
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 0
end
local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
return math.max(1, tonumber(oldest[2]) + tonumber(ARGV[2]) - tonumber(ARGV[1]))
"""
_sliding_script = Script(None, _SLIDING_SCRIPT.encode())  # EVALSHA on the client given per call (EVAL once)
_local_lock = threading.Lock()


def sliding_window_hit(key: str, limit: int, window: int) -> int:
    """Admit and record one request under `key` if fewer than `limit` were admitted in the last `window` seconds:
    0 when admitted, else the whole seconds until one more would be (at least 1). Atomic across threads and
    processes on Redis, across threads in local memory."""
    backend = caches["default"]
    now = time.time()
    if isinstance(backend, RedisCache):
        full_key = backend.make_and_validate_key(key)
        client = backend._cache.get_client(full_key, write=True)
        wait_ms = _sliding_script(
            keys=[full_key],
            args=[int(now * 1000), window * 1000, limit, f"{now:.6f}:{uuid.uuid4().hex[:12]}"],
            client=client,
        )
        return math.ceil(int(wait_ms) / 1000)
    if isinstance(backend, LocMemCache):
        with _local_lock:
            history = [moment for moment in backend.get(key, []) if moment > now - window]
            if len(history) >= limit:
                return max(1, math.ceil(history[0] + window - now))
            history.append(now)
            backend.set(key, history, timeout=window)
            return 0
    fixed_key, remaining = _fixed_window("sliding", key, window)
    return remaining if _count(fixed_key, window + 1) > limit else 0


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
