"""The payout ratio gets a hard ceiling of 0.30, in code and in the database (issue #19, SPEC §7).

A policy version published above 0.30 before the ceiling existed would break the new check constraint. It is
history (lines were split under it and name it), so it is neither deleted nor left as it was:

- its `max_payout_ratio` is lowered to 0.30, so from now on nothing, not even a split still queued from a payment
  made under it, pays members more than the legal ceiling;
- the value it was published with is kept in `max_payout_ratio_published` (set only by this migration, shown in
  admin, the audit log and the compliance report), so the lines split under it before today can still be
  explained. The compliance report flags those of them that paid more than 30 %: they did.

Reversing restores the published values and the old constraint (0 to 1).
"""

from decimal import Decimal

import django.core.validators
from django.db import migrations, models

import core.money

CEILING = Decimal("0.3000")


def lower_to_the_ceiling(apps, schema_editor):
    CompliancePolicy = apps.get_model("commissions", "CompliancePolicy")
    for policy in CompliancePolicy.objects.filter(max_payout_ratio__gt=CEILING).order_by("pk"):
        # The operator running the migration sees which versions changed.
        print(
            f"\n  compliance policy v{policy.version}: max payout ratio {policy.max_payout_ratio} lowered to the "
            f"legal ceiling {CEILING} (the published value is kept in max_payout_ratio_published)",
            end="",
        )
        policy.max_payout_ratio_published = policy.max_payout_ratio
        policy.max_payout_ratio = CEILING
        policy.save(update_fields=["max_payout_ratio", "max_payout_ratio_published"])


def restore_published(apps, schema_editor):
    CompliancePolicy = apps.get_model("commissions", "CompliancePolicy")
    for policy in CompliancePolicy.objects.filter(max_payout_ratio_published__isnull=False):
        policy.max_payout_ratio = policy.max_payout_ratio_published
        policy.max_payout_ratio_published = None
        policy.save(update_fields=["max_payout_ratio", "max_payout_ratio_published"])


class Migration(migrations.Migration):
    dependencies = [("commissions", "0007_entries_of_external_orders")]

    operations = [
        migrations.RemoveConstraint(model_name="compliancepolicy", name="commissions_policy_ratio"),
        migrations.AddField(
            model_name="compliancepolicy",
            name="max_payout_ratio_published",
            field=core.money.RateField(
                blank=True,
                decimal_places=4,
                editable=False,
                help_text=(
                    "Only on a version published above the legal ceiling of 0.30 before the ceiling existed: the "
                    "value it was published with. Its max payout ratio was lowered to 0.30 when the ceiling was "
                    "introduced; lines split under it before then were capped at this value."
                ),
                max_digits=5,
                null=True,
                validators=[
                    django.core.validators.MinValueValidator(Decimal("0.0000")),
                    django.core.validators.MaxValueValidator(Decimal("1.0000")),
                ],
                verbose_name="max payout ratio as published",
            ),
        ),
        migrations.AlterField(
            model_name="compliancepolicy",
            name="max_payout_ratio",
            field=core.money.RateField(
                decimal_places=4,
                default=Decimal("0.3000"),
                help_text="All member shares of a line, of its net amount. Never more than 0.30 (30 %).",
                max_digits=5,
                validators=[
                    django.core.validators.MinValueValidator(Decimal("0.0000")),
                    django.core.validators.MaxValueValidator(Decimal("0.3000")),
                ],
                verbose_name="max payout ratio",
            ),
        ),
        migrations.RunPython(lower_to_the_ceiling, restore_published),
        migrations.AddConstraint(
            model_name="compliancepolicy",
            constraint=models.CheckConstraint(
                condition=models.Q(("max_payout_ratio__gte", 0), ("max_payout_ratio__lte", Decimal("0.3000"))),
                name="commissions_policy_ratio_ceiling",
            ),
        ),
        migrations.AddConstraint(
            model_name="compliancepolicy",
            constraint=models.CheckConstraint(
                condition=models.Q(
                    ("max_payout_ratio_published__isnull", True),
                    models.Q(
                        ("max_payout_ratio_published__gt", Decimal("0.3000")),
                        ("max_payout_ratio_published__lte", Decimal("1.0000")),
                    ),
                    _connector="OR",
                ),
                name="commissions_policy_ratio_published",
            ),
        ),
    ]
