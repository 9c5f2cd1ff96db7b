"""Pictures for the demo catalogue, drawn with Pillow when the demo loads: no files shipped, no text in them.

Each product gets a soft gradient in its category's colour, a pale disc behind, a soft shadow and a simple drawing of
what it is (a tea tin, a pu'er cake, a steamer, a charger …). The same title always gives the same picture, so a
second run finds the file already stored under the same name and writes nothing (demo.shops).

Drawn at twice the size and scaled down, as Pillow's shapes have no anti-aliasing of their own.
"""

import math
import zlib
from collections.abc import Callable
from functools import partial
from io import BytesIO

from PIL import Image, ImageDraw, ImageFilter

SIZE = 800  # the stored picture, in pixels a side: room for the 640 px thumbnail
SCALE = 2
S = SIZE * SCALE  # the drawing canvas; every coordinate below is on a 1600 px square

Colour = tuple[int, int, int]
WHITE: Colour = (255, 255, 255)
BLACK: Colour = (0, 0, 0)
PAPER: Colour = (247, 241, 228)
PORCELAIN: Colour = (250, 250, 252)
BAMBOO: Colour = (219, 182, 118)
BAMBOO_DARK: Colour = (170, 128, 68)
PLASTIC: Colour = (246, 247, 249)
METAL: Colour = (176, 182, 190)


def mix(first: Colour, second: Colour, amount: float) -> Colour:
    """`amount` of the way from `first` to `second`."""
    return tuple(round(a + (b - a) * amount) for a, b in zip(first, second, strict=True))


def _leaf(draw: ImageDraw.ImageDraw, centre, length: float, width: float, angle: float, fill: Colour, vein: Colour):
    """A leaf: a pointed oval along `angle` (degrees), with its middle vein."""
    cx, cy = centre
    ax, ay = math.cos(math.radians(angle)), math.sin(math.radians(angle))
    nx, ny = -ay, ax
    left, right = [], []
    for step in range(21):
        u = step / 20
        along = (u - 0.5) * length
        half = width / 2 * math.sin(math.pi * u) ** 0.8
        left.append((cx + ax * along + nx * half, cy + ay * along + ny * half))
        right.append((cx + ax * along - nx * half, cy + ay * along - ny * half))
    draw.polygon(left + right[::-1], fill=fill)
    start = (cx - ax * length * 0.42, cy - ay * length * 0.42)
    end = (cx + ax * length * 0.42, cy + ay * length * 0.42)
    draw.line([start, end], fill=vein, width=max(4, round(width / 14)))


def _tin(draw, colour: Colour, variant: int) -> None:
    body, lid, label = mix(colour, BLACK, 0.05), mix(colour, BLACK, 0.3), mix(PAPER, colour, 0.08)
    draw.rounded_rectangle((520, 470, 1080, 1230), radius=56, fill=body)
    draw.rounded_rectangle((500, 400, 1100, 520), radius=40, fill=lid)
    draw.rounded_rectangle((560, 430, 1040, 450), radius=10, fill=mix(lid, WHITE, 0.25))
    draw.rectangle((520, 700, 1080, 980), fill=label)
    draw.rounded_rectangle((560, 540, 600, 1190), radius=20, fill=mix(body, WHITE, 0.22))
    _leaf(draw, (800, 840), 250, 110, -35 + variant % 3 * 10, mix(colour, BLACK, 0.1), label)
    _leaf(draw, (900, 790), 150, 64, -75, mix(colour, WHITE, 0.25), label)


