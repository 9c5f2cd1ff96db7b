import re
import secrets

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MinValueValidator, RegexValidator
from django.db import models
from django.db.models import F, Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from core.images import validate_product_image, validate_shop_logo
from core.money import CENT, RATE_ONE, RATE_ZERO, ZERO, MoneyField, RateField
from referrals.models import member_reference
from shops.couriers import COURIER_CHOICES, WAYBILL_MAX_LENGTH

# Slugs that would shadow a page or read as official.
RESERVED_SLUGS = frozenset(
    {
        "admin", "api", "static", "media", "join", "login", "logout", "dashboard", "cart", "checkout", "orders",
        "order", "pay", "payments", "sandbox", "s", "l", "shop", "shops", "new", "edit", "help", "support",
        "official", "platform", "staff", "root", "www", "about", "terms", "privacy", "i18n", "null", "none",
    }
)  # fmt: skip

SHOP_SLUG_MAX_LENGTH = 40
# The campaign label of the link made for an external product's buy button when it is added to a shop (not a link the
# owner chose to share).
BUY_BUTTON_CAMPAIGN = "buy button"
SHOP_SLUG_PATTERN = r"^[a-z0-9](?:[a-z0-9-]{1,38}[a-z0-9])$"
SHOP_SLUG_SHAPE = re.compile(SHOP_SLUG_PATTERN)
slug_validator = RegexValidator(
    SHOP_SLUG_PATTERN,
    _("Use 3 to 40 lower-case letters, digits and hyphens, starting and ending with a letter or digit."),
)


def validate_shop_slug(value: str) -> None:
    if value in RESERVED_SLUGS:
        raise ValidationError(_("“%(slug)s” is reserved; pick another address."), params={"slug": value})


class Category(models.Model):
    name = models.CharField(_("name"), max_length=80, unique=True)
    position = models.PositiveIntegerField(_("position"), default=0)

    class Meta:
        verbose_name = _("category")
        verbose_name_plural = _("categories")
        ordering = ("position", "name")

    def __str__(self) -> str:
        return self.name


class Product(models.Model):
    """A catalogue product. Staff manage these; members list them in their shops."""

    title = models.CharField(_("title"), max_length=200)
    description = models.TextField(_("description"), blank=True)
    image = models.ImageField(_("image"), upload_to="products/", blank=True, validators=[validate_product_image])
    category = models.ForeignKey(
        Category, on_delete=models.PROTECT, related_name="products", null=True, blank=True, verbose_name=_("category")
    )
    price = MoneyField(_("price"), validators=[MinValueValidator(CENT)])
    stock = models.PositiveIntegerField(_("stock"), default=0)
    is_active = models.BooleanField(_("active"), default=True)
    commission_rate = RateField(
        _("commission rate"),
        default=RATE_ZERO,
        help_text=_("Fraction of the net price the platform shares with members, 0 to 1 (0.1000 = 10 %)."),
    )
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    class Meta:
        verbose_name = _("product")
        verbose_name_plural = _("products")
        ordering = ("title", "pk")
        constraints = [
            models.CheckConstraint(condition=Q(stock__gte=0), name="shops_product_stock_not_negative"),
            models.CheckConstraint(condition=Q(price__gt=ZERO), name="shops_product_price_positive"),
            models.CheckConstraint(
                condition=Q(commission_rate__gte=RATE_ZERO) & Q(commission_rate__lte=RATE_ONE),
                name="shops_product_commission_rate_0_1",
            ),
        ]

    def __str__(self) -> str:
        return self.title

    @property
    def is_in_stock(self) -> bool:
        return self.stock > 0


