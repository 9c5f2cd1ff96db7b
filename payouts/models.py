"""Payout accounts, withdrawals and payout batches (SPEC §8).

A member's balance is derived from the commission ledger minus withdrawals, never stored: see
payouts.selectors.member_balance. `MemberWallet` is only the row that is locked whenever money leaves.
"""

import uuid
from decimal import Decimal

from django.conf import settings
from django.core.exceptions import ObjectDoesNotExist
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from core.money import ZERO, MoneyField
from payouts.storage import private_storage


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

    class PayeeKind(models.TextChoices):
        INDIVIDUAL = "individual", _("Individual")
        BUSINESS = "business", _("Business")

    member = models.ForeignKey("referrals.Member", on_delete=models.PROTECT, related_name="withdrawals")
    amount = MoneyField(_("amount"))
    status = models.CharField(_("status"), max_length=12, choices=Status.choices, default=Status.REQUESTED)
    account = models.JSONField(_("payout account at request time"))
    batch = models.ForeignKey(PayoutBatch, on_delete=models.PROTECT, null=True, blank=True, related_name="withdrawals")
    idempotency_key = models.CharField(_("idempotency key"), max_length=64, unique=True)
    provider_reference = models.CharField(_("provider reference"), max_length=100, blank=True)
    reason = models.TextField(_("reason (rejection or failure)"), blank=True)
    # Who is paid, as the member's identity said when the withdrawal was requested (docs/tax.md, "Business payees"):
    # a business is paid against an accepted invoice, with no individual income tax withheld.
    payee_kind = models.CharField(
        _("payee"), max_length=12, choices=PayeeKind.choices, default=PayeeKind.INDIVIDUAL, editable=False
    )
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

    @property
    def is_business(self) -> bool:
        return self.payee_kind == self.PayeeKind.BUSINESS

    @property
    def current_invoice(self):
        """The invoice that covers this withdrawal (submitted or accepted), else the latest rejected one, else None.
        Reads `invoices` (prefetch it when listing)."""
        invoices = sorted(self.invoices.all(), key=lambda invoice: invoice.pk, reverse=True)
        live = [invoice for invoice in invoices if invoice.status != Invoice.Status.REJECTED]
        return (live or invoices or [None])[0]


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
    # A business payee's payout (method business_invoice): the accepted invoice it was paid against.
    invoice = models.ForeignKey(
        "payouts.Invoice", on_delete=models.PROTECT, null=True, blank=True, related_name="+", verbose_name=_("invoice")
    )
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


def invoice_upload_to(invoice, filename: str) -> str:
    """A name of our own (the member's file name is kept apart, never in a path): invoices/2026/12/<random>.pdf."""
    extension = {"pdf": "pdf", "ofd": "ofd", "jpeg": "jpg", "png": "png"}.get(invoice.file_type, "bin")
    return f"invoices/{timezone.now():%Y/%m}/{uuid.uuid4().hex}.{extension}"


class Invoice(models.Model):
    """A business payee's invoice (发票) to the platform for one withdrawal (docs/tax.md, "Business payees").

    Uploaded by the member after the request and accepted by finance before the withdrawal may be approved (先票后款).
    A withdrawal has at most one invoice that is submitted or accepted; a rejected one stays (with its file, for the
    record) and the member uploads another. Numbers: a fully digital invoice (数电发票) has a 20-digit number and no
    code; an older one a 10- or 12-digit code (发票代码) and an 8-digit number. The amount (价税合计) is the
    withdrawal's gross. The file is in the private storage (payouts.storage), read only through checked views.
    Every change writes an InvoiceEvent.
    """

    class Status(models.TextChoices):
        SUBMITTED = "submitted", _("Submitted, awaiting review")
        ACCEPTED = "accepted", _("Accepted")
        REJECTED = "rejected", _("Rejected")

    class FileType(models.TextChoices):
        PDF = "pdf", "PDF"
        OFD = "ofd", "OFD"
        JPEG = "jpeg", "JPEG"
        PNG = "png", "PNG"

    withdrawal = models.ForeignKey(Withdrawal, on_delete=models.PROTECT, related_name="invoices")
    member = models.ForeignKey("referrals.Member", on_delete=models.PROTECT, related_name="invoices")
    invoice_code = models.CharField(_("invoice code (发票代码)"), max_length=12, blank=True)
    invoice_number = models.CharField(_("invoice number (发票号码)"), max_length=20)
    issued_on = models.DateField(_("issue date"))
    amount = MoneyField(_("amount (价税合计)"))
    # What the invoice must name, as it stood at upload: the seller (the member's business) and the buyer (us).
    seller_name = models.CharField(_("seller"), max_length=100)
    seller_tax_id = models.CharField(_("seller's credit code"), max_length=18)
    buyer_name = models.CharField(_("buyer"), max_length=100, blank=True)
    buyer_tax_id = models.CharField(_("buyer's taxpayer ID"), max_length=20, blank=True)
    file = models.FileField(_("file"), storage=private_storage, upload_to=invoice_upload_to, max_length=200)
    file_type = models.CharField(_("file type"), max_length=4, choices=FileType.choices)
    file_name = models.CharField(_("file name as uploaded"), max_length=120, blank=True)
    file_size = models.PositiveIntegerField(_("file size (bytes)"))
    status = models.CharField(_("status"), max_length=10, choices=Status.choices, default=Status.SUBMITTED)
    review_reason = models.TextField(_("reason (rejection)"), blank=True)
    submitted_at = models.DateTimeField(_("submitted"), default=timezone.now)
    reviewed_at = models.DateTimeField(_("reviewed"), null=True, blank=True)
    reviewed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("reviewed by"),
    )

    class Meta:
        verbose_name = _("invoice")
        verbose_name_plural = _("invoices")
        ordering = ("-submitted_at", "-pk")
        constraints = [
            # One live invoice per withdrawal; one invoice (code + number) covers one withdrawal.
            models.UniqueConstraint(
                fields=["withdrawal"], condition=~Q(status="rejected"), name="payouts_invoice_one_live_per_withdrawal"
            ),
            models.UniqueConstraint(
                fields=["invoice_code", "invoice_number"],
                condition=~Q(status="rejected"),
                name="payouts_invoice_number_once",
            ),
            models.CheckConstraint(condition=Q(amount__gt=ZERO), name="payouts_invoice_positive"),
        ]
        indexes = [models.Index(fields=["status", "submitted_at"], name="payouts_invoice_review")]

    def __str__(self) -> str:
        return f"invoice {self.display_number} (withdrawal {self.withdrawal_id})"

    @property
    def display_number(self) -> str:
        return f"{self.invoice_code} {self.invoice_number}" if self.invoice_code else self.invoice_number


