"""A new member's first steps (issue #23): the open-shop page filled in with a suggested address (the pinyin of a
Chinese name, a Latin name slugified, else the invite code; a taken one gets a number), the address checked as it is
typed (a JSON check), and the first-run checklist on the overview (open the shop, add three products, share one)."""

from decimal import Decimal

import pytest
from django.urls import reverse

from core.text import ascii_slug
from members.selectors import FirstRun, member_first_run
from networks.models import ExternalProduct, Network
from referrals.models import Member
from referrals.services import member_set_status
from shops.models import BUY_BUTTON_CAMPAIGN, ExternalListing, Shop, ShopListing
from shops.selectors import ShopProgress, shop_address_suggestion, shop_progress
from shops.services import share_link_create, share_link_default, shop_listing_add
from tests.factories import MemberFactory, ProductFactory, ShopFactory, UserFactory

pytestmark = pytest.mark.django_db

MY_SHOP = reverse("members:my_shop")
CHECK = reverse("members:my_shop_address_check")
DASHBOARD = reverse("members:dashboard")


def named_member(first_name: str, last_name: str = "") -> Member:
    return MemberFactory(user=UserFactory(first_name=first_name, last_name=last_name))


# --- The suggested address ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "slug"),
    [
        ("张小明", "zhangxiaoming"),
        ("张小明 Tea", "zhangxiaoming-tea"),
        ("绿茶", "lvcha"),  # ü as v: plain ASCII
        ("Café Li", "cafe-li"),
        ("Anna Smith", "anna-smith"),
        ("", ""),
        ("★★★", ""),
    ],
)
def test_ascii_slug_writes_chinese_as_pinyin_and_latin_as_a_slug(text, slug):
    assert ascii_slug(text) == slug


def test_a_chinese_name_is_suggested_as_its_pinyin():
    member = named_member("张小明")

    assert shop_address_suggestion(name="张小明", member=member) == "zhangxiaoming"


def test_a_latin_name_is_slugified():
    member = named_member("Anna", "Smith")

    assert shop_address_suggestion(name="Anna Smith", member=member) == "anna-smith"


def test_no_name_suggests_the_invite_code():
    member = named_member("")

    assert shop_address_suggestion(name="", member=member) == f"shop-{member.invite_code.lower()}"
    assert shop_address_suggestion(name="★★★", member=member) == f"shop-{member.invite_code.lower()}"


def test_a_taken_or_reserved_address_gets_a_number():
    member = named_member("张小明")
    ShopFactory(slug="zhangxiaoming")
    ShopFactory(slug="zhangxiaoming-2")

    assert shop_address_suggestion(name="张小明", member=member) == "zhangxiaoming-3"
    assert shop_address_suggestion(name="Admin", member=member) == "admin-2"


def test_a_one_syllable_name_is_made_long_enough_and_a_long_one_short_enough():
    member = named_member("李")

    assert shop_address_suggestion(name="李", member=member) == "li-shop"
    long_name = "欧阳" * 30
    ShopFactory(slug=("ouyang" * 10)[:40])
    suggestion = shop_address_suggestion(name=long_name, member=member)
    assert suggestion == ("ouyang" * 10)[:38] + "-2"
    assert len(suggestion) == 40


def test_the_suggestion_is_one_query(django_assert_num_queries):
    member = named_member("张小明")

    with django_assert_num_queries(1):
        shop_address_suggestion(typed="bad address", name="张小明", member=member)


# --- The open-shop page ------------------------------------------------------------------------------------------


def test_a_new_member_finds_the_open_shop_form_filled_in_and_one_tap_opens_it(client):
    member = named_member("张小明")
    client.force_login(member.user)

    page = client.get(MY_SHOP)
    form = page.context["form"]
    opened = client.post(MY_SHOP, {"name": form["name"].value(), "slug": form["slug"].value(), "is_open": "on"})

    assert (form["name"].value(), form["slug"].value()) == ("张小明's shop", "zhangxiaoming")
    assert form["is_open"].value() is True
    html = page.content.decode()
    assert 'value="zhangxiaoming"' in html
    assert f'data-check-url="{CHECK}"' in html
    assert 'id="address-check" aria-live="polite"' in html
    assert "js/shop-address.js" in html
    assert opened.status_code == 302
    assert opened["Location"] == reverse("members:my_shop_catalogue")
    shop = Shop.objects.get(owner=member)
    assert (shop.name, shop.slug, shop.is_open) == ("张小明's shop", "zhangxiaoming", True)


