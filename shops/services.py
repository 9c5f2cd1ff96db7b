"""Every write to the catalogue, shops, share links and their clicks, orders, payments and refunds (SPEC §5, §6).

Order transitions lock the order row first (`shops.locks.order_lock`), check the move
against ORDER_TRANSITIONS and write an OrderEvent. Money news goes up the stack only as the
signals of `shops.signals` (an order paid, in the transaction; a refund recorded, after it).
"""

import logging
import secrets
from dataclasses import dataclass, replace
from datetime import timedelta
from decimal import Decimal
from functools import partial
from typing import Literal

import psycopg
from django.conf import settings
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.db import IntegrityError, connection, transaction
from django.db.models import F, Max
from django.utils import timezone
from django.utils.translation import gettext as _

from core.money import ZERO, quantize_money
from core.phones import phone_e164
from core.ratelimit import parse_rate
from core.task_helpers import task_request_once, task_runs_in_process
from networks.models import ExternalProduct
from networks.services import external_tracking_link
from referrals.models import Member
from shops.clicks import (
    LIMITED,
    MISSING,
    click_counter,
    decode_target,
    encode_target,
    is_bot,
    rate_window,
    visitor_hash,
)
from shops.coupons import buyer_keys, coupon_code_normalise, coupon_line_discount
from shops.couriers import COURIERS, WAYBILL_MAX_LENGTH, waybill_is_valid, waybill_normalise
from shops.locks import (
    checkout_limit_lock,
    order_lines_lock,
    order_lock,
    orders_lock,
    payment_lock,
    payments_lock,
    shop_lock,
    waiting_webhook_events_lock,
)
from shops.models import (
    BUY_BUTTON_CAMPAIGN,
    AttributionOptions,
    BuyerBinding,
    ClickFlush,
    CouponCode,
    ExternalListing,
    Order,
    OrderEvent,
    OrderLine,
    Payment,
    Product,
    Refund,
    RefundLine,
    ShareLink,
    ShareLinkDailyStat,
    Shop,
    ShopEvent,
    ShopListing,
    WebhookEvent,
    new_coupon_code,
    new_order_number,
    new_share_code,
)
from shops.payments import WebhookNotice, WebhookRejected, get_provider
from shops.payments.base import Buyer, PaymentAction, PaymentAlreadyPaid, ProviderError
from shops.selectors import (
    LINK_CACHE_SECONDS,
    MISSING_CACHE_SECONDS,
    LinkTarget,
    attribution_options,
    buyer_binding_current,
    coupon_code_lookup,
    member_coupon_code,
    share_link_lookup,
    unpaid_units_held,
)
from shops.signals import order_paid, order_status_changed, refund_recorded

logger = logging.getLogger(__name__)

Status = Order.Status
ORDER_TRANSITIONS: dict[str, set[str]] = {
    Status.PENDING_PAYMENT: {Status.PAID, Status.CANCELLED},
    Status.PAID: {Status.SHIPPED, Status.REFUNDED},
    Status.SHIPPED: {Status.COMPLETED, Status.REFUNDED},
    Status.COMPLETED: {Status.REFUNDED},
    Status.CANCELLED: set(),
    Status.REFUNDED: set(),
}
REFUNDABLE = {Status.PAID, Status.SHIPPED, Status.COMPLETED}
STATUS_TIMESTAMPS = {
    Status.PAID: "paid_at",
    Status.SHIPPED: "shipped_at",
    Status.COMPLETED: "completed_at",
    Status.CANCELLED: "cancelled_at",
}


class ShopError(ValidationError):
    """A refused shop or order change; the message is fit to show the user. Nothing was changed."""


class SoldOut(ShopError):
    def __init__(self, product: Product):
        super().__init__(
            _("Sorry, “%(title)s” has just sold out (or not enough are left). Nothing was charged.")
            % {"title": product.title},
            code="sold_out",
        )
        self.product = product


class IllegalTransition(ShopError):
    pass


# --- Shops ----------------------------------------------------------------------


@transaction.atomic
def shop_open(*, owner, name: str, slug: str, description: str = "", logo=None, is_open: bool = True) -> Shop:
    """Open `owner`'s one shop. Raises ShopError (field errors) on bad input or a second shop."""
    if Shop.objects.filter(owner=owner).exists():
        raise ShopError(_("You already have a shop."), code="has_shop")
    shop = Shop(owner=owner, name=name, slug=(slug or "").strip().lower(), description=description, is_open=is_open)
    if logo:
        shop.logo = logo
    shop.full_clean()
    try:
        with transaction.atomic():
            shop.save()
    except IntegrityError as error:
        raise ShopError({"slug": [_("This address is taken; pick another.")]}) from error
    return shop


@transaction.atomic
def shop_update(*, shop: Shop, **fields) -> Shop:
    allowed = {"name", "slug", "description", "logo", "is_open"}
    unknown = set(fields) - allowed
    if unknown:
        raise ValueError(f"shop_update cannot change {sorted(unknown)}")
    shop = shop_lock(shop.pk)
    for name, value in fields.items():
        if name == "slug":
            value = (value or "").strip().lower()
        if name == "logo" and value is None:
            continue
        setattr(shop, name, value)
    shop.full_clean()
    try:
        with transaction.atomic():
            shop.save()
    except IntegrityError as error:
        raise ShopError({"slug": [_("This address is taken; pick another.")]}) from error
    return shop


@transaction.atomic
def shop_change_owner(*, shop: Shop, new_owner: Member, actor, reason: str) -> ShopEvent:
    """Give `shop` to `new_owner`: the one way a shop's owner changes (staff holding shops.change_shop_owner).

    Locks the shop row, then checks: a reason is given; `new_owner` is another member, active (their account too),
    and has no shop (a member has one shop at most: the database holds it too). Otherwise ShopError, nothing changed.

    Orders already placed keep their sharer and their commission; the products listed stay. The old owner's share
    links to the shop are switched off, and the external networks' products are taken out of it (their buy links
    carry the old owner's tracking id; the new owner adds them again): from the commit on, every sale through the
    shop pays the new owner. Writes a ShopEvent (actor, old and new owner, reason, what was switched off).
    """
    reason = (reason or "").strip()
    if not reason:
        raise ShopError({"reason": [_("Give a reason: it is kept in the audit log.")]}, code="reason")
    shop = shop_lock(shop.pk, with_owner=True)
    old_owner = shop.owner
    new_owner = Member.objects.select_related("user").get(pk=new_owner.pk)
    if new_owner.pk == old_owner.pk:
        raise ShopError(_("%(member)s owns this shop already.") % {"member": new_owner}, code="same_owner")
    if new_owner.status != Member.Status.ACTIVE or not new_owner.user.is_active:
        raise ShopError(
            _("%(member)s is not an active member; a shop can only go to an active member.") % {"member": new_owner},
            code="inactive_owner",
        )
    has_shop = _("%(member)s has a shop already; a member has one shop at most.") % {"member": new_owner}
    if Shop.objects.filter(owner=new_owner).exists():
        raise ShopError(has_shop, code="has_shop")
    shop.owner = new_owner
    try:
        with transaction.atomic():
            shop.save(update_fields=["owner"])
    except IntegrityError as error:  # the new owner opened a shop meanwhile
        raise ShopError(has_shop, code="has_shop") from error

    external = list(ExternalListing.objects.filter(shop=shop).order_by("pk").values_list("pk", flat=True))
    for listing_id in external:
        external_listing_remove(shop=shop, listing_id=listing_id)  # switches its buy link off too
    links = list(ShareLink.objects.filter(shop=shop, owner=old_owner, is_active=True).order_by("pk"))
    for link in links:
        share_link_deactivate(link=link)
    return ShopEvent.objects.create(
        shop=shop,
        kind=ShopEvent.Kind.OWNER,
        actor=actor,
        old_owner=old_owner,
        new_owner=new_owner,
        reason=reason,
        detail={
            "old_owner": old_owner.invite_code,
            "new_owner": new_owner.invite_code,
            "share_links_switched_off": [link.code for link in links],
            "external_listings_removed": len(external),
        },
    )


@transaction.atomic
def shop_close_announce(
    *, shop: Shop, actor, reason: str, stop_sales: bool = False, notice_days: int | None = None, now=None
) -> Shop:
    """Announce that `shop` closes: from now its pages show "This shop closes on <date>" (电子商务法 art. 16: an
    e-commerce operator who stops announces it on its home page thirty days ahead), and on that date (now +
    `notice_days`, settings.SHOP_CLOSING_NOTICE_DAYS) its pages answer 410 and its share links 404.

    Buyers may go on buying until then, unless `stop_sales` (the owner's account closes: nobody is left to earn from
    a sale, so orders stop at once, and the external networks' products, whose buy links carry the owner's tracking
    id, are taken out). Locks the shop row; writes a ShopEvent (closing) with the date. Idempotent: a shop already
    closing keeps its earlier date (a second announcement never pushes it back), though `stop_sales` still applies.
    """
    reason = (reason or "").strip()
    if not reason:
        raise ShopError({"reason": [_("Give a reason: it is kept in the audit log.")]}, code="reason")
    now = now or timezone.now()
    shop = shop_lock(shop.pk, with_owner=True)
    announced = shop.closes_at is None
    fields = []
    if announced:
        days = settings.SHOP_CLOSING_NOTICE_DAYS if notice_days is None else notice_days
        shop.closes_at = now + timedelta(days=days)
        fields.append("closes_at")
    external = []
    if stop_sales:
        if shop.is_open:
            shop.is_open = False
            fields.append("is_open")
        external = list(ExternalListing.objects.filter(shop=shop).order_by("pk").values_list("pk", flat=True))
    if fields:
        shop.save(update_fields=fields)
    for listing_id in external:
        external_listing_remove(shop=shop, listing_id=listing_id)
    if announced or fields or external:
        ShopEvent.objects.create(
            shop=shop,
            kind=ShopEvent.Kind.CLOSING,
            actor=actor,
            old_owner=shop.owner,
            reason=reason,
            detail={
                "closes_at": shop.closes_at.isoformat(),
                "sales_stopped": not shop.is_open,
                "external_listings_removed": len(external),
            },
        )
    return shop


