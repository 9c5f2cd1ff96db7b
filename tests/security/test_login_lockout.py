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


# --- Password spraying: one address, one password, many accounts ------------------------------------------------

SPRAYED = "Spring-2026-password"
SPRAYER, ELSEWHERE = "203.0.113.66", "198.51.100.23"


def card(response) -> str:
    """The lockout page's message (the rest of the page carries a fresh CSRF token each time)."""
    text = response.content.decode()
    return text[text.index('<div class="card"') : text.index("</div>", text.index('<div class="card"'))]


def test_spraying_one_password_at_25_accounts_is_refused_after_the_limit_even_for_the_matching_one(client, settings):
    settings.RATE_LIMIT_LOGIN_ACCOUNTS = "20/hour"
    # given: 25 logins to try, two of them unknown, the last one's password is the sprayed one
    targets = [UserFactory().email for _ in range(22)] + ["nobody@example.com", "13900000000"]
    victim = UserFactory(password=SPRAYED)
    targets.append(victim.email)
    path = reverse("login")

    # when: one address tries the one password on each
    answers = [client.post(path, {"username": login, "password": SPRAYED}, REMOTE_ADDR=SPRAYER) for login in targets]

    # then: 20 ordinary failures, then every try is refused, the right password included; nobody is signed in
    assert [answer.status_code for answer in answers] == [200] * 20 + [429] * 5
    assert "_auth_user_id" not in client.session
    refused_unknown, refused_victim = answers[22], answers[24]
    assert card(refused_unknown) == card(refused_victim)  # the same whether or not the account exists
    assert "whichever account you use" in card(refused_victim)
    assert 0 < int(refused_victim["Retry-After"]) <= 3600
    assert refused_unknown["Retry-After"] == refused_victim["Retry-After"]
    # another address is unaffected: the victim logs in from there
    assert client.post(path, {"username": victim.email, "password": SPRAYED}, REMOTE_ADDR=ELSEWHERE).status_code == 302
    assert client.session["_auth_user_id"] == str(victim.pk)


def test_the_address_limit_locks_the_admin_login_too(client, settings):
    settings.RATE_LIMIT_LOGIN_ACCOUNTS = "3/hour"
    staff = UserFactory(is_staff=True, is_superuser=True)
    path = reverse("admin:login")
    for _ in range(3):
        client.post(path, {"username": UserFactory().email, "password": WRONG}, REMOTE_ADDR=SPRAYER)

    refused = client.post(path, {"username": staff.email, "password": PASSWORD}, REMOTE_ADDR=SPRAYER)

    assert refused.status_code == 429
    assert "_auth_user_id" not in client.session


def test_failures_on_one_account_count_once_against_the_address(client, settings):
    settings.AXES_FAILURE_LIMIT = 10
    settings.RATE_LIMIT_LOGIN_ACCOUNTS = "2/hour"
    user = UserFactory()
    path = reverse("login")
    for _ in range(5):
        client.post(path, {"username": user.email, "password": WRONG}, REMOTE_ADDR=SPRAYER)

    assert client.post(path, {"username": user.email, "password": PASSWORD}, REMOTE_ADDR=SPRAYER).status_code == 302


def test_an_office_where_people_mistype_and_then_log_in_is_never_locked(client, settings):
    settings.RATE_LIMIT_LOGIN_ACCOUNTS = "5/hour"
    path = reverse("login")
    # 30 colleagues behind one address: each mistypes once, then gets in
    for user in [UserFactory() for _ in range(30)]:
        assert client.post(path, {"username": user.email, "password": WRONG}, REMOTE_ADDR=SPRAYER).status_code == 200
        assert client.post(path, {"username": user.email, "password": PASSWORD}, REMOTE_ADDR=SPRAYER).status_code == 302
        client.logout()


def test_the_address_lockout_ends_with_its_window(client, settings, monkeypatch):
    settings.RATE_LIMIT_LOGIN_ACCOUNTS = "2/hour"
    clock = [7_200_000.0 + 600]  # ten minutes into an hour
    monkeypatch.setattr("core.ratelimit.time.time", lambda: clock[0])
    user = UserFactory()
    path = reverse("login")
    for _ in range(2):
        client.post(path, {"username": UserFactory().email, "password": WRONG}, REMOTE_ADDR=SPRAYER)

    locked = client.post(path, {"username": user.email, "password": PASSWORD}, REMOTE_ADDR=SPRAYER)
    assert locked.status_code == 429
    assert locked["Retry-After"] == str(50 * 60)
    assert "Try again in 50 minutes" in card(locked)

    clock[0] += 50 * 60
    assert client.post(path, {"username": user.email, "password": PASSWORD}, REMOTE_ADDR=SPRAYER).status_code == 302
