"""Share posters: one PNG a member saves and posts (a product, their shop, or their invite), drawn on the server
with Pillow. Product picture on top, the title (two lines at most, "…" when longer), the price, who recommends it,
"share to earn", and a QR code of the member's own tracked link, so a buyer who scans it is attributed to them.

Chinese text needs a CJK font: the first file that exists of POSTER_FONT_PATH and POSTER_FONT_SEARCH_PATHS
(Debian's fonts-wqy-zenhei or fonts-noto-cjk; docs/sharing.md). Without one the poster still renders, with
Pillow's built-in Latin font, and Chinese characters are left out rather than drawn as boxes.

Everything the picture depends on goes into `PosterContent`; its `digest()` keys the cache, so a changed title,
price, picture, name, link or layout version gives a new poster, and the same inputs are drawn once.
"""

import functools
import hashlib
import io
import json
import logging
import os
import unicodedata
from dataclasses import asdict, dataclass

import segno
from django.conf import settings
from django.core.cache import cache
from PIL import Image, ImageDraw, ImageFont, ImageOps

logger = logging.getLogger(__name__)

# Bump when the drawing changes, so cached posters of the old layout are not served.
LAYOUT_VERSION = 1
WIDTH, HEIGHT = 750, 1200
PICTURE_HEIGHT = 750
MARGIN = 40
QR_SIZE = 232
QR_BORDER = 2  # quiet zone, in modules (the white card around it adds more)
TITLE_SIZE, PRICE_SIZE, NAME_SIZE, SMALL_SIZE = 38, 58, 30, 24
TITLE_LINES = 2
ELLIPSIS = "…"
INK = (34, 34, 34)
MUTED = (120, 120, 120)
ACCENT = (217, 54, 62)  # the site's red (static/css/site.css)
PAPER = (255, 255, 255)
PANEL = (247, 243, 240)

# Characters never drawn: controls, format characters (zero-width joiners, bidi marks), surrogates, private use,
# unassigned; variation selectors and emoji modifiers, which only decorate an emoji we leave out anyway.
DROPPED_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Co", "Cn"})
MISSING_PROBE = "\U000f0000"  # a private-use code point no font maps: its picture is the font's "missing" glyph


@dataclass(frozen=True)
class PosterContent:
    """What one poster shows. `picture` is a path to an image file on disk, or "" for none (a coloured panel
    with `fallback_mark`, the first letter of the title or shop, takes its place)."""

    kind: str  # "product", "shop" or "invite"
    title: str
    price: str  # formatted, "¥12.30", or "" (shop and invite posters)
    byline: str  # "Recommended by Ann" / "Ann's shop"
    tagline: str  # "Share to earn", translated
    scan_hint: str  # "Long-press to scan", translated
    url: str  # the member's tracked link the QR code carries
    picture: str = ""
    picture_version: str = ""  # the picture's name and change time, so a new picture gives a new digest
    fallback_mark: str = ""

    def digest(self) -> str:
        payload = {**asdict(self), "layout": LAYOUT_VERSION, "font": font_path() or "", "size": [WIDTH, HEIGHT]}
        return hashlib.sha256(json.dumps(payload, sort_keys=True, ensure_ascii=False).encode()).hexdigest()


# --- Fonts and text ---------------------------------------------------------------------------------------------


def font_path() -> str | None:
    """The first font file that exists: POSTER_FONT_PATH, then POSTER_FONT_SEARCH_PATHS. None: none is installed."""
    candidates = [settings.POSTER_FONT_PATH, *settings.POSTER_FONT_SEARCH_PATHS]
    return _first_existing(tuple(path for path in candidates if path))


@functools.lru_cache(maxsize=8)
def _first_existing(candidates: tuple[str, ...]) -> str | None:
    found = next((path for path in candidates if os.path.isfile(path)), None)
    if found is None:
        logger.warning("posters: no CJK font found (tried %s); Chinese text is left out", ", ".join(candidates))
    return found


