"""The ledger's side of an external line moves from `networks.ExternalOrder` to `commissions.ExternalSplit` (issue
#20) and back, values kept: networks.0006 (the mark), networks.0007 (state only), commissions.0009 (the table, the
copy, the columns dropped). Runs on SQLite and on PostgreSQL, whichever DATABASE_URL names."""

from decimal import Decimal

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.utils import timezone

from commissions.models import ExternalSplit
from networks.models import ExternalOrder
from tests.factories import MemberFactory

pytestmark = pytest.mark.django_db(transaction=True)

D = Decimal
MAIN = [("commissions", "0008_payout_ratio_ceiling"), ("networks", "0005_external_listings_move_to_shops")]
MOVED = ("split_commission", "split_status", "revision", "chain", "plan_id", "policy_id")


def _columns(table: str) -> set[str]:
    with connection.cursor() as cursor:
        return {column.name for column in connection.introspection.get_table_description(cursor, table)}


def _migrate(targets) -> MigrationExecutor:
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(targets)
    return executor


def test_the_split_columns_move_to_commissions_and_back_with_their_values():
    latest = MigrationExecutor(connection).loader.graph.leaf_nodes()
    sharer, sponsor = MemberFactory(), MemberFactory()
    try:
        # given: the schema of main before issue #20, with lines split, changed since, never split and unmatched
        executor = _migrate(MAIN)
        old = executor.loader.project_state(MAIN).apps
        Network = old.get_model("networks", "Network")
        Line = old.get_model("networks", "ExternalOrder")
        Plan = old.get_model("commissions", "CommissionPlan")
        Policy = old.get_model("commissions", "CompliancePolicy")
        now = timezone.now()
        plan = Plan.objects.create(version=90, name="test", level1_rate=D("0.8"), level2_rate=D("0.2"),
                                   is_activated=True, effective_from=now)  # fmt: skip
        policy = Policy.objects.create(version=90, effective_from=now)
        network = Network.objects.create(code="migration", name="Migration network")

        def line(number, commission, status, **split):
            return Line.objects.create(
                network=network, external_order_id=number, member_id=split.pop("member_id", sharer.pk),
                paid_amount=D("100.00"), commission=D(commission), status=status, paid_at=now, network_updated_at=now,
                **split,
            )  # fmt: skip

        chain = [[sharer.pk, True], [sponsor.pk, False]]
        written = {
            "split": line("A", "10.00", "confirmed", split_commission=D("10.00"), split_status="confirmed", revision=2,
                          chain=chain, plan=plan, policy=policy),
            "behind": line("B", "8.00", "settled", split_commission=D("10.00"), split_status="confirmed", revision=2,
                           chain=chain, plan=plan, policy=policy),
            "no plan": line("C", "3.00", "paid", split_commission=D("3.00"), split_status="paid", revision=1, chain=[]),
            "unmatched": line("D", "5.00", "paid", member_id=None),
        }  # fmt: skip
        before = {
            name: tuple(Line.objects.filter(pk=row.pk).values_list(*MOVED).get()) for name, row in written.items()
        }
        assert before["unmatched"] == (None, "", 0, None, None, None)

        # when: forwards, to this branch's schema
        _migrate(latest)

        # then: one split record per line ever split, with its values; the columns left networks' table
        assert not _columns("networks_externalorder") & {"split_commission", "split_status", "revision", "chain",
                                                         "plan_id", "policy_id"}  # fmt: skip
        records = {
            name: tuple(ExternalSplit.objects.filter(line_id=row.pk).values_list(*MOVED).first() or ())
            for name, row in written.items()
        }
        assert records == {
            "split": before["split"],
            "behind": before["behind"],
            "no plan": before["no plan"],
            "unmatched": (),
        }
        assert records["split"] == (D("10.00"), "confirmed", 2, chain, plan.pk, policy.pk)
        # the line whose ledger is behind the network's word is marked for the ledger; the others are not
        marked = dict(ExternalOrder.objects.values_list("external_order_id", "ledger_marked_at"))
        assert [number for number, at in sorted(marked.items()) if at is not None] == ["B"]

        # when: backwards, to main's schema again
        executor = _migrate(MAIN)

        # then: the columns are back with the values they had, and the split table is gone
        Line = executor.loader.project_state(MAIN).apps.get_model("networks", "ExternalOrder")
        after = {name: tuple(Line.objects.filter(pk=row.pk).values_list(*MOVED).get()) for name, row in written.items()}
        assert after == before
        assert "commissions_externalsplit" not in connection.introspection.table_names()
    finally:
        _migrate(latest)


@pytest.mark.django_db(transaction=False)
def test_the_networks_schema_references_no_model_of_commissions():
    from django.apps import apps

    pointed_at = {
        field.related_model._meta.app_label
        for model in apps.get_app_config("networks").get_models()
        for field in model._meta.get_fields()
        if field.is_relation and field.concrete and field.related_model is not None
    }
    assert "commissions" not in pointed_at
    assert ExternalSplit._meta.get_field("line").related_model is ExternalOrder  # the reference goes down only


@pytest.mark.django_db(transaction=False)
def test_no_networks_migration_depends_on_commissions_but_the_initial_one():
    graph = MigrationExecutor(connection).loader.graph

    depending = sorted(
        name
        for (app, name), node in graph.node_map.items()
        if app == "networks" and any(parent.key[0] == "commissions" for parent in node.parents)
    )

    # networks.0001 made ExternalOrder.plan and .policy (foreign keys to commissions) before issue #20; it stays as
    # it was applied everywhere, and no later migration of networks may add an edge up the stack again.
    assert depending == ["0001_initial"]
