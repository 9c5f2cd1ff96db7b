"""Logging in with a code by SMS (accounts.login_codes, /login/code/), and binding or removing a phone under "Ways to
log in" (/account/logins/): the right code signs in; a wrong, expired or over-tried code does not; codes are limited
per number and per address; an unknown number gets the very same page; the last way to log in is never removed."""

import re
import time

import pytest
from django.contrib.auth import get_user_model
from django.urls import reverse

from core import sms
from tests.factories import PASSWORD, MemberFactory, UserFactory

pytestmark = pytest.mark.django_db

PHONE = "+8613900001111"
OTHER = "+8613700002222"


@pytest.fixture(autouse=True)
def _texts(settings):
    settings.SMS_BACKEND = "core.sms.LocmemSmsBackend"
    settings.RATE_LIMIT_LOGIN_CODE = "3/hour"
    settings.RATE_LIMIT_LOGIN_CODE_IP = "10/hour"
    settings.LOGIN_CODE_ATTEMPTS = 3
    sms.outbox.clear()
    yield
    sms.outbox.clear()


@pytest.fixture
def holder():
    """A member who has a phone on file."""
    return MemberFactory(user=UserFactory(phone=PHONE)).user


def _ask(client, phone="139 0000 1111", url="/login/code/"):
    return client.post(url, {"phone": phone})


def _code() -> str:
    return re.search(r"\b(\d{6})\b", sms.outbox[-1].text).group(1)


def _enter(client, code, url="/login/code/", **extra):
    return client.post(url, {"code": code, **extra})


def _signed_in_user_id(client):
    return client.session.get("_auth_user_id")


def _wrong(code: str) -> str:
    return f"{(int(code) + 1) % 10**6:06d}"


def test_the_right_code_signs_in_and_goes_to_next(client, holder):
    asked = _ask(client)
    code = _code()

    response = _enter(client, code, next="/account/")

    assert asked.status_code == 200 and "Code from the SMS" in asked.content.decode()
    assert response.status_code == 302 and response["Location"] == "/account/"
    assert _signed_in_user_id(client) == str(holder.pk)
    assert sms.outbox[-1].phone == PHONE and sms.outbox[-1].template == "otp"
    assert sms.outbox[-1].params == (code, "5")


def test_the_login_page_links_to_it(client):
    assert reverse("login_code") in client.get("/login/").content.decode()


def test_an_unknown_number_gets_the_same_page_and_no_text(client, holder):
    known = _ask(client).content.decode()
    texts = len(sms.outbox)
    client.get("/login/code/?again=1")

    unknown = _ask(client, OTHER).content.decode()

    assert len(sms.outbox) == texts  # nothing sent to a number without an account
    strip = lambda page: re.sub(r'name="csrfmiddlewaretoken" value="[^"]+"', "", page)  # noqa: E731
    assert strip(known) == strip(unknown)
    assert _signed_in_user_id(client) is None
    assert "If this number can be used here, we have sent it a 6-digit code" in unknown


def test_a_code_for_an_unknown_number_never_signs_in(client, holder):
    _ask(client, OTHER)

    response = _enter(client, "123456")

    assert response.status_code == 400
    assert "That code is not right, or it has expired" in response.content.decode()
    assert _signed_in_user_id(client) is None


def test_a_wrong_code_is_refused_and_the_right_one_still_works_within_the_attempts(client, holder):
    _ask(client)
    code = _code()

    wrong = _enter(client, _wrong(code))
    right = _enter(client, code)

    assert wrong.status_code == 400 and "That code is not right" in wrong.content.decode()
    assert right.status_code == 302 and _signed_in_user_id(client) == str(holder.pk)


def test_too_many_wrong_codes_kill_the_code(client, holder):
    _ask(client)
    code = _code()
    for _attempt in range(3):
        _enter(client, _wrong(code))

    response = _enter(client, code)

    assert response.status_code == 400
    assert _signed_in_user_id(client) is None


def test_a_code_is_used_up(client, holder):
    _ask(client)
    code = _code()
    _enter(client, code)
    client.logout()
    _ask(client, PHONE)
    _enter(client, _code())  # a fresh code works: the old one was used up, not the number
    client.logout()
    _ask(client, PHONE)

    response = _enter(client, code)

    assert response.status_code == 400 and _signed_in_user_id(client) is None


def test_an_expired_code_is_refused(client, holder, monkeypatch):
    _ask(client)
    code = _code()
    later = time.time() + 5 * 60 + 1
    monkeypatch.setattr("accounts.code_steps.time.time", lambda: later)

    response = _enter(client, code)

    assert _signed_in_user_id(client) is None
    assert response.status_code == 200  # back to the phone step, with the message
    assert "That code has expired" in response.content.decode()


def test_the_code_expires_in_the_cache_too(client, holder, settings):
    settings.LOGIN_CODE_SECONDS = 1
    _ask(client)
    code = _code()
    time.sleep(1.2)

    _enter(client, code)

    assert _signed_in_user_id(client) is None


