"""Fault scenario 5 (issue #11): 16 concurrent withdrawals, refunds and releases on the same members.

A few "hot" members earn from a stream of orders; then, round after round, 16 threads released together by a
barrier (each with its own PostgreSQL connection) request and approve withdrawals for those members, refund
orders they earn from (in part or in full, before or after release and payout, so some refunds claw back),
complete orders, release what is due, batch and send payouts, and cancel, reject or approve the requests still
open. The fault: pauses of up to 40 ms where a writer has read and not yet written, and background jobs
(releases, payout runs) starting at random moments of the round, so they land inside the requests. Refusals
(PayoutError, ShopError) are expected; anything else (a deadlock, an IntegrityError, a lock timeout) fails the
test, and so does a reversal left pending beside its released original after a round. After the rounds the
system recovers (releases, the sweep, payout batches until nothing is open), the ledger checker runs, and the
invariants it does not cover are checked per member and per commission entry (see `member_problems`).

The scenario found a race (fixed in commissions.services.commission_release_due, which now takes the order locks
a refund takes): `test_a_release_racing_a_refund_releases_its_reversal_too` reproduces it deterministically.
"""

import random
import time
from datetime import timedelta
from decimal import Decimal

import pytest
from django.conf import settings as django_settings
from django.db import connection
from django.db.models import Sum
from django.utils import timezone

import commissions.services.refunds
import commissions.tasks
import payouts.services
import shops.services
from commissions.calculations import reversal_amount
from commissions.models import CommissionEntry
from commissions.services import commission_apply_refund, commission_release_due, commission_sweep
from payouts.models import PayoutBatch, Withdrawal
from payouts.providers.sandbox import SandboxPayoutProvider
from payouts.selectors import OPEN, member_balance
from payouts.services import (
    PayoutError,
    payout_batch_send,
    payout_batches_run,
    withdrawal_approve,
    withdrawal_cancel,
    withdrawal_reject,
    withdrawal_request,
)
from shops.models import Order, OrderLine
from shops.services import ShopError, order_mark_completed, order_mark_shipped, order_refund, shop_listing_add
from tests.factories import MemberFactory, ProductFactory, ShopFactory, pay_order, place_order
from tests.faults.conftest import SEEDS
from tests.faults.harness import (
    CENT,
    REFUNDABLE,
    World,
    build_world,
    complete_random,
    final_check,
    pay_new_order,
    refund_random,
    unsettled,
    withdraw_random,
)
from tests.payouts.test_concurrency import run_together
from tests.payouts.test_money import assert_event_chain, ensure_plan_in_force, get_or_create_staff

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

Entry = CommissionEntry
THREADS = 16
ROUNDS = 4
HOT_MEMBERS = 3
EXPECTED_REFUSALS = (PayoutError, ShopError)  # ShopError covers IllegalTransition and SoldOut
BACKGROUND = ("release", "payout", "send")  # what the beat and the workers do, as opposed to requests


# --- Traffic the main thread drives -------------------------------------------------------------------------


def pay_in_shops_of(world: World, members: list, orders: int) -> None:
    """Buyers pay `orders` orders in the shops of `members` (so those members earn at level 1, their sponsors
    at level 2)."""
    shops = [shop for shop in world.shops if shop.owner_id in {m.pk for m in members}]
    for _ in range(orders):
        shop = world.rng.choice(shops)
        listed = list(shop.listings.select_related("product").order_by("pk"))
        chosen = world.rng.sample(listed, world.rng.randint(1, len(listed)))
        pay_order(place_order(shop, {listing.product: world.rng.randint(1, 3) for listing in chosen}))
        world.figures["orders paid"] += 1


def complete_some(world: World, members: list, count: int) -> list[Order]:
    completed = earning_orders(members, [Order.Status.PAID])[:count]
    for order in completed:
        order_mark_shipped(order=order, actor=world.staff)
        order_mark_completed(order=order, actor=world.staff)
        world.figures["orders completed"] += 1
    return completed


