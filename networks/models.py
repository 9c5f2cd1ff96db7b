"""External affiliate networks (issue #12): the networks, their products in members' shops, the tracking ids our
links carry, the order lines the networks report, and each sync or file import.

Money is the network's: an external line's commission pool is what the network reports (estimated until it
settles, actual after), split through the same engine and caps as our own sales, into the same ledger
(`commissions.CommissionEntry.external_line`). The networks app records what is reported and marks the line; the
commissions app writes the difference as new entries (`commissions.services.external`), never an edit of the ledger.
"""

from decimal import Decimal

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from core.money import MoneyField

ID_LENGTH = 128  # the networks' ids (JD's subUnionId alone may be 80 characters); imports refuse longer ones


class Network(models.Model):
    """One external affiliate network and the state of its sync. Credentials are environment variables."""

    code = models.SlugField(_("code"), max_length=20, unique=True)  # the connector's code: sandbox, taobao, jd …
    name = models.CharField(_("name"), max_length=60)
    is_enabled = models.BooleanField(_("enabled"), default=True)
    # Where the incremental order sync has read up to (the end of the last window fetched completely).
    cursor = models.DateTimeField(_("synced up to"), null=True, blank=True)
    last_sync_at = models.DateTimeField(_("last sync"), null=True, blank=True)
    last_error = models.TextField(_("last error"), blank=True)
    consecutive_failures = models.PositiveIntegerField(_("failures in a row"), default=0)
    created_at = models.DateTimeField(_("created"), default=timezone.now)

    class Meta:
        verbose_name = _("network")
        verbose_name_plural = _("networks")
        ordering = ("name",)

    def __str__(self) -> str:
        return self.name


class ExternalProduct(models.Model):
    """A product of a network, as last synced from its feed."""

    network = models.ForeignKey(Network, on_delete=models.PROTECT, related_name="products", verbose_name=_("network"))
    external_id = models.CharField(_("network's product id"), max_length=ID_LENGTH)
    title = models.CharField(_("title"), max_length=200)
    image_url = models.URLField(_("image"), max_length=500, blank=True)
    price = MoneyField(_("price"))
    coupon = MoneyField(_("coupon"), default=Decimal("0.00"))
    commission_rate = models.DecimalField(_("network commission rate"), max_digits=5, decimal_places=4)
    shop_name = models.CharField(_("seller"), max_length=100, blank=True)
    url = models.URLField(_("page on the network"), max_length=500, blank=True)
    is_active = models.BooleanField(_("active"), default=True)
    synced_at = models.DateTimeField(_("last synced"), default=timezone.now)

    class Meta:
        verbose_name = _("external product")
        verbose_name_plural = _("external products")
        ordering = ("network", "title")
        constraints = [
            models.UniqueConstraint(fields=["network", "external_id"], name="networks_product_once"),
            models.CheckConstraint(condition=Q(price__gte=0) & Q(coupon__gte=0), name="networks_product_money"),
        ]

    def __str__(self) -> str:
        return self.title

    @property
    def price_after_coupon(self) -> Decimal:
        return max(self.price - self.coupon, Decimal("0.00"))


class TrackingId(models.Model):
    """The id a network's tracking link carries for one member (its sub-id or position id)."""

    network = models.ForeignKey(Network, on_delete=models.PROTECT, related_name="tracking_ids")
    member = models.ForeignKey("referrals.Member", on_delete=models.PROTECT, related_name="tracking_ids")
    value = models.CharField(_("tracking id"), max_length=ID_LENGTH)
    created_at = models.DateTimeField(_("created"), default=timezone.now)

    class Meta:
        verbose_name = _("tracking id")
        verbose_name_plural = _("tracking ids")
        constraints = [
            models.UniqueConstraint(fields=["network", "member"], name="networks_tracking_one_per_member"),
            models.UniqueConstraint(fields=["network", "value"], name="networks_tracking_unique"),
        ]

    def __str__(self) -> str:
        return self.value


