"""Members' phone numbers in one form, E.164 (issue #19): sign-up, the profile and staff's user form store it;
the login and its lockout find the account however the number is typed; the data migration normalises old ones."""

import importlib

import pytest
from django.apps import apps
from django.contrib.auth import authenticate, get_user_model
from django.urls import reverse

from tests.factories import PASSWORD, MemberFactory, UserFactory

pytestmark = pytest.mark.django_db

User = get_user_model()
SPELLINGS = ["+86 138-0013-8000", "13800138000", "138 0013 8000", "+8613800138000"]
E164 = "+8613800138000"
INVALID_MESSAGE = "Enter a valid phone number, e.g. 131 2345 6789, or with the country code, e.g. +86 131 2345 6789."


@pytest.fixture
def sponsor():
    return MemberFactory()


def signup(client, sponsor, **overrides):
    data = {
        "email": "new.person@example.com",
        "first_name": "New Person",
        "password1": "a-long-enough-passphrase",
        "password2": "a-long-enough-passphrase",
        **overrides,
    }
    return client.post(reverse("members:join_with_code", args=[sponsor.invite_code]), data)


@pytest.mark.parametrize("typed", SPELLINGS)
def test_sign_up_stores_the_phone_in_e164_form(client, sponsor, typed):
    response = signup(client, sponsor, phone=typed)

    assert response.status_code == 302
    assert User.objects.get(email="new.person@example.com").phone == E164


def test_sign_up_without_a_phone_stores_none(client, sponsor):
    assert signup(client, sponsor, phone="").status_code == 302
    assert signup(client.__class__(), sponsor, email="second@example.com").status_code == 302

    new = User.objects.filter(email__in=["new.person@example.com", "second@example.com"])
    assert list(new.values_list("phone", flat=True)) == [None, None]


@pytest.mark.parametrize("typed", ["138 0013 8000", "+86 138-0013-8000"])
def test_sign_up_refuses_a_phone_another_account_has_in_any_spelling(client, sponsor, typed):
    UserFactory(phone=E164)
    before = User.objects.count()

    response = signup(client, sponsor, phone=typed)

    assert response.status_code == 200
    assert response.context["form"].errors == {"phone": ["Another account already uses this phone number."]}
    assert User.objects.count() == before


def test_sign_up_refuses_a_number_that_is_not_one(client, sponsor):
    before = User.objects.count()

    response = signup(client, sponsor, phone="12345")

    assert response.context["form"].errors == {"phone": [INVALID_MESSAGE]}
    assert User.objects.count() == before


@pytest.mark.parametrize("typed", SPELLINGS)
def test_login_with_any_spelling_of_the_phone(client, typed):
    user = UserFactory(email="li@example.com", phone=E164)

    response = client.post(reverse("login"), {"username": typed, "password": PASSWORD})

    assert response.status_code == 302
    assert client.session["_auth_user_id"] == str(user.pk)


def test_login_with_another_number_fails(client):
    UserFactory(email="li@example.com", phone=E164)

    assert authenticate(username="139 0013 8000", password=PASSWORD) is None
    assert authenticate(username="", password=PASSWORD) is None


@pytest.mark.parametrize("typed", SPELLINGS)
def test_the_profile_stores_any_spelling_in_e164_form(client, typed):
    user = UserFactory(phone=None)
    client.force_login(user)

    response = client.post(
        reverse("accounts:profile"),
        {"first_name": user.first_name, "email": user.email, "phone": typed, "current_password": PASSWORD},
    )

    assert response.status_code == 302
    user.refresh_from_db()
    assert user.phone == E164


@pytest.mark.parametrize("typed", ["138 0013 8000", "+86 138-0013-8000"])
def test_staff_adding_a_user_in_admin_stores_the_phone_in_e164_form(client, staff_user, typed):
    client.force_login(staff_user)

    response = client.post(
        reverse("admin:accounts_user_add"),
        {"email": "added@example.com", "phone": typed, "password1": "", "password2": "", "usable_password": "false"},
    )

    assert response.status_code == 302, response.context["adminform"].form.errors
    assert User.objects.get(email="added@example.com").phone == E164


def test_staff_changing_a_phone_in_admin_stores_it_in_e164_form(client, staff_user):
    user = UserFactory(phone=None)
    client.force_login(staff_user)
    change = reverse("admin:accounts_user_change", args=[user.pk])
    form = client.get(change).context["adminform"].form
    data = {name: value for name, value in form.initial.items() if value is not None and name != "password"}
    data.update({"phone": "138 0013 8000", "date_joined_0": "2026-01-01", "date_joined_1": "10:00:00"})
    data.pop("groups", None)
    data.pop("user_permissions", None)
    data.pop("date_joined", None)
    data.pop("last_login", None)

    response = client.post(change, data)

    assert response.status_code == 302, response.context["adminform"].form.errors
    user.refresh_from_db()
    assert user.phone == E164


# --- the data migration ----------------------------------------------------------------------------------------


def run_migration():
    importlib.import_module("accounts.migrations.0003_phones_e164").normalise_user_phones(apps, None)


def test_the_migration_normalises_old_phones_and_they_log_in_with_any_spelling():
    spaced = UserFactory(email="spaced@example.com")
    bare = UserFactory(email="bare@example.com")
    invalid = UserFactory(email="invalid@example.com")
    User.objects.filter(pk=spaced.pk).update(phone="+86 139 0013 9000")
    User.objects.filter(pk=bare.pk).update(phone="13800138000")
    User.objects.filter(pk=invalid.pk).update(phone="12345")

    run_migration()

    phones = dict(User.objects.filter(pk__in=[spaced.pk, bare.pk, invalid.pk]).values_list("email", "phone"))
    assert phones == {
        "spaced@example.com": "+8613900139000",
        "bare@example.com": E164,
        "invalid@example.com": "12345",
    }
    assert [authenticate(username=typed, password=PASSWORD) for typed in SPELLINGS] == [bare] * 4
    assert authenticate(username="12345", password=PASSWORD) == invalid


def test_the_migration_gives_a_number_two_accounts_hold_to_one_of_them(capsys):
    older = UserFactory(email="older@example.com")
    newer = UserFactory(email="newer@example.com")
    User.objects.filter(pk=older.pk).update(phone="13800138000")
    User.objects.filter(pk=newer.pk).update(phone="+8613800138000")

    run_migration()

    assert dict(User.objects.filter(pk__in=[older.pk, newer.pk]).values_list("email", "phone")) == {
        "older@example.com": "13800138000",
        "newer@example.com": E164,
    }
    assert f"user {older.pk}: phone '13800138000' is the number of user {newer.pk} too" in capsys.readouterr().out
    assert authenticate(username="138 0013 8000", password=PASSWORD) == newer
