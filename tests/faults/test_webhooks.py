"""Fault scenario 6 (issue #11): payment webhooks replayed, reordered and forged.

Buyers place a batch of orders and start paying (some twice: a second payment for the same order). The sandbox
provider's genuine webhooks for them (succeeded, failed, or both for one payment) are delivered through the real
HTTP endpoint in a shuffled stream: each one 1–3 times, "failed" and "succeeded" of one payment in either order,
some only after the orders left unpaid were cancelled for the timeout (that late money is refunded at once), and
forgeries mixed in: a bad signature, a body changed after signing (amount, payment), a stale or future timestamp,
no or a malformed signature header, garbage JSON, a signature made with another secret, the wrong provider, and
signed messages the shop must still refuse (an unknown payment, a wrong amount, an unknown event type). Staff
refund, complete and release orders and pay out withdrawals between deliveries.

Every forgery gets a 4xx and changes nothing (the tables are compared around it); every genuine delivery gets a
200 whose answer is what a model of the accepted events predicts. At the end each order is paid at most once,
each payment ends as its accepted events say, each paid order is split exactly once, and the ledger checker finds
nothing.
"""

import json
import time
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal

import pytest
from django.conf import settings
from django.db.models import Count, Max
from django.urls import reverse
from django.utils import timezone

from commissions.models import CommissionEntry, OrderSplit, SplitQueue
from commissions.services import commission_release_due
from payouts.services import payout_batches_run
from shops.models import Order, OrderEvent, Payment, Refund, WebhookEvent
from shops.payments.sandbox import SIGNATURE_HEADER, build_webhook, sign
from shops.services import orders_cancel_expired, payment_start
from tests.factories import place_order
from tests.faults.conftest import SEEDS
from tests.faults.harness import (
    World,
    build_world,
    complete_random,
    final_check,
    pay_new_order,
    refund_random,
    withdraw_random,
)

pytestmark = pytest.mark.django_db(transaction=True)

WEBHOOK_URL = reverse("shops:payment_webhook", args=["sandbox"])
ORDERS = 14
LATE_ORDERS = 3  # their webhooks arrive only after the unpaid orders were cancelled for the timeout
Status = Order.Status


@dataclass
class Delivery:
    """One POST to the webhook endpoint: a genuine event (possibly a replay) or a forgery."""

    body: bytes
    headers: dict
    payment: Payment | None = None
    outcome: str = ""  # "succeeded" or "failed" for a genuine event
    event_id: str = ""
    forgery: str = ""  # what is wrong with it; empty for a genuine event
    url: str = WEBHOOK_URL


def genuine(payment: Payment, outcome: str) -> Delivery:
    body, headers = build_webhook(payment, outcome)
    headers = {name: value for name, value in headers.items() if name != "Content-Type"}
    return Delivery(body, headers, payment, outcome, json.loads(body)["id"])


# --- Forgeries -----------------------------------------------------------------------------------------------


def _signed(payload: dict, *, at: float | None = None, secret: str | None = None) -> tuple[bytes, dict]:
    body = json.dumps(payload, separators=(",", ":")).encode()
    return body, {SIGNATURE_HEADER: sign(body, int(at or time.time()), secret=secret)}


