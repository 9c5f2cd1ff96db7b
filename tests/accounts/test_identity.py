"""A person's identity (issue #24): captured once and verified, encrypted at rest with keys from the settings (no
plaintext anywhere in the database, rotation keeps reads working), masked everywhere, readable in full only with the
finance permission and every full read audited; changed only by staff with a reason; one ID for one person."""

import pytest
from cryptography.fernet import Fernet
from django.contrib.auth.models import Group, Permission
from django.core.exceptions import PermissionDenied
from django.core.management import call_command
from django.db import connection

from accounts.identity import (
    IdentityError,
    identities_reencrypt,
    identity_capture,
    identity_change,
    identity_masked,
    identity_name_matches,
    identity_register_business,
    identity_reveal,
    identity_set_status,
    identity_verify,
)
from accounts.models import Identity, IdentityEvent
from core import encryption
from core.id_verification import IdVerificationUnavailable
from staff.groups import FINANCE, GROUP_PERMISSIONS, SUPPORT
from tests.factories import UserFactory, resident_id

pytestmark = pytest.mark.django_db

NAME = "欧阳娜娜"
NUMBER = "11010519491231002X"


@pytest.fixture(autouse=True)
def _console_verifier(settings):
    settings.IDENTITY_VERIFIER = "core.id_verification.ConsoleIdVerifier"


def _capture(user=None, *, name=NAME, number=NUMBER, id_type="resident_id"):
    return identity_capture(user=user or UserFactory(), id_type=id_type, legal_name=name, id_number=number)


def _staff(*permissions: str):
    user = UserFactory(is_staff=True)
    for permission in permissions:
        app_label, codename = permission.split(".")
        user.user_permissions.add(Permission.objects.get(content_type__app_label=app_label, codename=codename))
    return type(user).objects.get(pk=user.pk)  # fresh permission cache


def _database_dump() -> str:
    """Every row of every table, as text: what a stolen database backup would show."""
    rows = []
    with connection.cursor() as cursor:
        for table in connection.introspection.table_names():
            cursor.execute(f"SELECT * FROM {connection.ops.quote_name(table)}")  # noqa: S608 - table names from Django
            rows.extend(repr(row) for row in cursor.fetchall())
    return "\n".join(rows)


def test_a_capture_is_verified_and_stored_encrypted_with_nothing_in_clear():
    identity = _capture()
    assert identity.status == Identity.Status.VERIFIED
    assert identity.verified_at is not None
    dump = _database_dump()
    for secret in (NAME, NUMBER, NUMBER.lower(), NUMBER[6:14], "娜娜"):
        assert secret not in dump, secret
    assert identity.legal_name_encrypted.startswith("gAAAAA")  # a Fernet token
    assert encryption.decrypt(identity.id_number_encrypted) == NUMBER


def test_an_invalid_id_number_is_refused_and_nothing_is_stored():
    with pytest.raises(IdentityError) as refused:
        _capture(number="110105194912310021")
    assert "check digit" in refused.value.message_dict["id_number"][0]
    with pytest.raises(IdentityError) as no_name:
        _capture(name="  ")
    assert "legal_name" in no_name.value.message_dict
    assert Identity.objects.count() == 0


def test_an_identity_is_captured_once_and_one_id_belongs_to_one_person():
    user = UserFactory()
    _capture(user)
    with pytest.raises(IdentityError) as again:
        _capture(user, number=resident_id(7))
    assert again.value.code == "already_captured"
    with pytest.raises(IdentityError) as taken:
        _capture(UserFactory(), number=NUMBER.lower())  # the same number typed in lower case
    assert "already registered" in taken.value.message_dict["id_number"][0]
    assert Identity.objects.count() == 1


def test_a_mismatch_fails_with_the_reason_and_other_documents_wait_for_staff():
    failed = _capture(name="Xu Mismatch")  # the console verifier's mismatch
    assert (failed.status, failed.status_reason) == (Identity.Status.FAILED, "name and ID number do not match")
    passport = _capture(id_type="passport", number="E12345678")
    assert passport.status == Identity.Status.PENDING
    assert "staff" in passport.status_reason


def test_an_unavailable_provider_leaves_it_pending_and_asking_again_verifies(settings, monkeypatch):
    def unavailable(**values):
        raise IdVerificationUnavailable("down", code="-4")

    monkeypatch.setattr("accounts.identity.id_verify", unavailable)
    identity = _capture()
    assert (identity.status, identity.status_reason) == (Identity.Status.PENDING, "provider: -4")
    monkeypatch.undo()
    assert identity_verify(identity=identity).status == Identity.Status.VERIFIED
    kinds = list(identity.events.values_list("kind", "to_status"))
    assert kinds == [("captured", "unverified"), ("checked", "pending"), ("checked", "verified")]


def test_shown_masked():
    masked = identity_masked(_capture())
    assert (masked.name, masked.number) == ("欧***", "110***********002X")
    event = IdentityEvent.objects.get(kind="captured")
    assert event.detail == {"name": "欧***", "number": "110***********002X", "id_type": "resident_id"}


def test_a_full_read_needs_the_finance_permission_and_is_audited():
    identity = _capture()
    for nobody in (UserFactory(), _staff("accounts.view_identity", "accounts.change_identity")):
        with pytest.raises(PermissionDenied):
            identity_reveal(identity=identity, actor=nobody)
    assert not IdentityEvent.objects.filter(kind="revealed").exists()
    finance = _staff("accounts.view_full_identity")
    assert identity_reveal(identity=identity, actor=finance, reason="ticket 42") == (NAME, NUMBER)
    event = IdentityEvent.objects.get(kind="revealed")
    assert (event.actor, event.reason, event.detail) == (finance, "ticket 42", {})


