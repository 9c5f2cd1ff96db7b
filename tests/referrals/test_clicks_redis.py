"""The Redis click counter under concurrent clicks and flushes: nothing lost, nothing counted twice."""

import os
import threading
from datetime import date

import pytest
import redis

from referrals.clicks import RedisClickCounter, click_counter, click_counter_reset
from referrals.models import ShareLinkDailyStat
from referrals.services import clicks_flush, share_link_create
from tests.factories import shop_with_products

pytestmark = [pytest.mark.redis, pytest.mark.django_db]

THREADS, CLICKS_PER_THREAD = 8, 500


@pytest.fixture
def redis_counter(settings):
    base = redis.Redis.from_url(os.environ["REDIS_URL"])
    url = f"redis://{base.connection_pool.connection_kwargs.get('host', '127.0.0.1')}:" \
          f"{base.connection_pool.connection_kwargs.get('port', 6379)}/15"  # fmt: skip
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
