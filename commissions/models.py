"""Compliance policy, commission plans and the commission ledger (SPEC §7).

Nothing in the ledger is ever edited in place except its status and status times; refunds add
negative `reversal` or `clawback` rows. The unique constraints make every split and every refund's
reversal exactly-once, whatever the tasks do.
"""

from decimal import Decimal

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from commissions import risk
from commissions.calculations import (
    HARD_MAX_LEVELS,
    HARD_MAX_PAYOUT_RATIO,
    INELIGIBLE_SHARE_PLATFORM,
    INELIGIBLE_SHARE_ROLL_UP,
    Plan,
    Policy,
)
from commissions.presets import PRESET_CHOICES, PRESETS
from core.money import RATE_ONE, RATE_ZERO, MoneyField, RateField
from networks.models import ExternalOrder
from shops.models import AttributionOptions

MAX_BINDING_DAYS = 365
MAX_QUALIFICATION_DAYS = 365


def _levels_within_preset() -> Q:
    """A version's max paid levels within the preset it records (none recorded: published before presets)."""
    condition = Q(preset="")
    for preset in PRESETS.values():
        condition |= Q(preset=preset.code, max_levels__lte=preset.max_levels)
    return condition


class CompliancePolicy(models.Model):
    """One version of the caps; every change is a new version, in force from `effective_from` (at least
    RULES_CHANGE_NOTICE_DAYS after it is published, docs/compliance.md). The active row is the latest published: the
    one in force, or one scheduled to start later (the one in force is then the latest started:
    `selectors.policy_in_force`)."""

    class IneligibleShare(models.TextChoices):
        PLATFORM = INELIGIBLE_SHARE_PLATFORM, _("The platform keeps it")
        ROLL_UP = INELIGIBLE_SHARE_ROLL_UP, _("Roll up to the next eligible upline (within max levels)")

    version = models.PositiveIntegerField(_("version"), unique=True)
    max_levels = models.PositiveSmallIntegerField(
        _("max paid levels"),
        default=2,
        validators=[MinValueValidator(1), MaxValueValidator(HARD_MAX_LEVELS)],
        help_text=_("Members paid on one sale, the sharer included. Never more than 3."),
    )
    max_total_rate = RateField(
        _("max total rate"), default=Decimal("1.0000"), help_text=_("Sum of level rates, of the pool.")
    )
    max_payout_ratio = RateField(
        _("max payout ratio"),
        default=Decimal("0.3000"),
        validators=[MinValueValidator(RATE_ZERO), MaxValueValidator(HARD_MAX_PAYOUT_RATIO)],
        help_text=_("All member shares of a line, of its net amount. Never more than 0.30 (30 %)."),
    )
    # History, never edited: set only on a version published above the legal ceiling before the ceiling existed
    # (migration 0008 lowered its max_payout_ratio to 0.30 and kept here what it was published with).
    max_payout_ratio_published = RateField(
        _("max payout ratio as published"),
        null=True,
        blank=True,
        editable=False,
        help_text=_(
            "Only on a version published above the legal ceiling of 0.30 before the ceiling existed: the value it "
            "was published with. Its max payout ratio was lowered to 0.30 when the ceiling was introduced; lines "
            "split under it before then were capped at this value."
        ),
    )
    self_purchase_earns = models.BooleanField(_("self-purchase earns commission"), default=False)
    ineligible_share = models.CharField(
        _("share of an ineligible member"),
        max_length=16,
        choices=IneligibleShare.choices,
        default=IneligibleShare.PLATFORM,
    )
    # The jurisdiction preset (commissions/presets.py) in force when this version was published: the deployment's
    # COMPLIANCE_PRESET, recorded by policy_publish, never typed by staff. Empty on versions published before presets.
    preset = models.CharField(
        _("jurisdiction preset"), max_length=20, choices=PRESET_CHOICES, blank=True, default="", editable=False
    )
    # Own-sales qualification (issue #25): an upline earns on a downline's sale only with this many own sales in the
    # qualification days before it (commissions.selectors.own_sales_counts says what counts). 0: off.
    upline_min_own_sales = models.PositiveSmallIntegerField(
        _("own sales an upline needs"),
        default=0,
        help_text=_(
            "An upline (level 2 and up) earns on a downline's sale only if they made at least this many own sales "
            "(paid orders they shared, not self-purchases, not fully refunded) in the days before it. 0: off."
        ),
    )
    upline_qualification_days = models.PositiveSmallIntegerField(
        _("qualification period (days)"),
        default=30,
        validators=[MinValueValidator(1), MaxValueValidator(MAX_QUALIFICATION_DAYS)],
        help_text=_("The own sales counted are those paid in this many days before the downline's sale was paid."),
    )
    # Attribution options (issue #22), off by default. Checkout reads them from shops.AttributionOptions, where
    # policy_publish copies them (shops sits below commissions).
    binding_days = models.PositiveSmallIntegerField(
        _("buyer binding days"),
        default=0,
        validators=[MaxValueValidator(MAX_BINDING_DAYS)],
        help_text=_(
            "锁客: a buyer who bought through a member's link or code is attributed to that member for this many "
            "days. 0: off."
        ),
    )
    binding_mode = models.CharField(
        _("buyer binding mode"),
        max_length=16,
        choices=AttributionOptions.BindingMode.choices,
        default=AttributionOptions.BindingMode.KEEP,
    )
    coupons_enabled = models.BooleanField(_("members' coupon codes"), default=False)
    coupon_discount_rate = RateField(
        _("coupon discount rate"),
        default=RATE_ZERO,
        help_text=_(
            "What a member's coupon code takes off each line, as a fraction of its price (0.0500 = 5 %). Paid from "
            "the line's commission pool before the split, so it may not be more than any active product's "
            "commission rate."
        ),
    )
    is_active = models.BooleanField(_("active"), default=False)
    effective_from = models.DateTimeField(_("in force from"), default=timezone.now)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    note = models.TextField(_("reason for the change"), blank=True)

    class Meta:
        verbose_name = _("compliance policy")
        verbose_name_plural = _("compliance policies")
        ordering = ("-version",)
        permissions = [("view_compliance_report", _("Can view and export the compliance report"))]
        constraints = [
            models.UniqueConstraint(fields=["is_active"], condition=Q(is_active=True), name="commissions_one_policy"),
            # The legal ceiling lives in the database too: no code path, form or SQL client can store 4 levels.
            models.CheckConstraint(
                condition=Q(max_levels__gte=1) & Q(max_levels__lte=HARD_MAX_LEVELS), name="commissions_policy_levels"
            ),
            models.CheckConstraint(
                condition=Q(max_total_rate__gte=0) & Q(max_total_rate__lte=1), name="commissions_policy_total_rate"
            ),
            # The legal payout ceiling too (SPEC §7): no stored policy, however written, pays members more than 30 %.
            models.CheckConstraint(
                condition=Q(max_payout_ratio__gte=0) & Q(max_payout_ratio__lte=HARD_MAX_PAYOUT_RATIO),
                name="commissions_policy_ratio_ceiling",
            ),
            models.CheckConstraint(
                condition=Q(coupon_discount_rate__gte=0) & Q(coupon_discount_rate__lte=1),
                name="commissions_policy_coupon_rate",
            ),
            # A version never pays more levels than the jurisdiction preset it was published under.
            models.CheckConstraint(condition=_levels_within_preset(), name="commissions_policy_preset_levels"),
            models.CheckConstraint(
                condition=Q(upline_qualification_days__gte=1)
                & Q(upline_qualification_days__lte=MAX_QUALIFICATION_DAYS),
                name="commissions_policy_qualification_days",
            ),
            models.CheckConstraint(
                condition=Q(max_payout_ratio_published__isnull=True)
                | Q(max_payout_ratio_published__gt=HARD_MAX_PAYOUT_RATIO, max_payout_ratio_published__lte=RATE_ONE),
                name="commissions_policy_ratio_published",
            ),
        ]

    def __str__(self) -> str:
        return f"policy v{self.version}"

    def as_calculation(self) -> Policy:
        return Policy(
            max_levels=self.max_levels,
            max_total_rate=self.max_total_rate,
            max_payout_ratio=self.max_payout_ratio,
            self_purchase_earns=self.self_purchase_earns,
            ineligible_share=self.ineligible_share,
            upline_min_own_sales=self.upline_min_own_sales,
        )


