"""Payout accounts, withdrawals and payout batches (SPEC §8).

A member's balance is derived from the commission ledger minus withdrawals, never stored: see
payouts.selectors.member_balance. `MemberWallet` is only the row that is locked whenever money leaves.
"""

from decimal import Decimal

from django.conf import settings
from django.core.exceptions import ObjectDoesNotExist
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from core.money import ZERO, MoneyField


class PayoutAccount(models.Model):
    class Method(models.TextChoices):
        BANK = "bank", _("Bank transfer")
        ALIPAY = "alipay", _("Alipay")
        WECHAT = "wechat", _("WeChat Pay")

    member = models.OneToOneField("referrals.Member", on_delete=models.PROTECT, related_name="payout_account")
    method = models.CharField(_("method"), max_length=10, choices=Method.choices)
    holder_name = models.CharField(_("account holder's real name"), max_length=60)
    bank_name = models.CharField(_("bank"), max_length=80, blank=True)
    bank_branch = models.CharField(_("branch"), max_length=120, blank=True)
    account_number = models.CharField(_("card / account number"), max_length=34, blank=True)
    alipay_account = models.CharField(_("Alipay account (phone or email)"), max_length=100, blank=True)
    wechat_id = models.CharField(_("WeChat ID"), max_length=40, blank=True)
    # The member's openid under the shop's WeChat AppID: where a WeChat Pay transfer (商家转账) goes. Bound through
    # WeChat (or by finance staff), never typed by the member; never shown or logged in full.
    wechat_openid = models.CharField(_("WeChat payee (openid)"), max_length=64, blank=True)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    class Meta:
        verbose_name = _("payout account")
        verbose_name_plural = _("payout accounts")
        permissions = [("view_unmasked_payoutaccount", _("Can see full payout account numbers"))]

    def __str__(self) -> str:
        return f"{self.get_method_display()} {self.masked_identifier}"

    @property
    def identifier(self) -> str:
        return {"bank": self.account_number, "alipay": self.alipay_account, "wechat": self.wechat_id}[self.method]

    @property
    def masked_identifier(self) -> str:
        return mask(self.identifier)

    def snapshot(self) -> dict:
        """What a withdrawal records of the account at request time (later edits do not redirect money)."""
        return {
            "method": self.method,
            "holder_name": self.holder_name,
            "bank_name": self.bank_name,
            "bank_branch": self.bank_branch,
            "account_number": self.account_number,
            "alipay_account": self.alipay_account,
            "wechat_id": self.wechat_id,
            "wechat_openid": self.wechat_openid,
        }


def mask(value: str) -> str:
    """`6222 0212 3456 7890` → `**** 7890`; emails keep two characters; short values their last two."""
    value = (value or "").replace(" ", "")
    if "@" in value:
        local, _at, domain = value.partition("@")
        return f"{local[:2]}***@{domain}"
    if len(value) >= 8:
        return f"**** {value[-4:]}"  # 尾号 only: banks and Alipay show the last four
    return "*" * max(len(value) - 2, 0) + value[-2:]


class MemberWallet(models.Model):
    """The row locked (SELECT … FOR UPDATE) whenever money leaves a member's balance."""

    member = models.OneToOneField("referrals.Member", on_delete=models.PROTECT, related_name="wallet")

    class Meta:
        verbose_name = _("member wallet")
        verbose_name_plural = _("member wallets")

    def __str__(self) -> str:
        return f"wallet of {self.member_id}"


class PayoutBatch(models.Model):
    class Status(models.TextChoices):
        PROCESSING = "processing", _("Processing")
        DONE = "done", _("Done")

    provider = models.CharField(_("provider"), max_length=20)
    status = models.CharField(_("status"), max_length=12, choices=Status.choices, default=Status.PROCESSING)
    created_at = models.DateTimeField(_("created"), default=timezone.now)
    completed_at = models.DateTimeField(_("completed"), null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )

    class Meta:
        verbose_name = _("payout batch")
        verbose_name_plural = _("payout batches")
        ordering = ("-created_at", "-pk")

    def __str__(self) -> str:
        return f"batch {self.pk} ({self.provider})"


