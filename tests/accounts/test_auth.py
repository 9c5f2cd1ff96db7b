import pytest
from django.contrib.auth import authenticate, get_user_model
from django.db import IntegrityError, transaction

from tests.factories import PASSWORD, UserFactory

pytestmark = pytest.mark.django_db
User = get_user_model()


def test_email_is_the_login_and_stored_lower_case():
    user = User.objects.create_user("Mixed.Case@Example.COM", PASSWORD)

    assert user.email == "mixed.case@example.com"
    assert authenticate(username="MIXED.case@example.com", password=PASSWORD) == user


def test_phone_is_a_login_too():
    user = UserFactory(phone="+8613800138000")

    assert authenticate(username="+8613800138000", password=PASSWORD) == user
    # typed with the spaces and dashes people use; stored without them
    assert authenticate(username="+86 138-0013 8000", password=PASSWORD) == user


def test_wrong_password_or_unknown_login_fails():
    UserFactory(email="a@example.com")

    assert authenticate(username="a@example.com", password="nope") is None
    assert authenticate(username="nobody@example.com", password=PASSWORD) is None
    assert authenticate(username="", password=PASSWORD) is None


def test_inactive_user_cannot_log_in():
    UserFactory(email="gone@example.com", is_active=False)

    assert authenticate(username="gone@example.com", password=PASSWORD) is None


def test_email_is_unique_regardless_of_case():
    UserFactory(email="dup@example.com")

    with pytest.raises(IntegrityError), transaction.atomic():
        User.objects.bulk_create([User(email="DUP@example.com")])


def test_superuser_command_shape():
    admin = User.objects.create_superuser("boss@example.com", PASSWORD)

    assert admin.is_staff and admin.is_superuser
    with pytest.raises(ValueError):
        User.objects.create_superuser("x@example.com", PASSWORD, is_staff=False)
