"""Delivering events to a real HTTP receiver on localhost that checks every signature: what is sent, the retry
schedule on errors, timeouts and refused connections, one send per delivery however often the task runs, replay,
and an endpoint switched off after failing for days."""

from datetime import timedelta

import pytest
from django.core import mail
from django.utils import timezone

from commissions.models import CommissionEntry
from commissions.signals import commission_entries_changed
from members.webhooks.models import Delivery, DeliveryAttempt, Event
from members.webhooks.services import (
    EXCERPT_CHARS,
    delivery_attempt,
    delivery_replay,
    endpoint_rotate_secret,
    webhook_events_record,
)
from members.webhooks.signing import signature_verify
from members.webhooks.tasks import webhook_delivery_attempt_task
from tests.factories import MemberFactory
from tests.webhooks.helpers import announce_commission, endpoint_for, the_delivery

pytestmark = pytest.mark.django_db

SCHEDULE = [60, 300, 1800, 7200, 43200]


@pytest.fixture(autouse=True)
def _settings(settings):
    settings.WEBHOOKS_RETRY_SCHEDULE = SCHEDULE
    settings.WEBHOOKS_READ_TIMEOUT = 0.5


def test_an_event_arrives_signed_with_its_id_type_and_data(receiver, django_capture_on_commit_callbacks):
    # given
    member = MemberFactory()
    endpoint = endpoint_for(member, receiver.url, receiver=receiver)
    # when
    with django_capture_on_commit_callbacks(execute=True):
        entry = announce_commission(member, "3.20")
    # then
    assert len(receiver.received) == 1
    request = receiver.received[0]
    assert request.verified
    event = Event.objects.get()
    assert request.payload == {
        "id": event.public_id,
        "type": "commission.created",
        "created": int(event.created_at.timestamp()),
        "data": event.data,
    }
    assert request.payload["data"]["commission"]["id"] == entry.pk
    assert request.payload["data"]["commission"]["amount"] == "3.20"
    assert request.headers["X-Webhook-Id"] == event.public_id
    assert request.headers["Content-Type"] == "application/json"
    delivery = the_delivery(endpoint)
    assert (delivery.status, delivery.attempt_count, delivery.last_status_code) == ("delivered", 1, 200)
    attempt = delivery.attempts.get()
    assert (attempt.number, attempt.trigger, attempt.is_success, attempt.response_excerpt) == (
        1,
        "first",
        True,
        '{"ok": true}',
    )


def test_a_wrong_secret_is_refused_by_the_receiver_and_counts_as_a_failure(
    receiver, django_capture_on_commit_callbacks
):
    member = MemberFactory()
    endpoint = endpoint_for(member, receiver.url)
    receiver.secrets.append("whsec_not-the-endpoints-secret")
    with django_capture_on_commit_callbacks(execute=True):
        announce_commission(member)
    assert [request.verified for request in receiver.received] == [False]
    delivery = the_delivery(endpoint)
    assert (delivery.status, delivery.last_status_code) == ("pending", 400)


def _due(delivery: Delivery):
    """The moment the delivery's next attempt is due (time passes in the test by passing `now`)."""
    delivery.refresh_from_db()
    return delivery.next_attempt_at


def test_a_500_is_retried_on_the_schedule_then_the_delivery_fails(receiver, django_capture_on_commit_callbacks):
    # given an endpoint that answers 500 to everything
    receiver.status, receiver.body = 500, b"boom"
    member = MemberFactory()
    endpoint = endpoint_for(member, receiver.url, receiver=receiver)
    with django_capture_on_commit_callbacks(execute=True):
        announce_commission(member)
    delivery = the_delivery(endpoint)
    waits = []
    answered = delivery.attempts.get().started_at
    # when each retry runs when it is due
    for _ in SCHEDULE:
        due = _due(delivery)
        waits.append(round((due - answered).total_seconds()))
        assert delivery_attempt(delivery_id=delivery.pk, now=due - timedelta(seconds=1)) is None  # not yet
        attempt = delivery_attempt(delivery_id=delivery.pk, now=due)
        answered = due
        assert attempt is not None
    # then the waits were the schedule, and after the last retry the delivery is failed
    assert waits[1:] == SCHEDULE[1:]
    assert abs(waits[0] - SCHEDULE[0]) <= 1
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempt_count, delivery.next_attempt_at) == ("failed", 6, None)
    assert (
        list(delivery.attempts.order_by("number").values_list("trigger", "status_code", "is_success"))
        == [("first", 500, False)] + [("retry", 500, False)] * 5
    )
    assert len(receiver.received) == 6 and all(request.verified for request in receiver.received)
    assert delivery.attempts.first().error == "The endpoint answered 500."
    assert delivery_attempt(delivery_id=delivery.pk, now=timezone.now() + timedelta(days=30)) is None


