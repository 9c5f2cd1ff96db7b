"""The migrations that add the language columns (issue #23: shops 0016-0017, commissions 0013, networks 0008) copy
every existing title, description, name and material's words into English, and give the seeded networks and the
default plan their Chinese names. Forward on data written before them."""

from decimal import Decimal

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.utils import timezone

BEFORE = [
    ("shops", "0015_coupon_codes_and_buyer_binding"),
    ("commissions", "0012_entry_released_index"),
    ("networks", "0007_external_split_moves_to_commissions"),
]
AFTER = [
    ("shops", "0017_material_words_in_any_language"),
    ("commissions", "0013_plan_name_translations"),
    ("networks", "0008_network_name_translations"),
]


def migrate(target):
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(target)
    return executor.loader.project_state(target).apps


@pytest.mark.django_db(transaction=True)
def test_existing_content_is_copied_into_english_and_the_seeded_names_get_chinese():
    # given: the schema before the language columns, with a catalogue in it
    apps = migrate(BEFORE)
    Category = apps.get_model("shops", "Category")
    Product = apps.get_model("shops", "Product")
    Material = apps.get_model("shops", "ProductMaterial")
    tea = Category.objects.create(name="Tea")
    product = Product.objects.create(title="Longjing", description="Spring tea.", category=tea, price="168.00")
    Material.objects.create(product=product, text="Picked by hand.")
    Network = apps.get_model("networks", "Network")
    Network.objects.create(code="renamed", name="Our own network")
    # what networks 0002 and commissions 0002 seeded (an earlier transactional test may have flushed it)
    for code, name in (("sandbox", "Sandbox network"), ("taobao", "淘宝联盟"), ("jd", "京东联盟")):
        Network.objects.update_or_create(code=code, defaults={"name": name})
    apps.get_model("commissions", "CommissionPlan").objects.update_or_create(
        version=1,
        defaults={
            "name": "Default: 80 % to the sharer, 20 % to their sponsor",
            "level1_rate": Decimal("0.8000"),
            "level2_rate": Decimal("0.2000"),
            "is_activated": True,
            "effective_from": timezone.now(),
        },
    )

    # when
    apps = migrate(AFTER)

    # then
    product = apps.get_model("shops", "Product").objects.get(pk=product.pk)
    assert (product.title_en, product.description_en, product.title_zh_hans) == ("Longjing", "Spring tea.", None)
    assert apps.get_model("shops", "Category").objects.get(pk=tea.pk).name_en == "Tea"
    assert apps.get_model("shops", "ProductMaterial").objects.get().text_en == "Picked by hand."
    names = {
        network.code: (network.name_en, network.name_zh_hans)
        for network in apps.get_model("networks", "Network").objects.all()
    }
    assert names["taobao"] == ("Taobao Union", "淘宝联盟")
    assert names["sandbox"] == ("Sandbox network", "沙盒联盟")
    assert names["renamed"] == ("Our own network", None)
    plan = apps.get_model("commissions", "CommissionPlan").objects.get(version=1)
    assert plan.name_en.startswith("Default") and plan.name_zh_hans.startswith("默认")
    migrate(MigrationExecutor(connection).loader.graph.leaf_nodes())
