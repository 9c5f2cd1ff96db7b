"""Product pictures (issue #23): thumbnails in several sizes through sorl-thumbnail, a responsive lazy <img>, and a
placeholder tile when there is no picture or its file is missing or broken (never a 500)."""

import re
from io import BytesIO
from pathlib import Path

import pytest
from django.core.files.base import ContentFile
from django.template import Context, Template
from django.urls import reverse
from PIL import Image

from core import thumbnails
from core.thumbnails import responsive_image
from shops.models import Product, ProductMaterial
from tests.factories import ProductFactory, shop_with_products

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def media(settings, tmp_path) -> Path:
    settings.MEDIA_ROOT = str(tmp_path / "media")
    return Path(settings.MEDIA_ROOT)


def _png(size: int, colour=(200, 80, 40)) -> ContentFile:
    buffer = BytesIO()
    Image.new("RGB", (size, size), colour).save(buffer, format="PNG")
    return ContentFile(buffer.getvalue())


def _product_with_picture(size: int = 800, **kwargs) -> Product:
    product = ProductFactory(**kwargs)
    product.image.save("tea.png", _png(size))
    return product


def _render(source: str, **context) -> str:
    return Template("{% load product_images %}" + source).render(Context(context))


def _img(html: str) -> str:
    found = re.search(r"<img [^>]*class=\"pimg[^>]*>", html)
    assert found, html
    return found.group(0)


def test_thumbnails_are_made_in_each_width_of_the_preset_as_webp_files(media):
    product = _product_with_picture(800)

    picture = responsive_image(product.image, "card")

    assert [(thumbnail.width, thumbnail.height) for thumbnail in picture.thumbnails] == [
        (160, 160),
        (320, 320),
        (640, 640),
    ]
    for thumbnail in picture.thumbnails:
        path = media / thumbnail.url.removeprefix("/media/")
        assert path.is_file()
        with Image.open(path) as made:
            assert (made.format, made.size) == ("WEBP", (thumbnail.width, thumbnail.height))
    assert picture.srcset == ", ".join(f"{t.url} {t.width}w" for t in picture.thumbnails)
    assert picture.src == picture.thumbnails[1].url  # the first one at least as wide as the 200 px box


def test_the_tag_renders_a_lazy_responsive_img_with_its_size_and_the_title_as_alt():
    product = _product_with_picture(800, title="Longjing tea")

    img = _img(_render('{% product_image product.image product.title "card" %}', product=product))

    assert re.search(r'srcset="[^"]+ 160w, [^"]+ 320w, [^"]+ 640w"', img)
    assert 'sizes="(min-width: 36rem) 200px, 50vw"' in img
    assert 'width="200" height="200"' in img
    assert 'loading="lazy"' in img and 'decoding="async"' in img
    assert 'alt="Longjing tea"' in img
    assert "fetchpriority" not in img
    assert "style=" not in img


def test_the_first_picture_on_a_page_can_load_eagerly():
    product = _product_with_picture(800)

    img = _img(_render('{% product_image product.image product.title "page" eager=True %}', product=product))

    assert "loading=" not in img
    assert 'fetchpriority="high"' in img
    assert 'width="640" height="640"' in img


def test_a_small_picture_is_not_blown_up():
    product = _product_with_picture(100)

    picture = responsive_image(product.image, "card")

    assert [(thumbnail.width, thumbnail.height) for thumbnail in picture.thumbnails] == [(100, 100)]


def test_a_product_without_a_picture_gets_the_placeholder_tile_with_its_first_letter():
    product = ProductFactory(title="oolong tea")

    html = _render('{% product_image product.image product.title "card" %}', product=product)

    assert "<img" not in html
    assert 'class="noimg pimg-placeholder pimg-card"' in html
    assert 'role="img" aria-label="oolong tea"' in html
    assert '<span class="pimg-letter" aria-hidden="true">O</span>' in html
    assert "<svg" in html and "style=" not in html


def test_a_missing_file_gets_the_placeholder_and_is_not_tried_again_at_once(media, monkeypatch):
    product = _product_with_picture(800, title="Lost tea")
    (media / product.image.name).unlink()
    tries = []
    real_get_thumbnail = thumbnails.get_thumbnail
    monkeypatch.setattr(thumbnails, "get_thumbnail", lambda *a, **k: tries.append(1) or real_get_thumbnail(*a, **k))

    first = _render('{% product_image product.image product.title "card" %}', product=product)
    second = _render('{% product_image product.image product.title "card" %}', product=product)

    assert "<img" not in first and "pimg-placeholder" in first
    assert second == first
    assert len(tries) == 1  # the broken picture is remembered for THUMBNAIL_BROKEN_RETRY_SECONDS