def forgeries(rng, deliveries: list[Delivery], payments: list[Payment]) -> list[Delivery]:
    """One of each kind, made from random genuine events. Forgeries that would be accepted if the check failed
    claim success (a new event id, "payment.succeeded"), so accepting one would pay an order."""
    tolerance = settings.PAYMENTS_WEBHOOK_TOLERANCE
    made = []

    def base() -> tuple[Delivery, dict]:
        original = rng.choice(deliveries)
        payload = json.loads(original.body)
        payload["id"] = f"evt_forged_{rng.getrandbits(64):016x}"
        payload["type"] = "payment.succeeded"
        return original, payload

    def add(kind: str, body: bytes, headers: dict, url: str = WEBHOOK_URL) -> None:
        made.append(Delivery(body, headers, forgery=kind, url=url))

    original, payload = base()
    body, headers = _signed(payload)
    add("bad signature", body, {SIGNATURE_HEADER: headers[SIGNATURE_HEADER].split("v1=")[0] + "v1=" + "0" * 64})
    original = rng.choice(deliveries)
    tampered = json.loads(original.body)
    tampered["data"]["amount"] = str(Decimal(tampered["data"]["amount"]) - Decimal("0.01"))
    add("amount changed after signing", json.dumps(tampered, separators=(",", ":")).encode(), original.headers)
    original = rng.choice(deliveries)
    tampered = json.loads(original.body)
    other = rng.choice([p for p in payments if p.reference != tampered["data"]["payment"]])
    tampered["data"]["payment"] = other.reference
    add("payment changed after signing", json.dumps(tampered, separators=(",", ":")).encode(), original.headers)
    original = rng.choice(deliveries)  # a genuine event replayed by someone who kept it: its signature is too old
    add("stale timestamp", original.body, {SIGNATURE_HEADER: sign(original.body, int(time.time()) - tolerance - 60)})
    _original, payload = base()
    add("future timestamp", *_signed(payload, at=time.time() + tolerance + 60))
    _original, payload = base()
    body, _headers = _signed(payload)
    add("no signature header", body, {})
    add("malformed signature header", body, {SIGNATURE_HEADER: "t=yesterday,v1"})
    _original, payload = base()
    add("signed with another secret", *_signed(payload, secret="not-the-sandbox-secret"))
    add("garbage JSON, unsigned", b'{"id": "evt_x", "type": "payment.succ', {SIGNATURE_HEADER: f"t={int(time.time())}"})
    add("garbage JSON, signed", *_signed_raw(b"\x00\xff not json at all"))
    original = rng.choice(deliveries)
    add("genuine message to another provider's URL", original.body, original.headers, url=_url("stripe"))
    _original, payload = base()  # signed with the real secret, but the shop must still refuse these
    payload["data"]["payment"] = f"pay_{rng.getrandbits(96):024x}"
    add("signed, unknown payment", *_signed(payload))
    _original, payload = base()
    payload["data"]["amount"] = str(Decimal(payload["data"]["amount"]) + Decimal("1.00"))
    add("signed, wrong amount", *_signed(payload))
    _original, payload = base()
    payload["type"] = "payment.refunded"
    add("signed, unknown event type", *_signed(payload))
    return made


def _signed_raw(body: bytes) -> tuple[bytes, dict]:
    return body, {SIGNATURE_HEADER: sign(body, int(time.time()))}


def _url(provider: str) -> str:
    return reverse("shops:payment_webhook", args=[provider])


def snapshot() -> dict:
    """Everything a refused webhook must leave alone."""
    return {
        "orders": list(Order.objects.order_by("pk").values_list("pk", "status", "paid_at", "refunded_total")),
        "payments": list(Payment.objects.order_by("pk").values_list("pk", "status", "completed_at")),
        "webhook events": list(WebhookEvent.objects.order_by("pk").values_list("pk", "event_id", "outcome")),
        "order events": OrderEvent.objects.aggregate(n=Count("pk"), last=Max("pk")),
        "refunds": list(Refund.objects.order_by("pk").values_list("pk", "amount")),
        "entries": CommissionEntry.objects.aggregate(n=Count("pk"), last=Max("pk")),
        "splits": list(OrderSplit.objects.order_by("order_id").values_list("order_id", flat=True)),
        "queued": list(SplitQueue.objects.order_by("order_id").values_list("order_id", flat=True)),
    }


# --- The model: what the accepted events must do ---------------------------------------------------------------


class Model:
    """The expected state, from the accepted events in the order they were accepted.

    A payment's "failed" counts only while it is pending; its "succeeded" counts whatever came before (the
    money has arrived) and pays the order if the order is still awaiting payment, or is refunded at once if the
    order was cancelled or paid by another payment. So a payment ends succeeded or refunded exactly when a
    "succeeded" event of it was accepted, failed when only "failed" was, and the arrival order only decides
    which payment of an order pays it and whether the money came in time.
    """

    def __init__(self, payments: list[Payment]):
        self.payment = {p.pk: Payment.Status.PENDING for p in payments}
        self.order = {p.order_id: "pending" for p in payments}
        self.paid_by: dict[int, int] = {}
        self.seen: set[str] = set()

    def expect(self, delivery: Delivery) -> str:
        """The endpoint's answer to this genuine delivery; updates the model."""
        if delivery.event_id in self.seen:
            return "already processed"
        self.seen.add(delivery.event_id)
        payment = delivery.payment
        if delivery.outcome == "failed":
            if self.payment[payment.pk] == Payment.Status.PENDING:
                self.payment[payment.pk] = Payment.Status.FAILED
            return "payment failed"
        if self.payment[payment.pk] == Payment.Status.SUCCEEDED:
            return "payment already succeeded"
        if self.payment[payment.pk] == Payment.Status.REFUNDED:
            return "payment already refunded"
        if self.order[payment.order_id] == "pending":
            self.payment[payment.pk] = Payment.Status.SUCCEEDED
            self.order[payment.order_id] = "paid"
            self.paid_by[payment.order_id] = payment.pk
            return "order paid"
        self.payment[payment.pk] = Payment.Status.REFUNDED
        return "late payment refunded"

    def cancel_unpaid(self) -> None:
        for order_id, state in self.order.items():
            if state == "pending":
                self.order[order_id] = "cancelled"


