"""The commission ledger through the real services (commissions/services/): reconciliation, exactly-once split,
versions and chain at payment time, release after the hold, reversals and clawbacks, the sweep.

Orders are paid through the sandbox webhook. With `django_capture_on_commit_callbacks(execute=True)` the split
task runs on commit (eager Celery); without it the task's message is "lost": the order waits in SplitQueue.
"""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from commissions.calculations import line_pool
from commissions.models import CommissionEntry, CommissionPlan, OrderSplit, RefundApplied, SplitQueue
from commissions.services import (
    CommissionError,
    commission_apply_refund,
    commission_release_due,
    commission_split_queued,
    commission_sweep,
    plan_activate,
    plan_create,
    plan_in_force,
    policy_publish,
)
from commissions.tasks import commission_apply_refund_task, commission_split_order_task
from referrals.services import member_move, member_set_status
from shops.models import OrderLine
from shops.services import BuyerDetails, order_mark_completed, order_mark_shipped, order_place, order_refund
from tests.factories import MemberFactory, ProductFactory, make_chain, pay_order, place_order, shop_with_products

pytestmark = pytest.mark.django_db

D = Decimal
Entry = CommissionEntry
COMMISSION, PLATFORM = Entry.Kind.COMMISSION, Entry.Kind.PLATFORM
REVERSAL, CLAWBACK = Entry.Kind.REVERSAL, Entry.Kind.CLAWBACK
PENDING, AVAILABLE, PAID, REVERSED = (
    Entry.Status.PENDING,
    Entry.Status.AVAILABLE,
    Entry.Status.PAID,
    Entry.Status.REVERSED,
)
HOLD = timedelta(days=7)


@pytest.fixture
def people(db):
    """Grace → Paul → Sara; Sara owns the shops below."""
    return make_chain(3)


@pytest.fixture
def tea_order(people):
    """An unpaid order of 3 × 19.90 at 12.5 %: pool 7.46 → Sara 5.96, Paul 1.49, platform 0.01 (docs example a)."""
    _grace, _paul, sara = people
    tea = ProductFactory(title="Oolong tea", price=D("19.90"), commission_rate=D("0.1250"))
    return place_order(shop_with_products(tea, owner=sara), {tea: 3})


def pay(order, capture):
    with capture(execute=True):
        return pay_order(order)


def refund(order, capture, quantities=None, *, execute=True):
    """Refund {line: quantity} (None: everything left); the commission task runs on commit unless execute=False."""
    by_id = None if quantities is None else {line.pk: qty for line, qty in quantities.items()}
    with capture(execute=execute):
        return order_refund(order=order, quantities=by_id, reason="test")


def ledger(order) -> list[tuple]:
    return list(
        Entry.objects.filter(order=order)
        .order_by("pk")
        .values_list("kind", "level", "beneficiary_id", "rate", "amount", "capped_by", "status")
    )


def full_ledger(order) -> list[tuple]:
    """Everything a replay must leave alone, ids and times included."""
    return list(
        Entry.objects.filter(order=order)
        .order_by("pk")
        .values_list(
            "pk", "order_line", "refund", "kind", "level", "beneficiary", "base", "rate", "amount", "plan", "policy",
            "capped_by", "rolled_up_from", "status", "created_at", "released_at", "paid_at", "reversed_at",
        )
    )  # fmt: skip


def comparable(order) -> list[tuple]:
    """The ledger without ids and times, lines and refunds by position: to compare two orders."""
    lines = {pk: index for index, pk in enumerate(order.lines.order_by("pk").values_list("pk", flat=True))}
    refunds = {pk: index for index, pk in enumerate(order.refunds.order_by("pk").values_list("pk", flat=True))}
    return [
        (lines[line], None if ref is None else refunds[ref], *rest)
        for line, ref, *rest in Entry.objects.filter(order=order)
        .order_by("order_line", "refund", "kind", "level")
        .values_list("order_line", "refund", "kind", "level", "beneficiary", "base", "rate", "amount", "status")
    ]


def complete(order):
    order_mark_shipped(order=order)
    return order_mark_completed(order=order)