def test_a_timeout_is_logged_and_retried(receiver, django_capture_on_commit_callbacks):
    receiver.delay = 1.5  # the read timeout is 0.5 s here
    member = MemberFactory()
    endpoint = endpoint_for(member, receiver.url, receiver=receiver)
    with django_capture_on_commit_callbacks(execute=True):
        announce_commission(member)
    delivery = the_delivery(endpoint)
    attempt = delivery.attempts.get()
    assert (attempt.status_code, attempt.is_success, attempt.error) == (None, False, "Timed out.")
    assert 400 <= attempt.duration_ms < 1500
    assert delivery.status == "pending" and delivery.failures == 1
    assert 55 <= (delivery.next_attempt_at - attempt.started_at).total_seconds() <= 62
    # the receiver recovers: the retry delivers
    receiver.delay = 0
    assert delivery_attempt(delivery_id=delivery.pk, now=delivery.next_attempt_at).is_success
    assert the_delivery(endpoint).status == "delivered"


def test_a_refused_connection_is_logged_and_retried(closed_port_url, django_capture_on_commit_callbacks):
    member = MemberFactory()
    endpoint = endpoint_for(member, closed_port_url)
    with django_capture_on_commit_callbacks(execute=True):
        announce_commission(member)
    delivery = the_delivery(endpoint)
    attempt = delivery.attempts.get()
    assert (attempt.status_code, attempt.error) == (None, "Could not connect.")
    assert delivery.status == "pending" and delivery.next_attempt_at > timezone.now()


def test_a_redirect_is_not_followed(receiver, django_capture_on_commit_callbacks):
    receiver.status, receiver.headers = 302, {"Location": "http://169.254.169.254/latest/meta-data/"}
    member = MemberFactory()
    endpoint = endpoint_for(member, receiver.url, receiver=receiver)
    with django_capture_on_commit_callbacks(execute=True):
        announce_commission(member)
    assert len(receiver.received) == 1
    assert the_delivery(endpoint).last_status_code == 302
    assert the_delivery(endpoint).status == "pending"


def test_a_long_response_is_kept_as_an_excerpt(receiver, django_capture_on_commit_callbacks):
    receiver.body = ("答" * 5000).encode()
    member = MemberFactory()
    endpoint = endpoint_for(member, receiver.url, receiver=receiver)
    with django_capture_on_commit_callbacks(execute=True):
        announce_commission(member)
    excerpt = the_delivery(endpoint).attempts.get().response_excerpt
    assert 0 < len(excerpt) <= EXCERPT_CHARS
    assert set(excerpt) <= {"答", "\ufffd"}


def test_a_task_delivered_twice_sends_once(receiver, django_capture_on_commit_callbacks):
    # given a delivery recorded (its message waits for the test's commit, which never comes)
    member = MemberFactory()
    endpoint = endpoint_for(member, receiver.url, receiver=receiver)
    entry = announce_commission(member)
    delivery_id = the_delivery(endpoint).pk
    # when the same message runs twice, and the announcement and its recording come again
    webhook_delivery_attempt_task.apply(args=[delivery_id])
    webhook_delivery_attempt_task.apply(args=[delivery_id])
    commission_entries_changed.send(sender=CommissionEntry, entry_ids=[entry.pk], change="created")
    assert webhook_events_record(topic="commission.created", object_ids=[entry.pk]) == []
    # then one request, one attempt, one event, one delivery
    assert len(receiver.received) == 1
    assert DeliveryAttempt.objects.count() == 1
    assert (Event.objects.count(), Delivery.objects.count()) == (1, 1)