# --- Traffic ---------------------------------------------------------------------------------------------------


def open_payments(world: World) -> list[Payment]:
    """ORDERS orders in random shops, each with a payment started as checkout starts it; a quarter of them with
    a second payment (the buyer tried again before the first one's webhook came)."""
    payments = []
    for _ in range(ORDERS):
        shop = world.rng.choice(world.shops)
        listed = list(shop.listings.select_related("product").order_by("pk"))
        chosen = world.rng.sample(listed, world.rng.randint(1, len(listed)))
        order = place_order(shop, {listing.product: world.rng.randint(1, 3) for listing in chosen})
        for _attempt in range(2 if world.rng.random() < 0.25 else 1):
            payment, _url = payment_start(
                order=order,
                notify_url="http://testserver" + WEBHOOK_URL,
                return_url="http://testserver" + reverse("shops:order_detail", args=[order.number]),
            )
            payments.append(payment)
    return payments


def genuine_stream(world: World, payments: list[Payment]) -> tuple[list[Delivery], list[Delivery]]:
    """The provider's webhooks, each 1–3 times, shuffled: (before the timeout sweep, after it)."""
    rng = world.rng
    late_orders = set(rng.sample(sorted({p.order_id for p in payments}), LATE_ORDERS))
    before, after = [], []
    for payment in payments:
        roll = rng.random()
        outcomes = ["succeeded"] if roll < 0.6 else ["failed"] if roll < 0.75 else ["failed", "succeeded"]
        if "succeeded" in outcomes and rng.random() < 0.2:
            outcomes.append("succeeded")  # the provider notifies the success again, as a new event
            world.figures["success notified twice"] += 1
        for outcome in outcomes:
            delivery = genuine(payment, outcome)
            copies = rng.randint(1, 3)
            (after if payment.order_id in late_orders else before).extend([delivery] * copies)
            world.figures["replays"] += copies - 1
        if "failed" in outcomes and "succeeded" in outcomes:
            world.figures["failed and succeeded"] += 1
    rng.shuffle(before)
    rng.shuffle(after)
    return before, after


def staff_step(world: World) -> None:
    """Between deliveries, now and then: staff refund or complete an order, the release and payout jobs run."""
    roll = world.rng.random()
    if roll < 0.12:
        refund_random(world)
    elif roll < 0.22:
        complete_random(world)
        commission_release_due()
    elif roll < 0.27:
        withdraw_random(world)
        payout_batches_run()


def deliver(client, delivery: Delivery):
    return client.post(delivery.url, data=delivery.body, content_type="application/json", headers=delivery.headers)


