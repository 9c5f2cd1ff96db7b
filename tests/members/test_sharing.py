"""One-tap sharing (issue #22): the share pages, posters, 分享赚 on the shop pages and in the catalogue picker,
materials, and that nobody reaches another member's link or poster."""

import io
import re
from decimal import Decimal
from pathlib import Path

import pytest
from django.core.cache import cache
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from PIL import Image

from commissions.selectors import earning_terms_in_force, sharer_earning
from members import posters
from members.links import invite_url, share_link_url
from referrals.models import Member
from referrals.services import member_set_status
from shops.models import ProductMaterial, ShareLink, ShopListing
from tests.factories import MemberFactory, ProductFactory, shop_with_products
from tests.members.test_posters import decode_qr, matrix

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def media_root(settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path / "media")
    return Path(settings.MEDIA_ROOT)


def as_member(client, member):
    client.force_login(member.user)
    return client


def shared_link(client, product, **product_changes) -> ShareLink:
    """`product` in a new member's shop, that member signed in on `client`, and their link from its share page."""
    shop = shop_with_products(product)
    as_member(client, shop.owner)
    client.get(reverse("members:share_product", args=[product.pk]))
    return ShareLink.objects.get(owner=shop.owner, product=product)


def expected_earning(product) -> Decimal:
    return sharer_earning(earning_terms_in_force(), price=product.price, commission_rate=product.commission_rate)


def earn_figures(response) -> list[Decimal]:
    return [Decimal(value) for value in re.findall(r'data-earn="([\d.]+)"', response.content.decode())]


def poster_qr_matches(png: bytes, url: str) -> bool:
    """Whether the poster's QR code, read off its pixels, is the code of `url`."""
    return decode_qr(png, url) == matrix(url)


# --- The product's share page -------------------------------------------------------------------------------


def test_share_page_shows_earning_link_qr_and_poster(client):
    product = ProductFactory(title="Oolong", price=Decimal("128.00"), commission_rate=Decimal("0.2000"))
    shop = shop_with_products(product)
    as_member(client, shop.owner)

    response = client.get(reverse("members:share_product", args=[product.pk]))

    assert response.status_code == 200
    link = ShareLink.objects.get(owner=shop.owner, product=product)
    page = response.content.decode()
    assert share_link_url(link) in page
    assert "<svg" in page  # the QR code on screen, not only a download
    assert reverse("members:link_poster", args=[link.pk]) in page
    assert earn_figures(response) == [expected_earning(product)]
    assert expected_earning(product) > 0


def test_share_page_reuses_the_members_link(client):
    product = ProductFactory()
    shop = shop_with_products(product)
    as_member(client, shop.owner)
    url = reverse("members:share_product", args=[product.pk])

    client.get(url)
    client.get(url)

    assert ShareLink.objects.filter(owner=shop.owner, product=product).count() == 1


def test_product_not_in_the_shop_is_added_then_shared(client):
    shop = shop_with_products(ProductFactory())
    product = ProductFactory()
    as_member(client, shop.owner)
    url = reverse("members:share_product", args=[product.pk])

    page = client.get(url)
    assert page.status_code == 200
    assert earn_figures(page) == [expected_earning(product)]
    assert not ShareLink.objects.filter(product=product).exists()  # no link to a product not in the shop

    response = client.post(url, {"action": "add"})

    assert response.status_code == 302
    assert ShopListing.objects.filter(shop=shop, product=product).exists()
    assert ShareLink.objects.filter(owner=shop.owner, product=product).count() == 0
    client.get(url)
    assert ShareLink.objects.filter(owner=shop.owner, product=product).count() == 1


def test_share_page_bad_inputs(client):
    shop = shop_with_products(ProductFactory())
    as_member(client, shop.owner)

    assert client.get(reverse("members:share_product", args=[999999])).status_code == 404
    listed = shop.listings.first().product
    assert client.post(reverse("members:share_product", args=[listed.pk]), {"action": "x"}).status_code == 400


def test_share_pages_need_a_member(client):
    url = reverse("members:share_shop")
    assert client.get(url).status_code == 302  # to the login page


# --- Posters --------------------------------------------------------------------------------------------------


def test_link_poster_is_a_png_whose_qr_is_the_members_link(client):
    product = ProductFactory(title="有机高山乌龙茶 gift box")
    link = shared_link(client, product)

    response = client.get(reverse("members:link_poster", args=[link.pk]))

    assert response.status_code == 200
    assert response["Content-Type"] == "image/png"
    assert "private" in response["Cache-Control"]
    png = response.content
    assert Image.open(io.BytesIO(png)).size == (posters.WIDTH, posters.HEIGHT)
    assert poster_qr_matches(png, share_link_url(link))
    download = client.get(reverse("members:link_poster", args=[link.pk]), {"download": "1"})
    assert download["Content-Disposition"] == f'attachment; filename="poster-{link.code}.png"'
    assert download.content == png


