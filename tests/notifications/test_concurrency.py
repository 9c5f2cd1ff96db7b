"""Two workers running the same notifications at the same moment (a redelivered message, a second run) send each
message once: events are claimed with SKIP LOCKED and deliveries by their pending → sending move. PostgreSQL only."""

import threading

import pytest
from django.core import mail
from django.db import connections

from members.notifications.models import Delivery, Event, Notification, NotificationEvent
from members.notifications.services import notifications_run
from tests.factories import MemberFactory

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def test_two_runs_at_once_send_each_message_once(settings):
    settings.NOTIFICATIONS_BATCH = 50
    members = [MemberFactory() for _ in range(20)]
    NotificationEvent.objects.bulk_create(
        [
            NotificationEvent(
                key=f"race:{i}", event=Event.COMMISSION_AVAILABLE, member=members[i % 20], context={"amount": "1.00"}
            )
            for i in range(300)
        ]
    )
    barrier = threading.Barrier(2)
    errors = []

    def worker():
        try:
            barrier.wait()
            while (
                NotificationEvent.objects.filter(fanned_out_at__isnull=True).exists()
                or Delivery.objects.filter(status=Delivery.Status.PENDING).exists()
            ):
                notifications_run()
        except Exception as error:
            errors.append(error)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert errors == []
    assert Notification.objects.count() == 300
    assert Delivery.objects.filter(status=Delivery.Status.SENT).count() == 300
    assert len(mail.outbox) == 300
