from allauth.account.models import EmailAddress
from allauth.socialaccount.models import SocialApp, SocialToken
from django.contrib import admin, messages
from django.contrib.auth.admin import UserAdmin as BaseUserAdmin
from django.contrib.auth.forms import AdminUserCreationForm, UserChangeForm
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from accounts.models import ApiToken, User
from accounts.services import token_revoke
from core.admin_tools import ReadOnlyAdmin
from core.phones import PhoneNumberField


class UserAdminChangeForm(UserChangeForm):
    class Meta(UserChangeForm.Meta):
        model = User
        field_classes = {"phone": PhoneNumberField}  # stored in E.164 form


class UserAdminCreationForm(AdminUserCreationForm):
    class Meta(AdminUserCreationForm.Meta):
        model = User
        fields = ("email", "phone")
        field_classes = {"phone": PhoneNumberField}


@admin.register(User)
class UserAdmin(BaseUserAdmin):
    form = UserAdminChangeForm
    add_form = UserAdminCreationForm
    ordering = ("email",)
    list_display = ("email", "phone", "first_name", "is_staff", "is_active", "date_joined")
    search_fields = ("email", "phone", "first_name", "last_name")
    fieldsets = (
        (None, {"fields": ("email", "phone", "password")}),
        (_("Personal info"), {"fields": ("first_name", "last_name")}),
        (_("Permissions"), {"fields": ("is_active", "is_staff", "is_superuser", "groups", "user_permissions")}),
        (_("Important dates"), {"fields": ("last_login", "date_joined")}),
    )
    add_fieldsets = ((None, {"classes": ("wide",), "fields": ("email", "phone", "password1", "password2")}),)


class ApiTokenStateFilter(admin.SimpleListFilter):
    title = _("state")
    parameter_name = "state"

    def lookups(self, request, model_admin):
        return (("active", _("active")), ("revoked", _("revoked")))

    def queryset(self, request, queryset):
        if self.value() == "active":
            return queryset.filter(revoked_at__isnull=True)
        if self.value() == "revoked":
            return queryset.filter(revoked_at__isnull=False)
        return queryset


@admin.register(ApiToken)
class ApiTokenAdmin(ReadOnlyAdmin):
    """People's REST API keys. Only the prefix is ever shown: the key is never stored and its hash never leaves
    the database (not a column, a field, a filter or a search). People make keys themselves; staff may revoke."""

    list_display = ("prefix_display", "name", "user", "created_at", "last_used_at", "is_active_display", "revoked_at")
    list_display_links = ("prefix_display",)
    list_filter = (ApiTokenStateFilter, "created_at", "last_used_at")
    search_fields = ("user__email", "name", "=prefix")
    search_help_text = _("The owner's email, the token's name, or its exact prefix.")
    list_select_related = ("user",)
    list_per_page = 100
    show_full_result_count = False
    fields = ("user", "name", "prefix_display", "created_at", "last_used_at", "revoked_at")
    actions = ("revoke_tokens",)

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("user")

    @admin.display(description=_("key"), ordering="prefix")
    def prefix_display(self, token):
        return f"{token.prefix}…"

    @admin.display(description=_("active"), boolean=True, ordering="revoked_at")
    def is_active_display(self, token):
        return token.is_active

    @admin.action(description=_("Revoke (the key stops working at once)"), permissions=["change"])
    def revoke_tokens(self, request, queryset):
        revoked = 0
        for token in queryset.filter(revoked_at__isnull=True).order_by("pk"):
            token_revoke(user=token.user, token_id=token.pk)
            self.log_change(request, token, [{"changed": {"fields": ["revoked"]}}])  # who revoked it: the admin log
            revoked += 1
        self.message_user(
            request, ngettext("Revoked %d token.", "Revoked %d tokens.", revoked) % revoked, messages.SUCCESS
        )


# django-allauth registers its models in the admin. Only the WeChat bindings (SocialAccount) are of use to staff:
# WeChat's app credentials come from settings (SOCIALACCOUNT_PROVIDERS; a SocialApp row would be a second app and
# break the login), WeChat's tokens are not stored (SOCIALACCOUNT_STORE_TOKENS = False), and allauth's email
# addresses are not used (the email is the User's own column).
for model in (SocialApp, SocialToken, EmailAddress):
    if admin.site.is_registered(model):
        admin.site.unregister(model)
