"""The absolute addresses a member hands out: their invite link and their share links (pages and API alike)."""

from django.urls import reverse

from core.site_url import absolute_url
from referrals.models import Member
from shops.models import ShareLink


def invite_url(member: Member) -> str:
    """The join page under `member` as sponsor."""
    return absolute_url(reverse("members:join_with_code", args=[member.invite_code]))


def share_link_url(link: ShareLink) -> str:
    """/l/<code>: the redirect that counts the click and sets the attribution cookie."""
    return absolute_url(reverse("share_link", args=[link.code]))