def _pouch(draw, colour: Colour, variant: int, *, window: bool = False) -> None:
    body, seal = colour, mix(colour, BLACK, 0.28)
    draw.polygon([(560, 440), (1040, 440), (1110, 1180), (1080, 1230), (520, 1230), (490, 1180)], fill=body)
    draw.rectangle((560, 380, 1040, 450), fill=seal)
    for x in range(580, 1040, 40):
        draw.line([(x, 390), (x, 440)], fill=mix(seal, WHITE, 0.2), width=6)
    draw.polygon([(600, 470), (640, 470), (560, 1200), (530, 1200)], fill=mix(body, WHITE, 0.2))
    if window:  # a window onto what is inside
        draw.rounded_rectangle((660, 760, 940, 1080), radius=60, fill=mix(colour, BLACK, 0.45))
        for index in range(9):
            x = 700 + (index * 97 + variant * 31) % 200
            y = 800 + (index * 61 + variant * 17) % 230
            draw.ellipse((x, y, x + 44, y + 30), fill=mix(colour, (150, 60, 30), 0.6))
    else:
        draw.ellipse((640, 700, 960, 1020), fill=mix(PAPER, colour, 0.1))
        _leaf(draw, (800, 860), 230, 100, -40, colour, mix(PAPER, colour, 0.1))


def _cake(draw, colour: Colour, variant: int) -> None:
    centre, radius = (800, 800), 440
    paper, pleat = PAPER, mix(PAPER, BLACK, 0.1)
    draw.ellipse((centre[0] - radius, centre[1] - radius, centre[0] + radius, centre[1] + radius), fill=paper)
    for index in range(18):
        angle = math.radians(index * 20 + variant * 7)
        inner, outer = 150, radius - 20
        draw.line(
            [
                (centre[0] + inner * math.cos(angle), centre[1] + inner * math.sin(angle)),
                (centre[0] + outer * math.cos(angle), centre[1] + outer * math.sin(angle)),
            ],
            fill=pleat,
            width=6,
        )
    for ring, width in ((330, 16), (290, 6)):
        draw.ellipse(
            (centre[0] - ring, centre[1] - ring, centre[0] + ring, centre[1] + ring), outline=colour, width=width
        )
    draw.ellipse((680, 680, 920, 920), fill=colour)
    draw.ellipse((740, 740, 860, 860), fill=mix(colour, WHITE, 0.35))


def _box(draw, colour: Colour, variant: int, *, gift: bool = False) -> None:
    front, top, side = colour, mix(colour, WHITE, 0.3), mix(colour, BLACK, 0.25)
    draw.polygon([(470, 600), (1110, 600), (1220, 480), (580, 480)], fill=top)
    draw.polygon([(1110, 600), (1220, 480), (1220, 1110), (1110, 1230)], fill=side)
    draw.rectangle((470, 600, 1110, 1230), fill=front)
    ribbon = mix(PAPER, colour, 0.1)
    if gift:  # a gift box: a ribbon over the top and down the front, and a bow
        bow = (196, 48, 43)
        draw.rectangle((750, 600, 830, 1230), fill=bow)
        draw.polygon([(810, 480), (890, 480), (830, 600), (750, 600)], fill=mix(bow, BLACK, 0.15))
        draw.polygon([(820, 540), (640, 430), (660, 620)], fill=bow)
        draw.polygon([(820, 540), (1000, 430), (980, 620)], fill=mix(bow, BLACK, 0.1))
        draw.ellipse((780, 500, 860, 580), fill=mix(bow, BLACK, 0.25))
    else:  # a band with a row of round windows
        draw.rectangle((470, 820, 1110, 960), fill=ribbon)
        for index in range(4):
            x = 525 + index * 145
            draw.ellipse((x, 835, x + 110, 945), fill=mix(colour, (120, 70, 30), 0.55))


def _cup(draw, colour: Colour, variant: int) -> None:
    blue = mix(colour, BLACK, 0.15)
    draw.ellipse((420, 1120, 1180, 1270), fill=mix(PORCELAIN, BLACK, 0.06))
    draw.ellipse((460, 1110, 1140, 1240), fill=PORCELAIN)
    draw.pieslice((500, 420, 1100, 1200), 0, 180, fill=PORCELAIN)
    draw.ellipse((500, 780, 1100, 860), fill=mix(PORCELAIN, BLACK, 0.08))
    draw.ellipse((520, 790, 1080, 850), fill=mix(colour, (205, 170, 90), 0.7))  # the tea
    draw.arc((500, 420, 1100, 1200), 20, 160, fill=blue, width=14)
    for index in range(7):
        angle = math.radians(25 + index * 21.7)
        x, y = 800 + 250 * math.cos(angle), 810 + 300 * math.sin(angle) * 0.82
        draw.ellipse((x - 26, y - 26, x + 26, y + 26), outline=blue, width=10)
    draw.rectangle((640, 1130, 960, 1150), fill=blue)


