"""Catalogue content in the reader's language (issue #23): product titles and descriptions, categories, the plan's
and the networks' names have an English and a Chinese value (django-modeltranslation); pages, the API and order
lines show the reader's, an empty Chinese value falls back to English, search finds either, staff edit both."""

from decimal import Decimal

import pytest
from django.urls import reverse
from django.utils import translation

from commissions.forms import CommissionPlanCreateForm
from commissions.models import CommissionEntry, CommissionPlan
from networks.models import Network
from shops.models import Category, OrderLine, Product, ProductMaterial
from shops.selectors import catalogue_search
from shops.services import BuyerDetails, order_place
from tests.factories import ProductFactory, ShopFactory, make_chain, pay_order, place_order, shop_with_products
from tests.security.test_csp import inline_problems

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _language_restored():
    """A request with Accept-Language: zh activates Chinese for the thread, and nothing deactivates it: put back the
    language active before, so later tests do not run in Chinese."""
    language = translation.get_language()
    yield
    translation.activate(language)


ZH = {"HTTP_ACCEPT_LANGUAGE": "zh-CN,zh;q=0.9"}
EN = {"HTTP_ACCEPT_LANGUAGE": "en"}


@pytest.fixture
def tea():
    category = Category.objects.create(name_en="Tea", name_zh_hans="茶叶")
    return ProductFactory(
        title_en="West Lake Longjing green tea",
        title_zh_hans="西湖龙井绿茶",
        description_en="Spring picking from Hangzhou.",
        description_zh_hans="杭州明前春茶。",
        category=category,
    )


@pytest.fixture
def untranslated():
    return ProductFactory(title_en="Bamboo steamer", title_zh_hans=None, category=None)


def test_the_shop_page_shows_titles_in_the_readers_language(client, tea):
    shop = shop_with_products(tea)
    url = reverse("shops:shop_home", args=[shop.slug])

    chinese = client.get(url, **ZH).content.decode()
    english = client.get(url, **EN).content.decode()

    assert "西湖龙井绿茶" in chinese and "West Lake Longjing" not in chinese
    assert "West Lake Longjing green tea" in english and "西湖龙井" not in english
    detail = reverse("shops:product_detail", args=[shop.slug, tea.pk])
    chinese = client.get(detail, **ZH).content.decode()
    assert "西湖龙井绿茶" in chinese and "杭州明前春茶。" in chinese
    assert "West Lake" not in chinese and "Spring picking" not in chinese


def test_a_missing_chinese_title_falls_back_to_english_never_blank(client, untranslated):
    shop = shop_with_products(untranslated)

    chinese = client.get(reverse("shops:shop_home", args=[shop.slug]), **ZH).content.decode()

    assert '<p class="title">Bamboo steamer</p>' in chinese
    with translation.override("zh-hans"):
        assert Product.objects.get(pk=untranslated.pk).title == "Bamboo steamer"


def test_the_owners_catalogue_page_shows_title_and_category_in_the_readers_language(client, tea):
    shop = ShopFactory()
    client.force_login(shop.owner.user)
    url = reverse("members:my_shop_catalogue")

    chinese = client.get(url, **ZH).content.decode()
    english = client.get(url, **EN).content.decode()

    assert "西湖龙井绿茶" in chinese and ">茶叶<" in chinese
    assert "West Lake Longjing" not in chinese and ">Tea<" not in chinese
    assert "West Lake Longjing green tea" in english and ">Tea<" in english and "茶叶" not in english


@pytest.mark.parametrize("language", ["en", "zh-hans"])
@pytest.mark.parametrize("words", ["龙井", "longjing"])
def test_search_finds_a_product_by_its_title_in_either_language(tea, untranslated, language, words):
    with translation.override(language):
        assert list(catalogue_search(search=words)) == [tea]


def test_a_chinese_search_on_the_owners_catalogue_page_finds_the_product(client, tea, untranslated):
    shop = ShopFactory()
    client.force_login(shop.owner.user)

    response = client.get(reverse("members:my_shop_catalogue"), {"q": "龙井"}, **EN)

    assert [product.pk for product in response.context["page"]] == [tea.pk]


def test_sorting_by_title_in_chinese_uses_the_english_title_where_chinese_is_missing(tea, untranslated):
    other = ProductFactory(title_en="Zebra cake", title_zh_hans="斑马蛋糕", category=None)

    with translation.override("zh-hans"):
        titles = [product.title for product in catalogue_search(sort="price")]

    # same price: by the title shown, English where Chinese is missing (code point order)
    assert titles == ["Bamboo steamer", "斑马蛋糕", "西湖龙井绿茶"]
    assert other.title_en == "Zebra cake"