class InvoiceEvent(models.Model):
    """Every change to an invoice, in the same transaction (the staff audit log reads these)."""

    invoice = models.ForeignKey(Invoice, on_delete=models.PROTECT, related_name="events")
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    actor_label = models.CharField(max_length=40, blank=True)
    from_status = models.CharField(max_length=10, blank=True)
    to_status = models.CharField(max_length=10)
    reason = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name = _("invoice event")
        verbose_name_plural = _("invoice events")
        ordering = ("created_at", "pk")
        indexes = [models.Index(fields=["created_at"], name="payouts_invoiceevent_time")]

    def __str__(self) -> str:
        return f"invoice {self.invoice_id}: {self.from_status or '—'}→{self.to_status}"


class BalanceAdjustment(models.Model):
    """A staff adjustment of a member's balance: finance credits (positive) or debits (negative) it, with a note
    the member reads and an internal note only staff read (docs/balance.md, "Staff adjustments").

    Its own table, not a `CommissionEntry` kind: a commission entry is commission on a sale (every row has one
    source, an order line or a network's line, and the compliance checks add them up per line), and the
    commission ledger's ADJUSTMENT kind is a network's change of such a sale. A staff adjustment moves the balance
    itself, like a withdrawal in the other direction, so it sits beside withdrawals and is counted by the one
    balance read model (`payouts.selectors.member_balance`), the statement and `check_ledger`.

    Written once by `payouts.adjustments.balance_adjustment_apply`, under the member's wallet lock, never edited or
    deleted. Above FOUR_EYES_THRESHOLD it is applied only when a second finance user approves the request
    (`approval`); the one who asked never approves (also a database constraint). `idempotency_key` makes a form
    sent twice, or an approval decided twice, apply once.
    """

    # The four eyes action (accounts/approvals.py) of an adjustment that needs a second person.
    APPROVAL_ACTION = "payouts.balance_adjust"

    member = models.ForeignKey("referrals.Member", on_delete=models.PROTECT, related_name="balance_adjustments")
    amount = MoneyField(_("amount"), help_text=_("Positive: a credit to the member; negative: a debit."))
    member_note = models.CharField(_("note for the member"), max_length=200)
    internal_note = models.TextField(_("internal note"))
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+", verbose_name=_("entered by")
    )
    approved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("second approval by"),
    )
    approval = models.OneToOneField(
        "accounts.ApprovalRequest",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("approval request"),
    )
    idempotency_key = models.CharField(_("idempotency key"), max_length=64, unique=True)
    created_at = models.DateTimeField(_("applied"), default=timezone.now)

    class Meta:
        verbose_name = _("balance adjustment")
        verbose_name_plural = _("balance adjustments")
        ordering = ("-created_at", "-pk")
        constraints = [
            models.CheckConstraint(condition=~Q(amount=ZERO), name="payouts_adjustment_not_zero"),
            models.CheckConstraint(
                condition=Q(approved_by__isnull=True) | ~Q(approved_by=models.F("requested_by")),
                name="payouts_adjustment_two_people",
            ),
        ]
        indexes = [
            models.Index(fields=["member", "created_at"], name="payouts_adjustment_member"),
            models.Index(fields=["created_at"], name="payouts_adjustment_time"),  # the audit log
        ]

    def __str__(self) -> str:
        return f"adjustment {self.pk}: {self.amount:+} to member {self.member_id}"