def simulate_payout(order) -> None:
    Entry.objects.filter(order=order, kind=COMMISSION, status=AVAILABLE).update(status=PAID, paid_at=timezone.now())


def total(entries) -> Decimal:
    # Summed in Python: SQLite sums decimals as floats and Django does not round aggregates back to cents there.
    return sum(entries.values_list("amount", flat=True), D("0.00"))


def member_levels(order, kind) -> dict[int, Decimal]:
    """{level: total amount} of the order's entries of one kind."""
    levels: dict[int, Decimal] = {}
    for level, amount in Entry.objects.filter(order=order, kind=kind).values_list("level", "amount"):
        levels[level] = levels.get(level, D("0.00")) + amount
    return levels


# --- reconciliation ------------------------------------------------------------------------------------------------


def test_every_paid_line_reconciles(people, staff_user, django_capture_on_commit_callbacks):
    # given: orders covering rounding, a binding cap, a zero rate, a suspended upline, a self-purchase, a short chain
    grace, paul, sara = people
    products = [
        ProductFactory(price=D("19.90"), commission_rate=D("0.1250")),
        ProductFactory(price=D("33.33"), commission_rate=D("0.5000")),
        ProductFactory(price=D("0.07"), commission_rate=D("0.1000")),
        ProductFactory(price=D("123.45"), commission_rate=D("0.0000")),
        ProductFactory(price=D("9.99"), commission_rate=D("1.0000")),
        ProductFactory(price=D("1.01"), commission_rate=D("0.3333")),
    ]
    sara_shop = shop_with_products(*products, owner=sara)
    grace_shop = shop_with_products(*products, owner=grace)  # a root: nobody above the sharer
    orders = [
        place_order(sara_shop, dict(zip(products, [3, 1, 7, 2, 1, 5], strict=True))),
        place_order(grace_shop, {products[0]: 1, products[1]: 2}),
        order_place(
            shop=sara_shop,
            items={products[0].pk: 2, products[4].pk: 1},
            buyer=BuyerDetails(name="Sara", phone="", email=sara.user.email, address="2 Huaihai Road"),
        ),
    ]
    for order in orders:
        pay(order, django_capture_on_commit_callbacks)
    member_set_status(member=paul, status="suspended", actor=staff_user, reason="test")
    suspended_order = pay(place_order(sara_shop, {products[0]: 4, products[1]: 1}), django_capture_on_commit_callbacks)
    orders.append(suspended_order)

    # then: every line has one platform row, and its member commission plus the platform row is its pool
    lines = OrderLine.objects.filter(order__in=orders)
    assert lines.count() == 12
    for line in lines:
        entries = Entry.objects.filter(order_line=line)
        pool = line_pool(line.net_amount, line.commission_rate)
        assert set(entries.values_list("base", flat=True)) == {pool}
        assert entries.filter(kind=PLATFORM).count() == 1
        members = total(entries.filter(kind=COMMISSION))
        platform = entries.get(kind=PLATFORM).amount
        assert members + platform == pool, line
        assert members <= (line.net_amount * D("0.30")).quantize(D("0.01")), line
        assert entries.filter(amount__lt=0).count() == 0
    assert not Entry.objects.filter(order=orders[2], kind=COMMISSION).exists()  # the self-purchase
    assert not Entry.objects.filter(order=suspended_order, beneficiary=paul).exists()
    assert OrderSplit.objects.filter(order__in=orders).count() == 4
    assert not SplitQueue.objects.exists()


# --- exactly once ------------------------------------------------------------------------------------------------


def test_a_replayed_split_changes_nothing(tea_order, django_capture_on_commit_callbacks):
    # given: a paid and split order
    order = pay(tea_order, django_capture_on_commit_callbacks)
    before = full_ledger(order)
    assert len(before) == 3

    # when: the drain runs again, the task is redelivered, and the outbox row comes back and is drained
    assert commission_split_queued() == 0
    assert commission_split_order_task(order.pk) == 0
    commission_split_order_task.delay(order.pk)
    SplitQueue.objects.create(order=order)
    assert commission_split_queued() == 0

    # then
    assert full_ledger(order) == before
    assert OrderSplit.objects.filter(order=order).count() == 1
    assert not SplitQueue.objects.exists()


