"""core.cache.RedisCache: Django's Redis cache with one client per connection pool, on a real Redis."""

import os
import threading

import pytest
from django.core.cache.backends.redis import RedisCache as DjangoRedisCache

from core.cache import RedisCache

pytestmark = pytest.mark.redis


@pytest.fixture
def cache():
    backend = RedisCache(os.environ["REDIS_URL"], {"KEY_PREFIX": "test-core-cache"})
    yield backend
    backend.delete_many(["flag", "counter", "value"])


def test_one_client_per_pool_not_one_per_call(cache):
    first = cache._cache.get_client("flag", write=True)

    assert cache._cache.get_client("flag", write=True) is first
    assert cache._cache.get_client("other") is first  # one server: reads and writes share the pool
    # Django's own builds a client on every call: the reason for this class.
    django_cache = DjangoRedisCache(os.environ["REDIS_URL"], {})
    assert django_cache._cache.get_client() is not django_cache._cache.get_client()


def test_still_djangos_redis_cache_and_behaves_as_one(cache):
    assert isinstance(cache, DjangoRedisCache)  # core.ratelimit's Redis path recognises it
    assert cache.add("flag", 1, timeout=5) is True
    assert cache.add("flag", 2, timeout=5) is False
    assert cache.get("flag") == 1
    cache.set("counter", 10)
    assert cache.incr("counter", 5) == 15
    cache.set("value", {"a": [1, 2]})
    assert cache.get("value") == {"a": [1, 2]}
    cache.delete("flag")
    assert cache.get("flag") is None


def test_threads_share_the_client_safely(cache):
    cache.set("counter", 0)
    errors = []

    def bump():
        try:
            for _ in range(200):
                cache.incr("counter")
        except Exception as error:
            errors.append(error)

    threads = [threading.Thread(target=bump) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    assert cache.get("counter") == 800