class Shop(models.Model):
    """A member's micro-shop: one per member, at /s/<slug>/."""

    owner = models.OneToOneField(
        "referrals.Member", on_delete=models.PROTECT, related_name="shop", verbose_name=_("owner")
    )
    name = models.CharField(_("name"), max_length=80)
    slug = models.SlugField(
        _("address"), max_length=40, unique=True, validators=[slug_validator, validate_shop_slug],
        help_text=_("Your shop lives at /s/<address>/."),
    )  # fmt: skip
    description = models.TextField(_("description"), blank=True, max_length=2000)
    logo = models.ImageField(_("logo"), upload_to="shops/", blank=True, validators=[validate_shop_logo])
    is_open = models.BooleanField(_("open"), default=True)
    # The day the shop closes for good (issue #24): until then its pages show the closing notice (电子商务法 art. 16:
    # 30 days ahead, settings.SHOP_CLOSING_NOTICE_DAYS); from then on they answer 410. Set only through
    # shops.services.shop_close_announce.
    closes_at = models.DateTimeField(_("closes on"), null=True, blank=True)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    products = models.ManyToManyField(Product, through="ShopListing", related_name="shops", blank=True)

    class Meta:
        verbose_name = _("shop")
        verbose_name_plural = _("shops")
        ordering = ("name", "pk")
        # The owner is who a sale pays by default: changed only through shops.services.shop_change_owner (audited,
        # with a reason), by staff holding this permission. Support's "change shop" does not include it.
        permissions = [("change_shop_owner", _("Can give a shop to another member"))]

    def __str__(self) -> str:
        return self.name

    def is_closing(self, now=None) -> bool:
        """The closing notice is up: a closing date is set and not reached."""
        return self.closes_at is not None and (now or timezone.now()) < self.closes_at

    def is_closed(self, now=None) -> bool:
        """The shop has closed for good: its pages are gone (410)."""
        return self.closes_at is not None and (now or timezone.now()) >= self.closes_at


class ShopEvent(models.Model):
    """Audit row for a change to who a shop belongs to (shops.services.shop_change_owner)."""

    class Kind(models.TextChoices):
        OWNER = "owner", _("Owner changed")
        CLOSING = "closing", _("Closing announced")

    shop = models.ForeignKey(Shop, on_delete=models.PROTECT, related_name="events", verbose_name=_("shop"))
    kind = models.CharField(_("kind"), max_length=16, choices=Kind.choices)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("actor"),
    )
    old_owner = member_reference(_("old owner"))
    new_owner = member_reference(_("new owner"))
    reason = models.TextField(_("reason"))
    # What else the change did: share links of the old owner switched off, external listings taken out.
    detail = models.JSONField(_("detail"), default=dict, blank=True)
    created_at = models.DateTimeField(_("time"), default=timezone.now, db_index=True)

    class Meta:
        verbose_name = _("shop event")
        verbose_name_plural = _("shop events")
        ordering = ("-created_at", "-pk")

    def __str__(self) -> str:
        return f"{self.get_kind_display()}: {timezone.localtime(self.created_at):%Y-%m-%d %H:%M}"


class ShopListing(models.Model):
    shop = models.ForeignKey(Shop, on_delete=models.CASCADE, related_name="listings", verbose_name=_("shop"))
    product = models.ForeignKey(Product, on_delete=models.PROTECT, related_name="listings", verbose_name=_("product"))
    position = models.PositiveIntegerField(_("position"), default=0)
    is_featured = models.BooleanField(_("featured"), default=False)
    created_at = models.DateTimeField(_("added"), auto_now_add=True)

    class Meta:
        verbose_name = _("shop listing")
        verbose_name_plural = _("shop listings")
        ordering = ("-is_featured", "position", "pk")
        constraints = [models.UniqueConstraint(fields=["shop", "product"], name="shops_listing_unique_product")]

    def __str__(self) -> str:
        return f"{self.product} @ {self.shop}"


def new_order_number() -> str:
    # Date prefix for people reading it on the phone, 8 random digits so numbers cannot be guessed in sequence.
    return timezone.localtime().strftime("%y%m%d") + f"{secrets.randbelow(10**8):08d}"


