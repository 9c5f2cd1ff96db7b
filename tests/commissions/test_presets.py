"""Jurisdiction presets (issue #25, docs/compliance.md#jurisdiction-presets): chosen at set-up (COMPLIANCE_PRESET),
recorded on every policy version, and a policy or plan that breaks the preset cannot be saved or activated.

The tests' default preset is international (tests/conftest.py); each test here chooses its own. The database starts
as a fresh install migrated under the default preset, china_two_levels: policy v1 (2 levels) and plan v1 (80/20).
"""

import importlib
import os
import subprocess
import sys
from decimal import Decimal

import pytest
from django.apps import apps
from django.conf import settings as django_settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.urls import reverse
from django.utils import timezone

from commissions.approvals import policy_publish_request
from commissions.calculations import HARD_MAX_LEVELS, HARD_MAX_PAYOUT_RATIO
from commissions.models import CommissionPlan, CompliancePolicy
from commissions.presets import PRESET_CODES, PRESETS, preset_get
from commissions.services import CommissionError, plan_activate, plan_create, policy_in_force, policy_publish
from staff.audit import AuditFilters, audit_rows
from staff.reports import compliance_report
from tests.factories import UserFactory, second_approves

pytestmark = pytest.mark.django_db

D = Decimal
POLICY_ADD = reverse("admin:commissions_compliancepolicy_add")
PLAN_ADD = reverse("admin:commissions_commissionplan_add")
REPORT = reverse("staff:compliance_report")
MIGRATION = importlib.import_module("commissions.migrations.0015_compliance_presets")


def policies() -> list[tuple]:
    return list(CompliancePolicy.objects.order_by("version").values_list("version", "max_levels", "preset"))


def plans() -> list[tuple]:
    return list(CommissionPlan.objects.order_by("version").values_list("version", "level2_rate", "is_activated"))


def one_level_plan(actor) -> CommissionPlan:
    return plan_activate(plan=plan_create(actor=actor, name="Sharer only", rates=(D("0.8000"),)), actor=actor)


# --- the presets ---------------------------------------------------------------------------------------------------


def test_each_preset_allows_its_levels_and_never_more_than_the_hard_ceilings():
    assert {code: preset.max_levels for code, preset in PRESETS.items()} == {
        "china_strict": 1,
        "china_two_levels": 2,
        "international": HARD_MAX_LEVELS,
    }
    assert all(preset.max_levels <= HARD_MAX_LEVELS for preset in PRESETS.values())
    assert {preset.max_payout_ratio for preset in PRESETS.values()} == {HARD_MAX_PAYOUT_RATIO}


def test_two_levels_in_china_carry_a_warning_citing_the_banan_case_and_article_7():
    warning = str(PRESETS["china_two_levels"].warning)

    assert "Banan 2022" in warning
    assert "13 % + 3 %" in warning and "¥5,000" in warning
    assert "团队计酬" in warning and "《禁止传销条例》 art. 7(3)" in warning
    assert not PRESETS["china_strict"].warning and not PRESETS["international"].warning


def test_an_unknown_preset_is_refused():
    with pytest.raises(ValueError, match="unknown compliance preset"):
        preset_get("anything_goes")


def test_settings_refuse_an_unknown_preset_at_start_up():
    # A typo in the deployment's preset stops the process instead of running under some other rule.
    env = {**os.environ, "COMPLIANCE_PRESET": "china_loose", "DJANGO_SETTINGS_MODULE": "config.settings"}
    result = subprocess.run(
        [sys.executable, "-c", "import django; django.setup()"],
        env=env,
        capture_output=True,
        text=True,
        cwd=django_settings.BASE_DIR,
        timeout=60,
    )

    assert result.returncode != 0
    assert "COMPLIANCE_PRESET must be china_strict, china_two_levels or international" in result.stderr
    assert PRESET_CODES == ("china_strict", "china_two_levels", "international")


# --- a policy that breaks the preset cannot be saved ---------------------------------------------------------------


def test_policy_publish_records_the_preset_it_was_published_under(settings, staff_user):
    settings.COMPLIANCE_PRESET = "china_two_levels"

    policy = policy_publish(actor=staff_user, note="tighter ratio", max_payout_ratio=D("0.2500"))

    assert (policy.version, policy.max_levels, policy.preset) == (2, 2, "china_two_levels")


