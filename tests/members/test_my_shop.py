"""The owner's "My shop" dashboard: details and logo, the catalogue picker, listing order and features."""

import io
import os
import re
from decimal import Decimal
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from PIL import Image

from commissions.models import CommissionPlan, CompliancePolicy
from shops.models import Shop, ShopListing
from shops.services import ShopError, shop_listing_reorder, shop_listing_set_featured
from tests.factories import CategoryFactory, MemberFactory, ProductFactory, ShopFactory, shop_with_products

pytestmark = pytest.mark.django_db

DETAILS_URL = reverse("members:my_shop")
PRODUCTS_URL = reverse("members:my_shop_products")
CATALOGUE_URL = reverse("members:my_shop_catalogue")


@pytest.fixture(autouse=True)
def media_root(settings, tmp_path):
    """Uploads land in a throw-away directory, never in the project's media/."""
    settings.MEDIA_ROOT = str(tmp_path / "media")
    return Path(settings.MEDIA_ROOT)


def picture(name: str = "logo.png", *, size=(200, 200), image_format: str = "PNG", noise: bool = False):
    """An image made in memory; `noise` makes it incompressible (a large file for its size)."""
    if noise:
        image = Image.frombytes("RGB", size, os.urandom(size[0] * size[1] * 3))
    else:
        image = Image.new("RGB", size, (217, 54, 62))
    buffer = io.BytesIO()
    image.save(buffer, format=image_format)
    return SimpleUploadedFile(name, buffer.getvalue(), content_type="image/png")


def details(shop: Shop, **changes) -> dict:
    data = {"name": shop.name, "slug": shop.slug, "description": shop.description, "is_open": "on"}
    data.update(changes)
    return data


def owner_client(client, shop: Shop):
    client.force_login(shop.owner.user)
    return client


def earnings_shown(response) -> list[str]:
    return re.findall(r"You earn about (¥[\d.,]+)", response.content.decode())


# --- Who may see what ------------------------------------------------------------------


@pytest.mark.parametrize("url", [DETAILS_URL, PRODUCTS_URL, CATALOGUE_URL])
def test_signed_out_visitors_are_sent_to_log_in(client, url):
    response = client.get(url)

    assert response.status_code == 302
    assert response["Location"] == f"{reverse('login')}?next={url}"


def test_signed_out_post_changes_nothing(client):
    shop = shop_with_products()
    listing = shop.listings.first()

    response = client.post(PRODUCTS_URL, {"action": "remove", "id": listing.pk})

    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))
    assert ShopListing.objects.filter(pk=listing.pk).exists()


def test_a_member_without_a_shop_is_asked_to_open_one_first(client):
    member = MemberFactory()
    client.force_login(member.user)

    for url in (PRODUCTS_URL, CATALOGUE_URL):
        response = client.get(url)
        assert (response.status_code, response["Location"]) == (302, DETAILS_URL)


@pytest.mark.parametrize(
    ("url", "action"),
    [
        (PRODUCTS_URL, "up"),
        (PRODUCTS_URL, "down"),
        (PRODUCTS_URL, "feature"),
        (PRODUCTS_URL, "unfeature"),
        (PRODUCTS_URL, "remove"),
        (CATALOGUE_URL, "remove"),
    ],
)
def test_another_members_listing_is_404_and_untouched(client, url, action):
    # given: someone else's shop with three listings, the middle one featured
    victim = shop_with_products(ProductFactory(), ProductFactory(), ProductFactory())
    target = victim.listings.order_by("position")[1]
    shop_listing_set_featured(shop=victim, listing_id=target.pk, is_featured=True)
    before = list(victim.listings.order_by("pk").values_list("pk", "position", "is_featured"))
    intruder_shop = shop_with_products()

    # when
    response = owner_client(client, intruder_shop).post(url, {"action": action, "id": target.pk})

    # then
    assert response.status_code == 404
    assert list(victim.listings.order_by("pk").values_list("pk", "position", "is_featured")) == before


def test_bad_input_is_a_400_not_a_500(client):
    shop = shop_with_products()
    owner_client(client, shop)
    listing = shop.listings.first()

    assert client.post(PRODUCTS_URL, {"action": "up", "id": "x"}).status_code == 400
    assert client.post(PRODUCTS_URL, {"action": "explode", "id": listing.pk}).status_code == 400
    assert client.post(CATALOGUE_URL, {"action": "add", "id": ""}).status_code == 400
    assert client.post(CATALOGUE_URL, {"action": "explode", "id": listing.product_id}).status_code == 400
    assert client.get(CATALOGUE_URL, {"category": "tea", "page": "last-but-one", "sort": "x"}).status_code == 200


