"""Payment notices at a peak (issue #21): the webhook verifies a "paid" or "failed" notice, records it as waiting
and answers; a run (`payment_notices_apply`, a worker's task asked for once per burst, or the beat) applies the
waiting ones in one transaction, the common case for the whole batch in a few statements. When tasks run
in-process (the embedded default, and the rest of the tests) the webhook applies its own notice at once.

Also the beat's question to the provider about payments still pending minutes after they were opened
(`payments_sync_stale`): a notification that never came is repaired with nobody on the order page.
"""

import json
import threading
import time
from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connection, connections
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from commissions.models import SplitQueue
from shops import services
from shops.models import Order, OrderEvent, Payment, WebhookEvent
from shops.payments.base import ProviderError, WebhookRejected
from shops.payments.sandbox import SIGNATURE_HEADER, SandboxProvider, build_webhook, sign
from shops.services import (
    APPLY_FAILURES_MAX,
    order_cancel,
    payment_notices_apply,
    payment_start,
    payment_webhook_receive,
    payments_sync_stale,
)
from tests.factories import ProductFactory, place_order, shop_with_products
from tests.payments.conftest import paid_transitions

Status = Order.Status


@pytest.fixture
def deferred(monkeypatch):
    """As in production with a broker: the webhook records the notice and asks for a run after its commit (the
    asks are counted here), and nothing is applied until a run."""
    monkeypatch.setattr(services, "task_runs_in_process", lambda: False)
    asked = []
    monkeypatch.setattr(services, "payment_notices_requested", lambda **_kwargs: asked.append(1) or True)
    return asked


def _orders(count: int) -> list[Order]:
    product = ProductFactory(price=Decimal("19.90"), stock=count * 3)
    shop = shop_with_products(product)
    return [place_order(shop, {product: 1}) for _ in range(count)]


def _payment(order: Order) -> Payment:
    payment, _url = payment_start(order=order, notify_url="http://testserver/wh", return_url="http://testserver/r")
    return payment


def _receive(django_capture_on_commit_callbacks, payment: Payment, outcome: str = "succeeded") -> str:
    body, headers = build_webhook(payment, outcome)
    with django_capture_on_commit_callbacks(execute=True):
        return payment_webhook_receive(provider_name="sandbox", body=body, headers=headers).outcome


def _outcomes(payments: list[Payment]) -> list[str]:
    by_reference = {
        event.payload["data"]["payment"]: event.outcome
        for event in WebhookEvent.objects.filter(applied_at__isnull=False)
    }
    return [by_reference.get(payment.reference, "") for payment in payments]


@pytest.mark.django_db
def test_notices_wait_recorded_until_a_run_applies_them_all(deferred, django_capture_on_commit_callbacks):
    orders = _orders(12)
    payments = [_payment(order) for order in orders]

    answers = [_receive(django_capture_on_commit_callbacks, payment) for payment in payments]

    assert answers == ["received"] * 12
    assert len(deferred) == 12  # each commit asks (the real ask sends one message a burst: below)
    assert WebhookEvent.objects.filter(applied_at__isnull=True).count() == 12
    assert Order.objects.filter(status=Status.PENDING_PAYMENT).count() == 12

    assert payment_notices_apply() == 12

    assert Order.objects.filter(pk__in=[o.pk for o in orders], status=Status.PAID).count() == 12
    assert Payment.objects.filter(status=Payment.Status.SUCCEEDED).count() == 12
    assert _outcomes(payments) == ["order paid"] * 12
    assert all(paid_transitions(order) == 1 for order in orders)
    assert OrderEvent.objects.filter(kind=OrderEvent.Kind.PAYMENT).count() == 12
    assert sorted(SplitQueue.objects.values_list("order_id", flat=True)) == sorted(o.pk for o in orders)
    assert not Order.objects.exclude(client_key="").filter(pk__in=[o.pk for o in orders]).exists()
    # a second run finds nothing and changes nothing
    assert payment_notices_apply() == 0
    assert all(paid_transitions(order) == 1 for order in orders)


