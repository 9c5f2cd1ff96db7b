"""The unread count in the site header for a signed-in member (templates/base.html)."""

from django.db.models import Count, OuterRef, Subquery
from django.db.models.functions import Coalesce

from members.notifications.models import Notification
from referrals.models import Member


def unread_notifications(request) -> dict:
    """`unread_notifications`: a callable, so a page that never shows the header costs nothing; one indexed query
    when it does (the member and their unread count together). None for visitors and users who are no member."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {}

    def count():
        unread = (
            Notification.objects.filter(member=OuterRef("pk"), read_at__isnull=True)
            .order_by()
            .values("member")
            .annotate(n=Count("pk"))
            .values("n")
        )
        return (
            Member.objects.filter(user_id=user.pk)
            .annotate(unread=Coalesce(Subquery(unread), 0))
            .values_list("unread", flat=True)
            .first()
        )

    return {"unread_notifications": count}
