"""The demo catalogue is bilingual (issue #23): every category, product title and description, the plan's and the
networks' names have a Chinese value, and a second run changes none of them (nor a translation staff edited)."""

from io import StringIO

import pytest
from django.core.management import call_command
from django.db.models import Q
from django.urls import reverse
from django.utils import translation

from commissions.models import CommissionPlan
from demo.translations import CATEGORY_NAMES, PRODUCT_TEXTS
from networks.models import Network
from shops.models import Category, Product

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _language_restored():
    """A request with Accept-Language: zh activates Chinese for the thread, and nothing deactivates it: put back the
    language active before, so later tests do not run in Chinese."""
    language = translation.get_language()
    yield
    translation.activate(language)


@pytest.fixture(autouse=True)
def _media_in_tmp(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path


def has_chinese(text: str | None) -> bool:
    return bool(text) and any("\u4e00" <= character <= "\u9fff" for character in text)


def test_every_demo_product_category_plan_and_network_has_chinese(settings):
    settings.LANGUAGE_CODE = "zh-hans"  # the demo is keyed on English whatever the default language

    call_command("demo", stdout=StringIO())

    products = list(Product.objects.all())
    assert len(products) == len(PRODUCT_TEXTS)
    assert all(has_chinese(product.title_zh_hans) and has_chinese(product.description_zh_hans) for product in products)
    assert all(product.title_en in PRODUCT_TEXTS and not has_chinese(product.title_en) for product in products)
    assert {category.name_en: category.name_zh_hans for category in Category.objects.all()} == CATEGORY_NAMES
    assert all(has_chinese(network.name_zh_hans) for network in Network.objects.all())
    assert all(has_chinese(plan.name_zh_hans) for plan in CommissionPlan.objects.all())


def test_a_second_run_keeps_a_translation_staff_changed():
    call_command("demo", stdout=StringIO())
    Product.objects.filter(title_en="Bamboo steamer, 2 tiers, 26 cm").update(title_zh_hans="竹蒸笼")

    call_command("demo", stdout=StringIO())

    assert Product.objects.get(title_en="Bamboo steamer, 2 tiers, 26 cm").title_zh_hans == "竹蒸笼"
    assert not Product.objects.filter(Q(title_zh_hans__isnull=True) | Q(title_zh_hans="")).exists()


def test_the_demo_shop_reads_in_one_language(client):
    call_command("demo", stdout=StringIO())
    url = reverse("shops:shop_home", args=["demo"])

    chinese = client.get(url, HTTP_ACCEPT_LANGUAGE="zh-CN").content.decode()
    english = client.get(url, HTTP_ACCEPT_LANGUAGE="en").content.decode()

    listed = Product.objects.filter(listings__shop__slug="demo")
    assert listed.exists()
    for product in listed:
        assert product.title_zh_hans in chinese and product.title_en not in chinese
        assert product.title_en.replace("'", "&#x27;") in english and product.title_zh_hans not in english
