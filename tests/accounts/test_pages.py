import re

import pytest
from django.contrib.auth import authenticate, get_user_model
from django.core import mail
from django.urls import reverse

from accounts.forms import ProfileForm
from tests.factories import PASSWORD, UserFactory

pytestmark = pytest.mark.django_db
User = get_user_model()

NEW_PASSWORD = "a-brand-new-passphrase-42"
RESET_LINK = re.compile(r"https://shop\.example\.com(/password/reset/[^/\s]+/[^/\s]+/)")


def profile_data(user, **overrides):
    data = {"first_name": user.first_name, "email": user.email, "phone": user.phone or "", "current_password": ""}
    data.update(overrides)
    return data


# --- signed out -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("url_name", ["accounts:profile", "password_change"])
def test_signed_out_visitors_are_sent_to_log_in(client, url_name):
    url = reverse(url_name)

    response = client.get(url)

    assert response.status_code == 302
    assert response["Location"] == f"{reverse('login')}?next={url}"


def test_login_page_links_to_password_reset_and_to_join(client):
    page = client.get(reverse("login")).content.decode()

    assert f'href="{reverse("password_reset")}"' in page
    assert f'href="{reverse("members:join")}"' in page


# --- profile ---------------------------------------------------------------------------------------------------


def test_profile_works_for_someone_who_just_joined(client):
    # given someone who signed up on the join page (and is signed in by it)
    client.post(
        reverse("members:join"),
        {
            "email": "new.person@example.com",
            "first_name": "New Person",
            "password1": "a-long-enough-passphrase",
            "password2": "a-long-enough-passphrase",
        },
    )

    # when
    response = client.get(reverse("accounts:profile"))

    # then
    assert response.status_code == 200
    page = response.content.decode()
    assert 'value="new.person@example.com"' in page
    assert 'value="New Person"' in page
    assert f'href="{reverse("password_change")}"' in page
    assert f'href="{reverse("accounts:tokens")}"' in page  # where API tokens are made and revoked
    assert '<label for="id_email">' in page


def test_profile_saves_a_new_name_without_asking_for_the_password(client):
    user = UserFactory(first_name="Old")
    client.force_login(user)

    response = client.post(reverse("accounts:profile"), profile_data(user, first_name="  Li Na "))

    assert response.status_code == 302
    assert response["Location"] == reverse("accounts:profile")
    user.refresh_from_db()
    assert user.first_name == "Li Na"
    assert "Your details are saved." in client.get(reverse("accounts:profile")).content.decode()


def test_profile_changes_the_email_with_the_current_password_and_it_becomes_the_login(client):
    user = UserFactory(email="old@example.com")
    client.force_login(user)

    response = client.post(
        reverse("accounts:profile"), profile_data(user, email=" New.Address@Example.COM ", current_password=PASSWORD)
    )

    assert response.status_code == 302
    user.refresh_from_db()
    assert user.email == "new.address@example.com"
    assert authenticate(username="new.address@example.com", password=PASSWORD) == user
    assert authenticate(username="old@example.com", password=PASSWORD) is None


@pytest.mark.parametrize("current_password", ["", "not-my-password"])
def test_profile_refuses_to_change_a_login_without_the_right_password(client, current_password):
    user = UserFactory(email="mine@example.com", phone=None)
    client.force_login(user)

    response = client.post(
        reverse("accounts:profile"),
        profile_data(user, email="taken.over@example.com", phone="13800138000", current_password=current_password),
    )

    assert response.status_code == 400
    assert response.context["form"].errors["current_password"]
    user.refresh_from_db()
    assert (user.email, user.phone) == ("mine@example.com", None)


def test_profile_refuses_an_email_another_account_uses_whatever_its_case(client):
    UserFactory(email="taken@example.com")
    user = UserFactory(email="mine@example.com", first_name="Mine")
    client.force_login(user)

    response = client.post(
        reverse("accounts:profile"),
        profile_data(user, first_name="Changed", email="TAKEN@example.com", current_password=PASSWORD),
    )

    assert response.status_code == 400
    assert response.context["form"].errors["email"] == ["Another account already uses this email address."]
    page = response.content.decode()
    assert "Another account already uses this email address." in page
    assert 'aria-invalid="true"' in page
    user.refresh_from_db()
    assert (user.email, user.first_name) == ("mine@example.com", "Mine")


def test_profile_stores_the_phone_without_separators_and_it_logs_in(client):
    user = UserFactory(phone=None)
    client.force_login(user)

    response = client.post(
        reverse("accounts:profile"), profile_data(user, phone="+86 138-0013-8000", current_password=PASSWORD)
    )

    assert response.status_code == 302
    user.refresh_from_db()
    assert user.phone == "+8613800138000"
    assert authenticate(username="+8613800138000", password=PASSWORD) == user


@pytest.mark.parametrize(
    ("phone", "error"),
    [
        ("13800138000", "Another account already uses this phone number."),
        ("138 0013 8000", "Another account already uses this phone number."),
        (
            "someone@example.com",
            "Enter a valid phone number, e.g. 131 2345 6789, or with the country code, e.g. +86 131 2345 6789.",
        ),
    ],
)
def test_profile_refuses_a_phone_that_is_taken_or_not_a_number(client, phone, error):
    UserFactory(phone="+8613800138000")
    user = UserFactory(phone="+8613900139000")
    client.force_login(user)

    response = client.post(reverse("accounts:profile"), profile_data(user, phone=phone, current_password=PASSWORD))

    assert response.status_code == 400
    assert response.context["form"].errors["phone"] == [error]
    user.refresh_from_db()
    assert user.phone == "+8613900139000"


