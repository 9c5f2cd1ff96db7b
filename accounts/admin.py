from allauth.account.models import EmailAddress
from allauth.socialaccount.models import SocialApp, SocialToken
from django import forms
from django.contrib import admin, messages
from django.contrib.auth.admin import UserAdmin as BaseUserAdmin
from django.contrib.auth.forms import AdminUserCreationForm, UserChangeForm
from django.http import Http404, HttpResponseRedirect
from django.urls import path, reverse
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from accounts.approvals import (
    ApprovalError,
    approval_action,
    approval_actions,
    approval_cancel,
    approval_decide,
    approvals_visible_to,
)
from accounts.forms import ApprovalDecisionForm
from accounts.identity import (
    IdentityError,
    identity_change,
    identity_masked,
    identity_reveal,
    identity_set_individual,
    identity_set_status,
    identity_verify,
)
from accounts.models import ApiToken, ApprovalRequest, Identity, IdentityEvent, User
from accounts.services import token_revoke
from core.admin_tools import ReadOnlyAdmin, ReadOnlyInline, action_input_page, for_each_row
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


# --- Identities (issue #24, docs/privacy.md) ----------------------------------------------------------------------

REVEAL_MAX = 20  # full values of at most this many people per reveal: a look-up, not an export


class ReasonForm(forms.Form):
    reason = forms.CharField(
        label=_("Reason"),
        max_length=500,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text=_("Recorded in the audit log with your name."),
    )


class IdentityChangeForm(ReasonForm):
    id_type = forms.ChoiceField(label=_("ID type"), choices=Identity.IdType.choices)
    legal_name = forms.CharField(label=_("Legal name"), max_length=60)
    id_number = forms.CharField(label=_("ID number"), max_length=40)
    field_order = ("id_type", "legal_name", "id_number", "reason")


class IdentityEventInline(ReadOnlyInline):
    model = IdentityEvent
    fields = ("created_at", "kind", "from_status", "to_status", "actor", "actor_label", "reason", "detail")
    parent_permissions = ("accounts.view_identity",)


