"""The sandbox network's product catalogue: generated from a seed, so a demo and a test see the same products."""

import random
from dataclasses import dataclass
from decimal import ROUND_DOWN, Decimal
from html import escape

CENT = Decimal("0.01")

_BRANDS = ["小米", "华为", "海尔", "美的", "李宁", "安踏", "良品铺子", "三只松鼠", "百雀羚", "自然堂", "九阳", "苏泊尔"]
_ADJECTIVES = ["轻薄", "便携", "家用", "大容量", "静音", "智能", "经典款", "新款", "加厚", "防水", "无线", "速干"]
_NOUNS = ["电饭煲", "运动鞋", "保温杯", "蓝牙耳机", "坚果礼盒", "面霜", "双肩包", "电动牙刷", "豆浆机", "台灯", "雨伞"]
_SHOP_SUFFIXES = ["官方旗舰店", "专卖店", "自营店", "旗舰店"]
_COLOURS = ["#e4572e", "#29335c", "#f3a712", "#669bbc", "#2a9d8f", "#8338ec", "#3a86ff", "#fb5607"]


@dataclass(frozen=True)
class SandboxProduct:
    item_id: str
    title: str
    shop_title: str
    price: Decimal  # list price, CNY
    coupon: Decimal  # coupon value off the price (0: none)
    rate: Decimal  # our commission rate, a fraction of the paid amount (0.2 = 20 %)
    colour: str  # of the generated picture

    @property
    def final_price(self) -> Decimal:
        return self.price - self.coupon


def build_catalogue(seed: int = 0, count: int = 60) -> list[SandboxProduct]:
    # Not security-sensitive: a reproducible demo catalogue, the same for the same seed.
    rng = random.Random(seed)  # noqa: S311
    products = []
    item_ids: set[str] = set()
    while len(products) < count:
        item_id = str(rng.randrange(500_000_000_000, 800_000_000_000))
        if item_id in item_ids:
            continue
        item_ids.add(item_id)
        brand = rng.choice(_BRANDS)
        title = f"{brand} {rng.choice(_ADJECTIVES)}{rng.choice(_NOUNS)}"
        price = (Decimal(rng.randrange(990, 99_900)) * CENT).quantize(CENT)
        coupon = Decimal(rng.choice([0, 0, 3, 5, 10, 20]))
        if coupon >= price:
            coupon = Decimal(0)
        rate = (Decimal(rng.randrange(3, 61)) / Decimal(200)).quantize(Decimal("0.001"), rounding=ROUND_DOWN)
        products.append(
            SandboxProduct(
                item_id=item_id,
                title=title,
                shop_title=f"{brand}{rng.choice(_SHOP_SUFFIXES)}",
                price=price,
                coupon=coupon.quantize(CENT),
                rate=rate,
                colour=rng.choice(_COLOURS),
            )
        )
    return products


def product_svg(product: SandboxProduct) -> str:
    """A small picture for the product, so pages and feeds have an image without the internet."""
    title = escape(product.title)
    return (
        '<svg xmlns="http://www.w3.org/2000/svg" width="400" height="400" viewBox="0 0 400 400">'
        f'<rect width="400" height="400" fill="{product.colour}"/>'
        '<text x="200" y="190" font-size="28" fill="#fff" text-anchor="middle" font-family="sans-serif">'
        f"{title}</text>"
        '<text x="200" y="240" font-size="36" fill="#fff" text-anchor="middle" font-family="sans-serif">'
        f"¥{product.final_price}</text></svg>"
    )
