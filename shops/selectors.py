from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from django.db.models import (
    Count,
    DecimalField,
    ExpressionWrapper,
    F,
    OuterRef,
    Prefetch,
    Q,
    QuerySet,
    Subquery,
    Sum,
    Value,
)
from django.db.models.functions import Coalesce
from django.urls import reverse
from django.utils.text import slugify

from core.money import ZERO
from core.phones import phone_lookup_value
from networks.selectors import image_origin
from referrals.models import Member
from shops.models import (
    RESERVED_SLUGS,
    SHOP_SLUG_MAX_LENGTH,
    SHOP_SLUG_SHAPE,
    ExternalListing,
    Order,
    OrderEvent,
    OrderLine,
    Payment,
    Product,
    ShareLink,
    ShareLinkDailyStat,
    Shop,
    ShopListing,
)


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


@dataclass(frozen=True)
class BuyerOrderState:
    """What the buyer's order page says about payment and closing, and whether it refreshes itself.

    `code`: "awaiting_confirmation" (the latest payment is on its way: the page refreshes until the provider's
    answer arrives), "payment_failed" (the latest payment was declined: pay again), "payment_closed" (the latest
    payment was closed unpaid, e.g. it timed out at the provider: pay again), "awaiting_payment" (no payment
    started), "cancelled", or the order's status once paid. `cancelled_by`: "buyer", "timeout" or "shop" for a
    cancelled order. `late_payment_refunded`: a payment that arrived after the order was closed went straight back.
    """

    code: str
    cancelled_by: str = ""
    late_payment_refunded: bool = False

    @property
    def refreshes(self) -> bool:
        return self.code == "awaiting_confirmation"


def order_buyer_state(order: Order) -> BuyerOrderState:
    """The state of `order` for its buyer's page: its payments as `order_for_buyer` prefetched them (newest first),
    plus one query for a cancelled order's closing event."""
    payments = list(order.payments.all())
    late_refund = any(payment.status == Payment.Status.REFUNDED for payment in payments)
    if order.status == Order.Status.PENDING_PAYMENT:
        if not payments:
            return BuyerOrderState("awaiting_payment")
        if payments[0].status == Payment.Status.FAILED:
            return BuyerOrderState("payment_failed")
        if payments[0].status == Payment.Status.CLOSED:
            return BuyerOrderState("payment_closed")
        return BuyerOrderState("awaiting_confirmation")
    if order.status == Order.Status.CANCELLED:
        closing = (
            order.events.filter(kind=OrderEvent.Kind.STATUS, to_status=Order.Status.CANCELLED)
            .order_by("-created_at", "-pk")
            .values_list("actor_label", flat=True)
            .first()
        )
        cancelled_by = {"buyer": "buyer", "system": "timeout"}.get(closing or "", "shop")
        return BuyerOrderState("cancelled", cancelled_by=cancelled_by, late_payment_refunded=late_refund)
    return BuyerOrderState(order.status, late_payment_refunded=late_refund)


def order_lookup(number: str, contact: str) -> Order | None:
    """The order with this number whose buyer phone or email is `contact`, else None (no hint which was wrong).

    `contact` is an email address, or a phone number in any spelling: it is compared in its stored form (E.164,
    core.phones), so "138 0013 8000" finds an order placed with "+86 138-0013-8000"."""
    number, contact = (number or "").strip(), (contact or "").strip()
    if not number or not contact:
        return None
    orders = Order.objects.filter(number=number)
    if "@" in contact:
        return orders.filter(buyer_email__iexact=contact).first()
    phone = phone_lookup_value(contact)
    return orders.filter(buyer_phone=phone).first() if phone else None


def orders_for_phone(phone: str, *, limit: int = 50) -> list[Order]:
    """The latest orders placed with `phone` (E.164, proven by a one-time code: shops.phone_codes), newest first."""
    return list(
        Order.objects.filter(buyer_phone=phone)
        .select_related("shop")
        .only("number", "status", "total", "currency", "created_at", "shop__name")
        .order_by("-created_at", "-pk")[:limit]
    )


# --- The owner's dashboard ------------------------------------------------------------

CATALOGUE_SORTS = {
    "": ("category__position", "category__name", "title", "pk"),
    "earn": ("-commission_pool", "title", "pk"),
    "price": ("price", "title", "pk"),
    "new": ("-created_at", "-pk"),
}