class Order(models.Model):
    class Status(models.TextChoices):
        PENDING_PAYMENT = "pending_payment", _("Awaiting payment")
        PAID = "paid", _("Paid")
        SHIPPED = "shipped", _("Shipped")
        COMPLETED = "completed", _("Completed")
        CANCELLED = "cancelled", _("Cancelled")
        REFUNDED = "refunded", _("Refunded")

    number = models.CharField(_("order number"), max_length=20, unique=True, editable=False)
    shop = models.ForeignKey(Shop, on_delete=models.PROTECT, related_name="orders", verbose_name=_("shop"))
    sharer = models.ForeignKey(
        "referrals.Member",
        on_delete=models.PROTECT,
        related_name="shared_orders",
        null=True,
        blank=True,
        verbose_name=_("sharer"),
    )
    share_link = models.ForeignKey(
        "ShareLink",
        on_delete=models.PROTECT,
        related_name="orders",
        null=True,
        blank=True,
        verbose_name=_("share link"),
    )
    buyer_user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        related_name="+",
        null=True,
        blank=True,
        verbose_name=_("signed-in buyer"),
    )
    is_self_purchase = models.BooleanField(
        _("self-purchase"), default=False, help_text=_("The buyer is the sharer (signed in as them, or their contact).")
    )

    class Attribution(models.TextChoices):
        SHOP = "shop", _("The shop's owner")
        LINK = "link", _("A share link")
        BINDING = "binding", _("The buyer's binding")
        COUPON = "coupon", _("A coupon code")

    # How the sharer was found (issue #22): the shop's owner, a share link's cookie, the buyer's binding to a member
    # (锁客), or a member's coupon code typed at checkout.
    attribution = models.CharField(
        _("attributed by"), max_length=16, choices=Attribution.choices, default=Attribution.SHOP
    )
    coupon_code = models.ForeignKey(
        "CouponCode",
        on_delete=models.PROTECT,
        related_name="orders",
        null=True,
        blank=True,
        verbose_name=_("coupon code"),
    )
    status = models.CharField(
        _("status"), max_length=20, choices=Status.choices, default=Status.PENDING_PAYMENT, db_index=True
    )
    buyer_name = models.CharField(_("name"), max_length=100)
    buyer_phone = models.CharField(_("phone"), max_length=20, blank=True)
    buyer_email = models.EmailField(_("email"), blank=True)
    shipping_address = models.TextField(_("address"), max_length=500)
    # A keyed hash of the client's address (core.ratelimit.ip_key), never the address itself: unpaid units are
    # limited per address (ORDER_UNPAID_UNITS_PER_ADDRESS). Cleared once the order is no longer awaiting payment.
    client_key = models.CharField(_("client address key"), max_length=32, blank=True, default="", editable=False)
    # For the fraud rules (commissions/risk.py, issue #25): keyed hashes (core.ratelimit.ip_key) of the buyer's
    # network address and device cookie at checkout, kept after payment, never the values themselves.
    network_key = models.CharField(_("network key"), max_length=32, blank=True, default="", editable=False)
    device_key = models.CharField(_("device key"), max_length=32, blank=True, default="", editable=False)
    total = MoneyField(_("total"))
    refunded_total = MoneyField(_("refunded"), default=ZERO)
    currency = models.CharField(_("currency"), max_length=3, default="CNY")
    created_at = models.DateTimeField(_("placed"), default=timezone.now, db_index=True)
    paid_at = models.DateTimeField(_("paid"), null=True, blank=True)
    shipped_at = models.DateTimeField(_("shipped"), null=True, blank=True)
    completed_at = models.DateTimeField(_("completed"), null=True, blank=True)
    cancelled_at = models.DateTimeField(_("cancelled"), null=True, blank=True)
    # How it left the warehouse (shops.services.order_mark_shipped): both set, or both blank (shipped without a
    # waybill, or not shipped yet). Corrections while it is on its way are OrderEvents of kind "shipment".
    courier = models.CharField(_("courier"), max_length=16, choices=COURIER_CHOICES, blank=True, default="")
    waybill_number = models.CharField(_("waybill number"), max_length=WAYBILL_MAX_LENGTH, blank=True, default="")

    class Meta:
        verbose_name = _("order")
        verbose_name_plural = _("orders")
        ordering = ("-created_at", "-pk")
        permissions = [("view_buyer_contact", _("Can see buyers' names, phones, emails and addresses"))]
        constraints = [
            models.CheckConstraint(condition=Q(total__gt=ZERO), name="shops_order_total_positive"),
            models.CheckConstraint(
                condition=Q(refunded_total__gte=ZERO) & Q(refunded_total__lte=F("total")),
                name="shops_order_refund_within_total",
            ),
            models.CheckConstraint(condition=~Q(buyer_phone="") | ~Q(buyer_email=""), name="shops_order_has_contact"),
            models.CheckConstraint(
                condition=Q(courier="", waybill_number="") | (~Q(courier="") & ~Q(waybill_number="")),
                name="shops_order_courier_with_waybill",
            ),
        ]
        indexes = [
            models.Index(fields=["status", "created_at"]),
            # The sales leaderboard (commissions.selectors.leaderboard_standings): a week's or a month's shared
            # orders by payment time, without reading older orders.
            models.Index(fields=["paid_at"], condition=Q(sharer__isnull=False), name="shops_order_shared_paid_at"),
        ]

    def __str__(self) -> str:
        return self.number

    @property
    def refundable_total(self):
        return self.total - self.refunded_total

    @property
    def discount_total(self):
        """What the buyer's coupon code took off the order (its lines' discounts together)."""
        return sum((line.discount for line in self.lines.all()), ZERO)


