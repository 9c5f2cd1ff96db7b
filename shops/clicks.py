"""Click counting off the database: the redirect adds to a counter, a periodic task flushes it.

The counter also keeps each link's redirect target (`link id|owner id|url`, or a "missing" tombstone), so that
the redirect needs one call: `follow` reads the target and, for a live link and a counted visitor, counts the
click, in one Lua script (one Redis round trip); only a cache miss goes to the database.

Two counters behind one interface:
- RedisClickCounter (production, whenever REDIS_URL is set): one Lua call per click adds to a pending hash
  and, for a visitor not yet seen that day, to the unique count. A flush atomically RENAMEs the pending hash
  to a batch key, so clicks that arrive meanwhile start a new hash and are neither lost nor counted twice;
  the batch is deleted only after the database has it, and a batch left over by a crash is picked up again.
- LocalClickCounter (the embedded default: one process, tasks run in it): the same, in a locked dict.

Both also keep the redirect's rate limit (settings.RATE_LIMIT_REDIRECT): a fixed-window counter per client
address (a keyed hash, never the address), incremented in the same call, so the limit costs no extra round trip.
Over the limit `follow` answers LIMITED and neither reads the target nor counts the click.

Batches carry an id that the flush records in the database in the same transaction as the counts
(`ClickFlush.batch_id` is unique), so a batch applied but not yet deleted is never applied twice.
"""

import contextlib
import functools
import hashlib
import hmac
import threading
import time
import uuid
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date

import crawleruseragents
from django.conf import settings

# {(link id, day): [clicks, unique visitors]}
Counts = dict[tuple[int, date], list[int]]


@dataclass(frozen=True)
class Batch:
    batch_id: str
    counts: Counts


@functools.lru_cache(maxsize=20_000)
def is_bot(user_agent: str) -> bool:
    """Crawlers, scripts and link-preview fetchers (the maintained crawler-user-agents list); no UA is a script."""
    user_agent = user_agent.strip()
    return not user_agent or crawleruseragents.is_crawler(user_agent)


@functools.lru_cache(maxsize=4)
def _day_salt(secret: str, day: date) -> bytes:
    return hmac.new(secret.encode(), f"visitor-salt:{day.isoformat()}".encode(), hashlib.sha256).digest()


def visitor_hash(*, code: str, day: date, ip: str, user_agent: str) -> str:
    """A per-link (by code), per-day visitor id. The salt rotates daily and never leaves the server; no IP is stored."""
    salt = _day_salt(settings.SECRET_KEY, day)
    return hmac.new(salt, f"{code}|{ip}|{user_agent}".encode(), hashlib.sha256).hexdigest()[:32]


MISSING = "missing"  # the cached answer for an unknown or inactive code
LIMITED = "limited"  # follow()'s answer when the client is over the redirect rate limit


@dataclass(frozen=True)
class RateWindow:
    """One client's counter for the current window: `key` identifies client and window, `limit` hits allowed."""

    key: str
    limit: int
    seconds: int