@transaction.atomic
def shop_listing_add(*, shop: Shop, product: Product, is_featured: bool = False) -> ShopListing:
    """List a catalogue product in the shop, last. Idempotent: listing it again returns the listing."""
    if not product.is_active:
        raise ShopError(_("“%(title)s” is not for sale.") % {"title": product.title}, code="inactive")
    shop_lock(shop.pk)  # serialise listing changes per shop
    existing = ShopListing.objects.filter(shop=shop, product=product).first()
    if existing is not None:
        return existing
    last = ShopListing.objects.filter(shop=shop).aggregate(last=Max("position"))["last"]
    return ShopListing.objects.create(
        shop=shop, product=product, position=0 if last is None else last + 1, is_featured=is_featured
    )


def shop_listing_remove(*, shop: Shop, listing_id: int) -> None:
    deleted, _detail = ShopListing.objects.filter(shop=shop, pk=listing_id).delete()
    if not deleted:
        raise ShopError(_("That product is not in your shop."), code="not_listed")


def shop_listing_set_featured(*, shop: Shop, listing_id: int, is_featured: bool) -> None:
    if not ShopListing.objects.filter(shop=shop, pk=listing_id).update(is_featured=is_featured):
        raise ShopError(_("That product is not in your shop."), code="not_listed")


# --- Orders ---------------------------------------------------------------------


@dataclass(frozen=True)
class BuyerDetails:
    name: str
    phone: str
    email: str
    address: str


def _event(order: Order, kind: str, *, actor=None, actor_label: str = "", **fields) -> OrderEvent:
    return OrderEvent.objects.create(order=order, kind=kind, actor=actor, actor_label=actor_label, **fields)


def _limit_unpaid_units(*, units: int, buyer: BuyerDetails, client_key: str) -> None:
    """Refuse (ShopError, code "limit") a checkout of `units` that would take an order over
    ORDER_MAX_UNITS_PER_ORDER, or what unpaid orders hold over ORDER_UNPAID_UNITS_PER_BUYER (per phone number and
    per email address) or ORDER_UNPAID_UNITS_PER_ADDRESS (per client address key). Unpaid orders count while they
    wait for payment, for ORDER_PAYMENT_TIMEOUT_MINUTES at most: paying, cancelling or the timeout releases them.

    Takes the buyer's and the address's checkout locks first, so checkouts of one buyer are counted one after the
    other (the caller's transaction holds them until it commits the order)."""
    per_order = settings.ORDER_MAX_UNITS_PER_ORDER
    if per_order and units > per_order:
        raise ShopError(
            _("An order may hold at most %(max)d items; this one has %(units)d.") % {"max": per_order, "units": units},
            code="limit",
        )
    per_buyer, per_address = settings.ORDER_UNPAID_UNITS_PER_BUYER, settings.ORDER_UNPAID_UNITS_PER_ADDRESS
    phone, email = buyer.phone.strip(), buyer.email.strip().lower()
    names = []
    if per_buyer:
        names += [f"phone:{phone}"] if phone else []
        names += [f"email:{email}"] if email else []
    if per_address and client_key:
        names.append(f"address:{client_key}")
    if not names:
        return
    checkout_limit_lock(names)
    minutes = settings.ORDER_PAYMENT_TIMEOUT_MINUTES
    since = timezone.now() - timedelta(minutes=minutes)
    checks = []
    if per_buyer and (phone or email):
        message = _(
            "Orders awaiting payment with this phone number or email already hold %(held)d items, and at most "
            "%(max)d may wait at once. Pay or cancel them first (Look up an order), order fewer, or try again once "
            "unpaid orders lapse (after %(minutes)d minutes)."
        )
        checks.append((per_buyer, unpaid_units_held(since=since, phone=phone, email=email), message))
    if per_address and client_key:
        message = _(
            "Orders awaiting payment from your network already hold %(held)d items, and at most %(max)d may wait "
            "at once. Pay or cancel them first, order fewer, or try again once unpaid orders lapse (after "
            "%(minutes)d minutes)."
        )
        checks.append((per_address, unpaid_units_held(since=since, client_key=client_key), message))
    for limit, held, message in checks:
        if held + units > limit:
            raise ShopError(message % {"held": held, "max": limit, "minutes": minutes}, code="limit")


@transaction.atomic
def order_place(
    *,
    shop: Shop,
    items: dict[int, int],
    buyer: BuyerDetails,
    sharer=None,
    share_link=None,
    buyer_user=None,
    client_key: str = "",
    coupon_code: str = "",
    network_key: str = "",
    device_key: str = "",
) -> Order:
    """Place an order for `items` ({product id: quantity}) in `shop`, reserving stock.

    Stock is taken with one conditional UPDATE per product (in product id order,
    so concurrent checkouts cannot deadlock): it never goes negative, and the
    buyer who loses the race gets SoldOut with nothing changed. Before that, the
    units are checked against the limits on what one order and what one buyer's
    (phone, email, `client_key`: their address, hashed) unpaid orders may hold,
    under a lock per buyer (`_limit_unpaid_units`): over a limit, ShopError and
    nothing reserved. The sharer defaults to the shop's owner. The order is
    flagged a self-purchase when the buyer is the sharer: signed in as them, or
    giving their email or phone.

    Attribution options (issue #22, off until the policy turns them on; `_attribute`): a member's `coupon_code`
    attributes the sale to them and takes the policy's discount off each line, funded from the line's pool (a code
    that is unknown, switched off or the buyer's own is refused, ShopError on the "coupon_code" field, nothing
    changed); a buyer bound to a member (锁客) is attributed to them unless a link of another member takes the buyer
    over (binding mode "latest_link").
    """
    if not shop.is_open or shop.is_closed():
        raise ShopError(_("This shop is closed and not taking orders."), code="shop_closed")
    if not items:
        raise ShopError(_("Your cart is empty."), code="empty")
    if not (buyer.phone or buyer.email) or not buyer.name or not buyer.address:
        raise ShopError(_("Give a name, an address, and a phone number or an email address."), code="buyer")
    # One form for every caller (the checkout form already gives it): the look-up and self-purchase compare E.164.
    buyer = replace(buyer, phone=phone_e164(buyer.phone) or buyer.phone.strip())
    limit = settings.ORDER_MAX_QUANTITY_PER_LINE
    if any(not 1 <= quantity <= limit for quantity in items.values()):
        raise ShopError(_("Quantities must be between 1 and %(max)d.") % {"max": limit}, code="quantity")
    listed = set(ShopListing.objects.filter(shop=shop, product_id__in=items).values_list("product_id", flat=True))
    products = Product.objects.in_bulk(list(items))
    for product_id in items:
        product = products.get(product_id)
        if product is None or product_id not in listed or not product.is_active:
            title = product.title if product else _("a product")
            raise ShopError(_("%(title)s is no longer for sale here.") % {"title": title}, code="unavailable")
    _limit_unpaid_units(units=sum(items.values()), buyer=buyer, client_key=client_key)

    for product_id in sorted(items):
        taken = Product.objects.filter(pk=product_id, is_active=True, stock__gte=items[product_id]).update(
            stock=F("stock") - items[product_id]
        )
        if not taken:
            raise SoldOut(products[product_id])

    options = attribution_options()
    coupon = _coupon_resolve(coupon_code, options=options, buyer=buyer, buyer_user=buyer_user)
    sharer, share_link, attributed_by = _attribute(
        shop=shop, sharer=sharer, share_link=share_link, coupon=coupon, options=options, buyer=buyer,
        buyer_user=buyer_user,
    )  # fmt: skip
    order = Order(
        shop=shop,
        sharer=sharer,
        share_link=share_link,
        attribution=attributed_by,
        coupon_code=coupon,
        buyer_user=buyer_user if getattr(buyer_user, "is_authenticated", False) else None,
        is_self_purchase=_is_self_purchase(sharer, buyer, buyer_user),
        buyer_name=buyer.name,
        buyer_phone=buyer.phone,
        buyer_email=buyer.email,
        shipping_address=buyer.address,
        client_key=client_key,
        network_key=network_key,
        device_key=device_key,
        currency=settings.CURRENCY,
        total=ZERO,
    )
    lines = []
    for product_id in sorted(items):
        product, quantity = products[product_id], items[product_id]
        list_amount = product.price * quantity
        discount = ZERO
        if coupon is not None:
            discount = coupon_line_discount(list_amount, product.commission_rate, options.coupon_discount_rate)
        lines.append(
            OrderLine(
                product=product,
                title=product.title,
                unit_price=product.price,
                quantity=quantity,
                net_amount=list_amount - discount,
                discount=discount,
                commission_rate=product.commission_rate,
            )
        )
    order.total = sum((line.net_amount for line in lines), ZERO)
    while True:  # order numbers are random; retry the rare collision
        order.number = new_order_number()
        try:
            with transaction.atomic():
                order.save()
            break
        except IntegrityError:
            if Order.objects.filter(number=order.number).exists():
                continue
            raise
    for line in lines:
        line.order = order
    OrderLine.objects.bulk_create(lines)
    note = ""
    if coupon is not None:
        note = _("Coupon code %(code)s: %(discount)s off.") % {
            "code": coupon.code,
            "discount": sum((line.discount for line in lines), ZERO),
        }
    _event(order, OrderEvent.Kind.PLACED, actor_label="buyer", to_status=order.status, amount=order.total, note=note)
    return order


