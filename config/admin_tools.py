"""Admin building blocks shared by the apps."""

from django.contrib import admin


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
