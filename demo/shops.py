"""Demo storefront for `manage.py demo`: a catalogue, shops for members of the demo tree, and orders in every state.

Idempotent: categories are keyed on name, products on title, shops on their owner, listings on (shop, product);
orders are only placed while the demo shop has none. Every order moves through the services, as in production.
"""

import re
import time
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.files.base import ContentFile
from django.db import transaction
from django.db.models import F
from django.urls import reverse
from django.utils.text import slugify

from core.site_url import absolute_url
from core.thumbnails import thumbnails_make
from demo.images import product_picture
from networks.connectors import get_connector
from networks.connectors.base import ConnectorError
from networks.models import ExternalProduct, Network
from networks.services import NetworkError, external_products_sync
from referrals.models import Member
from shops.models import Category, ExternalListing, Order, OrderEvent, Payment, Product, Refund, Shop
from shops.payments.sandbox import build_webhook
from shops.services import (
    BuyerDetails,
    external_listing_add,
    order_cancel,
    order_mark_completed,
    order_mark_shipped,
    order_place,
    order_refund,
    payment_start,
    payment_webhook_receive,
    shop_listing_add,
    shop_open,
)

DEMO_SHOP_SLUG = "demo"
DEMO_IMAGE_DIR = "products/demo"


@dataclass(frozen=True)
class DemoProduct:
    title: str
    category: str
    price: Decimal
    stock: int
    commission_rate: Decimal
    description: str


# Category name → the colour of its products' pictures.
CATEGORIES = {
    "Tea": (46, 125, 50),
    "Snacks": (230, 126, 34),
    "Home & Kitchen": (41, 98, 155),
    "Beauty": (194, 24, 91),
    "Digital": (69, 90, 100),
}

# What each product's picture shows (demo.images.SHAPES); a product not named here gets its category's.
PICTURES = {
    "West Lake Longjing green tea 250 g": "tin",
    "Anxi Tieguanyin oolong tea 500 g": "pouch",
    "Yunnan Pu'er ripe tea cake 357 g": "cake",
    "Sichuan spicy beef jerky 200 g": "pouch-window",
    "Daily mixed nuts, 30 packs": "box",
    "Guangzhou wife cakes, box of 8": "box-gift",
    "Jingdezhen porcelain tea set, 6 cups": "cup",
    "Bamboo steamer, 2 tiers, 26 cm": "steamer",
    "Hangzhou mulberry silk pillowcase": "pillow",
    "Camellia oil hand cream 50 ml": "tube",
    "Rice water facial masks, 10 sheets": "sachet",
    "65 W GaN USB-C fast charger": "charger",
    "Bluetooth earbuds with charging case": "earbuds",
}
CATEGORY_PICTURES = {
    "Tea": "tin",
    "Snacks": "pouch-window",
    "Home & Kitchen": "box",
    "Beauty": "tube",
    "Digital": "charger",
}

PRODUCTS = [
    DemoProduct("West Lake Longjing green tea 250 g", "Tea", Decimal("168.00"), 400, Decimal("0.2000"),
                "Pre-Qingming spring picking from Hangzhou, pan-fired by hand. Sweet, nutty, chestnut finish."),
    DemoProduct("Anxi Tieguanyin oolong tea 500 g", "Tea", Decimal("128.00"), 300, Decimal("0.1800"),
                "Lightly roasted Iron Goddess oolong from Fujian, vacuum-packed in 7 g sachets."),
    DemoProduct("Yunnan Pu'er ripe tea cake 357 g", "Tea", Decimal("98.00"), 250, Decimal("0.2500"),
                "A classic 357 g bing from Menghai, aged five years; earthy, smooth and dark."),
    DemoProduct("Sichuan spicy beef jerky 200 g", "Snacks", Decimal("39.90"), 500, Decimal("0.1200"),
                "Air-dried beef strips with Sichuan pepper and chilli: numbing, hot and chewy."),
    DemoProduct("Daily mixed nuts, 30 packs", "Snacks", Decimal("89.00"), 400, Decimal("0.1000"),
                "Walnuts, cashews, almonds, cranberries and raisins, one 25 g pack for every day of the month."),
    DemoProduct("Guangzhou wife cakes, box of 8", "Snacks", Decimal("32.80"), 350, Decimal("0.1500"),
                "Flaky Cantonese pastries with winter-melon filling, baked fresh in Guangzhou."),
    DemoProduct("Jingdezhen porcelain tea set, 6 cups", "Home & Kitchen", Decimal("268.00"), 120, Decimal("0.2200"),
                "Hand-painted blue-and-white gaiwan, pitcher and six cups in a gift box."),
    DemoProduct("Bamboo steamer, 2 tiers, 26 cm", "Home & Kitchen", Decimal("59.00"), 300, Decimal("0.1500"),
                "Natural bamboo with a lid, for dumplings, baozi and vegetables."),
    DemoProduct("Hangzhou mulberry silk pillowcase", "Home & Kitchen", Decimal("199.00"), 200, Decimal("0.3000"),
                "22-momme 6A mulberry silk, hidden zip, gentle on hair and skin."),
    DemoProduct("Camellia oil hand cream 50 ml", "Beauty", Decimal("29.90"), 600, Decimal("0.2800"),
                "Cold-pressed camellia seed oil from Hunan; light, not greasy."),
    DemoProduct("Rice water facial masks, 10 sheets", "Beauty", Decimal("49.90"), 500, Decimal("0.2500"),
                "Fermented rice essence sheet masks for a bright, even complexion."),
    DemoProduct("65 W GaN USB-C fast charger", "Digital", Decimal("99.00"), 300, Decimal("0.0800"),
                "Two USB-C and one USB-A port; charges a laptop and a phone at once."),
    DemoProduct("Bluetooth earbuds with charging case", "Digital", Decimal("159.00"), 250, Decimal("0.0500"),
                "Bluetooth 5.3, noise reduction for calls, 30 hours with the case."),
]  # fmt: skip

