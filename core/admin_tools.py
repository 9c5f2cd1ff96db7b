"""Admin building blocks shared by the apps."""

import re
from urllib.parse import quote

from django.contrib import admin
from django.contrib.admin.utils import flatten_fieldsets
from django.http import HttpResponsePermanentRedirect
from django.urls import re_path, reverse


class ReadOnlyInline(admin.TabularInline):
    """An inline that only shows rows written by services; visible to whoever may see the parent object.

    Set `parent_permissions` to the permissions that let a user see the parent (any one is enough).
    """

    extra = 0
    max_num = 0
    can_delete = False
    parent_permissions: tuple[str, ...] = ()

    def get_readonly_fields(self, request, obj=None):
        return self.fields

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def has_view_permission(self, request, obj=None):
        return any(request.user.has_perm(permission) for permission in self.parent_permissions)


class ReadOnlyAdmin(admin.ModelAdmin):
    """Rows written only by services: viewable, never added, edited or deleted by hand.

    The change permission gates the admin actions only (obj is None there), and every action calls a service; a
    single row's page is view-only, so nothing on it can be saved over a concurrent service.
    """

    def get_fields(self, request, obj=None):
        if self.fields:
            return list(self.fields)
        if self.fieldsets:
            return flatten_fieldsets(self.fieldsets)
        # Every column but the automatic id (the default would build a form, which asks for the read-only fields).
        return [field.name for field in self.opts.fields if not field.auto_created]

    def get_readonly_fields(self, request, obj=None):
        return list(self.get_fields(request, obj))

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        if obj is not None:
            return False
        return super().has_change_permission(request)

    def has_delete_permission(self, request, obj=None):
        return False  # money, events and their audit trail are never deleted by hand


def admin_moved_model_urls(moves: dict[str, tuple[str, ...]]) -> list:
    """URL patterns (to include under the admin prefix, before the admin's own) that keep the addresses of admin
    pages working after their models moved to another app: `/admin/<old app>/<model>/<rest>` answers a 301 to
    the same page under the model's new app label, query string kept.

    `moves` maps "<old app label>:<new app label>" to the model names (lower case) that moved.
    """
    patterns = []
    for labels, models in moves.items():
        old_label, new_label = labels.split(":")
        patterns.append(
            re_path(
                rf"^{re.escape(old_label)}/(?P<model>{'|'.join(map(re.escape, models))})/(?P<rest>.*)$",
                _admin_moved_model_redirect,
                {"app_label": new_label},
            )
        )
    return patterns


def _admin_moved_model_redirect(request, app_label: str, model: str, rest: str) -> HttpResponsePermanentRedirect:
    url = f"{reverse('admin:index')}{app_label}/{model}/{quote(rest)}"
    query = request.META.get("QUERY_STRING", "")
    return HttpResponsePermanentRedirect(f"{url}?{query}" if query else url)