def _steamer(draw, colour: Colour, variant: int) -> None:
    dark = BAMBOO_DARK
    draw.pieslice((420, 540, 1180, 1000), 180, 360, fill=BAMBOO)
    draw.ellipse((760, 520, 840, 580), fill=dark)
    for index, top in enumerate((770, 990)):
        draw.rounded_rectangle((400, top, 1200, top + 210), radius=30, fill=mix(BAMBOO, BLACK, 0.04 * index))
        draw.rectangle((400, top + 20, 1200, top + 40), fill=dark)
        for x in range(450, 1200, 70):
            draw.line([(x, top + 55), (x, top + 190)], fill=mix(BAMBOO, dark, 0.5), width=8)
    for x in range(480, 1140, 90):
        draw.line([(x, 700), (800, 560)], fill=mix(BAMBOO, dark, 0.4), width=6)


def _pillow(draw, colour: Colour, variant: int) -> None:
    silk = mix(colour, WHITE, 0.45)
    draw.rounded_rectangle((360, 560, 1240, 1150), radius=170, fill=silk)
    for index, width in enumerate((26, 16, 10)):
        inset = 70 + index * 60
        draw.arc(
            (360 + inset, 500 + inset, 1240 - inset, 1300 - inset), 200, 330, fill=mix(silk, WHITE, 0.5), width=width
        )
    draw.rounded_rectangle((400, 1090, 1200, 1110), radius=10, fill=mix(silk, BLACK, 0.12))


def _tube(draw, colour: Colour, variant: int) -> None:
    body, cap = mix(colour, WHITE, 0.15), mix(colour, BLACK, 0.3)
    draw.rectangle((610, 360, 990, 420), fill=mix(body, BLACK, 0.08))
    for x in range(620, 990, 30):
        draw.line([(x, 365), (x, 415)], fill=mix(body, BLACK, 0.18), width=6)
    draw.polygon([(610, 420), (990, 420), (950, 1070), (650, 1070)], fill=body)
    draw.rounded_rectangle((660, 1060, 940, 1240), radius=36, fill=cap)
    draw.polygon([(650, 440), (690, 440), (690, 1050), (670, 1050)], fill=mix(body, WHITE, 0.35))
    petal = mix(WHITE, colour, 0.1)
    for index in range(5):  # a camellia
        angle = math.radians(index * 72 - 90)
        x, y = 800 + 70 * math.cos(angle), 720 + 70 * math.sin(angle)
        draw.ellipse((x - 62, y - 62, x + 62, y + 62), fill=petal)
    draw.ellipse((770, 690, 830, 750), fill=(240, 196, 64))


