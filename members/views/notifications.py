"""The member's notifications (/dashboard/notifications/): the inbox, marking read, and the channels per event.

Everything is looked up through the member of the logged-in user: another member's notification is a 404."""

from django.contrib import messages
from django.core.paginator import Paginator
from django.http import Http404
from django.shortcuts import redirect, render
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import get_language
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from members.decorators import member_required
from members.forms import NotificationSettingsForm
from members.notifications.messages import notifications_in_language
from members.notifications.selectors import member_notification_settings, member_notifications, member_unread_count
from members.notifications.services import notification_mark_read, notification_settings_save

PER_PAGE = 20


@member_required(suspended_may_read=True)
@require_GET
def inbox(request):
    member = request.member
    page = Paginator(member_notifications(member).select_related("source"), PER_PAGE).get_page(request.GET.get("page"))
    notifications_in_language(page.object_list, get_language())
    return render(
        request,
        "members/notifications.html",
        {"page": page, "notifications": page.object_list, "unread": member_unread_count(member)},
    )


@member_required(suspended_may_read=True)
@require_POST
def mark_read(request, notification_id: int):
    """Mark one notification read and go to what it is about (its link), or back to the inbox."""
    member = request.member
    notification = member_notifications(member).filter(pk=notification_id).first()
    if notification is None:
        raise Http404(_("Notification not found."))
    notification_mark_read(member=member, notification_id=notification.pk)
    target = notification.url if request.POST.get("open") else ""
    if target and url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}):
        return redirect(target)
    return redirect("members:notifications")


@member_required(suspended_may_read=True)
@require_POST
def mark_all_read(request):
    changed = notification_mark_read(member=request.member)
    if changed:
        messages.success(request, _("All notifications marked read."))
    return redirect("members:notifications")


@member_required(suspended_may_read=True)
@require_http_methods(["GET", "POST"])
def notification_settings(request):
    member = request.member
    form = NotificationSettingsForm(request.POST or None, current=member_notification_settings(member))
    if request.method == "POST" and form.is_valid():
        notification_settings_save(member=member, channels=form.channels(), language=form.cleaned_data["language"])
        messages.success(request, _("Your notification settings are saved."))
        return redirect("members:notification_settings")
    return render(
        request,
        "members/notification_settings.html",
        {"form": form, "rows": form.rows()},
        status=400 if form.errors else 200,
    )