# --- Shop details and logo -----------------------------------------------------------------


def test_owner_edits_name_address_description_and_closes_the_shop(client):
    shop = ShopFactory(slug="old-address")

    response = owner_client(client, shop).post(
        DETAILS_URL, {"name": "Li's Tea", "slug": " New-Address ", "description": "Green tea from Hangzhou."}
    )

    assert (response.status_code, response["Location"]) == (302, DETAILS_URL)
    shop.refresh_from_db()
    assert (shop.name, shop.slug, shop.description, shop.is_open) == (
        "Li's Tea",
        "new-address",
        "Green tea from Hangzhou.",
        False,
    )
    page = client.get(DETAILS_URL).content.decode()
    assert 'href="/s/new-address/"' in page  # "Preview my shop"
    assert "Your shop is closed" in page


def test_a_refused_edit_saves_nothing_and_keeps_the_preview_link_on_the_saved_address(client):
    ShopFactory(slug="taken-address")
    shop = ShopFactory(name="Old name", slug="mine")

    response = owner_client(client, shop).post(DETAILS_URL, details(shop, name="New name", slug="taken-address"))

    assert response.status_code == 400
    assert "slug" in response.context["form"].errors
    assert "Nothing was saved" in response.content.decode()
    assert 'href="/s/mine/"' in response.content.decode()
    shop.refresh_from_db()
    assert (shop.name, shop.slug) == ("Old name", "mine")


def test_a_good_png_logo_is_saved_under_a_name_from_its_content(client, media_root):
    shop = ShopFactory()

    response = owner_client(client, shop).post(DETAILS_URL, details(shop, logo=picture("My Photo.PNG")))

    assert response.status_code == 302
    shop.refresh_from_db()
    assert re.fullmatch(r"shops/logo(_\w+)?\.png", shop.logo.name)
    assert (media_root / shop.logo.name).is_file()
    with Image.open(media_root / shop.logo.name) as saved:
        assert (saved.format, saved.size) == ("PNG", (200, 200))


@pytest.mark.parametrize(
    ("upload", "image_format"),
    [(picture("photo.jpg", image_format="PNG"), "png"), (picture("photo.webp", image_format="JPEG"), "jpg")],
)
def test_the_logo_type_comes_from_the_content_not_the_name(client, upload, image_format):
    shop = ShopFactory()

    response = owner_client(client, shop).post(DETAILS_URL, details(shop, logo=upload))

    assert response.status_code == 302
    shop.refresh_from_db()
    assert shop.logo.name.endswith(f".{image_format}")


def _assert_logo_refused(client, shop: Shop, upload, message: str):
    original_name = shop.name
    response = owner_client(client, shop).post(DETAILS_URL, details(shop, name="Renamed", logo=upload))

    assert response.status_code == 400
    errors = response.context["form"].errors
    assert list(errors) == ["logo"]
    assert message in errors["logo"][0]
    shop.refresh_from_db()
    assert (shop.name, shop.logo.name) == (original_name, "")  # nothing at all was saved, not even the name


def test_a_text_file_named_png_is_refused(client, media_root):
    shop = ShopFactory()
    fake = SimpleUploadedFile("logo.png", b"<html>not a picture</html>", content_type="image/png")

    _assert_logo_refused(client, shop, fake, "not a picture we can read")
    assert not any(media_root.rglob("*.png"))


def test_an_oversized_logo_is_refused(client, settings, media_root):
    shop = ShopFactory()
    big = picture(size=(1000, 1000), noise=True)
    assert big.size > settings.SHOP_LOGO_MAX_BYTES == 2 * 1024 * 1024  # really over the limit, not a pretend one

    _assert_logo_refused(client, shop, big, "the largest accepted is 2.0")
    assert not any(media_root.rglob("*.png"))


def test_the_size_limit_is_a_setting(client, settings):
    settings.SHOP_LOGO_MAX_BYTES = 100
    shop = ShopFactory()

    _assert_logo_refused(client, shop, picture(), "the largest accepted is 100")


def test_a_gif_logo_is_refused_whatever_its_name(client):
    shop = ShopFactory()

    _assert_logo_refused(client, shop, picture("logo.png", image_format="GIF"), "PNG, JPEG or WebP")


@pytest.mark.parametrize(
    ("size", "message"), [((32, 200), "use at least 64 × 64"), ((4097, 100), "use at most 4096 × 4096")]
)
def test_a_logo_too_small_or_too_large_in_pixels_is_refused(client, size, message):
    shop = ShopFactory()

    _assert_logo_refused(client, shop, picture(size=size), message)


