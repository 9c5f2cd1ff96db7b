"""The back office's own rows: the permissions of its cross-app pages, when each periodic job last ran, and what
the daily reconciliation against the providers' bills found.

The back office owns no business data. Its pages (audit log, overview) read each app's event tables through
that app's selectors; the permissions below are what the staff groups grant. A reconciliation only reports: it
changes payments, refunds and transfers solely through their own apps' services (a repair is a query).
"""

from django.conf import settings
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


class GeneratedFile(models.Model):
    """A file the back office generates in a Celery task and keeps for download (staff/file_jobs.py): the tax reports
    and the evidence packs. The run takes a lease on the row (`attempts` is the run's number and its pieces' key),
    and only a run that still holds it when done swaps its pieces in (`generation`). Staff see the status and, when
    it failed, why."""

    class Status(models.TextChoices):
        QUEUED = "queued", _("Waiting for a worker")
        RUNNING = "running", _("Generating")
        DONE = "done", _("Done")
        FAILED = "failed", _("Failed")

    status = models.CharField(_("status"), max_length=10, choices=Status.choices, default=Status.QUEUED)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("asked by"),
    )
    requested_at = models.DateTimeField(_("asked at"), default=timezone.now)
    started_at = models.DateTimeField(_("started"), null=True, blank=True)
    finished_at = models.DateTimeField(_("finished"), null=True, blank=True)
    attempts = models.PositiveIntegerField(_("runs started"), default=0)  # the run's lease, and its files' key
    generation = models.PositiveIntegerField(_("run whose files are kept"), default=0)
    rows_done = models.PositiveIntegerField(_("rows written"), default=0)  # the progress: done of total
    rows_total = models.PositiveIntegerField(_("rows to write"), default=0)
    error = models.TextField(_("error"), blank=True)

    class Meta:
        abstract = True

    @property
    def progress_percent(self) -> int:
        if self.status == self.Status.DONE:
            return 100
        if not self.rows_total:
            return 0
        return min(100, self.rows_done * 100 // self.rows_total)


class TaxReport(GeneratedFile):
    """A tax report of one period for filing (docs/tax.md, "The quarterly report"): the quarterly report of
    国务院令第810号 (every earner's identity and income) or the monthly withholding summary. Generated by a Celery
    task (staff.tax_reports) into an XLSX and a CSV file, stored encrypted (`TaxReportPiece`), with the check of
    the report against the payout ledger. One row per kind and period: generating it again replaces the files and
    the check; the record of every run and download stays in `TaxReportEvent`."""

    class Kind(models.TextChoices):
        QUARTERLY = "quarterly_810", _("Quarterly income report (State Council Decree 810)")
        MONTHLY = "monthly_withholding", _("Monthly withholding summary")

    kind = models.CharField(_("report"), max_length=20, choices=Kind.choices)
    period_start = models.DateField(_("period from"))
    period_end = models.DateField(_("period to (inclusive)"))
    check_result = models.JSONField(_("check"), default=dict, blank=True)
    is_check_passed = models.BooleanField(_("check passed"), null=True, blank=True)
    xlsx_sha256 = models.CharField(_("XLSX SHA-256"), max_length=64, blank=True)
    csv_sha256 = models.CharField(_("CSV SHA-256"), max_length=64, blank=True)

    class Meta:
        verbose_name = _("tax report")
        verbose_name_plural = _("tax reports")
        ordering = ("-period_start", "kind")
        permissions = [("download_taxreport", _("Can download tax reports with full ID numbers (audited)"))]
        constraints = [
            models.UniqueConstraint(fields=["kind", "period_start"], name="staff_taxreport_one_per_period"),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.period_label}"

    @property
    def period_label(self) -> str:
        if self.kind == self.Kind.QUARTERLY:
            return f"{self.period_start.year}Q{(self.period_start.month - 1) // 3 + 1}"
        return f"{self.period_start:%Y-%m}"


class TaxReportPiece(models.Model):
    """A piece (at most a few MB) of a tax report's file, encrypted with the identity keys (core.encryption): the
    files hold full ID numbers. `generation` is the run that wrote it; only the report's kept run is served."""

    class Format(models.TextChoices):
        XLSX = "xlsx", "XLSX"
        CSV = "csv", "CSV"

    report = models.ForeignKey(TaxReport, on_delete=models.CASCADE, related_name="pieces")
    generation = models.PositiveIntegerField()
    format = models.CharField(max_length=4, choices=Format.choices)
    number = models.PositiveIntegerField()
    data = models.BinaryField()

    class Meta:
        verbose_name = _("tax report piece")
        verbose_name_plural = _("tax report pieces")
        constraints = [
            models.UniqueConstraint(
                fields=["report", "generation", "format", "number"], name="staff_taxreportpiece_once"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.report_id}/{self.generation} {self.format} #{self.number}"


class GeneratedFileEvent(models.Model):
    """What happened to a generated file: asked for, generated (its checksums), failed, and each download (who).
    The audit log reads these; `detail` never holds a name or an ID number."""

    class Kind(models.TextChoices):
        REQUESTED = "requested", _("asked for")
        GENERATED = "generated", _("generated")
        FAILED = "failed", _("failed")
        DOWNLOADED = "downloaded", _("downloaded")

    kind = models.CharField(max_length=12, choices=Kind.choices)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    detail = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        abstract = True
        ordering = ("created_at", "pk")
        indexes = [models.Index(fields=["created_at"], name="%(app_label)s_%(class)s_time")]


class TaxReportEvent(GeneratedFileEvent):
    """What happened to a tax report: asked for, generated (its figures and the files' SHA-256), failed, and each
    download (who, which file)."""

    report = models.ForeignKey(TaxReport, on_delete=models.PROTECT, related_name="events")

    class Meta(GeneratedFileEvent.Meta):
        verbose_name = _("tax report event")
        verbose_name_plural = _("tax report events")

    def __str__(self) -> str:
        return f"{self.report_id}: {self.kind}"


class EvidencePack(GeneratedFile):
    """The evidence pack of one period for a regulator or an auditor (docs/compliance.md, "The evidence pack"): a ZIP
    with the compliance report, every plan and policy version with who asked for and who approved it, the audit log
    of the period, the tree's statistics and the fraud actions, and a SHA-256 manifest of its files. Generated by a
    Celery task (staff.evidence), stored encrypted in pieces (`EvidencePackPiece`). One row per period: generating
    it again replaces the file; every run (with its manifest's checksum) and every download stays in
    `EvidencePackEvent`."""

    period_start = models.DateField(_("period from"))
    period_end = models.DateField(_("period to (inclusive)"))
    rows_done = models.PositiveIntegerField(_("parts written"), default=0)
    rows_total = models.PositiveIntegerField(_("parts to write"), default=0)
    step = models.CharField(_("writing now"), max_length=60, blank=True)
    audit_rows = models.PositiveIntegerField(_("audit log rows"), default=0)
    manifest_sha256 = models.CharField(
        _("SHA-256 of MANIFEST.sha256"),
        max_length=64,
        blank=True,
        help_text=_("Give it to the recipient separately: it proves the manifest, which proves every file."),
    )
    zip_sha256 = models.CharField(_("SHA-256 of the ZIP"), max_length=64, blank=True)
    zip_size = models.PositiveBigIntegerField(_("size of the ZIP (bytes)"), default=0)

    class Meta:
        verbose_name = _("evidence pack")
        verbose_name_plural = _("evidence packs")
        ordering = ("-period_end", "-period_start")
        default_permissions = ("add", "view")
        permissions = [("download_evidencepack", _("Can download evidence packs (audited)"))]
        constraints = [
            models.UniqueConstraint(fields=["period_start", "period_end"], name="staff_evidencepack_one_per_period"),
            models.CheckConstraint(
                condition=models.Q(period_start__lte=models.F("period_end")), name="staff_evidencepack_period"
            ),
        ]

    def __str__(self) -> str:
        return f"evidence pack {self.period_label}"

    @property
    def period_label(self) -> str:
        return f"{self.period_start.isoformat()}..{self.period_end.isoformat()}"


class EvidencePackPiece(models.Model):
    """A piece (at most a few MB) of an evidence pack's ZIP, encrypted (core.encryption): the pack names staff and
    quotes the audit log. `generation` is the run that wrote it; only the pack's kept run is served."""

    pack = models.ForeignKey(EvidencePack, on_delete=models.CASCADE, related_name="pieces")
    generation = models.PositiveIntegerField()
    number = models.PositiveIntegerField()
    data = models.BinaryField()

    class Meta:
        verbose_name = _("evidence pack piece")
        verbose_name_plural = _("evidence pack pieces")
        constraints = [
            models.UniqueConstraint(fields=["pack", "generation", "number"], name="staff_evidencepackpiece_once"),
        ]

    def __str__(self) -> str:
        return f"{self.pack_id}/{self.generation} #{self.number}"


class EvidencePackEvent(GeneratedFileEvent):
    """What happened to an evidence pack: asked for, generated (the manifest's and the ZIP's SHA-256), failed, and
    each download (who, which run)."""

    pack = models.ForeignKey(EvidencePack, on_delete=models.PROTECT, related_name="events")

    class Meta(GeneratedFileEvent.Meta):
        verbose_name = _("evidence pack event")
        verbose_name_plural = _("evidence pack events")

    def __str__(self) -> str:
        return f"{self.pack_id}: {self.kind}"