@dataclass(frozen=True)
class CouponQuote:
    """What a coupon code takes off a cart, before the order is placed (the checkout's "Apply")."""

    coupon: CouponCode
    discounts: dict[int, Decimal]  # product id -> the line's discount
    discount_total: Decimal
    total: Decimal


def coupon_quote(*, typed: str, lines, buyer: BuyerDetails, buyer_user=None) -> CouponQuote | None:
    """The discount `typed` would give on `lines` (the cart's CartLines), by the rules `order_place` applies; None
    for an empty code; ShopError on the "coupon_code" field for a code that cannot be used. Reads only."""
    options = attribution_options()
    buyer = replace(buyer, phone=phone_e164(buyer.phone) or buyer.phone.strip())  # as order_place compares it
    coupon = _coupon_resolve(typed, options=options, buyer=buyer, buyer_user=buyer_user)
    if coupon is None:
        return None
    discounts = {
        line.product.pk: coupon_line_discount(
            line.product.price * line.quantity, line.product.commission_rate, options.coupon_discount_rate
        )
        for line in lines
    }
    discount_total = sum(discounts.values(), ZERO)
    total = sum((line.product.price * line.quantity for line in lines), ZERO) - discount_total
    return CouponQuote(coupon=coupon, discounts=discounts, discount_total=discount_total, total=total)


def _coupon_resolve(typed: str, *, options, buyer: BuyerDetails, buyer_user) -> CouponCode | None:
    """The coupon code the buyer typed, if it may be used; ShopError on the "coupon_code" field if not."""
    code = coupon_code_normalise(typed)
    if not code:
        return None

    def refuse(message: str, error_code: str):
        return ShopError({"coupon_code": [ShopError(message, code=error_code)]})

    if not options.coupons_enabled:
        raise refuse(_("Coupon codes cannot be used at the moment. Leave the field empty."), "coupons_off")
    coupon = coupon_code_lookup(code)
    if coupon is None:
        raise refuse(
            _("There is no coupon code “%(code)s”. Check it, or leave the field empty.") % {"code": code}, "unknown"
        )
    if not coupon.is_active or coupon.owner.status != Member.Status.ACTIVE:
        raise refuse(_("The coupon code “%(code)s” can no longer be used.") % {"code": code}, "disabled")
    if not options.own_code_allowed and _is_self_purchase(coupon.owner, buyer, buyer_user):
        raise refuse(_("This is your own coupon code: it cannot be used on your own orders."), "own_code")
    return coupon


def _attribute(*, shop, sharer, share_link, coupon, options, buyer: BuyerDetails, buyer_user):
    """(sharer, share link, Order.Attribution) of a new order. A typed coupon code wins (the buyer's own act at
    checkout); then the buyer's binding, unless a link of another member takes them over in "latest_link" mode;
    then the link; then the shop's owner."""
    if coupon is not None:
        return coupon.owner, None, Order.Attribution.COUPON
    binding = None
    if options.is_binding_on:
        user_id = buyer_user.pk if getattr(buyer_user, "is_authenticated", False) else None
        binding = buyer_binding_current(buyer_keys(user_id=user_id, phone=buyer.phone), now=timezone.now())
    if binding is not None and (
        sharer is None or (options.binding_mode == AttributionOptions.BindingMode.KEEP and sharer != binding.member)
    ):
        return binding.member, None, Order.Attribution.BINDING
    if sharer is not None:
        return sharer, share_link, Order.Attribution.LINK
    return shop.owner, None, Order.Attribution.SHOP


def _is_self_purchase(sharer, buyer: BuyerDetails, buyer_user) -> bool:
    sharer_user = sharer.user
    if getattr(buyer_user, "is_authenticated", False) and buyer_user.pk == sharer_user.pk:
        return True
    same_email = bool(buyer.email) and buyer.email.strip().lower() == (sharer_user.email or "").lower()
    same_phone = bool(buyer.phone) and bool(sharer_user.phone) and buyer.phone.strip() == sharer_user.phone
    return same_email or same_phone


def _order_transition(
    order: Order,
    to_status: str,
    *,
    actor=None,
    actor_label: str = "",
    note: str = "",
    amount=None,
    detail: dict | None = None,
) -> Order:
    """Move a locked order to `to_status` if ORDER_TRANSITIONS allows it; record the event."""
    _orders_transition(
        [order],
        to_status,
        actor=actor,
        actor_label=actor_label,
        note=note,
        amounts={order.pk: amount},
        detail=detail,
    )
    return order


def _orders_transition(
    orders: list[Order],
    to_status: str,
    *,
    actor=None,
    actor_label: str = "",
    note: str = "",
    amounts=None,
    detail: dict | None = None,
) -> None:
    """Move locked orders to `to_status` (IllegalTransition, nothing changed, if ORDER_TRANSITIONS forbids it for
    any of them): one update per status they come from, their status events in one insert, and their
    announcement (`order_status_changed`) after the commit. `amounts` ({order id: amount}) and `detail` (the
    shipment's courier and waybill, …) go on the events."""
    for order in orders:
        if to_status not in ORDER_TRANSITIONS[order.status]:
            raise IllegalTransition(
                _("An order that is “%(from)s” cannot become “%(to)s”.")
                % {"from": Status(order.status).label, "to": Status(to_status).label},
                code="illegal_transition",
            )
    amounts = amounts or {}
    stamp, now = STATUS_TIMESTAMPS.get(to_status), timezone.now()
    moves = [(order, order.status) for order in orders]
    for from_status in {from_status for _order, from_status in moves}:
        values = {"status": to_status}
        if stamp:
            values[stamp] = now
        if from_status == Status.PENDING_PAYMENT:
            values["client_key"] = ""  # only unpaid orders are limited per address: the key is not kept longer
        Order.objects.filter(pk__in=[order.pk for order, was in moves if was == from_status]).update(**values)
    for order, _from_status in moves:
        order.status = to_status
        if stamp:
            setattr(order, stamp, now)
        if _from_status == Status.PENDING_PAYMENT:
            order.client_key = ""
    OrderEvent.objects.bulk_create(
        [
            OrderEvent(
                order=order,
                kind=OrderEvent.Kind.STATUS,
                actor=actor,
                actor_label=actor_label,
                from_status=from_status,
                to_status=to_status,
                amount=amounts.get(order.pk),
                note=note,
                detail=detail or {},
            )
            for order, from_status in moves
        ]
    )
    changes = [(order.pk, was, to_status) for order, was in moves]
    transaction.on_commit(partial(order_status_changed.send, sender=Order, changes=changes))


def _return_stock(quantities: dict[int, int]) -> None:
    for product_id in sorted(quantities):
        if quantities[product_id]:
            Product.objects.filter(pk=product_id).update(stock=F("stock") + quantities[product_id])


@transaction.atomic
def order_cancel(*, order: Order, actor=None, actor_label: str = "", reason: str = "") -> Order:
    """Cancel an unpaid order and return its stock. IllegalTransition once it is paid."""
    order = order_lock(order.pk)
    _order_transition(order, Status.CANCELLED, actor=actor, actor_label=actor_label, note=reason)
    _return_stock({line.product_id: line.quantity for line in order.lines.all()})
    return order


def shipment_clean(*, courier: str | None, waybill: str | None) -> tuple[str, str]:
    """A courier code and waybill number as stored ("sf", "SF1234567890"), or ("", "") for none: both or neither.

    ShopError (code "courier" or "waybill", a message fit for the user) for an unknown courier, a courier without
    a number or a number without a courier, or a number of the wrong shape (shops.couriers)."""
    courier, waybill = (courier or "").strip().lower(), waybill_normalise(waybill)
    if not courier and not waybill:
        return "", ""
    if courier not in COURIERS:
        if not courier:
            raise ShopError(_("Choose the courier that carries this waybill number."), code="courier")
        raise ShopError(_("“%(courier)s” is not a courier we know.") % {"courier": courier[:40]}, code="courier")
    if not waybill:
        raise ShopError(_("Enter the waybill number the courier gave."), code="waybill")
    if not waybill_is_valid(waybill):
        raise ShopError(
            _("A waybill number is 6 to %(max)d letters and digits (a hyphen may join parcels), e.g. SF1234567890123.")
            % {"max": WAYBILL_MAX_LENGTH},
            code="waybill",
        )
    return courier, waybill


@transaction.atomic
def order_mark_shipped(
    *, order: Order, actor=None, note: str = "", courier: str = "", waybill: str = "", actor_label: str = "staff"
) -> Order:
    """Mark a paid order shipped, with the courier and waybill number when given (both or neither, see
    `shipment_clean`), through `_order_transition` (the status event carries the shipment in its detail).

    Locks the order. Idempotent: the same courier and number again, on an order already shipped with them, changes
    nothing and writes no event (a retried API call). Different ones on an order still on its way correct the
    shipment: one OrderEvent of kind "shipment" records them and what they replaced; the status stays. Refused
    (ShopError, nothing changed): a bad courier or number; a correction of an order no longer on its way (code
    "shipment_closed"); and, as before, shipping an order that is not paid (IllegalTransition)."""
    courier, waybill = shipment_clean(courier=courier, waybill=waybill)
    order = order_lock(order.pk)
    shipment = {"courier": courier, "waybill": waybill} if courier else {}
    if order.status == Status.PAID:
        if shipment:
            order.courier, order.waybill_number = courier, waybill
            order.save(update_fields=["courier", "waybill_number"])
        return _order_transition(
            order, Status.SHIPPED, actor=actor, actor_label=actor_label, note=note, detail=shipment
        )
    if not shipment or order.shipped_at is None:
        return _order_transition(order, Status.SHIPPED, actor=actor, actor_label=actor_label, note=note)  # refused
    if (order.courier, order.waybill_number) == (courier, waybill):
        return order  # already recorded
    if order.status != Status.SHIPPED:
        raise ShopError(
            _("This order is “%(status)s”: its shipment can no longer be changed.")
            % {"status": order.get_status_display()},
            code="shipment_closed",
        )
    before = {"courier": order.courier, "waybill": order.waybill_number}
    order.courier, order.waybill_number = courier, waybill
    order.save(update_fields=["courier", "waybill_number"])
    _event(
        order,
        OrderEvent.Kind.SHIPMENT,
        actor=actor,
        actor_label=actor_label,
        note=note,
        detail={**shipment, "before": before},
    )
    return order