def test_the_logo_is_kept_when_no_new_file_is_sent_and_can_be_removed(client):
    shop = ShopFactory()
    owner_client(client, shop).post(DETAILS_URL, details(shop, logo=picture()))
    shop.refresh_from_db()
    saved = shop.logo.name

    client.post(DETAILS_URL, details(shop, description="Still here"))
    shop.refresh_from_db()
    assert (shop.description, shop.logo.name) == ("Still here", saved)

    client.post(DETAILS_URL, details(shop, remove_logo="on"))
    shop.refresh_from_db()
    assert shop.logo.name == ""


# --- The catalogue picker --------------------------------------------------------------


def test_search_by_title_and_filter_by_category(client):
    tea, snacks = CategoryFactory(name="Tea"), CategoryFactory(name="Snacks")
    ProductFactory(title="Longjing green tea", category=tea)
    ProductFactory(title="Green tea biscuits", category=snacks)
    ProductFactory(title="Oolong", category=tea, description="Not green tea at all")
    ProductFactory(title="Green tea (withdrawn)", category=tea, is_active=False)
    owner_client(client, ShopFactory())

    def titles(**params):
        response = client.get(CATALOGUE_URL, params)
        assert response.status_code == 200
        return sorted(row["product"].title for row in response.context["rows"])

    assert titles(q="GREEN TEA") == ["Green tea biscuits", "Longjing green tea"]
    assert titles(q="green tea", category=tea.pk) == ["Longjing green tea"]
    assert titles(category=tea.pk) == ["Longjing green tea", "Oolong"]
    assert titles(q="nothing like this") == []


def test_the_catalogue_is_paginated_and_keeps_the_search_in_page_links(client):
    tea = CategoryFactory(name="Tea")
    for number in range(45):
        ProductFactory(title=f"Tea {number:02d}", category=tea)
    ProductFactory(title="Cup", category=tea)
    owner_client(client, ShopFactory())

    first = client.get(CATALOGUE_URL, {"q": "tea"})
    last = client.get(CATALOGUE_URL, {"q": "tea", "page": 3})
    beyond = client.get(CATALOGUE_URL, {"q": "tea", "page": 99})

    assert len(first.context["rows"]) == 20
    assert [row["product"].title for row in last.context["rows"]] == [f"Tea {n}" for n in range(40, 45)]
    assert beyond.context["page"].number == 3
    assert 'href="?q=tea&amp;page=2"' in first.content.decode()


def test_owner_adds_and_removes_products_from_the_catalogue_page(client):
    shop = ShopFactory()
    tea = ProductFactory(title="Tea")
    owner_client(client, shop)
    here = f"{CATALOGUE_URL}?q=tea&page=1"

    added = client.post(here, {"action": "add", "id": tea.pk})
    again = client.post(here, {"action": "add", "id": tea.pk})

    assert (added.status_code, added["Location"]) == (302, f"{here}#product-{tea.pk}")  # back to the same row
    assert again.status_code == 302
    listing = ShopListing.objects.get(shop=shop)
    assert listing.product == tea
    assert "In my shop" in client.get(here).content.decode()

    client.post(here, {"action": "remove", "id": listing.pk})
    assert not ShopListing.objects.filter(shop=shop).exists()


def test_an_inactive_or_unknown_product_cannot_be_added(client):
    shop = ShopFactory()
    withdrawn = ProductFactory(is_active=False)
    owner_client(client, shop)

    assert client.post(CATALOGUE_URL, {"action": "add", "id": withdrawn.pk}).status_code == 404
    assert client.post(CATALOGUE_URL, {"action": "add", "id": 987654}).status_code == 404
    assert not ShopListing.objects.filter(shop=shop).exists()


def test_you_earn_about_is_the_sharers_share_under_the_plan_in_force(client):
    # given the default plan (80 % level 1, 20 % level 2) and policy (30 % payout ceiling)
    ProductFactory(title="A tea", price=Decimal("19.90"), commission_rate=Decimal("0.1000"))
    owner_client(client, ShopFactory())

    response = client.get(CATALOGUE_URL)

    # pool = 19.90 × 10 % = 1.99; level 1 = 1.99 × 80 % = 1.592, rounded down
    assert [row["earning"] for row in response.context["rows"]] == [Decimal("1.59")]
    assert earnings_shown(response) == ["¥1.59"]