def test_the_finance_group_holds_the_full_read_permission_and_support_does_not():
    call_command("staff_groups", verbosity=0)
    assert "accounts.view_full_identity" in GROUP_PERMISSIONS[FINANCE]
    finance = UserFactory(is_staff=True)
    finance.groups.add(Group.objects.get(name=FINANCE))
    support = UserFactory(is_staff=True)
    support.groups.add(Group.objects.get(name=SUPPORT))
    assert finance.has_perm("accounts.view_full_identity") and finance.has_perm("accounts.change_identity")
    assert support.has_perm("accounts.view_identity") and not support.has_perm("accounts.view_full_identity")


def test_staff_change_an_identity_only_with_a_reason_and_it_is_verified_again():
    identity = _capture(name="Xu Typo")
    staff = _staff("accounts.change_identity")
    with pytest.raises(IdentityError) as no_reason:
        identity_change(identity=identity, actor=staff, reason=" ", id_type="resident_id", legal_name=NAME,
                        id_number=NUMBER)  # fmt: skip
    assert "reason" in no_reason.value.message_dict
    changed = identity_change(identity=identity, actor=staff, reason="typo, ticket 7", id_type="resident_id",
                              legal_name=NAME, id_number=NUMBER)  # fmt: skip
    assert changed.status == Identity.Status.VERIFIED
    event = IdentityEvent.objects.get(kind="changed")
    assert (event.actor, event.reason, event.from_status) == (staff, "typo, ticket 7", "failed")
    assert event.detail["before"]["name"] == "X******" and event.detail["after"]["name"] == "欧***"
    assert NAME not in repr(event.detail) and NUMBER not in repr(event.detail)


def test_staff_set_a_documents_status_with_a_reason():
    identity = _capture(id_type="passport", number="E12345678")
    staff = _staff("accounts.change_identity")
    with pytest.raises(IdentityError):
        identity_set_status(identity=identity, actor=staff, status="verified", reason="")
    identity = identity_set_status(identity=identity, actor=staff, status="verified", reason="passport seen")
    assert identity.status == Identity.Status.VERIFIED
    assert IdentityEvent.objects.filter(kind="status", actor=staff, reason="passport seen").exists()


def test_rotation_keeps_reads_working_and_reencrypts_with_the_newest_key(settings):
    # given identities written under the old key
    old_key = settings.IDENTITY_KEYS[0]
    first = _capture()
    second = _capture(name="李雷", number=resident_id(3))
    old_tokens = {first.pk: first.id_number_encrypted, second.pk: second.id_number_encrypted}

    # when a new key goes in front: reads keep working before any row is re-encrypted
    new_key = Fernet.generate_key().decode()
    settings.IDENTITY_KEYS = [new_key, old_key]
    assert identity_masked(Identity.objects.get(pk=first.pk)).number == "110***********002X"

    # and the command re-encrypts every row with the new key (a second run has nothing to do)
    call_command("identity_reencrypt", verbosity=0)
    assert identities_reencrypt() == 0

    # then the old key can go: the rows open with the new key alone, and say the same
    settings.IDENTITY_KEYS = [new_key]
    for identity in Identity.objects.all():
        assert identity.id_number_encrypted != old_tokens[identity.pk]
        Fernet(new_key.encode()).decrypt(identity.id_number_encrypted.encode())
    assert identity_reveal(identity=Identity.objects.get(pk=first.pk), actor=_staff("accounts.view_full_identity")) == (
        NAME,
        NUMBER,
    )
    assert NAME not in _database_dump()


def test_a_dropped_key_cannot_read_and_says_so(settings):
    identity = _capture()
    settings.IDENTITY_KEYS = [Fernet.generate_key().decode()]
    with pytest.raises(encryption.DecryptionError):
        identity_masked(identity)


def test_a_new_index_key_is_applied_by_reindexing(settings):
    identity = _capture()
    settings.IDENTITY_INDEX_KEY = "a-new-index-key"
    assert identities_reencrypt(reindex=True) == 1
    identity.refresh_from_db()
    assert identity.id_number_index == encryption.blind_index(f"resident_id:{NUMBER}")
    with pytest.raises(IdentityError):
        _capture(UserFactory(), number=NUMBER)


def test_names_match_as_payment_rails_compare_them():
    identity = _capture(name="Wang Fang", number=resident_id(5))
    assert identity_name_matches(identity, " wang  fang ")
    assert identity_name_matches(identity, "ＷＡＮＧ ＦＡＮＧ")  # full-width
    assert not identity_name_matches(identity, "Wang Fan")


def test_a_business_payee_needs_a_valid_credit_code():
    identity = _capture()
    with pytest.raises(IdentityError) as refused:
        identity_register_business(identity=identity, company_name="某某科技有限公司", credit_code="91350100M000100Y44")
    assert "check character" in refused.value.message_dict["credit_code"][0]
    identity = identity_register_business(
        identity=identity, company_name="某某科技有限公司", credit_code="91350100m000100y43"
    )
    assert (identity.payee_kind, identity.credit_code) == ("business", "91350100M000100Y43")
    with pytest.raises(IdentityError):
        identity_register_business(identity=_capture(UserFactory(), name="李雷", number=resident_id(9)),
                                   company_name="Other", credit_code="91350100M000100Y43")  # fmt: skip