class CommissionPlan(models.Model):
    """One version of the level rates (fractions of the pool); in force from `effective_from` once activated."""

    version = models.PositiveIntegerField(_("version"), unique=True)
    name = models.CharField(_("name"), max_length=80)
    level1_rate = RateField(_("level 1 rate (the sharer)"))
    level2_rate = RateField(_("level 2 rate"), null=True, blank=True)
    level3_rate = RateField(_("level 3 rate"), null=True, blank=True)
    effective_from = models.DateTimeField(_("in force from"), null=True, blank=True)
    is_activated = models.BooleanField(_("activated"), default=False)
    created_at = models.DateTimeField(_("created"), default=timezone.now)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    activated_at = models.DateTimeField(_("activated at"), null=True, blank=True)
    activated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("activated by"),
    )

    class Meta:
        verbose_name = _("commission plan")
        verbose_name_plural = _("commission plans")
        ordering = ("-version",)
        constraints = [
            models.CheckConstraint(
                condition=Q(is_activated=False) | Q(effective_from__isnull=False), name="commissions_plan_from"
            ),
            models.CheckConstraint(
                condition=Q(level3_rate__isnull=True) | Q(level2_rate__isnull=False), name="commissions_plan_no_gap"
            ),
        ]

    def __str__(self) -> str:
        return f"plan v{self.version} {self.name}"

    @property
    def rates(self) -> tuple:
        return tuple(rate for rate in (self.level1_rate, self.level2_rate, self.level3_rate) if rate is not None)

    def as_calculation(self) -> Plan:
        return Plan(rates=self.rates)