def rate_window(*, ip: str, day: date, limit: int, seconds: int, now: float | None = None) -> RateWindow:
    """The redirect rate limit's counter for `ip`: keyed by a hash of the address with the daily salt (no raw
    address is stored, in Redis either) and by the fixed window the current time falls in."""
    now = time.time() if now is None else now
    window = int(now // seconds)
    client = hmac.new(_day_salt(settings.SECRET_KEY, day), f"rate|{ip}".encode(), hashlib.sha256).hexdigest()[:24]
    return RateWindow(key=f"{window}:{client}", limit=limit, seconds=seconds)


def encode_target(link_id: int, owner_id: int, url: str) -> str:
    return f"{link_id}|{owner_id}|{url}"


def decode_target(value: str) -> tuple[int, int, str]:
    link_id, owner_id, url = value.split("|", 2)
    return int(link_id), int(owner_id), url


def _field(link_id: int, day: date, kind: str) -> str:
    return f"{link_id}:{day.isoformat()}:{kind}"


def _parse(fields: dict) -> Counts:
    counts: Counts = defaultdict(lambda: [0, 0])
    for field, value in fields.items():
        field = field.decode() if isinstance(field, bytes) else field
        link_id, day, kind = field.split(":")
        counts[(int(link_id), date.fromisoformat(day))][0 if kind == "c" else 1] += int(value)
    return dict(counts)


class LocalClickCounter:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pending: dict[str, int] = defaultdict(int)
        self._seen: set[tuple[int, date, str]] = set()
        self._batches: dict[str, dict[str, int]] = {}
        self._targets: dict[str, tuple[str, float]] = {}
        self._rates: dict[str, int] = {}
        self._rates_expire: dict[str, float] = {}

    def record(self, *, link_id: int, day: date, visitor: str) -> None:
        with self._lock:
            self._record(link_id, day, visitor)

    def _record(self, link_id: int, day: date, visitor: str) -> None:
        self._pending[_field(link_id, day, "c")] += 1
        if (link_id, day, visitor) not in self._seen:
            self._seen.add((link_id, day, visitor))
            self._pending[_field(link_id, day, "u")] += 1

    def _over_rate(self, rate: RateWindow) -> bool:
        now = time.monotonic()
        if len(self._rates) > 10_000:  # forget finished windows now and then
            for key in [key for key, expires in self._rates_expire.items() if expires < now]:
                self._rates.pop(key, None)
                self._rates_expire.pop(key, None)
        count = self._rates.get(rate.key, 0) + 1
        self._rates[rate.key] = count
        self._rates_expire.setdefault(rate.key, now + rate.seconds + 1)
        return count > rate.limit

    def follow(self, *, code: str, day: date, visitor: str | None, rate: RateWindow | None = None) -> str | None:
        """The cached target of `code` (None when not cached); counts the click if live and `visitor` is given.
        LIMITED, and nothing else done, when `rate` is given and this client is over it."""
        with self._lock:
            if rate is not None and self._over_rate(rate):
                return LIMITED
            value, expires = self._targets.get(code, (None, 0.0))
            if value is None or expires < time.monotonic():
                return None
            if value != MISSING and visitor is not None:
                self._record(decode_target(value)[0], day, visitor)
            return value

    def target_store(self, code: str, value: str, seconds: int, *, overwrite: bool = False) -> None:
        """Cache a target; unless `overwrite`, a value already there (a tombstone, say) is kept."""
        with self._lock:
            current = self._targets.get(code)
            if overwrite or current is None or current[1] < time.monotonic():
                self._targets[code] = (value, time.monotonic() + seconds)

    def batches(self) -> Iterator[Batch]:
        with self._lock:
            if self._pending:
                self._batches[uuid.uuid4().hex] = dict(self._pending)
                self._pending = defaultdict(int)
            today = date.today()
            self._seen = {seen for seen in self._seen if (today - seen[1]).days <= 1}
            waiting = list(self._batches.items())
        for batch_id, fields in waiting:
            yield Batch(batch_id, _parse(fields))

    def ack(self, batch_id: str) -> None:
        with self._lock:
            self._batches.pop(batch_id, None)


# KEYS: target, pending hash, rate counter ("" = no limit). ARGV: day, visitor ("" = do not count), seen seconds,
# seen prefix, rate limit, rate window seconds.
# The seen key is built here from the link id in the target (it is not known before the lookup). Over the rate
# limit the script answers 'limited' before it reads or counts anything.
_FOLLOW_SCRIPT = """
if KEYS[3] ~= '' then
  local hits = redis.call('INCR', KEYS[3])
  if hits == 1 then
    redis.call('EXPIRE', KEYS[3], ARGV[6])
  end
  if hits > tonumber(ARGV[5]) then
    return 'limited'
  end
end
local target = redis.call('GET', KEYS[1])
if not target or target == 'missing' or ARGV[2] == '' then
  return target
end
local link_id = string.match(target, '^(%d+)|')
local prefix = link_id .. ':' .. ARGV[1] .. ':'
redis.call('HINCRBY', KEYS[2], prefix .. 'c', 1)
if redis.call('SET', ARGV[4] .. prefix .. ARGV[2], '1', 'NX', 'EX', ARGV[3]) then
  redis.call('HINCRBY', KEYS[2], prefix .. 'u', 1)
end
return target
"""

_RECORD_SCRIPT = """
redis.call('HINCRBY', KEYS[1], ARGV[1], 1)
if redis.call('SET', KEYS[2], '1', 'NX', 'EX', ARGV[3]) then
  redis.call('HINCRBY', KEYS[1], ARGV[2], 1)
end
return 1
"""


class RedisClickCounter:
    PENDING = "cps:clicks:pending"
    BATCH_PREFIX = "cps:clicks:batch:"
    SEEN_PREFIX = "cps:clicks:seen:"
    TARGET_PREFIX = "cps:links:target:"
    RATE_PREFIX = "cps:links:rate:"
    SEEN_SECONDS = 2 * 24 * 60 * 60

    def __init__(self, url: str) -> None:
        import redis

        # One client (and its connection pool) for the life of the process: no per-call set-up on the hot path.
        self.redis = redis.Redis.from_url(url)
        self._record = self.redis.register_script(_RECORD_SCRIPT)
        self._follow = self.redis.register_script(_FOLLOW_SCRIPT)

    def record(self, *, link_id: int, day: date, visitor: str) -> None:
        seen_key = f"{self.SEEN_PREFIX}{link_id}:{day.isoformat()}:{visitor}"
        self._record(
            keys=[self.PENDING, seen_key],
            args=[_field(link_id, day, "c"), _field(link_id, day, "u"), self.SEEN_SECONDS],
        )

    def follow(self, *, code: str, day: date, visitor: str | None, rate: RateWindow | None = None) -> str | None:
        """The cached target of `code` (None when not cached); counts the click if live and `visitor` is given.
        LIMITED, and nothing else done, when `rate` is given and this client is over it.

        One round trip (a Lua script, atomic in Redis) for the rate limit, the lookup and the count.
        """
        value = self._follow(
            keys=[self.TARGET_PREFIX + code, self.PENDING, self.RATE_PREFIX + rate.key if rate else ""],
            args=[
                day.isoformat(),
                visitor or "",
                self.SEEN_SECONDS,
                self.SEEN_PREFIX,
                rate.limit if rate else 0,
                rate.seconds + 1 if rate else 0,
            ],
        )
        return value.decode() if value else None

    def target_store(self, code: str, value: str, seconds: int, *, overwrite: bool = False) -> None:
        """Cache a target; unless `overwrite`, a value already there (a tombstone, say) is kept."""
        self.redis.set(self.TARGET_PREFIX + code, value, ex=seconds, nx=not overwrite)

    def batches(self) -> Iterator[Batch]:
        import redis

        with contextlib.suppress(redis.ResponseError):  # nothing pending: RENAME of a missing key
            self.redis.rename(self.PENDING, f"{self.BATCH_PREFIX}{uuid.uuid4().hex}")
        for key in self.redis.scan_iter(match=f"{self.BATCH_PREFIX}*", count=500):
            key = key.decode()
            yield Batch(key.removeprefix(self.BATCH_PREFIX), _parse(self.redis.hgetall(key)))

    def ack(self, batch_id: str) -> None:
        self.redis.delete(f"{self.BATCH_PREFIX}{batch_id}")


_counter = None
_counter_lock = threading.Lock()


def click_counter():
    """The process's counter: Redis when REDIS_URL is set, else local memory."""
    global _counter
    if _counter is None:
        with _counter_lock:
            if _counter is None:
                url = settings.CLICKS_REDIS_URL
                _counter = RedisClickCounter(url) if url else LocalClickCounter()
    return _counter


def click_counter_reset() -> None:
    """Forget the process's counter (tests switch settings)."""
    global _counter
    _counter = None