def test_the_suggested_address_is_free_even_when_the_name_is_taken(client):
    ShopFactory(slug="anna-smith")
    member = named_member("Anna", "Smith")
    client.force_login(member.user)

    form = client.get(MY_SHOP).context["form"]

    assert form["slug"].value() == "anna-smith-2"


def test_a_taken_address_posted_is_refused_beside_the_field_with_a_free_one(client):
    ShopFactory(slug="zhangxiaoming")
    member = named_member("张小明")
    client.force_login(member.user)

    response = client.post(MY_SHOP, {"name": "Mine", "slug": "zhangxiaoming", "is_open": "on"})

    assert response.status_code == 400
    assert response.context["form"].errors["slug"] == [
        "This address is taken; pick another.",
        "How about “zhangxiaoming-2”?",
    ]
    assert not Shop.objects.filter(owner=member).exists()


def test_joining_leads_to_the_open_shop_page(client):
    sponsor = MemberFactory()

    response = client.post(
        reverse("members:join_with_code", args=[sponsor.invite_code]),
        {
            "email": "xiaoming@example.com",
            "first_name": "张小明",
            "password1": "a long enough pass 42",
            "password2": "a long enough pass 42",
        },
        follow=True,
    )

    assert response.redirect_chain[-1][0] == MY_SHOP
    assert response.context["form"]["slug"].value() == "zhangxiaoming"


# --- The address check as it is typed -------------------------------------------------------------------------------


@pytest.fixture
def member_client(client):
    member = named_member("张小明")
    client.force_login(member.user)
    return client, member


def check(client, address: str, **extra):
    return client.get(CHECK, {"address": address, **extra})


def test_the_check_says_a_free_address_is_available(member_client):
    client, _member = member_client

    response = check(client, " Tea-House ")

    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    assert response.json() == {
        "available": True,
        "message": "“tea-house” is free: your shop will be at /s/tea-house/.",
        "suggestion": None,
    }


def test_the_check_says_a_taken_address_is_taken_and_suggests_a_free_one(member_client):
    client, _member = member_client
    ShopFactory(slug="tea-house")

    answer = check(client, "tea-house").json()

    assert answer == {
        "available": False,
        "message": "This address is taken; pick another.",
        "suggestion": "tea-house-2",
    }


def test_the_check_explains_an_invalid_or_reserved_address(member_client):
    client, member = member_client

    chinese = check(client, "小明茶店").json()
    short = check(client, "ab", name="").json()
    reserved = check(client, "admin").json()

    assert chinese["available"] is False
    assert chinese["message"].startswith("A shop address may contain only the letters a to z")
    assert chinese["suggestion"] == "xiaomingchadian"
    assert short["suggestion"] == "ab-shop"
    assert reserved == {
        "available": False,
        "message": "“admin” is reserved; pick another address.",
        "suggestion": "admin-2",
    }
    assert check(client, "").json()["suggestion"] == f"shop-{member.invite_code.lower()}"


def test_the_check_knows_the_members_own_address_and_not_anyone_elses(member_client):
    client, member = member_client
    ShopFactory(owner=member, slug="mine")
    ShopFactory(slug="theirs")

    own = check(client, "mine").json()
    theirs = check(client, "theirs").json()

    assert own == {"available": True, "message": "This is your shop's address now.", "suggestion": None}
    assert theirs["available"] is False


def test_the_check_needs_a_signed_in_member(client):
    signed_out = check(client, "tea-house")
    client.force_login(UserFactory())
    not_a_member = check(client, "tea-house")

    assert signed_out.status_code == 302
    assert signed_out["Location"].startswith(reverse("login"))
    assert not_a_member.status_code == 302
    assert not_a_member["Location"] == reverse("members:join")


def test_the_check_is_refused_to_a_suspended_member(member_client):
    client, member = member_client
    member_set_status(member=member, status=Member.Status.SUSPENDED, actor=None, reason="under review")

    assert check(client, "tea-house").status_code == 403


def test_the_check_is_rate_limited_per_member(member_client, settings):
    client, _member = member_client
    settings.RATE_LIMIT_SHOP_ADDRESS_CHECK = "3/minute"

    answers = [check(client, f"tea-house-{number}") for number in range(4)]

    assert [answer.status_code for answer in answers] == [200, 200, 200, 429]
    assert answers[3]["Retry-After"].isdigit()
    assert answers[3].json()["available"] is None