@admin.register(Identity)
class IdentityAdmin(ReadOnlyAdmin):
    """Members' identities, masked. Finance staff holding `accounts.view_full_identity` may reveal the full values
    (with a reason, audited); staff with `accounts.change_identity` correct an identity or set its status, with a
    reason. Not searchable by name or number: a search that matches would tell who someone is."""

    list_display = ("user", "id_type", "masked_name", "masked_number", "status", "payee_kind", "updated_at")
    list_filter = ("status", "id_type", "payee_kind")
    search_fields = ("user__email", "user__phone", "=credit_code")
    list_select_related = ("user",)
    list_per_page = 50
    show_full_result_count = False
    fields = (
        "user",
        "id_type",
        "masked_name",
        "masked_number",
        "status",
        "status_reason",
        "verified_at",
        "verification_reference",
        "payee_kind",
        "company_name",
        "credit_code",
        "created_at",
        "updated_at",
    )
    inlines = (IdentityEventInline,)
    actions = (
        "reveal_identities",
        "change_identity",
        "verify_again",
        "mark_verified",
        "mark_failed",
        "set_individual",
    )

    @admin.display(description=_("legal name"))
    def masked_name(self, identity):
        return identity_masked(identity).name

    @admin.display(description=_("ID number"))
    def masked_number(self, identity):
        return identity_masked(identity).number

    def has_view_full_permission(self, request) -> bool:
        return request.user.has_perm("accounts.view_full_identity")

    def _page(
        self, request, *, action, title, intro, queryset, form, submit_label, template="admin/action_form.html", **extra
    ):
        return action_input_page(
            self,
            request,
            action=action,
            title=title,
            intro=intro,
            objects=[str(identity) for identity in queryset[:REVEAL_MAX]],
            form=form,
            submit_label=submit_label,
            template=template,
            autocomplete_off=True,
            **extra,
        )

    @admin.action(description=_("Reveal full name and ID number (audited)…"), permissions=["view_full"])
    def reveal_identities(self, request, queryset):
        form = ReasonForm(request.POST if "apply" in request.POST else None)
        rows = list(queryset.select_related("user").order_by("pk")[: REVEAL_MAX + 1])
        if len(rows) > REVEAL_MAX:
            self.message_user(
                request, _("Reveal at most %(n)d identities at a time.") % {"n": REVEAL_MAX}, messages.ERROR
            )
            return None
        if form.is_valid():
            revealed = []
            for identity in rows:
                name, number = identity_reveal(
                    identity=identity, actor=request.user, reason=form.cleaned_data["reason"]
                )
                revealed.append({"identity": identity, "name": name, "number": number})
            response = self._page(
                request,
                action="reveal_identities",
                title=_("Identities revealed"),
                intro=_("Each read below is recorded in the audit log."),
                queryset=queryset,
                form=None,
                submit_label="",
                template="admin/accounts/identity_revealed.html",
                revealed=revealed,
            )
            response["Cache-Control"] = "no-store"
            return response
        return self._page(
            request,
            action="reveal_identities",
            title=_("Reveal identities"),
            intro=_("Say why you need the full legal name and ID number. Each read is recorded."),
            queryset=queryset,
            form=form,
            submit_label=_("Reveal"),
        )

    @admin.action(description=_("Change identity (with a reason)…"), permissions=["change"])
    def change_identity(self, request, queryset):
        if queryset.count() != 1:
            self.message_user(request, _("Choose exactly one identity to change."), messages.ERROR)
            return None
        identity = queryset.get()
        form = IdentityChangeForm(request.POST if "apply" in request.POST else None)
        if form.is_valid():
            try:
                identity = identity_change(identity=identity, actor=request.user, **form.cleaned_data)
            except IdentityError as error:
                for name, errors in (
                    error.message_dict.items() if hasattr(error, "error_dict") else [(None, error.messages)]
                ):
                    form.add_error(name if name in form.fields else None, errors)
            else:
                self.message_user(
                    request,
                    _("Identity changed; it is now: %(status)s.") % {"status": identity.get_status_display()},
                    messages.SUCCESS,
                )
                return None
        return self._page(
            request,
            action="change_identity",
            title=_("Change identity"),
            intro=_(
                "The new values replace the old ones and are verified again. The member is not "
                "asked; give the reason (a ticket, the document seen)."
            ),
            queryset=queryset,
            form=form,
            submit_label=_("Change"),
        )

    @admin.action(description=_("Verify again with the provider"), permissions=["change"])
    def verify_again(self, request, queryset):
        for identity in queryset.order_by("pk"):
            identity_verify(identity=identity, actor=request.user)
        self.message_user(request, _("Verification asked again."), messages.SUCCESS)

    def _set_status(self, request, queryset, *, status, action, title, submit_label):
        form = ReasonForm(request.POST if "apply" in request.POST else None)
        if form.is_valid():
            for_each_row(
                self,
                request,
                queryset.order_by("pk"),
                lambda identity: identity_set_status(
                    identity=identity, actor=request.user, status=status, reason=form.cleaned_data["reason"]
                ),
                lambda count: ngettext("%d identity updated.", "%d identities updated.", count) % count,
                refusal=IdentityError,
            )
            return None
        return self._page(
            request,
            action=action,
            title=title,
            intro=_("Give the reason (the document you checked)."),
            queryset=queryset,
            form=form,
            submit_label=submit_label,
        )

    @admin.action(description=_("Mark verified (document checked)…"), permissions=["change"])
    def mark_verified(self, request, queryset):
        return self._set_status(
            request,
            queryset,
            status=Identity.Status.VERIFIED,
            action="mark_verified",
            title=_("Mark identities verified"),
            submit_label=_("Mark verified"),
        )

    @admin.action(description=_("Mark verification failed…"), permissions=["change"])
    def mark_failed(self, request, queryset):
        return self._set_status(
            request,
            queryset,
            status=Identity.Status.FAILED,
            action="mark_failed",
            title=_("Mark verification failed"),
            submit_label=_("Mark failed"),
        )

    @admin.action(description=_("Set back to an individual payee (with a reason)…"), permissions=["change"])
    def set_individual(self, request, queryset):
        """A business payee back to an individual (docs/tax.md, "Business payees"); the member cannot do it."""
        form = ReasonForm(request.POST if "apply" in request.POST else None)
        if form.is_valid():
            for_each_row(
                self,
                request,
                queryset.order_by("pk"),
                lambda identity: identity_set_individual(
                    identity=identity, actor=request.user, reason=form.cleaned_data["reason"]
                ),
                lambda count: ngettext("%d identity updated.", "%d identities updated.", count) % count,
                refusal=IdentityError,
            )
            return None
        return self._page(
            request,
            action="set_individual",
            title=_("Set back to an individual payee"),
            intro=_(
                "From now on individual income tax is withheld from this person's payouts. Withdrawals already "
                "requested as a business still need their invoice. Give the reason (a ticket, the deregistration)."
            ),
            queryset=queryset,
            form=form,
            submit_label=_("Set back to individual"),
        )