@transaction.atomic
def order_mark_completed(*, order: Order, actor=None, note: str = "") -> Order:
    return _order_transition(order_lock(order.pk), Status.COMPLETED, actor=actor, actor_label="staff", note=note)


def order_payments_close(*, order: Order) -> None:
    """Close the order's pending payments at providers that can be asked, so none of them can be paid any more
    (before the order is cancelled, or paid another way). One the buyer had paid, its notification late or lost, is
    applied instead (`payment_close`): the order may be paid afterwards, so callers read it again.

    ProviderError (logged) if a provider cannot be reached: the payments before it are closed, the rest stay
    pending, and nothing may be cancelled under a payment that may have succeeded."""
    for payment in Payment.objects.filter(order_id=order.pk, status=Payment.Status.PENDING).order_by("pk"):
        try:
            payment_close(payment=payment)
        except ProviderError as error:
            logger.warning("payment %s not closed at %s: %s", payment.reference, payment.provider, error)
            raise


def _payments_close_for_expiry(order_id: int) -> bool:
    """Before an unpaid order is cancelled: close its pending payments (`order_payments_close`). False while a
    provider cannot be reached: the order waits for the next run."""
    try:
        order_payments_close(order=Order(pk=order_id))
    except ProviderError:
        return False
    return True


class PaidMeanwhile(ShopError):
    """The buyer asked to cancel, and closing the payment found it paid: the order is paid, not cancelled."""


def order_cancel_by_buyer(*, order: Order) -> Order:
    """The buyer cancels an unpaid order: its payments are closed at the provider first (`order_payments_close`),
    so the buyer cannot pay after cancelling, then the order is cancelled and its stock returned.

    ShopError (nothing cancelled) if a provider cannot be reached; PaidMeanwhile if the buyer had paid after all
    (the notification late or lost: the order is now paid); IllegalTransition if it was no longer unpaid."""
    if order.status == Status.PENDING_PAYMENT:
        try:
            order_payments_close(order=order)
        except ProviderError as error:
            message = _(
                "We could not reach the payment provider to stop your payment, so the order is not cancelled yet. "
                "Please try again in a moment."
            )
            raise ShopError(message, code="provider_error") from error
        if Order.objects.filter(pk=order.pk, status=Status.PAID).exists():
            raise PaidMeanwhile(
                _("Your payment had already arrived, so the order is not cancelled: it is paid."), code="paid"
            )
    return order_cancel(order=order, actor_label="buyer", reason=_("Cancelled by the buyer."))


def orders_cancel_expired(*, now=None) -> int:
    """Cancel orders left unpaid longer than ORDER_PAYMENT_TIMEOUT_MINUTES; return how many."""
    cutoff = (now or timezone.now()) - timedelta(minutes=settings.ORDER_PAYMENT_TIMEOUT_MINUTES)
    cancelled = 0
    expired = Order.objects.filter(status=Status.PENDING_PAYMENT, created_at__lt=cutoff).values_list("pk", flat=True)
    for order_id in list(expired[:1000]):
        if not _payments_close_for_expiry(order_id):
            continue
        try:
            order_cancel(order=Order(pk=order_id), actor_label="system", reason=_("Not paid in time."))
            cancelled += 1
        except IllegalTransition:
            pass  # paid (or cancelled) since we looked: nothing to do
    return cancelled


# --- Payments -------------------------------------------------------------------


def _payment_open(*, order: Order, notify_url: str, return_url: str, provider, method: str) -> Payment:
    order = order_lock(order.pk)
    if order.status != Status.PENDING_PAYMENT:
        raise ShopError(_("This order is not awaiting payment."), code="not_payable")
    return Payment.objects.create(
        order=order,
        provider=provider.name,
        method=method,
        reference=f"pay_{secrets.token_hex(12)}",
        amount=order.total,
        notify_url=notify_url,
        return_url=return_url,
    )


@transaction.atomic
def payment_start(*, order: Order, notify_url: str, return_url: str, provider_name: str | None = None):
    """Open a payment for an unpaid order; return (payment, URL to send the buyer to)."""
    provider = get_provider(provider_name)
    # `start` pays with the provider's first method (the sandbox's hosted page, Alipay's page).
    payment = _payment_open(
        order=order, notify_url=notify_url, return_url=return_url, provider=provider, method=provider.methods[0]
    )
    return payment, _payment_provider_start(payment, provider, partial(provider.start, payment))


@transaction.atomic
def payment_start_method(
    *,
    order: Order,
    method: str,
    buyer: Buyer,
    notify_url: str,
    return_url: str,
    provider_name: str | None = None,
) -> tuple[Payment, PaymentAction]:
    """Open a payment for an unpaid order with one of the provider's methods (WeChat Pay: native, h5, jsapi;
    Alipay: page, wap); return it and what the buyer's browser does next (a redirect, a QR code, a WeChat call).

    The payment's reference is its out_trade_no at the provider. ShopError (nothing saved) if the order is not
    awaiting payment or the provider refuses or cannot be reached; the reason is logged, without secrets.
    """
    provider = get_provider(provider_name)
    payment = _payment_open(order=order, notify_url=notify_url, return_url=return_url, provider=provider, method=method)
    return payment, _payment_provider_start(payment, provider, partial(provider.start_method, payment, method, buyer))


def _payment_provider_start(payment: Payment, provider, start):
    """`start()` at the provider; its ProviderError becomes a ShopError fit for the buyer (the reason is logged)."""
    try:
        return start()
    except ProviderError as error:
        logger.warning("payment %s could not be opened at %s: %s", payment.reference, provider.name, error)
        raise ShopError(_("The payment could not be started. Please try again."), code="provider_error") from error


@dataclass(frozen=True)
class WebhookResult:
    duplicate: bool
    outcome: str
    reply: str = ""  # the body that acknowledges the webhook, as the provider expects it (Alipay: "success")


BATCHED_NOTICES = ("payment.succeeded", "payment.failed")
APPLY_FAILURES_MAX = 5  # an event that failed this often waits for staff (the admin lists it), not for every run
PAYMENT_NOTICES_FLAG = "shops:payment-notices-apply-asked"


def payment_webhook_receive(*, provider_name: str, body: bytes, headers) -> WebhookResult:
    """Verify one provider webhook and record it, exactly once per event id; apply it.

    Raises WebhookRejected (forged, stale, malformed, unknown provider or payment, a payment's amount that is not
    ours): nothing changes. A replay of an accepted event returns duplicate=True and changes nothing.

    Payment notices (paid, failed: the ones that come by the thousand at a peak) are recorded as waiting and
    applied in batches (`payment_notices_apply`): by a worker, asked for once per burst after the commit, or here
    at once when tasks run in-process (the embedded default, and then the outcome is the applied one). The record
    is committed before the provider hears "accepted", so a crash after it loses nothing: the beat applies what
    waits. The rest (refunds, closed, still pending: rare) are applied here, with the record, in one transaction.
    """
    try:
        provider = get_provider(provider_name)
    except KeyError as error:
        raise WebhookRejected(f"unknown provider {provider_name!r}") from error
    notice = provider.parse_webhook(body, headers)
    if notice.event_type not in BATCHED_NOTICES:
        _payment_check(provider.name, notice)
        return _webhook_apply_now(provider, notice)
    event_id = _notice_record(provider.name, notice)
    if event_id is None:  # not recorded: a replay, or a payment that is not ours (WebhookRejected)
        _payment_check(provider.name, notice)
        return WebhookResult(
            duplicate=True, outcome="already processed", reply=provider.webhook_reply("already processed")
        )
    if task_runs_in_process():
        outcome = _notice_apply_now(event_id)
    else:
        transaction.on_commit(
            partial(payment_notices_requested, unreachable=partial(_notice_apply_broker_down, event_id))
        )
        outcome = "received"
    return WebhookResult(duplicate=False, outcome=outcome, reply=provider.webhook_reply(outcome))


def _payment_check(provider_name: str, notice: WebhookNotice) -> None:
    """WebhookRejected unless the notice names a payment of ours (and, when it says paid, with its amount)."""
    amount = (
        Payment.objects.filter(provider=provider_name, reference=notice.payment_reference)
        .values_list("amount", flat=True)
        .first()
    )
    if amount is None:
        raise WebhookRejected(f"unknown payment {notice.payment_reference!r}")
    if notice.event_type == "payment.succeeded" and notice.amount != amount:
        raise WebhookRejected(f"amount {notice.amount} does not match payment {amount}")


