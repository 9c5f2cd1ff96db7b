"""The payout ratio's hard ceiling of 0.30 (issue #19, SPEC §7): refused by the service, the staff forms, the
simulator, the model and the database; what the migration does with versions published above it; and the ledger
checker on external lines split before the payout cap became exact."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, connection, transaction
from django.db.migrations.executor import MigrationExecutor
from django.urls import reverse
from django.utils import timezone

from commissions.calculations import HARD_MAX_PAYOUT_RATIO
from commissions.models import CommissionEntry as Entry
from commissions.models import CompliancePolicy, PlanSimulation
from commissions.services import CommissionError, policy_in_force, policy_publish
from commissions.simulation import plan_simulation_create
from networks import services as networks_services
from networks.connectors.base import OrderStatus, ReportedOrder
from networks.models import Network
from networks.services import tracking_id_for
from staff.audit import PolicySource
from staff.ledger_check import check_external_lines_reconcile
from staff.reports import compliance_report
from tests.factories import MemberFactory, after_commit

pytestmark = pytest.mark.django_db

D = Decimal
CEILING_MESSAGE = (
    "The max payout ratio can be at most 0.30 (30 % of a line's net amount): that is the legal ceiling, and no "
    "policy may pay members more."
)
POLICY_ADD = reverse("admin:commissions_compliancepolicy_add")
SIMULATION_CREATE = reverse("staff:simulation_create")


def policies() -> list[tuple]:
    return list(CompliancePolicy.objects.order_by("pk").values_list("pk", "version", "is_active", "max_payout_ratio"))


@pytest.fixture
def admin_client(client, staff_user):
    client.force_login(staff_user)
    return client


def test_the_hard_ceiling_is_thirty_percent():
    assert D("0.3000") == HARD_MAX_PAYOUT_RATIO


# --- refused everywhere -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("ratio", [D("0.3001"), D("0.5000"), D("0.9000"), D("1.0000")])
def test_policy_publish_refuses_a_payout_ratio_above_the_ceiling_and_changes_nothing(staff_user, ratio):
    before = policies()

    with pytest.raises(CommissionError) as refused:
        policy_publish(actor=staff_user, note="members get most of the sale", max_payout_ratio=ratio)

    assert refused.value.message_dict == {"max_payout_ratio": [CEILING_MESSAGE]}
    assert policies() == before
    assert policy_in_force().version == 1


def test_policy_publish_accepts_exactly_the_ceiling(staff_user):
    policy_publish(actor=staff_user, note="lower", max_payout_ratio=D("0.2000"))

    policy = policy_publish(actor=staff_user, note="back to the ceiling", max_payout_ratio=D("0.3000"))

    assert (policy.version, policy.max_payout_ratio, policy.is_active) == (3, D("0.3000"), True)


def test_the_policy_form_in_admin_refuses_ninety_percent_with_the_reason(admin_client):
    before = policies()

    response = admin_client.post(
        POLICY_ADD,
        {
            "max_levels": "2",
            "max_total_rate": "1.0000",
            "max_payout_ratio": "0.9000",
            "ineligible_share": "platform",
            "note": "members get 90 %",
        },
    )

    assert response.status_code == 200
    assert response.context["form"].errors == {"max_payout_ratio": [CEILING_MESSAGE]}
    assert CEILING_MESSAGE.replace("'", "&#x27;") in response.content.decode()
    assert policies() == before


def test_the_database_refuses_a_policy_above_the_ceiling():
    before = policies()

    with pytest.raises(IntegrityError), transaction.atomic():
        CompliancePolicy.objects.create(version=99, max_payout_ratio=D("0.9000"), note="straight to the database")
    with pytest.raises(IntegrityError), transaction.atomic():
        CompliancePolicy.objects.filter(is_active=True).update(max_payout_ratio=D("0.3001"))

    assert policies() == before


def test_the_database_keeps_a_published_value_only_above_the_ceiling():
    before = policies()

    with pytest.raises(IntegrityError), transaction.atomic():
        CompliancePolicy.objects.filter(is_active=True).update(max_payout_ratio_published=D("0.2000"))

    assert policies() == before
    assert CompliancePolicy.objects.filter(max_payout_ratio_published__isnull=False).count() == 0


def test_model_validation_refuses_a_policy_above_the_ceiling():
    policy = CompliancePolicy(version=99, max_payout_ratio=D("0.3500"))

    with pytest.raises(ValidationError) as refused:
        policy.full_clean()

    assert list(refused.value.message_dict) == ["max_payout_ratio"]


def test_the_simulator_refuses_a_draft_policy_above_the_ceiling(staff_user, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True), pytest.raises(CommissionError) as refused:
        plan_simulation_create(
            actor=staff_user,
            name="generous",
            rates=(D("0.5000"),),
            policy_overrides={"max_payout_ratio": "0.9000"},
            date_from="2026-03-01",
            date_to="2026-03-31",
        )

    assert refused.value.message_dict == {"max_payout_ratio": [CEILING_MESSAGE]}
    assert not PlanSimulation.objects.exists()


def test_the_simulator_form_refuses_a_draft_policy_above_the_ceiling(admin_client):
    today = timezone.localdate().isoformat()

    response = admin_client.post(
        SIMULATION_CREATE,
        {
            "name": "generous",
            "level1_rate": "0.6000",
            "max_payout_ratio": "0.9000",
            "date_from": today,
            "date_to": today,
        },
    )

    assert response.status_code == 200
    assert response.context["form"].errors == {"max_payout_ratio": [CEILING_MESSAGE]}
    assert not PlanSimulation.objects.exists()


# --- the migration -----------------------------------------------------------------------------------------------

BEFORE = [("commissions", "0007_entries_of_external_orders")]
AFTER = [("commissions", "0008_payout_ratio_ceiling")]


@pytest.mark.django_db(transaction=True)
def test_the_migration_lowers_a_version_above_the_ceiling_and_keeps_what_it_was_published_with():
    # given: the schema before the ceiling, with a version published at 90 % in force (as happened)
    executor = MigrationExecutor(connection)
    executor.migrate(BEFORE)
    old_state = executor.loader.project_state(BEFORE).apps
    OldPolicy = old_state.get_model("commissions", "CompliancePolicy")
    # The default v1 a data migration wrote, unless an earlier transactional test flushed it: then as it wrote it.
    OldPolicy.objects.get_or_create(version=1, defaults={"is_active": True, "effective_from": timezone.now()})
    OldPolicy.objects.filter(is_active=True).update(is_active=False)
    generous = OldPolicy.objects.create(
        version=2, is_active=True, max_payout_ratio=D("0.9000"), effective_from=timezone.now(), note="90 % to members"
    )

    # when
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(AFTER)

    # then: the same version, lowered to the ceiling, its published value kept; the default v1 untouched. Read with
    # the model as of AFTER: a field a later migration adds (issue #22's attribution options) is not there yet.
    AfterPolicy = executor.loader.project_state(AFTER).apps.get_model("commissions", "CompliancePolicy")
    rows = list(
        AfterPolicy.objects.order_by("version").values_list(
            "pk", "version", "is_active", "max_payout_ratio", "max_payout_ratio_published", "note"
        )
    )
    assert rows == [
        (rows[0][0], 1, False, D("0.3000"), None, rows[0][5]),
        (generous.pk, 2, True, D("0.3000"), D("0.9000"), "90 % to members"),
    ]
    in_force = AfterPolicy.objects.get(is_active=True)
    assert (in_force.version, in_force.max_payout_ratio) == (2, D("0.3000"))

    # and reversing restores it
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(BEFORE)
    old_state = executor.loader.project_state(BEFORE).apps
    assert old_state.get_model("commissions", "CompliancePolicy").objects.get(version=2).max_payout_ratio == D("0.9000")
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(executor.loader.graph.leaf_nodes())


def test_a_lowered_version_shows_its_published_value_in_the_report_and_the_audit_log(staff_user):
    policy = CompliancePolicy.objects.get(is_active=True)
    CompliancePolicy.objects.filter(pk=policy.pk).update(max_payout_ratio_published=D("0.9000"))
    policy.refresh_from_db()
    today = timezone.localdate()

    report = compliance_report(date_from=today - timedelta(days=1), date_to=today)

    assert [(row.version, row.max_payout_ratio, row.max_payout_ratio_published) for row in report.policies] == [
        (1, D("0.3000"), D("0.9000"))
    ]
    assert "max_payout_ratio published as 0.9000, lowered to the ceiling" in PolicySource().row(policy).detail


# --- the ledger checker and external lines split before the exact cap ----------------------------------------------


@pytest.fixture
def capped_external_line():
    """An external sale of 10.05 with a commission of 5.03 (50 %): under the default plan and policy the payout cap
    binds, 3.015 exact: 2.41 + 0.60 now, 2.40 + 0.60 under the rule before issue #19."""
    sponsor = MemberFactory()
    sharer = MemberFactory(sponsor=sponsor)
    network = Network.objects.get_or_create(code="sandbox", defaults={"name": "Sandbox network"})[0]
    at = timezone.now() - timedelta(days=1)
    after_commit(networks_services.external_order_record)(
        network=network,
        reported=ReportedOrder(
            external_order_id="TB19", line_id="1", tracking_id=tracking_id_for(network=network, member=sharer).value,
            product_id="P1", title="Tea", quantity=1, paid_amount=D("10.05"), commission=D("5.03"),
            status=OrderStatus.PAID, paid_at=at, updated_at=at,
        ),
        source="sync",
    )  # fmt: skip
    entries = Entry.objects.filter(external_line__external_order_id="TB19")
    assert sorted(entries.values_list("level", "amount", "capped_by")) == [
        (0, D("2.02"), "max_payout_ratio"),
        (1, D("2.41"), "max_payout_ratio"),
        (2, D("0.60"), "max_payout_ratio"),
    ]
    return entries


def test_an_external_line_split_before_the_exact_cap_still_reconciles(capped_external_line):
    # given: the line as the split before issue #19 wrote it
    capped_external_line.filter(level=1).update(amount=D("2.40"))
    capped_external_line.filter(level=0).update(amount=D("2.03"))

    result = check_external_lines_reconcile()

    assert (result.checked, result.violations) == (1, [])


def test_an_external_line_that_is_neither_rule_is_still_found(capped_external_line):
    capped_external_line.filter(level=1).update(amount=D("2.39"))
    capped_external_line.filter(level=0).update(amount=D("2.04"))

    result = check_external_lines_reconcile()

    network_id = Network.objects.get(code="sandbox").pk
    assert result.violations == [
        f"external order {network_id}:TB19/1: level 0 holds 2.04, the split of 5.03 gives 2.02",
        f"external order {network_id}:TB19/1: level 1 holds 2.39, the split of 5.03 gives 2.41",
    ]