def _sachet(draw, colour: Colour, variant: int) -> None:
    back, front = mix(colour, BLACK, 0.2), mix(colour, WHITE, 0.1)
    draw.rounded_rectangle((560, 360, 1180, 1140), radius=50, fill=back)
    draw.rounded_rectangle((440, 460, 1060, 1240), radius=50, fill=front)
    teeth = [(440 + x, 520 + (20 if (x // 40) % 2 else 0)) for x in range(0, 621, 40)]
    draw.line(teeth, fill=mix(front, WHITE, 0.4), width=8)
    for index in range(3):  # drops of rice water
        x, y = 600 + index * 150, 820 + (index % 2) * 90
        draw.ellipse((x, y, x + 110, y + 110), fill=mix(WHITE, colour, 0.08))
        draw.polygon([(x + 14, y + 40), (x + 96, y + 40), (x + 55, y - 60)], fill=mix(WHITE, colour, 0.08))


def _charger(draw, colour: Colour, variant: int) -> None:
    draw.rectangle((680, 380, 720, 560), fill=METAL)
    draw.rectangle((880, 380, 920, 560), fill=METAL)
    draw.rounded_rectangle((520, 540, 1080, 1230), radius=100, fill=PLASTIC)
    draw.rounded_rectangle((1000, 580, 1060, 1190), radius=30, fill=mix(PLASTIC, BLACK, 0.08))
    for index in range(3):
        top = 880 + index * 100
        width = 150 if index < 2 else 190
        draw.rounded_rectangle(
            (800 - width / 2, top, 800 + width / 2, top + 44), radius=22, fill=mix(colour, BLACK, 0.45)
        )
    draw.ellipse((780, 680, 820, 720), fill=mix(colour, (60, 200, 120), 0.7))


def _earbuds(draw, colour: Colour, variant: int) -> None:
    shade = mix(PLASTIC, BLACK, 0.12)
    draw.rounded_rectangle((470, 420, 1130, 860), radius=220, fill=shade)  # the open lid, behind
    draw.rounded_rectangle((490, 440, 1110, 840), radius=200, fill=mix(PLASTIC, BLACK, 0.05))
    for cx in (680, 920):  # the two buds, sitting in the case
        draw.rounded_rectangle((cx - 36, 700, cx + 36, 980), radius=36, fill=PLASTIC)
        draw.ellipse((cx - 95, 560, cx + 95, 750), fill=PLASTIC)
        draw.ellipse((cx - 95, 560, cx + 95, 750), outline=shade, width=6)
        draw.ellipse((cx - 40, 615, cx + 40, 695), fill=mix(colour, BLACK, 0.4))
    draw.rounded_rectangle((460, 820, 1140, 1230), radius=200, fill=PLASTIC)
    draw.rectangle((480, 820, 1120, 900), fill=PLASTIC)
    draw.line([(470, 830), (1130, 830)], fill=shade, width=10)
    draw.ellipse((780, 1060, 820, 1100), fill=mix(colour, (60, 200, 120), 0.7))


SHAPES: dict[str, Callable] = {
    "tin": _tin,
    "pouch": _pouch,
    "pouch-window": partial(_pouch, window=True),
    "cake": _cake,
    "box": _box,
    "box-gift": partial(_box, gift=True),
    "cup": _cup,
    "steamer": _steamer,
    "pillow": _pillow,
    "tube": _tube,
    "sachet": _sachet,
    "charger": _charger,
    "earbuds": _earbuds,
}


def product_picture(title: str, colour: Colour, shape: str) -> bytes:
    """The demo picture of the product called `title`, as JPEG bytes: the same arguments give the same bytes."""
    seed = zlib.crc32(title.encode())
    # The soft background is made at the final size (cheap) and scaled up once; only the object needs the big canvas.
    light, deep = mix(colour, WHITE, 0.9), mix(colour, WHITE, 0.68)
    corners = Image.new("RGB", (2, 2))
    corners.putdata([light, mix(light, deep, 0.5), mix(light, deep, 0.5), deep])
    background = corners.resize((SIZE, SIZE), Image.Resampling.BILINEAR)  # a soft diagonal gradient
    ImageDraw.Draw(background).ellipse((130, 120, 670, 660), fill=mix(colour, WHITE, 0.8))
    # A soft shadow under the object, blurred on a small canvas (blurring a big one costs ten times as much).
    small = SIZE // 8
    shadow = Image.new("L", (small, small), 0)
    ImageDraw.Draw(shadow).ellipse((small * 0.27, small * 0.74, small * 0.73, small * 0.82), fill=110)
    shadow = shadow.filter(ImageFilter.GaussianBlur(2)).resize((SIZE, SIZE), Image.Resampling.BILINEAR)
    background.paste(mix(colour, BLACK, 0.55), (0, 0), shadow)

    picture = background.resize((S, S), Image.Resampling.BILINEAR)
    SHAPES.get(shape, _box)(ImageDraw.Draw(picture), colour, seed)
    buffer = BytesIO()
    picture.reduce(SCALE).save(buffer, format="JPEG", quality=86, optimize=True)
    return buffer.getvalue()