def _notice_record(provider_name: str, notice: WebhookNotice) -> int | None:
    """Record a verified payment notice as waiting, if it names a payment of ours (with its amount when it says
    paid) and was not recorded before; return its id, or None (the caller asks `_payment_check` which).

    One statement, committed on its own (no BEGIN and COMMIT round trips) unless the caller holds a transaction: the
    hot path of a peak, thousands a second. The payment's check and the insert in one INSERT … SELECT … WHERE EXISTS
    … ON CONFLICT DO NOTHING (PostgreSQL and SQLite both have it) rather than a query, then an insert through the
    ORM: a third of the request's time at 1,000 notifications a second.
    """
    fields = {field.name: field for field in WebhookEvent._meta.concrete_fields}
    values = {
        "provider": provider_name,
        "event_id": notice.event_id,
        "event_type": notice.event_type,
        "payload": notice.payload,
        "notice": notice.record(),
        "outcome": "",
        "received_at": timezone.now(),
        "applied_at": None,
        "attempts": 0,
    }
    columns = [fields[name].column for name in values]
    params = [fields[name].get_db_prep_save(value, connection) for name, value in values.items()]
    amount_field = Payment._meta.get_field("amount")
    check_amount = notice.event_type == "payment.succeeded"
    amount = notice.amount
    if check_amount:
        # An amount no payment of ours can have (1E+999999, 1E-999999, 19.901: the database would refuse to compare
        # some of them) records nothing; "19.900" is compared as 19.90.
        places, digits = amount_field.decimal_places, amount_field.max_digits
        if not amount.is_finite() or amount.adjusted() >= digits - places:  # no arithmetic: 1E+999999999 overflows
            return None
        exact = amount.quantize(Decimal(1).scaleb(-places))
        if exact != amount:
            return None
        amount = exact
    quote = connection.ops.quote_name
    # Only quoted table and column names and placeholders are interpolated: every value is a parameter.
    sql = (
        f"INSERT INTO {quote(WebhookEvent._meta.db_table)} ({', '.join(quote(c) for c in columns)}) "  # noqa: S608
        f"SELECT {', '.join(['%s'] * len(columns))} WHERE EXISTS ("
        f"SELECT 1 FROM {quote(Payment._meta.db_table)} WHERE provider = %s AND reference = %s"
        f"{' AND amount = %s' if check_amount else ''}) "
        "ON CONFLICT (provider, event_id) DO NOTHING RETURNING id"
    )
    params += [provider_name, notice.payment_reference]
    if check_amount:
        params.append(amount_field.get_db_prep_save(amount, connection))
    if connection.vendor == "postgresql":
        # The values bound by the server (psycopg's own cursor) rather than quoted into the text by Django's
        # client-side cursor, which costs more than the rest of the statement's Python. Never prepared (PgBouncer in
        # transaction mode has no prepared statements). Django's cursor opens the connection (its health check
        # included) and turns driver errors into Django's.
        with connection.cursor(), connection.wrap_database_errors:
            row = psycopg.Cursor(connection.connection).execute(sql, params, prepare=False).fetchone()
    else:
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            row = cursor.fetchone()
    return row[0] if row else None


@transaction.atomic
def _webhook_apply_now(provider, notice: WebhookNotice) -> WebhookResult:
    try:
        with transaction.atomic():
            event = WebhookEvent.objects.create(
                provider=provider.name, event_id=notice.event_id, event_type=notice.event_type, payload=notice.payload
            )
    except IntegrityError:
        return WebhookResult(
            duplicate=True, outcome="already processed", reply=provider.webhook_reply("already processed")
        )
    payment = Payment.objects.select_related("order").get(provider=provider.name, reference=notice.payment_reference)
    outcome = _notice_apply(payment, notice, provider)
    event.outcome = outcome
    event.save(update_fields=["outcome"])
    return WebhookResult(duplicate=False, outcome=outcome, reply=provider.webhook_reply(outcome))


def _notice_apply(payment: Payment, notice: WebhookNotice, provider) -> str:
    """Apply one notice of `payment` (its order may be locked already): WebhookRejected if it must not apply."""
    if notice.event_type.startswith("refund."):
        return _apply_refund_notice(payment, notice, provider)
    if notice.event_type == "payment.closed":
        return _payment_close_locally(payment)
    if notice.event_type == "payment.pending":
        return "payment still pending"
    return _apply_payment_notice(payment, notice)


@transaction.atomic
def _notice_apply_now(event_id: int) -> str:
    """Apply one recorded notice here, now (tasks run in-process, or the broker cannot be reached): its outcome."""
    claimed = waiting_webhook_events_lock(WebhookEvent.objects.filter(pk=event_id))
    return _notices_apply(claimed)[event_id] if claimed else "applied by another run"


def _notice_apply_broker_down(event_id: int) -> None:
    """The broker cannot be reached: the request applies its own notice now (the order is paid while the broker is
    away); if that fails too, the notice waits for the beat, and the provider hears "accepted" all the same."""
    try:
        _notice_apply_now(event_id)
    except Exception:
        logger.exception("payment notice %s waits for the beat: the broker is down and applying it failed", event_id)


def payment_notices_requested(*, gather: bool = True, unreachable=None) -> bool:
    """Ask for a run of `payment_notices_apply` unless one is asked for and not started (one message a burst).

    `gather`: the run waits PAYMENT_NOTICES_GATHER_SECONDS before it claims, so the notices of the next moments
    join its batch (and ask for nothing: the flag stands until the claim) instead of each costing a run of their
    own; a run that found a full batch asks for the next without waiting. `unreachable`: what to do instead if the
    broker cannot be reached (the webhook applies its own notice at once, as if tasks ran in-process).
    """
    from shops.tasks import payment_notices_apply_task

    return task_request_once(
        flag=PAYMENT_NOTICES_FLAG,
        task=payment_notices_apply_task,
        args=(gather,),
        flag_seconds=settings.PAYMENT_NOTICES_FLAG_SECONDS,
        logger=logger,
        fallback="this notice is applied by its request, and the beat applies whatever else waits",
        unreachable=unreachable,
    )


def payment_notices_apply(*, limit: int | None = None, more=None) -> int:
    """Apply up to `limit` waiting payment notices, oldest first, in one transaction; return how many.

    Safe to run twice or concurrently: the waiting events are claimed with SKIP LOCKED, so two runs take
    different ones, and an event is applied once (its `applied_at` is set in the same transaction). `more` is
    called once the batch is claimed if it was full, so another worker starts on the next batch.
    """
    limit = limit or settings.PAYMENT_NOTICES_BATCH
    cache.delete(PAYMENT_NOTICES_FLAG)  # whatever commits from now on asks again
    with transaction.atomic():
        events = waiting_webhook_events_lock(WebhookEvent.objects.filter(attempts__lt=APPLY_FAILURES_MAX), limit=limit)
        if not events:
            return 0
        if more is not None and len(events) == limit:
            more()
        _notices_apply(events)
    return len(events)


def _notices_apply(events: list[WebhookEvent]) -> dict[int, str]:
    """Apply recorded payment notices (locked by the caller, in event order) in the caller's transaction; return
    {event id: outcome}.

    The common case, a first "paid" for a pending payment of an order awaiting payment, is applied for the whole
    batch at once: a few statements, however many orders. Anything else (a second notice of one payment, "failed",
    a payment or order in another state) is applied one by one, in a savepoint each, as it would have been alone.
    An event whose apply fails for another reason (the provider unreachable for a late payment's refund) is left
    waiting with its failure counted.
    """
    # The payload stays in its row (the claim does not read it): nothing applied depends on it.
    notices = {event.pk: WebhookNotice.from_record(event.event_id, event.notice, {}) for event in events}
    providers = {event.provider for event in events}
    references = {notice.payment_reference for notice in notices.values()}
    found = Payment.objects.filter(provider__in=providers, reference__in=references).values_list(
        "provider", "reference", "pk", "order_id"
    )
    payment_ids = {(provider, reference): (pk, order_id) for provider, reference, pk, order_id in found}
    # Locks in the documented order: the orders (id order), then their payments (id order).
    locked_orders = orders_lock(Order.objects.filter(pk__in={order_id for _pk, order_id in payment_ids.values()}))
    orders = {order.pk: order for order in locked_orders}
    locked_payments = payments_lock(Payment.objects.filter(pk__in={pk for pk, _order_id in payment_ids.values()}))
    payments = {payment.pk: payment for payment in locked_payments}
    outcomes: dict[int, str] = {}
    at_once: list[tuple[WebhookEvent, Payment]] = []
    one_by_one: list[tuple[WebhookEvent, Payment]] = []
    seen: set[int] = set()
    for event in events:
        notice = notices[event.pk]
        ids = payment_ids.get((event.provider, notice.payment_reference))
        if ids is None:
            outcomes[event.pk] = f"refused: unknown payment {notice.payment_reference!r:.60}"
            continue
        payment = payments[ids[0]]
        if (
            notice.event_type == "payment.succeeded"
            and payment.pk not in seen
            and payment.status == Payment.Status.PENDING
            and orders[payment.order_id].status == Status.PENDING_PAYMENT
            and notice.amount == payment.amount
        ):
            at_once.append((event, payment))
        else:
            one_by_one.append((event, payment))
        seen.add(payment.pk)
    if at_once:
        _payments_succeed([payment for _event, payment in at_once], orders)
        outcomes.update((event.pk, "order paid") for event, _payment in at_once)
    failed: set[int] = set()
    for event, payment in one_by_one:
        notice = notices[event.pk]
        try:
            with transaction.atomic():
                outcomes[event.pk] = _notice_apply(payment, notice, get_provider(payment.provider))
        except WebhookRejected as error:
            outcomes[event.pk] = f"refused: {error}"[:200]
        except Exception:
            logger.exception("payment notice %s:%s could not be applied", event.provider, event.event_id)
            failed.add(event.pk)
    grouped = _group(outcomes)
    logger.info("payment notices applied: %s", {outcome: len(pks) for outcome, pks in grouped.items()})
    for outcome, pks in grouped.items():
        if outcome.startswith("refused"):
            logger.error("payment notice refused when applied (%s): events %s", outcome, pks[:20])
        WebhookEvent.objects.filter(pk__in=pks).update(outcome=outcome, applied_at=timezone.now())
    if failed:
        WebhookEvent.objects.filter(pk__in=failed).update(attempts=F("attempts") + 1)
    return outcomes


def _group(outcomes: dict[int, str]) -> dict[str, list[int]]:
    grouped: dict[str, list[int]] = {}
    for pk, outcome in outcomes.items():
        grouped.setdefault(outcome, []).append(pk)
    return grouped


