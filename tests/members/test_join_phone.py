"""Signing up by phone on the join page (/join/<invite>/phone/): the name and the number, then the code sent to it
(3 typed fields), joins under the invite's sponsor and signs in; a number that already has an account gets no code
and the same words; wrong and expired codes do not make an account."""

import re
import time

import pytest
from django.contrib.auth import get_user_model
from django.urls import reverse

from core import sms
from referrals.models import Member
from tests.factories import MemberFactory, UserFactory

pytestmark = pytest.mark.django_db

PHONE = "+8613900001111"


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
def sponsor():
    return MemberFactory(user=UserFactory(first_name="Li", last_name="Na"))


def _url(sponsor) -> str:
    return reverse("members:join_phone_with_code", args=[sponsor.invite_code])


def _code() -> str:
    return re.search(r"\b(\d{6})\b", sms.outbox[-1].text).group(1)


def test_the_join_page_offers_the_phone(client, sponsor):
    page = client.get(reverse("members:join_with_code", args=[sponsor.invite_code])).content.decode()

    assert _url(sponsor) in page and "Sign up with your phone number" in page


def test_name_phone_and_code_make_a_member_under_the_sponsor_signed_in(client, sponsor):
    page = client.get(_url(sponsor)).content.decode()
    asked = client.post(_url(sponsor), {"first_name": "Wang Fang", "phone": "139 0000 1111"})

    done = client.post(_url(sponsor), {"code": _code()})

    typed = set(re.findall(r'<input type="(?:text|tel|email|password)"[^>]*name="(\w+)"', page)) | set(
        re.findall(r'<input type="(?:text|tel|email|password)"[^>]*name="(\w+)"', asked.content.decode())
    )
    assert typed == {"first_name", "phone", "code"}  # the whole journey to an account: 3 typed fields
    assert "Li Na invites you" in page
    assert done.status_code == 302 and done["Location"] == reverse("members:my_shop")  # straight to opening their shop
    user = get_user_model().objects.get(phone=PHONE)
    assert (user.first_name, user.email, user.has_usable_password()) == ("Wang Fang", None, False)
    assert Member.objects.get(user=user).parent_id == sponsor.pk
    assert client.session["_auth_user_id"] == str(user.pk)


def test_a_number_with_an_account_gets_no_code_and_the_same_words(client, sponsor):
    UserFactory(phone=PHONE)

    page = client.post(_url(sponsor), {"first_name": "Someone", "phone": PHONE}).content.decode()
    code_step = client.post(_url(sponsor), {"code": "123456"})

    assert sms.outbox == []
    assert "If this number can be used here, we have sent it a 6-digit code" in page
    assert code_step.status_code == 400
    assert get_user_model().objects.filter(phone=PHONE).count() == 1
    assert Member.objects.count() == 1  # the sponsor only


def test_a_wrong_code_makes_no_account(client, sponsor):
    client.post(_url(sponsor), {"first_name": "Wang Fang", "phone": PHONE})
    code = _code()

    response = client.post(_url(sponsor), {"code": f"{(int(code) + 1) % 10**6:06d}"})

    assert response.status_code == 400 and "That code is not right" in response.content.decode()
    assert not get_user_model().objects.filter(phone=PHONE).exists()


def test_an_expired_code_makes_no_account(client, sponsor, monkeypatch):
    client.post(_url(sponsor), {"first_name": "Wang Fang", "phone": PHONE})
    code = _code()
    later = time.time() + 301
    monkeypatch.setattr("accounts.code_steps.time.time", lambda: later)

    client.post(_url(sponsor), {"code": code})

    assert not get_user_model().objects.filter(phone=PHONE).exists()


def test_codes_to_sign_up_are_limited_per_number(client, sponsor):
    for _attempt in range(3):
        client.post(_url(sponsor), {"first_name": "Wang Fang", "phone": PHONE})

    refused = client.post(_url(sponsor), {"first_name": "Wang Fang", "phone": PHONE})

    assert refused.status_code == 429 and len(sms.outbox) == 3


def test_without_an_invite_the_new_member_has_no_sponsor(client):
    client.post(reverse("members:join_phone"), {"first_name": "Wang Fang", "phone": PHONE})
    client.post(reverse("members:join_phone"), {"code": _code()})

    member = Member.objects.get(user__phone=PHONE)
    assert member.parent_id is None


def test_a_sign_up_code_does_not_log_in(client, sponsor):
    """The codes of each purpose are apart: a code sent to sign up never logs in to an account."""
    client.post(_url(sponsor), {"first_name": "Wang Fang", "phone": PHONE})
    code = _code()
    UserFactory(phone=PHONE)  # an account with the number appears meanwhile

    client.post("/login/code/", {"phone": PHONE})
    response = client.post("/login/code/", {"code": code})

    assert response.status_code == 400 and "_auth_user_id" not in client.session


def test_a_member_is_sent_to_the_dashboard(client, sponsor):
    client.force_login(sponsor.user)

    response = client.get(_url(sponsor))

    assert response.status_code == 302 and response["Location"] == reverse("members:dashboard")