def test_a_replayed_split_of_a_refunded_order_does_not_reverse_twice(tea_order, django_capture_on_commit_callbacks):
    order = pay(tea_order, django_capture_on_commit_callbacks)
    refund(order, django_capture_on_commit_callbacks, {order.lines.get(): 1})
    before = full_ledger(order)
    assert len(before) == 5

    SplitQueue.objects.create(order=order)
    assert commission_split_queued() == 0

    assert full_ledger(order) == before


# --- plan, policy and chain at payment time -----------------------------------------------------------------------


def test_the_plan_and_policy_in_force_at_payment_are_used_even_if_changed_before_the_split(
    people, staff_user, tea_order, django_capture_on_commit_callbacks
):
    # given: the order is paid under plan v1 (80/20) and policy v1, but its split message is delayed
    _grace, paul, sara = people
    pay_order(tea_order)
    assert SplitQueue.objects.filter(order=tea_order).exists()

    # when: before the split runs, a 50/50 plan is activated and a stricter policy published
    new_plan = plan_create(actor=staff_user, name="50/50", rates=(D("0.5000"), D("0.5000")))
    plan_activate(plan=new_plan, actor=staff_user)
    new_policy = policy_publish(actor=staff_user, note="lower payout ceiling", max_payout_ratio=D("0.0500"))
    assert commission_split_queued() == 1

    # then: the order is split with v1 of both
    assert ledger(tea_order) == [
        (COMMISSION, 1, sara.pk, D("0.8000"), D("5.96"), "", PENDING),
        (COMMISSION, 2, paul.pk, D("0.2000"), D("1.49"), "", PENDING),
        (PLATFORM, 0, None, D("1.0000"), D("0.01"), "", PENDING),
    ]
    assert set(Entry.objects.filter(order=tea_order).values_list("plan__version", "policy__version")) == {(1, 1)}
    split = OrderSplit.objects.get(order=tea_order)
    assert (split.plan.version, split.policy.version) == (1, 1)

    # and an order paid now uses the new ones: 50/50 of pool 7.46 = 3.73 each, capped at 5 % × 59.70 = 2.98
    # (scaled by 2.985/7.46: 1.4925 → 1.49 each)
    tea = tea_order.lines.get().product
    later = pay(place_order(tea_order.shop, {tea: 3}), django_capture_on_commit_callbacks)
    assert ledger(later) == [
        (COMMISSION, 1, sara.pk, D("0.5000"), D("1.49"), "max_payout_ratio", PENDING),
        (COMMISSION, 2, paul.pk, D("0.5000"), D("1.49"), "max_payout_ratio", PENDING),
        (PLATFORM, 0, None, D("1.0000"), D("4.48"), "max_payout_ratio", PENDING),
    ]
    assert set(Entry.objects.filter(order=later).values_list("plan", "policy")) == {(new_plan.pk, new_policy.pk)}


def test_a_plan_activated_for_the_future_is_not_used_for_an_order_paid_now(
    people, staff_user, tea_order, django_capture_on_commit_callbacks
):
    # given: a 100 % level-1 plan activated from tomorrow
    _grace, paul, sara = people
    tomorrow = timezone.now() + timedelta(days=1)
    future = plan_create(actor=staff_user, name="sharer only", rates=(D("1.0000"),))
    plan_activate(plan=future, actor=staff_user, effective_from=tomorrow)
    assert plan_in_force().version == 1
    assert plan_in_force(tomorrow + timedelta(seconds=1)) == future

    # when
    pay(tea_order, django_capture_on_commit_callbacks)

    # then
    assert ledger(tea_order) == [
        (COMMISSION, 1, sara.pk, D("0.8000"), D("5.96"), "", PENDING),
        (COMMISSION, 2, paul.pk, D("0.2000"), D("1.49"), "", PENDING),
        (PLATFORM, 0, None, D("1.0000"), D("0.01"), "", PENDING),
    ]
    assert set(Entry.objects.filter(order=tea_order).values_list("plan__version", flat=True)) == {1}


