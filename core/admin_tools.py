"""Admin building blocks shared by the apps."""

import re
from urllib.parse import quote

from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.contrib.admin.utils import flatten_fieldsets
from django.http import HttpResponsePermanentRedirect
from django.template.response import TemplateResponse
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


class ChangedByActionsOnly:
    """For a ModelAdmin whose rows change only through its actions, which call services: the change permission
    gates the actions (obj is None there); a single row's page is view-only, so a POST to it is refused and nothing
    on it can be saved over a concurrent service."""

    def has_change_permission(self, request, obj=None):
        if obj is not None:
            return False
        return super().has_change_permission(request)


class ReadOnlyAdmin(ChangedByActionsOnly, admin.ModelAdmin):
    """Rows written only by services: viewable, never added, edited or deleted by hand (changed only by the admin
    actions, which call services)."""

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

    def has_delete_permission(self, request, obj=None):
        return False  # money, events and their audit trail are never deleted by hand


def action_input_page(
    model_admin,
    request,
    *,
    action,
    title,
    intro,
    objects,
    form,
    submit_label,
    multipart=False,
    template="admin/action_form.html",
    **extra,
):
    """The intermediate page of an admin action that needs input (a reason, a file): the chosen rows, the form, and
    the selection carried over as the changelist sent it, so "select all N" still means all N on the second POST
    (which carries `apply`). `extra` goes into the template's context (`autocomplete_off`, what a result page
    shows)."""
    context = {
        **model_admin.admin_site.each_context(request),
        "title": title,
        "intro": intro,
        "opts": model_admin.opts,
        "objects": objects,
        "form": form,
        "action": action,
        "submit_label": submit_label,
        "multipart": multipart,
        "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
        "selected": request.POST.getlist(helpers.ACTION_CHECKBOX_NAME),
        "select_across": request.POST.get("select_across") == "1",
        **extra,
    }
    return TemplateResponse(request, template, context, status=400 if form is not None and form.errors else 200)


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


class ViewOnlyAdmin(admin.ModelAdmin):
    """An audit trail: its rows are shown as Django shows them, and nobody adds, changes or deletes one here."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


def for_each_row(model_admin, request, rows, service, success_message, *, refusal: type[Exception]) -> int:
    """An admin action's work: `service(row)` for every row of `rows`; a `refusal` the service raises is reported for
    its row (its messages) and the other rows go on. One success message (`success_message(count)`) counts the rows
    done; returns that count."""
    done = 0
    for row in rows:
        try:
            service(row)
            done += 1
        except refusal as error:
            model_admin.message_user(request, f"{row}: {' '.join(error.messages)}", messages.ERROR)
    if done:
        model_admin.message_user(request, success_message(done), messages.SUCCESS)
    return done