@pytest.mark.parametrize(("headers", "title"), [(ZH, "西湖龙井绿茶"), (EN, "West Lake Longjing green tea")])
def test_the_api_returns_the_title_in_the_requests_language(client, tea, headers, title):
    shop = shop_with_products(tea)

    detail = client.get(f"/api/v1/public/shops/{shop.slug}/products/{tea.pk}/", **headers)
    listing = client.get(f"/api/v1/public/shops/{shop.slug}/products/", **headers)

    assert detail.status_code == 200 and detail.json()["title"] == title
    assert [row["title"] for row in listing.json()["results"]] == [title]


def test_an_order_line_keeps_the_title_the_buyer_saw(tea):
    shop = shop_with_products(tea)
    buyer = BuyerDetails("Chen Xiaoling", "13800138001", "", "88 Century Avenue, Shanghai")

    with translation.override("zh-hans"):
        chinese_order = order_place(shop=shop, items={tea.pk: 1}, buyer=buyer)
    with translation.override("en"):
        english_order = order_place(shop=shop, items={tea.pk: 1}, buyer=buyer)

    assert OrderLine.objects.get(order=chinese_order).title == "西湖龙井绿茶"
    assert OrderLine.objects.get(order=english_order).title == "West Lake Longjing green tea"


def test_staff_edit_both_languages_in_the_admin_and_english_is_required(client, staff_user, tea):
    client.force_login(staff_user)
    url = reverse("admin:shops_product_change", args=[tea.pk])
    form = client.get(url).content.decode()
    assert 'name="title_en"' in form and 'name="title_zh_hans"' in form
    assert 'name="description_zh_hans"' in form
    assert inline_problems(form) == []  # the untabbed admin: no script or style that the CSP would block
    assert "modeltranslation/js" not in form and "googleapis" not in form
    data = {
        "title_en": "Longjing tea",
        "title_zh_hans": "龙井茶",
        "description_en": "",
        "description_zh_hans": "",
        "category": tea.category_id,
        "price": "168.00",
        "stock": "100",
        "initial-stock": "100",
        "is_active": "on",
        "commission_rate": "0.1000",
        "materials-TOTAL_FORMS": "0",
        "materials-INITIAL_FORMS": "0",
        "materials-MIN_NUM_FORMS": "0",
        "materials-MAX_NUM_FORMS": "1000",
    }

    response = client.post(url, data)

    assert response.status_code == 302, response.context["adminform"].form.errors
    tea.refresh_from_db()
    assert (tea.title_en, tea.title_zh_hans) == ("Longjing tea", "龙井茶")
    # English may not be left empty: it is what an empty Chinese value falls back to
    refused = client.post(url, {**data, "title_en": ""})
    assert refused.status_code == 200 and "title_en" in refused.context["adminform"].form.errors
    tea.refresh_from_db()
    assert tea.title_en == "Longjing tea"


def test_the_admin_search_finds_a_product_by_its_chinese_title(client, staff_user, tea, untranslated):
    client.force_login(staff_user)

    response = client.get(reverse("admin:shops_product_changelist"), {"q": "龙井"}, **EN)

    assert list(response.context["cl"].result_list) == [tea]


def test_staff_edit_a_categorys_two_names_and_several_may_lack_chinese(client, staff_user):
    client.force_login(staff_user)
    add = reverse("admin:shops_category_add")

    for name in ("Snacks", "Digital"):
        response = client.post(add, {"name_en": name, "name_zh_hans": "", "position": "0"})
        assert response.status_code == 302
    client.post(add, {"name_en": "Beauty", "name_zh_hans": "美妆护肤", "position": "1"})

    assert Category.objects.filter(name_zh_hans__isnull=True).count() == 2
    with translation.override("zh-hans"):
        assert sorted(category.name for category in Category.objects.all()) == ["Digital", "Snacks", "美妆护肤"]


def test_the_seeded_networks_and_default_plan_have_both_names():
    sandbox, taobao = Network.objects.get(code="sandbox"), Network.objects.get(code="taobao")
    plan = CommissionPlan.objects.get(version=1)

    with translation.override("zh-hans"):
        assert (sandbox.name, taobao.name) == ("沙盒联盟", "淘宝联盟")
        assert plan.name.startswith("默认")
    with translation.override("en"):
        assert (sandbox.name, taobao.name) == ("Sandbox network", "Taobao Union")
        assert plan.name.startswith("Default")