@pytest.mark.parametrize(("preset", "levels"), [("china_strict", 2), ("china_strict", 3), ("china_two_levels", 3)])
def test_policy_publish_refuses_more_levels_than_the_preset_and_changes_nothing(settings, staff_user, preset, levels):
    settings.COMPLIANCE_PRESET = preset
    before = policies()

    with pytest.raises(CommissionError) as refused:
        policy_publish(actor=staff_user, note="more levels", max_levels=levels)

    assert "max_levels" in refused.value.message_dict
    assert str(PRESETS[preset].label) in " ".join(refused.value.messages)
    assert "COMPLIANCE_PRESET" in " ".join(refused.value.messages)
    assert policies() == before


def test_international_allows_the_code_ceiling_of_three(settings, staff_user):
    settings.COMPLIANCE_PRESET = "international"

    policy = policy_publish(actor=staff_user, note="three", max_levels=3)

    assert (policy.max_levels, policy.preset) == (3, "international")


def test_china_strict_takes_a_one_level_plan_then_a_one_level_policy(settings, staff_user):
    settings.COMPLIANCE_PRESET = "china_strict"
    # given: the fresh install's policy v1 pays two levels and plan v1 two: the plan goes first
    with pytest.raises(CommissionError, match="would break this policy"):
        policy_publish(actor=staff_user, note="strict", max_levels=1)
    one_level_plan(staff_user)

    policy = policy_publish(actor=staff_user, note="strict", max_levels=1)

    assert (policy.version, policy.max_levels, policy.preset) == (2, 1, "china_strict")


def test_the_database_refuses_a_version_above_the_preset_it_records():
    with pytest.raises(IntegrityError), transaction.atomic():
        CompliancePolicy.objects.create(version=99, max_levels=2, preset="china_strict", note="straight to the db")

    with pytest.raises(IntegrityError), transaction.atomic():
        CompliancePolicy.objects.create(version=99, max_levels=3, preset="china_two_levels", note="straight to the db")
    assert not CompliancePolicy.objects.filter(version=99).exists()


def test_model_validation_refuses_a_version_above_its_preset():
    policy = CompliancePolicy(version=99, max_levels=2, preset="china_strict", is_active=False)

    with pytest.raises(ValidationError):
        policy.full_clean()


def test_the_admin_form_shows_the_preset_error_on_max_levels(settings, client, staff_user):
    settings.COMPLIANCE_PRESET = "china_two_levels"
    client.force_login(staff_user)
    data = {
        "max_levels": "3",
        "max_total_rate": "1.0000",
        "max_payout_ratio": "0.3000",
        "ineligible_share": "platform",
        "note": "three levels",
    }

    response = client.post(POLICY_ADD, data)

    assert response.status_code == 200
    errors = response.context["form"].errors["max_levels"]
    assert any("China (two levels)" in error and "at most 2" in error for error in errors)
    assert policies() == [(1, 2, "china_two_levels")]


def test_the_policy_form_says_which_preset_binds_it_and_its_warning(settings, client, staff_user):
    settings.COMPLIANCE_PRESET = "china_two_levels"
    client.force_login(staff_user)

    page = client.get(POLICY_ADD).content.decode()

    assert "China (two levels)" in page
    assert "Banan 2022" in page


# --- a plan that breaks the preset cannot be saved or activated --------------------------------------------------


def test_plan_create_refuses_more_levels_than_the_preset_even_where_the_policy_allows_them(settings, staff_user):
    # given: policy v1 (before the preset was tightened) allows 2 levels; the deployment is now china_strict
    settings.COMPLIANCE_PRESET = "china_strict"
    before = plans()

    with pytest.raises(CommissionError) as refused:
        plan_create(actor=staff_user, name="Two levels", rates=(D("0.8000"), D("0.2000")))

    assert "China (strict) compliance preset, which allows at most 1" in " ".join(refused.value.messages)
    assert plans() == before


def test_plan_activate_refuses_a_draft_that_breaks_the_preset(settings, staff_user):
    # given: a two-level draft made under china_two_levels, then the deployment set up as china_strict
    settings.COMPLIANCE_PRESET = "china_two_levels"
    draft = plan_create(actor=staff_user, name="Two levels", rates=(D("0.7000"), D("0.3000")))
    settings.COMPLIANCE_PRESET = "china_strict"

    with pytest.raises(CommissionError, match="China \\(strict\\)"):
        plan_activate(plan=draft, actor=staff_user)

    draft.refresh_from_db()
    assert not draft.is_activated


def test_the_plan_admin_form_shows_the_preset_error(settings, client, staff_user):
    settings.COMPLIANCE_PRESET = "china_strict"
    client.force_login(staff_user)

    response = client.post(PLAN_ADD, {"name": "Two", "level1_rate": "0.8000", "level2_rate": "0.2000"})

    assert response.status_code == 200
    assert "China (strict) compliance preset" in response.content.decode()
    assert plans() == [(1, D("0.2000"), True)]