def test_a_plan_activated_after_payment_is_not_used_even_if_backdated(people, staff_user, tea_order):
    # given: the order is paid under plan v1, its split message delayed
    pay_order(tea_order)

    # when: a plan is activated afterwards "from an hour ago" (refused), then the split runs
    backdated = plan_create(actor=staff_user, name="sharer only", rates=(D("1.0000"),))
    with pytest.raises(CommissionError) as refused:
        plan_activate(plan=backdated, actor=staff_user, effective_from=timezone.now() - timedelta(hours=1))
    commission_split_queued()

    assert refused.value.code == "backdated"
    assert not CommissionPlan.objects.get(pk=backdated.pk).is_activated

    # then: v1, the plan in force when the order was paid, is used
    assert set(Entry.objects.filter(order=tea_order).values_list("plan__version", flat=True)) == {1}


def test_a_later_move_does_not_change_written_entries(
    people, staff_user, tea_order, django_capture_on_commit_callbacks
):
    # given: Sara's order split with Paul as her sponsor
    grace, paul, sara = people
    order = pay(tea_order, django_capture_on_commit_callbacks)
    before = full_ledger(order)

    # when: staff move Sara under a new sponsor
    victor = MemberFactory(sponsor=grace)
    member_move(member=sara, new_sponsor=victor, actor=staff_user, reason="support ticket 7")

    # then: the entries written still name Paul; a new order pays Victor
    assert full_ledger(order) == before
    assert Entry.objects.get(order=order, level=2).beneficiary == paul
    tea = order.lines.get().product
    later = pay(place_order(order.shop, {tea: 3}), django_capture_on_commit_callbacks)
    assert Entry.objects.get(order=later, level=2).beneficiary == victor


def test_a_delayed_split_uses_the_chain_at_payment_time(people, staff_user, tea_order):
    # given: the order is paid while Paul is Sara's sponsor, but the split message is delayed
    grace, paul, sara = people
    pay_order(tea_order)

    # when: Sara is moved under Victor before the split runs
    victor = MemberFactory(sponsor=grace)
    member_move(member=sara, new_sponsor=victor, actor=staff_user, reason="support ticket 8")
    commission_split_queued()

    # then: Paul, her sponsor when the order was paid, earns level 2
    assert Entry.objects.get(order=tea_order, level=2).beneficiary == paul


# --- release -------------------------------------------------------------------------------------------------------


def test_release_makes_entries_available_only_for_completed_orders_past_the_hold(
    people, tea_order, django_capture_on_commit_callbacks
):
    # given: three orders split: one paid, one shipped, one completed
    tea = tea_order.lines.get().product
    paid = pay(tea_order, django_capture_on_commit_callbacks)
    shipped = pay(place_order(tea_order.shop, {tea: 1}), django_capture_on_commit_callbacks)
    order_mark_shipped(order=shipped)
    completed = complete(pay(place_order(tea_order.shop, {tea: 2}), django_capture_on_commit_callbacks))
    far_future = completed.completed_at + timedelta(days=365)
    paid_rows, shipped_rows = full_ledger(paid), full_ledger(shipped)

    # when: a second before the hold ends
    assert commission_release_due(now=completed.completed_at + HOLD - timedelta(seconds=1)) == 0
    # then: nothing moves
    assert set(Entry.objects.values_list("status", flat=True)) == {PENDING}

    # when: the hold has passed (the test's clock runs ahead of the real one)
    before = timezone.now()
    assert commission_release_due(now=completed.completed_at + HOLD) == 3

    # then: only the completed order's entries are available, stamped with when the release ran, never with the
    # test's future clock (issue #19: the statement dates credits by it)
    released = list(Entry.objects.filter(order=completed).values_list("status", "released_at"))
    assert {status for status, _at in released} == {AVAILABLE}
    assert len({at for _status, at in released}) == 1
    assert before <= released[0][1] <= timezone.now()
    assert full_ledger(paid) == paid_rows
    assert full_ledger(shipped) == shipped_rows

    # and a rerun (even much later) changes nothing: paid and shipped orders are never released
    completed_rows = full_ledger(completed)
    assert commission_release_due(now=far_future) == 0
    assert full_ledger(completed) == completed_rows
    assert full_ledger(paid) == paid_rows
    assert full_ledger(shipped) == shipped_rows


