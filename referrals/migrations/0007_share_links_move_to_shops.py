"""Share links, their daily statistics and click flushes become models of the shops app (issue #20,
`shops.0008`): taken out of this app's state only, after shops' models and foreign keys use them. The tables
(`referrals_sharelink`, `referrals_sharelinkdailystat`, `referrals_clickflush`) and their rows stay as they are."""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("networks", "0005_external_listings_move_to_shops"),
        ("referrals", "0006_member_index_slimming"),
        ("shops", "0008_share_links_and_external_listings"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[],
            state_operations=[
                migrations.DeleteModel(name="ShareLinkDailyStat"),
                migrations.DeleteModel(name="ClickFlush"),
                migrations.DeleteModel(name="ShareLink"),
            ],
        ),
    ]
