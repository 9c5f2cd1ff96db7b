"""A fresh install starts with the default compliance policy and a two-level plan in force."""

from datetime import UTC, datetime
from decimal import Decimal

from django.db import migrations

SINCE = datetime(2000, 1, 1, tzinfo=UTC)


def create_defaults(apps, schema_editor):
    CompliancePolicy = apps.get_model("commissions", "CompliancePolicy")
    CommissionPlan = apps.get_model("commissions", "CommissionPlan")
    if not CompliancePolicy.objects.exists():
        CompliancePolicy.objects.create(
            version=1,
            max_levels=2,
            max_total_rate=Decimal("1.0000"),
            max_payout_ratio=Decimal("0.3000"),
            self_purchase_earns=False,
            ineligible_share="platform",
            is_active=True,
            effective_from=SINCE,
            note="Default policy: two paid levels, 30 % payout ceiling, no self-purchase commission.",
        )
    if not CommissionPlan.objects.exists():
        CommissionPlan.objects.create(
            version=1,
            name="Default: 80 % to the sharer, 20 % to their sponsor",
            level1_rate=Decimal("0.8000"),
            level2_rate=Decimal("0.2000"),
            is_activated=True,
            effective_from=SINCE,
        )


class Migration(migrations.Migration):
    dependencies = [("commissions", "0001_initial")]

    operations = [migrations.RunPython(create_defaults, migrations.RunPython.noop)]
