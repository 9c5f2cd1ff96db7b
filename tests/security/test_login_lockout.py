"""Brute-force protection on every password login (django-axes): after AXES_FAILURE_LIMIT wrong passwords for an
account from one address, that address cannot log in to it, even with the right password, until the cool-off has
passed; the person gets a 429 page saying when to try again, never a 500. Email and phone count as one account."""

from datetime import timedelta

import pytest
from axes.models import AccessAttempt
from django.db.models import F
from django.urls import reverse

from tests.factories import PASSWORD, UserFactory

pytestmark = pytest.mark.django_db
WRONG = "not-the-password"


@pytest.fixture
def user(settings):
    settings.AXES_FAILURE_LIMIT = 3
    settings.AXES_COOLOFF_MINUTES = 15
    settings.AXES_COOLOFF_TIME = timedelta(minutes=15)
    return UserFactory(email="li.na@example.com", phone="+8613800138000", is_staff=True, is_superuser=True)


def login(client, path, username, password):
    return client.post(path, {"username": username, "password": password})


def cool_off_passes():
    AccessAttempt.objects.update(attempt_time=F("attempt_time") - timedelta(minutes=16))


@pytest.mark.parametrize("page", ["login", "admin:login"])
def test_wrong_passwords_lock_the_login_until_the_cool_off_has_passed(client, user, page):
    path = reverse(page)
    # given: two failures are just failures
    for _ in range(2):
        assert login(client, path, user.email, WRONG).status_code == 200
    # when: the third reaches the limit
    locked = login(client, path, user.email, WRONG)

    # then: a 429 page that says when to try again; the right password is refused too
    assert locked.status_code == 429
    assert locked["Retry-After"] == str(15 * 60)
    assert "Try again in 15 minutes" in locked.content.decode()
    refused = login(client, path, user.email, PASSWORD)
    assert refused.status_code == 429
    assert "_auth_user_id" not in client.session

    # when: the cool-off has passed, the right password works
    cool_off_passes()
    allowed = login(client, path, user.email, PASSWORD)
    assert allowed.status_code == 302
    assert client.session["_auth_user_id"] == str(user.pk)


def test_the_phone_number_or_another_spelling_does_not_get_a_fresh_allowance(client, user):
    path = reverse("login")
    login(client, path, "li.na@example.com", WRONG)
    login(client, path, "LI.NA@EXAMPLE.COM", WRONG)
    login(client, path, "138 0013 8000", WRONG)

    assert login(client, path, "13800138000", PASSWORD).status_code == 429
    assert login(client, path, "Li.Na@example.com", PASSWORD).status_code == 429
    assert "_auth_user_id" not in client.session


def test_the_lockout_is_per_address(client, user):
    path = reverse("login")
    for _ in range(3):
        client.post(path, {"username": user.email, "password": WRONG}, REMOTE_ADDR="203.0.113.9")

    assert client.post(path, {"username": user.email, "password": PASSWORD}, REMOTE_ADDR="203.0.113.9").status_code == (
        429
    )
    elsewhere = client.post(path, {"username": user.email, "password": PASSWORD}, REMOTE_ADDR="198.51.100.7")
    assert elsewhere.status_code == 302


def test_guessing_at_an_unknown_login_is_limited_too(client, user):
    path = reverse("login")
    for _ in range(3):
        login(client, path, "nobody@example.com", WRONG)

    response = login(client, path, "NOBODY@example.com", WRONG)
    assert response.status_code == 429


def test_a_success_before_the_limit_resets_the_count(client, user):
    path = reverse("login")
    login(client, path, user.email, WRONG)
    login(client, path, user.email, WRONG)
    assert login(client, path, user.email, PASSWORD).status_code == 302
    client.logout()

    login(client, path, user.email, WRONG)
    login(client, path, user.email, WRONG)
    assert login(client, path, user.email, PASSWORD).status_code == 302


def test_the_locked_out_page_is_translated(client, user):
    path = reverse("login")
    for _ in range(3):
        login(client, path, user.email, WRONG)
    client.cookies["django_language"] = "zh-hans"

    response = login(client, path, user.email, PASSWORD)
    assert response.status_code == 429
    assert '<html lang="zh-hans">' in response.content.decode()
