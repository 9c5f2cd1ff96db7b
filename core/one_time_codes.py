"""One-time codes sent to a phone: 6 digits, kept only as a keyed hash in the cache, for a limited time and a limited
number of tries. Shared by the buyer's order look-up (shops.phone_codes) and logging in by SMS
(accounts.login_codes); each passes its own `scope`, so a code sent for one never works for the other.

- `code_issue` makes a new code for (scope, phone), replacing any earlier one and its count of tries, and returns it
  (the caller sends it, and calls `code_forget` if the sending fails).
- `code_check` counts the try atomically (cache.add + cache.incr), and after `attempts` tries the code is dead; the
  right code is used up at once.

Neither the phone nor the code is ever in a cache key or a log (the key holds a keyed digest of the phone).
"""

import hashlib
import hmac
import secrets

from django.conf import settings
from django.core.cache import cache

__all__ = ["code_check", "code_forget", "code_issue", "code_key"]


def code_key(scope: str, phone: str) -> str:
    digest = hashlib.sha256(f"{settings.SECRET_KEY}|phone|{phone}".encode()).hexdigest()[:32]
    return f"{scope}:{digest}"  # no phone number in a cache key


def _code_hash(phone: str, code: str) -> str:
    return hmac.new(settings.SECRET_KEY.encode(), f"{phone}|{code}".encode(), hashlib.sha256).hexdigest()


def code_issue(*, scope: str, phone: str, seconds: int) -> str:
    """A new 6-digit code for `phone` in `scope`, valid for `seconds`; it replaces the one before."""
    code = f"{secrets.randbelow(10**6):06d}"
    key = code_key(scope, phone)
    cache.set(key, _code_hash(phone, code), timeout=seconds)
    cache.delete(key + ":tries")
    return code


def code_forget(*, scope: str, phone: str) -> None:
    key = code_key(scope, phone)
    cache.delete_many([key, key + ":tries"])


def code_check(*, scope: str, phone: str, code: str, seconds: int, attempts: int) -> bool:
    """Whether `code` is the code last issued for `phone` in `scope`, still valid, within its `attempts` tries.
    The right code is used up."""
    key = code_key(scope, phone)
    stored = cache.get(key)
    if stored is None:
        return False
    tries_key = key + ":tries"
    cache.add(tries_key, 0, timeout=seconds)
    try:
        tries = cache.incr(tries_key)
    except ValueError:
        tries = 1
    if tries > attempts:
        cache.delete(key)  # too many tries: this code is dead, ask for a new one
        return False
    if not hmac.compare_digest(stored, _code_hash(phone, (code or "").strip())):
        return False
    cache.delete_many([key, tries_key])
    return True
