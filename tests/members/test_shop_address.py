"""The open-shop form explains what a shop address may contain and suggests a free one (issue #19): Django's
"Enter a valid “slug”…" (有效“字段” in Chinese) told a member typing Chinese nothing useful."""

import pytest
from django.urls import reverse

from referrals.models import Member
from shops.models import Shop
from tests.factories import MemberFactory, ShopFactory

pytestmark = pytest.mark.django_db

URL = reverse("members:my_shop")
EXPLANATION = (
    "A shop address may contain only the letters a to z, the digits 0 to 9 and hyphens (-), 3 to 40 of them, "
    "starting and ending with a letter or digit: it is part of your shop's link, /s/<address>/, so Chinese "
    "characters, spaces and other signs cannot be used."
)


@pytest.fixture
def member(client) -> Member:
    member = MemberFactory()
    client.force_login(member.user)
    return member


def open_shop(client, *, name: str, slug: str, language: str = "en"):
    client.cookies["django_language"] = language
    return client.post(URL, {"name": name, "slug": slug, "description": "", "is_open": "on"})


def test_a_chinese_address_is_explained_and_its_pinyin_suggested(client, member):
    response = open_shop(client, name="小李茶店", slug="小李茶店")

    assert response.status_code == 400
    assert response.context["form"].errors == {"slug": [EXPLANATION, "How about “xiaolichadian”?"]}
    assert not Shop.objects.exists()


def test_the_suggestion_comes_from_what_was_typed_or_the_name(client, member):
    typed = open_shop(client, name="小李茶店", slug="Li Tea 小李")
    named = open_shop(client, name="Li's Green Tea", slug="***")

    assert typed.context["form"].errors["slug"][1] == "How about “li-tea-xiaoli”?"
    assert named.context["form"].errors["slug"][1] == "How about “lis-green-tea”?"
    assert not Shop.objects.exists()


def test_a_taken_suggestion_gets_a_number_and_the_invite_code_is_the_last_resort(client, member):
    ShopFactory(slug="lis-green-tea")

    taken = open_shop(client, name="Li's Green Tea", slug="***")
    nameless = open_shop(client, name="", slug="***")

    assert taken.context["form"].errors["slug"] == [EXPLANATION, "How about “lis-green-tea-2”?"]
    assert nameless.context["form"].errors["slug"][1] == f"How about “shop-{member.invite_code.lower()}”?"


@pytest.mark.parametrize("slug", ["ab", "-tea", "tea-", "tea_shop", "tea shop", "茶"])
def test_every_shape_that_is_not_an_address_gets_the_explanation(client, member, slug):
    response = open_shop(client, name="Tea", slug=slug)

    assert response.context["form"].errors["slug"][0] == EXPLANATION
    assert not Shop.objects.exists()


def test_in_chinese_the_page_no_longer_says_the_mistranslated_field_error(client, member):
    response = open_shop(client, name="小李茶店", slug="小李茶店", language="zh-hans")

    page = response.content.decode()
    assert response.status_code == 400
    assert "字段" not in page
    assert "slug" not in page.lower().replace('name="slug"', "").replace("id_slug", "")


def test_a_good_address_still_opens_the_shop(client, member):
    response = open_shop(client, name="小李茶店", slug=" Xiao-Li-Tea ")

    assert response.status_code == 302
    assert Shop.objects.get().slug == "xiao-li-tea"
