"""Fuzzing the signed attribution cookie (referrals/attribution.py).

Property: whatever the cookie holds, reading it returns None or the attribution of an active member (and only a
link that member owns); it never raises. Values are also signed with the real cookie signer, so the fuzzing reaches
past the signature into the payload and the signer's own timestamp.
"""

import base64

import pytest
from django.conf import settings as django_settings
from django.core import signing
from django.test import RequestFactory
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from referrals.models import Member
from referrals.services import member_set_status
from shops.attribution import SALT, _cookie_signer, attribution_from_request
from shops.services import share_link_create
from tests.factories import shop_with_products

FUZZ = settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
FUZZ_CLIENT = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

COOKIE = django_settings.ATTRIBUTION_COOKIE
# A cookie reaches Django as the header's bytes read as latin-1 (PEP 3333): any character up to U+00FF, NUL and
# controls included. (A lone surrogate cannot arrive, and the signer cannot even hash one.)
any_text = st.text(st.characters(max_codepoint=0xFF, exclude_categories=()), max_size=40)
ids = st.integers(-(2**70), 2**70) | st.integers(-5, 5) | st.sampled_from([2**31, 2**63 - 1, 2**63, 2**64])
id_text = ids.map(str) | st.sampled_from(["", " ", " 1", "1 ", "+1", "-0", "1_0", "١", "0x1", "1e3", "9" * 5000])
payloads = (
    any_text
    | st.tuples(id_text, id_text).map(":".join)
    | st.tuples(id_text, id_text, id_text).map(":".join)
    | st.lists(id_text, max_size=5).map(":".join)
)


def signer():
    return _cookie_signer(COOKIE, django_settings.SECRET_KEY, tuple(django_settings.SECRET_KEY_FALLBACKS))


def signed(value: str) -> str:
    """What share_link_redirect sets: the value, the signer's timestamp, the signature."""
    return signer().sign(value)


def signed_without_timestamp(value: str) -> str:
    """A genuine signature over a value that has no (or a malformed) timestamp: only the secret's holder could send
    it, but the reader must not fall over on it."""
    return signing.Signer.sign(signer(), value)


def request_with_cookie(value: str):
    request = RequestFactory().get("/")
    request.COOKIES[COOKIE] = value
    return request


@pytest.fixture
def people(db):
    active = shop_with_products().owner
    suspended = shop_with_products().owner
    active_link = share_link_create(owner=active)
    suspended_link = share_link_create(owner=suspended)
    member_set_status(member=suspended, status=Member.Status.SUSPENDED, actor=None)
    return {
        "active": active,
        "active_link": active_link,
        "suspended": suspended,
        "suspended_link": suspended_link,
    }


def assert_valid_or_none(attribution) -> None:
    if attribution is None:
        return
    assert attribution.sharer.status == Member.Status.ACTIVE
    assert attribution.link is None or attribution.link.owner_id == attribution.sharer.pk


@FUZZ
@given(value=any_text | payloads)
def test_an_unsigned_or_forged_cookie_is_ignored(people, value):
    assert attribution_from_request(request_with_cookie(value)) is None


@FUZZ
@given(data=st.data())
@example(data=None)
def test_a_signed_cookie_with_any_payload_reads_as_none_or_an_active_sharer(people, data):
    if data is None:  # the real shapes, signed: only the active member is credited
        active, link = people["active"], people["active_link"]
        found = attribution_from_request(request_with_cookie(signed(f"{active.pk}:{link.pk}")))
        assert (found.sharer, found.link) == (active, link)
        suspended = people["suspended"]
        cookie = signed(f"{suspended.pk}:{people['suspended_link'].pk}")
        assert attribution_from_request(request_with_cookie(cookie)) is None
        return
    real_ids = st.sampled_from([str(person.pk) for person in people.values()])
    value = data.draw(payloads | st.tuples(real_ids, real_ids).map(":".join), label="value")
    assert_valid_or_none(attribution_from_request(request_with_cookie(signed(value))))


@FUZZ
@given(value=payloads)
@example(value="1:2")  # "2" is read as the timestamp; "1" is not a valid one
@example(value="1")  # no separator at all: ValueError while unpacking
@example(value="1:zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz")  # a timestamp past any float: OverflowError
@example(value="1:2:!")  # a timestamp that is not base 62: ValueError
@example(value="1:")  # an empty timestamp: IndexError
def test_a_signed_cookie_with_a_malformed_timestamp_is_ignored(people, value):
    assert_valid_or_none(attribution_from_request(request_with_cookie(signed_without_timestamp(value))))


@FUZZ
@given(raw=st.binary(max_size=60))
def test_a_cookie_of_random_base64_is_ignored(people, raw):
    value = base64.urlsafe_b64encode(raw).decode() + ":" + base64.urlsafe_b64encode(raw[::-1]).decode()
    assert attribution_from_request(request_with_cookie(value)) is None


# --- Through the test client: the redirect (which reads the cookie in "first click" mode) and the checkout ----


@FUZZ_CLIENT
@given(value=payloads, sign=st.sampled_from([signed, signed_without_timestamp, str]))
def test_a_share_link_click_with_any_cookie_redirects(client, settings, people, value, sign):
    settings.ATTRIBUTION_MODEL = "first"
    settings.RATE_LIMIT_REDIRECT = ""  # every example clicks from the same address
    client.cookies[COOKIE] = sign(value).encode().decode("latin-1")  # as a WSGI server reads the header

    response = client.get(f"/l/{people['active_link'].code}")

    assert response.status_code == 302


def test_salt_is_the_one_the_cookie_is_set_with():
    # The fuzz signs with _cookie_signer; request.get_signed_cookie(COOKIE, salt=SALT) must accept the same value.
    request = request_with_cookie(signed("1:2"))
    assert request.get_signed_cookie(COOKIE, salt=SALT) == "1:2"