@pytest.mark.django_db
def test_a_batch_costs_the_same_statements_for_5_notices_as_for_40(deferred, django_capture_on_commit_callbacks):
    def statements_to_apply(count: int) -> int:
        for payment in [_payment(order) for order in _orders(count)]:
            _receive(django_capture_on_commit_callbacks, payment)
        with CaptureQueriesContext(connection) as queries:
            assert payment_notices_apply() == count
        return len(queries)

    few, many = statements_to_apply(5), statements_to_apply(40)

    assert few == many
    assert many <= 16, many


@pytest.mark.django_db
def test_a_batch_of_mixed_notices_applies_each_as_it_would_alone(
    deferred, django_capture_on_commit_callbacks, monkeypatch
):
    # given five payments: paid twice; failed then paid; an order cancelled before its money came; two plain ones
    orders = _orders(5)
    twice, failed_then_paid, late, plain, other = [_payment(order) for order in orders]
    order_cancel(order=Order.objects.get(pk=late.order_id), actor_label="system", reason="timeout")
    for payment, outcome in [
        (twice, "succeeded"),
        (failed_then_paid, "failed"),
        (plain, "succeeded"),
        (twice, "succeeded"),  # another event id: the same money notified again
        (late, "succeeded"),
        (failed_then_paid, "succeeded"),
        (other, "succeeded"),
    ]:
        assert _receive(django_capture_on_commit_callbacks, payment, outcome) == "received"

    # when one run applies them
    assert payment_notices_apply() == 7

    # then each event has the outcome it would have had alone, in the order received
    outcomes = list(WebhookEvent.objects.order_by("pk").values_list("payload__data__payment", "outcome"))
    assert outcomes == [
        (twice.reference, "order paid"),
        (failed_then_paid.reference, "payment failed"),
        (plain.reference, "order paid"),
        (twice.reference, "payment already succeeded"),
        (late.reference, "late payment refunded"),
        (failed_then_paid.reference, "order paid"),
        (other.reference, "order paid"),
    ]
    statuses = dict(Order.objects.filter(pk__in=[o.pk for o in orders]).values_list("pk", "status"))
    assert [statuses[o.pk] for o in orders] == [Status.PAID, Status.PAID, Status.CANCELLED, Status.PAID, Status.PAID]
    assert [paid_transitions(order) for order in orders] == [1, 1, 0, 1, 1]
    assert Payment.objects.get(pk=late.pk).status == Payment.Status.REFUNDED


@pytest.mark.django_db
def test_an_event_whose_apply_fails_waits_and_is_counted_the_others_apply(
    deferred, django_capture_on_commit_callbacks, monkeypatch
):
    late, plain = [_payment(order) for order in _orders(2)]
    order_cancel(order=Order.objects.get(pk=late.order_id), actor_label="system", reason="timeout")

    def unreachable(self, payment, amount, idempotency_key):
        raise ProviderError("sandbox: connection refused")

    monkeypatch.setattr(SandboxProvider, "refund", unreachable)  # the late payment's refund cannot be made
    _receive(django_capture_on_commit_callbacks, late)
    _receive(django_capture_on_commit_callbacks, plain)

    assert payment_notices_apply() == 2

    waiting = WebhookEvent.objects.get(applied_at__isnull=True)
    assert (waiting.payload["data"]["payment"], waiting.attempts, waiting.outcome) == (late.reference, 1, "")
    assert Payment.objects.get(pk=late.pk).status == Payment.Status.PENDING  # its savepoint rolled back
    assert Order.objects.get(pk=plain.order_id).status == Status.PAID
    # it is tried again by each run until it has failed APPLY_FAILURES_MAX times, then waits for staff
    for _run in range(APPLY_FAILURES_MAX - 1):
        assert payment_notices_apply() == 1
    assert payment_notices_apply() == 0
    assert WebhookEvent.objects.get(pk=waiting.pk).attempts == APPLY_FAILURES_MAX


@pytest.mark.django_db
def test_a_replayed_notice_still_waiting_is_recorded_once(deferred, django_capture_on_commit_callbacks):
    payment = _payment(_orders(1)[0])
    body, headers = build_webhook(payment, "succeeded")

    first = payment_webhook_receive(provider_name="sandbox", body=body, headers=headers)
    again = payment_webhook_receive(provider_name="sandbox", body=body, headers=headers)

    assert (first.duplicate, again.duplicate, again.outcome) == (False, True, "already processed")
    assert WebhookEvent.objects.count() == 1
    assert payment_notices_apply() == 1
    assert paid_transitions(Order.objects.get(pk=payment.order_id)) == 1


