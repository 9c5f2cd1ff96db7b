"""A changed password ends every other way in: the person's API tokens are revoked (accounts.signals), whichever
way the password changed, and every other session is signed out (Django: the session hash follows the password)."""

import pytest
from django.contrib.auth.hashers import PBKDF2SHA1PasswordHasher
from django.contrib.auth.tokens import default_token_generator
from django.core.management import call_command
from django.test import Client
from django.urls import reverse
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_encode

from accounts.models import ApiToken
from accounts.services import token_create, user_update_profile
from tests.factories import PASSWORD, MemberFactory

pytestmark = pytest.mark.django_db

NEW_PASSWORD = "an-entirely-new-passphrase-2026"
PROFILE = reverse("accounts:profile")


@pytest.fixture
def member():
    return MemberFactory()


@pytest.fixture
def user(member):
    return member.user


@pytest.fixture
def keys(user):
    """Two working keys, and one revoked before (its revocation time must not move)."""
    old = token_create(user=user, name="old")
    ApiToken.objects.filter(pk=old.token.pk).update(revoked_at="2026-01-01T00:00:00Z")
    return [token_create(user=user, name=name).key for name in ("phone", "website")]


@pytest.fixture
def other_session(user):
    """The person signed in on another device, before the change."""
    other = Client()
    other.force_login(user)
    assert other.get(PROFILE).status_code == 200
    return other


def api_status(key: str) -> int:
    return Client().get("/api/v1/me/", HTTP_AUTHORIZATION=f"Bearer {key}").status_code


def assert_keys_revoked(user, keys):
    assert [api_status(key) for key in keys] == [401, 401]
    assert not ApiToken.objects.filter(user=user, revoked_at__isnull=True).exists()
    assert ApiToken.objects.get(user=user, name="old").revoked_at.year == 2026  # untouched
    assert ApiToken.objects.get(user=user, name="old").revoked_at.month == 1


def assert_signed_out(client):
    response = client.get(PROFILE)
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))


def test_keys_work_before_any_change(keys):
    assert [api_status(key) for key in keys] == [200, 200]


def test_the_password_change_page_revokes_the_keys_and_signs_out_other_sessions(client, user, keys, other_session):
    client.force_login(user)

    response = client.post(
        reverse("password_change"),
        {"old_password": PASSWORD, "new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD},
    )

    assert response.status_code == 302
    assert_keys_revoked(user, keys)
    assert_signed_out(other_session)
    assert client.get(PROFILE).status_code == 200  # the session that changed it stays signed in


def test_a_refused_password_change_revokes_nothing(client, user, keys):
    client.force_login(user)

    response = client.post(
        reverse("password_change"),
        {"old_password": "wrong", "new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD},
    )

    assert response.status_code == 200  # the form again, with its error
    assert [api_status(key) for key in keys] == [200, 200]


def test_a_password_reset_revokes_the_keys_and_signs_out_every_session(client, user, keys, other_session):
    uid = urlsafe_base64_encode(force_bytes(user.pk))
    token = default_token_generator.make_token(user)

    link = client.get(reverse("password_reset_confirm", args=[uid, token]))  # swaps the token for a session
    response = client.post(link["Location"], {"new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD})

    assert response.status_code == 302
    assert response["Location"] == reverse("password_reset_complete")
    assert_keys_revoked(user, keys)
    assert_signed_out(other_session)


def test_staff_setting_a_password_in_the_admin_revokes_the_keys(admin_client, user, keys, other_session):
    url = reverse("admin:auth_user_password_change", args=[user.pk])

    response = admin_client.post(url, {"usable_password": "true", "password1": NEW_PASSWORD, "password2": NEW_PASSWORD})

    assert response.status_code == 302
    assert_keys_revoked(user, keys)
    assert_signed_out(other_session)


def test_staff_disabling_password_login_in_the_admin_revokes_the_keys(admin_client, user, keys):
    url = reverse("admin:auth_user_password_change", args=[user.pk])

    response = admin_client.post(url, {"usable_password": "false", "unset-password": "1"})

    assert response.status_code == 302
    user.refresh_from_db()
    assert not user.has_usable_password()
    assert_keys_revoked(user, keys)


def test_the_changepassword_command_revokes_the_keys(user, keys, monkeypatch):
    monkeypatch.setattr("getpass.getpass", lambda prompt="": NEW_PASSWORD)

    call_command("changepassword", user.email, stdout=None)

    assert_keys_revoked(user, keys)


def test_set_password_and_save_anywhere_revokes_the_keys(user, keys):
    user.set_password(NEW_PASSWORD)
    user.save()

    assert_keys_revoked(user, keys)


def test_signing_in_and_editing_the_profile_keep_the_keys(client, user, keys):
    assert client.login(username=user.email, password=PASSWORD)  # writes last_login
    user_update_profile(user=user, first_name="Li Na", email=user.email, phone="+8613800138000")
    user.refresh_from_db()
    user.save()  # a full save without a new password

    assert [api_status(key) for key in keys] == [200, 200]


def test_a_password_hash_upgrade_at_sign_in_is_not_a_change(settings, user, keys):
    # The password stored under an older hasher is re-hashed on the next sign-in: same password, keys kept.
    settings.PASSWORD_HASHERS = [
        "django.contrib.auth.hashers.MD5PasswordHasher",
        "django.contrib.auth.hashers.PBKDF2SHA1PasswordHasher",
    ]
    old_hash = PBKDF2SHA1PasswordHasher().encode(PASSWORD, "somesalt", iterations=1)
    type(user).objects.filter(pk=user.pk).update(password=old_hash)
    user.refresh_from_db()

    assert user.check_password(PASSWORD)

    user.refresh_from_db()
    assert user.password.startswith("md5$")  # upgraded
    assert [api_status(key) for key in keys] == [200, 200]
