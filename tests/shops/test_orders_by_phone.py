"""A buyer lists their orders by phone with a one-time code (shops.phone_codes): the right code shows the orders of
that phone and no other; a wrong, expired or over-tried code does not; codes are limited per phone and address."""

import re
import time
from datetime import timedelta

import pytest
from django.core.cache import cache
from django.urls import reverse

from core import sms
from shops.models import Order
from shops.phone_codes import _key
from shops.services import BuyerDetails, order_place
from tests.factories import place_order, shop_with_products

pytestmark = pytest.mark.django_db

PHONE = "+8613900001111"  # tests.factories.BUYER's
OTHER = "+8613700002222"


@pytest.fixture(autouse=True)
def _texts(settings):
    settings.SMS_BACKEND = "core.sms.LocmemSmsBackend"
    settings.RATE_LIMIT_PHONE_CODE = "3/hour"
    settings.RATE_LIMIT_PHONE_CODE_IP = "10/hour"
    settings.PHONE_CODE_ATTEMPTS = 3
    sms.outbox.clear()
    yield
    sms.outbox.clear()


@pytest.fixture
def orders():
    shop = shop_with_products()
    mine = [place_order(shop), place_order(shop)]
    product = shop.listings.first().product
    theirs = order_place(
        shop=shop, items={product.pk: 1}, buyer=BuyerDetails(name="Li Lei", phone=OTHER, email="", address="2 Road")
    )
    return mine, theirs


def _ask(client, phone="139 0000 1111"):
    return client.post(reverse("shops:orders_by_phone"), {"phone": phone})


def _code() -> str:
    return re.search(r"\b(\d{6})\b", sms.outbox[-1].text).group(1)


def _enter(client, code):
    return client.post(reverse("shops:orders_by_phone"), {"code": code})


def test_the_right_code_lists_the_orders_of_that_phone_only(client, orders):
    mine, theirs = orders
    response = _ask(client)
    assert response.status_code == 302
    [text] = sms.outbox
    assert text.phone == PHONE and text.template == "otp" and text.params[0] == _code()
    page = client.get(response["Location"])
    assert "+86*******1111" in page.content.decode()  # masked on the page too
    response = _enter(client, _code())
    assert response.status_code == 302 and response["Location"] == reverse("shops:orders_by_phone_list")
    html = client.get(reverse("shops:orders_by_phone_list")).content.decode()
    for order in mine:
        assert order.number in html
    assert theirs.number not in html
    # each listed order opens; another buyer's does not
    assert client.get(reverse("shops:order_detail", args=[mine[0].number])).status_code == 200
    assert client.get(reverse("shops:order_detail", args=[theirs.number])).status_code == 404


def test_the_code_is_stored_hashed_and_used_once(client, orders):
    _ask(client)
    code = _code()
    stored = cache.get(_key(PHONE))
    assert stored and code not in stored and len(stored) == 64
    assert _enter(client, code).status_code == 302
    other_browser = client.__class__()
    other_browser.post(reverse("shops:orders_by_phone"), {"phone": PHONE})  # asks again: a new code, not the old
    assert _enter(other_browser, code).status_code == 400


def test_a_wrong_code_is_refused_and_shows_nothing(client, orders):
    _ask(client)
    wrong = f"{(int(_code()) + 1) % 10**6:06d}"
    response = _enter(client, wrong)
    assert response.status_code == 400
    assert "wrong or has expired" in response.content.decode()
    assert client.get(reverse("shops:orders_by_phone_list")).status_code == 302  # back to the phone step
    assert _enter(client, "12ab56").status_code == 400  # not digits: a form error


def test_a_code_tried_too_often_dies(client, orders, settings):
    _ask(client)
    code = _code()
    wrong = f"{(int(code) + 1) % 10**6:06d}"
    for _attempt in range(settings.PHONE_CODE_ATTEMPTS):
        assert _enter(client, wrong).status_code == 400
    assert _enter(client, code).status_code == 400  # even the right one, now


def test_an_expired_code_is_refused(client, orders, monkeypatch, settings):
    settings.PHONE_CODE_SECONDS = 1
    _ask(client)
    code = _code()
    time.sleep(1.1)
    assert _enter(client, code).status_code == 400


def test_the_verified_phone_lasts_for_a_while_only(client, orders, monkeypatch):
    _ask(client)
    _enter(client, _code())
    assert client.get(reverse("shops:orders_by_phone_list")).status_code == 200
    later = time.time() + timedelta(hours=1).total_seconds()
    monkeypatch.setattr("shops.phone_codes.time.time", lambda: later)
    assert client.get(reverse("shops:orders_by_phone_list")).status_code == 302


def test_a_phone_without_orders_gets_no_text_but_the_same_answer(client, orders):
    response = _ask(client, "13600003333")
    assert response.status_code == 302 and sms.outbox == []


def test_codes_are_limited_per_phone(client, orders, settings):
    for _ in range(3):
        assert _ask(client).status_code == 302
    response = _ask(client)
    assert response.status_code == 429 and response["Retry-After"]
    assert len(sms.outbox) == 3


def test_codes_are_limited_per_address(client, orders, settings):
    settings.RATE_LIMIT_PHONE_CODE_IP = "2/hour"
    assert _ask(client, "13600003331").status_code == 302
    assert _ask(client, "13600003332").status_code == 302
    assert _ask(client, PHONE).status_code == 429
    assert sms.outbox == []


def test_a_bad_phone_is_a_form_error(client, orders):
    response = _ask(client, "not a phone")
    assert response.status_code == 400 and sms.outbox == []


def test_a_provider_failure_says_so_and_stores_no_code(client, orders, monkeypatch):
    def down(self, message):
        raise sms.SmsUnavailable("down")

    monkeypatch.setattr(sms.LocmemSmsBackend, "send", down)
    response = _ask(client)
    assert response.status_code == 400 and "could not send" in response.content.decode()
    assert cache.get(_key(PHONE)) is None


def test_the_lookup_page_links_the_phone_page(client):
    assert reverse("shops:orders_by_phone") in client.get(reverse("shops:order_lookup")).content.decode()


def test_orders_are_found_by_their_stored_phone(orders):
    assert Order.objects.filter(buyer_phone=PHONE).count() == 2