class Withdrawal(models.Model):
    class Status(models.TextChoices):
        REQUESTED = "requested", _("Requested")
        APPROVED = "approved", _("Approved")
        PROCESSING = "processing", _("Processing")
        PAID = "paid", _("Paid")
        REJECTED = "rejected", _("Rejected")
        CANCELLED = "cancelled", _("Cancelled")
        FAILED = "failed", _("Failed")

    member = models.ForeignKey("referrals.Member", on_delete=models.PROTECT, related_name="withdrawals")
    amount = MoneyField(_("amount"))
    status = models.CharField(_("status"), max_length=12, choices=Status.choices, default=Status.REQUESTED)
    account = models.JSONField(_("payout account at request time"))
    batch = models.ForeignKey(PayoutBatch, on_delete=models.PROTECT, null=True, blank=True, related_name="withdrawals")
    idempotency_key = models.CharField(_("idempotency key"), max_length=64, unique=True)
    provider_reference = models.CharField(_("provider reference"), max_length=100, blank=True)
    reason = models.TextField(_("reason (rejection or failure)"), blank=True)
    requested_at = models.DateTimeField(_("requested"), default=timezone.now)
    decided_at = models.DateTimeField(_("approved or rejected"), null=True, blank=True)
    paid_at = models.DateTimeField(_("paid"), null=True, blank=True)
    failed_at = models.DateTimeField(_("failed"), null=True, blank=True)

    class Meta:
        verbose_name = _("withdrawal")
        verbose_name_plural = _("withdrawals")
        ordering = ("-requested_at", "-pk")
        constraints = [models.CheckConstraint(condition=Q(amount__gt=ZERO), name="payouts_withdrawal_positive")]
        indexes = [models.Index(fields=["member", "status"]), models.Index(fields=["status", "requested_at"])]

    def __str__(self) -> str:
        return f"withdrawal {self.pk}: {self.amount} ({self.status})"

    @property
    def withholding_or_none(self):
        """The tax withheld from this withdrawal (a TaxWithholding, void or not), or None if none was computed."""
        try:
            return self.withholding
        except ObjectDoesNotExist:
            return None

    @property
    def tax_withheld(self) -> Decimal:
        withholding = self.withholding_or_none
        if withholding is None or withholding.status != TaxWithholding.Status.WITHHELD:
            return ZERO
        return withholding.tax

    @property
    def net_amount(self) -> Decimal:
        """What the payee receives: the amount (gross) less the tax withheld from it (docs/tax.md)."""
        return self.amount - self.tax_withheld


class WithdrawalEvent(models.Model):
    withdrawal = models.ForeignKey(Withdrawal, on_delete=models.PROTECT, related_name="events")
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    actor_label = models.CharField(max_length=40, blank=True)
    from_status = models.CharField(max_length=12, blank=True)
    to_status = models.CharField(max_length=12)
    amount = MoneyField()
    reason = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name = _("withdrawal event")
        verbose_name_plural = _("withdrawal events")
        ordering = ("created_at", "pk")
        indexes = [models.Index(fields=["created_at"], name="payouts_withdrawalevent_time")]  # the audit log

    def __str__(self) -> str:
        return f"{self.withdrawal_id}: {self.from_status}→{self.to_status}"


class Transfer(models.Model):
    """A withdrawal's transfer at a payout rail: a WeChat Pay 商家转账 bill or an Alipay transfer order.

    At most one per withdrawal, recorded when the rail first answers for it. Its number at the rail (out_bill_no,
    out_biz_no) is the withdrawal's idempotency key, so a send repeated after a crash reaches the same transfer,
    never a second one. `state` is the rail's own word (WAIT_USER_CONFIRM, SUCCESS, FAIL …); the withdrawal
    becomes paid or failed when it is final (payouts.services).
    """

    class Rail(models.TextChoices):
        WECHAT = "wechat_transfer", _("WeChat Pay transfer")
        ALIPAY = "alipay_transfer", _("Alipay transfer")

    withdrawal = models.OneToOneField(Withdrawal, on_delete=models.PROTECT, related_name="transfer")
    rail = models.CharField(_("rail"), max_length=20, choices=Rail.choices)
    number = models.CharField(_("our number at the rail"), max_length=64, unique=True)
    state = models.CharField(_("state at the rail"), max_length=20)
    rail_reference = models.CharField(_("the rail's number"), max_length=64, blank=True)
    # WeChat Pay: what the payee's WeChat needs to show the confirmation page (requestMerchantTransfer's package).
    package_info = models.TextField(_("confirmation package"), blank=True)
    fail_reason = models.CharField(_("the rail's failure code"), max_length=100, blank=True)
    # WeChat Pay: the payee must confirm receipt before this; unconfirmed, the bill is closed and the money returns.
    confirm_by = models.DateTimeField(_("confirm by"), null=True, blank=True)
    created_at = models.DateTimeField(_("created"), default=timezone.now)
    updated_at = models.DateTimeField(_("updated"), default=timezone.now)

    class Meta:
        verbose_name = _("transfer")
        verbose_name_plural = _("transfers")
        ordering = ("-created_at", "-pk")
        indexes = [models.Index(fields=["rail", "state"], name="payouts_transfer_rail_state")]

    def __str__(self) -> str:
        return f"{self.rail} {self.number} ({self.state})"