def _payments_succeed(payments: list[Payment], orders: dict[int, Order]) -> None:
    """First "paid" notices of pending payments whose orders (locked, one payment each) await payment: the payments
    succeed, the orders are paid, their events written and the splits queued, for all of them at once."""
    now = timezone.now()
    Payment.objects.filter(pk__in=[payment.pk for payment in payments]).update(
        status=Payment.Status.SUCCEEDED, completed_at=now
    )
    paid = []
    for payment in payments:
        payment.status, payment.completed_at = Payment.Status.SUCCEEDED, now
        paid.append(orders[payment.order_id])
    OrderEvent.objects.bulk_create(
        [
            OrderEvent(
                order_id=payment.order_id,
                kind=OrderEvent.Kind.PAYMENT,
                actor_label=payment.provider,
                amount=payment.amount,
                note=payment.reference,
            )
            for payment in payments
        ]
    )
    by_provider: dict[str, list[Payment]] = {}
    for payment in payments:
        by_provider.setdefault(payment.provider, []).append(payment)
    for provider_name, group in by_provider.items():
        _orders_transition(
            [orders[payment.order_id] for payment in group],
            Status.PAID,
            actor_label=provider_name,
            amounts={payment.order_id: payment.amount for payment in group},
        )
    # In this transaction: commissions queues the splits with the uplines as they are now, and asks after commit.
    order_paid.send(sender=Order, orders=[(order.pk, order.sharer_id) for order in paid])
    options = attribution_options()  # read once for the batch: binding is off unless the policy turned it on
    if options.is_binding_on:
        for order in paid:
            buyer_binding_record(order=order, options=options)


def _apply_payment_notice(payment: Payment, notice: WebhookNotice) -> str:
    order = order_lock(payment.order_id)
    payment = payment_lock(payment.pk)
    if notice.event_type == "payment.failed":
        if payment.status == Payment.Status.PENDING:
            payment.status = Payment.Status.FAILED
            payment.completed_at = timezone.now()
            payment.save(update_fields=["status", "completed_at"])
            _event(order, OrderEvent.Kind.PAYMENT, actor_label=payment.provider, note=_("Payment declined."))
        return "payment failed"

    if notice.amount != payment.amount:
        raise WebhookRejected(f"amount {notice.amount} does not match payment {payment.amount}")
    if payment.status == Payment.Status.SUCCEEDED:
        return "payment already succeeded"
    if payment.status == Payment.Status.REFUNDED:
        # Its money arrived late and went straight back: a second success notice (a new event id) changes
        # nothing. Refunding again would reuse the refund's idempotency key (an IntegrityError, a 500, and the
        # provider retrying the notice for ever).
        return "payment already refunded"
    payment.status = Payment.Status.SUCCEEDED
    payment.completed_at = timezone.now()
    payment.save(update_fields=["status", "completed_at"])
    _event(order, OrderEvent.Kind.PAYMENT, actor_label=payment.provider, amount=payment.amount, note=payment.reference)
    if order.status == Status.PENDING_PAYMENT:
        _order_transition(order, Status.PAID, actor_label=payment.provider, amount=payment.amount)
        # In this transaction: commissions queues the split with the upline as it is now, and sends it after commit.
        order_paid.send(sender=Order, orders=[(order.pk, order.sharer_id)])
        buyer_binding_record(order=order)
        return "order paid"
    # Paid after the order was cancelled (timeout) or paid twice: give the money straight back.
    result = get_provider(payment.provider).refund(payment, payment.amount, idempotency_key=f"late-{payment.pk}")
    payment.status = Payment.Status.REFUNDED
    payment.save(update_fields=["status"])
    refund = Refund.objects.create(
        order=order,
        payment=payment,
        amount=payment.amount,
        provider_refund_id=result.provider_refund_id,
        status=result.status,
        idempotency_key=f"late-{payment.pk}",
        reason="late payment",
    )
    if order.paid_at is not None:
        # A second payment of a paid (so split, or about to be) order. No goods come back and no commission is
        # reversed, but the refund is marked applied like any other, at once rather than by the sweep a minute
        # later, so the ledger checker never sees a refund of a split order whose reversals were not written.
        transaction.on_commit(partial(refund_recorded.send, sender=Refund, refund_id=refund.pk))
    _event(
        order,
        OrderEvent.Kind.REFUND,
        actor_label="system",
        amount=payment.amount,
        note=_("Payment arrived for an order that is %(status)s; refunded in full (%(ref)s).")
        % {"status": order.get_status_display(), "ref": result.provider_refund_id},
    )
    return "late payment refunded"


def _apply_refund_notice(payment: Payment, notice: WebhookNotice, provider) -> str:
    """A provider's word on a refund it was sent: it succeeded, or the money could not go back (finance then
    handles it by hand; the order's refund stands). Matched by the merchant refund number; the same outcome twice,
    or one after the other, changes nothing more."""
    order = order_lock(payment.order_id)
    refunds = {provider.refund_reference(refund.idempotency_key): refund for refund in payment.refunds.all()}
    refund = refunds.get(notice.refund_reference)
    if refund is None:
        raise WebhookRejected(f"unknown refund {notice.refund_reference!r:.80}")
    if notice.amount_is_refunded_total:
        is_consistent = refund.amount <= notice.amount <= payment.amount
    else:
        is_consistent = notice.amount == refund.amount
    if not is_consistent:
        raise WebhookRejected(f"refund amount {notice.amount} does not match refund {refund.amount}")
    if refund.status != Refund.Status.PENDING:
        return f"refund already {refund.status}"
    if notice.event_type == "refund.succeeded":
        refund.status = Refund.Status.SUCCEEDED
        refund.save(update_fields=["status"])
        return "refund succeeded"
    refund.status = Refund.Status.FAILED
    refund.save(update_fields=["status"])
    _event(
        order,
        OrderEvent.Kind.REFUND,
        actor_label=payment.provider,
        amount=refund.amount,
        note=_("The payment provider could not return %(amount)s to the buyer (refund %(ref)s): handle it by hand.")
        % {"amount": refund.amount, "ref": refund.provider_refund_id or refund.pk},
    )
    return "refund failed"


def _payment_close_locally(payment: Payment) -> str:
    """Mark an unpaid payment closed (the provider closed it, or we did there first)."""
    order = order_lock(payment.order_id)
    payment = payment_lock(payment.pk)
    if payment.status != Payment.Status.PENDING:
        return f"payment already {payment.status}"
    payment.status = Payment.Status.CLOSED
    payment.completed_at = timezone.now()
    payment.save(update_fields=["status", "completed_at"])
    _event(order, OrderEvent.Kind.PAYMENT, actor_label=payment.provider, note=_("Payment closed unpaid."))
    return "payment closed"


def _askable_provider(payment: Payment):
    """The payment's provider if it can be asked about payments (None for the sandbox, or one no longer configured)."""
    try:
        provider = get_provider(payment.provider)
    except KeyError:
        return None
    return provider if provider.can_query else None


def payment_sync(*, payment: Payment) -> str:
    """Ask the provider how a pending payment stands and apply the answer, as its notification would have: a
    notification that never came (or came late) is repaired here. Idempotent: a payment already applied is left
    as it is, and the notification arriving afterwards changes nothing either.

    The question is asked outside any transaction (no row lock is held over the network). ProviderError if the
    provider cannot say, or says something that does not match the payment (its amount); nothing changes then.
    """
    provider = _askable_provider(payment)
    if provider is None:
        return "provider cannot be asked"
    state = provider.query(payment)
    with transaction.atomic():
        if state.status == "succeeded":
            notice = WebhookNotice(
                event_id="",
                event_type="payment.succeeded",
                payment_reference=payment.reference,
                amount=state.amount,
            )
            try:
                return _apply_payment_notice(payment, notice)
            except WebhookRejected as error:
                raise ProviderError(f"{provider.name} query: {error}") from None
        if state.status == "closed":
            return _payment_close_locally(payment)
    return "payment still pending"


def refund_sync(*, refund: Refund) -> str:
    """Ask the provider how a pending refund stands and apply the answer as its refund notification would have
    (`_apply_refund_notice`): a notification that never came is repaired. A refund no longer pending is left as it
    is. Asked outside any transaction; ProviderError if the provider cannot say, or says something that does not
    match the refund (its amount); nothing changes then."""
    if refund.status != Refund.Status.PENDING:
        return f"refund already {refund.status}"
    payment = refund.payment
    provider = _askable_provider(payment)
    if provider is None:
        return "provider cannot be asked"
    state = provider.refund_query(payment, provider.refund_reference(refund.idempotency_key))
    if state.status == "pending":
        return "refund still pending"
    notice = WebhookNotice(
        event_id="",
        event_type=f"refund.{state.status}",
        payment_reference=payment.reference,
        amount=state.amount if state.amount is not None else refund.amount,
        refund_reference=provider.refund_reference(refund.idempotency_key),
    )
    with transaction.atomic():
        try:
            return _apply_refund_notice(payment, notice, provider)
        except WebhookRejected as error:
            raise ProviderError(f"{provider.name} refund query: {error}") from None


def payments_sync_due(*, payments: list[Payment]) -> bool:
    """Ask the providers about the pending ones of `payments` (a buyer's page is waiting for them), each at most once
    per PAYMENTS_QUERY_INTERVAL seconds whoever asks: a notification that is late or never comes is repaired while
    the buyer waits. Return whether any was asked (the order may have changed). A provider that cannot answer is
    logged and asked again next time."""
    asked = False
    for payment in payments:
        if payment.status != Payment.Status.PENDING or _askable_provider(payment) is None:
            continue
        if not cache.add(f"payment-sync:{payment.pk}", 1, timeout=settings.PAYMENTS_QUERY_INTERVAL):
            continue
        asked = True
        try:
            outcome = payment_sync(payment=payment)
        except ProviderError as error:
            logger.warning("payment %s could not be asked about at %s: %s", payment.reference, payment.provider, error)
            continue
        if outcome != "payment still pending":
            logger.info("payment %s repaired by a query: %s", payment.reference, outcome)
    return asked