def earning_orders(members: list, statuses) -> list[Order]:
    """Orders with commission for any of `members`, oldest first."""
    return list(
        Order.objects.filter(status__in=statuses, commission_entries__beneficiary__in=members).distinct().order_by("pk")
    )


# --- What each of the 16 threads may do ----------------------------------------------------------------------


def plan_round(world: World, hot: list, just_completed: list[Order]) -> list[tuple[str, object]]:
    """Choose (in the main thread, from the seeded rng) what each thread does: (kind, call). Most refunds
    (70 %) are of orders completed just before the round, whose commission the release threads are releasing."""
    rng, staff = world.rng, world.staff
    refundable = earning_orders(hot, REFUNDABLE)
    paid = earning_orders(hot, [Order.Status.PAID])
    requested = list(Withdrawal.objects.filter(member__in=hot, status=Withdrawal.Status.REQUESTED).order_by("pk"))
    open_batches = list(PayoutBatch.objects.filter(status=PayoutBatch.Status.PROCESSING).order_by("pk"))
    kinds = ["withdraw"] * 5 + ["refund"] * 4 + ["release"] * 2 + ["payout"] * 2 + ["complete", "decide", "send"]
    planned = []
    for _ in range(THREADS):
        kind = rng.choice(kinds)
        if kind == "refund" and refundable:
            order = rng.choice(just_completed if just_completed and rng.random() < 0.7 else refundable)
            planned.append(("refund", plan_refund(rng, order, staff)))
        elif kind == "complete" and paid:
            planned.append(("complete", plan_complete(rng.choice(paid), staff)))
        elif kind == "decide" and requested:
            planned.append(("decide", plan_decision(rng, rng.choice(requested), staff)))
        elif kind == "send" and open_batches:
            batch = rng.choice(open_batches)
            planned.append(("send", lambda batch=batch: payout_batch_send(batch=batch)))
        elif kind == "payout":
            planned.append(("payout", payout_batches_run))
        elif kind == "release":
            planned.append(("release", commission_release_due))
        else:
            planned.append(("withdraw", plan_withdrawal(rng, rng.choice(hot), staff)))
    return planned


def plan_withdrawal(rng, member, staff):
    """All of the balance (so the threads collide on it), part of it, or an amount ending in .13 (the sandbox
    fails those, so the money comes back); approved at once or left requested for a later round to decide."""
    available = member_balance(member).withdrawable
    roll = rng.random()
    if roll < 0.35:
        amount = available
    elif roll < 0.5:
        amount = Decimal(int(max(available, Decimal(10)))) + Decimal("0.13") - 1
    else:
        amount = (available * Decimal(rng.uniform(0.2, 0.7))).quantize(CENT)
    amount = max(amount, Decimal("10.00"))
    approve = rng.random() < 0.7

    def withdraw():
        withdrawal = withdrawal_request(member=member, amount=amount)
        if approve and withdrawal.status == Withdrawal.Status.REQUESTED:
            withdrawal_approve(withdrawal=withdrawal, actor=staff)
        return withdrawal

    return withdraw


def plan_refund(rng, order, staff):
    """One line (some of what is left of it) or everything left; read now, so a concurrent refund may have
    taken it first (ShopError: nothing changed)."""
    quantities = None
    lines = [line for line in OrderLine.objects.filter(order=order).order_by("pk") if line.refundable_quantity]
    if lines and rng.random() < 0.6:
        line = rng.choice(lines)
        quantities = {line.pk: rng.randint(1, line.refundable_quantity)}
    return lambda: order_refund(order=order, quantities=quantities, actor=staff, reason="fault suite: concurrent")


def plan_complete(order, staff):
    def complete():
        order_mark_shipped(order=order, actor=staff)
        return order_mark_completed(order=order, actor=staff)

    return complete


