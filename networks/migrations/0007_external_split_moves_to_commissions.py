"""What the ledger holds for an external line (split commission and status, revision, chain, plan, policy) becomes
the commissions app's own record, `commissions.ExternalSplit` (issue #20): the networks app no longer refers to
commissions' models.

State only. The columns stay in the table until `commissions.0009_external_split` has copied them into its own
table and drops them there (and, backwards, adds them back and copies the values home first), so this app's
migrations never depend on commissions'.
"""

from django.db import migrations

MOVED = ("split_commission", "split_status", "revision", "chain", "plan", "policy")


class Migration(migrations.Migration):
    dependencies = [("networks", "0006_external_orders_marked_for_the_ledger")]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[migrations.RemoveField(model_name="externalorder", name=name) for name in MOVED],
            database_operations=[],
        )
    ]
