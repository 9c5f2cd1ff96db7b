"""Every uploaded image is checked by content, byte size and pixel size (core.images), wherever it comes from:
product images in admin, shop logos (the dashboard form has its own field on top), anything that validates the
model."""

import io
import os

import pytest
from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from PIL import Image

from shops.models import Product, Shop
from tests.factories import CategoryFactory, ProductFactory, ShopFactory, inline_management_data

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def media_root(settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path / "media")


def picture(name="picture.png", *, size=(200, 200), image_format="PNG", noise=False):
    image = Image.frombytes("RGB", size, os.urandom(size[0] * size[1] * 3)) if noise else Image.new("RGB", size, "red")
    buffer = io.BytesIO()
    image.save(buffer, format=image_format)
    return SimpleUploadedFile(name, buffer.getvalue(), content_type="image/png")


def not_an_image():
    return SimpleUploadedFile("picture.png", b"#!/bin/sh\necho this is not a picture\n" * 20, content_type="image/png")


def product_with(upload) -> Product:
    product = ProductFactory.build(category=CategoryFactory())
    product.image = upload
    return product


def image_error(instance, field) -> list[str]:
    with pytest.raises(ValidationError) as raised:
        instance.full_clean()
    return [error.code for error in raised.value.error_dict[field]]


def test_a_good_product_image_passes():
    product_with(picture()).full_clean()


def test_a_product_image_too_large_in_bytes_is_refused(settings):
    settings.IMAGE_UPLOAD_MAX_BYTES = 20_000

    assert image_error(product_with(picture(size=(300, 300), noise=True)), "image") == ["too_large"]


def test_a_non_image_renamed_png_is_refused():
    assert image_error(product_with(not_an_image()), "image") == ["invalid_image"]


def test_a_product_image_too_large_in_pixels_is_refused(settings):
    settings.IMAGE_UPLOAD_MAX_SIDE = 1000

    assert image_error(product_with(picture(size=(1001, 80))), "image") == ["too_big"]


def test_a_tiny_image_and_a_gif_are_refused():
    assert image_error(product_with(picture(size=(20, 20))), "image") == ["too_small"]
    assert image_error(product_with(picture("anim.png", image_format="GIF")), "image") == ["format"]


def test_shop_logos_are_checked_on_the_model_too(settings):
    settings.SHOP_LOGO_MAX_SIDE = 500
    shop = ShopFactory()
    shop.logo = picture(size=(600, 600))

    assert image_error(shop, "logo") == ["too_big"]
    assert Shop.objects.get(pk=shop.pk).logo.name == ""


def admin_product_data(**changes):
    data = {
        "title_en": "Tea",  # catalogue content in both languages (django-modeltranslation): English is required
        "title_zh_hans": "",
        "description_en": "",
        "description_zh_hans": "",
        "category": CategoryFactory().pk,
        "price": "9.90",
        "stock": "5",
        "is_active": "on",
        "commission_rate": "0.1000",
    }
    data.update(changes)
    return data


@pytest.mark.parametrize(
    ("upload", "limits"),
    [
        (lambda: picture(size=(300, 300), noise=True), {"IMAGE_UPLOAD_MAX_BYTES": 20_000}),
        (not_an_image, {}),
        (lambda: picture(size=(2000, 100)), {"IMAGE_UPLOAD_MAX_SIDE": 1000}),
    ],
    ids=["too-many-bytes", "not-an-image", "too-many-pixels"],
)
def test_admin_refuses_a_bad_product_image_and_saves_nothing(admin_client, settings, upload, limits):
    for name, value in limits.items():
        setattr(settings, name, value)

    response = admin_client.post(reverse("admin:shops_product_add"), admin_product_data(image=upload()))

    assert response.status_code == 200
    assert response.context["adminform"].form.errors["image"]
    assert not Product.objects.filter(title="Tea").exists()


def test_admin_saves_a_good_product_image(admin_client):
    add = reverse("admin:shops_product_add")
    inlines = inline_management_data(admin_client.get(add))  # the sharing materials' inline, left empty
    response = admin_client.post(add, {**admin_product_data(image=picture()), **inlines})

    assert response.status_code == 302
    assert Product.objects.get(title="Tea").image.name.startswith("products/")