def test_the_networks_page_names_the_network_in_the_readers_language(client):
    shop = ShopFactory()
    client.force_login(shop.owner.user)
    url = reverse("members:my_shop_networks")

    chinese = client.get(url, **ZH).content.decode()
    english = client.get(url, **EN).content.decode()

    assert ">沙盒联盟</option>" in chinese and "Sandbox network" not in chinese
    assert ">Sandbox network</option>" in english and "沙盒联盟" not in english


def test_a_new_plan_is_named_in_both_languages(staff_user):
    form = CommissionPlanCreateForm(
        {
            "name": "Sharer only",
            "name_zh_hans": "仅分享者",
            "level1_rate": "0.5000",
            "level2_rate": "",
            "level3_rate": "",
        }
    )
    assert form.is_valid(), form.errors

    plan = form.save(actor=staff_user)

    with translation.override("zh-hans"):
        assert CommissionPlan.objects.get(pk=plan.pk).name == "仅分享者"
    with translation.override("en"):
        assert CommissionPlan.objects.get(pk=plan.pk).name == "Sharer only"


def test_a_new_plan_without_a_chinese_name_shows_the_english_one(staff_user):
    form = CommissionPlanCreateForm({"name": "Sharer only", "level1_rate": "0.5000"})
    assert form.is_valid(), form.errors

    plan = form.save(actor=staff_user)

    with translation.override("zh-hans"):
        assert CommissionPlan.objects.get(pk=plan.pk).name == "Sharer only"


def test_a_sharing_material_may_have_words_in_chinese_only(client, staff_user, tea):
    client.force_login(staff_user)
    url = reverse("admin:shops_product_change", args=[tea.pk])
    data = {
        "title_en": tea.title_en,
        "title_zh_hans": tea.title_zh_hans,
        "category": tea.category_id,
        "price": "168.00",
        "stock": "100",
        "initial-stock": "100",
        "is_active": "on",
        "commission_rate": "0.1000",
        "materials-TOTAL_FORMS": "1",
        "materials-INITIAL_FORMS": "0",
        "materials-0-text_en": "",
        "materials-0-text_zh_hans": "明前春茶，现在下单包邮。",
        "materials-0-position": "1",
        "materials-0-is_active": "on",
    }

    response = client.post(url, data, **EN)

    assert response.status_code == 302
    [material] = tea.materials.all()
    with translation.override("zh-hans"):
        assert ProductMaterial.objects.get(pk=material.pk).text == "明前春茶，现在下单包邮。"
    # neither a picture nor words in any language: a form error, nothing saved
    refused = client.post(url, {**data, "materials-0-text_zh_hans": ""}, **EN)
    assert refused.status_code == 200 and tea.materials.count() == 1


def test_a_commission_entry_names_the_plan_in_the_readers_language(client, django_capture_on_commit_callbacks):
    _root, sponsor, sharer = make_chain(3)
    shop = shop_with_products(ProductFactory(price=Decimal("10.00")), owner=sharer)
    with django_capture_on_commit_callbacks(execute=True):
        order = pay_order(place_order(shop))
    entry = CommissionEntry.objects.get(beneficiary=sponsor, order=order, kind=CommissionEntry.Kind.COMMISSION)
    client.force_login(sponsor.user)
    url = reverse("members:commission_entry_detail", args=[entry.pk])

    chinese = client.get(url, **ZH).content.decode()
    english = client.get(url, **EN).content.decode()

    assert "默认：分享者得 80%，其上级得 20%" in chinese and "Default: 80" not in chinese
    assert "Default: 80 % to the sharer, 20 % to their sponsor" in english and "默认" not in english


def test_staff_edit_a_networks_two_names(client, staff_user):
    network = Network.objects.get(code="sandbox")
    client.force_login(staff_user)
    url = reverse("admin:networks_network_change", args=[network.pk])
    form = client.get(url).content.decode()
    assert 'name="name_en"' in form and 'name="name_zh_hans"' in form and 'name="name"' not in form

    response = client.post(url, {"name_en": "Test network", "name_zh_hans": "测试联盟", "is_enabled": "on"})

    assert response.status_code == 302
    network.refresh_from_db()
    assert (network.name_en, network.name_zh_hans) == ("Test network", "测试联盟")
