"""Identities in the admin (issue #24): masked for every staff member; the reveal action only for the finance
permission, audited; the change action requires a reason; every step in the audit log."""

import pytest
from django.contrib.admin import helpers
from django.contrib.auth.models import Permission
from django.urls import reverse

from accounts.identity import identity_capture, identity_register_business
from accounts.models import Identity, IdentityEvent
from tests.factories import UserFactory, resident_id

pytestmark = pytest.mark.django_db

CHANGELIST = reverse("admin:accounts_identity_changelist")
NAME = "欧阳娜娜"
NUMBER = "11010519491231002X"


@pytest.fixture(autouse=True)
def _console_verifier(settings):
    settings.IDENTITY_VERIFIER = "core.id_verification.ConsoleIdVerifier"


@pytest.fixture
def identity():
    return identity_capture(user=UserFactory(), id_type="resident_id", legal_name=NAME, id_number=NUMBER)


def _staff_client(client, *codenames: str):
    user = UserFactory(is_staff=True)
    user.user_permissions.set(Permission.objects.filter(content_type__app_label="accounts", codename__in=codenames))
    client.force_login(user)
    return user


def _action(client, action: str, identity, **data):
    return client.post(CHANGELIST, {"action": action, helpers.ACTION_CHECKBOX_NAME: [identity.pk], **data})


def test_staff_see_masked_values_on_the_list_and_the_page(client, identity):
    _staff_client(client, "view_identity", "change_identity")
    for url in (CHANGELIST, reverse("admin:accounts_identity_change", args=[identity.pk])):
        page = client.get(url).content.decode()
        assert "欧***" in page and "110***********002X" in page
        assert NAME not in page and NUMBER not in page


def test_reveal_is_refused_without_the_finance_permission_and_writes_nothing(client, identity):
    _staff_client(client, "view_identity", "change_identity")
    page = client.get(CHANGELIST).content.decode()
    assert "reveal_identities" not in page
    response = _action(client, "reveal_identities", identity, reason="curious", apply="Reveal")
    assert NAME not in response.content.decode()
    assert not IdentityEvent.objects.filter(kind="revealed").exists()


def test_finance_reveals_with_a_reason_and_the_read_is_audited(client, identity):
    finance = _staff_client(client, "view_identity", "view_full_identity")
    # the first step asks for the reason and shows nothing
    asked = _action(client, "reveal_identities", identity)
    assert asked.status_code == 200 and NAME not in asked.content.decode()
    assert not IdentityEvent.objects.filter(kind="revealed").exists()
    # with the reason: the full values, not cached, and one audit row
    shown = _action(client, "reveal_identities", identity, reason="tax report query 12", apply="Reveal")
    page = shown.content.decode()
    assert NAME in page and NUMBER in page
    assert "no-store" in shown["Cache-Control"]
    event = IdentityEvent.objects.get(kind="revealed")
    assert (event.actor, event.reason, event.identity) == (finance, "tax report query 12", identity)


def test_change_needs_a_reason_and_is_audited(client, identity):
    staff = _staff_client(client, "view_identity", "change_identity")
    new_number = resident_id(8)
    values = {"id_type": "resident_id", "legal_name": "欧阳娜", "id_number": new_number}
    without = _action(client, "change_identity", identity, apply="Change", **values)
    assert without.status_code == 400  # the form again, with the error
    assert not IdentityEvent.objects.filter(kind="changed").exists()
    bad = _action(client, "change_identity", identity, apply="Change", reason="typo", **{**values, "id_number": "1"})
    assert "id_number" in bad.context["form"].errors
    assert (
        _action(client, "change_identity", identity, apply="Change", reason="typo, ticket 9", **values).status_code
        == 302
    )
    event = IdentityEvent.objects.get(kind="changed")
    assert (event.actor, event.reason) == (staff, "typo, ticket 9")
    identity.refresh_from_db()
    assert identity.status == Identity.Status.VERIFIED


def test_a_document_is_marked_verified_with_a_reason(client):
    passport = identity_capture(user=UserFactory(), id_type="passport", legal_name="Anna Smith", id_number="X1234567")
    assert passport.status == Identity.Status.PENDING
    staff = _staff_client(client, "view_identity", "change_identity")
    _action(client, "mark_verified", passport)
    passport.refresh_from_db()
    assert passport.status == Identity.Status.PENDING  # no reason yet: nothing changed
    _action(client, "mark_verified", passport, reason="passport seen at the office", apply="Mark verified")
    passport.refresh_from_db()
    assert passport.status == Identity.Status.VERIFIED
    assert IdentityEvent.objects.filter(kind="status", actor=staff).exists()


def test_every_step_is_in_the_audit_log_with_masked_values_only(client, identity):
    auditor = UserFactory(is_staff=True)
    auditor.user_permissions.add(Permission.objects.get(codename="view_audit_log"))
    finance = _staff_client(client, "view_identity", "view_full_identity")
    _action(client, "reveal_identities", identity, reason="check", apply="Reveal")
    client.force_login(auditor)
    response = client.get(reverse("staff:audit_log"), {"object_type": "identity", "object_id": identity.user_id})
    kinds = [item["row"].kind for item in response.context["rows"]]
    assert kinds == ["identity.revealed", "identity.checked", "identity.captured"]
    page = response.content.decode()
    assert "110***********002X" in page and NAME not in page and NUMBER not in page
    assert response.context["rows"][0]["row"].actor_id == finance.pk


def test_a_business_payee_is_set_back_to_an_individual_only_by_staff_with_a_reason(client, identity):
    # given a business payee
    identity_register_business(identity=identity, company_name="某某科技有限公司", credit_code="91350100M000100Y43")
    # staff who may only look are not offered the action
    _staff_client(client, "view_identity")
    _action(client, "set_individual", identity, apply="1", reason="ticket 7")
    identity.refresh_from_db()
    assert identity.payee_kind == "business"
    # staff who may change ask with an empty reason: asked again, nothing changes
    staff = _staff_client(client, "view_identity", "change_identity")
    response = _action(client, "set_individual", identity, apply="1", reason=" ")
    assert response.status_code == 400 and "Set back to an individual payee" in response.content.decode()
    identity.refresh_from_db()
    assert identity.payee_kind == "business"
    # with a reason: an individual, the company cleared, the change audited with the company before
    _action(client, "set_individual", identity, apply="1", reason="company deregistered (ticket 7)")
    identity.refresh_from_db()
    assert (identity.payee_kind, identity.company_name, identity.credit_code) == ("individual", "", "")
    event = IdentityEvent.objects.get(identity=identity, kind="changed")
    assert event.actor == staff and event.reason == "company deregistered (ticket 7)"
    assert event.detail["before"] == {
        "payee_kind": "business",
        "company_name": "某某科技有限公司",
        "credit_code": "91350100M000100Y43",
    }