class OrderLine(models.Model):
    """One product on an order, with everything the money depends on snapshotted at checkout."""

    order = models.ForeignKey(Order, on_delete=models.PROTECT, related_name="lines", verbose_name=_("order"))
    product = models.ForeignKey(Product, on_delete=models.PROTECT, related_name="+", verbose_name=_("product"))
    title = models.CharField(_("title"), max_length=200)
    unit_price = MoneyField(_("unit price"))
    quantity = models.PositiveIntegerField(_("quantity"), validators=[MinValueValidator(1)])
    # What the buyer is charged for the line: unit price × quantity, less `discount`.
    net_amount = MoneyField(_("net amount"))
    commission_rate = RateField(_("commission rate"))
    # A coupon code's discount on the line, funded from the line's commission pool (commissions.calculations.
    # line_pool): the list amount is net_amount + discount.
    discount = MoneyField(_("coupon discount"), default=ZERO)
    refunded_quantity = models.PositiveIntegerField(_("refunded quantity"), default=0)
    refunded_amount = MoneyField(_("refunded amount"), default=ZERO)

    class Meta:
        verbose_name = _("order line")
        verbose_name_plural = _("order lines")
        ordering = ("pk",)
        constraints = [
            models.CheckConstraint(condition=Q(quantity__gte=1), name="shops_line_quantity_positive"),
            models.CheckConstraint(
                condition=Q(refunded_quantity__lte=F("quantity")), name="shops_line_refund_within_quantity"
            ),
            models.CheckConstraint(
                condition=Q(refunded_amount__lte=F("net_amount")), name="shops_line_refund_within_amount"
            ),
            models.CheckConstraint(condition=Q(discount__gte=ZERO), name="shops_line_discount_not_negative"),
        ]

    def __str__(self) -> str:
        return f"{self.quantity} × {self.title}"

    @property
    def refundable_quantity(self) -> int:
        return self.quantity - self.refunded_quantity

    @property
    def list_amount(self):
        """Unit price × quantity, before the coupon's discount."""
        return self.net_amount + self.discount


class OrderEvent(models.Model):
    """Audit row for every order transition, payment and refund."""

    class Kind(models.TextChoices):
        PLACED = "placed", _("Placed")
        STATUS = "status", _("Status changed")
        PAYMENT = "payment", _("Payment")
        REFUND = "refund", _("Refund")
        NOTE = "note", _("Note")
        SHIPMENT = "shipment", _("Shipment corrected")

    order = models.ForeignKey(Order, on_delete=models.PROTECT, related_name="events", verbose_name=_("order"))
    kind = models.CharField(_("kind"), max_length=16, choices=Kind.choices)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    actor_label = models.CharField(_("by"), max_length=60, blank=True, help_text=_("buyer, system, provider, …"))
    from_status = models.CharField(_("from"), max_length=20, blank=True)
    to_status = models.CharField(_("to"), max_length=20, blank=True)
    amount = MoneyField(_("amount"), null=True, blank=True)
    note = models.TextField(_("note"), blank=True)
    # The shipment a "shipped" status event or a "shipment" correction recorded: {"courier", "waybill"}, and for a
    # correction what it replaced ({"before": {"courier", "waybill"}}).
    detail = models.JSONField(_("detail"), default=dict, blank=True)
    created_at = models.DateTimeField(_("time"), default=timezone.now)

    class Meta:
        verbose_name = _("order event")
        verbose_name_plural = _("order events")
        ordering = ("created_at", "pk")
        # The audit log reads every kind of event newest first; an append-only time index is cheap to keep.
        indexes = [models.Index(fields=["created_at"], name="shops_orderevent_time")]

    def __str__(self) -> str:
        return f"{self.order}: {self.get_kind_display()} {self.from_status}→{self.to_status}"