def payments_sync_stale(*, now=None) -> int:
    """Ask the providers about payments still pending PAYMENTS_SYNC_STALE_AFTER seconds after they were opened,
    of orders still awaiting payment, each at most once per PAYMENTS_SYNC_STALE_INTERVAL: the notification that
    never came is repaired even when no buyer is looking. Return how many were asked."""
    now = now or timezone.now()
    stale = (
        Payment.objects.filter(
            status=Payment.Status.PENDING,
            order__status=Status.PENDING_PAYMENT,
            created_at__lte=now - timedelta(seconds=settings.PAYMENTS_SYNC_STALE_AFTER),
        )
        .exclude(provider="sandbox")
        .order_by("created_at")
    )
    asked = 0
    for payment in stale[: settings.PAYMENTS_SYNC_STALE_BATCH * 4]:
        if asked >= settings.PAYMENTS_SYNC_STALE_BATCH:
            break
        if not cache.add(f"payment-sync-stale:{payment.pk}", 1, timeout=settings.PAYMENTS_SYNC_STALE_INTERVAL):
            continue
        if payments_sync_due(payments=[payment]):
            asked += 1
    return asked


def payment_close(*, payment: Payment) -> str:
    """Close an unpaid payment at its provider, so the buyer can no longer pay it, then mark it closed. If the buyer
    paid meanwhile, the payment is applied instead (`payment_sync`). Providers that cannot be asked (the sandbox)
    keep their payments as they are: their hosted page checks the payment itself.

    ProviderError if the provider cannot be reached: nothing changes, try again later."""
    provider = _askable_provider(payment)
    if provider is None:
        return "provider cannot be asked"
    try:
        provider.close(payment)
    except PaymentAlreadyPaid:
        return payment_sync(payment=payment)
    with transaction.atomic():
        return _payment_close_locally(payment)


# --- Refunds --------------------------------------------------------------------


@transaction.atomic
def order_refund(
    *, order: Order, quantities: dict[int, int] | None = None, actor=None, reason: str = "", restock: bool | None = None
) -> Refund:
    """Refund some lines ({order line id: quantity}) or, with None, everything not yet refunded.

    Locks the order and its lines; refuses (ShopError, nothing changed) a quantity
    above what is left to refund, a line of another order, or an order that was
    never paid. Refunds through the provider with an idempotency key. Stock goes
    back when the goods never left (order not shipped) unless `restock` says
    otherwise. When nothing is left to refund the order becomes `refunded`.
    """
    order = order_lock(order.pk)
    if order.status not in REFUNDABLE:
        raise IllegalTransition(
            _("Only paid orders can be refunded; this one is “%(status)s”.") % {"status": order.get_status_display()},
            code="not_refundable",
        )
    lines = {line.pk: line for line in order_lines_lock(order)}
    if quantities is None:
        quantities = {pk: line.refundable_quantity for pk, line in lines.items() if line.refundable_quantity}
    quantities = {pk: qty for pk, qty in quantities.items() if qty}
    if not quantities:
        raise ShopError(_("Choose at least one item to refund."), code="nothing_to_refund")
    for line_id, quantity in quantities.items():
        line = lines.get(line_id)
        if line is None:
            raise ShopError(_("That item is not on this order."), code="unknown_line")
        if quantity < 0:
            raise ShopError(_("Quantities cannot be negative."), code="negative")
        if quantity > line.refundable_quantity:
            raise ShopError(
                _("Only %(left)d of “%(title)s” can still be refunded.")
                % {"left": line.refundable_quantity, "title": line.title},
                code="too_many",
            )
    payment = order.payments.filter(status=Payment.Status.SUCCEEDED).order_by("pk").first()
    if payment is None:
        raise ShopError(_("No successful payment to refund."), code="no_payment")

    # What the buyer paid for those units: the line's net amount (after any coupon discount) in proportion, from
    # the running total, so partial refunds never return more than was paid and a full one returns it exactly.
    amounts = {line_id: _refund_amount(lines[line_id], quantity) for line_id, quantity in quantities.items()}
    total = sum(amounts.values(), ZERO)
    # The key depends only on the order's refund state and the request, never on a row id: if the provider
    # refunds but this transaction then rolls back, the retry sends the same key and is not paid twice.
    wanted = ",".join(f"{line_id}x{quantities[line_id]}" for line_id in sorted(quantities))
    idempotency_key = f"refund-{order.pk}-{order.refunded_total}-{wanted}"
    refund = Refund.objects.create(
        order=order, payment=payment, amount=total, actor=actor, reason=reason, idempotency_key=idempotency_key
    )
    RefundLine.objects.bulk_create(
        RefundLine(refund=refund, order_line_id=line_id, quantity=quantity, amount=amounts[line_id])
        for line_id, quantity in quantities.items()
    )
    for line_id, quantity in quantities.items():
        OrderLine.objects.filter(pk=line_id).update(
            refunded_quantity=F("refunded_quantity") + quantity, refunded_amount=F("refunded_amount") + amounts[line_id]
        )
    order.refunded_total += total
    order.save(update_fields=["refunded_total"])
    if restock if restock is not None else order.status == Status.PAID:
        _return_stock({lines[line_id].product_id: qty for line_id, qty in quantities.items()})

    try:
        result = get_provider(payment.provider).refund(payment, total, idempotency_key=idempotency_key)
    except ProviderError as error:
        logger.warning("refund of order %s refused by %s: %s", order.number, payment.provider, error)
        raise ShopError(
            _("The payment provider refused the refund: %(reason)s") % {"reason": error}, code="provider_error"
        ) from error
    refund.provider_refund_id = result.provider_refund_id
    refund.status = result.status
    refund.save(update_fields=["provider_refund_id", "status"])
    _event(order, OrderEvent.Kind.REFUND, actor=actor, actor_label="staff" if actor else "", amount=total, note=reason)
    if order.refunded_total == order.total:
        _order_transition(
            order, Status.REFUNDED, actor=actor, actor_label="staff" if actor else "", note=reason, amount=total
        )
    transaction.on_commit(partial(refund_recorded.send, sender=Refund, refund_id=refund.pk))
    return refund


def _refund_amount(line: OrderLine, quantity: int):
    """The net amount of `quantity` more units of `line` refunded: without a discount, unit price × quantity."""
    refunded = line.refunded_quantity + quantity
    return quantize_money(line.net_amount * refunded / line.quantity) - line.refunded_amount


# --- Attribution options: buyer binding and coupon codes (issue #22) ----------------------------------------------


@transaction.atomic
def attribution_options_set(
    *,
    binding_days: int,
    binding_mode: str,
    coupons_enabled: bool,
    coupon_discount_rate,
    own_code_allowed: bool,
    policy_version: int | None,
) -> AttributionOptions:
    """Put the options of a newly published compliance policy in force (commissions.services.policy_publish calls it
    in the publishing transaction; the policy version is the audit record, who and why)."""
    options, _created = AttributionOptions.objects.update_or_create(
        pk=1,
        defaults={
            "binding_days": binding_days,
            "binding_mode": binding_mode,
            "coupons_enabled": coupons_enabled,
            "coupon_discount_rate": coupon_discount_rate,
            "own_code_allowed": own_code_allowed,
            "policy_version": policy_version,
            "updated_at": timezone.now(),
        },
    )
    return options


def buyer_binding_record(*, order: Order, options: AttributionOptions | None = None) -> list[BuyerBinding]:
    """Bind the buyer of `order`, just paid, to its sharer for the policy's binding days, if binding is on and the
    sale came through the member's link or code (not a self-purchase). Called under the order's lock in the
    payment's transaction.

    In "keep" mode a binding in force stays as it is; in "latest_link" mode another member's binding is ended
    (taken over) and this one starts. A binding to the same member is not extended. One open binding per buyer is
    a database constraint: a concurrent payment of the same buyer that binds first wins, this one changes nothing.
    """
    options = options or attribution_options()
    if not options.is_binding_on or order.is_self_purchase:
        return []
    if order.attribution not in (Order.Attribution.LINK, Order.Attribution.COUPON):
        return []
    now = timezone.now()
    keys = buyer_keys(user_id=order.buyer_user_id, phone=order.buyer_phone)
    made = []
    for key in keys:
        open_binding = BuyerBinding.objects.filter(buyer_key=key, ended_at__isnull=True).first()
        if open_binding is not None:
            if open_binding.expires_at <= now:
                reason = BuyerBinding.EndReason.EXPIRED
            elif open_binding.member_id == order.sharer_id:
                continue
            elif options.binding_mode == AttributionOptions.BindingMode.LATEST_LINK:
                reason = BuyerBinding.EndReason.TAKEN_OVER
            else:
                continue
            BuyerBinding.objects.filter(pk=open_binding.pk, ended_at__isnull=True).update(
                ended_at=now, end_reason=reason
            )
        try:
            with transaction.atomic():
                made.append(
                    BuyerBinding.objects.create(
                        buyer_key=key,
                        member_id=order.sharer_id,
                        order=order,
                        started_at=now,
                        expires_at=now + timedelta(days=options.binding_days),
                        policy_version=options.policy_version,
                    )
                )
        except IntegrityError:
            logger.info("buyer %s was bound by a concurrent payment; order %s binds nobody", key, order.number)
    if made:
        _event(
            order,
            OrderEvent.Kind.NOTE,
            actor_label="system",
            note=_("The buyer is bound to the sharer for %(days)d days.") % {"days": options.binding_days},
        )
    return made