# --- refunds -------------------------------------------------------------------------------------------------------


def test_partial_refund_before_release_writes_pending_reversals(people, tea_order, django_capture_on_commit_callbacks):
    _grace, paul, sara = people
    order = pay(tea_order, django_capture_on_commit_callbacks)
    line = order.lines.get()

    refund(order, django_capture_on_commit_callbacks, {line: 2})  # 39.80 of 59.70

    # 5.96 × 2/3 = 3.973… → 3.97; 1.49 × 2/3 = 0.993… → 0.99
    assert ledger(order) == [
        (COMMISSION, 1, sara.pk, D("0.8000"), D("5.96"), "", PENDING),
        (COMMISSION, 2, paul.pk, D("0.2000"), D("1.49"), "", PENDING),
        (PLATFORM, 0, None, D("1.0000"), D("0.01"), "", PENDING),
        (REVERSAL, 1, sara.pk, D("0.8000"), D("-3.97"), "", PENDING),
        (REVERSAL, 2, paul.pk, D("0.2000"), D("-0.99"), "", PENDING),
    ]
    refund_row = order.refunds.get()
    assert set(Entry.objects.filter(kind=REVERSAL).values_list("refund", "base", "plan__version")) == {
        (refund_row.pk, D("7.46"), 1)
    }
    assert RefundApplied.objects.filter(refund=refund_row).exists()


def test_full_refund_before_release_reverses_originals_and_reversals(
    people, tea_order, django_capture_on_commit_callbacks
):
    _grace, paul, sara = people
    order = pay(tea_order, django_capture_on_commit_callbacks)

    refund(order, django_capture_on_commit_callbacks)  # everything

    order.refresh_from_db()
    assert order.status == order.Status.REFUNDED
    assert ledger(order) == [
        (COMMISSION, 1, sara.pk, D("0.8000"), D("5.96"), "", REVERSED),
        (COMMISSION, 2, paul.pk, D("0.2000"), D("1.49"), "", REVERSED),
        (PLATFORM, 0, None, D("1.0000"), D("0.01"), "", PENDING),
        (REVERSAL, 1, sara.pk, D("0.8000"), D("-5.96"), "", REVERSED),
        (REVERSAL, 2, paul.pk, D("0.2000"), D("-1.49"), "", REVERSED),
    ]
    assert not Entry.objects.filter(order=order, status=REVERSED, reversed_at__isnull=True).exists()


def test_full_refund_after_a_partial_one_before_release_reverses_everything(
    people, tea_order, django_capture_on_commit_callbacks
):
    _grace, _paul, sara = people
    order = pay(tea_order, django_capture_on_commit_callbacks)
    refund(order, django_capture_on_commit_callbacks, {order.lines.get(): 1})

    refund(order, django_capture_on_commit_callbacks)  # the rest

    sara_rows = Entry.objects.filter(order=order, beneficiary=sara).order_by("pk")
    assert list(sara_rows.values_list("kind", "amount", "status")) == [
        (COMMISSION, D("5.96"), REVERSED),
        (REVERSAL, D("-1.98"), REVERSED),
        (REVERSAL, D("-3.98"), REVERSED),
    ]
    assert member_levels(order, REVERSAL) == {1: D("-5.96"), 2: D("-1.49")}