class Payment(models.Model):
    class Status(models.TextChoices):
        PENDING = "pending", _("Pending")
        SUCCEEDED = "succeeded", _("Succeeded")
        FAILED = "failed", _("Failed")
        REFUNDED = "refunded", _("Refunded (arrived after the order was closed)")
        CLOSED = "closed", _("Closed unpaid")

    order = models.ForeignKey(Order, on_delete=models.PROTECT, related_name="payments", verbose_name=_("order"))
    provider = models.CharField(_("provider"), max_length=30)
    # How the buyer pays at the provider: "native" (a QR code), "h5", "jsapi" (WeChat Pay); "page", "wap" (Alipay);
    # "hosted" (the sandbox). Blank for payments opened before methods were recorded.
    method = models.CharField(_("method"), max_length=16, blank=True, default="")
    reference = models.CharField(_("reference"), max_length=64, unique=True)
    amount = MoneyField(_("amount"))
    status = models.CharField(_("status"), max_length=16, choices=Status.choices, default=Status.PENDING)
    notify_url = models.URLField(_("webhook URL"), max_length=500)
    return_url = models.URLField(_("return URL"), max_length=500)
    created_at = models.DateTimeField(_("created"), default=timezone.now)
    completed_at = models.DateTimeField(_("completed"), null=True, blank=True)

    class Meta:
        verbose_name = _("payment")
        verbose_name_plural = _("payments")
        ordering = ("-created_at", "-pk")

    def __str__(self) -> str:
        return f"{self.provider}:{self.reference}"


class Refund(models.Model):
    class Status(models.TextChoices):
        # Sent to the provider, which confirms later (WeChat Pay: a refund notification, or a query).
        PENDING = "pending", _("Pending at the provider")
        SUCCEEDED = "succeeded", _("Succeeded")
        # The provider could not return the money (the buyer's account closed, …): finance handles it by hand.
        FAILED = "failed", _("Failed at the provider")

    order = models.ForeignKey(Order, on_delete=models.PROTECT, related_name="refunds", verbose_name=_("order"))
    payment = models.ForeignKey(Payment, on_delete=models.PROTECT, related_name="refunds", verbose_name=_("payment"))
    amount = MoneyField(_("amount"))
    provider_refund_id = models.CharField(_("provider refund id"), max_length=64, blank=True)
    status = models.CharField(_("status"), max_length=16, choices=Status.choices, default=Status.SUCCEEDED)
    idempotency_key = models.CharField(_("idempotency key"), max_length=200, unique=True)
    reason = models.TextField(_("reason"), blank=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(_("created"), default=timezone.now)

    class Meta:
        verbose_name = _("refund")
        verbose_name_plural = _("refunds")
        ordering = ("created_at", "pk")
        constraints = [models.CheckConstraint(condition=Q(amount__gt=ZERO), name="shops_refund_amount_positive")]

    def __str__(self) -> str:
        return f"refund {self.pk} of {self.order}"


class RefundLine(models.Model):
    refund = models.ForeignKey(Refund, on_delete=models.PROTECT, related_name="lines")
    order_line = models.ForeignKey(OrderLine, on_delete=models.PROTECT, related_name="refund_lines")
    quantity = models.PositiveIntegerField(validators=[MinValueValidator(1)])
    amount = MoneyField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["refund", "order_line"], name="shops_refundline_unique"),
            models.CheckConstraint(condition=Q(quantity__gte=1), name="shops_refundline_quantity_positive"),
        ]

    def __str__(self) -> str:
        return f"{self.quantity} × {self.order_line_id}"