@pytest.mark.parametrize(
    "content",
    [b"this is not a picture", b"\x89PNG\r\n\x1a\n" + b"\x00" * 40],
    ids=["text", "truncated-png"],
)
def test_a_broken_file_never_breaks_the_shop_pages(client, media, content):
    product = _product_with_picture(800, title="Broken tea")
    (media / product.image.name).write_bytes(content)
    shop = shop_with_products(product)

    home = client.get(reverse("shops:shop_home", args=[shop.slug]))
    page = client.get(reverse("shops:product_detail", args=[shop.slug, product.pk]))

    assert home.status_code == page.status_code == 200
    assert 'aria-label="Broken tea"' in home.content.decode()
    assert "pimg-placeholder pimg-page" in page.content.decode()


def test_the_shop_cart_and_product_pages_show_thumbnails(client):
    first, second = _product_with_picture(800, title="Alpha tea"), ProductFactory(title="Beta tea")
    shop = shop_with_products(first, second)

    home = client.get(reverse("shops:shop_home", args=[shop.slug])).content.decode()
    client.post(reverse("shops:product_detail", args=[shop.slug, first.pk]), {"quantity": 1})
    page = client.get(reverse("shops:product_detail", args=[shop.slug, first.pk])).content.decode()
    cart = client.get(reverse("shops:cart", args=[shop.slug])).content.decode()

    assert all("css/site.css" in html for html in (home, cart, page))  # the picture styles are site.css's
    card = _img(home[home.index("Alpha tea") - 2000 :])
    assert " 640w" in card and 'alt="Alpha tea"' in card
    assert 'aria-label="Beta tea"' in home  # the product without a picture
    product_img = _img(page[page.index("product-image") - 600 :])
    assert 'fetchpriority="high"' in product_img and 'sizes="(min-width: 42rem)' in product_img
    cart_img = _img(cart[cart.index("Your cart") :])
    assert 'sizes="56px"' in cart_img and " 80w" in cart_img and 'alt="Alpha tea"' in cart_img


def test_a_shop_logo_is_a_small_thumbnail_and_a_shop_without_one_shows_its_initial(client):
    shop = shop_with_products(name="Sun's Tea")

    without = client.get(reverse("shops:shop_home", args=[shop.slug])).content.decode()
    shop.logo.save("logo.png", _png(400))
    with_logo = client.get(reverse("shops:shop_home", args=[shop.slug])).content.decode()

    assert '<span class="pimg-letter" aria-hidden="true">S</span>' in without
    assert "pimg-logo" in without
    logo = _img(with_logo)
    assert 'sizes="56px"' in logo and " 160w" in logo and 'alt="Sun&#x27;s Tea"' in logo


def test_every_template_that_showed_a_picture_uses_the_include():
    templates = Path(__file__).resolve().parents[2] / "templates"
    offenders = [
        f"{path.relative_to(templates)}: {line.strip()[:80]}"
        for path in templates.rglob("*.html")
        for line in path.read_text().splitlines()
        if re.search(r"<img[^>]+src=\"\{\{ *[\w.]*(image|logo)\.url", line) or 'class="noimg"' in line
    ]
    assert offenders == []


def test_my_shop_lists_show_row_thumbnails_and_the_placeholder(client):
    pictured, bare = _product_with_picture(800, title="Alpha tea"), ProductFactory(title="Beta tea")
    shop = shop_with_products(pictured, bare)
    client.force_login(shop.owner.user)

    for name in ("members:my_shop_products", "members:my_shop_catalogue"):
        html = client.get(reverse(name)).content.decode()

        assert "css/site.css" in html
        img = _img(html[html.index('class="items"') :])
        assert 'alt="Alpha tea"' in img and 'sizes="56px"' in img and " 80w" in img and " 160w" in img
        assert 'role="img" aria-label="Beta tea"' in html


def test_the_share_page_shows_the_product_and_its_material_pictures_as_thumbnails(client):
    product = _product_with_picture(800, title="Alpha tea")
    material = ProductMaterial(product=product, position=1)
    material.image.save("poster.png", _png(1000), save=False)
    material.save()
    shop = shop_with_products(product)
    client.force_login(shop.owner.user)
    client.post(reverse("members:share_product", args=[product.pk]), {"action": "add"})

    html = client.get(reverse("members:share_product", args=[product.pk])).content.decode()

    head = _img(html)
    assert 'sizes="72px"' in head and 'alt="Alpha tea"' in head and 'fetchpriority="high"' in head
    materials = html[html.index('id="share-materials"') :]
    picture = _img(materials)
    assert 'sizes="(min-width: 24rem) 320px, 100vw"' in picture and " 640w" in picture
    assert f'href="{material.image.url}" download' in materials  # saving keeps the original
