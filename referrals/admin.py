from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.template.response import TemplateResponse
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext
from mptt.admin import MPTTModelAdmin

from core.admin_tools import ViewOnlyAdmin
from referrals.forms import MemberAddForm, MemberMoveForm
from referrals.models import Member, TreeEvent
from referrals.services import ReferralError, member_delete, member_join, member_move, member_set_status

# Deeper members are indented as much as this level (static/css/backoffice.css has a class per level).
MAX_INDENTED_LEVEL = 20


@admin.register(Member)
class MemberAdmin(MPTTModelAdmin):
    """Members indented by level. The sponsor changes only through the audited move action."""

    # django-mptt indents its column with a style attribute, which the Content Security Policy refuses: it is
    # pointed at a column not shown, and `indented` indents with a class from the back office's stylesheet.
    mptt_indent_field = "tree_id"
    list_display = ("indented", "status", "join_source", "joined_at", "level")
    list_filter = ("status", "join_source")
    search_fields = ("invite_code", "user__email", "user__phone", "user__first_name", "user__last_name")
    list_select_related = ("user",)
    raw_id_fields = ("user", "parent")
    readonly_fields = ("invite_code", "status", "join_source", "joined_at", "level", "tree_id", "lft", "rght")
    actions = ("move_members", "suspend_members", "reactivate_members", "delete_members")
    list_per_page = 50
    show_full_result_count = False

    class Media:
        css = {"all": ("css/backoffice.css",)}

    @admin.display(description=_("member"))
    def indented(self, obj):
        return format_html('<span class="tree-level-{}">{}</span>', min(obj.level, MAX_INDENTED_LEVEL), obj)

    def get_form(self, request, obj=None, **kwargs):
        if obj is None:
            kwargs["form"] = MemberAddForm
        return super().get_form(request, obj, **kwargs)

    def get_fields(self, request, obj=None):
        if obj is None:
            return ("user", "parent")
        return ("user", "parent", *self.readonly_fields)

    def get_readonly_fields(self, request, obj=None):
        if obj is None:
            return ()
        return ("user", "parent", *self.readonly_fields)

    def save_model(self, request, obj, form, change):
        if change:
            return  # nothing on the change form is editable; actions make every change
        member = member_join(
            user=form.cleaned_data["user"],
            sponsor=form.cleaned_data.get("parent"),
            source=Member.JoinSource.STAFF,
            actor=request.user,
            use_default_sponsor=False,
        )
        obj.pk = member.pk
        obj.invite_code = member.invite_code
        obj._state.adding = False

    def has_delete_permission(self, request, obj=None):
        return False  # the delete action goes through member_delete, which refuses members with a team

    def get_actions(self, request):
        actions = super().get_actions(request)
        if not request.user.has_perm("referrals.delete_member"):
            actions.pop("delete_members", None)
        if not request.user.has_perm("referrals.change_member"):
            for name in ("move_members", "suspend_members", "reactivate_members"):
                actions.pop(name, None)
        return actions

    @admin.action(description=_("Move to another sponsor (re-parent)"))
    def move_members(self, request, queryset):
        form = MemberMoveForm(request.POST if "apply" in request.POST else None)
        if form.is_valid():
            moved = 0
            for member in queryset.order_by("pk"):
                try:
                    member_move(
                        member=member,
                        new_sponsor=form.cleaned_data["new_sponsor_code"],
                        actor=request.user,
                        reason=form.cleaned_data["reason"],
                    )
                    moved += 1
                except ReferralError as error:
                    self.message_user(request, f"{member}: {' '.join(error.messages)}", messages.ERROR)
            if moved:
                self.message_user(
                    request, ngettext("Moved %d member.", "Moved %d members.", moved) % moved, messages.SUCCESS
                )
            return None
        context = {
            **self.admin_site.each_context(request),
            "title": _("Move members to another sponsor"),
            "opts": self.model._meta,
            "members": queryset,
            "form": form,
            "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
        }
        return TemplateResponse(request, "admin/referrals/member/move.html", context)

    def _set_status(self, request, queryset, status):
        changed = 0
        for member in queryset.order_by("pk"):
            if member.status == status:
                continue
            try:
                member_set_status(member=member, status=status, actor=request.user, reason="admin action")
                changed += 1
            except ReferralError as error:
                self.message_user(request, f"{member}: {' '.join(error.messages)}", messages.ERROR)
        self.message_user(request, _("Updated %(count)d member(s).") % {"count": changed}, messages.SUCCESS)

    @admin.action(description=_("Suspend"))
    def suspend_members(self, request, queryset):
        self._set_status(request, queryset, Member.Status.SUSPENDED)

    @admin.action(description=_("Reactivate"))
    def reactivate_members(self, request, queryset):
        self._set_status(request, queryset, Member.Status.ACTIVE)

    @admin.action(description=_("Delete members without a team"))
    def delete_members(self, request, queryset):
        deleted = 0
        for member in queryset.order_by("-level", "pk"):
            try:
                member_delete(member=member, actor=request.user, reason="admin action")
                deleted += 1
            except ReferralError as error:
                self.message_user(request, f"{member}: {' '.join(error.messages)}", messages.ERROR)
        if deleted:
            self.message_user(request, _("Deleted %(count)d member(s).") % {"count": deleted}, messages.SUCCESS)


@admin.register(TreeEvent)
class TreeEventAdmin(ViewOnlyAdmin):
    list_display = ("created_at", "kind", "member", "old_parent", "new_parent", "actor", "reason")
    list_filter = ("kind", "created_at")
    search_fields = ("member__invite_code", "actor__email", "reason")
    list_select_related = ("member__user", "old_parent__user", "new_parent__user", "actor")
    date_hierarchy = "created_at"