class WebhookEvent(models.Model):
    """Every webhook accepted, once: the unique event id makes a replay change nothing.

    A payment provider's notification is recorded as soon as its signature is verified (`applied_at` empty: it
    waits), and applied with the others waiting, in batches (shops.services.payment_notices_apply); `notice` keeps
    what the provider said, as the apply reads it. Payout rail notifications are applied as they are recorded.
    """

    provider = models.CharField(_("provider"), max_length=30)
    event_id = models.CharField(_("event id"), max_length=100)
    event_type = models.CharField(_("type"), max_length=60)
    payload = models.JSONField(_("payload"))
    notice = models.JSONField(_("notice"), default=dict, blank=True)
    outcome = models.CharField(_("outcome"), max_length=200, blank=True)
    received_at = models.DateTimeField(_("received"), default=timezone.now)
    applied_at = models.DateTimeField(_("applied"), null=True, blank=True, default=timezone.now)
    attempts = models.PositiveSmallIntegerField(_("failed attempts"), default=0)

    class Meta:
        verbose_name = _("webhook event")
        verbose_name_plural = _("webhook events")
        ordering = ("-received_at", "-pk")
        constraints = [
            models.UniqueConstraint(fields=["provider", "event_id"], name="shops_webhook_unique_event"),
        ]
        indexes = [
            # The waiting ones, oldest first: a few rows at any time however many were ever received.
            models.Index(fields=["id"], condition=models.Q(applied_at__isnull=True), name="shops_webhook_waiting"),
        ]

    def __str__(self) -> str:
        return f"{self.provider}:{self.event_id}"


# --- Share links, their clicks, and external products in shops -------------------------------------------------
# These tables were made by the referrals and networks apps (issue #20 moved the models here, tables unchanged).

SHARE_CODE_ALPHABET = "23456789abcdefghjkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ"
SHARE_CODE_LENGTH = 10  # 55**10, about 2.5e17: not guessable by walking the space


def new_share_code() -> str:
    return "".join(secrets.choice(SHARE_CODE_ALPHABET) for _ in range(SHARE_CODE_LENGTH))


class ShareLink(models.Model):
    """A member's short link to their own shop, or to one product listed in it (ours, or an external network's):
    /l/<code>."""

    owner = models.ForeignKey(
        "referrals.Member", on_delete=models.PROTECT, related_name="share_links", verbose_name=_("owner")
    )
    shop = models.ForeignKey(Shop, on_delete=models.PROTECT, related_name="share_links", verbose_name=_("shop"))
    product = models.ForeignKey(
        Product,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="share_links",
        verbose_name=_("product"),
    )
    # A product of an external network in the owner's shop: the link goes to the network's tracking link.
    external_product = models.ForeignKey(
        "networks.ExternalProduct",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="share_links",
        verbose_name=_("external product"),
    )
    code = models.CharField(_("code"), max_length=16, unique=True, editable=False)
    campaign = models.CharField(_("campaign"), max_length=60, blank=True)
    is_active = models.BooleanField(_("active"), default=True)
    created_at = models.DateTimeField(_("created"), default=timezone.now)

    class Meta:
        db_table = "referrals_sharelink"
        verbose_name = _("share link")
        verbose_name_plural = _("share links")
        ordering = ("-created_at", "-pk")
        indexes = [models.Index(fields=["owner", "-created_at"])]

    def __str__(self) -> str:
        return f"/l/{self.code}"


class ShareLinkDailyStat(models.Model):
    """Clicks and unique visitors of one link on one day, flushed in bulk from the click counter."""

    link = models.ForeignKey(ShareLink, on_delete=models.CASCADE, related_name="daily_stats")
    day = models.DateField()
    clicks = models.PositiveBigIntegerField(default=0)
    unique_visitors = models.PositiveBigIntegerField(default=0)

    class Meta:
        db_table = "referrals_sharelinkdailystat"
        verbose_name = _("daily link statistics")
        verbose_name_plural = _("daily link statistics")
        constraints = [models.UniqueConstraint(fields=["link", "day"], name="referrals_linkstat_unique_day")]

    def __str__(self) -> str:
        return f"{self.link_id} {self.day}: {self.clicks}"