@pytest.mark.django_db
def test_the_webhook_asks_for_one_run_a_burst(monkeypatch, django_capture_on_commit_callbacks):
    from shops import tasks

    monkeypatch.setattr(services, "task_runs_in_process", lambda: False)
    sent = []
    monkeypatch.setattr(tasks.payment_notices_apply_task, "delay", lambda *a: sent.append(a))
    payments = [_payment(order) for order in _orders(6)]

    for payment in payments[:5]:
        _receive(django_capture_on_commit_callbacks, payment)
    assert len(sent) == 1  # one message for the burst: the flag says a run is on its way

    assert payment_notices_apply() == 5  # the run clears the flag first ...
    _receive(django_capture_on_commit_callbacks, payments[5])
    assert len(sent) == 2  # ... so the next notice asks again


@pytest.mark.django_db
def test_in_process_the_webhook_applies_its_own_notice_at_once():
    payment = _payment(_orders(1)[0])
    body, headers = build_webhook(payment, "succeeded")

    result = payment_webhook_receive(provider_name="sandbox", body=body, headers=headers)

    assert result.outcome == "order paid"
    event = WebhookEvent.objects.get()
    assert event.applied_at is not None and event.outcome == "order paid"
    assert Order.objects.get(pk=payment.order_id).status == Status.PAID


@pytest.mark.skipif(connection.vendor != "postgresql", reason="needs PostgreSQL: concurrent runs with SKIP LOCKED")
@pytest.mark.django_db(transaction=True)
def test_concurrent_runs_take_different_notices_and_pay_each_order_once(deferred, django_capture_on_commit_callbacks):
    orders = _orders(60)
    payments = [_payment(order) for order in orders]
    for payment in payments:
        _receive(django_capture_on_commit_callbacks, payment)
    applied, errors = [], []
    start = threading.Barrier(3)

    def run():
        try:
            start.wait()
            while (count := payment_notices_apply(limit=7)) > 0:
                applied.append(count)
        except Exception as error:
            errors.append(error)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)

    assert errors == []
    assert sum(applied) == 60
    assert Order.objects.filter(status=Status.PAID).count() == 60
    assert all(paid_transitions(order) == 1 for order in orders)
    assert not WebhookEvent.objects.filter(applied_at__isnull=True).exists()


@pytest.mark.django_db(transaction=True)
def test_the_beat_asks_about_payments_pending_too_long_once_an_interval(wechat, order, open_payment, settings):
    settings.PAYMENTS_SYNC_STALE_AFTER, settings.PAYMENTS_SYNC_STALE_INTERVAL = 120, 300
    payment, _action = open_payment(order, "wechatpay", "native")
    young_order = place_order(shop_with_products(ProductFactory(price=Decimal("3.00"), stock=5)))
    young, _action = open_payment(young_order, "wechatpay", "native")
    wechat.buyer_pays(payment.reference)
    wechat.buyer_pays(young.reference)
    assert wechat.outbox.drop() == 2  # both notifications lost
    Payment.objects.filter(pk=payment.pk).update(created_at=timezone.now() - timedelta(seconds=121))

    assert payments_sync_stale() == 1

    assert Order.objects.get(pk=order.pk).status == Status.PAID
    assert Order.objects.get(pk=young_order.pk).status == Status.PENDING_PAYMENT  # too young to ask about yet
    assert payments_sync_stale() == 0  # the paid one is no longer pending; the young one still too young


@pytest.mark.django_db(transaction=True)
def test_the_beat_asks_a_still_unpaid_payment_again_only_after_the_interval(wechat, order, open_payment, settings):
    settings.PAYMENTS_SYNC_STALE_AFTER, settings.PAYMENTS_SYNC_STALE_INTERVAL = 120, 300
    payment, _action = open_payment(order, "wechatpay", "native")
    Payment.objects.filter(pk=payment.pk).update(created_at=timezone.now() - timedelta(seconds=600))

    assert payments_sync_stale() == 1  # asked: still unpaid
    assert payments_sync_stale() == 0  # not again within the interval
    assert Order.objects.get(pk=order.pk).status == Status.PENDING_PAYMENT


