"""The member's webhooks pages and the staff's admin screens: adding an endpoint (the secret shown once), bad input as
a form error (400, never a 500), the production URL rule, rotation, switching off and on, replay, and another member
answered with a 404 for every endpoint and delivery address, with nothing changed."""

import socket

import pytest
from django.contrib.auth import get_user_model
from django.urls import reverse

from members.webhooks.models import Delivery, DeliveryAttempt, Endpoint
from tests.factories import MemberFactory
from tests.webhooks.helpers import announce_commission, endpoint_for, the_delivery

pytestmark = pytest.mark.django_db

EVENTS = ["order.paid", "commission.created"]


@pytest.fixture
def member(client):
    member = MemberFactory()
    client.force_login(member.user)
    return member


def _add(client, url, events=EVENTS, **extra):
    return client.post(reverse("members:webhooks"), {"url": url, "event_types": events, **extra})


def test_the_dashboard_links_to_the_webhooks_page(client, member):
    page = client.get(reverse("members:dashboard")).content.decode()
    assert reverse("members:webhooks") in page


def test_adding_an_endpoint_shows_its_secret_once(client, member):
    response = _add(client, "http://127.0.0.1:9/hooks", description="ERP")
    endpoint = Endpoint.objects.get()
    assert response.status_code == 302 and response.url == reverse("members:webhook_endpoint", args=[endpoint.pk])
    assert (endpoint.owner, endpoint.event_types, endpoint.description) == (member, EVENTS, "ERP")
    first = client.get(response.url).content.decode()
    assert endpoint.secret in first
    second = client.get(response.url).content.decode()
    assert endpoint.secret not in second and endpoint.secret_hint in second
    listing = client.get(reverse("members:webhooks")).content.decode()
    assert "http://127.0.0.1:9/hooks" in listing and endpoint.secret not in listing


@pytest.mark.parametrize(
    ("url", "events", "message"),
    [
        ("not a url", EVENTS, "Enter a full URL starting with https://."),
        ("", EVENTS, "This field is required."),
        ("ftp://example.com/x", EVENTS, "Enter a full URL starting with https://."),
        ("https://user:pw@example.com/x", EVENTS, "must not contain a user name or password"),
        ("https://example.com/" + "x" * 600, EVENTS, "at most 500 characters"),
        ("https://example.com/x", [], "Choose at least one event."),
        ("https://example.com/x", ["order.shipped"], "Select a valid choice."),
    ],
)
def test_bad_input_is_a_form_error_and_nothing_is_saved(client, member, url, events, message):
    response = _add(client, url, events)
    assert response.status_code == 400
    assert message in response.content.decode()
    assert Endpoint.objects.count() == 0


def _public_dns(monkeypatch, address: str):
    def fake_getaddrinfo(host, port, *args, **kwargs):
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, port))]

    monkeypatch.setattr(socket, "getaddrinfo", fake_getaddrinfo)


@pytest.mark.parametrize(
    ("url", "address", "message"),
    [
        ("http://hooks.example.com/x", "93.184.216.34", "must start with https://"),
        ("https://hooks.example.com/x", "127.0.0.1", "private or internal address"),
        ("https://hooks.example.com/x", "10.1.2.3", "private or internal address"),
        ("https://hooks.example.com/x", "169.254.169.254", "private or internal address"),
        ("https://hooks.example.com/x", "192.168.0.5", "private or internal address"),
        ("https://[::1]/x", "::1", "private or internal address"),
    ],
)
def test_production_refuses_plain_http_and_internal_addresses(
    client, member, settings, monkeypatch, url, address, message
):
    settings.WEBHOOKS_ALLOW_PRIVATE_URLS = False
    _public_dns(monkeypatch, address)
    response = _add(client, url)
    assert response.status_code == 400
    assert message in response.content.decode()
    assert Endpoint.objects.count() == 0


def test_production_accepts_https_to_a_public_address(client, member, settings, monkeypatch):
    settings.WEBHOOKS_ALLOW_PRIVATE_URLS = False
    _public_dns(monkeypatch, "93.184.216.34")
    assert _add(client, "https://hooks.example.com/x").status_code == 302
    assert Endpoint.objects.get().url == "https://hooks.example.com/x"


def test_a_name_re_pointed_inside_is_refused_at_delivery(
    receiver, settings, monkeypatch, django_capture_on_commit_callbacks
):
    member = MemberFactory()
    endpoint = endpoint_for(member, receiver.url, receiver=receiver)  # saved while local addresses were allowed
    settings.WEBHOOKS_ALLOW_PRIVATE_URLS = False
    with django_capture_on_commit_callbacks(execute=True):
        announce_commission(member)
    assert receiver.received == []
    attempt = the_delivery(endpoint).attempts.get()
    assert attempt.status_code is None and "https://" in attempt.error