def test_poster_with_a_product_picture(client):
    product = ProductFactory()
    buffer = io.BytesIO()
    Image.new("RGB", (400, 400), (10, 120, 60)).save(buffer, format="PNG")
    product.image = SimpleUploadedFile("tea.png", buffer.getvalue(), content_type="image/png")
    product.save()
    link = shared_link(client, product)

    png = client.get(reverse("members:link_poster", args=[link.pk])).content

    red, green, blue = Image.open(io.BytesIO(png)).convert("RGB").getpixel((375, 300))
    assert abs(green - 120) < 8 and red < 20


def test_poster_is_served_from_the_cache_until_the_product_changes(client, monkeypatch):
    cache.clear()
    product = ProductFactory(price=Decimal("10.00"))
    link = shared_link(client, product)
    drawn = []
    real = posters.render_poster
    monkeypatch.setattr(posters, "render_poster", lambda content: drawn.append(content) or real(content))
    url = reverse("members:link_poster", args=[link.pk])

    client.get(url)
    client.get(url)
    assert len(drawn) == 1

    product.price = Decimal("12.00")
    product.save()
    client.get(url)
    assert len(drawn) == 2
    assert drawn[-1].price == "¥12.00"


def test_another_member_gets_404_for_someone_elses_poster_and_page(client):
    product = ProductFactory()
    link = shared_link(client, product)
    intruder = shop_with_products(ProductFactory()).owner
    as_member(client, intruder)

    assert client.get(reverse("members:link_poster", args=[link.pk])).status_code == 404
    assert client.get(reverse("members:link_poster", args=[link.pk]), {"download": 1}).status_code == 404
    assert client.get(reverse("members:link_poster_page", args=[link.pk])).status_code == 404
    # Their own share page for the same product gives their own link, never the owner's.
    page = client.get(reverse("members:share_product", args=[product.pk])).content.decode()
    assert share_link_url(link) not in page


def test_switched_off_link_has_no_poster(client):
    product = ProductFactory()
    link = shared_link(client, product)
    ShareLink.objects.filter(pk=link.pk).update(is_active=False)

    assert client.get(reverse("members:link_poster", args=[link.pk])).status_code == 404
    # The share page makes a new working link.
    client.get(reverse("members:share_product", args=[product.pk]))
    assert ShareLink.objects.filter(product=product, is_active=True).count() == 1


def test_poster_page_for_long_press(client):
    product = ProductFactory()
    link = shared_link(client, product)

    page = client.get(reverse("members:link_poster_page", args=[link.pk]))

    assert page.status_code == 200
    assert reverse("members:link_poster", args=[link.pk]) in page.content.decode()
    assert "Press and hold the poster" in page.content.decode()


def test_shop_and_invite_posters(client):
    shop = shop_with_products(ProductFactory())
    member = shop.owner
    as_member(client, member)

    assert client.get(reverse("members:share_shop")).status_code == 200
    link = ShareLink.objects.get(owner=member, product=None)
    shop_png = client.get(reverse("members:link_poster", args=[link.pk])).content
    assert poster_qr_matches(shop_png, share_link_url(link))

    assert client.get(reverse("members:share_invite")).status_code == 200
    assert client.get(reverse("members:invite_poster_page")).status_code == 200
    invite_png = client.get(reverse("members:invite_poster")).content
    assert poster_qr_matches(invite_png, invite_url(member))


def test_invite_poster_of_a_member_without_a_shop(client):
    member = MemberFactory()
    as_member(client, member)

    response = client.get(reverse("members:invite_poster"))

    assert response.status_code == 200
    assert poster_qr_matches(response.content, invite_url(member))


# --- 分享赚 on the shop pages and in the catalogue picker ------------------------------------------------------


def test_signed_in_member_sees_earning_on_shop_and_product_pages(client):
    cheap = ProductFactory(price=Decimal("19.90"), commission_rate=Decimal("0.1000"))
    dear = ProductFactory(price=Decimal("388.00"), commission_rate=Decimal("0.2500"))
    shop = shop_with_products(cheap, dear)
    visitor = MemberFactory()
    as_member(client, visitor)

    home = client.get(reverse("shops:shop_home", args=[shop.slug]))
    product_page = client.get(reverse("shops:product_detail", args=[shop.slug, dear.pk]))

    assert sorted(re.findall(r"Share to earn (¥[\d.,]+)", home.content.decode())) == sorted(
        [f"¥{expected_earning(cheap)}", f"¥{expected_earning(dear)}"]
    )
    assert earn_figures(product_page) == [expected_earning(dear)]
    assert reverse("members:share_product", args=[dear.pk]) in product_page.content.decode()