# (owner's email, shop name, slug, description, product titles in order, how many of the first are featured)
SHOPS = [
    ("founder@example.com", "Sun's Tea & Treats", DEMO_SHOP_SLUG, "Spring teas and snacks picked by Founder Sun.",
     [0, 1, 2, 3, 5, 6, 9, 11], 2),
    ("member1@example.com", "Wang Wei's Kitchen", "wang-wei-kitchen", "Things Wang Wei cooks with every day.",
     [7, 6, 4, 3, 0], 1),
    ("member2@example.com", "Zhang Min Beauty", "zhang-min-beauty", "Gentle skincare, tested by Zhang Min.",
     [9, 10, 8, 2], 2),
    ("member3@example.com", "Liu Yang Digital", "liu-yang-digital", "Chargers and earbuds that last.",
     [11, 12, 4, 5, 1, 10], 1),
    ("member4@example.com", "Chen Jing Tea Corner", "chen-jing-tea", "Everyday tea for the office.",
     [1, 2, 0, 5], 1),
]  # fmt: skip

BUYERS = [
    BuyerDetails("Chen Xiaoling", "13800138001", "", "Room 1203, 88 Century Avenue, Pudong, Shanghai"),
    BuyerDetails("Zhao Jun", "", "zhao.jun@example.com", "15 Wangfujing Street, Dongcheng, Beijing"),
    BuyerDetails("Huang Mei", "13922223333", "huang.mei@example.com", "7 Tianhe Road, Tianhe, Guangzhou"),
    BuyerDetails("Zhou Peng", "13711112222", "", "210 Shennan Road, Futian, Shenzhen"),
    BuyerDetails("Wu Ting", "", "wu.ting@example.com", "36 Chunxi Road, Jinjiang, Chengdu"),
]


def _picture_add(product: Product, item: DemoProduct) -> None:
    """Give `product` its drawn picture (demo.images) at a fixed name: a second run, or a fresh database over the same
    media, finds the file and writes nothing. A picture staff uploaded is kept; the lettered tile older demos drew is
    replaced (and its file removed)."""
    slug = slugify(item.title)
    name = f"{DEMO_IMAGE_DIR}/{slug}.jpg"
    current = product.image.name or ""
    if current == name:
        return
    if current and not re.fullmatch(rf"products/{re.escape(slug)}(_[A-Za-z0-9]{{7}})?\.png", current):
        return
    storage = product.image.storage
    if not storage.exists(name):
        shape = PICTURES.get(item.title, CATEGORY_PICTURES.get(item.category, "box"))
        name = storage.save(name, ContentFile(product_picture(item.title, CATEGORIES[item.category], shape)))
    if current and storage.exists(current):
        storage.delete(current)
    product.image.name = name
    product.save(update_fields=["image"])


