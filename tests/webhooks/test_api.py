"""The member API of webhooks (/api/v1/webhooks/): create (the secret in that answer only), read, change, rotate,
delete, deliveries with their attempts, replay; bad input a 400 in the one error shape; another member a 404."""

import pytest
from rest_framework.test import APIClient

from members.webhooks.models import Endpoint
from tests.api.conftest import bearer
from tests.factories import MemberFactory
from tests.webhooks.helpers import announce_commission, endpoint_for, the_delivery

pytestmark = pytest.mark.django_db

BASE = "/api/v1/webhooks/"


@pytest.fixture
def member():
    return MemberFactory()


@pytest.fixture
def api(member):
    client = APIClient()
    client.credentials(**{"HTTP_AUTHORIZATION": bearer(member)["HTTP_AUTHORIZATION"]})
    return client


def test_create_then_list_and_read_without_the_secret(api, member):
    response = api.post(
        BASE + "create/", {"url": "http://127.0.0.1:9/x", "event_types": ["payout.paid"]}, format="json"
    )
    assert response.status_code == 201
    endpoint = Endpoint.objects.get()
    assert response.json()["secret"] == endpoint.secret and endpoint.owner == member
    listed = api.get(BASE).json()
    assert [row["id"] for row in listed["results"]] == [endpoint.pk]
    assert "secret" not in listed["results"][0]
    detail = api.get(f"{BASE}{endpoint.pk}/").json()
    assert "secret" not in detail and detail["secret_hint"] == endpoint.secret_hint


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"url": "not a url", "event_types": ["payout.paid"]}, "url"),
        ({"url": "http://127.0.0.1:9/x", "event_types": []}, "event_types"),
        ({"url": "http://127.0.0.1:9/x", "event_types": ["nope"]}, "event_types"),
        ({"event_types": ["payout.paid"]}, "url"),
        ({"url": ["a", "b"], "event_types": "payout.paid"}, "url"),
    ],
)
def test_bad_input_is_a_400_naming_the_field(api, body, field):
    response = api.post(BASE + "create/", body, format="json")
    assert response.status_code == 400
    assert field in response.json()["fields"]
    assert not Endpoint.objects.exists()


def test_production_url_rule_is_a_400(api, settings):
    settings.WEBHOOKS_ALLOW_PRIVATE_URLS = False
    response = api.post(BASE + "create/", {"url": "https://127.0.0.1/x", "event_types": ["order.paid"]}, format="json")
    assert response.status_code == 400 and "private or internal" in response.json()["fields"]["url"][0]


def test_change_switch_rotate_and_delete(api, member):
    endpoint = endpoint_for(member, "http://127.0.0.1:9/x")
    response = api.patch(f"{BASE}{endpoint.pk}/", {"event_types": ["order.paid"], "is_active": False}, format="json")
    assert response.status_code == 200
    assert (response.json()["event_types"], response.json()["is_active"]) == (["order.paid"], False)
    assert api.patch(f"{BASE}{endpoint.pk}/", {"url": "nope"}, format="json").status_code == 400
    old = endpoint.secret
    rotated = api.post(f"{BASE}{endpoint.pk}/rotate-secret/").json()
    endpoint.refresh_from_db()
    assert rotated["secret"] == endpoint.secret != old
    assert api.delete(f"{BASE}{endpoint.pk}/").status_code == 204
    assert not Endpoint.objects.exists()


def test_deliveries_with_attempts_and_replay(api, member, receiver, django_capture_on_commit_callbacks):
    endpoint = endpoint_for(member, receiver.url, receiver=receiver)
    with django_capture_on_commit_callbacks(execute=True):
        announce_commission(member)
    rows = api.get(f"{BASE}{endpoint.pk}/deliveries/").json()
    assert [(row["event_type"], row["status"], len(row["attempts"])) for row in rows] == [
        ("commission.created", "delivered", 1)
    ]
    with django_capture_on_commit_callbacks(execute=True):
        response = api.post(f"{BASE}deliveries/{rows[0]['id']}/replay/")
    assert response.status_code == 202
    assert len(receiver.received) == 2
    assert [attempt["trigger"] for attempt in api.get(f"{BASE}{endpoint.pk}/deliveries/").json()[0]["attempts"]] == [
        "replay",
        "first",
    ]


def test_another_member_gets_404_and_nothing_changes(member):
    endpoint = endpoint_for(member, "http://127.0.0.1:9/x")
    announce_commission(member)
    delivery = the_delivery(endpoint)
    before = list(Endpoint.objects.values_list("url", "secret", "is_active", "event_types"))
    intruder = APIClient()
    intruder.credentials(**{"HTTP_AUTHORIZATION": bearer(MemberFactory())["HTTP_AUTHORIZATION"]})
    assert intruder.get(BASE).json()["results"] == []
    assert intruder.get(f"{BASE}{endpoint.pk}/").status_code == 404
    assert intruder.patch(f"{BASE}{endpoint.pk}/", {"is_active": False}, format="json").status_code == 404
    assert intruder.post(f"{BASE}{endpoint.pk}/rotate-secret/").status_code == 404
    assert intruder.get(f"{BASE}{endpoint.pk}/deliveries/").status_code == 404
    assert intruder.post(f"{BASE}deliveries/{delivery.pk}/replay/").status_code == 404
    assert intruder.delete(f"{BASE}{endpoint.pk}/").status_code == 404
    assert list(Endpoint.objects.values_list("url", "secret", "is_active", "event_types")) == before
    assert the_delivery(endpoint).attempt_count == 0


def test_signed_out_is_401():
    assert APIClient().get(BASE).status_code == 401