def test_two_people_can_both_remove_their_phone(client):
    # An empty phone is stored as NULL, so the unique index never sees two blanks.
    first, second = UserFactory(phone="13800138000"), UserFactory(phone="13900139000")
    for user in (first, second):
        client.force_login(user)
        response = client.post(reverse("accounts:profile"), profile_data(user, phone="", current_password=PASSWORD))
        assert response.status_code == 302

    assert list(User.objects.filter(pk__in=[first.pk, second.pk]).values_list("phone", flat=True)) == [None, None]


def test_an_email_taken_between_validation_and_save_is_a_form_error_not_a_500(client, monkeypatch):
    # given another request that takes the address after this form checked it
    UserFactory(email="raced@example.com")
    user = UserFactory(email="mine@example.com")
    client.force_login(user)
    monkeypatch.setattr(ProfileForm, "_others", lambda form: User.objects.none())
    monkeypatch.setattr(ProfileForm, "validate_unique", lambda form: None)
    monkeypatch.setattr(User, "validate_constraints", lambda instance, exclude=None: None)

    # when
    response = client.post(
        reverse("accounts:profile"), profile_data(user, email="raced@example.com", current_password=PASSWORD)
    )

    # then
    assert response.status_code == 400
    assert "Another account already uses this email address or phone number." in response.content.decode()
    user.refresh_from_db()
    assert user.email == "mine@example.com"


def test_profile_page_query_count_is_pinned(client, django_assert_max_num_queries):
    user = UserFactory(phone="13800138000")
    client.force_login(user)

    # session and user: nothing on the page may add a query per anything
    with django_assert_max_num_queries(3):  # +1: the unread notifications in the header (#22)
        response = client.get(reverse("accounts:profile"))

    assert response.status_code == 200


# --- password reset ---------------------------------------------------------------------------------------------


def test_password_reset_emails_a_link_that_sets_a_new_password_once(client, settings):
    # given
    settings.SITE_URL = "https://shop.example.com"
    user = UserFactory(email="forgetful@example.com")

    # when they ask for a link, typing their address in another case
    response = client.post(reverse("password_reset"), {"email": "Forgetful@Example.com"})

    # then one email goes to the address on file, with a link
    assert response.status_code == 302
    assert response["Location"] == reverse("password_reset_done")
    assert len(mail.outbox) == 1
    message = mail.outbox[0]
    assert message.to == ["forgetful@example.com"]
    assert "\n" not in message.subject
    link = RESET_LINK.search(message.body).group(1)

    # and the link leads to a form that sets the new password
    form_url = client.get(link)["Location"]  # Django swaps the token for a session-held one
    assert "Choose a new password" in client.get(form_url).content.decode()
    response = client.post(form_url, {"new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD})
    assert response.status_code == 302
    assert response["Location"] == reverse("password_reset_complete")
    assert authenticate(username="forgetful@example.com", password=NEW_PASSWORD) == user
    assert authenticate(username="forgetful@example.com", password=PASSWORD) is None

    # and the link does not work a second time
    page = client.get(link, follow=True).content.decode()
    assert "The password reset link is invalid" in page
    assert 'name="new_password1"' not in page


def test_password_reset_for_an_unknown_email_looks_exactly_the_same(client):
    UserFactory(email="known@example.com")

    known = client.post(reverse("password_reset"), {"email": "known@example.com"})
    unknown = client.post(reverse("password_reset"), {"email": "nobody@example.com"})

    assert (unknown.status_code, unknown["Location"]) == (known.status_code, known["Location"])
    assert [message.to for message in mail.outbox] == [["known@example.com"]]
    assert "If an account uses that email address" in client.get(unknown["Location"]).content.decode()


def test_password_reset_form_shows_an_error_for_a_malformed_address(client):
    response = client.post(reverse("password_reset"), {"email": "not-an-address"})

    assert response.status_code == 200
    assert response.context["form"].errors["email"]
    assert '<label for="id_email">' in response.content.decode()
    assert mail.outbox == []


# --- password change --------------------------------------------------------------------------------------------


def test_password_change_sets_the_new_password_and_keeps_this_session(client):
    user = UserFactory()
    client.force_login(user)

    response = client.post(
        reverse("password_change"),
        {"old_password": PASSWORD, "new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD},
    )

    assert response.status_code == 302
    assert response["Location"] == reverse("password_change_done")
    assert authenticate(username=user.email, password=NEW_PASSWORD) == user
    assert client.get(reverse("accounts:profile")).status_code == 200


def test_password_change_refuses_a_wrong_current_password(client):
    user = UserFactory()
    client.force_login(user)

    response = client.post(
        reverse("password_change"),
        {"old_password": "not-my-password", "new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD},
    )

    assert response.status_code == 200
    assert response.context["form"].errors["old_password"]
    assert 'role="alert"' in response.content.decode()
    assert authenticate(username=user.email, password=PASSWORD) == user
