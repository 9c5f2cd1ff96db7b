"""External order lines are marked for the ledger (issue #20): the networks app records what a network reports and
marks the line; the commissions app writes the ledger and clears the mark (`networks.signals`).

Until now the ledger was written in the transaction that recorded the line, so it holds every line's latest word;
a matched line it does not hold (none is expected) is marked, for the ledger to pick up.
"""

from django.db import migrations, models
from django.db.models import F, Q
from django.utils import timezone


def mark_lines_the_ledger_does_not_hold(apps, schema_editor):
    ExternalOrder = apps.get_model("networks", "ExternalOrder")
    behind = Q(split_commission__isnull=True) | ~Q(split_commission=F("commission")) | ~Q(split_status=F("status"))
    ExternalOrder.objects.filter(member__isnull=False).filter(behind).update(ledger_marked_at=timezone.now())


class Migration(migrations.Migration):
    dependencies = [("networks", "0005_external_listings_move_to_shops")]

    operations = [
        migrations.AddField(
            model_name="externalorder",
            name="ledger_marked_at",
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.AddIndex(
            model_name="externalorder",
            index=models.Index(
                condition=models.Q(("ledger_marked_at__isnull", False)),
                fields=["ledger_marked_at"],
                name="networks_order_marked",
            ),
        ),
        migrations.RunPython(mark_lines_the_ledger_does_not_hold, migrations.RunPython.noop),
    ]
