"""One check for every uploaded image (product images, shop logos): type by content, size, dimensions.

`image_upload_check` is the rule; `ImageUploadValidator` puts it on a model's ImageField, so admin, the dashboard
forms and anything else that validates the model refuse the same files. Only PNG, JPEG and WebP, recognised by
Pillow from the bytes (a renamed text file is refused whatever its name); the byte size is checked before Pillow
reads anything, the pixel size from the header before any decoding (no decompression bombs).
"""

from django.conf import settings
from django.core.exceptions import ValidationError
from django.template.defaultfilters import filesizeformat
from django.utils.deconstruct import deconstructible
from django.utils.translation import gettext_lazy as _
from PIL import Image

IMAGE_FORMATS = {"PNG": "png", "JPEG": "jpg", "WEBP": "webp"}

MESSAGES = {
    "invalid_image": _("This file is not a picture we can read. Upload a PNG, JPEG or WebP image."),
    "too_large": _("This picture is %(size)s; the largest accepted is %(limit)s."),
    "format": _("Upload a PNG, JPEG or WebP image (this one is %(format)s)."),
    "too_small": _("This picture is %(width)s × %(height)s pixels; use at least %(min)s × %(min)s."),
    "too_big": _("This picture is %(width)s × %(height)s pixels; use at most %(max)s × %(max)s."),
}


def image_upload_check(upload, *, max_bytes: int, min_side: int, max_side: int) -> str:
    """Raise ValidationError unless `upload` (a file object) is an acceptable image; return its Pillow format."""
    size = getattr(upload, "size", None)
    if size is not None and size > max_bytes:
        raise ValidationError(
            MESSAGES["too_large"],
            code="too_large",
            params={"size": filesizeformat(size), "limit": filesizeformat(max_bytes)},
        )
    position = upload.tell() if hasattr(upload, "tell") else None
    try:
        upload.seek(0)
        with Image.open(upload) as image:  # reads the header only
            image_format, (width, height) = image.format, image.size
            if image_format in IMAGE_FORMATS and max(width, height) <= max_side:
                image.verify()  # walks the data without decoding it into memory
    except ValidationError:
        raise
    except Exception as error:  # Pillow raises many kinds for a broken or hostile file
        raise ValidationError(MESSAGES["invalid_image"], code="invalid_image") from error
    finally:
        if position is not None:
            upload.seek(position)
    if image_format not in IMAGE_FORMATS:
        raise ValidationError(MESSAGES["format"], code="format", params={"format": image_format or "?"})
    if min(width, height) < min_side:
        raise ValidationError(
            MESSAGES["too_small"], code="too_small", params={"width": width, "height": height, "min": min_side}
        )
    if max(width, height) > max_side:
        raise ValidationError(
            MESSAGES["too_big"], code="too_big", params={"width": width, "height": height, "max": max_side}
        )
    return image_format


@deconstructible
class ImageUploadValidator:
    """For an ImageField: checks a new upload with the limits in the named settings (read when it runs, so they
    stay settings and not migration state). A file already stored was checked when it was uploaded."""

    def __init__(self, max_bytes_setting: str, min_side_setting: str, max_side_setting: str) -> None:
        self.max_bytes_setting = max_bytes_setting
        self.min_side_setting = min_side_setting
        self.max_side_setting = max_side_setting

    def __call__(self, value) -> None:
        if not value or getattr(value, "_committed", False):
            return
        upload = getattr(value, "_file", None) or getattr(value, "file", None) or value
        image_upload_check(
            upload,
            max_bytes=getattr(settings, self.max_bytes_setting),
            min_side=getattr(settings, self.min_side_setting),
            max_side=getattr(settings, self.max_side_setting),
        )

    def __eq__(self, other) -> bool:
        return isinstance(other, ImageUploadValidator) and self.__dict__ == other.__dict__


validate_product_image = ImageUploadValidator(
    "IMAGE_UPLOAD_MAX_BYTES", "IMAGE_UPLOAD_MIN_SIDE", "IMAGE_UPLOAD_MAX_SIDE"
)
validate_shop_logo = ImageUploadValidator("SHOP_LOGO_MAX_BYTES", "SHOP_LOGO_MIN_SIDE", "SHOP_LOGO_MAX_SIDE")
