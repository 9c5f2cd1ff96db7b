"""Share posters (members/posters.py): size, a QR code that reads as the member's own link, Chinese text drawn with
real glyphs, bad inputs still making a clean poster, and the cache."""

import io
import time

import pytest
import segno
from django.core.cache import cache
from PIL import Image, ImageDraw

from members import posters
from members.posters import PosterContent, clean_text, fit_lines, font, has_glyph, poster_png, qr_layout, render_poster

URL = "https://shop.example.com/l/abcdEFGH23"


def content(**changes) -> PosterContent:
    values = {
        "kind": "product",
        "title": "Organic oolong tea",
        "price": "¥128.00",
        "byline": "Recommended by Ming",
        "tagline": "Share to earn",
        "scan_hint": "Long-press to scan",
        "url": URL,
    }
    values.update(changes)
    return PosterContent(**values)


def decode_qr(png: bytes, url_hint: str) -> list[list[bool]]:
    """The modules of the poster's QR code, read off its pixels at each module's centre (dark = True). The box comes
    from the layout of a code the size of `url_hint`'s; nothing of the poster's own QR image is reused."""
    image = Image.open(io.BytesIO(png)).convert("L")
    layout = qr_layout(url_hint)
    left, top, size = layout.qr_box
    module = size / layout.qr_modules
    return [
        [image.getpixel((int(left + (x + 0.5) * module), int(top + (y + 0.5) * module))) < 128
         for x in range(layout.qr_modules)]
        for y in range(layout.qr_modules)
    ]  # fmt: skip


def matrix(url: str) -> list[list[bool]]:
    return [[bool(dark) for dark in row] for row in segno.make(url, error="m").matrix_iter(border=posters.QR_BORDER)]


def test_poster_is_a_png_of_the_poster_size():
    png = render_poster(content())

    image = Image.open(io.BytesIO(png))
    assert image.format == "PNG"
    assert image.size == (750, 1200)


def test_qr_code_reads_as_the_members_link():
    png = render_poster(content())

    assert decode_qr(png, URL) == matrix(URL)
    # The check can fail: another link's code (same size) does not match.
    other = "https://shop.example.com/l/zzzzZZZZ99"
    assert decode_qr(png, other) != matrix(other)


def test_chinese_text_is_drawn_with_real_glyphs_not_boxes():
    assert posters.font_path() is not None, "a CJK font must be installed (fonts-wqy-zenhei; docs/sharing.md)"
    face = font(40)
    missing = face.getmask(posters.MISSING_PROBE)
    for character in "有机乌龙茶分享赚":
        mask = face.getmask(character)
        assert (mask.size, bytes(mask)) != (missing.size, bytes(missing)), character
        assert has_glyph(character)
    # On the poster: the Chinese title is there, in ink, where the title goes.
    chinese = Image.open(io.BytesIO(render_poster(content(title="有机高山乌龙茶")))).crop((0, 770, 750, 880))
    blank = Image.open(io.BytesIO(render_poster(content(title="")))).crop((0, 770, 750, 880))
    assert chinese.tobytes() != blank.tobytes()
    assert chinese.convert("L").getextrema()[0] < 100


def test_emoji_and_invisible_characters_are_left_out():
    assert not has_glyph("😀")
    assert clean_text("Tea 😀\u200d gift\u0007\n\n  box\ufe0f") == "Tea gift box"
    assert clean_text("乌龙茶🍵") == "乌龙茶"


def test_long_title_is_two_lines_ending_in_an_ellipsis():
    draw = ImageDraw.Draw(Image.new("RGB", (10, 10)))
    face = font(posters.TITLE_SIZE)
    lines = fit_lines(draw, "特级" * 200, face, 670, 2)

    assert len(lines) == 2
    assert lines[-1].endswith("…")
    assert all(draw.textlength(line, font=face) <= 670 for line in lines)
    assert fit_lines(draw, "Short", face, 670, 2) == ["Short"]


@pytest.mark.parametrize(
    "changes",
    [
        {"title": "A" * 5000},
        {"title": "😀😀😀"},  # nothing drawable left
        {"title": "", "byline": ""},
        {"picture": "/nonexistent/picture.jpg"},
        {"price": "¥" + "9" * 60},
    ],
)
def test_bad_inputs_still_make_a_clean_poster(changes, tmp_path):
    png = render_poster(content(**changes))

    assert Image.open(io.BytesIO(png)).size == (750, 1200)
    assert decode_qr(png, URL) == matrix(URL)


def test_unreadable_picture_gives_the_fallback_panel(tmp_path):
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"not a picture")
    png = render_poster(content(picture=str(broken), fallback_mark="Tea"))

    image = Image.open(io.BytesIO(png)).convert("RGB")
    assert image.getpixel((5, 5)) == posters.PANEL


def test_picture_fills_the_top(tmp_path):
    path = tmp_path / "tea.jpg"
    Image.new("RGB", (300, 900), (10, 120, 60)).save(path)
    png = render_poster(content(picture=str(path)))

    image = Image.open(io.BytesIO(png)).convert("RGB")
    red, green, blue = image.getpixel((375, 300))
    assert abs(red - 10) < 8 and abs(green - 120) < 8 and abs(blue - 60) < 8


def test_poster_is_drawn_once_then_served_from_the_cache(monkeypatch):
    cache.clear()
    drawn = []
    real = posters.render_poster
    monkeypatch.setattr(posters, "render_poster", lambda value: drawn.append(value) or real(value))

    first = poster_png(content())
    started = time.perf_counter()
    second = poster_png(content())
    elapsed = time.perf_counter() - started

    assert first == second
    assert len(drawn) == 1
    assert elapsed < 0.05
    # Another content version (a new price) is another poster.
    poster_png(content(price="¥99.00"))
    assert len(drawn) == 2


def test_digest_follows_every_input():
    base = content()
    assert base.digest() == content().digest()
    for changes in ({"title": "x"}, {"price": "¥1.00"}, {"url": URL + "x"}, {"picture_version": "new"},
                    {"byline": "y"}, {"tagline": "分享赚"}):  # fmt: skip
        assert content(**changes).digest() != base.digest()


def test_without_a_cjk_font_the_poster_still_renders(settings):
    settings.POSTER_FONT_PATH = ""
    settings.POSTER_FONT_SEARCH_PATHS = ["/nonexistent/font.ttc"]

    png = render_poster(content(title="有机 tea"))

    assert Image.open(io.BytesIO(png)).size == (750, 1200)
    assert clean_text("有机 tea") == "tea"  # left out, never drawn as boxes