# django-allauth registers its models in the admin. Only the WeChat bindings (SocialAccount) are of use to staff:
# WeChat's app credentials come from settings (SOCIALACCOUNT_PROVIDERS; a SocialApp row would be a second app and
# break the login), WeChat's tokens are not stored (SOCIALACCOUNT_STORE_TOKENS = False), and allauth's email
# addresses are not used (the email is the User's own column).
for model in (SocialApp, SocialToken, EmailAddress):
    if admin.site.is_registered(model):
        admin.site.unregister(model)


# --- Four eyes: the approval queue (accounts/approvals.py) ------------------------------------------------------


def _decides_any(user) -> bool:
    """Whether `user` may decide (or ask for) any change that needs two people."""
    return user.is_active and user.is_staff and any(user.has_perm(a.permission) for a in approval_actions())


@admin.register(ApprovalRequest)
class ApprovalRequestAdmin(ReadOnlyAdmin):
    """Changes waiting for a second person. Each staff member sees the requests of the changes they may make (and
    their own); they approve or refuse others' requests and withdraw their own. Nothing is edited by hand."""

    list_display = ("requested_at", "action_label", "target_label", "summary", "amount", "requested_by", "status",
                    "decided_by", "decided_at")  # fmt: skip
    list_filter = ("status", "action")
    search_fields = ("target_label", "summary", "requested_by__email", "decided_by__email")
    fields = ("action_label", "target_type", "target_id", "target_label", "summary", "amount", "reason",
              "requested_by", "requested_at", "status", "decided_by", "decided_at", "decision_note",
              "outcome")  # fmt: skip
    actions = ("approve_selected", "refuse_selected", "withdraw_selected")
    change_form_template = "admin/accounts/approvalrequest/change_form.html"

    def has_module_permission(self, request):
        return _decides_any(request.user)

    def has_view_permission(self, request, obj=None):
        return _decides_any(request.user)

    def has_change_permission(self, request, obj=None):
        return obj is None and _decides_any(request.user)  # the actions; a row's page is view-only

    def get_queryset(self, request):
        return approvals_visible_to(request.user)

    @admin.display(description=_("change"))
    def action_label(self, approval):
        action = approval_action(approval.action)
        return action.label if action else approval.action

    def get_urls(self):
        decide = path(
            "<int:request_id>/decide/",
            self.admin_site.admin_view(self.decide_view),
            name="accounts_approvalrequest_decide",
        )
        return [decide, *super().get_urls()]

    def change_view(self, request, object_id, form_url="", extra_context=None):
        approval = self.get_object(request, object_id)
        extra_context = {
            **(extra_context or {}),
            "decision_form": ApprovalDecisionForm(),
            "may_decide": approval is not None
            and approval.status == ApprovalRequest.Status.PENDING
            and approval.requested_by_id != request.user.pk,
            "may_withdraw": approval is not None
            and approval.status == ApprovalRequest.Status.PENDING
            and approval.requested_by_id == request.user.pk,
        }
        return super().change_view(request, object_id, form_url, extra_context)

    def decide_view(self, request, request_id: int):
        """POST from a request's page: approve, refuse (with a note) or withdraw one's own."""
        approval = self.get_queryset(request).filter(pk=request_id).first()
        if approval is None:
            raise Http404(_("No such request."))
        if request.method != "POST":
            return HttpResponseRedirect(reverse("admin:accounts_approvalrequest_change", args=[approval.pk]))
        form = ApprovalDecisionForm(request.POST)
        form.is_valid()
        note = form.cleaned_data.get("note", "")
        try:
            if "withdraw" in request.POST:
                approval_cancel(request=approval, actor=request.user)
                self.message_user(request, _("Request withdrawn."), messages.SUCCESS)
            else:
                decided = approval_decide(
                    request=approval, approver=request.user, approve="approve" in request.POST, note=note
                )
                self.message_user(request, _decided_message(decided), _decided_level(decided))
        except ApprovalError as error:
            self.message_user(request, " ".join(error.messages), messages.ERROR)
        return HttpResponseRedirect(reverse("admin:accounts_approvalrequest_change", args=[approval.pk]))

    @admin.action(description=_("Approve the selected requests (the changes are done now)"), permissions=["change"])
    def approve_selected(self, request, queryset):
        for approval in queryset.order_by("pk"):
            try:
                decided = approval_decide(request=approval, approver=request.user, approve=True)
            except ApprovalError as error:
                self.message_user(request, f"{approval.summary}: {' '.join(error.messages)}", messages.ERROR)
            else:
                self.message_user(request, _decided_message(decided), _decided_level(decided))

    @admin.action(description=_("Refuse the selected requests…"), permissions=["change"])
    def refuse_selected(self, request, queryset):
        form = ApprovalDecisionForm(request.POST if "apply" in request.POST else None)
        if "apply" in request.POST and form.is_valid():
            for_each_row(
                self,
                request,
                queryset.order_by("pk"),
                lambda approval: approval_decide(
                    request=approval, approver=request.user, approve=False, note=form.cleaned_data["note"]
                ),
                lambda n: ngettext("%(n)d request refused.", "%(n)d requests refused.", n) % {"n": n},
                refusal=ApprovalError,
            )
            return None
        return action_input_page(
            self,
            request,
            action="refuse_selected",
            title=_("Refuse changes"),
            intro=_("The requester reads your note. Nothing is changed."),
            objects=list(queryset[:50]),
            form=form,
            submit_label=_("Refuse"),
        )

    @admin.action(description=_("Withdraw my selected requests"), permissions=["change"])
    def withdraw_selected(self, request, queryset):
        for_each_row(
            self,
            request,
            queryset.order_by("pk"),
            lambda approval: approval_cancel(request=approval, actor=request.user),
            lambda n: ngettext("%(n)d request withdrawn.", "%(n)d requests withdrawn.", n) % {"n": n},
            refusal=ApprovalError,
        )


def _decided_message(decided: ApprovalRequest) -> str:
    if decided.status == ApprovalRequest.Status.APPROVED:
        return _("Approved: %(outcome)s") % {"outcome": decided.outcome}
    if decided.status == ApprovalRequest.Status.FAILED:
        return _("Approved, but the change was refused: %(outcome)s") % {"outcome": decided.outcome}
    return _("Refused: %(summary)s") % {"summary": decided.summary}


def _decided_level(decided: ApprovalRequest) -> int:
    return messages.WARNING if decided.status == ApprovalRequest.Status.FAILED else messages.SUCCESS
