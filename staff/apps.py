from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class StaffConfig(AppConfig):
    name = "staff"
    verbose_name = _("Back office")

    def ready(self) -> None:
        from staff.jobs import job_records_connect  # not at import: staff.jobs reads the models

        job_records_connect()
