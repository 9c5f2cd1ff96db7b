"""The same delivery's message run by several workers at once, on PostgreSQL (real threads, one connection each,
released together): exactly one claims it and sends, the others send nothing."""

import pytest
from django.utils import timezone

from members.webhooks.models import Delivery, DeliveryAttempt, Event
from members.webhooks.services import delivery_attempt
from tests.factories import MemberFactory
from tests.referrals.test_concurrency import run_together
from tests.webhooks.helpers import endpoint_for

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def test_a_delivery_run_by_four_workers_at_once_is_sent_once(receiver):
    receiver.delay = 0.3  # the first request is still open while the others try
    endpoint = endpoint_for(MemberFactory(), receiver.url, receiver=receiver)
    # the rows the record task writes, made here so that no message runs before the workers do
    event = Event.objects.create(type="payout.paid", key="payout.paid:test", data={"payout": {"id": 1}})
    delivery = Delivery.objects.create(event=event, endpoint=endpoint, next_attempt_at=timezone.now())

    results, errors = run_together([lambda: delivery_attempt(delivery_id=delivery.pk)] * 4)

    assert errors == []
    assert sum(result is not None for result in results) == 1
    assert len(receiver.received) == 1 and receiver.received[0].verified
    assert DeliveryAttempt.objects.count() == 1
    assert Delivery.objects.get(pk=delivery.pk).status == "delivered"