def _catalogue() -> list[Product]:
    categories = {}
    for position, name in enumerate(CATEGORIES):
        categories[name], _created = Category.objects.get_or_create(name=name, defaults={"position": position})
    products = []
    for item in PRODUCTS:
        # Keyed on the title; a second run leaves whatever staff changed since alone.
        product, _created = Product.objects.get_or_create(
            title=item.title,
            defaults={
                "category": categories[item.category],
                "description": item.description,
                "price": item.price,
                "stock": item.stock,
                "commission_rate": item.commission_rate,
            },
        )
        _picture_add(product, item)
        thumbnails_make(product.image)  # the shop's first page need not make them
        products.append(product)
    return products


def _shops(products: list[Product]) -> list[Shop]:
    shops = []
    for email, name, slug, description, indexes, featured in SHOPS:
        owner = Member.objects.get(user__email=email)
        shop = Shop.objects.filter(owner=owner).first() or shop_open(
            owner=owner, name=name, slug=slug, description=description
        )
        for position, index in enumerate(indexes):
            shop_listing_add(shop=shop, product=products[index], is_featured=position < featured)
        shops.append(shop)
    return shops


def _place(shop: Shop, items: dict[Product, int], buyer: BuyerDetails) -> Order:
    return order_place(shop=shop, items={product.pk: quantity for product, quantity in items.items()}, buyer=buyer)


def _pay(order: Order) -> Order:
    """Pay through the sandbox provider's signed webhook, exactly as a buyer's payment arrives."""
    payment, _url = payment_start(
        order=order,
        notify_url=absolute_url(reverse("shops:payment_webhook", args=["sandbox"])),
        return_url=absolute_url(reverse("shops:order_detail", args=[order.number])),
        provider_name="sandbox",
    )
    body, headers = build_webhook(payment, "succeeded")
    payment_webhook_receive(provider_name="sandbox", body=body, headers=headers)
    order.refresh_from_db()
    return order


def _orders(shops: list[Shop], products: list[Product]) -> dict[int, int]:
    """Orders in every state, each with how many days ago it happened ({order id: days}; empty when the demo
    shop already has orders). The services stamp the moment they run: `demo.payouts.demo_money` moves each new
    order's history back by its days once its commission is split, so completed orders are past the hold and
    their commission is released today, as the beat would have done; nothing is dated in the future."""
    demo_shop, *other_shops = shops
    if demo_shop.orders.exists():
        return {}
    staff = get_user_model().objects.filter(email="admin@example.com").first()
    longjing, tieguanyin, puer, jerky, _nuts, wife_cakes, tea_set, *_rest = products
    completed_days = settings.COMMISSION_HOLD_DAYS + 5  # completed this long ago: the hold has passed
    placed = {}

    def place(shop, items, buyer, days_ago):
        order = _place(shop, items, buyer)
        placed[order.pk] = days_ago
        return order

    place(demo_shop, {longjing: 1}, BUYERS[0], 0)  # left awaiting payment (within the payment timeout)
    _pay(place(demo_shop, {tieguanyin: 2, jerky: 3}, BUYERS[1], 1))
    order_mark_shipped(
        order=_pay(place(demo_shop, {puer: 1}, BUYERS[2], 4)), actor=staff, courier="sf", waybill="SF1402345678901"
    )
    shipped = order_mark_shipped(
        order=_pay(place(demo_shop, {tea_set: 1, longjing: 2}, BUYERS[3], completed_days)),
        actor=staff,
        courier="zto",
        waybill="731402345678",
    )
    order_mark_completed(order=shipped, actor=staff)
    order_cancel(order=place(demo_shop, {wife_cakes: 4}, BUYERS[4], 6), actor_label="buyer", reason="Ordered twice.")
    order_refund(
        order=_pay(place(demo_shop, {jerky: 2}, BUYERS[0], 5)), actor=staff, reason="Buyer changed their mind."
    )
    partly = _pay(place(demo_shop, {longjing: 1, wife_cakes: 3}, BUYERS[2], 3))
    cakes_line = partly.lines.get(product=wife_cakes)
    order_refund(order=partly, quantities={cakes_line.pk: 1}, actor=staff, reason="One box arrived crushed.")

    # A little trade in the other shops, so their owners' dashboards are not empty.
    for number, shop in enumerate(other_shops):
        listed = [listing.product for listing in shop.listings.select_related("product").order_by("position", "pk")]
        days_ago = completed_days - 2 if number % 2 == 0 else 2
        order = _pay(place(shop, {listed[0]: 1, listed[1]: 2}, BUYERS[(number + 1) % len(BUYERS)], days_ago))
        if number % 2 == 0:
            order_mark_completed(order=order_mark_shipped(order=order, actor=staff), actor=staff)
    return placed