def test_the_check_refuses_other_methods(member_client):
    client, _member = member_client

    assert client.post(CHECK, {"address": "tea-house"}).status_code == 405


# --- The first-run checklist on the overview ---------------------------------------------------------------------


def first_run_card(client) -> str | None:
    html = client.get(DASHBOARD).content.decode()
    if 'id="first-run"' not in html:
        return None
    start = html.index('id="first-run"')
    return html[start : html.index("</section>", start)]


def test_without_a_shop_the_checklist_is_the_first_card_and_opens_the_shop(client):
    member = named_member("张小明")
    client.force_login(member.user)

    html = client.get(DASHBOARD).content.decode()
    card = first_run_card(client)

    assert html.index('id="first-run"') < html.index("earnings-heading")  # above every other card
    assert "0 of 3 done." in card
    assert f'<a class="button" href="{MY_SHOP}">Open my free shop</a>' in card
    assert "(0/3)" in card
    assert html.count("Open my free shop") == 1  # not a second time lower down


def test_the_steps_tick_off_from_what_the_member_did(client):
    shop = ShopFactory(owner=named_member("Anna"))
    client.force_login(shop.owner.user)
    products = [ProductFactory() for _ in range(4)]

    opened = first_run_card(client)
    shop_listing_add(shop=shop, product=products[0])
    one = first_run_card(client)
    for product in products[1:]:
        shop_listing_add(shop=shop, product=product)
    four = first_run_card(client)
    share_link_default(owner=shop.owner, product=products[0])  # the share page makes it
    done = first_run_card(client)

    assert "1 of 3 done." in opened
    assert 'id="first-run-shop"' in opened and 'class="first-run-step is-done" id="first-run-shop"' in opened
    assert reverse("members:my_shop_catalogue") in opened
    assert "(1/3)" in one
    assert "(3/3)" in four  # never 4/3
    assert 'class="first-run-step is-done" id="first-run-products"' in four
    assert reverse("members:my_shop_products") in four  # where each product has its Share button
    assert "2 of 3 done." in four
    assert done is None  # all done: the card is gone
    assert ShopListing.objects.filter(shop=shop).count() == 4


def test_a_shop_link_counts_as_sharing(client):
    shop = ShopFactory(owner=named_member("Anna"))
    client.force_login(shop.owner.user)

    share_link_create(owner=shop.owner)
    card = first_run_card(client)

    assert 'class="first-run-step is-done" id="first-run-share"' in card


def test_another_members_shop_and_links_do_not_tick_my_steps(client):
    other = ShopFactory()
    for _ in range(3):
        shop_listing_add(shop=other, product=ProductFactory())
    share_link_create(owner=other.owner)
    me = ShopFactory(owner=named_member("Anna"))
    client.force_login(me.owner.user)

    card = first_run_card(client)

    assert "1 of 3 done." in card
    assert "(0/3)" in card


def test_an_external_products_buy_button_link_is_a_product_but_not_a_share(client):
    shop = ShopFactory(owner=named_member("Anna"))
    client.force_login(shop.owner.user)
    network, _created = Network.objects.get_or_create(code="sandbox", defaults={"name": "Sandbox network"})
    product = ExternalProduct.objects.create(
        network=network, external_id="SB-1", title="Tea set", price=Decimal("99.00"), commission_rate=Decimal("0.1")
    )
    listing = ExternalListing.objects.create(shop=shop, product=product, tracking_url="https://example.com/t?sub=x")
    listing.share_link = share_link_create(owner=shop.owner, external_product=product, campaign=BUY_BUTTON_CAMPAIGN)
    listing.save(update_fields=["share_link"])

    progress = shop_progress(shop)
    card = first_run_card(client)

    assert progress == ShopProgress(product_count=1, has_shared=False)
    assert "(1/3)" in card
    assert 'class="first-run-step is-done" id="first-run-share"' not in card


def test_the_steps_cost_no_query_without_a_shop_and_one_with_one(django_assert_num_queries):
    shop = ShopFactory()
    shop_listing_add(shop=shop, product=ProductFactory())

    with django_assert_num_queries(0):
        none_yet = member_first_run(None)
    with django_assert_num_queries(1):
        started = member_first_run(shop)

    assert none_yet == FirstRun(has_shop=False, product_count=0, has_shared=False)
    assert (none_yet.done_count, none_yet.is_done) == (0, False)
    assert (started.has_shop, started.product_count, started.done_count, started.is_done) == (True, 1, 1, False)