class OrderSplit(models.Model):
    """Marks an order as split (one row per order): its existence is the split's exactly-once key."""

    order = models.OneToOneField("shops.Order", on_delete=models.PROTECT, related_name="commission_split")
    plan = models.ForeignKey(CommissionPlan, on_delete=models.PROTECT, related_name="+", null=True)
    policy = models.ForeignKey(CompliancePolicy, on_delete=models.PROTECT, related_name="+", null=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name = _("order split")
        verbose_name_plural = _("order splits")

    def __str__(self) -> str:
        return f"split of order {self.order_id}"


class CommissionEntry(models.Model):
    class Kind(models.TextChoices):
        COMMISSION = "commission", _("Commission")
        REVERSAL = "reversal", _("Reversal (refund before release)")
        CLAWBACK = "clawback", _("Clawback (refund after release)")
        PLATFORM = "platform", _("Platform remainder")
        ADJUSTMENT = "adjustment", _("Adjustment (the network changed the commission)")

    class Status(models.TextChoices):
        PENDING = "pending", _("Pending")
        AVAILABLE = "available", _("Available")
        PAID = "paid", _("Paid out")
        REVERSED = "reversed", _("Reversed")

    # Our own sales: the order and its line. A sale on an external network: its reported line instead.
    order = models.ForeignKey(
        "shops.Order", on_delete=models.PROTECT, null=True, blank=True, related_name="commission_entries"
    )
    order_line = models.ForeignKey(
        "shops.OrderLine", on_delete=models.PROTECT, null=True, blank=True, related_name="commission_entries"
    )
    external_line = models.ForeignKey(
        "networks.ExternalOrder",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="commission_entries",
        verbose_name=_("external order"),
    )
    # External lines: 1 = the first split, then one more per reported change (0 for our own sales).
    revision = models.PositiveIntegerField(_("revision"), default=0, db_default=0)
    # Indexes: every one is written for each of the ~12 rows a paid order adds, so the split's speed pays for
    # them. Kept: order, order line, (beneficiary, status), (status, order), the unique keys. A plain index on
    # refund, beneficiary, plan, policy or rolled_up_from would only repeat one of those or index nulls.
    refund = models.ForeignKey(
        "shops.Refund",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="commission_entries",
        db_index=False,
    )
    beneficiary = models.ForeignKey(
        "referrals.Member",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="commission_entries",
        db_index=False,
    )
    level = models.PositiveSmallIntegerField(_("level"))  # 0 = the platform remainder
    kind = models.CharField(_("kind"), max_length=12, choices=Kind.choices)
    base = MoneyField(_("base (pool)"))
    rate = RateField(_("rate"))
    amount = MoneyField(_("amount"))
    plan = models.ForeignKey(CommissionPlan, on_delete=models.PROTECT, related_name="+", null=True, db_index=False)
    policy = models.ForeignKey(CompliancePolicy, on_delete=models.PROTECT, related_name="+", null=True, db_index=False)
    capped_by = models.CharField(_("cap that bound"), max_length=30, blank=True)
    rolled_up_from = models.ForeignKey(
        "referrals.Member", on_delete=models.PROTECT, null=True, blank=True, related_name="+", db_index=False
    )
    note = models.CharField(_("note"), max_length=200, blank=True)
    status = models.CharField(_("status"), max_length=12, choices=Status.choices, default=Status.PENDING)
    created_at = models.DateTimeField(_("created"), default=timezone.now)
    released_at = models.DateTimeField(_("released"), null=True, blank=True)
    paid_at = models.DateTimeField(_("paid out"), null=True, blank=True)
    reversed_at = models.DateTimeField(_("reversed"), null=True, blank=True)

    class Meta:
        verbose_name = _("commission entry")
        verbose_name_plural = _("commission entries")
        ordering = ("-created_at", "-pk")
        constraints = [
            models.UniqueConstraint(
                fields=["order_line", "level", "kind"], condition=Q(refund__isnull=True), name="commissions_split_once"
            ),
            models.UniqueConstraint(
                fields=["order_line", "level", "kind", "refund"],
                condition=Q(refund__isnull=False),
                name="commissions_refund_once",
            ),
            models.UniqueConstraint(
                fields=["external_line", "revision", "level", "kind"],
                condition=Q(external_line__isnull=False),
                name="commissions_external_once",
            ),
            models.CheckConstraint(condition=Q(level__lte=HARD_MAX_LEVELS), name="commissions_entry_level_ceiling"),
            models.CheckConstraint(
                condition=Q(kind__in=["reversal", "clawback"], amount__lte=0)
                | Q(kind="adjustment")
                | (~Q(kind__in=["reversal", "clawback", "adjustment"]) & Q(amount__gte=0)),
                name="commissions_entry_sign",
            ),
            models.CheckConstraint(
                condition=Q(order_line__isnull=False, order__isnull=False, external_line__isnull=True)
                | Q(order_line__isnull=True, order__isnull=True, external_line__isnull=False),
                name="commissions_entry_one_source",
            ),
        ]
        indexes = [
            models.Index(fields=["beneficiary", "status"]),
            models.Index(fields=["status", "order"]),
            models.Index(fields=["refund"], condition=Q(refund__isnull=False), name="commissions_entry_refund"),
            # The earnings leaderboard (selectors.leaderboard_standings): a week's or a month's member entries by
            # creation time. Entries are written in creation order, so each insert lands at the index's right edge.
            models.Index(
                fields=["created_at"], condition=Q(beneficiary__isnull=False), name="commissions_entry_earned_at"
            ),
            # Released entries by time (the notifications' sweep finds recent releases whose announcement was lost).
            # Partial: a split inserts pending rows (no released_at), which this index never holds.
            models.Index(
                fields=["released_at"], condition=Q(released_at__isnull=False), name="commissions_entry_released"
            ),
        ]
        # external_line: its foreign key index serves the external lines' lookups (nulls for our own sales).

    def __str__(self) -> str:
        return f"{self.get_kind_display()} L{self.level} {self.amount}"


class ExternalSplit(models.Model):
    """The ledger's side of a line an external network reported (`networks.ExternalOrder`): what the ledger holds
    for it, and the upline, plan and policy it was first split with, so later changes split over the same people
    under the same rules. Written by `commissions.services.external` only, from the line's first split on (a line
    attributed to nobody has none). On the line itself until issue #20."""

    line = models.OneToOneField(
        ExternalOrder,
        on_delete=models.PROTECT,
        primary_key=True,
        related_name="split",
        verbose_name=_("external order"),
    )
    split_commission = MoneyField(_("commission in the ledger"), null=True, blank=True)
    split_status = models.CharField(
        _("status in the ledger"), max_length=12, choices=ExternalOrder.Status.choices, blank=True
    )
    revision = models.PositiveIntegerField(_("ledger revision"), default=0)  # how many times entries were written
    # The upline at first split: [[member id, eligible], …]; an upline's link ends with their own sales when the
    # policy asked for them ([member id, eligible, own sales]).
    chain = models.JSONField(null=True, blank=True)
    plan = models.ForeignKey(CommissionPlan, on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    policy = models.ForeignKey(CompliancePolicy, on_delete=models.PROTECT, null=True, blank=True, related_name="+")

    class Meta:
        verbose_name = _("external order split")
        verbose_name_plural = _("external order splits")

    def __str__(self) -> str:
        return f"split of external order {self.line_id}"


class SplitQueue(models.Model):
    """Outbox: written in the same transaction that marks an order paid, so no split is ever lost.

    The split task drains it in batches (SELECT … FOR UPDATE SKIP LOCKED); a periodic sweep re-sends
    what a lost message left behind.
    """

    order = models.OneToOneField("shops.Order", on_delete=models.CASCADE, primary_key=True, related_name="+")
    queued_at = models.DateTimeField(default=timezone.now)
    # [[member id, eligible], ...] from the sharer up, read at payment time; null when the sweep queued it.
    chain = models.JSONField(null=True, blank=True)

    class Meta:
        verbose_name = _("queued split")
        verbose_name_plural = _("split queue")

    def __str__(self) -> str:
        return f"order {self.order_id} awaiting its split"


class RefundApplied(models.Model):
    """Marks a refund whose reversals and clawbacks are written (one row per refund)."""

    refund = models.OneToOneField("shops.Refund", on_delete=models.PROTECT, related_name="+")
    applied_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name = _("applied refund")
        verbose_name_plural = _("applied refunds")

    def __str__(self) -> str:
        return f"refund {self.refund_id} applied"


class PlanSimulation(models.Model):
    """One "what would this draft have paid?" run: a draft plan (and policy) replayed over a period's paid lines.

    The draft is stored as values, not as a plan row, so a draft that breaks the policy can still be simulated
    (and shown as such). Writes nothing but this row: the ledger is never touched.
    """

    class Status(models.TextChoices):
        QUEUED = "queued", _("Queued")
        RUNNING = "running", _("Running")
        DONE = "done", _("Done")
        FAILED = "failed", _("Failed")

    name = models.CharField(_("name"), max_length=80, blank=True)
    draft_plan = models.ForeignKey(
        CommissionPlan,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("draft plan"),
        help_text=_("The plan the rates were taken from, if any."),
    )
    level1_rate = RateField(_("level 1 rate (the sharer)"))
    level2_rate = RateField(_("level 2 rate"), null=True, blank=True)
    level3_rate = RateField(_("level 3 rate"), null=True, blank=True)
    # The draft policy; blank means "the policy in force when each line was paid".
    max_levels = models.PositiveSmallIntegerField(_("max paid levels"), null=True, blank=True)
    max_total_rate = RateField(_("max total rate"), null=True, blank=True)
    max_payout_ratio = RateField(_("max payout ratio"), null=True, blank=True)
    self_purchase_earns = models.BooleanField(_("self-purchase earns commission"), null=True, blank=True)
    ineligible_share = models.CharField(
        _("share of an ineligible member"),
        max_length=16,
        choices=CompliancePolicy.IneligibleShare.choices,
        blank=True,
    )
    date_from = models.DateField(_("paid from"))
    date_to = models.DateField(_("paid until (inclusive)"))
    status = models.CharField(_("status"), max_length=12, choices=Status.choices, default=Status.QUEUED)
    lines_total = models.PositiveIntegerField(_("lines to replay"), default=0)
    lines_done = models.PositiveIntegerField(_("lines replayed"), default=0)
    result = models.JSONField(_("result"), null=True, blank=True)
    error = models.TextField(_("error"), blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(_("created"), default=timezone.now)
    started_at = models.DateTimeField(_("started"), null=True, blank=True)
    finished_at = models.DateTimeField(_("finished"), null=True, blank=True)

    class Meta:
        verbose_name = _("plan simulation")
        verbose_name_plural = _("plan simulations")
        ordering = ("-created_at", "-pk")

    def __str__(self) -> str:
        return self.name or f"simulation {self.pk}"

    @property
    def rates(self) -> tuple:
        return tuple(rate for rate in (self.level1_rate, self.level2_rate, self.level3_rate) if rate is not None)

    @property
    def progress_percent(self) -> int:
        if self.status == self.Status.DONE:
            return 100
        if not self.lines_total:
            return 0
        return min(100, self.lines_done * 100 // self.lines_total)


# --- Fraud and risk review (issue #25; the rules in commissions/risk.py, the services in services/risk.py) -------


class RiskRule(models.Model):
    """A rule's staff-tunable setting: one row per rule (seeded by migration 0014), edited in admin (audited)."""

    class Code(models.TextChoices):
        SHARED_IDENTITY = risk.SHARED_IDENTITY, _("Buyer and sharer share an identity")
        MANY_ACCOUNTS = risk.MANY_ACCOUNTS, _("Many accounts on one device or network")
        CLICK_SPIKE = risk.CLICK_SPIKE, _("Click spike")
        CONVERSION_SPIKE = risk.CONVERSION_SPIKE, _("Conversion spike")
        REFUND_AFTER_COMMISSION = risk.REFUND_AFTER_COMMISSION, _("Refunds after commission")
        EARLY_PAYOUT = risk.EARLY_PAYOUT, _("Early payout of self-bought orders")
        COUPON_FAR = risk.COUPON_FAR, _("Coupon code used far from the member's audience")

    code = models.CharField(_("rule"), max_length=40, choices=Code.choices, unique=True)
    is_enabled = models.BooleanField(_("enabled"), default=True)
    threshold = models.DecimalField(_("threshold"), max_digits=12, decimal_places=4)
    minimum = models.PositiveIntegerField(
        _("minimum count"), default=0, help_text=_("The rule looks only at members with at least this many.")
    )
    updated_at = models.DateTimeField(_("updated"), default=timezone.now)
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )

    class Meta:
        verbose_name = _("risk rule")
        verbose_name_plural = _("risk rules")
        ordering = ("code",)
        constraints = [models.CheckConstraint(condition=Q(threshold__gte=0), name="commissions_risk_threshold")]

    def __str__(self) -> str:
        return self.get_code_display()

    def as_setting(self) -> risk.Setting:
        return risk.Setting(threshold=self.threshold, minimum=self.minimum, is_enabled=self.is_enabled)


class RiskFlag(models.Model):
    """A rule flagged an order, a member or a withdrawal. While open, the money it concerns is held: the order's
    pending entries (an order flag), all the member's pending entries (a member flag), the withdrawal's approval (a
    withdrawal flag). Staff resolve it: release (dismissed), reverse or ban (confirmed)."""

    class Subject(models.TextChoices):
        ORDER = "order", _("Order")
        MEMBER = "member", _("Member")
        WITHDRAWAL = "withdrawal", _("Withdrawal")

    class Status(models.TextChoices):
        OPEN = "open", _("Open")
        CONFIRMED = "confirmed", _("Confirmed")
        DISMISSED = "dismissed", _("Dismissed")

    class Resolution(models.TextChoices):
        RELEASED = "released", _("Released")
        REVERSED = "reversed", _("Reversed")
        BANNED = "banned", _("Member banned")

    subject = models.CharField(_("subject"), max_length=12, choices=Subject.choices)
    rule = models.CharField(_("rule"), max_length=40, choices=RiskRule.Code.choices)
    member = models.ForeignKey(
        "referrals.Member", on_delete=models.PROTECT, related_name="risk_flags", verbose_name=_("member")
    )
    order = models.ForeignKey(
        "shops.Order", on_delete=models.PROTECT, null=True, blank=True, related_name="+", verbose_name=_("order")
    )
    # payouts.Withdrawal sits above commissions: its id only.
    withdrawal_id = models.PositiveBigIntegerField(_("withdrawal"), null=True, blank=True)
    score = models.DecimalField(_("score"), max_digits=14, decimal_places=4, default=Decimal("0"))
    evidence = models.JSONField(_("evidence"), default=dict, blank=True)
    status = models.CharField(_("status"), max_length=12, choices=Status.choices, default=Status.OPEN)
    resolution = models.CharField(_("resolution"), max_length=12, choices=Resolution.choices, blank=True)
    created_at = models.DateTimeField(_("raised"), default=timezone.now)
    resolved_at = models.DateTimeField(_("resolved"), null=True, blank=True)
    resolved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("resolved by"),
    )
    reason = models.TextField(_("reason"), blank=True)

    class Meta:
        verbose_name = _("risk flag")
        verbose_name_plural = _("risk flags")
        ordering = ("-created_at", "-pk")
        permissions = [("review_risk", _("Can review risk flags (release, reverse, ban)"))]
        constraints = [
            # Scoring twice flags nothing twice: an order once per rule, a withdrawal once per rule, a member once
            # per rule while a flag is open.
            models.UniqueConstraint(
                fields=["order", "rule"], condition=Q(subject="order"), name="commissions_risk_order_once"
            ),
            models.UniqueConstraint(
                fields=["withdrawal_id", "rule"],
                condition=Q(subject="withdrawal"),
                name="commissions_risk_withdrawal_once",
            ),
            models.UniqueConstraint(
                fields=["member", "rule"],
                condition=Q(subject="member", status="open"),
                name="commissions_risk_member_open_once",
            ),
            models.CheckConstraint(
                condition=Q(subject="order", order__isnull=False)
                | Q(subject="withdrawal", withdrawal_id__isnull=False)
                | Q(subject="member"),
                name="commissions_risk_subject",
            ),
            models.CheckConstraint(
                condition=Q(status="open", resolution="") | (~Q(status="open") & ~Q(resolution="")),
                name="commissions_risk_resolution",
            ),
        ]
        indexes = [
            models.Index(fields=["member"], condition=Q(status="open"), name="commissions_risk_open_member"),
            models.Index(fields=["status", "created_at"]),
        ]

    def __str__(self) -> str:
        return f"{self.get_rule_display()} ({self.get_subject_display()} {self.subject_id})"

    @property
    def subject_id(self):
        return {"order": self.order_id, "withdrawal": self.withdrawal_id}.get(self.subject, self.member_id)


class RiskEvent(models.Model):
    """The audit row of every review decision and rule change (read by the staff audit log)."""

    class Kind(models.TextChoices):
        RELEASED = "released", _("Flag released")
        REVERSED = "reversed", _("Flag reversed")
        BANNED = "banned", _("Member banned")
        RULE_CHANGED = "rule_changed", _("Risk rule changed")

    kind = models.CharField(_("kind"), max_length=16, choices=Kind.choices)
    flag = models.ForeignKey(RiskFlag, on_delete=models.PROTECT, null=True, blank=True, related_name="events")
    rule = models.ForeignKey(RiskRule, on_delete=models.PROTECT, null=True, blank=True, related_name="events")
    member = models.ForeignKey(
        "referrals.Member", on_delete=models.PROTECT, null=True, blank=True, related_name="+", db_index=False
    )
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    reason = models.TextField(_("reason"))
    amount = MoneyField(_("amount reversed"), null=True, blank=True)
    detail = models.JSONField(_("detail"), default=dict, blank=True)
    created_at = models.DateTimeField(_("time"), default=timezone.now, db_index=True)

    class Meta:
        verbose_name = _("risk event")
        verbose_name_plural = _("risk events")
        ordering = ("-created_at", "-pk")

    def __str__(self) -> str:
        return f"{self.get_kind_display()} at {self.created_at:%Y-%m-%d %H:%M}"


class RiskSighting(models.Model):
    """A member seen on a device cookie or a network address (hashed), when they signed in: what the identity and
    many-accounts rules compare buyers with."""

    class Kind(models.TextChoices):
        DEVICE = "device", _("Device")
        NETWORK = "network", _("Network")

    member = models.ForeignKey("referrals.Member", on_delete=models.CASCADE, related_name="+", db_index=False)
    kind = models.CharField(max_length=8, choices=Kind.choices)
    key = models.CharField(max_length=32)
    first_seen = models.DateTimeField(default=timezone.now)
    last_seen = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name = _("risk sighting")
        verbose_name_plural = _("risk sightings")
        constraints = [models.UniqueConstraint(fields=["member", "kind", "key"], name="commissions_sighting_once")]
        indexes = [models.Index(fields=["kind", "key"])]

    def __str__(self) -> str:
        return f"member {self.member_id} on {self.kind}"
