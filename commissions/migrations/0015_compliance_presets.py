"""Jurisdiction presets and the own-sales qualification (issue #25).

On a fresh install (nothing split yet, only the policy and plan 0002 seeded) the seeded policy and plan are put
under the preset chosen at set-up, COMPLIANCE_PRESET: its preset is recorded, and under china_strict its second
level goes (the policy pays one level, the plan 80 % of the pool to the sharer only). On an install with history
nothing is rewritten: its versions were published before presets (preset empty), and the compliance report says
whether the version in force complies with the deployment's preset.
"""

import django.core.validators
from django.conf import settings
from django.db import migrations, models

SEEDED_PLAN_NAME = "Default: 80 % to the sharer, 20 % to their sponsor"
PRESET_LEVELS = {"china_strict": 1, "china_two_levels": 2, "international": 3}


def put_fresh_install_under_preset(apps, schema_editor):
    CompliancePolicy = apps.get_model("commissions", "CompliancePolicy")
    CommissionPlan = apps.get_model("commissions", "CommissionPlan")
    CommissionEntry = apps.get_model("commissions", "CommissionEntry")
    OrderSplit = apps.get_model("commissions", "OrderSplit")
    policies, plans = list(CompliancePolicy.objects.all()), list(CommissionPlan.objects.all())
    is_fresh = (
        [policy.version for policy in policies] == [1]
        and [plan.version for plan in plans] in ([], [1])
        and not CommissionEntry.objects.exists()
        and not OrderSplit.objects.exists()
    )
    if not is_fresh:
        return
    preset = settings.COMPLIANCE_PRESET
    levels = PRESET_LEVELS[preset]
    policy = policies[0]
    policy.preset = preset
    policy.max_levels = min(policy.max_levels, levels)
    policy.save(update_fields=["preset", "max_levels"])
    if plans and levels < 3 and plans[0].level3_rate is not None:
        plans[0].level3_rate = None
        plans[0].save(update_fields=["level3_rate"])
    if plans and levels < 2 and plans[0].level2_rate is not None:
        plan = plans[0]
        plan.level2_rate = None
        if plan.name_en == SEEDED_PLAN_NAME:
            plan.name = plan.name_en = "Default: 80 % to the sharer"
            plan.name_zh_hans = "默认：分享者得 80%"
        plan.save(update_fields=["level2_rate", "name", "name_en", "name_zh_hans"])


class Migration(migrations.Migration):
    dependencies = [
        ("commissions", "0014_risk_review"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.AddField(
            model_name="compliancepolicy",
            name="preset",
            field=models.CharField(
                blank=True,
                choices=[
                    ("china_strict", "China (strict)"),
                    ("china_two_levels", "China (two levels)"),
                    ("international", "International"),
                ],
                default="",
                editable=False,
                max_length=20,
                verbose_name="jurisdiction preset",
            ),
        ),
        migrations.AddField(
            model_name="compliancepolicy",
            name="upline_min_own_sales",
            field=models.PositiveSmallIntegerField(
                default=0,
                help_text="An upline (level 2 and up) earns on a downline's sale only if they made at least this many own sales (paid orders they shared, not self-purchases, not fully refunded) in the days before it. 0: off.",
                verbose_name="own sales an upline needs",
            ),
        ),
        migrations.AddField(
            model_name="compliancepolicy",
            name="upline_qualification_days",
            field=models.PositiveSmallIntegerField(
                default=30,
                help_text="The own sales counted are those paid in this many days before the downline's sale was paid.",
                validators=[django.core.validators.MinValueValidator(1), django.core.validators.MaxValueValidator(365)],
                verbose_name="qualification period (days)",
            ),
        ),
        migrations.RunPython(put_fresh_install_under_preset, migrations.RunPython.noop),
        migrations.AddConstraint(
            model_name="compliancepolicy",
            constraint=models.CheckConstraint(
                condition=models.Q(
                    ("preset", ""),
                    models.Q(("max_levels__lte", 1), ("preset", "china_strict")),
                    models.Q(("max_levels__lte", 2), ("preset", "china_two_levels")),
                    models.Q(("max_levels__lte", 3), ("preset", "international")),
                    _connector="OR",
                ),
                name="commissions_policy_preset_levels",
            ),
        ),
        migrations.AddConstraint(
            model_name="compliancepolicy",
            constraint=models.CheckConstraint(
                condition=models.Q(("upline_qualification_days__gte", 1), ("upline_qualification_days__lte", 365)),
                name="commissions_policy_qualification_days",
            ),
        ),
    ]