@functools.lru_cache(maxsize=16)
def _font(path: str | None, size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    if path is None:
        return ImageFont.load_default(size)
    return ImageFont.truetype(path, size)


def font(size: int):
    """The poster font at `size` pixels, loaded once per process (a CJK collection is 10-20 MB)."""
    return _font(font_path(), size)


@functools.lru_cache(maxsize=4096)
def _glyph_mask(path: str | None, character: str) -> tuple:
    mask = _font(path, 24).getmask(character)
    return mask.size, bytes(mask)


def has_glyph(character: str, path: str | None = None) -> bool:
    """Whether the poster font draws `character` as itself, not as its "missing" box (emoji in a CJK font)."""
    path = font_path() if path is None else path
    if character.isspace():
        return True
    return _glyph_mask(path, character) != _glyph_mask(path, MISSING_PROBE)


def clean_text(text: str) -> str:
    """`text` with what the font cannot draw left out (emoji, controls, zero-width characters) and runs of white
    space made one space, so a bad title still makes a clean poster."""
    kept = []
    for character in unicodedata.normalize("NFC", text or ""):
        if character.isspace():
            kept.append(" ")
        elif unicodedata.category(character) in DROPPED_CATEGORIES or 0xFE00 <= ord(character) <= 0xFE0F:
            continue
        elif has_glyph(character):
            kept.append(character)
    return " ".join("".join(kept).split())


def _width(draw: ImageDraw.ImageDraw, text: str, face) -> float:
    return draw.textlength(text, font=face)


def fit_lines(draw: ImageDraw.ImageDraw, text: str, face, max_width: int, max_lines: int) -> list[str]:
    """`text` broken into at most `max_lines` lines no wider than `max_width`: at a space where one is near (Latin
    words), else anywhere (Chinese has no spaces); the last line ends in "…" when text is left over."""
    lines: list[str] = []
    rest = text
    while rest and len(lines) < max_lines:
        if _width(draw, rest, face) <= max_width:
            lines.append(rest)
            rest = ""
            break
        cut = _longest_prefix(draw, rest, face, max_width)
        space = rest.rfind(" ", 0, cut + 1)
        if space > cut // 2:  # break at the word boundary unless it wastes more than half the line
            cut = space
        lines.append(rest[:cut].rstrip())
        rest = rest[cut:].lstrip()
    if rest and lines:
        last = lines[-1]
        while last and _width(draw, last + ELLIPSIS, face) > max_width:
            last = last[:-1]
        lines[-1] = last.rstrip() + ELLIPSIS
    return lines


def _longest_prefix(draw, text: str, face, max_width: int) -> int:
    low, high = 1, len(text)  # binary search: the longest prefix that fits (at least one character)
    while low < high:
        middle = (low + high + 1) // 2
        if _width(draw, text[:middle], face) <= max_width:
            low = middle
        else:
            high = middle - 1
    return low


def ellipsize(draw, text: str, face, max_width: int) -> str:
    return (fit_lines(draw, text, face, max_width, 1) or [""])[0]


# --- Drawing ----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Layout:
    """Where the QR code went (left, top, size in pixels, modules across with the quiet zone): tests read it."""

    qr_box: tuple[int, int, int]
    qr_modules: int


def qr_box() -> tuple[int, int, int]:
    """(left, top, size) of the QR code on every poster."""
    return WIDTH - MARGIN - QR_SIZE, HEIGHT - MARGIN - QR_SIZE - 34, QR_SIZE


def _qr_image(url: str, size: int) -> tuple[Image.Image, int]:
    qr = segno.make(url, error="m")
    modules = qr.symbol_size(border=QR_BORDER)[0]
    small = Image.new("1", (modules, modules), 1)
    small.putdata([0 if dark else 1 for row in qr.matrix_iter(border=QR_BORDER) for dark in row])
    # Whole pixels per module (nearest neighbour), centred in the box: crisp edges for the phone's scanner.
    scale = max(1, size // modules)
    return small.resize((modules * scale, modules * scale), Image.Resampling.NEAREST).convert("RGB"), modules


def _picture(path: str) -> Image.Image | None:
    """The picture cropped to fill the top panel, or None when it is missing or unreadable."""
    if not path:
        return None
    try:
        with Image.open(path) as source:
            source.draft("RGB", (WIDTH, PICTURE_HEIGHT))  # JPEG: decode at a fraction of the size, much faster
            picture = ImageOps.exif_transpose(source).convert("RGB")
            return ImageOps.fit(picture, (WIDTH, PICTURE_HEIGHT), Image.Resampling.BILINEAR)
    except (OSError, ValueError, Image.DecompressionBombError) as error:
        logger.warning("posters: picture %s unreadable (%s); drawing the fallback panel", path, error)
        return None


def render_poster(content: PosterContent) -> bytes:
    """The poster as PNG bytes, WIDTH × HEIGHT. Never raises on bad content: an unreadable picture becomes a
    coloured panel, a long title two lines and "…", characters the font lacks are left out."""
    image = Image.new("RGB", (WIDTH, HEIGHT), PAPER)
    draw = ImageDraw.Draw(image)
    inner = WIDTH - 2 * MARGIN

    picture = _picture(content.picture)
    if picture is not None:
        image.paste(picture, (0, 0))
    else:
        draw.rectangle((0, 0, WIDTH, PICTURE_HEIGHT), fill=PANEL)
        mark = clean_text(content.fallback_mark)[:1] or "★"
        face = font(300)
        draw.text((WIDTH / 2, PICTURE_HEIGHT / 2), mark, font=face, fill=ACCENT, anchor="mm")

    # The tagline as a red ribbon over the picture's lower left corner.
    tagline = ellipsize(draw, clean_text(content.tagline), font(SMALL_SIZE + 4), inner - 40)
    if tagline:
        face = font(SMALL_SIZE + 4)
        box = draw.textbbox((MARGIN + 18, PICTURE_HEIGHT - 62), tagline, font=face)
        draw.rounded_rectangle((box[0] - 18, box[1] - 12, box[2] + 18, box[3] + 12), radius=24, fill=ACCENT)
        draw.text((MARGIN + 18, PICTURE_HEIGHT - 62), tagline, font=face, fill=PAPER)

    y = PICTURE_HEIGHT + 32
    title_face = font(TITLE_SIZE)
    for line in fit_lines(draw, clean_text(content.title), title_face, inner, TITLE_LINES):
        draw.text((MARGIN, y), line, font=title_face, fill=INK)
        y += TITLE_SIZE + 14

    left, top, size = qr_box()
    text_width = left - MARGIN - 24
    y = max(y + 8, top - 4)
    if content.price:
        draw.text((MARGIN, y), ellipsize(draw, content.price, font(PRICE_SIZE), text_width), font=font(PRICE_SIZE),
                  fill=ACCENT)  # fmt: skip
        y += PRICE_SIZE + 24
    byline_face = font(NAME_SIZE)
    for line in fit_lines(draw, clean_text(content.byline), byline_face, text_width, 2):
        draw.text((MARGIN, y), line, font=byline_face, fill=INK)
        y += NAME_SIZE + 10

    qr, _modules = _qr_image(content.url, size)
    offset = (size - qr.width) // 2
    image.paste(qr, (left + offset, top + offset))
    hint_face = font(SMALL_SIZE)
    hint = ellipsize(draw, clean_text(content.scan_hint), hint_face, size + MARGIN)
    draw.text((left + size / 2, top + size + 8), hint, font=hint_face, fill=MUTED, anchor="mt")

    buffer = io.BytesIO()
    # Low zlib effort: a poster is drawn once per content and served from the cache after; speed over bytes.
    image.save(buffer, format="PNG", compress_level=1)
    return buffer.getvalue()


def qr_layout(url: str) -> Layout:
    """Where `render_poster` puts the QR code of `url`: the pixel box of the code itself and its module count."""
    left, top, size = qr_box()
    qr, modules = _qr_image(url, size)
    offset = (size - qr.width) // 2
    return Layout(qr_box=(left + offset, top + offset, qr.width), qr_modules=modules)


# --- The cache --------------------------------------------------------------------------------------------------


def cache_key(content: PosterContent) -> str:
    return f"poster:{content.digest()}"


def poster_png(content: PosterContent) -> bytes:
    """The poster of `content`: from the cache when these inputs were drawn before, else drawn and kept for
    POSTER_CACHE_SECONDS. Posters are the same for everyone who asks with the same inputs, so a shared cache is
    safe; who may ask for whose link is the view's business."""
    key = cache_key(content)
    png = cache.get(key)
    if png is None:
        png = render_poster(content)
        cache.set(key, png, settings.POSTER_CACHE_SECONDS)
    return png
