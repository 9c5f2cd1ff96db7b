"""A closed account (accounts.services.user_close, issue #24): no way in is left, the personal fields are empty, the
identity is kept for the retention period and then erased (accounts.identity.identities_erase_due)."""

from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.utils import timezone

from accounts.identity import identities_erase_due, identities_reencrypt, identity_masked
from accounts.models import Identity, IdentityEvent
from accounts.services import token_authenticate, token_create, user_close
from tests.factories import PASSWORD, UserFactory, verified_identity

pytestmark = pytest.mark.django_db


@pytest.fixture
def closed():
    user = UserFactory(phone="+8613800138000")
    verified_identity(user)
    key = token_create(user=user, name="app").key
    email = user.email
    user_close(user=user, retain_until=timezone.now() + timedelta(days=3 * 365))
    user.refresh_from_db()
    return user, email, key


def test_a_closed_account_has_no_way_in(client, closed):
    user, email, key = closed
    assert (user.email, user.phone, user.first_name, user.is_active, user.has_usable_password()) == (
        None,
        None,
        "",
        False,
        False,
    )
    assert token_authenticate(key) is None
    assert client.login(email=email, password=PASSWORD) is False
    # the phone is gone from the account: a code sent to it finds no one to log in (accounts.login_codes)
    assert not get_user_model().objects.filter(phone="+8613800138000").exists()


def test_the_identity_is_kept_then_erased_and_reads_as_empty(closed):
    user, _email, _key = closed
    identity = Identity.objects.get(user=user)
    assert identity_masked(identity).number.startswith("110")  # still there, masked
    assert IdentityEvent.objects.filter(identity=identity, kind=IdentityEvent.Kind.RETAINED).count() == 1

    assert identities_erase_due(now=identity.erase_after + timedelta(seconds=1)) == 1

    identity.refresh_from_db()
    masked = identity_masked(identity)
    assert (masked.name, masked.number) == ("", "")
    assert identities_reencrypt() == 0  # key rotation skips erased rows (nothing to decrypt)


def test_an_account_without_an_identity_closes_too():
    user = UserFactory()
    removed = user_close(user=user, retain_until=timezone.now())
    assert removed["identity_kept_until"] is None
    assert not Identity.objects.filter(user=user).exists()
