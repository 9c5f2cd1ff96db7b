"""The demo catalogue's pictures (issue #23): drawn per product at seed time, stored once, thumbnails made."""

from io import BytesIO
from pathlib import Path

import pytest
from django.core.files.base import ContentFile
from PIL import Image

from demo import shops as demo_shops
from demo.images import SHAPES, SIZE, product_picture
from shops.models import Product

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def media(settings, tmp_path) -> Path:
    settings.MEDIA_ROOT = str(tmp_path / "media")
    return Path(settings.MEDIA_ROOT)


def _files(media: Path) -> dict[str, int]:
    return {str(path.relative_to(media)): path.stat().st_mtime_ns for path in media.rglob("*") if path.is_file()}


def test_every_demo_product_gets_its_own_drawn_picture_and_its_thumbnails(media):
    products = demo_shops._catalogue()

    assert len(products) == len(demo_shops.PRODUCTS)
    pictures = set()
    for product in products:
        assert product.image.name.startswith("products/demo/") and product.image.name.endswith(".jpg")
        with Image.open(media / product.image.name) as picture:
            assert (picture.format, picture.size) == ("JPEG", (SIZE, SIZE))
            pictures.add(picture.tobytes())
    assert len(pictures) == len(products)  # no two alike
    made = list((media / "cache").rglob("*.webp"))
    assert len(made) == 4 * len(products)  # 80, 160, 320 and 640 px, shared by the presets


def test_each_product_has_a_drawing_of_its_own():
    assert set(demo_shops.PICTURES) == {item.title for item in demo_shops.PRODUCTS}
    assert set(demo_shops.PICTURES.values()) | set(demo_shops.CATEGORY_PICTURES.values()) <= set(SHAPES)


def test_the_same_product_always_gets_the_same_picture():
    assert product_picture("Tea", (46, 125, 50), "tin") == product_picture("Tea", (46, 125, 50), "tin")
    assert product_picture("Tea", (46, 125, 50), "tin") != product_picture("Tea", (46, 125, 50), "cake")


def test_seeding_again_draws_nothing_and_writes_no_file(media, monkeypatch):
    demo_shops._catalogue()
    files = _files(media)
    made = []
    monkeypatch.setattr(demo_shops, "product_picture", lambda *args: made.append(args) or b"")

    demo_shops._catalogue()

    assert _files(media) == files
    assert made == []


def test_a_fresh_database_over_the_same_media_reuses_the_stored_pictures(media):
    demo_shops._catalogue()
    files = _files(media)
    Product.objects.update(image="")

    demo_shops._catalogue()

    assert _files(media) == files
    assert all(product.image.name.startswith("products/demo/") for product in Product.objects.all())


def _png() -> ContentFile:
    buffer = BytesIO()
    Image.new("RGB", (480, 480), (10, 20, 30)).save(buffer, format="PNG")
    return ContentFile(buffer.getvalue())


def test_the_older_lettered_demo_picture_is_replaced_and_a_staff_upload_is_kept(media):
    longjing, tieguanyin = demo_shops.PRODUCTS[0], demo_shops.PRODUCTS[1]
    old = Product.objects.create(title=longjing.title, price=longjing.price)
    old.image.save("west-lake-longjing-green-tea-250-g.png", _png())  # what the demo drew before
    old_file = media / old.image.name
    own = Product.objects.create(title=tieguanyin.title, price=tieguanyin.price)
    own.image.save("our-photo.png", _png())

    demo_shops._catalogue()

    old.refresh_from_db()
    own.refresh_from_db()
    assert old.image.name == "products/demo/west-lake-longjing-green-tea-250-g.jpg"
    assert not old_file.exists()
    assert own.image.name == "products/our-photo.png"
