"""The Redis click counter under concurrent clicks and flushes: nothing lost, nothing counted twice."""

import os
import threading
from datetime import date

import pytest
import redis

from shops.clicks import RedisClickCounter, click_counter, click_counter_reset, encode_target
from shops.models import ShareLinkDailyStat
from shops.services import clicks_flush, share_link_create, share_link_deactivate, share_link_follow
from tests.factories import shop_with_products

pytestmark = [pytest.mark.redis, pytest.mark.django_db]

THREADS, CLICKS_PER_THREAD = 8, 500


@pytest.fixture
def redis_counter(settings):
    # REDIS_URL's database, the one production counts in (CLICKS_REDIS_URL defaults to it): the run's own (each xdist
    # worker has its own, tests/parallel.py), emptied before each test anyway (the cache's clear() flushes it).
    url = os.environ["REDIS_URL"]
    server = redis.Redis.from_url(url)
    server.flushdb()
    settings.CLICKS_REDIS_URL = url
    click_counter_reset()
    counter = click_counter()
    assert isinstance(counter, RedisClickCounter)
    yield counter
    server.flushdb()
    click_counter_reset()


def test_eight_threads_clicking_while_flushes_run_lose_and_double_nothing(redis_counter):
    link = share_link_create(owner=shop_with_products().owner)
    day = date(2030, 11, 11)
    barrier = threading.Barrier(THREADS)

    def clicker(thread_no: int) -> None:
        barrier.wait()
        for i in range(CLICKS_PER_THREAD):
            redis_counter.record(link_id=link.pk, day=day, visitor=f"visitor-{thread_no}-{i % 50}")

    threads = [threading.Thread(target=clicker, args=(n,)) for n in range(THREADS)]
    for thread in threads:
        thread.start()
    flushed = 0
    flushes = 0
    while any(thread.is_alive() for thread in threads):
        flushed += clicks_flush()
        flushes += 1
    for thread in threads:
        thread.join()
    flushed += clicks_flush()

    stat = ShareLinkDailyStat.objects.get(link=link, day=day)
    assert flushes > 1
    assert flushed == THREADS * CLICKS_PER_THREAD
    assert stat.clicks == THREADS * CLICKS_PER_THREAD
    assert stat.unique_visitors == THREADS * 50


def test_a_batch_applied_but_not_deleted_is_not_applied_again(redis_counter, monkeypatch):
    link = share_link_create(owner=shop_with_products().owner)
    day = date(2030, 11, 11)
    for i in range(7):
        redis_counter.record(link_id=link.pk, day=day, visitor=f"v{i % 3}")

    monkeypatch.setattr(RedisClickCounter, "ack", lambda self, batch_id: (_ for _ in ()).throw(ConnectionError()))
    with pytest.raises(ConnectionError):
        clicks_flush()  # the database has the batch; the crash keeps it in Redis
    monkeypatch.undo()
    redis_counter.record(link_id=link.pk, day=day, visitor="v9")
    clicks_flush()
    clicks_flush()

    stat = ShareLinkDailyStat.objects.get(link=link, day=day)
    assert (stat.clicks, stat.unique_visitors) == (8, 4)


BROWSER = "Mozilla/5.0 (Linux; Android 14) AppleWebKit/537.36 Chrome/126.0 Mobile Safari/537.36"


def test_redirects_through_the_one_call_path_count_exactly_under_threads_and_flushes(redis_counter):
    # given: a link whose target is cached (the first follow reads the database and caches it)
    link = share_link_create(owner=shop_with_products().owner)
    first = share_link_follow(code=link.code, ip="10.0.0.1", user_agent=BROWSER)
    assert first is not None and first.counted and first.target.link_id == link.pk
    barrier = threading.Barrier(THREADS)
    misses = []

    def clicker(thread_no: int) -> None:
        barrier.wait()
        for i in range(CLICKS_PER_THREAD):
            followed = share_link_follow(code=link.code, ip=f"10.1.{thread_no}.{i % 50}", user_agent=BROWSER)
            if followed is None or followed.target.link_id != link.pk:
                misses.append(i)

    # when: 8 threads × 500 redirects while flushes run, plus bots that must not count
    threads = [threading.Thread(target=clicker, args=(n,)) for n in range(THREADS)]
    for thread in threads:
        thread.start()
    flushed = 0
    while any(thread.is_alive() for thread in threads):
        flushed += clicks_flush()
    for thread in threads:
        thread.join()
    bot = share_link_follow(code=link.code, ip="10.9.9.9", user_agent="facebookexternalhit/1.1")
    flushed += clicks_flush()

    # then
    assert misses == []
    assert bot is not None and not bot.counted
    stat = ShareLinkDailyStat.objects.get(link=link)
    assert flushed == stat.clicks == 1 + THREADS * CLICKS_PER_THREAD
    assert stat.unique_visitors == 1 + THREADS * 50


def test_a_switched_off_link_is_a_404_at_once_and_a_stale_cache_write_cannot_revive_it(
    redis_counter, django_capture_on_commit_callbacks
):
    link = share_link_create(owner=shop_with_products().owner)
    stale = share_link_follow(code=link.code, ip="10.0.0.1", user_agent=BROWSER).target  # cached as active

    with django_capture_on_commit_callbacks(execute=True):
        share_link_deactivate(link=link)
    redis_counter.target_store(link.code, encode_target(stale.link_id, stale.owner_id, stale.url), 300)

    assert share_link_follow(code=link.code, ip="10.0.0.1", user_agent=BROWSER) is None
    assert share_link_follow(code="unknown-code", ip="10.0.0.1", user_agent=BROWSER) is None
    clicks_flush()
    assert ShareLinkDailyStat.objects.get(link=link).clicks == 1
