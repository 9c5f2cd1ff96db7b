from django.db import migrations

NETWORKS = [
    # code, name, enabled: the sandbox (for the demo and tests) syncs over its API; 淘宝联盟 and 京东联盟 come in
    # through their report files until a connector is written, so no sync runs for them.
    ("sandbox", "Sandbox network", True),
    ("taobao", "淘宝联盟", True),
    ("jd", "京东联盟", True),
]


def create(apps, schema_editor):
    Network = apps.get_model("networks", "Network")
    for code, name, enabled in NETWORKS:
        Network.objects.get_or_create(code=code, defaults={"name": name, "is_enabled": enabled})


class Migration(migrations.Migration):
    dependencies = [("networks", "0001_initial")]

    operations = [migrations.RunPython(create, migrations.RunPython.noop)]