def test_refund_after_release_writes_available_clawbacks(people, tea_order, django_capture_on_commit_callbacks):
    _grace, paul, sara = people
    order = complete(pay(tea_order, django_capture_on_commit_callbacks))
    assert commission_release_due(now=order.completed_at + HOLD) == 3

    refund(order, django_capture_on_commit_callbacks, {order.lines.get(): 1})

    assert ledger(order) == [
        (COMMISSION, 1, sara.pk, D("0.8000"), D("5.96"), "", AVAILABLE),
        (COMMISSION, 2, paul.pk, D("0.2000"), D("1.49"), "", AVAILABLE),
        (PLATFORM, 0, None, D("1.0000"), D("0.01"), "", AVAILABLE),
        (CLAWBACK, 1, sara.pk, D("0.8000"), D("-1.98"), "", AVAILABLE),
        (CLAWBACK, 2, paul.pk, D("0.2000"), D("-0.49"), "", AVAILABLE),
    ]
    assert not Entry.objects.filter(kind=CLAWBACK, released_at__isnull=True).exists()


def test_refund_after_payout_writes_clawbacks_and_leaves_paid_entries_alone(
    people, tea_order, django_capture_on_commit_callbacks
):
    _grace, paul, sara = people
    order = complete(pay(tea_order, django_capture_on_commit_callbacks))
    commission_release_due(now=order.completed_at + HOLD)
    simulate_payout(order)

    refund(order, django_capture_on_commit_callbacks)  # everything

    assert ledger(order) == [
        (COMMISSION, 1, sara.pk, D("0.8000"), D("5.96"), "", PAID),
        (COMMISSION, 2, paul.pk, D("0.2000"), D("1.49"), "", PAID),
        (PLATFORM, 0, None, D("1.0000"), D("0.01"), "", AVAILABLE),
        (CLAWBACK, 1, sara.pk, D("0.8000"), D("-5.96"), "", AVAILABLE),
        (CLAWBACK, 2, paul.pk, D("0.2000"), D("-1.49"), "", AVAILABLE),
    ]


def test_partial_refunds_never_reverse_more_than_the_original_and_a_final_full_refund_reverses_it_exactly(
    tea_order, django_capture_on_commit_callbacks
):
    order = pay(tea_order, django_capture_on_commit_callbacks)
    line = order.lines.get()
    originals = member_levels(order, COMMISSION)
    assert originals == {1: D("5.96"), 2: D("1.49")}

    # one unit: 1/3 → 1.98 and 0.49
    refund(order, django_capture_on_commit_callbacks, {line: 1})
    assert member_levels(order, REVERSAL) == {1: D("-1.98"), 2: D("-0.49")}
    # a second unit: cumulative 2/3 → 3.97 and 0.99 in all, so 1.99 and 0.50 now
    refund(order, django_capture_on_commit_callbacks, {line: 1})
    assert member_levels(order, REVERSAL) == {1: D("-3.97"), 2: D("-0.99")}
    second = order.refunds.order_by("pk").last()
    assert sorted(Entry.objects.filter(refund=second).values_list("level", "amount")) == [
        (1, D("-1.99")),
        (2, D("-0.50")),
    ]
    # the last unit: exactly what is left
    refund(order, django_capture_on_commit_callbacks)
    assert member_levels(order, REVERSAL) == {1: D("-5.96"), 2: D("-1.49")}
    assert Entry.objects.filter(order=order, kind=REVERSAL).count() == 6
    assert set(Entry.objects.filter(order=order, kind__in=[COMMISSION, REVERSAL]).values_list("status", flat=True)) == {
        REVERSED
    }


def test_partial_refunds_on_either_side_of_the_release_never_take_back_more_than_the_original(
    people, tea_order, django_capture_on_commit_callbacks
):
    order = pay(tea_order, django_capture_on_commit_callbacks)
    line = order.lines.get()
    refund(order, django_capture_on_commit_callbacks, {line: 1})  # reversal, before release
    order = complete(order)
    commission_release_due(now=order.completed_at + HOLD)

    refund(order, django_capture_on_commit_callbacks)  # the other two, after release: clawbacks

    assert member_levels(order, REVERSAL) == {1: D("-1.98"), 2: D("-0.49")}
    assert member_levels(order, CLAWBACK) == {1: D("-3.98"), 2: D("-1.00")}
    assert total(Entry.objects.filter(order=order, beneficiary__isnull=False)) == D("0.00")


