"""The back office's own rows: the permissions of its cross-app pages, when each periodic job last ran, and what
the daily reconciliation against the providers' bills found.

The back office owns no business data. Its pages (audit log, overview) read each app's event tables through
that app's selectors; the permissions below are what the staff groups grant. A reconciliation only reports: it
changes payments, refunds and transfers solely through their own apps' services (a repair is a query).
"""

from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from core.money import MoneyField


class BackOffice(models.Model):
    """No table: a holder for the permissions of pages that belong to no single model."""

    class Meta:
        managed = False
        default_permissions = ()
        permissions = [
            ("view_audit_log", _("Can view and export the audit log")),
            ("view_staff_overview", _("Can view the staff overview")),
        ]

    def __str__(self) -> str:
        return "back office"


class JobRun(models.Model):
    """The last run of one periodic job (release, click flush, sweep …), for the overview's health figures."""

    name = models.CharField(_("job"), max_length=60, primary_key=True)
    last_finished_at = models.DateTimeField(_("last finished"), default=timezone.now)
    last_result = models.CharField(_("last result"), max_length=200, blank=True)

    class Meta:
        verbose_name = _("job run")
        verbose_name_plural = _("job runs")

    def __str__(self) -> str:
        return f"{self.name} at {self.last_finished_at:%Y-%m-%d %H:%M}"


class ReconciliationRun(models.Model):
    """One provider's bills of one day compared with our payments, refunds and transfers (staff.reconciliation).
    Run again, it replaces its open differences; the ones staff resolved stay."""

    class Status(models.TextChoices):
        MATCHED = "matched", _("Everything matches")
        DIFFERENCES = "differences", _("Differences found")
        FAILED = "failed", _("Could not run")

    provider = models.CharField(_("provider"), max_length=20)
    bill_date = models.DateField(_("bill date"))
    status = models.CharField(_("status"), max_length=12, choices=Status.choices)
    started_at = models.DateTimeField(_("started"), default=timezone.now)
    finished_at = models.DateTimeField(_("finished"), null=True, blank=True)
    lines_on_bill = models.PositiveIntegerField(_("lines on the bill"), default=0)
    records_checked = models.PositiveIntegerField(_("our records checked"), default=0)
    error = models.TextField(_("why it could not run"), blank=True)

    class Meta:
        verbose_name = _("reconciliation run")
        verbose_name_plural = _("reconciliation runs")
        ordering = ("-bill_date", "provider")
        constraints = [
            models.UniqueConstraint(fields=["provider", "bill_date"], name="staff_reconciliation_one_run_a_day"),
        ]

    def __str__(self) -> str:
        return f"{self.provider} {self.bill_date}"


class ReconciliationDifference(models.Model):
    """Something our records and a provider's bill do not agree on."""

    class Kind(models.TextChoices):
        MISSING_HERE = "missing_here", _("On the provider's bill, not in our records")
        MISSING_THERE = "missing_there", _("In our records, not on the provider's bill")
        AMOUNT = "amount", _("Amounts differ")
        STATUS = "status", _("Statuses differ")

    class Subject(models.TextChoices):
        PAYMENT = "payment", _("Payment")
        REFUND = "refund", _("Refund")
        TRANSFER = "transfer", _("Transfer (payout)")

    run = models.ForeignKey(ReconciliationRun, on_delete=models.CASCADE, related_name="differences")
    kind = models.CharField(_("difference"), max_length=16, choices=Kind.choices)
    subject = models.CharField(_("what"), max_length=10, choices=Subject.choices)
    reference = models.CharField(_("number at the provider"), max_length=64)
    our_amount = MoneyField(_("our amount"), null=True, blank=True)
    their_amount = MoneyField(_("amount on the bill"), null=True, blank=True)
    our_status = models.CharField(_("our status"), max_length=30, blank=True)
    their_status = models.CharField(_("status on the bill"), max_length=30, blank=True)
    # The query that repaired our record (a notification that never came), and its outcome.
    repair = models.CharField(_("repair"), max_length=200, blank=True)
    resolved_at = models.DateTimeField(_("resolved"), null=True, blank=True)
    resolution = models.TextField(_("how it was resolved"), blank=True)
    created_at = models.DateTimeField(_("found"), default=timezone.now)

    class Meta:
        verbose_name = _("reconciliation difference")
        verbose_name_plural = _("reconciliation differences")
        ordering = ("-run__bill_date", "run__provider", "subject", "reference")
        constraints = [
            models.UniqueConstraint(
                fields=["run", "subject", "reference", "kind"], name="staff_reconciliation_difference_once"
            ),
        ]
        indexes = [models.Index(fields=["resolved_at"], name="staff_recon_difference_open")]

    def __str__(self) -> str:
        return f"{self.get_subject_display()} {self.reference}: {self.get_kind_display()}"

    @property
    def is_open(self) -> bool:
        return self.resolved_at is None