@pytest.mark.django_db
def test_staff_find_the_waiting_and_the_failing_notices_in_the_admin(
    deferred, django_capture_on_commit_callbacks, admin_client
):
    from django.urls import reverse

    waiting, failing, applied = [_payment(order) for order in _orders(3)]
    for payment in (waiting, failing, applied):
        _receive(django_capture_on_commit_callbacks, payment)
    WebhookEvent.objects.filter(payload__data__payment=failing.reference).update(attempts=2)
    WebhookEvent.objects.filter(payload__data__payment=applied.reference).update(applied_at=timezone.now())
    url = reverse("admin:shops_webhookevent_changelist")

    event_ids = dict(WebhookEvent.objects.values_list("payload__data__payment", "event_id"))

    def listed(query: str) -> set[str]:
        page = admin_client.get(url + query).content.decode()
        return {p.reference for p in (waiting, failing, applied) if event_ids[p.reference] in page}

    assert listed("") == {waiting.reference, failing.reference, applied.reference}
    assert listed("?waiting=yes") == {waiting.reference, failing.reference}
    assert listed("?waiting=failing") == {failing.reference}


@pytest.mark.django_db
def test_a_batch_is_announced_once_after_its_commit(deferred, django_capture_on_commit_callbacks):
    from shops.signals import order_status_changed

    payments = [_payment(order) for order in _orders(8)]
    for payment in payments:
        _receive(django_capture_on_commit_callbacks, payment)
    heard = []

    def listen(sender, **kwargs):
        heard.append(kwargs["changes"])

    order_status_changed.connect(listen, dispatch_uid="test-batch-heard")
    try:
        with django_capture_on_commit_callbacks(execute=True):
            assert payment_notices_apply() == 8
            assert heard == []  # not before the commit
    finally:
        order_status_changed.disconnect(dispatch_uid="test-batch-heard")

    assert len(heard) == 1
    assert sorted(heard[0]) == sorted((p.order_id, "pending_payment", "paid") for p in payments)


@pytest.mark.django_db
def test_with_the_broker_down_the_webhook_applies_its_own_notice(monkeypatch, django_capture_on_commit_callbacks):
    from kombu.exceptions import OperationalError

    from shops import tasks

    monkeypatch.setattr(services, "task_runs_in_process", lambda: False)

    def unreachable(*_args):
        raise OperationalError("Error 111 connecting to the broker. Connection refused.")

    monkeypatch.setattr(tasks.payment_notices_apply_task, "delay", unreachable)
    payment = _payment(_orders(1)[0])

    assert _receive(django_capture_on_commit_callbacks, payment) == "received"  # recorded, then applied here

    assert Order.objects.get(pk=payment.order_id).status == Status.PAID
    assert WebhookEvent.objects.get().outcome == "order paid"
    assert not WebhookEvent.objects.filter(applied_at__isnull=True).exists()


@pytest.mark.parametrize(
    ("amount", "accepted"),
    [
        ("19.900", True),
        ("19.901", False),
        ("1E-999999", False),
        ("1E+999999", False),
        ("1e999999999", False),
        ("-1e999999999", False),
        ("NaN", False),
    ],
)
@pytest.mark.django_db
def test_an_amount_is_compared_as_money_and_one_no_payment_can_have_is_refused(amount, accepted):
    order = place_order(shop_with_products(ProductFactory(price=Decimal("19.90"), stock=5)))
    payment = _payment(order)
    body = json.dumps(
        {"id": f"evt_{amount}", "type": "payment.succeeded", "created": 1,
         "data": {"payment": payment.reference, "amount": amount, "currency": "CNY"}}
    ).encode()  # fmt: skip
    headers = {SIGNATURE_HEADER: sign(body, int(time.time()))}

    if accepted:
        assert payment_webhook_receive(provider_name="sandbox", body=body, headers=headers).outcome == "order paid"
        assert Order.objects.get(pk=order.pk).status == Status.PAID
    else:
        with pytest.raises(WebhookRejected):
            payment_webhook_receive(provider_name="sandbox", body=body, headers=headers)
        assert not WebhookEvent.objects.exists()