def test_a_delivery_claimed_by_another_worker_is_not_sent(receiver, django_capture_on_commit_callbacks):
    member = MemberFactory()
    endpoint = endpoint_for(member, receiver.url, receiver=receiver)
    entry = announce_commission(member)
    webhook_events_record(topic="commission.created", object_ids=[entry.pk])
    delivery = the_delivery(endpoint)
    # another worker holds it (a message redelivered while the first still sends)
    Delivery.objects.filter(pk=delivery.pk).update(claimed_until=timezone.now() + timedelta(seconds=30))
    assert delivery_attempt(delivery_id=delivery.pk) is None
    assert receiver.received == []
    # its claim lapses (the worker died): the sweep's message sends it
    assert delivery_attempt(delivery_id=delivery.pk, now=timezone.now() + timedelta(seconds=31)) is not None
    assert len(receiver.received) == 1


def test_replay_sends_the_same_event_again_as_a_new_attempt(receiver, django_capture_on_commit_callbacks):
    member = MemberFactory()
    endpoint = endpoint_for(member, receiver.url, receiver=receiver)
    with django_capture_on_commit_callbacks(execute=True):
        announce_commission(member)
    delivery = the_delivery(endpoint)
    with django_capture_on_commit_callbacks(execute=True):
        delivery_replay(delivery=delivery)
    assert len(receiver.received) == 2 and all(request.verified for request in receiver.received)
    first, second = receiver.received
    assert first.body == second.body  # same event id and data
    assert second.headers["X-Webhook-Attempt"] == "2"
    assert list(delivery.attempts.order_by("number").values_list("number", "trigger", "is_success")) == [
        (1, "first", True),
        (2, "replay", True),
    ]
    assert the_delivery(endpoint).status == "delivered"


def test_after_a_rotation_both_secrets_sign_until_the_old_one_expires(receiver, django_capture_on_commit_callbacks):
    member = MemberFactory()
    endpoint = endpoint_for(member, receiver.url)
    old = endpoint.secret
    endpoint_rotate_secret(endpoint=endpoint)
    receiver.secrets.append(old)  # the receiver has not switched yet
    with django_capture_on_commit_callbacks(execute=True):
        announce_commission(member)
    request = receiver.received[0]
    assert request.verified
    assert signature_verify(endpoint.secret, request.headers["X-Signature"], request.body)
    assert request.headers["X-Signature"].count("v1=") == 2


def test_an_endpoint_failing_for_days_is_switched_off_and_its_owner_told(
    closed_port_url, settings, django_capture_on_commit_callbacks
):
    settings.WEBHOOKS_DISABLE_AFTER_HOURS = 72
    member = MemberFactory()
    endpoint = endpoint_for(member, closed_port_url)
    with django_capture_on_commit_callbacks(execute=True):
        announce_commission(member)
    endpoint.refresh_from_db()
    started = endpoint.failing_since
    assert started is not None and endpoint.is_active
    # a second event, three days and a bit later, fails too
    with django_capture_on_commit_callbacks(execute=True):
        entry = announce_commission(member)
    second = Delivery.objects.get(event__key=f"commission.created:{entry.pk}")
    Delivery.objects.filter(pk=second.pk).update(next_attempt_at=started)
    with django_capture_on_commit_callbacks(execute=True):
        delivery_attempt(delivery_id=second.pk, now=started + timedelta(hours=73))
    endpoint.refresh_from_db()
    assert not endpoint.is_active
    assert "72 hours" in endpoint.disabled_reason
    assert not Delivery.objects.filter(endpoint=endpoint, status="pending").exists()
    # the notice (the order and its commission are told to the buyer and the member too: notifications' mail)
    notices = [message for message in mail.outbox if closed_port_url in message.body]
    assert len(notices) == 1 and notices[0].to == [member.user.email]


def test_a_success_ends_the_failure_streak(receiver, django_capture_on_commit_callbacks):
    receiver.status = 503
    member = MemberFactory()
    endpoint = endpoint_for(member, receiver.url, receiver=receiver)
    with django_capture_on_commit_callbacks(execute=True):
        announce_commission(member)
    endpoint.refresh_from_db()
    assert endpoint.failing_since is not None
    receiver.status = 204
    delivery = the_delivery(endpoint)
    delivery_attempt(delivery_id=delivery.pk, now=delivery.next_attempt_at)
    endpoint.refresh_from_db()
    assert endpoint.failing_since is None and the_delivery(endpoint).status == "delivered"