def test_owner_sees_share_my_shop_on_their_shop(client):
    shop = shop_with_products(ProductFactory())
    as_member(client, shop.owner)

    home = client.get(reverse("shops:shop_home", args=[shop.slug]))

    assert reverse("members:share_shop") in home.content.decode()


def test_buyers_see_no_earning(client):
    product = ProductFactory()
    shop = shop_with_products(product)

    home = client.get(reverse("shops:shop_home", args=[shop.slug]))
    page = client.get(reverse("shops:product_detail", args=[shop.slug, product.pk]))

    for response in (home, page):
        assert "Share to earn" not in response.content.decode()
        assert "share-bar" not in response.content.decode()


def test_earning_reads_the_plan_once_per_page(client, django_assert_max_num_queries):
    shop = shop_with_products(*[ProductFactory() for _ in range(8)])
    as_member(client, MemberFactory())
    url = reverse("shops:shop_home", args=[shop.slug])
    client.get(url)

    with django_assert_max_num_queries(9):  # as many for one product as for eight (+1: the header's unread count)
        client.get(url)


def test_share_page_query_count(client, django_assert_max_num_queries):
    product = ProductFactory()
    link = shared_link(client, product)
    ProductMaterial.objects.create(product=product, text="Words")

    with django_assert_max_num_queries(11):  # +1: the unread notifications in the header
        page = client.get(reverse("members:share_product", args=[product.pk]))
    with django_assert_max_num_queries(6):
        client.get(reverse("members:link_poster", args=[link.pk]))

    assert page.status_code == 200


def test_catalogue_picker_offers_share_with_the_earning(client):
    listed = ProductFactory(price=Decimal("50.00"), commission_rate=Decimal("0.3000"))
    shop = shop_with_products(listed)
    as_member(client, shop.owner)

    response = client.get(reverse("members:my_shop_catalogue"))

    page = response.content.decode()
    assert reverse("members:share_product", args=[listed.pk]) in page
    assert f"Share to earn ¥{expected_earning(listed)}" in page


# --- Materials ------------------------------------------------------------------------------------------------


def test_materials_copy_with_the_members_link(client):
    product = ProductFactory()
    ProductMaterial.objects.create(product=product, text="Fresh spring tea, picked by hand.", position=1)
    ProductMaterial.objects.create(product=product, text="Hidden", is_active=False)
    shop = shop_with_products(product)
    as_member(client, shop.owner)

    page = client.get(reverse("members:share_product", args=[product.pk])).content.decode()

    link = ShareLink.objects.get(product=product)
    assert f'data-copy="Fresh spring tea, picked by hand.&#10;{share_link_url(link)}"' in page
    assert "Hidden" not in page


def test_staff_add_materials_in_the_product_admin(admin_client):
    product = ProductFactory()

    page = admin_client.get(reverse("admin:shops_product_change", args=[product.pk]))

    assert page.status_code == 200
    assert "materials-TOTAL_FORMS" in page.content.decode()


def test_suspended_member_sees_no_share_bar(client):
    product = ProductFactory()
    shop = shop_with_products(product)
    visitor = MemberFactory()
    member_set_status(member=visitor, status=Member.Status.SUSPENDED, actor=None, reason="under review")
    as_member(client, visitor)

    page = client.get(reverse("shops:product_detail", args=[shop.slug, product.pk])).content.decode()

    assert "share-bar" not in page
    assert client.get(reverse("members:share_product", args=[product.pk])).status_code == 403


def test_a_product_no_longer_for_sale_is_not_shared(client):
    product = ProductFactory()
    shop = shop_with_products(product)
    product.is_active = False
    product.save()
    as_member(client, shop.owner)

    assert client.get(reverse("members:share_product", args=[product.pk])).status_code == 404
    assert not ShareLink.objects.filter(product=product).exists()


def test_a_member_without_a_shop_is_asked_to_open_one(client):
    as_member(client, MemberFactory())

    for url in (reverse("members:share_shop"), reverse("members:share_product", args=[ProductFactory().pk])):
        response = client.get(url)
        assert response.status_code == 302
        assert response["Location"] == reverse("members:my_shop")
