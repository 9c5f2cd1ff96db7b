"""The back office's own rows in the admin, and the admin list of plan simulations (whose pages are staff's).

BackOffice is not registered: it has no table, only permissions.
"""

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.http import Http404
from django.shortcuts import redirect
from django.urls import reverse
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _

from commissions.models import PlanSimulation
from core.admin_tools import ReadOnlyAdmin
from staff.models import JobRun
from staff.simulator import ADD_PERMISSION


@admin.register(JobRun)
class JobRunAdmin(ReadOnlyAdmin):
    """When each periodic job last finished, as staff.jobs records it (the overview flags the late ones)."""

    list_display = ("name", "last_finished_at", "last_result")
    search_fields = ("name",)
    ordering = ("name",)
    fields = ("name", "last_finished_at", "last_result")

    def has_change_permission(self, request, obj=None):
        return False  # no actions: nothing here is changed by hand


# --- The plan simulations' admin list (at /admin/commissions/plansimulation/): it opens the simulator's pages ---


@admin.register(PlanSimulation)
class PlanSimulationAdmin(admin.ModelAdmin):
    """Read-only: a simulation is created on its own page and never edited; add and open go to those pages."""

    list_display = ("name_link", "status", "progress", "date_from", "date_to", "created_by", "created_at")
    list_filter = ("status",)
    list_select_related = ("created_by",)
    list_display_links = None
    list_per_page = 50

    @admin.display(description=_("name"), ordering="name")
    def name_link(self, obj: PlanSimulation):
        return format_html('<a href="{}">{}</a>', reverse("staff:simulation_detail", args=[obj.pk]), obj)

    @admin.display(description=_("progress"))
    def progress(self, obj: PlanSimulation) -> str:
        return f"{obj.progress_percent} %"

    def has_add_permission(self, request):
        return request.user.has_perm(ADD_PERMISSION)

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def add_view(self, request, form_url="", extra_context=None):
        return redirect("staff:simulation_create")

    def change_view(self, request, object_id, form_url="", extra_context=None):
        if not self.has_view_permission(request):
            raise PermissionDenied
        if not str(object_id).isdigit():
            raise Http404
        return redirect("staff:simulation_detail", pk=int(object_id))
