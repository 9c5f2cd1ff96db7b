"""The member's inbox, the unread count in the header, marking read, and the channel settings page."""

import pytest
from django.urls import reverse

from members.notifications.models import Event, Notification, NotificationSettings
from members.notifications.services import notifications_fan_out, notify
from tests.factories import PASSWORD, MemberFactory

pytestmark = pytest.mark.django_db


def _told(member, n: int = 1) -> list[Notification]:
    for i in range(n):
        notify(
            key=f"test:{member.pk}:{i}",
            event=Event.COMMISSION_AVAILABLE,
            member=member,
            context={"amount": "12.50", "url": reverse("members:commission_entries")},
        )
    notifications_fan_out()
    return list(Notification.objects.filter(member=member).order_by("pk"))


@pytest.fixture
def member_client(client):
    member = MemberFactory()
    client.login(email=member.user.email, password=PASSWORD)
    client.member = member
    return client


def test_the_header_shows_the_unread_count_and_the_inbox_lists_them(member_client, django_assert_max_num_queries):
    _told(member_client.member, 3)
    with django_assert_max_num_queries(12):
        page = member_client.get(reverse("members:notifications"))
    html = page.content.decode()
    assert page.status_code == 200
    assert '<span class="unread-count"' in html and ">3</span>" in html
    assert html.count("¥12.50 commission is available") == 3


def test_marking_read_lowers_the_count_and_opens_the_link(member_client):
    first, second = _told(member_client.member, 2)
    response = member_client.post(reverse("members:notification_read", args=[first.pk]), {"open": "1"})
    assert response.status_code == 302 and response["Location"] == reverse("members:commission_entries")
    first.refresh_from_db()
    assert first.read_at is not None
    html = member_client.get(reverse("members:dashboard")).content.decode()
    assert ">1</span>" in html
    member_client.post(reverse("members:notifications_read_all"))
    assert not Notification.objects.filter(member=member_client.member, read_at__isnull=True).exists()
    html = member_client.get(reverse("members:dashboard")).content.decode()
    assert "unread-count" not in html and reverse("members:notifications") in html


def test_another_members_notification_is_a_404_and_stays_unread(member_client):
    other = MemberFactory()
    [theirs] = _told(other)
    response = member_client.post(reverse("members:notification_read", args=[theirs.pk]))
    assert response.status_code == 404
    theirs.refresh_from_db()
    assert theirs.read_at is None
    assert theirs.title not in member_client.get(reverse("members:notifications")).content.decode()
    member_client.post(reverse("members:notifications_read_all"))
    theirs.refresh_from_db()
    assert theirs.read_at is None


def test_a_visitor_is_sent_to_log_in(client):
    assert client.get(reverse("members:notifications")).status_code == 302
    assert "unread-count" not in client.get("/").content.decode()


def test_the_settings_page_saves_channels_per_event_and_the_language(member_client):
    url = reverse("members:notification_settings")
    page = member_client.get(url)
    assert page.status_code == 200
    assert page.context["form"]["commission_pending__inbox"].value() is True  # the defaults: inbox and email
    assert page.context["form"]["commission_pending__sms"].value() is False
    response = member_client.post(
        url, {"commission_pending__sms": "on", "withdrawal_paid__email": "on", "language": "zh-hans"}
    )
    assert response.status_code == 302
    chosen = NotificationSettings.objects.get(member=member_client.member)
    assert chosen.language == "zh-hans"
    assert chosen.channels[Event.COMMISSION_PENDING] == ["sms"]
    assert chosen.channels[Event.WITHDRAWAL_PAID] == ["email"]
    assert chosen.channels[Event.COMMISSION_AVAILABLE] == []


def test_a_bad_language_is_a_form_error_not_a_500(member_client):
    response = member_client.post(reverse("members:notification_settings"), {"language": "xx"})
    assert response.status_code == 400
    assert not NotificationSettings.objects.filter(member=member_client.member).exists()


def test_the_dashboard_links_the_inbox_and_the_settings(member_client):
    html = member_client.get(reverse("members:dashboard")).content.decode()
    assert reverse("members:notifications") in html and reverse("members:notification_settings") in html


def test_the_inbox_speaks_the_pages_language_whatever_the_message_was_sent_in(member_client):
    # given: a message sent in English (the member's default language)
    [sent] = _told(member_client.member)
    assert sent.title == "¥12.50 commission is available"

    # when: the member reads the inbox in Chinese
    chinese = member_client.get(reverse("members:notifications"), HTTP_ACCEPT_LANGUAGE="zh-hans").content.decode()
    english = member_client.get(reverse("members:notifications"), HTTP_ACCEPT_LANGUAGE="en").content.decode()

    # then: the page shows it in Chinese, and what was sent is kept as sent
    assert "¥12.50 commission is available" not in chinese and "¥12.50" in chinese
    assert "¥12.50 commission is available" in english
    sent.refresh_from_db()
    assert sent.title == "¥12.50 commission is available"