def test_you_earn_about_is_capped_as_the_real_split_is(client):
    # 100.00 × 50 % = pool 50.00; 80 % of it is 40.00, but the policy pays members at most 30 % of 100.00
    ProductFactory(title="Generous", price=Decimal("100.00"), commission_rate=Decimal("0.5000"))
    owner_client(client, ShopFactory())

    response = client.get(CATALOGUE_URL)

    assert earnings_shown(response) == ["¥30.00"]


def test_you_earn_about_follows_a_new_plan(client):
    CommissionPlan.objects.create(
        version=2,
        name="Sharer takes all",
        level1_rate=Decimal("1.0000"),
        is_activated=True,
        effective_from=CommissionPlan.objects.get(version=1).effective_from.replace(year=2001),
    )
    ProductFactory(price=Decimal("19.90"), commission_rate=Decimal("0.1000"))
    owner_client(client, ShopFactory())

    assert earnings_shown(client.get(CATALOGUE_URL)) == ["¥1.99"]


def test_no_estimate_is_shown_when_no_plan_is_in_force(client):
    CommissionPlan.objects.update(is_activated=False)
    ProductFactory(title="A tea", price=Decimal("19.90"))
    shop = shop_with_products(ProductFactory(title="Listed"))
    owner_client(client, shop)

    catalogue = client.get(CATALOGUE_URL)
    products = client.get(PRODUCTS_URL)

    assert [row["earning"] for row in catalogue.context["rows"]] == [None, None]
    assert earnings_shown(catalogue) == earnings_shown(products) == []
    assert "¥19.90" in catalogue.content.decode()


def test_no_estimate_is_shown_when_no_policy_is_in_force(client):
    CompliancePolicy.objects.update(effective_from=CommissionPlan.objects.get().effective_from.replace(year=2999))
    ProductFactory()
    owner_client(client, ShopFactory())

    assert earnings_shown(client.get(CATALOGUE_URL)) == []


def _catalogue_queries(client, products: int) -> int:
    for _ in range(products):
        ProductFactory(image="products/tea.jpg")
    with CaptureQueriesContext(connection) as queries:
        response = client.get(CATALOGUE_URL, {"sort": "earn"})
    assert response.status_code == 200
    return len(queries)


def test_catalogue_page_queries_are_pinned_and_do_not_grow_with_products(client, django_assert_max_num_queries):
    shop = shop_with_products(*[ProductFactory() for _ in range(5)])
    owner_client(client, shop)
    few = _catalogue_queries(client, 0)  # 5 products, all listed

    for number in range(55):
        ProductFactory(category=CategoryFactory(name=f"Category {number}"))
    with django_assert_max_num_queries(11):  # +1: the unread notifications in the header (#22)
        response = client.get(CATALOGUE_URL)

    assert len(response.context["rows"]) == 20
    assert len(earnings_shown(response)) == 20
    assert _catalogue_queries(client, 0) == few


def test_my_products_page_queries_do_not_grow_with_listings(client, django_assert_max_num_queries):
    shop = shop_with_products(*[ProductFactory(category=CategoryFactory(name=f"C{n}")) for n in range(30)])
    owner_client(client, shop)

    with django_assert_max_num_queries(8):  # +1: the unread notifications in the header (#22)
        response = client.get(PRODUCTS_URL)

    assert len(response.context["rows"]) == 30


# --- Order and featured listings ----------------------------------------------------------


def _titles(shop: Shop) -> list[tuple[str, bool]]:
    return list(shop.listings.order_by("-is_featured", "position", "pk").values_list("product__title", "is_featured"))


def test_owner_moves_a_listing_up_and_down_and_the_shop_page_follows(client):
    shop = shop_with_products(*[ProductFactory(title=title) for title in ("A", "B", "C")])
    a, b, c = shop.listings.order_by("position")
    owner_client(client, shop)

    up = client.post(PRODUCTS_URL, {"action": "up", "id": c.pk})
    client.post(PRODUCTS_URL, {"action": "down", "id": a.pk})
    client.post(PRODUCTS_URL, {"action": "up", "id": c.pk})  # already first: stays
    client.post(PRODUCTS_URL, {"action": "down", "id": b.pk})  # already last: stays

    assert (up.status_code, up["Location"]) == (302, f"{PRODUCTS_URL}#listing-{c.pk}")
    assert _titles(shop) == [("C", False), ("A", False), ("B", False)]
    assert list(shop.listings.order_by("position").values_list("position", flat=True)) == [0, 1, 2]
    public = client.get(reverse("shops:shop_home", args=[shop.slug])).content.decode()
    assert public.index(">C<") < public.index(">A<") < public.index(">B<")