def shop_address_suggestion(*, typed: str, name: str, member=None, shop: Shop | None = None) -> str | None:
    """A free shop address to suggest when the one typed cannot be used: the Latin letters and digits of what was
    typed, else of the shop's name, else "shop-<invite code>" (public anyway); None if none of them is free.
    At most three queries."""
    candidates = [slugify(typed or ""), slugify(name or "")]
    if member is not None:
        candidates.append(f"shop-{member.invite_code.lower()}")
    others = Shop.objects.exclude(pk=shop.pk) if shop is not None and shop.pk else Shop.objects.all()
    for candidate in candidates:
        candidate = candidate[:SHOP_SLUG_MAX_LENGTH].strip("-_").replace("_", "-")
        if not SHOP_SLUG_SHAPE.search(candidate) or candidate in RESERVED_SLUGS:
            continue
        if not others.filter(slug=candidate).exists():
            return candidate
    return None


def owner_shop(member) -> Shop | None:
    return Shop.objects.filter(owner=member).first()


def owner_listings(shop: Shop) -> list[ShopListing]:
    """Every listing of the shop, inactive products included, in the order buyers see them; one query."""
    return list(
        ShopListing.objects.filter(shop=shop)
        .select_related("product__category")
        .order_by("-is_featured", "position", "pk")
    )


def owner_listing(shop: Shop, listing_id: int) -> ShopListing | None:
    return ShopListing.objects.filter(shop=shop, pk=listing_id).select_related("product").first()


def listed_product_ids(shop: Shop) -> dict[int, int]:
    """{product id: listing id} for the shop's listings; one query."""
    return dict(ShopListing.objects.filter(shop=shop).values_list("product_id", "pk"))


def catalogue_search(*, search: str = "", category_id: int | None = None, sort: str = ""):
    """Active catalogue products whose title contains `search`, in `category_id` if given, sorted by one of
    CATALOGUE_SORTS (an unknown sort is the default). "earn" sorts by price × commission rate, which orders
    products by what a sharer earns on them under any one plan."""
    products = Product.objects.filter(is_active=True).select_related("category")
    if search:
        products = products.filter(title__icontains=search)
    if category_id:
        products = products.filter(category_id=category_id)
    if sort == "earn":
        products = products.annotate(
            commission_pool=ExpressionWrapper(F("price") * F("commission_rate"), output_field=DecimalField())
        )
    return products.order_by(*CATALOGUE_SORTS.get(sort, CATALOGUE_SORTS[""]))


def unpaid_units_held(*, since, client_key: str = "", phone: str = "", email: str = "") -> int:
    """Units held by orders awaiting payment placed since `since`, from the client address key, or (without one)
    with the phone number or the email address (in any case). 0 when nothing is given to match."""
    if client_key:
        match = Q(order__client_key=client_key)
    else:
        match = Q()
        if phone:
            match |= Q(order__buyer_phone=phone)
        if email:
            match |= Q(order__buyer_email__iexact=email)
        if not match:
            return 0
    held = OrderLine.objects.filter(
        match, order__status=Order.Status.PENDING_PAYMENT, order__created_at__gte=since
    ).aggregate(units=Sum("quantity"))["units"]
    return held or 0


# --- Sales -----------------------------------------------------------------------------------------------------


def member_link_clicks(member: Member, *, first, last, since: dict) -> dict:
    """Clicks and unique visitors of the member's share links from day `first` to `last`, one aggregate query:
    {"clicks_<key>": n, "unique_visitors_<key>": n} for each `since` {key: first day counted}."""
    return ShareLinkDailyStat.objects.filter(link__owner=member, day__gte=first, day__lte=last).aggregate(
        **{
            f"{name}_{key}": Sum(name, filter=Q(day__gte=day), default=0)
            for key, day in since.items()
            for name in ("clicks", "unique_visitors")
        }
    )


def sold_orders():
    """Orders that count as a member's sales: paid and not refunded in full."""
    return Order.objects.filter(paid_at__isnull=False).exclude(status=Order.Status.REFUNDED)


SALES = Sum(F("total") - F("refunded_total"), output_field=DecimalField(max_digits=14, decimal_places=2))


def sharer_sales(since: datetime, until: datetime) -> Coalesce:
    """An annotation for members: the sales of the orders each one shared (`sold_orders`) with `paid_at` in
    [since, until), net of partial refunds; 0.00 without any. A correlated subquery on the orders' sharer index, so
    a page of members costs one query however many orders they shared."""
    sales = (
        sold_orders()
        .filter(sharer=OuterRef("pk"), paid_at__gte=since, paid_at__lt=until)
        .order_by()
        .values("sharer")
        .annotate(amount=SALES)
        .values("amount")[:1]
    )
    return Coalesce(Subquery(sales), Value(ZERO), output_field=DecimalField(max_digits=14, decimal_places=2))