def test_a_refund_applied_twice_changes_nothing(tea_order, django_capture_on_commit_callbacks):
    order = pay(tea_order, django_capture_on_commit_callbacks)
    refund_row = refund(order, django_capture_on_commit_callbacks, {order.lines.get(): 1})
    before = full_ledger(order)
    assert len(before) == 5

    commission_apply_refund(refund_id=refund_row.pk)
    commission_apply_refund_task(refund_row.pk)
    commission_apply_refund_task.delay(refund_row.pk)

    assert full_ledger(order) == before
    assert RefundApplied.objects.filter(refund=refund_row).count() == 1


def test_a_refund_before_the_split_ends_with_the_same_rows(people, tea_order, django_capture_on_commit_callbacks):
    # given: the same order twice; the first split at once, then refunded
    tea = tea_order.lines.get().product
    normal = pay(tea_order, django_capture_on_commit_callbacks)
    refund(normal, django_capture_on_commit_callbacks, {normal.lines.get(): 1})
    refund(normal, django_capture_on_commit_callbacks, {normal.lines.get(): 1})

    # when: the second is paid but its split message is delayed; it is refunded twice (the refund tasks run and
    # find nothing to reverse yet); then the split runs
    late = pay_order(place_order(tea_order.shop, {tea: 3}))
    refund(late, django_capture_on_commit_callbacks, {late.lines.get(): 1})
    refund(late, django_capture_on_commit_callbacks, {late.lines.get(): 1})
    assert not Entry.objects.filter(order=late).exists()
    assert commission_split_queued() == 1

    # then
    assert comparable(late) == comparable(normal)
    assert len(comparable(late)) == 7
    assert RefundApplied.objects.filter(refund__order=late).count() == 2


def test_refunds_applied_out_of_order_never_reverse_more_than_the_original(
    tea_order, django_capture_on_commit_callbacks
):
    # given: a refund of two units, then of the last one, whose commission tasks are delayed
    order = pay(tea_order, django_capture_on_commit_callbacks)
    line = order.lines.get()
    first = refund(order, django_capture_on_commit_callbacks, {line: 2}, execute=False)
    second = refund(order, django_capture_on_commit_callbacks, execute=False)

    # when: the second refund's task runs first (two workers, or a retried message)
    commission_apply_refund(refund_id=second.pk)
    commission_apply_refund(refund_id=first.pk)

    # then: the whole line is refunded, so exactly the originals are taken back, by reversals only (applied in
    # refund order: 3.97 + 1.99 and 0.99 + 0.50), with no clawback on top
    assert member_levels(order, REVERSAL) == {1: D("-5.96"), 2: D("-1.49")}
    assert member_levels(order, CLAWBACK) == {}
    assert list(
        Entry.objects.filter(order=order, kind=REVERSAL).order_by("pk").values_list("refund", "level", "amount")
    ) == [
        (first.pk, 1, D("-3.97")),
        (first.pk, 2, D("-0.99")),
        (second.pk, 1, D("-1.99")),
        (second.pk, 2, D("-0.50")),
    ]
    assert set(Entry.objects.filter(order=order, kind__in=[COMMISSION, REVERSAL]).values_list("status", flat=True)) == {
        REVERSED
    }


# --- the sweep -----------------------------------------------------------------------------------------------------


def test_the_sweep_requeues_a_paid_order_whose_outbox_row_was_lost(people, tea_order):
    # given: a paid order whose split message and outbox row are both gone
    pay_order(tea_order)
    SplitQueue.objects.filter(order=tea_order).delete()
    assert not Entry.objects.exists()

    # when
    assert commission_sweep() == 1

    # then: split once
    assert Entry.objects.filter(order=tea_order).count() == 3
    assert OrderSplit.objects.filter(order=tea_order).count() == 1
    assert not SplitQueue.objects.exists()
    before = full_ledger(tea_order)

    # and sweeping again changes nothing
    assert commission_sweep() == 0
    assert commission_sweep(now=timezone.now() + timedelta(hours=1)) == 0
    assert full_ledger(tea_order) == before