def test_four_eyes_approval_of_a_policy_is_refused_if_the_preset_was_tightened_meanwhile(settings, staff_user):
    # given: a request for a two-level version asked under china_two_levels
    settings.COMPLIANCE_PRESET = "china_two_levels"
    values = {
        "max_levels": 2,
        "max_total_rate": D("1.0000"),
        "max_payout_ratio": D("0.2500"),
        "self_purchase_earns": False,
        "ineligible_share": "platform",
    }
    policy, request = policy_publish_request(actor=staff_user, note="lower ratio", values=values)
    assert policy is None and request is not None
    # when: the deployment is set up as china_strict before a second person approves
    settings.COMPLIANCE_PRESET = "china_strict"
    second_approves(approver=UserFactory(is_staff=True, is_superuser=True))

    # then: it failed, nothing was published
    request.refresh_from_db()
    assert request.status == request.Status.FAILED
    assert policy_in_force().version == 1


# --- set-up: a fresh install is put under the preset chosen ---------------------------------------------------------


def test_a_fresh_install_set_up_as_china_strict_starts_with_one_paid_level(settings):
    # given: the fresh install's seeded policy and plan (as migration 0015 found them)
    CompliancePolicy.objects.filter(version=1).update(preset="")
    settings.COMPLIANCE_PRESET = "china_strict"

    MIGRATION.put_fresh_install_under_preset(apps, None)

    policy = CompliancePolicy.objects.get(version=1)
    plan = CommissionPlan.objects.get(version=1)
    assert (policy.max_levels, policy.preset) == (1, "china_strict")
    assert (plan.rates, plan.name_en, plan.name_zh_hans) == (
        (D("0.8000"),),
        "Default: 80 % to the sharer",
        "默认：分享者得 80%",
    )


def test_an_install_with_history_is_not_rewritten(settings, staff_user):
    # given: a second policy version exists (history)
    policy_publish(actor=staff_user, note="history", max_payout_ratio=D("0.2500"))
    CompliancePolicy.objects.update(preset="")
    settings.COMPLIANCE_PRESET = "china_strict"
    before = policies(), plans()

    MIGRATION.put_fresh_install_under_preset(apps, None)

    assert (policies(), plans()) == before


@pytest.mark.skipif("COMPLIANCE_PRESET" in os.environ, reason="the environment chose the test database's preset")
def test_a_fresh_install_is_set_up_under_china_two_levels_by_default():
    # The default of a fresh install (and of `make run`'s demo, whose plan pays two levels): the test database was
    # migrated as one.
    assert policies() == [(1, 2, "china_two_levels")]
    assert plans() == [(1, D("0.2000"), True)]


# --- the compliance report -------------------------------------------------------------------------------------------


def test_the_report_shows_the_preset_and_fails_when_the_policy_in_force_breaks_it(settings):
    # given: set up as china_strict, policy v1 and plan v1 still pay two levels
    settings.COMPLIANCE_PRESET = "china_strict"
    today = timezone.localdate()

    report = compliance_report(date_from=today, date_to=today)

    status = report.preset_status
    assert status.preset.code == "china_strict"
    assert [(rules.kind, rules.version, rules.levels, rules.complies) for rules in status.rules] == [
        ("policy", 1, 2, False),
        ("plan", 1, 2, False),
    ]
    check = next(check for check in report.checks if check.code == "preset")
    assert not check.passed and check.offender_count == 2
    assert "policy v1 allows 2 levels" in check.evidence and "plan v1 pays 2 levels" in check.evidence
    assert not report.all_checks_passed


def test_the_report_page_shows_the_two_level_warning_and_compliance(settings, client, staff_user):
    settings.COMPLIANCE_PRESET = "china_two_levels"
    client.force_login(staff_user)

    page = client.get(REPORT).content.decode()

    assert "Jurisdiction preset" in page
    assert "China (two levels)" in page
    assert "Chongqing Banan 2022" in page
    assert "The policy and plans in force keep within the preset." in page
    assert "《禁止传销条例》" in page


def test_the_audit_log_shows_the_preset_and_qualification_of_a_version(settings, staff_user):
    settings.COMPLIANCE_PRESET = "china_two_levels"
    policy_publish(actor=staff_user, note="qualified uplines", upline_min_own_sales=2, upline_qualification_days=60)

    rows = audit_rows(AuditFilters(kinds=frozenset({"policy.published"})))

    detail = next(row.detail for row in rows if row.object_id == "2")
    assert "preset=china_two_levels" in detail
    assert "upline_min_own_sales=2 upline_qualification_days=60" in detail