def test_the_member_limit(client, member, settings):
    settings.WEBHOOKS_MAX_ENDPOINTS = 1
    assert _add(client, "http://127.0.0.1:9/a").status_code == 302
    response = _add(client, "http://127.0.0.1:9/b")
    assert response.status_code == 400 and "at most 1 endpoints" in response.content.decode()


def test_changing_rotating_switching_and_deleting(client, member):
    endpoint = endpoint_for(member, "http://127.0.0.1:9/a")
    page = reverse("members:webhook_endpoint", args=[endpoint.pk])
    response = client.post(page, {"url": "http://127.0.0.1:9/b", "event_types": ["payout.paid"]})
    assert response.status_code == 302
    endpoint.refresh_from_db()
    assert (endpoint.url, endpoint.event_types) == ("http://127.0.0.1:9/b", ["payout.paid"])
    assert client.post(page, {"url": "nope", "event_types": ["payout.paid"]}).status_code == 400
    old = endpoint.secret
    client.post(reverse("members:webhook_rotate", args=[endpoint.pk]))
    endpoint.refresh_from_db()
    assert endpoint.secret != old and endpoint.previous_secret == old
    assert endpoint.secret in client.get(page).content.decode()
    client.post(reverse("members:webhook_toggle", args=[endpoint.pk]))
    endpoint.refresh_from_db()
    assert not endpoint.is_active
    client.post(reverse("members:webhook_toggle", args=[endpoint.pk]))
    endpoint.refresh_from_db()
    assert endpoint.is_active
    client.post(reverse("members:webhook_delete", args=[endpoint.pk]))
    assert not Endpoint.objects.exists()


def test_the_delivery_page_shows_attempts_and_replays(client, member, receiver, django_capture_on_commit_callbacks):
    receiver.status, receiver.body = 500, b"receiver says no"
    endpoint = endpoint_for(member, receiver.url, receiver=receiver)
    with django_capture_on_commit_callbacks(execute=True):
        announce_commission(member)
    delivery = the_delivery(endpoint)
    endpoint_page = client.get(reverse("members:webhook_endpoint", args=[endpoint.pk])).content.decode()
    assert f"delivery-{delivery.pk}" in endpoint_page and "commission.created" in endpoint_page
    page = client.get(reverse("members:webhook_delivery", args=[delivery.pk])).content.decode()
    assert "HTTP 500" in page and "receiver says no" in page and delivery.event.public_id in page
    receiver.status = 200
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(reverse("members:webhook_replay", args=[delivery.pk]))
    assert response.status_code == 302
    assert list(delivery.attempts.order_by("number").values_list("trigger", "status_code")) == [
        ("first", 500),
        ("replay", 200),
    ]


def test_replay_of_a_switched_off_endpoint_is_refused_with_a_message(
    client, member, django_capture_on_commit_callbacks
):
    from members.webhooks.services import endpoint_set_active

    endpoint = endpoint_for(member, "http://127.0.0.1:9/a")
    announce_commission(member)
    delivery = the_delivery(endpoint)
    endpoint_set_active(endpoint=endpoint, is_active=False)
    response = client.post(reverse("members:webhook_replay", args=[delivery.pk]), follow=True)
    assert response.status_code == 200
    assert "Switch the endpoint on before replaying" in response.content.decode()
    assert not DeliveryAttempt.objects.exists()


def test_another_member_gets_a_404_for_every_endpoint_and_delivery_address(client, django_capture_on_commit_callbacks):
    owner = MemberFactory()
    endpoint = endpoint_for(owner, "http://127.0.0.1:9/a")
    announce_commission(owner)
    delivery = the_delivery(endpoint)
    before = (
        list(Endpoint.objects.values_list("pk", "url", "secret", "is_active")),
        list(Delivery.objects.values_list("pk", "status", "next_attempt_at")),
    )
    client.force_login(MemberFactory().user)
    gets = [
        reverse("members:webhook_endpoint", args=[endpoint.pk]),
        reverse("members:webhook_delivery", args=[delivery.pk]),
    ]
    posts = [
        (
            reverse("members:webhook_endpoint", args=[endpoint.pk]),
            {"url": "http://127.0.0.1:9/x", "event_types": EVENTS},
        ),
        (reverse("members:webhook_rotate", args=[endpoint.pk]), {}),
        (reverse("members:webhook_toggle", args=[endpoint.pk]), {}),
        (reverse("members:webhook_delete", args=[endpoint.pk]), {}),
        (reverse("members:webhook_replay", args=[delivery.pk]), {}),
    ]
    for url in gets:
        assert client.get(url).status_code == 404, url
    for url, data in posts:
        assert client.post(url, data).status_code == 404, url
    listing = client.get(reverse("members:webhooks")).content.decode()
    assert "127.0.0.1:9/a" not in listing
    after = (
        list(Endpoint.objects.values_list("pk", "url", "secret", "is_active")),
        list(Delivery.objects.values_list("pk", "status", "next_attempt_at")),
    )
    assert after == before