class ExternalOrder(models.Model):
    """One order line as a network reports it, stored once per (network, order id, line id).

    `commission` and `status` are the network's latest word. Every change of it (and an attribution) marks the line
    (`ledger_marked_at`, the outbox of `networks.signals`); the ledger's keeper, commissions, writes the difference
    and clears the mark. What the ledger holds for the line is the ledger's own record (`commissions.ExternalSplit`).
    """

    class Status(models.TextChoices):
        PAID = "paid", _("Paid")
        CONFIRMED = "confirmed", _("Receipt confirmed")
        SETTLED = "settled", _("Settled")
        INVALID = "invalid", _("Invalid or refunded")

    network = models.ForeignKey(Network, on_delete=models.PROTECT, related_name="orders", verbose_name=_("network"))
    external_order_id = models.CharField(_("network's order id"), max_length=ID_LENGTH)
    line_id = models.CharField(_("line"), max_length=ID_LENGTH, default="1")
    tracking_id = models.CharField(_("tracking id"), max_length=ID_LENGTH, blank=True)
    member = models.ForeignKey(
        "referrals.Member",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="external_orders",
        verbose_name=_("sharer"),
    )  # None: the tracking id matched nobody; kept for staff review
    product_id = models.CharField(_("network's product id"), max_length=ID_LENGTH, blank=True)
    title = models.CharField(_("title"), max_length=200, blank=True)
    quantity = models.PositiveIntegerField(_("quantity"), default=1)
    paid_amount = MoneyField(_("paid amount"))
    commission = MoneyField(_("commission reported"))
    status = models.CharField(_("status"), max_length=12, choices=Status.choices)
    paid_at = models.DateTimeField(_("paid"))
    network_updated_at = models.DateTimeField(_("changed on the network"))
    settled_at = models.DateTimeField(_("settled"), null=True, blank=True)
    raw = models.JSONField(_("as reported"), default=dict, blank=True)
    source = models.CharField(_("source"), max_length=40, blank=True)  # "sync" or "import <id>"
    first_seen_at = models.DateTimeField(_("first seen"), default=timezone.now)
    updated_at = models.DateTimeField(_("updated"), default=timezone.now)
    # When the line was marked for the ledger (its latest word is not written there yet); None once it is.
    ledger_marked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = _("external order")
        verbose_name_plural = _("external orders")
        ordering = ("-paid_at", "-pk")
        constraints = [
            models.UniqueConstraint(fields=["network", "external_order_id", "line_id"], name="networks_order_once"),
            models.CheckConstraint(condition=Q(paid_amount__gte=0) & Q(commission__gte=0), name="networks_order_money"),
        ]
        indexes = [
            models.Index(fields=["network", "network_updated_at"]),
            models.Index(fields=["member"], condition=Q(member__isnull=True), name="networks_order_unmatched"),
            models.Index(fields=["status", "settled_at"]),
            models.Index(
                fields=["ledger_marked_at"], condition=Q(ledger_marked_at__isnull=False), name="networks_order_marked"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.network_id}:{self.external_order_id}/{self.line_id}"

    @property
    def pool(self):
        """What the line's split must add up to now: the reported commission, or nothing once invalid."""
        return Decimal("0.00") if self.status == self.Status.INVALID else self.commission


class ExternalOrderEvent(models.Model):
    """Every change a network reported for a line (the audit trail of external orders)."""

    order = models.ForeignKey(ExternalOrder, on_delete=models.PROTECT, related_name="events")
    at = models.DateTimeField(default=timezone.now)
    from_status = models.CharField(max_length=12, blank=True)
    to_status = models.CharField(max_length=12)
    from_commission = MoneyField(null=True, blank=True)
    to_commission = MoneyField()
    source = models.CharField(max_length=40, blank=True)
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True)
    note = models.CharField(max_length=200, blank=True)

    class Meta:
        verbose_name = _("external order event")
        verbose_name_plural = _("external order events")
        ordering = ("at", "pk")
        indexes = [models.Index(fields=["at"])]

    def __str__(self) -> str:
        return f"{self.order_id}: {self.from_status or '-'} → {self.to_status} ({self.to_commission})"


class SyncRun(models.Model):
    """One run of a network's order sync: the windows it read and what changed."""

    class Status(models.TextChoices):
        RUNNING = "running", _("Running")
        DONE = "done", _("Done")
        FAILED = "failed", _("Failed")

    network = models.ForeignKey(Network, on_delete=models.CASCADE, related_name="sync_runs")
    started_at = models.DateTimeField(default=timezone.now)
    finished_at = models.DateTimeField(null=True, blank=True)
    window_start = models.DateTimeField(null=True, blank=True)
    window_end = models.DateTimeField(null=True, blank=True)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.RUNNING)
    fetched = models.PositiveIntegerField(default=0)
    created = models.PositiveIntegerField(default=0)
    changed = models.PositiveIntegerField(default=0)
    error = models.TextField(blank=True)
    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True)

    class Meta:
        verbose_name = _("sync run")
        verbose_name_plural = _("sync runs")
        ordering = ("-started_at", "-pk")

    def __str__(self) -> str:
        return f"{self.network_id} {self.started_at:%Y-%m-%d %H:%M} {self.status}"


class ReportImport(models.Model):
    """An order-report file staff uploaded (for networks without API access), imported by a Celery task: all rows
    or none. The upload stores the file here and queues the task; the task reads it (`rows_read` as it goes),
    records every line in one transaction (live progress in the cache meanwhile, see networks.services) and ends
    done, refused (a bad row or a file over a bound, named in `error`) or failed (an unexpected error)."""

    class Status(models.TextChoices):
        QUEUED = "queued", _("Waiting")
        RUNNING = "running", _("Importing")
        DONE = "done", _("Imported")
        REFUSED = "refused", _("Refused")
        FAILED = "failed", _("Failed")

    network = models.ForeignKey(Network, on_delete=models.PROTECT, related_name="imports")
    file_name = models.CharField(max_length=200)
    file_sha256 = models.CharField(max_length=64)
    file_size = models.PositiveIntegerField(_("file size"), default=0)
    # The uploaded bytes, kept only until the import is finished (the worker may run on another machine).
    content = models.BinaryField(_("file"), blank=True, default=b"", editable=False)
    uploaded_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True)
    uploaded_at = models.DateTimeField(default=timezone.now)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.QUEUED)
    started_at = models.DateTimeField(_("started"), null=True, blank=True)
    finished_at = models.DateTimeField(_("finished"), null=True, blank=True)
    attempts = models.PositiveSmallIntegerField(_("attempts"), default=0)  # runs started; a lease for the task
    rows_read = models.PositiveIntegerField(_("rows read"), default=0)
    rows = models.PositiveIntegerField(default=0)  # order lines in the file
    rows_done = models.PositiveIntegerField(_("rows imported"), default=0)
    created = models.PositiveIntegerField(default=0)
    changed = models.PositiveIntegerField(default=0)
    stale = models.PositiveIntegerField(default=0)  # rows older than what we know already: ignored
    error_row = models.PositiveIntegerField(null=True, blank=True)
    error = models.TextField(blank=True)

    class Meta:
        verbose_name = _("report import")
        verbose_name_plural = _("report imports")
        ordering = ("-uploaded_at", "-pk")

    def __str__(self) -> str:
        return f"{self.file_name} ({self.get_status_display()})"
