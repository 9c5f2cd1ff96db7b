"""Thumbnails of stored pictures (product images, shop logos, materials) for a responsive <img>.

`responsive_image(field_file, preset)` asks sorl-thumbnail for the preset's widths and returns what an <img> needs:
`src`, `srcset`, `sizes`, `width` and `height` (so the page does not shift while the picture loads). sorl writes each
thumbnail once through the default storage and remembers it in its key-value store (settings THUMBNAIL_*); later
pages read the store only.

A picture that is missing or cannot be decoded never breaks a page: the answer is None and the template shows the
placeholder. Such a file is not tried again for THUMBNAIL_BROKEN_RETRY_SECONDS, so a page full of broken pictures
does not reread them on every request.
"""

import logging
from dataclasses import dataclass

from django.conf import settings
from django.core.cache import cache
from sorl.thumbnail import get_thumbnail

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Preset:
    """How a picture is shown in one kind of place. `box`: its width in CSS pixels at the widest (the width and
    height attributes); `widths`: the thumbnail widths offered in srcset; `sizes`: the <img sizes> media list;
    `square`: cropped to a centred square (else the picture keeps its shape)."""

    box: int
    widths: tuple[int, ...]
    sizes: str
    square: bool = True


PRESETS = {
    # A product card in the shop's grid: two columns on a phone, three of about 200 px from 36rem on.
    "card": Preset(box=200, widths=(160, 320, 640), sizes="(min-width: 36rem) 200px, 50vw"),
    # The product page's main picture: the width of the page's column, at most 640 px.
    "page": Preset(box=640, widths=(320, 640), sizes="(min-width: 42rem) 608px, calc(100vw - 4rem)"),
    # A line of a list (cart, My shop's products and catalogue): 56 px.
    "row": Preset(box=56, widths=(80, 160), sizes="56px"),
    # The share page's heading picture: 72 px.
    "share": Preset(box=72, widths=(80, 160), sizes="72px"),
    # A shop's logo beside its name: 56 px (72 on the share and My shop pages).
    "logo": Preset(box=56, widths=(80, 160), sizes="56px"),
    "logo-large": Preset(box=72, widths=(80, 160), sizes="72px"),
    # A share material: up to 320 px wide, its own shape.
    "material": Preset(box=320, widths=(320, 640), sizes="(min-width: 24rem) 320px, 100vw", square=False),
}


@dataclass(frozen=True)
class Thumbnail:
    url: str
    width: int
    height: int


@dataclass(frozen=True)
class ResponsiveImage:
    thumbnails: tuple[Thumbnail, ...]  # narrowest first, distinct widths
    sizes: str
    width: int
    height: int

    @property
    def src(self) -> str:
        """The fallback for browsers without srcset: the first thumbnail at least as wide as the box."""
        for thumbnail in self.thumbnails:
            if thumbnail.width >= self.width:
                return thumbnail.url
        return self.thumbnails[-1].url

    @property
    def srcset(self) -> str:
        return ", ".join(f"{thumbnail.url} {thumbnail.width}w" for thumbnail in self.thumbnails)


def _broken_key(field_file) -> str:
    return f"thumbnail-broken:{field_file.name}"


def responsive_image(field_file, preset: str) -> ResponsiveImage | None:
    """The thumbnails of `field_file` (an ImageField's file) for `preset` (a key of PRESETS), or None when there is no
    picture or it cannot be read (missing, truncated, not an image). Never raises for a bad file."""
    shape = PRESETS[preset]
    if not field_file or not getattr(field_file, "name", ""):
        return None
    if cache.get(_broken_key(field_file)):
        return None
    thumbnails: list[Thumbnail] = []
    try:
        for width in shape.widths:
            if shape.square:
                made = get_thumbnail(field_file, f"{width}x{width}", crop="center", upscale=False)
            else:
                made = get_thumbnail(field_file, f"{width}", upscale=False)
            if not made.size:  # sorl's answer when it could not read the source: a name with no file behind it
                raise OSError(f"no thumbnail made for {field_file.name!r}")
            thumbnail = Thumbnail(url=made.url, width=made.width, height=made.height)
            if thumbnails and thumbnail.width <= thumbnails[-1].width:
                break  # a small source: upscale=False gave the same picture again
            thumbnails.append(thumbnail)
    except Exception:  # Pillow and the storages raise many kinds; a picture must never break the page
        logger.warning("Picture %s could not be thumbnailed; showing the placeholder", field_file.name, exc_info=True)
        cache.set(_broken_key(field_file), True, settings.THUMBNAIL_BROKEN_RETRY_SECONDS)
        return None
    largest = thumbnails[-1]
    height = shape.box if shape.square else max(1, round(shape.box * largest.height / largest.width))
    return ResponsiveImage(thumbnails=tuple(thumbnails), sizes=shape.sizes, width=shape.box, height=height)


PRODUCT_PRESETS = ("card", "page", "row", "share")


def thumbnails_make(field_file, presets: tuple[str, ...] = PRODUCT_PRESETS) -> bool:
    """Make the thumbnails of `presets` now (sorl would make them on the first page that shows them), so that page
    is quick. Idempotent: made thumbnails are found in the key-value store. False when the picture is unreadable."""
    return all(responsive_image(field_file, preset) is not None for preset in presets)