class ClickFlush(models.Model):
    """One applied batch of counted clicks: the unique batch id makes a retried flush change nothing."""

    batch_id = models.CharField(max_length=64, unique=True)
    clicks = models.PositiveBigIntegerField(default=0)
    applied_at = models.DateTimeField(default=timezone.now)

    class Meta:
        db_table = "referrals_clickflush"
        verbose_name = _("click flush")
        verbose_name_plural = _("click flushes")

    def __str__(self) -> str:
        return self.batch_id


class ExternalListing(models.Model):
    """An external product in a member's shop; the buy button goes through our /l/ redirect to the network."""

    shop = models.ForeignKey(Shop, on_delete=models.CASCADE, related_name="external_listings", verbose_name=_("shop"))
    product = models.ForeignKey(
        "networks.ExternalProduct", on_delete=models.CASCADE, related_name="listings", verbose_name=_("product")
    )
    position = models.PositiveIntegerField(_("position"), default=0)
    # The network's tracking link carrying the shop owner's tracking id (converted once, when added), and the
    # owner's /l/ link that the buy button goes through, so the click is counted like any other.
    tracking_url = models.URLField(_("tracking link"), max_length=1000)
    share_link = models.OneToOneField(
        ShareLink, on_delete=models.PROTECT, null=True, blank=True, related_name="external_listing"
    )
    created_at = models.DateTimeField(_("added"), default=timezone.now)

    class Meta:
        db_table = "networks_externallisting"
        verbose_name = _("external listing")
        verbose_name_plural = _("external listings")
        ordering = ("position", "pk")
        constraints = [models.UniqueConstraint(fields=["shop", "product"], name="networks_listing_once")]

    def __str__(self) -> str:
        return f"{self.shop} · {self.product}"


class ProductMaterial(models.Model):
    """Staff's sharing material for a product (素材库): a picture and suggested words that members post with their
    own link (the product's share page copies the words with the member's link appended)."""

    product = models.ForeignKey(Product, on_delete=models.CASCADE, related_name="materials", verbose_name=_("product"))
    image = models.ImageField(_("image"), upload_to="materials/", blank=True, validators=[validate_product_image])
    text = models.TextField(_("suggested words"), max_length=1000, blank=True)
    position = models.PositiveIntegerField(_("position"), default=0)
    is_active = models.BooleanField(_("shown to members"), default=True)
    created_at = models.DateTimeField(_("added"), auto_now_add=True)

    class Meta:
        verbose_name = _("sharing material")
        verbose_name_plural = _("sharing materials")
        ordering = ("position", "pk")
        constraints = [
            # The words in any language (django-modeltranslation's columns, shops/translation.py): the base `text`
            # column holds only the language active when it was saved.
            models.CheckConstraint(
                condition=~Q(image="")
                | (Q(text_en__isnull=False) & ~Q(text_en=""))
                | (Q(text_zh_hans__isnull=False) & ~Q(text_zh_hans="")),
                name="shops_material_has_image_or_text",
            )
        ]

    def __str__(self) -> str:
        return f"{self.product}: {self.text[:40] or self.image.name}"


# --- Attribution options: buyer binding (锁客) and members' coupon codes (issue #22) -----------------------------