def plan_decision(rng, withdrawal, staff):
    choice = rng.choice(["approve", "reject", "cancel"])
    if choice == "approve":
        return lambda: withdrawal_approve(withdrawal=withdrawal, actor=staff)
    if choice == "reject":
        return lambda: withdrawal_reject(withdrawal=withdrawal, actor=staff, reason="fault suite")
    return lambda: withdrawal_cancel(withdrawal=withdrawal, member=withdrawal.member)


def run_round(world: World, planned: list[tuple[str, object]]) -> list[str]:
    """Run the planned calls together; count outcomes; return the unexpected errors as sentences.

    Half the requests start the moment the barrier opens, the others up to 50 ms later; the background jobs
    (releases, payout runs and sends) start anywhere in the first 200 ms (unseeded), so they land in the middle
    of a refund or a withdrawal as well as before or after it."""
    outcomes: list[tuple[str, str]] = []
    start = random.Random()

    def attempt(kind, call):
        def run():
            if kind in BACKGROUND:
                time.sleep(start.uniform(0, 0.2))
            elif start.random() < 0.5:
                time.sleep(start.uniform(0, 0.05))
            try:
                call()
            except EXPECTED_REFUSALS:
                outcomes.append((kind, "refused"))
                return
            outcomes.append((kind, "done"))

        return run

    _results, errors = run_together([attempt(kind, call) for kind, call in planned])
    world.figures["concurrent calls"] += len(planned)
    for kind, outcome in outcomes:
        world.figures["refusals" if outcome == "refused" else "accepted"] += 1
        if outcome == "done" and kind in ("withdraw", "refund"):
            world.figures["withdrawals" if kind == "withdraw" else "refunds"] += 1
    return [f"{type(error).__name__}: {error}" for error in errors]


def with_jitter(monkeypatch) -> None:
    """The injected fault: a pause of up to 40 ms (a busy CPU, a GC pause, a slow network) at the points where
    a writer has read and not yet written: between reading a line's commission and writing its reversals,
    between computing a balance and inserting the withdrawal, between sending a payout batch and recording the
    answers, between a refund's rows and the provider's refund. Races that need the two moments to interleave
    then happen within a few rounds instead of once in a million runs."""
    pause = random.Random()  # not the seeded one: the threads' timing is not reproducible anyway

    def slowed(function):
        def call(*args, **kwargs):
            time.sleep(pause.uniform(0, 0.04))
            return function(*args, **kwargs)

        return call

    monkeypatch.setattr(
        commissions.services.refunds, "refund_reversals", slowed(commissions.services.refunds.refund_reversals)
    )
    monkeypatch.setattr(payouts.services, "member_balance", slowed(payouts.services.member_balance))
    monkeypatch.setattr(shops.services, "get_provider", slowed(shops.services.get_provider))
    monkeypatch.setattr(SandboxPayoutProvider, "send_many", slowed(SandboxPayoutProvider.send_many))


# --- Invariants beyond the ledger checker --------------------------------------------------------------------


