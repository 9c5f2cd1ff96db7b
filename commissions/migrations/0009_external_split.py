"""The ledger's side of an external line becomes the commissions app's own record, `ExternalSplit` (issue #20):
copied from the columns `networks.ExternalOrder` had (split_commission, split_status, revision, chain, plan,
policy), which this migration then drops. `networks.0007_external_split_moves_to_commissions` took them out of the
networks app's state only, so the columns are still there when this runs; this migration owns the move both ways:
backwards it adds the columns back, copies the values home and drops the table, so the networks app's migrations
never depend on commissions'.

A line gets a record if any of the values is set (a line split at least once); a line never split has none, and
backwards its columns get the defaults it had (nothing in the ledger, revision 0).
"""

import django.db.models.deletion
from django.db import migrations, models
from django.db.models import Q

import core.money

CHUNK = 2000

# The columns as networks.0001_initial made them, in the table's order.
MOVED_FIELDS = (
    ("split_commission", lambda: core.money.MoneyField(blank=True, decimal_places=2, max_digits=14, null=True, verbose_name="commission in the ledger")),
    ("split_status", lambda: models.CharField(blank=True, choices=[("paid", "Paid"), ("confirmed", "Receipt confirmed"), ("settled", "Settled"), ("invalid", "Invalid or refunded")], max_length=12, verbose_name="status in the ledger")),
    ("revision", lambda: models.PositiveIntegerField(default=0, verbose_name="ledger revision")),
    ("chain", lambda: models.JSONField(blank=True, null=True)),
    ("plan", lambda: models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.PROTECT, related_name="+", to="commissions.commissionplan")),
    ("policy", lambda: models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.PROTECT, related_name="+", to="commissions.compliancepolicy")),
)
VALUES = ("split_commission", "split_status", "revision", "chain", "plan_id", "policy_id")
SPLIT_AT_LEAST_ONCE = (
    Q(revision__gt=0)
    | Q(split_commission__isnull=False)
    | ~Q(split_status="")
    | Q(chain__isnull=False)
    | Q(plan__isnull=False)
    | Q(policy__isnull=False)
)


def _with_columns(state):
    """`state` with the moved fields back on networks.ExternalOrder: the table as it is while the columns exist."""
    state = state.clone()
    for name, field in MOVED_FIELDS:
        migrations.AddField("externalorder", name, field()).state_forwards("networks", state)
    return state


class MoveExternalSplitColumns(migrations.operations.base.Operation):
    """Copy the split columns of networks_externalorder into commissions_externalsplit and drop them; backwards, add
    them back and copy the values home. The database only: the state moved in networks.0007 and with the
    CreateModel before this."""

    reversible = True

    def state_forwards(self, app_label, state):
        pass

    def database_forwards(self, app_label, schema_editor, from_state, to_state):
        state = _with_columns(from_state)
        Line = state.apps.get_model("networks", "ExternalOrder")
        Split = from_state.apps.get_model("commissions", "ExternalSplit")
        using = schema_editor.connection.alias
        rows = Line.objects.using(using).filter(SPLIT_AT_LEAST_ONCE).order_by("pk").values_list("pk", *VALUES)
        after = 0
        while chunk := list(rows.filter(pk__gt=after)[:CHUNK]):
            Split.objects.using(using).bulk_create(
                [Split(line_id=pk, **dict(zip(VALUES, values, strict=True))) for pk, *values in chunk]
            )
            after = chunk[-1][0]
        for name, _field in reversed(MOVED_FIELDS):
            without = state.clone()
            drop = migrations.RemoveField("externalorder", name)
            drop.state_forwards("networks", without)
            drop.database_forwards("networks", schema_editor, state, without)
            state = without

    def database_backwards(self, app_label, schema_editor, from_state, to_state):
        state = from_state
        for name, field in MOVED_FIELDS:
            with_field = state.clone()
            add = migrations.AddField("externalorder", name, field())
            add.state_forwards("networks", with_field)
            add.database_forwards("networks", schema_editor, state, with_field)
            state = with_field
        Line = state.apps.get_model("networks", "ExternalOrder")
        Split = from_state.apps.get_model("commissions", "ExternalSplit")
        using = schema_editor.connection.alias
        splits = Split.objects.using(using).order_by("pk")
        after = 0
        while chunk := list(splits.filter(pk__gt=after)[:CHUNK]):
            lines = [Line(pk=split.line_id, **{name: getattr(split, name) for name in VALUES}) for split in chunk]
            Line.objects.using(using).bulk_update(lines, VALUES)
            after = chunk[-1].pk

    def describe(self):
        return "Copy the split columns of networks.ExternalOrder into ExternalSplit and drop them"


class Migration(migrations.Migration):
    dependencies = [
        ("commissions", "0008_payout_ratio_ceiling"),
        ("networks", "0007_external_split_moves_to_commissions"),
    ]

    operations = [
        migrations.CreateModel(
            name="ExternalSplit",
            fields=[
                ("line", models.OneToOneField(on_delete=django.db.models.deletion.PROTECT, primary_key=True, related_name="split", serialize=False, to="networks.externalorder", verbose_name="external order")),
                ("split_commission", core.money.MoneyField(blank=True, decimal_places=2, max_digits=14, null=True, verbose_name="commission in the ledger")),
                ("split_status", models.CharField(blank=True, choices=[("paid", "Paid"), ("confirmed", "Receipt confirmed"), ("settled", "Settled"), ("invalid", "Invalid or refunded")], max_length=12, verbose_name="status in the ledger")),
                ("revision", models.PositiveIntegerField(default=0, verbose_name="ledger revision")),
                ("chain", models.JSONField(blank=True, null=True)),
                ("plan", models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.PROTECT, related_name="+", to="commissions.commissionplan")),
                ("policy", models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.PROTECT, related_name="+", to="commissions.compliancepolicy")),
            ],
            options={"verbose_name": "external order split", "verbose_name_plural": "external order splits"},
        ),
        MoveExternalSplitColumns(),
    ]