def member_attributed_orders(member: Member) -> QuerySet[Order]:
    """The orders `member` shared (is the sharer of), newest first, with their lines: amounts only.

    Reads no buyer field (name, phone, email, address): they are deferred and never shown to the sharer.
    Two queries a page (the orders, then their lines).
    """
    lines = OrderLine.objects.only(
        "pk", "order_id", "title", "quantity", "net_amount", "refunded_quantity", "refunded_amount"
    ).order_by("pk")
    return (
        Order.objects.filter(sharer=member)
        .only(
            "pk",
            "number",
            "status",
            "total",
            "refunded_total",
            "currency",
            "created_at",
            "paid_at",
            "sharer_id",
            "share_link_id",
        )
        .prefetch_related(Prefetch("lines", queryset=lines))
        .order_by("-created_at", "-pk")
    )


# --- Share links ----------------------------------------------------------------------

LINK_CACHE_SECONDS = 300  # how long a link's target stays cached in the click counter
MISSING_CACHE_SECONDS = 60  # how long an unknown code's 404 is cached


@dataclass(frozen=True)
class LinkTarget:
    link_id: int
    owner_id: int
    url: str


def share_link_lookup(code: str) -> LinkTarget | None:
    """Where /l/<code> goes, from the database (one query), or None for an unknown or inactive link.

    The redirect asks the click counter's cache first (`shops.services.share_link_follow`).
    """
    link = ShareLink.objects.select_related("shop").filter(code=code, is_active=True).first()
    if link is None:
        return None
    return LinkTarget(link_id=link.pk, owner_id=link.owner_id, url=share_link_target_url(link))


def share_link_target_url(link: ShareLink) -> str:
    if link.external_product_id:
        listing = ExternalListing.objects.filter(shop_id=link.shop_id, product_id=link.external_product_id).first()
        return listing.tracking_url if listing else reverse("shops:shop_home", args=[link.shop.slug])
    if link.product_id:
        return reverse("shops:product_detail", args=[link.shop.slug, link.product_id])
    return reverse("shops:shop_home", args=[link.shop.slug])


def member_share_links(member: Member):
    """The member's links with clicks, unique visitors, orders, sales and conversion, in one query."""
    sold = sold_orders().filter(share_link=OuterRef("pk"))
    stats = ShareLinkDailyStat.objects.filter(link=OuterRef("pk")).values("link")
    return (
        ShareLink.objects.filter(owner=member)
        .select_related("shop", "product")
        .annotate(
            clicks=Coalesce(Subquery(stats.annotate(n=Sum("clicks")).values("n")[:1]), 0),
            unique_visitors=Coalesce(Subquery(stats.annotate(n=Sum("unique_visitors")).values("n")[:1]), 0),
            order_count=Coalesce(Subquery(sold.values("share_link").annotate(n=Count("pk")).values("n")[:1]), 0),
            sales=Coalesce(
                Subquery(sold.values("share_link").annotate(n=Sum(F("total") - F("refunded_total"))).values("n")[:1]),
                Value(Decimal("0.00")),
                output_field=DecimalField(max_digits=14, decimal_places=2),
            ),
        )
        .order_by("-created_at", "-pk")
    )


def member_share_link(member: Member, link_id: int) -> ShareLink | None:
    return ShareLink.objects.select_related("shop", "product").filter(owner=member, pk=link_id).first()


# --- External products in shops (issue #12) --------------------------------------------------------------------


def shop_external_listings(shop: Shop) -> list[ExternalListing]:
    """What buyers see in the shop: listings of active products of enabled networks whose buy link works, in the
    owner's order, each with its product, network and link; one query."""
    return list(
        ExternalListing.objects.filter(
            shop=shop,
            product__is_active=True,
            product__network__is_enabled=True,
            share_link__is_active=True,
        )
        .select_related("product__network", "share_link")
        .order_by("position", "pk")
    )


def external_listing_rows(listings) -> list[dict]:
    """Listings of external products as the templates show them (the public shop page and the owner's): whether the
    product is still offered, and a picture only from a plain http(s) address."""
    return [
        {
            "listing": listing,
            "product": listing.product,
            "is_offered": listing.product.is_active and listing.product.network.is_enabled,
            "has_image": image_origin(listing.product.image_url) is not None,
        }
        for listing in listings
    ]


def owner_external_listings(shop: Shop) -> list[ExternalListing]:
    """Every external listing of the shop, products no longer offered included; one query."""
    return list(
        ExternalListing.objects.filter(shop=shop)
        .select_related("product__network", "share_link")
        .order_by("position", "pk")
    )


def owner_external_listing(shop: Shop, listing_id: int) -> ExternalListing | None:
    return ExternalListing.objects.filter(shop=shop, pk=listing_id).select_related("product").first()
