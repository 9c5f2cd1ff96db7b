"""The API throttle admits exactly its rate when requests arrive in parallel: 8 threads send 1,200 requests within
a minute against 600/minute, and exactly 600 get in, on Redis (production) and in local memory (the embedded
default). DRF's own throttle read the history and wrote it back, so parallel requests each saw room (651 got in)."""

import os
import sys
import threading
from types import SimpleNamespace

import pytest
from django.core.cache import caches

from accounts.api.throttling import AnonRateThrottle, TokenRateThrottle
from accounts.models import ApiToken

THREADS, REQUESTS, LIMIT = 8, 1200, 600

LOCAL_MEMORY = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "throttle-test"}}


def redis_cache() -> dict:
    return {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": os.environ["REDIS_URL"]}}


def admitted_in_parallel(throttle_class, request) -> tuple[int, list[int]]:
    """THREADS threads, released together, each asking a fresh throttle (one per request, as DRF does) for its
    share of REQUESTS; returns how many were admitted and the Retry-After of the refused."""
    barrier = threading.Barrier(THREADS)
    admitted, waits, lock = [0], [], threading.Lock()

    def client() -> None:
        barrier.wait()
        for _ in range(REQUESTS // THREADS):
            throttle = throttle_class()
            allowed = throttle.allow_request(request, view=None)
            with lock:
                if allowed:
                    admitted[0] += 1
                else:
                    waits.append(throttle.wait())

    threads = [threading.Thread(target=client) for _ in range(THREADS)]
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # switch threads as often as possible: in local memory the GIL hides races otherwise
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        sys.setswitchinterval(interval)
    return admitted[0], waits


def token_request(user_id: int):
    return SimpleNamespace(auth=ApiToken(user_id=user_id), user=SimpleNamespace(is_authenticated=True, pk=user_id))


@pytest.fixture
def rates(settings):
    settings.API_THROTTLE_RATES = {"token": f"{LIMIT}/minute", "user": f"{LIMIT}/minute", "anon": f"{LIMIT}/minute"}


def check_exactly_the_limit() -> None:
    caches["default"].clear()

    admitted, waits = admitted_in_parallel(TokenRateThrottle, token_request(7))

    assert admitted == LIMIT
    assert len(waits) == REQUESTS - LIMIT
    assert all(1 <= wait <= 60 for wait in waits)
    # another person's tokens are counted apart
    assert TokenRateThrottle().allow_request(token_request(8), view=None) is True


def test_parallel_token_requests_get_exactly_the_limit_in_local_memory(settings, rates):
    settings.CACHES = LOCAL_MEMORY
    check_exactly_the_limit()


@pytest.mark.redis
def test_parallel_token_requests_get_exactly_the_limit_on_redis(settings, rates):
    settings.CACHES = redis_cache()
    check_exactly_the_limit()
    caches["default"].clear()


@pytest.mark.redis
def test_parallel_anonymous_requests_from_one_address_get_exactly_the_limit_on_redis(settings, rates):
    settings.CACHES = redis_cache()
    caches["default"].clear()
    request = SimpleNamespace(META={"REMOTE_ADDR": "203.0.113.5"}, user=SimpleNamespace(is_authenticated=False))

    admitted, _waits = admitted_in_parallel(AnonRateThrottle, request)

    assert admitted == LIMIT
    caches["default"].clear()


def test_the_window_slides(settings, rates, monkeypatch):
    """At most the limit in ANY minute: what was admitted leaves the count a minute after it came in, not at a
    clock boundary (a fixed window would admit twice the limit across one)."""
    settings.CACHES = LOCAL_MEMORY
    settings.API_THROTTLE_RATES = {"token": "3/minute"}
    clock = [1_000_030.0]  # half-way through a clock minute
    monkeypatch.setattr("core.ratelimit.time.time", lambda: clock[0])
    request = token_request(9)

    assert [TokenRateThrottle().allow_request(request, None) for _ in range(3)] == [True, True, True]
    clock[0] += 40  # past the clock minute's end: still the same sliding minute
    refused = TokenRateThrottle()
    assert refused.allow_request(request, None) is False
    assert refused.wait() == 20
    clock[0] += 20.5  # the first three are a minute old
    assert TokenRateThrottle().allow_request(request, None) is True
