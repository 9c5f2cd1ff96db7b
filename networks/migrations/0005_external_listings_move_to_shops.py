"""External listings become a model of the shops app (issue #20, `shops.0008`): taken out of this app's state only.
The table `networks_externallisting` and its rows stay as they are; shops' model uses it."""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("networks", "0004_report_import_task_and_progress"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[],
            state_operations=[migrations.DeleteModel(name="ExternalListing")],
        ),
    ]
