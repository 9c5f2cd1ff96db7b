"""The back office's own rows: the permissions of its cross-app pages, and when each periodic job last ran.

The back office owns no business data. Its pages (audit log, overview) read each app's event tables through
that app's selectors; the permissions below are what the staff groups grant.
"""

from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


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
