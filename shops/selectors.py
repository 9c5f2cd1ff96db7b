from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal

from django.db.models import (
    Case,
    CharField,
    Count,
    DecimalField,
    Exists,
    ExpressionWrapper,
    F,
    OuterRef,
    Prefetch,
    Q,
    QuerySet,
    Subquery,
    Sum,
    Value,
    When,
)
from django.db.models.functions import Coalesce
from django.urls import reverse

from core.i18n import in_any_language, localized
from core.money import ZERO
from core.phones import phone_lookup_value
from core.text import ascii_slug
from networks.selectors import image_origin
from referrals.models import Member
from shops.couriers import Courier, courier_for
from shops.models import (
    BUY_BUTTON_CAMPAIGN,
    RESERVED_SLUGS,
    SHOP_SLUG_MAX_LENGTH,
    SHOP_SLUG_SHAPE,
    AttributionOptions,
    BuyerBinding,
    CouponCode,
    ExternalListing,
    Order,
    OrderEvent,
    OrderLine,
    Payment,
    Product,
    ProductMaterial,
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
        Product.objects.filter(pk__in=items, listings__shop=shop)
        .select_related("category")
        .order_by(localized("title"), "pk")
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
# Translated fields among the sorts: ordered by the name shown (the active language's, else English), not by a
# column that may be empty in this language (issue #23).
TRANSLATED_SORT_KEYS = ("title", "category__name")


def catalogue_ordering(sort: str) -> list:
    return [
        localized(key).asc() if key in TRANSLATED_SORT_KEYS else key
        for key in CATALOGUE_SORTS.get(sort, CATALOGUE_SORTS[""])
    ]


# Tried in turn after an address that is taken or reserved: zhangxiaoming, zhangxiaoming-2, … zhangxiaoming-9.
ADDRESS_SUFFIXES = ("", *(f"-{number}" for number in range(2, 10)))


def _address_candidates(base: str) -> list[str]:
    """`base` and its numbered variants, each cut to the address rules (a base under 3 characters, 李 → li, gets
    "-shop": li-shop); [] when nothing usable is left."""
    base = base.replace("_", "-").strip("-")
    if not base:
        return []
    if len(base) < 3:
        base = f"{base}-shop"
    candidates = []
    for suffix in ADDRESS_SUFFIXES:
        candidate = base[: SHOP_SLUG_MAX_LENGTH - len(suffix)].strip("-") + suffix
        if SHOP_SLUG_SHAPE.search(candidate) and candidate not in RESERVED_SLUGS:
            candidates.append(candidate)
    return candidates


def shop_address_suggestion(*, typed: str = "", name: str = "", member=None, shop: Shop | None = None) -> str | None:
    """A free shop address to suggest: from what was typed, else from the name (Chinese as pinyin, core.text:
    张小明 → zhangxiaoming), else "shop-<invite code>" (public anyway); a taken or reserved one gets a number
    (zhangxiaoming-2). None if none of them is free. One query."""
    bases = [ascii_slug(typed), ascii_slug(name)]
    if member is not None:
        bases.append(f"shop-{member.invite_code.lower()}")
    candidates = [candidate for base in bases for candidate in _address_candidates(base)]
    if not candidates:
        return None
    others = Shop.objects.exclude(pk=shop.pk) if shop is not None and shop.pk else Shop.objects.all()
    taken = set(others.filter(slug__in=candidates).values_list("slug", flat=True))
    return next((candidate for candidate in candidates if candidate not in taken), None)


@dataclass(frozen=True)
class AddressCheck:
    """Whether `address` (as it would be saved: trimmed, lower case) can be a shop's address.

    status: "available", "current" (the shop's own address now), "invalid" (not the shape of an address),
    "reserved" or "taken"; `suggestion` is a free address to offer instead (None when it is available, or when no
    free one could be made)."""

    address: str
    status: str
    suggestion: str | None = None

    @property
    def is_available(self) -> bool:
        return self.status in ("available", "current")


def shop_address_check(*, typed: str, name: str = "", member=None, shop: Shop | None = None) -> AddressCheck:
    """Can `typed` be the address of `shop` (None: a shop about to be opened by `member`)? The same rules as
    opening or saving the shop (the shape, the reserved words, one shop per address). At most two queries."""
    address = (typed or "").strip().lower()
    if shop is not None and shop.pk and address == shop.slug:
        return AddressCheck(address, "current")
    if not SHOP_SLUG_SHAPE.search(address):
        status = "invalid"
    elif address in RESERVED_SLUGS:
        status = "reserved"
    else:
        others = Shop.objects.exclude(pk=shop.pk) if shop is not None and shop.pk else Shop.objects.all()
        if not others.filter(slug=address).exists():
            return AddressCheck(address, "available")
        status = "taken"
    suggestion = shop_address_suggestion(typed=address, name=name, member=member, shop=shop)
    return AddressCheck(address, status, suggestion)


@dataclass(frozen=True)
class ShopProgress:
    """How far an owner has set their shop up: products in it (the catalogue's and external networks'), and
    whether they have made a link to share (the share page of a product or of the shop makes one; the links that
    external products' buy buttons get by themselves do not count)."""

    product_count: int
    has_shared: bool


def _count_per_shop(queryset):
    return Coalesce(
        Subquery(queryset.order_by().values("shop").annotate(count=Count("pk")).values("count")[:1]), Value(0)
    )


def shop_progress(shop: Shop) -> ShopProgress:
    """One query."""
    row = (
        Shop.objects.filter(pk=shop.pk)
        .values(
            listing_count=_count_per_shop(ShopListing.objects.filter(shop=OuterRef("pk"))),
            external_count=_count_per_shop(ExternalListing.objects.filter(shop=OuterRef("pk"))),
            has_shared_link=Exists(
                ShareLink.objects.filter(owner=OuterRef("owner")).exclude(
                    external_product__isnull=False, campaign=BUY_BUTTON_CAMPAIGN
                )
            ),
        )
        .first()
    )
    if row is None:  # deleted meanwhile
        return ShopProgress(product_count=0, has_shared=False)
    return ShopProgress(product_count=row["listing_count"] + row["external_count"], has_shared=row["has_shared_link"])


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
    """Active catalogue products whose title contains `search` in any language, in `category_id` if given, sorted by
    one of CATALOGUE_SORTS (an unknown sort is the default; names in the active language). "earn" sorts by price ×
    commission rate, which orders products by what a sharer earns on them under any one plan."""
    products = Product.objects.filter(is_active=True).select_related("category")
    if search:
        products = products.filter(in_any_language("title", search))
    if category_id:
        products = products.filter(category_id=category_id)
    if sort == "earn":
        products = products.annotate(
            commission_pool=ExpressionWrapper(F("price") * F("commission_rate"), output_field=DecimalField())
        )
    return products.order_by(*catalogue_ordering(sort))


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


def own_sales_paid_at(sharer_ids: Iterable[int], since: datetime, until: datetime) -> dict[int, list[datetime]]:
    """{member id: the payment times, sorted} of each member's own sales paid in [since, until): orders they shared
    (`sold_orders`: paid, not refunded in full) that were not self-purchases, so buying from oneself never counts.
    One query over that period's shared orders (the partial index on `paid_at` of shared orders): the own-sales
    qualification of uplines (`commissions.services.split`)."""
    found = defaultdict(list)
    rows = (
        sold_orders()
        .filter(sharer_id__in=set(sharer_ids), paid_at__gte=since, paid_at__lt=until, is_self_purchase=False)
        .order_by("paid_at")
        .values_list("sharer_id", "paid_at")
    )
    for sharer_id, paid_at in rows:
        found[sharer_id].append(paid_at)
    return dict(found)


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


# The two kinds of a member's orders (`member_orders`), each order exactly one of them: "link", a sale the
# member shared (through one of their links, or a shop other than their own); "shop", any other order placed in
# their shop (bought there directly, or through another member's link, who is then its sharer).
ORDER_SOURCE_SHOP = "shop"
ORDER_SOURCE_LINK = "link"
ORDER_SOURCES = (ORDER_SOURCE_SHOP, ORDER_SOURCE_LINK)


def sales_by_sharer(since: datetime, until: datetime) -> list[tuple[int, Decimal]]:
    """[(member id, sales)] of every active member whose shared orders (`sold_orders`) paid in [since, until) come to
    more than zero, net of partial refunds, in no particular order (a suspended member is on no leaderboard). One
    grouped query over that period's shared orders only (the partial index on `paid_at` of shared orders): the
    leaderboard's sales (`commissions.selectors.leaderboard_standings`)."""
    return list(
        sold_orders()
        .filter(sharer__isnull=False, sharer__status=Member.Status.ACTIVE, paid_at__gte=since, paid_at__lt=until)
        .order_by()
        .values("sharer")
        .annotate(amount=SALES)
        .filter(amount__gt=0)
        .values_list("sharer", "amount")
    )


# What the owner's order list shows of an order; the buyer's name, phone and email are read only to be masked
# (members/selectors.py), the address and the email's hash never.
MEMBER_ORDER_FIELDS = (
    "pk",
    "number",
    "status",
    "total",
    "refunded_total",
    "currency",
    "created_at",
    "paid_at",
    "shipped_at",
    "completed_at",
    "sharer_id",
    "share_link_id",
    "shop_id",
    "shop__name",
    "shop__slug",
    "shop__owner_id",
    "buyer_name",
    "buyer_phone",
    "buyer_email",
    "courier",
    "waybill_number",
)


def _through_member(member: Member) -> Q:
    own_shop_direct = Q(shop__owner=member, share_link__isnull=True)
    return Q(sharer=member) & ~own_shop_direct


def member_orders(
    member: Member,
    *,
    status: str | None = None,
    source: str | None = None,
    placed_from: date | None = None,
    placed_to: date | None = None,
    paid_from: date | None = None,
    paid_to: date | None = None,
) -> QuerySet[Order]:
    """The orders of `member`'s shop and the orders they shared (are the sharer of), newest first, each annotated
    with `source` (ORDER_SOURCES), with their shop and lines. Filters: a status, a source, the days placed or paid
    on (inclusive, in the current time zone). An unknown status or source gives no rows, never an error.

    Only MEMBER_ORDER_FIELDS are read: never the shipping address. Two queries a page (the orders, their lines).
    """
    # `shown_title`: the product's title in the member's language (the line's `title` is what the buyer saw, in
    # the buyer's language at checkout, and stays on the buyer's receipt).
    lines = (
        OrderLine.objects.only(
            "pk", "order_id", "title", "quantity", "net_amount", "refunded_quantity", "refunded_amount"
        )
        .annotate(shown_title=localized("product__title"))
        .order_by("pk")
    )
    through_member = _through_member(member)
    orders = (
        Order.objects.filter(Q(shop__owner=member) | Q(sharer=member))
        .annotate(
            source=Case(
                When(through_member, then=Value(ORDER_SOURCE_LINK)),
                default=Value(ORDER_SOURCE_SHOP),
                output_field=CharField(),
            )
        )
        .select_related("shop")
        .only(*MEMBER_ORDER_FIELDS)
        .prefetch_related(Prefetch("lines", queryset=lines))
    )
    if status:
        orders = orders.filter(status=status) if status in Order.Status.values else orders.none()
    if source == ORDER_SOURCE_LINK:
        orders = orders.filter(through_member)
    elif source == ORDER_SOURCE_SHOP:
        orders = orders.filter(shop__owner=member).exclude(through_member)
    elif source:
        orders = orders.none()
    if placed_from:
        orders = orders.filter(created_at__date__gte=placed_from)
    if placed_to:
        orders = orders.filter(created_at__date__lte=placed_to)
    if paid_from:
        orders = orders.filter(paid_at__date__gte=paid_from)
    if paid_to:
        orders = orders.filter(paid_at__date__lte=paid_to)
    return orders.order_by("-created_at", "-pk")


def member_order(member: Member, number: str) -> Order | None:
    """One of `member_orders` by its number, with its events for the timeline (`order_timeline`); None for an
    order that is not the member's, exactly as for one that does not exist."""
    return (
        member_orders(member)
        .filter(number=(number or "").strip())
        .prefetch_related(Prefetch("events", queryset=OrderEvent.objects.order_by("created_at", "pk")))
        .first()
    )


# --- The buyer's order timeline ------------------------------------------------------------------------------


@dataclass
class TimelineStep:
    """One step of an order's history for its page: `code` is "placed", "paid", "shipped", "completed", "refund"
    (money back, `amount`; `is_full` once nothing is left), or "cancelled". `at` is None for a step still to come.
    A shipped step carries its courier, waybill number and tracking link (the latest correction's)."""

    code: str
    at: datetime | None = None
    amount: Decimal | None = None
    is_full: bool = False
    courier: Courier | None = None
    waybill: str = ""
    tracking_url: str = ""

    @property
    def is_done(self) -> bool:
        return self.at is not None

    def ship(self, detail: dict) -> None:
        self.courier = courier_for(detail.get("courier", ""))
        self.waybill = detail.get("waybill", "")
        self.tracking_url = self.courier.tracking_url(self.waybill) if self.courier else ""


UPCOMING_STEPS = {
    Order.Status.PAID: ("shipped", "completed"),
    Order.Status.SHIPPED: ("completed",),
}


def order_timeline(order: Order) -> list[TimelineStep]:
    """The order's steps from its OrderEvents (`order.events.all()`: one query, none if prefetched), oldest first,
    then the steps still to come of an order on its normal path."""
    steps: list[TimelineStep] = []
    shipped: TimelineStep | None = None
    refund: TimelineStep | None = None
    for event in sorted(order.events.all(), key=lambda event: (event.created_at, event.pk)):
        if event.kind == OrderEvent.Kind.PLACED:
            steps.append(TimelineStep("placed", event.created_at, amount=event.amount))
        elif event.kind == OrderEvent.Kind.SHIPMENT and shipped is not None:
            shipped.ship(event.detail or {})
        elif event.kind == OrderEvent.Kind.REFUND:
            refund = TimelineStep("refund", event.created_at, amount=event.amount)
            steps.append(refund)
        elif event.kind == OrderEvent.Kind.STATUS:
            if event.to_status == Order.Status.REFUNDED:
                if refund is not None:
                    refund.is_full = True
                continue
            if event.to_status not in ("paid", "shipped", "completed", "cancelled"):
                continue
            step = TimelineStep(event.to_status, event.created_at, amount=event.amount)
            if event.to_status == Order.Status.SHIPPED:
                shipped = step
                step.ship(event.detail or {})
            steps.append(step)
    steps.extend(TimelineStep(code) for code in UPCOMING_STEPS.get(order.status, ()))
    return steps


# --- Share links ----------------------------------------------------------------------

LINK_CACHE_SECONDS = 300  # how long a link's target stays cached in the click counter
MISSING_CACHE_SECONDS = 60  # how long an unknown code's 404 is cached


@dataclass(frozen=True)
class LinkTarget:
    link_id: int
    owner_id: int
    url: str


def share_link_lookup(code: str) -> LinkTarget | None:
    """Where /l/<code> goes, from the database (one query), or None for an unknown or inactive link, or a link to a
    shop that has closed.

    The redirect asks the click counter's cache first (`shops.services.share_link_follow`).
    """
    link = ShareLink.objects.select_related("shop").filter(code=code, is_active=True).first()
    if link is None or link.shop.is_closed():
        return None  # a closed shop's links go nowhere (cached up to LINK_CACHE_SECONDS after the closing time)
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


def product_materials(product: Product):
    """Staff's sharing materials of `product` that members see, in staff's order."""
    return ProductMaterial.objects.filter(product=product, is_active=True).order_by("position", "pk")


# --- Attribution options (issue #22) ----------------------------------------------------------------------------


def attribution_options() -> AttributionOptions:
    """The options in force (the active compliance policy's, copied here when it was published); all off if no
    policy ever set them. Not saved: a missing row is read as the defaults."""
    return AttributionOptions.objects.filter(pk=1).first() or AttributionOptions(pk=1)


def buyer_binding_current(keys: list[str], *, now) -> BuyerBinding | None:
    """The buyer's binding in force (open, not expired, to an active member), newest first; None if none."""
    if not keys:
        return None
    return (
        BuyerBinding.objects.select_related("member__user")
        .filter(buyer_key__in=keys, ended_at__isnull=True, expires_at__gt=now, member__status=Member.Status.ACTIVE)
        .order_by("-started_at", "-pk")
        .first()
    )


def coupon_code_lookup(code: str) -> CouponCode | None:
    """The coupon code `code` (already normalised), with its owner and their user; None if there is none."""
    if not code:
        return None
    return CouponCode.objects.select_related("owner__user").filter(code=code).first()


def member_coupon_code(member: Member) -> CouponCode | None:
    return CouponCode.objects.filter(owner=member).first()


def products_below_discount(discount_rate: Decimal) -> QuerySet[Product]:
    """Active products whose commission rate is below `discount_rate`: a coupon's discount would be larger than
    their pool, which pays it."""
    return Product.objects.filter(is_active=True, commission_rate__lt=discount_rate).order_by("commission_rate", "pk")


def typical_commission_rate() -> Decimal | None:
    """The commission rate most active products have (the lower one on a tie); None when no product is active. The
    public rules page works its example out with it (one grouped query)."""
    row = (
        Product.objects.filter(is_active=True)
        .values("commission_rate")
        .annotate(products=Count("pk"))
        .order_by("-products", "commission_rate")
        .first()
    )
    return row["commission_rate"] if row else None