def member_problems(world: World) -> list[str]:
    """Per member, after recovery:

    - money left the balance only while it covered it: withdrawals requested, on their way or paid never
      exceed what was released to the member before clawbacks (only a clawback may take the balance below 0),
      and no member has more withdrawals open than the limit, however many requests raced;
    - nothing stays on hold that is due (hold 0: every entry of a completed order is released), and no member
      entry of a refunded order stays pending;
    - each commission entry, with its reversals and clawbacks, nets to exactly what the member keeps of the line:
      the original less round_down(original × refunded / net), whatever order the refunds and releases ran in.
    """
    problems = []
    for member in world.members:
        balance = member_balance(member)
        outgoing = balance.in_flight + balance.paid_out
        if outgoing > balance.released + balance.clawed_back:
            problems.append(
                f"member {member.pk}: {outgoing} withdrawn or on its way, more than the "
                f"{balance.released + balance.clawed_back} released before clawbacks"
            )
        open_count = Withdrawal.objects.filter(member=member, status__in=OPEN).count()
        if open_count > django_settings.WITHDRAWAL_MAX_OPEN:
            problems.append(f"member {member.pk}: {open_count} withdrawals open, above the limit")
    stuck = Entry.objects.filter(status=Entry.Status.PENDING, order__status=Order.Status.COMPLETED)
    for entry in stuck.values_list("pk", "order_id", "kind", "level")[:10]:
        problems.append(f"entry {entry}: pending on a completed order after the release")
    held = Entry.objects.filter(status=Entry.Status.PENDING, order__status=Order.Status.REFUNDED, level__gte=1)
    for entry in held.exclude(amount=0).values_list("pk", "order_id", "kind", "level")[:10]:
        problems.append(f"entry {entry}: member entry still pending on a refunded order")
    reversed_by_level = {
        (line_id, level): -total
        for line_id, level, total in Entry.objects.filter(kind__in=[Entry.Kind.REVERSAL, Entry.Kind.CLAWBACK])
        .values_list("order_line_id", "level")
        .annotate(total=Sum("amount"))
        .order_by()
    }
    originals = Entry.objects.filter(kind=Entry.Kind.COMMISSION, amount__gt=0).select_related("order_line")
    for original in originals:
        line = original.order_line
        target = reversal_amount(
            original_amount=original.amount, net_amount=line.net_amount, refunded_net_total=line.refunded_amount
        )
        taken = reversed_by_level.get((line.pk, original.level), Decimal("0.00"))
        if taken != target:
            problems.append(
                f"order line {line.pk} level {original.level}: {taken} reversed or clawed back of "
                f"{original.amount}, but {line.refunded_amount} of {line.net_amount} refunded means {target}"
            )
    for withdrawal in Withdrawal.objects.order_by("pk"):
        try:
            assert_event_chain(withdrawal)
        except AssertionError:
            problems.append(f"withdrawal {withdrawal.pk}: its events do not chain to {withdrawal.status}")
    return problems


def split_releases() -> list[str]:
    """At any moment (checked after each round): a reversal is released with its original, never after it. A
    pending reversal beside a released original means the member can withdraw the refunded share now, and keeps
    it for good if the order is refunded in full before the reversal is released."""
    released = set(
        Entry.objects.filter(
            kind=Entry.Kind.COMMISSION, status__in=[Entry.Status.AVAILABLE, Entry.Status.PAID]
        ).values_list("order_line_id", "level")
    )
    pending = Entry.objects.filter(kind=Entry.Kind.REVERSAL, status=Entry.Status.PENDING)
    return [
        f"order line {line_id} level {level}: reversal {amount} pending beside a released original"
        for line_id, level, amount in pending.values_list("order_line_id", "level", "amount")
        if (line_id, level) in released
    ]


def recover(world: World) -> None:
    """What the beat does once the storm is over: release what is due, re-send what a lost message left behind,
    batch and send payouts until none is open; staff approve the requests still waiting."""
    for withdrawal in Withdrawal.objects.filter(status=Withdrawal.Status.REQUESTED).order_by("pk"):
        withdrawal_approve(withdrawal=withdrawal, actor=world.staff)
    for _attempt in range(10):
        commission_release_due()
        commission_sweep(now=timezone.now() + timedelta(minutes=5))
        payout_batches_run()
        if not any(unsettled().values()):
            return


