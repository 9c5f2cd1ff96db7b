"""The unread count in the site header for a signed-in member (templates/base.html)."""

from notifications.models import Notification


def unread_notifications(request) -> dict:
    """`unread_notifications`: a callable, so a page that never shows the header costs no query; one indexed count
    when it does. None for visitors and users without a membership."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {}

    def count():
        member_id = getattr(getattr(user, "member", None), "pk", None)
        if member_id is None:
            return None
        return Notification.objects.filter(member_id=member_id, read_at__isnull=True).count()

    return {"unread_notifications": count}