def test_codes_are_limited_per_number(client, holder):
    for _attempt in range(3):
        assert _ask(client).status_code == 200

    refused = _ask(client)

    assert refused.status_code == 429 and refused["Retry-After"]
    assert len(sms.outbox) == 3


def test_codes_are_limited_per_address_across_numbers(client, holder, settings):
    settings.RATE_LIMIT_LOGIN_CODE = "100/hour"
    numbers = [f"+86139000{n:05d}" for n in range(10)]
    for number in numbers:
        assert _ask(client, number).status_code == 200

    assert _ask(client, "+8613900099999").status_code == 429


def test_a_bad_number_is_a_form_error(client):
    response = _ask(client, "12")

    assert response.status_code == 400 and "Enter a valid phone number" in response.content.decode()


def test_numbers_and_codes_are_never_logged_in_full(client, holder, caplog):
    caplog.set_level("DEBUG")
    _ask(client)
    code = _code()
    _enter(client, _wrong(code))
    _enter(client, code)
    client.logout()
    _ask(client, OTHER)

    assert caplog.text  # the unknown number was logged, masked
    assert code not in caplog.text and PHONE not in caplog.text and OTHER not in caplog.text
    assert "+86*******2222" in caplog.text


def test_an_inactive_account_gets_no_code(client, holder):
    get_user_model().objects.filter(pk=holder.pk).update(is_active=False)

    _ask(client)

    assert sms.outbox == []


# --- binding and removing a phone ------------------------------------------------------------------------------


def test_a_member_binds_a_phone_with_a_code_and_then_logs_in_with_it(client):
    user = MemberFactory().user
    client.force_login(user)

    _ask(client, PHONE, url="/account/logins/phone/")
    done = _enter(client, _code(), url="/account/logins/phone/")

    user.refresh_from_db()
    assert done.status_code == 302 and user.phone == PHONE
    client.logout()
    _ask(client, PHONE)
    _enter(client, _code())
    assert _signed_in_user_id(client) == str(user.pk)


def test_a_number_of_another_account_gets_no_code_and_is_not_bound(client, holder):
    user = MemberFactory().user
    client.force_login(user)

    page = _ask(client, PHONE, url="/account/logins/phone/")

    assert sms.outbox == []
    assert "If this number can be used here" in page.content.decode()
    user.refresh_from_db()
    assert user.phone is None


def test_removing_the_phone_is_refused_when_it_is_the_only_way_in(client):
    user = UserFactory(phone=PHONE, email=None)
    user.set_unusable_password()
    user.save()
    client.force_login(user)

    client.post("/account/logins/phone/remove/")

    user.refresh_from_db()
    assert user.phone == PHONE
    assert "last way to log in" in client.get("/account/logins/").content.decode()


def test_removing_the_phone_works_when_the_password_remains(client, holder):
    client.force_login(holder)

    client.post("/account/logins/phone/remove/")

    holder.refresh_from_db()
    assert holder.phone is None
    client.logout()
    response = client.post("/login/", {"username": holder.email, "password": PASSWORD})
    assert response.status_code == 302 and _signed_in_user_id(client) == str(holder.pk)


def test_the_profile_cannot_clear_the_last_way_in(client):
    user = UserFactory(phone=PHONE, email=None)
    user.set_unusable_password()
    user.save()
    client.force_login(user)

    client.post("/account/", {"first_name": "Wang", "email": "", "phone": "", "current_password": ""})

    user.refresh_from_db()
    assert user.phone == PHONE


def test_the_ways_to_log_in_page_lists_them(client, holder):
    client.force_login(holder)

    page = client.get("/account/logins/").content.decode()

    assert "Email and password" in page and holder.email in page
    assert "Phone number (a code by SMS)" in page and PHONE in page
    assert "never changes where your money is paid" in page


def test_the_ways_to_log_in_page_needs_a_login(client):
    response = client.get("/account/logins/")

    assert response.status_code == 302 and response["Location"].startswith("/login/")


def _login_long_ago(client) -> None:
    session = client.session
    session["login_at"] = int(time.time()) - 15 * 60 - 1
    session.save()


def test_adding_a_phone_needs_a_recent_login(client):
    client.force_login(MemberFactory().user)
    _login_long_ago(client)

    response = _ask(client, PHONE, url="/account/logins/phone/")

    assert response.status_code == 302 and response["Location"] == "/login/?next=%2Faccount%2Flogins%2F"
    assert sms.outbox == []


def test_removing_a_phone_needs_a_recent_login_and_a_new_login_gives_it(client, holder):
    client.force_login(holder)
    _login_long_ago(client)

    refused = client.post("/account/logins/phone/remove/")
    holder.refresh_from_db()
    phone_after_refusal = holder.phone
    client.post("/login/", {"username": holder.email, "password": PASSWORD})
    client.post("/account/logins/phone/remove/")

    assert refused.status_code == 302 and refused["Location"].startswith("/login/")
    assert phone_after_refusal == PHONE
    holder.refresh_from_db()
    assert holder.phone is None