class AttributionOptions(models.Model):
    """The attribution options in force: one row (pk 1), off until staff publish a policy that turns them on.

    The values are the compliance policy's (commissions.CompliancePolicy, versioned and audited there): publishing a
    policy writes them here in the same transaction (shops.services.attribution_options_set). Shops sits below
    commissions and may not import it, so checkout reads this copy; no row means every option is off.
    """

    class BindingMode(models.TextChoices):
        KEEP = "keep", _("Keep the first member until the binding expires")
        LATEST_LINK = "latest_link", _("Another member's link or code takes the buyer over")

    binding_days = models.PositiveSmallIntegerField(_("buyer binding days"), default=0)
    binding_mode = models.CharField(
        _("buyer binding mode"), max_length=16, choices=BindingMode.choices, default=BindingMode.KEEP
    )
    coupons_enabled = models.BooleanField(_("members' coupon codes"), default=False)
    coupon_discount_rate = RateField(_("coupon discount rate"), default=RATE_ZERO)
    # The policy's self-purchase rule: may a member use their own code (it then counts as a self-purchase)?
    own_code_allowed = models.BooleanField(_("a member may use their own code"), default=False)
    policy_version = models.PositiveIntegerField(_("policy version"), null=True, blank=True)
    updated_at = models.DateTimeField(_("updated"), default=timezone.now)

    class Meta:
        verbose_name = _("attribution options")
        verbose_name_plural = _("attribution options")
        constraints = [
            models.CheckConstraint(
                condition=Q(coupon_discount_rate__gte=RATE_ZERO) & Q(coupon_discount_rate__lte=RATE_ONE),
                name="shops_attribution_discount_0_1",
            ),
        ]

    def __str__(self) -> str:
        return f"attribution options (policy v{self.policy_version})"

    @property
    def is_binding_on(self) -> bool:
        return self.binding_days > 0


COUPON_CODE_ALPHABET = "23456789ABCDEFGHJKLMNPQRSTUVWXYZ"  # no 0/O, 1/I: read aloud and typed on a phone
COUPON_CODE_LENGTH = 8


def new_coupon_code() -> str:
    return "".join(secrets.choice(COUPON_CODE_ALPHABET) for _ in range(COUPON_CODE_LENGTH))


class CouponCode(models.Model):
    """A member's personal coupon code: a buyer who enters it at checkout gets the policy's discount and the sale is
    attributed to the member. One per member; staff can switch it off."""

    owner = models.OneToOneField(
        "referrals.Member", on_delete=models.PROTECT, related_name="coupon_code", verbose_name=_("owner")
    )
    code = models.CharField(_("code"), max_length=16, unique=True, editable=False)
    is_active = models.BooleanField(_("active"), default=True)
    created_at = models.DateTimeField(_("created"), default=timezone.now)

    class Meta:
        verbose_name = _("coupon code")
        verbose_name_plural = _("coupon codes")
        ordering = ("-created_at", "-pk")

    def __str__(self) -> str:
        return self.code


class BuyerBinding(models.Model):
    """A buyer bound to a member (锁客) after buying through the member's link or code: until `expires_at`, the
    buyer's orders are attributed to the member. Rows are never deleted: a binding that ends (taken over by another
    member's link, or found expired) gets `ended_at` and a reason, so the table is its own audit trail."""

    class EndReason(models.TextChoices):
        EXPIRED = "expired", _("Expired")
        TAKEN_OVER = "taken_over", _("Taken over by another member's link or code")

    # Who the buyer is, as far as the shop knows: "user:<id>" (signed in) or "phone:<E.164>".
    buyer_key = models.CharField(_("buyer"), max_length=40, db_index=True)
    member = models.ForeignKey(
        "referrals.Member", on_delete=models.PROTECT, related_name="bound_buyers", verbose_name=_("member")
    )
    order = models.ForeignKey(
        Order, on_delete=models.PROTECT, related_name="+", verbose_name=_("order that bound the buyer")
    )
    started_at = models.DateTimeField(_("bound"), default=timezone.now)
    expires_at = models.DateTimeField(_("expires"))
    ended_at = models.DateTimeField(_("ended"), null=True, blank=True)
    end_reason = models.CharField(_("why it ended"), max_length=16, choices=EndReason.choices, blank=True)
    policy_version = models.PositiveIntegerField(_("policy version"), null=True, blank=True)

    class Meta:
        verbose_name = _("buyer binding")
        verbose_name_plural = _("buyer bindings")
        ordering = ("-started_at", "-pk")
        constraints = [
            # One open binding per buyer: two payments at once cannot bind the buyer twice.
            models.UniqueConstraint(
                fields=["buyer_key"], condition=Q(ended_at__isnull=True), name="shops_one_open_binding"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.buyer_key} → {self.member_id}"
