from dataclasses import dataclass
from decimal import Decimal

from django.db.models import Prefetch, Q

from config.money import ZERO
from shops.models import Order, Product, Shop, ShopListing


def shop_by_slug(slug: str) -> Shop | None:
    return Shop.objects.select_related("owner__user").filter(slug=slug).first()


def shop_listings(shop: Shop):
    """The shop's listings for buyers: featured first, then the owner's order; one query."""
    return (
        ShopListing.objects.filter(shop=shop, product__is_active=True)
        .select_related("product__category")
        .order_by("-is_featured", "position", "pk")
    )


def shop_product(shop: Shop, product_id: int) -> ShopListing | None:
    return ShopListing.objects.filter(shop=shop, product_id=product_id).select_related("product__category").first()


@dataclass(frozen=True)
class CartLine:
    product: Product
    quantity: int
    is_available: bool

    @property
    def line_total(self) -> Decimal:
        return self.product.price * self.quantity


def cart_lines(shop: Shop, items: dict[int, int]) -> list[CartLine]:
    """The cart's products, in one query, each marked whether it can still be bought here."""
    if not items:
        return []
    listed = (
        Product.objects.filter(pk__in=items, listings__shop=shop).select_related("category").order_by("title", "pk")
    )
    return [
        CartLine(
            product=product,
            quantity=items[product.pk],
            is_available=shop.is_open and product.is_active and product.stock >= items[product.pk],
        )
        for product in listed
    ]


def cart_total(lines: list[CartLine]) -> Decimal:
    return sum((line.line_total for line in lines), ZERO)


def order_for_buyer(number: str) -> Order | None:
    return (
        Order.objects.select_related("shop")
        .prefetch_related(Prefetch("lines"), Prefetch("payments"))
        .filter(number=number)
        .first()
    )


def order_lookup(number: str, contact: str) -> Order | None:
    """The order with this number whose buyer phone or email is `contact`, else None (no hint which was wrong)."""
    number, contact = (number or "").strip(), (contact or "").strip()
    if not number or not contact:
        return None
    return Order.objects.filter(number=number).filter(Q(buyer_phone=contact) | Q(buyer_email__iexact=contact)).first()


def catalogue_products(*, search: str = "", category_id: int | None = None):
    products = Product.objects.filter(is_active=True).select_related("category")
    if search:
        products = products.filter(Q(title__icontains=search) | Q(description__icontains=search))
    if category_id:
        products = products.filter(category_id=category_id)
    return products.order_by("category__position", "title", "pk")