@transaction.atomic
def demo_storefront(stdout) -> dict[int, int]:
    """Create the demo catalogue, shops and orders (idempotent); `stdout` gets one summary line. Returns the new
    orders with how many days ago each happened (for `demo.payouts.demo_money`)."""
    products = _catalogue()
    shops = _shops(products)
    placed = _orders(shops, products)
    stdout.write(f"Storefront ready: {len(products)} products, {len(shops)} shops, {len(placed)} new orders.\n")
    return placed


def demo_orders_backdate(days_by_order: dict[int, int]) -> None:
    """Move each order's history (the order's times, its events, payments and refunds) `days` back, as if it had
    happened then. Demo only: the services stamp the moment they run. The order's ledger entries move with it
    (`demo.payouts`)."""
    for order_id, days in days_by_order.items():
        if not days:
            continue
        back = timedelta(days=days)
        Order.objects.filter(pk=order_id).update(
            **{name: F(name) - back for name in ("created_at", "paid_at", "shipped_at", "completed_at", "cancelled_at")}
        )
        OrderEvent.objects.filter(order_id=order_id).update(created_at=F("created_at") - back)
        Payment.objects.filter(order_id=order_id).update(
            created_at=F("created_at") - back, completed_at=F("completed_at") - back
        )
        Refund.objects.filter(order_id=order_id).update(created_at=F("created_at") - back)


# --- Products of the sandbox affiliate network (issue #12) --------------------------------------------------------

# How many of the sandbox feed's products each demo shop lists (the first shops of SHOPS), when it has none yet.
EXTERNAL_PER_SHOP = (4, 3, 3)
SANDBOX_FEED_PAGES = 3  # 20 products a page


def demo_external_products(stdout, *, wait_seconds: float = 0) -> None:
    """Sync the sandbox network's product feed and list a few of its products in the first demo shops.

    Never fails: when the sandbox is not reachable (`manage.py sandbox_network`, which `make run` starts) it
    writes a warning and the demo goes on without external products. `wait_seconds`: how long to keep trying
    while the sandbox starts. Idempotent: a shop that has external products already gets none added.
    """
    network = Network.objects.filter(code="sandbox", is_enabled=True).first()
    if network is None:
        stdout.write("Sandbox network disabled or missing: the demo shops list no external products.\n")
        return
    deadline = time.monotonic() + wait_seconds
    while True:
        try:
            synced = external_products_sync(network=network, pages=SANDBOX_FEED_PAGES)
            connector = get_connector(network.code)
            break
        except ConnectorError as error:
            if time.monotonic() >= deadline:
                stdout.write(
                    f"Warning: the sandbox network is not reachable ({error}), so no external products were synced "
                    "or added. Start it with `python manage.py sandbox_network` and run the demo again.\n"
                )
                return
            time.sleep(0.5)
    products = list(ExternalProduct.objects.filter(network=network, is_active=True).order_by("external_id"))
    added = refreshed = 0
    offset = 0
    for (email, *_rest), count in zip(SHOPS, EXTERNAL_PER_SHOP, strict=False):
        shop = Shop.objects.filter(owner__user__email=email).first()
        picks, offset = products[offset : offset + count], offset + count
        if shop is None:
            continue
        try:
            refreshed += _sandbox_links_refresh(shop, network, connector)
            if shop.external_listings.exists():
                continue
            for product in picks:
                external_listing_add(shop=shop, product=product)
                added += 1
        except (NetworkError, ConnectorError) as error:
            stdout.write(f"Warning: {shop.name}: {' '.join(getattr(error, 'messages', [str(error)]))}\n")
    stdout.write(
        f"Sandbox network: {synced} products synced, {added} added to demo shops"
        + (f", {refreshed} buy links renewed" if refreshed else "")
        + ".\n"
    )


def _sandbox_links_refresh(shop: Shop, network, connector) -> int:
    """The sandbox keeps its tracking links in memory only: after it restarts, the links stored with a shop's
    sandbox listings lead nowhere. Convert them again (the same member's tracking id, so the same attribution);
    a sandbox that still knows a link answers the same URL and nothing changes. Demo only: a real network's links
    do not expire this way."""
    renewed = 0
    listings = ExternalListing.objects.filter(shop=shop, product__network=network).select_related("product")
    tracking = shop.owner.tracking_ids.filter(network=network).first()
    for listing in listings if tracking else []:
        url = connector.tracking_link(listing.product.external_id, tracking.value)
        if url != listing.tracking_url:
            ExternalListing.objects.filter(pk=listing.pk).update(tracking_url=url)
            renewed += 1
    return renewed
