"""Sent once however often the tasks run; a failing channel is retried with back-off and never breaks a payment; the
sweep finds what a lost announcement left."""

from datetime import timedelta

import pytest
from django.core import mail
from django.utils import timezone

from commissions.signals import commission_entries_changed
from core import sms
from members.notifications.models import Delivery, Event, Notification, NotificationEvent
from members.notifications.services import deliveries_send_due, entries_collect, notifications_run, notifications_sweep
from members.notifications.tasks import notifications_entries_task, notifications_run_task, notifications_sweep_task
from shops.models import Order
from shops.signals import order_status_changed
from tests.factories import default_commissions
from tests.notifications.helpers import chain_sale, earners, paid_chain_sale, texts_to

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def _default_plan(transactional_db):
    """Real commits (the announcements run after them): the default policy and plan, emptied by each flush."""
    default_commissions()


BUYER_PHONE = "+8613900001111"


def _sent() -> tuple:
    return (
        Notification.objects.count(),
        len(mail.outbox),
        len(sms.outbox),
        sorted(Delivery.objects.values_list("source__key", "channel", "status")),
    )


def test_duplicate_task_delivery_sends_each_message_once():
    order, _chain = paid_chain_sale(3)
    before = _sent()
    assert before[0] == len(earners(order)) and before[2] == 1
    # the broker hands every task out again (a redelivery after a lost ack), and the sweep runs too
    from commissions.models import CommissionEntry

    ids = list(CommissionEntry.objects.filter(order=order).values_list("pk", flat=True))
    notifications_entries_task.apply(args=[ids, "created"])
    notifications_entries_task.apply(args=[ids, "created"])
    notifications_run_task.apply()
    notifications_run_task.apply()
    notifications_sweep_task.apply()
    NotificationEvent.objects.update(fanned_out_at=None)  # even an event fanned out again (a crash before its mark)
    notifications_run()
    assert _sent() == before


def test_a_failing_sms_provider_never_breaks_the_payment_and_is_retried_with_back_off(settings, monkeypatch):
    def down(self, message):
        raise sms.SmsUnavailable("connection refused", code="ClientNetworkError")

    monkeypatch.setattr(sms.LocmemSmsBackend, "send", down)
    order, _chain = paid_chain_sale(2)
    assert Order.objects.get(pk=order.pk).status == Order.Status.PAID  # the payment stands
    [delivery] = Delivery.objects.filter(channel="sms")
    assert (delivery.status, delivery.attempts) == (Delivery.Status.PENDING, 1)
    assert "connection refused" in delivery.last_error
    first_wait = delivery.next_attempt_at - timezone.now()
    assert timedelta(seconds=settings.NOTIFICATIONS_RETRY_SECONDS - 5) < first_wait
    # not yet due: nothing is tried
    deliveries_send_due()
    assert Delivery.objects.get(pk=delivery.pk).attempts == 1
    # due and still down: the wait doubles
    deliveries_send_due(now=timezone.now() + timedelta(hours=1))
    delivery.refresh_from_db()
    assert delivery.attempts == 2
    assert delivery.next_attempt_at - timezone.now() > timedelta(seconds=2 * settings.NOTIFICATIONS_RETRY_SECONDS - 5)
    # the provider is back
    monkeypatch.undo()
    settings.SMS_BACKEND = "core.sms.LocmemSmsBackend"
    deliveries_send_due(now=timezone.now() + timedelta(hours=2))
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts) == (Delivery.Status.SENT, 3)
    assert [t.template for t in texts_to(BUYER_PHONE)] == [Event.ORDER_PAID]


def test_a_refusal_for_good_is_not_retried(monkeypatch):
    def refuse(self, message):
        raise sms.SmsRejected("bad number", code="InvalidParameterValue.IncorrectPhoneNumber")

    monkeypatch.setattr(sms.LocmemSmsBackend, "send", refuse)
    paid_chain_sale(2)
    [delivery] = Delivery.objects.filter(channel="sms")
    assert delivery.status == Delivery.Status.FAILED and delivery.attempts == 1


def test_a_failing_email_server_never_breaks_the_payment(settings):
    settings.EMAIL_BACKEND = "tests.notifications.test_delivery.BrokenEmailBackend"
    order, _chain = paid_chain_sale(2)
    assert Order.objects.get(pk=order.pk).status == Order.Status.PAID
    emails = Delivery.objects.filter(channel="email")
    assert emails.exists()
    assert set(emails.values_list("status", flat=True)) == {Delivery.Status.PENDING}
    assert Notification.objects.count() == len(earners(order))  # the inbox is not held up by the email


class BrokenEmailBackend:
    def __init__(self, *args, **kwargs):
        pass

    def open(self):
        return True

    def close(self):
        pass

    def send_messages(self, messages):
        raise ConnectionRefusedError("SMTP server down")


def test_the_sweep_finds_events_whose_announcement_was_lost():
    # given the announcements are lost (no receiver connected)
    receivers = (order_status_changed, commission_entries_changed)
    saved = [(signal, list(signal.receivers)) for signal in receivers]
    for signal in receivers:
        signal.receivers = []
        signal.sender_receivers_cache.clear()
    try:
        order, _chain = paid_chain_sale(2)
    finally:
        for signal, kept in saved:
            signal.receivers = kept
            signal.sender_receivers_cache.clear()
    assert Notification.objects.count() == 0 and sms.outbox == []
    # when the sweep runs (a minute later, as the beat runs it)
    notifications_sweep(now=timezone.now() + timedelta(minutes=2))
    # then everyone is told, once
    assert Notification.objects.count() == len(earners(order))
    assert [t.template for t in texts_to(BUYER_PHONE)] == [Event.ORDER_PAID]
    notifications_sweep(now=timezone.now() + timedelta(minutes=4))
    assert Notification.objects.count() == len(earners(order)) and len(sms.outbox) == 1


def test_entries_of_other_changes_make_no_events():
    order, _chain = chain_sale(2)
    assert entries_collect(entry_ids=[], change="reversed") == 0


def test_the_sweep_finds_a_release_whose_announcement_was_lost():
    from commissions.services import commission_release_due
    from shops.services import order_mark_completed, order_mark_shipped

    order, _chain = paid_chain_sale(2)
    order_mark_shipped(order=Order.objects.get(pk=order.pk))
    order_mark_completed(order=Order.objects.get(pk=order.pk))
    kept = list(commission_entries_changed.receivers)
    commission_entries_changed.receivers = []
    commission_entries_changed.sender_receivers_cache.clear()
    try:
        commission_release_due(now=timezone.now() + timedelta(days=30))
    finally:
        commission_entries_changed.receivers = kept
        commission_entries_changed.sender_receivers_cache.clear()
    assert not Notification.objects.filter(event=Event.COMMISSION_AVAILABLE).exists()
    notifications_sweep()
    assert Notification.objects.filter(event=Event.COMMISSION_AVAILABLE).count() == len(earners(order))