def test_the_sweep_resends_a_queued_order_whose_message_was_lost(people, tea_order):
    # given: the outbox row is there but its message was lost
    pay_order(tea_order)
    queued_at = SplitQueue.objects.get(order=tea_order).queued_at

    # when: the sweep runs once the row is older than COMMISSION_SWEEP_AFTER_SECONDS
    assert commission_sweep(now=queued_at + timedelta(hours=1)) == 1

    # then
    assert Entry.objects.filter(order=tea_order).count() == 3
    assert not SplitQueue.objects.exists()


def test_the_sweep_applies_a_refund_whose_message_was_lost(tea_order, django_capture_on_commit_callbacks):
    # given: a split order refunded in part, the refund's commission task never delivered
    order = pay(tea_order, django_capture_on_commit_callbacks)
    refund(order, django_capture_on_commit_callbacks, {order.lines.get(): 1}, execute=False)

    # when: the periodic tasks run
    commission_sweep(now=timezone.now() + timedelta(hours=1))

    # then: the refund's reversals are written
    assert member_levels(order, REVERSAL) == {1: D("-1.98"), 2: D("-0.49")}


# --- one message for many payments ---------------------------------------------------------------------------------


def test_many_payments_while_a_run_is_on_its_way_send_one_message(
    people, monkeypatch, django_capture_on_commit_callbacks
):
    # given: split messages recorded instead of sent
    sent = []
    monkeypatch.setattr(commission_split_order_task, "delay", lambda order_id=None: sent.append(order_id))
    _grace, _paul, sara = people
    shop = shop_with_products(ProductFactory(stock=100), owner=sara)

    # when: three payments commit before any run starts
    for _ in range(3):
        with django_capture_on_commit_callbacks(execute=True):
            pay_order(place_order(shop))

    # then: one message, and all three orders wait in the queue for it
    assert sent == [None]
    assert SplitQueue.objects.count() == 3

    # when: the run starts (it clears the flag first), and then another payment commits
    assert commission_split_order_task.run() == 3
    with django_capture_on_commit_callbacks(execute=True):
        pay_order(place_order(shop))

    # then: that payment sends a message of its own
    assert sent == [None, None]


def test_a_full_batch_asks_for_the_next_run_and_the_runs_split_everything_once(
    people, settings, django_capture_on_commit_callbacks
):
    # given: 5 paid orders waiting, batches of 2, tasks in process (each follow-up runs after its batch commits)
    settings.COMMISSION_SPLIT_BATCH = 2
    _grace, _paul, sara = people
    shop = shop_with_products(ProductFactory(stock=100), owner=sara)
    orders = [pay_order(place_order(shop)) for _ in range(5)]
    assert SplitQueue.objects.count() == 5

    # when: one run is started
    with django_capture_on_commit_callbacks(execute=True):
        commission_split_order_task.delay()

    # then: its follow-ups drained the rest, each order split once
    assert not SplitQueue.objects.exists()
    assert OrderSplit.objects.filter(order__in=orders).count() == 5
    assert Entry.objects.filter(order__in=orders).count() == 5 * 3


def test_a_payment_commits_when_the_broker_is_down_and_a_later_payment_sends_again(
    people, monkeypatch, caplog, django_capture_on_commit_callbacks
):
    # given: a broker that refuses connections
    from kombu.exceptions import OperationalError

    def refuse(order_id=None):
        raise OperationalError("connection refused")

    monkeypatch.setattr(commission_split_order_task, "delay", refuse)
    _grace, _paul, sara = people
    shop = shop_with_products(ProductFactory(stock=100), owner=sara)

    # when
    with django_capture_on_commit_callbacks(execute=True):
        order = pay_order(place_order(shop))

    # then: the order is paid and queued, the failure logged, and the flag not left behind
    order.refresh_from_db()
    assert order.paid_at is not None
    assert SplitQueue.objects.filter(order=order).exists()
    assert "the sweep will split the queued orders" in caplog.text
    sent = []
    monkeypatch.setattr(commission_split_order_task, "delay", lambda order_id=None: sent.append(order_id))
    with django_capture_on_commit_callbacks(execute=True):
        pay_order(place_order(shop))
    assert sent == [None]