def coupon_code_for_member(*, member: Member) -> CouponCode:
    """The member's personal coupon code, made the first time it is asked for (idempotent; a retried code
    collision picks another)."""
    existing = member_coupon_code(member)
    if existing is not None:
        return existing
    for _attempt in range(5):
        try:
            with transaction.atomic():
                return CouponCode.objects.create(owner=member, code=new_coupon_code())
        except IntegrityError:
            existing = member_coupon_code(member)
            if existing is not None:
                return existing
    raise ShopError(_("Could not make a coupon code; try again."), code="coupon_code")


@transaction.atomic
def coupon_code_set_active(*, code: CouponCode, is_active: bool) -> CouponCode:
    """Switch a member's coupon code off (buyers typing it are told it can no longer be used) or back on. Orders
    placed with it keep their discount and their sharer."""
    CouponCode.objects.filter(pk=code.pk).update(is_active=is_active)
    code.is_active = is_active
    return code


# --- The owner's listings (dashboard) ---------------------------------------------


@transaction.atomic
def shop_listing_reorder(*, shop: Shop, listing_id: int, offset: int) -> ShopListing:
    """Move a listing `offset` places (-1 up, +1 down) in the order buyers see it, within its group.

    Buyers see featured listings first (`-is_featured, position`), so a listing moves only among listings with
    the same `is_featured`: a large offset stops at the group's edge. Every position is then renumbered 0..n-1 in
    the buyers' order, so the owner's order and the buyers' agree. Locks the shop row (listing changes of one
    shop are serialised). Raises ShopError(code="not_listed"), changing nothing, when the listing is not in
    `shop`: callers pass the member's own shop, so another member's listing id is refused.
    """
    shop_lock(shop.pk)
    listings = list(ShopListing.objects.filter(shop=shop).order_by("-is_featured", "position", "pk"))
    index = next((i for i, listing in enumerate(listings) if listing.pk == listing_id), None)
    if index is None:
        raise ShopError(_("That product is not in your shop."), code="not_listed")
    moving = listings[index]
    group = [i for i, listing in enumerate(listings) if listing.is_featured == moving.is_featured]
    target = min(max(index + offset, group[0]), group[-1])  # a group is contiguous in this order
    listings.insert(target, listings.pop(index))
    changed = []
    for position, listing in enumerate(listings):
        if listing.position != position:
            listing.position = position
            changed.append(listing)
    if changed:
        ShopListing.objects.bulk_update(changed, ["position"])
    return moving


# --- Share links and clicks (SPEC §5) ---------------------------------------------


@transaction.atomic
def share_link_create(*, owner: Member, product=None, external_product=None, campaign: str = "") -> ShareLink:
    """A new link to the owner's own shop, or to a product listed in it (ours, or an external network's whose
    listing is in the shop). ShopError otherwise."""
    shop = Shop.objects.filter(owner=owner).first()
    if shop is None:
        raise ShopError(_("Open your shop first; links point to your own shop."), code="no_shop")
    if product is not None and not ShopListing.objects.filter(shop=shop, product=product).exists():
        raise ShopError(_("You can only link to products listed in your own shop."), code="not_listed")
    if (
        external_product is not None
        and not ExternalListing.objects.filter(shop=shop, product=external_product).exists()
    ):
        raise ShopError(_("You can only link to products listed in your own shop."), code="not_listed")
    campaign = (campaign or "").strip()
    if len(campaign) > 60:
        raise ShopError(_("Keep the campaign label under 60 characters."), code="campaign")
    while True:
        code = new_share_code()
        if not ShareLink.objects.filter(code=code).exists():
            break
    return ShareLink.objects.create(
        owner=owner, shop=shop, product=product, external_product=external_product, code=code, campaign=campaign
    )


def share_link_default(*, owner: Member, product=None) -> ShareLink:
    """The owner's everyday link to their shop (`product` None) or to one product in it, for the share page and
    posters: their oldest active link to it without a campaign label, else a new one (share_link_create, with its
    checks; ShopError when the product is not in the owner's shop). Two first visits at once may both create one;
    both links work and count, and the older is used from then on."""
    existing = (
        ShareLink.objects.filter(
            owner=owner, shop__owner=owner, product=product, external_product=None, campaign="", is_active=True
        )
        .select_related("shop", "product")
        .order_by("created_at", "pk")
        .first()
    )
    return existing or share_link_create(owner=owner, product=product)


@transaction.atomic
def share_link_deactivate(*, link: ShareLink) -> ShareLink:
    """Stop the link; /l/<code> answers 404 from the commit on.

    Its cached target is replaced by a tombstone (not deleted) once the change is committed, and a redirect that
    read the link from the database just before never overwrites a tombstone, so no stale target comes back.
    """
    ShareLink.objects.filter(pk=link.pk).update(is_active=False)
    link.is_active = False
    code = link.code
    transaction.on_commit(
        lambda: click_counter().target_store(code, MISSING, LINK_CACHE_SECONDS, overwrite=True), robust=True
    )
    return link


@dataclass(frozen=True)
class Followed:
    """What /l/<code> found: the target, and whether the click was counted (not a bot)."""

    target: LinkTarget
    counted: bool


def share_link_follow(*, code: str, ip: str, user_agent: str) -> Followed | Literal["limited"] | None:
    """Resolve /l/<code> and count the click, without a database write; None for an unknown or inactive link,
    LIMITED when this client is over settings.RATE_LIMIT_REDIRECT (then nothing is read or counted).

    Usually one Redis call (the rate limit, the cached target and the count, in one script). A miss reads the
    database once and caches the answer (a 404 too, briefly). Bots and link-preview fetchers are redirected but not
    counted; they are rate limited like everyone.
    """
    counter = click_counter()
    day = timezone.localdate()
    visitor = None if is_bot(user_agent) else visitor_hash(code=code, day=day, ip=ip, user_agent=user_agent)
    limit = parse_rate(settings.RATE_LIMIT_REDIRECT)
    rate = rate_window(ip=ip, day=day, limit=limit[0], seconds=limit[1]) if limit else None
    value = counter.follow(code=code, day=day, visitor=visitor, rate=rate)
    if value == LIMITED:
        return LIMITED
    if value is None:
        target = share_link_lookup(code)
        if target is None:
            counter.target_store(code, MISSING, MISSING_CACHE_SECONDS)
            return None
        counter.target_store(code, encode_target(target.link_id, target.owner_id, target.url), LINK_CACHE_SECONDS)
        if visitor is not None:
            counter.record(link_id=target.link_id, day=day, visitor=visitor)
        return Followed(target, visitor is not None)
    if value == MISSING:
        return None
    return Followed(LinkTarget(*decode_target(value)), visitor is not None)


def clicks_flush() -> int:
    """Move counted clicks into ShareLinkDailyStat; return how many clicks were applied.

    Safe to run twice or concurrently: each batch is applied in one transaction that
    first records its batch id (unique), and is dropped from the counter only after.
    """
    counter = click_counter()
    applied = 0
    for batch in counter.batches():
        total = sum(clicks for clicks, _uniques in batch.counts.values())
        try:
            with transaction.atomic():
                ClickFlush.objects.create(batch_id=batch.batch_id, clicks=total)
                _stats_add(batch.counts)
        except IntegrityError:
            pass  # applied already (by an earlier run that stopped before ack, or by a concurrent one)
        else:
            applied += total
        counter.ack(batch.batch_id)
    return applied


def _stats_add(counts) -> None:
    existing = set(ShareLink.objects.filter(pk__in={link_id for link_id, _day in counts}).values_list("pk", flat=True))
    rows = [
        (link_id, day, clicks, uniques) for (link_id, day), (clicks, uniques) in counts.items() if link_id in existing
    ]
    table = connection.ops.quote_name(ShareLinkDailyStat._meta.db_table)
    with connection.cursor() as cursor:
        cursor.executemany(
            f"INSERT INTO {table} (link_id, day, clicks, unique_visitors) VALUES (%s, %s, %s, %s) "  # noqa: S608 - quoted table name only
            f"ON CONFLICT (link_id, day) DO UPDATE SET clicks = {table}.clicks + EXCLUDED.clicks, "
            f"unique_visitors = {table}.unique_visitors + EXCLUDED.unique_visitors",
            rows,
        )


# --- External products in shops (issue #12) ---------------------------------------------


def external_listing_add(*, shop: Shop, product: ExternalProduct) -> ExternalListing:
    """Put an external product in the shop: convert it once into the network's tracking link carrying the owner's
    tracking id (`networks.services.external_tracking_link`: NetworkError if the product is no longer offered or
    the network has no link service or does not answer), and give it a /l/ link for the buy button. Adding it
    again returns the listing there is."""
    existing = ExternalListing.objects.filter(shop=shop, product=product).first()
    if existing:
        return existing
    url = external_tracking_link(product=product, member=shop.owner)
    with transaction.atomic():
        position = ExternalListing.objects.filter(shop=shop).count()
        listing, created = ExternalListing.objects.get_or_create(
            shop=shop, product=product, defaults={"position": position, "tracking_url": url}
        )
        if created:
            listing.share_link = share_link_create(
                owner=shop.owner, external_product=product, campaign=BUY_BUTTON_CAMPAIGN
            )
            listing.save(update_fields=["share_link"])
    return listing


@transaction.atomic
def external_listing_remove(*, shop: Shop, listing_id: int) -> None:
    """Take an external product out of the shop; its buy link stops redirecting (404) from the commit on.
    ShopError(code="unknown_listing"), changing nothing, when the listing is not in `shop`."""
    listing = ExternalListing.objects.select_related("share_link").filter(shop=shop, pk=listing_id).first()
    if listing is None:
        raise ShopError(_("That product is not in your shop."), code="unknown_listing")
    link = listing.share_link
    listing.delete()
    if link is not None:
        share_link_deactivate(link=link)
