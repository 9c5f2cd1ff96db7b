"""Rate limits on join, checkout, order look-up and share-link redirects: over the limit is a friendly 429 page and
nothing changes. The redirect's limit rides in the click counter's one call (the Lua script with Redis)."""

import os

import pytest
from django.contrib.auth import get_user_model
from django.urls import reverse

from referrals.models import Member
from shops.clicks import RedisClickCounter, click_counter, click_counter_reset
from shops.models import Order, ShareLinkDailyStat
from shops.services import clicks_flush, share_link_create
from tests.factories import shop_with_products

pytestmark = pytest.mark.django_db
BROWSER = "Mozilla/5.0 (Linux; Android 14) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120 Mobile Safari/537.36"


def signup(client, number, ip="203.0.113.5"):
    data = {
        "email": f"person{number}@example.com",
        "first_name": "Person",
        "password1": "a-long-enough-passphrase",
        "password2": "a-long-enough-passphrase",
    }
    response = client.post(reverse("members:join"), data, REMOTE_ADDR=ip)
    client.logout()
    return response


def test_joins_over_the_limit_get_a_429_page_and_no_account(client, settings):
    settings.RATE_LIMIT_JOIN = "2/hour"
    assert signup(client, 1).status_code == 302
    assert signup(client, 2).status_code == 302

    refused = signup(client, 3)

    assert refused.status_code == 429
    assert int(refused["Retry-After"]) > 0
    assert "Too many requests" in refused.content.decode()
    assert not get_user_model().objects.filter(email="person3@example.com").exists()
    assert Member.objects.count() == 2
    # another address is not affected, and reading the page is never limited
    assert signup(client, 4, ip="198.51.100.4").status_code == 302
    assert client.get(reverse("members:join"), REMOTE_ADDR="203.0.113.5").status_code == 200


def checkout(client, shop, ip):
    product = shop.listings.first().product
    client.post(reverse("shops:product_detail", args=[shop.slug, product.pk]), {"quantity": 1}, REMOTE_ADDR=ip)
    data = {"name": "Wang Fang", "phone": "13900001111", "email": "", "address": "1 Nanjing Road"}
    return client.post(reverse("shops:checkout", args=[shop.slug]), data, REMOTE_ADDR=ip)


def test_checkouts_over_the_limit_get_a_429_page_and_no_order(client, settings):
    settings.RATE_LIMIT_CHECKOUT = "2/hour"
    shop = shop_with_products()
    product = shop.listings.first().product
    assert checkout(client, shop, "203.0.113.5").status_code == 302
    assert checkout(client, shop, "203.0.113.5").status_code == 302
    stock = type(product).objects.get(pk=product.pk).stock

    refused = checkout(client, shop, "203.0.113.5")

    assert refused.status_code == 429
    assert Order.objects.count() == 2
    assert type(product).objects.get(pk=product.pk).stock == stock
    assert checkout(client, shop, "198.51.100.4").status_code == 302


def test_order_lookups_over_the_limit_get_a_429(client, settings):
    settings.RATE_LIMIT_ORDER_LOOKUP = "3/hour"
    url = reverse("shops:order_lookup")
    for number in range(3):
        assert client.post(url, {"number": f"X{number}", "contact": "13900001111"}).status_code == 400

    assert client.post(url, {"number": "X9", "contact": "13900001111"}).status_code == 429


def test_a_limit_of_zero_is_off(client, settings):
    settings.RATE_LIMIT_JOIN = "0"
    for number in range(12):
        assert signup(client, number).status_code == 302


def visit(client, code, ip="203.0.113.5", user_agent=BROWSER):
    return client.get(reverse("share_link", args=[code]), HTTP_USER_AGENT=user_agent, REMOTE_ADDR=ip)


def test_redirects_over_the_limit_get_a_429_and_are_not_counted(client, settings):
    settings.RATE_LIMIT_REDIRECT = "3/minute"
    link = share_link_create(owner=shop_with_products().owner)
    answers = [visit(client, link.code).status_code for _ in range(3)]

    refused = visit(client, link.code)

    assert answers == [302, 302, 302]
    assert refused.status_code == 429
    assert settings.ATTRIBUTION_COOKIE not in refused.cookies
    assert "Too many requests" in refused.content.decode()
    # bots are limited as well, by address
    assert visit(client, link.code, user_agent="curl/8.0").status_code == 429
    assert visit(client, link.code, ip="198.51.100.4").status_code == 302
    clicks_flush()
    assert ShareLinkDailyStat.objects.get(link=link).clicks == 4


@pytest.mark.redis
def test_with_redis_the_limit_is_in_the_same_single_round_trip(client, settings):
    import redis

    url = os.environ["REDIS_URL"]  # this run's (this xdist worker's) database, emptied before each test anyway
    redis.Redis.from_url(url).flushdb()
    settings.CLICKS_REDIS_URL = url
    settings.RATE_LIMIT_REDIRECT = "3/minute"
    click_counter_reset()
    counter = click_counter()
    assert isinstance(counter, RedisClickCounter)
    link = share_link_create(owner=shop_with_products().owner)
    visit(client, link.code, ip="198.51.100.1")  # a miss: reads the database and caches the target
    calls = []
    original = counter.redis.execute_command
    counter.redis.execute_command = lambda *args, **kwargs: calls.append(args[0]) or original(*args, **kwargs)

    answers = [visit(client, link.code).status_code for _ in range(4)]

    assert answers == [302, 302, 302, 429]
    assert calls == ["EVALSHA"] * 4  # one round trip per click, the refused one too
    clicks_flush()
    assert ShareLinkDailyStat.objects.get(link=link).clicks == 4  # the miss and three counted hits
    assert not [key for key in counter.redis.keys("cps:links:rate:*") if b"198.51.100" in key or b"203.0.113" in key]
    redis.Redis.from_url(url).flushdb()
    click_counter_reset()


def test_password_reset_requests_over_the_limit_send_no_mail(client, settings, mailoutbox):
    settings.RATE_LIMIT_PASSWORD_RESET = "2/hour"
    get_user_model().objects.create_user(email="li.na@example.com", password="x-long-password-1")
    url = reverse("password_reset")
    answers = [client.post(url, {"email": "li.na@example.com"}).status_code for _ in range(3)]

    assert answers == [302, 302, 429]
    assert len(mailoutbox) == 2


def test_a_malformed_rate_setting_stops_the_start_not_a_request():
    import subprocess
    import sys
    from pathlib import Path

    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings", "RATE_LIMIT_CHECKOUT": "lots"}
    result = subprocess.run(
        [sys.executable, "-c", "import django; django.setup()"],
        cwd=Path(__file__).resolve().parents[2],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert result.returncode != 0
    assert "RATE_LIMIT_CHECKOUT must look like '10/hour'" in result.stderr
