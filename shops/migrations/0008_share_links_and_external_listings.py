"""Share links, their daily statistics, click flushes (from referrals) and external listings (from networks) become
models of this app (issue #20: referrals holds the tree only, networks no longer points at shops).

State only: the tables keep their names (`referrals_sharelink`, `referrals_sharelinkdailystat`,
`referrals_clickflush`, `networks_externallisting`), their rows, indexes, constraints and foreign keys; nothing in
the database schema changes. `referrals.0007` and `networks.0005` take the models out of those apps' state.

Their content types are renamed in place (app_label), so the content type ids, the permission ids, the staff
groups' permissions and the admin history stay as they were. Reversible: backwards renames them back.
"""

import django.db.models.deletion
import django.utils.timezone
from django.db import migrations, models

# The moved models by the app they came from.
MOVED = {
    "referrals": ("sharelink", "sharelinkdailystat", "clickflush"),
    "networks": ("externallisting",),
}


def _content_types_merge(apps, *, keep, drop) -> None:
    """`drop` (a row made for the new label before this migration ran, e.g. by code running ahead of it) goes;
    what points at it, permissions given to groups and users and admin history, moves to `keep`."""
    Permission = apps.get_model("auth", "Permission")
    LogEntry = apps.get_model("admin", "LogEntry")
    LogEntry.objects.filter(content_type=drop).update(content_type=keep)
    kept = {permission.codename: permission for permission in Permission.objects.filter(content_type=keep)}
    for permission in Permission.objects.filter(content_type=drop):
        twin = kept.get(permission.codename)
        if twin is None:
            permission.content_type = keep
            permission.save(update_fields=["content_type"])
            continue
        twin.group_set.add(*permission.group_set.all())
        twin.user_set.add(*permission.user_set.all())
        permission.delete()
    drop.delete()


def _content_types_relabel(apps, *, forwards: bool) -> None:
    ContentType = apps.get_model("contenttypes", "ContentType")
    for old_label, model_names in MOVED.items():
        source_label, target_label = ("shops", old_label) if not forwards else (old_label, "shops")
        for model in model_names:
            source = ContentType.objects.filter(app_label=source_label, model=model).first()
            if source is None:  # a new database: content types are made after the migrations
                continue
            target = ContentType.objects.filter(app_label=target_label, model=model).first()
            if target is not None:
                _content_types_merge(apps, keep=source, drop=target)
            source.app_label = target_label
            source.save(update_fields=["app_label"])


def content_types_to_shops(apps, schema_editor):
    _content_types_relabel(apps, forwards=True)


def content_types_back(apps, schema_editor):
    _content_types_relabel(apps, forwards=False)


class Migration(migrations.Migration):
    dependencies = [
        ("admin", "0003_logentry_add_action_flag_choices"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
        ("networks", "0004_report_import_task_and_progress"),
        ("referrals", "0006_member_index_slimming"),
        ("shops", "0007_shop_owner_changes_audited"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[],
            state_operations=[
                migrations.CreateModel(
                    name="ShareLink",
                    fields=[
                        ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                        ("code", models.CharField(editable=False, max_length=16, unique=True, verbose_name="code")),
                        ("campaign", models.CharField(blank=True, max_length=60, verbose_name="campaign")),
                        ("is_active", models.BooleanField(default=True, verbose_name="active")),
                        ("created_at", models.DateTimeField(default=django.utils.timezone.now, verbose_name="created")),
                        ("external_product", models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.PROTECT, related_name="share_links", to="networks.externalproduct", verbose_name="external product")),
                        ("owner", models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name="share_links", to="referrals.member", verbose_name="owner")),
                        ("product", models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.PROTECT, related_name="share_links", to="shops.product", verbose_name="product")),
                        ("shop", models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name="share_links", to="shops.shop", verbose_name="shop")),
                    ],
                    options={
                        "verbose_name": "share link",
                        "verbose_name_plural": "share links",
                        "db_table": "referrals_sharelink",
                        "ordering": ("-created_at", "-pk"),
                        "indexes": [models.Index(fields=["owner", "-created_at"], name="referrals_s_owner_i_1e9c78_idx")],
                    },
                ),
                migrations.CreateModel(
                    name="ShareLinkDailyStat",
                    fields=[
                        ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                        ("day", models.DateField()),
                        ("clicks", models.PositiveBigIntegerField(default=0)),
                        ("unique_visitors", models.PositiveBigIntegerField(default=0)),
                        ("link", models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name="daily_stats", to="shops.sharelink")),
                    ],
                    options={
                        "verbose_name": "daily link statistics",
                        "verbose_name_plural": "daily link statistics",
                        "db_table": "referrals_sharelinkdailystat",
                        "constraints": [models.UniqueConstraint(fields=("link", "day"), name="referrals_linkstat_unique_day")],
                    },
                ),
                migrations.CreateModel(
                    name="ClickFlush",
                    fields=[
                        ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                        ("batch_id", models.CharField(max_length=64, unique=True)),
                        ("clicks", models.PositiveBigIntegerField(default=0)),
                        ("applied_at", models.DateTimeField(default=django.utils.timezone.now)),
                    ],
                    options={
                        "verbose_name": "click flush",
                        "verbose_name_plural": "click flushes",
                        "db_table": "referrals_clickflush",
                    },
                ),
                migrations.CreateModel(
                    name="ExternalListing",
                    fields=[
                        ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                        ("position", models.PositiveIntegerField(default=0, verbose_name="position")),
                        ("tracking_url", models.URLField(max_length=1000, verbose_name="tracking link")),
                        ("created_at", models.DateTimeField(default=django.utils.timezone.now, verbose_name="added")),
                        ("product", models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name="listings", to="networks.externalproduct", verbose_name="product")),
                        ("shop", models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name="external_listings", to="shops.shop", verbose_name="shop")),
                        ("share_link", models.OneToOneField(blank=True, null=True, on_delete=django.db.models.deletion.PROTECT, related_name="external_listing", to="shops.sharelink")),
                    ],
                    options={
                        "verbose_name": "external listing",
                        "verbose_name_plural": "external listings",
                        "db_table": "networks_externallisting",
                        "ordering": ("position", "pk"),
                        "constraints": [models.UniqueConstraint(fields=("shop", "product"), name="networks_listing_once")],
                    },
                ),
                migrations.AlterField(
                    model_name="order",
                    name="share_link",
                    field=models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.PROTECT, related_name="orders", to="shops.sharelink", verbose_name="share link"),
                ),
            ],
        ),
        migrations.RunPython(content_types_to_shops, content_types_back, elidable=False),
    ]
