"""Notifications' reads: a member's inbox and unread count."""

from django.db.models import QuerySet

from members.notifications.models import Notification, NotificationSettings


def member_notifications(member) -> QuerySet:
    """The member's inbox, newest first (only theirs: anybody else's notification is not in it)."""
    return Notification.objects.filter(member=member).order_by("-created_at", "-pk")


def member_unread_count(member) -> int:
    return Notification.objects.filter(member=member, read_at__isnull=True).count()


def member_notification_settings(member) -> NotificationSettings | None:
    return NotificationSettings.objects.filter(member=member).first()
