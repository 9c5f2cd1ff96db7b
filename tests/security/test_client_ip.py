"""One rule for the client's address (core.client_ip), used by rate limits, login lockouts and click counting:
X-Forwarded-For only behind a trusted proxy, and then the entry our proxy wrote, never one the client wrote."""

import pytest
from django.test import RequestFactory

from core.client_ip import client_ip


def request_from(remote="10.0.0.2", forwarded=None):
    headers = {"REMOTE_ADDR": remote}
    if forwarded is not None:
        headers["HTTP_X_FORWARDED_FOR"] = forwarded
    return RequestFactory().get("/", **headers)


def test_without_a_trusted_proxy_the_header_is_ignored(settings):
    settings.TRUST_X_FORWARDED_FOR = False

    assert client_ip(request_from(forwarded="1.2.3.4")) == "10.0.0.2"


def test_behind_one_proxy_the_last_entry_is_the_client(settings):
    settings.TRUST_X_FORWARDED_FOR = True
    settings.TRUSTED_PROXY_COUNT = 1

    # the client wrote "6.6.6.6" itself; our proxy appended the address it saw
    assert client_ip(request_from(forwarded="6.6.6.6, 203.0.113.7")) == "203.0.113.7"
    assert client_ip(request_from(forwarded="203.0.113.7")) == "203.0.113.7"
    assert client_ip(request_from(forwarded="")) == "10.0.0.2"


@pytest.mark.parametrize(
    ("forwarded", "expected"),
    [
        ("6.6.6.6, 203.0.113.7, 10.1.1.1", "203.0.113.7"),
        ("203.0.113.7, 10.1.1.1", "203.0.113.7"),
        ("10.1.1.1", "10.1.1.1"),
    ],
)
def test_behind_two_proxies_the_second_entry_from_the_right_is_the_client(settings, forwarded, expected):
    settings.TRUST_X_FORWARDED_FOR = True
    settings.TRUSTED_PROXY_COUNT = 2

    assert client_ip(request_from(forwarded=forwarded)) == expected


@pytest.mark.django_db
def test_a_spoofed_first_entry_does_not_buy_a_fresh_rate_limit(client, settings):
    settings.TRUST_X_FORWARDED_FOR = True
    settings.RATE_LIMIT_ORDER_LOOKUP = "2/hour"
    url = "/orders/lookup/"
    answers = [
        client.post(
            url, {"number": "X1", "contact": "a"}, HTTP_X_FORWARDED_FOR=f"{n}.{n}.{n}.{n}, 203.0.113.7"
        ).status_code
        for n in range(1, 4)
    ]

    assert answers == [400, 400, 429]