# --- The scenario -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", SEEDS)
def test_concurrent_withdrawals_refunds_and_releases_on_the_same_members(seed, settings, monkeypatch, fault_report):
    assert connection.vendor == "postgresql"
    settings.COMMISSION_HOLD_DAYS = 0  # a completed order is releasable at once
    settings.WITHDRAWAL_MAX_OPEN = 6  # the balance, more than the open count, refuses the colliding requests
    world = build_world(seed, members=8)
    hot = world.rng.sample(world.members, HOT_MEMBERS)

    # Traffic first, so the hot members have money released, some of it paid out.
    pay_in_shops_of(world, hot, 8)
    for _ in range(12):
        roll = world.rng.random()
        if roll < 0.4:
            pay_new_order(world)
        elif roll < 0.7:
            complete_random(world)
        elif roll < 0.8:
            refund_random(world)
        else:
            withdraw_random(world)
    complete_some(world, hot, 5)
    commission_release_due()
    payout_batches_run()

    unexpected = []
    for name in ("rounds", "concurrent calls", "accepted", "refusals", "withdrawals", "refunds"):
        world.figures[name] += 0  # the table's column order, whatever finishes first
    for round_number in range(ROUNDS):
        pay_in_shops_of(world, hot, 3)
        just_completed = complete_some(world, hot, 3)  # due, not released: the release threads race the refunds
        planned = plan_round(world, hot, just_completed)
        with monkeypatch.context() as patched:
            with_jitter(patched)
            errors = run_round(world, planned)
        unexpected += [f"round {round_number + 1}: {error}" for error in errors + split_releases()]
        world.figures["rounds"] += 1
    assert not unexpected, "\n".join(unexpected)

    recover(world)
    run = fault_report(final_check("5 concurrent money", seed, world))
    problems = member_problems(world)
    run.problems += problems
    assert run.violations == 0, run.problems
    assert run.lost_orders == 0, run.problems
    assert run.duplicate_payouts == 0, run.problems
    assert not problems, "\n".join(problems)


# --- The race the scenario found ------------------------------------------------------------------------------


def test_a_release_racing_a_refund_releases_its_reversal_too(settings, monkeypatch):
    """A partial refund's reversal is written while the release runs: the release waits for the order's lock and
    releases the reversal with the original, so the member never sees the refunded share as available.

    Before the release took the order lock, the original became available while the refund, which had read it as
    pending, wrote a pending reversal: 32.00 available instead of 24.00, and after a full refund the member kept
    8.00 for goods that all came back (the reversal stayed pending for ever; the line still netted to zero).
    """
    assert connection.vendor == "postgresql"
    settings.COMMISSION_HOLD_DAYS = 0
    ensure_plan_in_force()
    staff = get_or_create_staff()
    member = MemberFactory()  # no sponsor: 80 % of the pool at level 1, the rest to the platform
    shop = ShopFactory(owner=member)
    product = ProductFactory(price=Decimal("100.00"), commission_rate=Decimal("0.1000"), stock=100)
    shop_listing_add(shop=shop, product=product)
    order = pay_order(place_order(shop, {product: 4}))  # pool 40.00, the member's share 32.00
    order_mark_shipped(order=order, actor=staff)
    order_mark_completed(order=order, actor=staff)  # due at once, not released yet
    line = OrderLine.objects.get(order=order)
    monkeypatch.setattr(commissions.tasks.commission_apply_refund_task, "delay", lambda refund_id: None)
    refund = order_refund(order=order, quantities={line.pk: 1}, actor=staff)  # a quarter: 8.00 to reverse

    computed = commissions.services.refunds.refund_reversals

    def slowly(**arguments):  # the refund has read the original as pending; the release starts meanwhile
        reversals = computed(**arguments)
        time.sleep(1.0)
        return reversals

    def release_a_moment_later():
        time.sleep(0.3)
        return commission_release_due()

    monkeypatch.setattr(commissions.services.refunds, "refund_reversals", slowly)
    _results, errors = run_together([lambda: commission_apply_refund(refund_id=refund.pk), release_a_moment_later])
    assert not errors
    entries = Entry.objects.filter(order=order, level=1)
    assert sorted(entries.values_list("kind", "amount", "status")) == [
        ("commission", Decimal("32.00"), "available"),
        ("reversal", Decimal("-8.00"), "available"),
    ]
    assert member_balance(member).withdrawable == Decimal("24.00")

    monkeypatch.undo()
    order_refund(order=order, actor=staff)  # the rest: clawed back, the refund task runs in-process again
    balance = member_balance(member)
    assert (balance.released, balance.pending, balance.withdrawable) == (0, 0, 0)