class SandboxTransfer(models.Model):
    """The sandbox provider's own side: one row per idempotency key, i.e. per transfer actually made."""

    class Outcome(models.TextChoices):
        PAID = "paid", _("Paid")
        FAILED = "failed", _("Failed")

    idempotency_key = models.CharField(max_length=64, unique=True)
    amount = MoneyField()
    outcome = models.CharField(max_length=8, choices=Outcome.choices)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name = _("sandbox transfer")
        verbose_name_plural = _("sandbox transfers")

    def __str__(self) -> str:
        return self.idempotency_key


class WithholdingRule(models.Model):
    """One version of the income tax withholding rule (docs/tax.md); in force from `effective_from` once activated.

    Like commission plans: a rule is added as a draft, activated by staff (who and when recorded), and never edited
    or deleted after that; the activated rule with the latest `effective_from` not after a payout applies to it.
    With no activated rule, settings.TAX_WITHHOLDING_METHOD applies.
    """

    class Method(models.TextChoices):
        CUMULATIVE_2025 = "cumulative_2025", _("Cumulative withholding (STA 2025 No. 16)")
        CUMULATIVE_2025_RESTART = (
            "cumulative_2025_restart",
            _("Cumulative withholding (STA 2025 No. 16), restarted after a month without income"),
        )
        PER_PAYMENT_2018 = "per_payment_2018", _("Per payment, a month as one payment (STA 2018 No. 61)")
        NONE = "none", _("Nothing withheld")

    version = models.PositiveIntegerField(_("version"), unique=True)
    name = models.CharField(_("name"), max_length=80)
    method = models.CharField(_("method"), max_length=30, choices=Method.choices)
    source = models.TextField(_("legal source"), blank=True)
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
        verbose_name = _("withholding rule")
        verbose_name_plural = _("withholding rules")
        ordering = ("-version",)
        constraints = [
            models.CheckConstraint(
                condition=Q(is_activated=False) | Q(effective_from__isnull=False), name="payouts_rule_from"
            ),
        ]

    def __str__(self) -> str:
        return f"rule v{self.version} {self.name}"


class TaxWithholding(models.Model):
    """A withdrawal's entry in the payout ledger: gross (the withdrawal's amount), tax withheld, net paid.

    Written once per withdrawal when it is sent (the one-to-one key makes a payout run twice withhold once), under
    the payee's wallet lock; `gross = tax + net` is a database constraint. Voided if the withdrawal fails (the whole
    gross returns to the balance, and a voided entry counts in no later computation). The figures of the
    computation are kept so finance and the payee can follow it.
    """

    class Status(models.TextChoices):
        WITHHELD = "withheld", _("Withheld")
        VOID = "void", _("Void (payout failed)")

    withdrawal = models.OneToOneField(Withdrawal, on_delete=models.PROTECT, related_name="withholding")
    member = models.ForeignKey("referrals.Member", on_delete=models.PROTECT, related_name="tax_withholdings")
    rule = models.ForeignKey(WithholdingRule, on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    method = models.CharField(_("method"), max_length=30)
    status = models.CharField(_("status"), max_length=10, choices=Status.choices, default=Status.WITHHELD)
    paid_on = models.DateField(_("income date"))
    gross = MoneyField(_("gross"))
    tax = MoneyField(_("tax withheld"))
    net = MoneyField(_("net paid"))
    income = models.DecimalField(_("income taxed"), max_digits=18, decimal_places=4)
    expenses = models.DecimalField(_("expenses"), max_digits=18, decimal_places=4)
    deduction = MoneyField(_("basic deduction"))
    taxable = models.DecimalField(_("taxable income"), max_digits=18, decimal_places=4)
    rate = models.DecimalField(_("rate"), max_digits=5, decimal_places=4)
    quick_deduction = MoneyField(_("quick deduction"))
    tax_due = MoneyField(_("tax due"))
    withheld_before = MoneyField(_("withheld before"))
    created_at = models.DateTimeField(_("computed"), default=timezone.now)

    class Meta:
        verbose_name = _("tax withholding")
        verbose_name_plural = _("tax withholdings")
        ordering = ("-paid_on", "-pk")
        constraints = [
            models.CheckConstraint(condition=Q(gross=models.F("tax") + models.F("net")), name="payouts_tax_adds_up"),
            models.CheckConstraint(condition=Q(tax__gte=0) & Q(net__gte=0), name="payouts_tax_not_negative"),
        ]
        indexes = [models.Index(fields=["member", "paid_on"], name="payouts_tax_member_date")]

    def __str__(self) -> str:
        return f"tax on withdrawal {self.withdrawal_id}: {self.gross} = {self.tax} + {self.net}"
