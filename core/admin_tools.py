"""Admin building blocks shared by the apps."""

from django.contrib import admin
from django.contrib.admin.utils import flatten_fieldsets


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
