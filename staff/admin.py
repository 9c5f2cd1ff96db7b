"""The back office's own rows in the admin. BackOffice is not registered: it has no table, only permissions."""

from django.contrib import admin

from core.admin_tools import ReadOnlyAdmin
from staff.models import JobRun


@admin.register(JobRun)
class JobRunAdmin(ReadOnlyAdmin):
    """When each periodic job last finished, as the jobs record it (the overview flags the late ones)."""

    list_display = ("name", "last_finished_at", "last_result")
    search_fields = ("name",)
    ordering = ("name",)
    fields = ("name", "last_finished_at", "last_result")

    def has_change_permission(self, request, obj=None):
        return False  # no actions: nothing here is changed by hand