# --- The scenario ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", SEEDS)
def test_webhooks_replayed_reordered_and_forged(seed, settings, client, fault_report):
    settings.COMMISSION_HOLD_DAYS = 0
    world = build_world(seed, members=8)
    for name in ("webhooks delivered", "replays", "failed and succeeded", "success notified twice", "forged refused"):
        world.figures[name] += 0  # the table's column order
    for _ in range(4):  # orders paid the usual way first, so staff have something to refund and complete
        pay_new_order(world)
    earlier_events = set(WebhookEvent.objects.values_list("event_id", flat=True))
    payments = open_payments(world)
    before, after = genuine_stream(world, payments)
    forged = forgeries(world.rng, before + after, payments)
    world.rng.shuffle(forged)
    cut = world.rng.randint(len(forged) // 3, 2 * len(forged) // 3)
    stream_before = before + forged[:cut]
    stream_after = after + forged[cut:]
    world.rng.shuffle(stream_before)
    world.rng.shuffle(stream_after)

    model = Model(payments)
    problems = []

    def run(stream: list[Delivery]) -> None:
        for delivery in stream:
            staff_step(world)
            if delivery.forgery:
                before_state = snapshot()
                response = deliver(client, delivery)
                if not 400 <= response.status_code < 500:
                    problems.append(f"forgery ({delivery.forgery}) answered {response.status_code}")
                if snapshot() != before_state:
                    problems.append(f"forgery ({delivery.forgery}) changed something")
                world.figures["forged refused"] += 1
                continue
            expected = model.expect(delivery)
            response = deliver(client, delivery)
            answer = response.content.decode()
            if response.status_code != 200 or answer != expected:
                problems.append(
                    f"{delivery.outcome} for payment {delivery.payment.pk} (event {delivery.event_id}): "
                    f"answered {response.status_code} {answer!r}, expected 200 {expected!r}"
                )
            world.figures["webhooks delivered"] += 1

    run(stream_before)
    timeout = timedelta(minutes=settings.ORDER_PAYMENT_TIMEOUT_MINUTES + 1)
    world.figures["orders cancelled for the timeout"] = orders_cancel_expired(now=timezone.now() + timeout)
    model.cancel_unpaid()
    run(stream_after)
    commission_release_due()
    payout_batches_run()
    assert not problems, "\n".join(problems)

    problems += paid_once_problems(model, payments, earlier_events)
    world.figures["late payments refunded"] = Refund.objects.filter(reason="late payment").count()
    world.figures["orders paid"] += sum(state == "paid" for state in model.order.values())
    run = fault_report(final_check("6 webhooks", seed, world))
    run.problems += problems
    assert run.violations == 0, run.problems
    assert run.lost_orders == 0, run.problems
    assert run.duplicate_payouts == 0, run.problems
    assert not problems, "\n".join(problems)


def paid_once_problems(model: Model, payments: list[Payment], earlier_events: set[str]) -> list[str]:
    """Each order paid at most once, by the payment the model says; each payment as its accepted events say;
    late money refunded once; every paid order split exactly once and no commission on the others; one webhook
    event row per genuine event, none for a forgery."""
    problems = []
    for payment in Payment.objects.filter(pk__in=[p.pk for p in payments]).order_by("pk"):
        if payment.status != model.payment[payment.pk]:
            problems.append(
                f"payment {payment.pk}: {payment.status}, the accepted events say {model.payment[payment.pk]}"
            )
        late = Refund.objects.filter(payment=payment, reason="late payment").count()
        if late != (payment.status == Payment.Status.REFUNDED):
            problems.append(f"payment {payment.pk}: {late} late-payment refunds while {payment.status}")
    for order in Order.objects.filter(pk__in=model.order).order_by("pk"):
        state = model.order[order.pk]
        succeeded = list(order.payments.filter(status=Payment.Status.SUCCEEDED).values_list("pk", flat=True))
        paid_events = order.events.filter(kind=OrderEvent.Kind.STATUS, to_status=Status.PAID).count()
        splits = OrderSplit.objects.filter(order=order).count()
        if state == "paid":
            if succeeded != [model.paid_by[order.pk]] or paid_events != 1 or order.paid_at is None:
                problems.append(
                    f"order {order.number}: succeeded payments {succeeded}, {paid_events} paid events, "
                    f"expected payment {model.paid_by[order.pk]} once"
                )
            if splits != 1:
                problems.append(f"order {order.number}: paid, split {splits} times")
        else:
            if order.status != Status.CANCELLED or succeeded or paid_events or order.paid_at or splits:
                problems.append(
                    f"order {order.number}: {order.status}, succeeded payments {succeeded}, {paid_events} paid "
                    f"events, split {splits} times; expected cancelled and never paid"
                )
            if CommissionEntry.objects.filter(order=order).exists():
                problems.append(f"order {order.number}: never paid, yet it has ledger entries")
    stored = list(WebhookEvent.objects.exclude(event_id__in=earlier_events).values_list("event_id", flat=True))
    if sorted(stored) != sorted(model.seen):
        unexpected, missing = set(stored) - model.seen, model.seen - set(stored)
        problems.append(
            f"webhook events stored: {len(stored)}, not the genuine ones (extra {unexpected}, missing {missing})"
        )
    return problems