def test_featured_listings_show_first_and_move_only_among_themselves(client):
    shop = shop_with_products(*[ProductFactory(title=title) for title in ("A", "B", "C", "D")])
    a, b, c, d = shop.listings.order_by("position")
    owner_client(client, shop)

    client.post(PRODUCTS_URL, {"action": "feature", "id": c.pk})
    client.post(PRODUCTS_URL, {"action": "feature", "id": d.pk})
    assert _titles(shop) == [("C", True), ("D", True), ("A", False), ("B", False)]

    client.post(PRODUCTS_URL, {"action": "down", "id": d.pk})  # last featured: does not drop below A
    client.post(PRODUCTS_URL, {"action": "up", "id": a.pk})  # first of the rest: does not rise above D
    client.post(PRODUCTS_URL, {"action": "up", "id": d.pk})
    assert _titles(shop) == [("D", True), ("C", True), ("A", False), ("B", False)]

    client.post(PRODUCTS_URL, {"action": "unfeature", "id": d.pk})
    assert _titles(shop) == [("C", True), ("D", False), ("A", False), ("B", False)]
    page = client.get(PRODUCTS_URL)
    assert [(row["can_move_up"], row["can_move_down"]) for row in page.context["rows"]] == [
        (False, False),
        (False, True),
        (True, True),
        (True, False),
    ]


def test_owner_removes_a_listing(client):
    shop = shop_with_products(ProductFactory(title="Keep"), ProductFactory(title="Drop"))
    drop = shop.listings.get(product__title="Drop")

    response = owner_client(client, shop).post(PRODUCTS_URL, {"action": "remove", "id": drop.pk})

    assert response.status_code == 302
    assert _titles(shop) == [("Keep", False)]


def test_reorder_service_refuses_a_listing_of_another_shop_and_changes_nothing():
    mine, theirs = shop_with_products(), shop_with_products()
    their_listing = theirs.listings.order_by("position").last()

    with pytest.raises(ShopError) as refused:
        shop_listing_reorder(shop=mine, listing_id=their_listing.pk, offset=-1)

    assert refused.value.code == "not_listed"
    assert list(theirs.listings.order_by("pk").values_list("position", flat=True)) == [0, 1]


def test_the_dashboard_links_to_the_public_shop(client):
    shop = shop_with_products(slug="lis-tea")
    owner_client(client, shop)

    for url in (DETAILS_URL, PRODUCTS_URL, CATALOGUE_URL):
        page = client.get(url).content.decode()
        assert '<a class="preview" href="/s/lis-tea/">Preview my shop' in page


# --- Opening a shop and managing its listings, end to end ------------------------------------------------


def test_owner_opens_a_shop_and_manages_listings(client):
    member = MemberFactory()
    tea, cup = ProductFactory(title="Tea"), ProductFactory(title="Cup")
    client.force_login(member.user)

    reserved = client.post(reverse("members:my_shop"), {"name": "Mine", "slug": "admin", "description": ""})
    opened = client.post(reverse("members:my_shop"), {"name": "Mine", "slug": "My-Tea", "is_open": "on"})
    products_url = reverse("members:my_shop_products")
    client.post(products_url, {"action": "add", "id": tea.pk})
    client.post(products_url, {"action": "add", "id": cup.pk})
    cup_listing = ShopListing.objects.get(product=cup)
    client.post(products_url, {"action": "up", "id": cup_listing.pk})
    client.post(products_url, {"action": "feature", "id": cup_listing.pk})

    assert reserved.status_code == 400
    assert "reserved" in reserved.content.decode()
    assert opened.status_code == 302
    shop = member.shop.__class__.objects.get(owner=member)
    assert shop.slug == "my-tea"
    assert list(shop.listings.order_by("position").values_list("product__title", "is_featured")) == [
        ("Cup", True),
        ("Tea", False),
    ]


def test_another_member_cannot_touch_my_listings(client):
    shop = shop_with_products()
    listing = shop.listings.first()
    intruder = MemberFactory()
    ShopFactory(owner=intruder)
    client.force_login(intruder.user)

    response = client.post(reverse("members:my_shop_products"), {"action": "remove", "id": listing.pk})

    assert response.status_code == 404
    assert ShopListing.objects.filter(pk=listing.pk).exists()


def test_slug_taken_is_a_form_error(client):
    ShopFactory(slug="taken-name")
    member = MemberFactory()
    client.force_login(member.user)

    response = client.post(reverse("members:my_shop"), {"name": "Mine", "slug": "taken-name"})

    assert response.status_code == 400
    assert "taken" in response.content.decode() or "already exists" in response.content.decode()