def test_signed_out_visitors_are_sent_to_log_in(client):
    response = client.get(reverse("members:webhooks"))
    assert response.status_code == 302 and "login" in response.url


# --- Staff (admin) ---------------------------------------------------------------------------------------------


@pytest.fixture
def admin_client(client):
    user = get_user_model().objects.create_superuser(email="root@example.com", password="x-long-password-1")
    client.force_login(user)
    return client


def test_staff_add_an_endpoint_that_receives_everything_and_see_its_secret_once(admin_client):
    response = admin_client.post(
        reverse("admin:webhooks_endpoint_add"),
        {"url": "http://127.0.0.1:9/all", "description": "BI", "event_types": ["order.paid", "payout.paid"]},
        follow=True,
    )
    assert response.status_code == 200
    endpoint = Endpoint.objects.get()
    assert endpoint.owner is None and endpoint.event_types == ["order.paid", "payout.paid"]
    assert endpoint.secret in response.content.decode()
    change_page = admin_client.get(reverse("admin:webhooks_endpoint_change", args=[endpoint.pk])).content.decode()
    assert endpoint.secret not in change_page


def test_staff_bad_url_is_a_form_error(admin_client, settings):
    settings.WEBHOOKS_ALLOW_PRIVATE_URLS = False
    response = admin_client.post(
        reverse("admin:webhooks_endpoint_add"), {"url": "http://127.0.0.1/x", "event_types": ["order.paid"]}
    )
    assert response.status_code == 200 and "must start with https://" in response.content.decode()
    assert not Endpoint.objects.exists()


def test_staff_replay_action_and_delivery_page(admin_client, receiver, django_capture_on_commit_callbacks):
    member = MemberFactory()
    endpoint = endpoint_for(member, receiver.url, receiver=receiver)
    with django_capture_on_commit_callbacks(execute=True):
        announce_commission(member)
    delivery = the_delivery(endpoint)
    page = admin_client.get(reverse("admin:webhooks_delivery_change", args=[delivery.pk]))
    assert page.status_code == 200 and "{&quot;ok&quot;: true}" in page.content.decode()
    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(
            reverse("admin:webhooks_delivery_changelist"), {"action": "replay", "_selected_action": [delivery.pk]}
        )
    assert response.status_code == 302
    assert len(receiver.received) == 2
    assert delivery.attempts.count() == 2


def test_support_staff_see_deliveries_and_replay_but_do_not_add_endpoints(client, django_capture_on_commit_callbacks):
    from django.contrib.auth.models import Group
    from django.core.management import call_command

    from staff.groups import FINANCE, SUPPORT
    from tests.factories import UserFactory

    call_command("staff_groups", verbosity=0)
    member = MemberFactory()
    endpoint = endpoint_for(member, "http://127.0.0.1:9/a")
    announce_commission(member)
    delivery = the_delivery(endpoint)
    support = UserFactory(is_staff=True)
    support.groups.add(Group.objects.get(name=SUPPORT))
    client.force_login(support)
    assert client.get(reverse("admin:webhooks_delivery_changelist")).status_code == 200
    assert client.get(reverse("admin:webhooks_endpoint_changelist")).status_code == 200
    assert client.get(reverse("admin:webhooks_endpoint_add")).status_code == 403
    with django_capture_on_commit_callbacks(execute=True):
        client.post(
            reverse("admin:webhooks_delivery_changelist"), {"action": "replay", "_selected_action": [delivery.pk]}
        )
    assert delivery.attempts.count() == 1  # the replay's attempt (the first message never ran: no commit)
    finance = UserFactory(is_staff=True)
    finance.groups.add(Group.objects.get(name=FINANCE))
    client.force_login(finance)
    assert client.get(reverse("admin:webhooks_delivery_changelist")).status_code == 403


def test_the_lists_take_a_fixed_number_of_queries(client, member, django_assert_max_num_queries):
    endpoints = [endpoint_for(member, f"http://127.0.0.1:9/{n}") for n in range(3)]
    for _ in range(8):
        announce_commission(member)  # a delivery to each endpoint (not sent: the test's commit never comes)
    with django_assert_max_num_queries(6):
        assert client.get(reverse("members:webhooks")).status_code == 200
    with django_assert_max_num_queries(8):
        page = client.get(reverse("members:webhook_endpoint", args=[endpoints[0].pk]))
    assert page.content.decode().count('class="delivery"') == 8
