"""The fault suite's world and traffic: members in a random tree with shops, buyers paying, staff refunding and
completing orders, members withdrawing; and the check after recovery (the ledger checker plus what it leaves to a
grace period: every paid order split now, every refund applied now, no payout sent twice).

Traffic runs in the test process, which plays the web tier (checkout, the payment webhook, the admin's refunds
and approvals). What the web tier hands to Celery goes wherever the test's app publishes: real workers in the
scenarios that have them, in-process otherwise.
"""

import random
from collections import Counter
from dataclasses import dataclass, field
from decimal import Decimal

from django.db.models import Count, Exists, OuterRef

from accounts.models import User
from commissions.models import CommissionEntry, OrderSplit, RefundApplied
from payouts.models import SandboxTransfer, Withdrawal
from payouts.selectors import member_balance
from payouts.services import PayoutError, payout_account_save, withdrawal_approve, withdrawal_request
from referrals.models import Member
from shops.models import Order, OrderLine, Product, Refund, Shop
from shops.services import ShopError, order_mark_completed, order_mark_shipped, order_refund, shop_listing_add
from staff.ledger_check import ledger_check
from tests.factories import MemberFactory, ProductFactory, ShopFactory, pay_order, place_order
from tests.faults.conftest import FaultRun
from tests.payouts.test_money import ensure_plan_in_force

CENT = Decimal("0.01")
REFUNDABLE = (Order.Status.PAID, Order.Status.SHIPPED, Order.Status.COMPLETED)


@dataclass
class World:
    rng: random.Random
    members: list[Member]
    shops: list[Shop]
    staff: User
    figures: Counter = field(default_factory=Counter)


def build_world(seed: int, *, members: int = 12, products: int = 6) -> World:
    """A random upline tree of `members` (each with a shop listing three products and a payout account)."""
    ensure_plan_in_force()
    rng = random.Random(seed)
    tree = [MemberFactory()]
    for _ in range(members - 1):
        tree.append(MemberFactory(sponsor=rng.choice(tree)))
    catalogue = [
        ProductFactory(
            price=Decimal(rng.randint(990, 29_900)) / 100,
            stock=100_000,
            commission_rate=rng.choice([Decimal("0.0500"), Decimal("0.1000"), Decimal("0.1500")]),
        )
        for _ in range(products)
    ]
    shops = []
    for member in tree:
        payout_account_save(
            member=member, method="alipay", holder_name="王芳", alipay_account=f"m{member.pk}@example.com"
        )
        shop = ShopFactory(owner=member)
        for product in rng.sample(catalogue, 3):
            shop_listing_add(shop=shop, product=product)
        shops.append(shop)
    staff = User.objects.create_user(email=f"finance{seed}@example.com", password="x", is_staff=True)
    return World(rng=rng, members=tree, shops=shops, staff=staff)


# --- Traffic: each step is what one request of the web tier does --------------------------------------------


def pay_new_order(world: World) -> Order:
    """A buyer checks out in a random shop (one to three products, one to three of each) and pays."""
    shop = world.rng.choice(world.shops)
    listed = list(Product.objects.filter(listings__shop=shop).order_by("pk"))
    chosen = world.rng.sample(listed, world.rng.randint(1, len(listed)))
    order = pay_order(place_order(shop, {product: world.rng.randint(1, 3) for product in chosen}))
    world.figures["orders paid"] += 1
    return order


def refund_random(world: World) -> Refund | None:
    """Staff refund part of a random refundable order (one line, some of its quantity), or all of it."""
    # Half the time a completed order, whose commission may be released or paid out already: a clawback.
    completed_first = world.rng.random() < 0.5
    order = (completed_first and _random(Order.objects.filter(status=Order.Status.COMPLETED), world.rng)) or _random(
        Order.objects.filter(status__in=REFUNDABLE), world.rng
    )
    if order is None:
        return None
    quantities = None
    if world.rng.random() < 0.6:
        lines = [line for line in OrderLine.objects.filter(order=order).order_by("pk") if line.refundable_quantity]
        if not lines:
            return None
        line = world.rng.choice(lines)
        quantities = {line.pk: world.rng.randint(1, line.refundable_quantity)}
    try:
        refund = order_refund(order=order, quantities=quantities, actor=world.staff, reason="fault suite")
    except ShopError:
        return None  # refunded in full meanwhile: a refusal that changes nothing
    world.figures["refunds"] += 1
    return refund


def complete_random(world: World) -> Order | None:
    """Staff ship and complete a random paid order: its commission becomes releasable (hold 0 in the suite)."""
    order = _random(Order.objects.filter(status=Order.Status.PAID), world.rng)
    if order is None:
        return None
    order_mark_shipped(order=order, actor=world.staff)
    order_mark_completed(order=order, actor=world.staff)
    world.figures["orders completed"] += 1
    return order


def withdraw_random(world: World) -> Withdrawal | None:
    """A member with money available asks for some or all of it; staff approve it."""
    candidates = [m for m in world.members if member_balance(m).withdrawable >= Decimal("10.00")]
    if not candidates:
        return None
    member = world.rng.choice(candidates)
    available = member_balance(member).withdrawable
    amount = (available * Decimal(world.rng.uniform(0.3, 1.0))).quantize(CENT)
    try:
        withdrawal = withdrawal_request(member=member, amount=max(amount, Decimal("10.00")))
        if withdrawal.status == Withdrawal.Status.REQUESTED:
            withdrawal_approve(withdrawal=withdrawal, actor=world.staff)
    except PayoutError:
        return None  # too many open requests, or the balance moved: refused, nothing changed
    world.figures["withdrawals"] += 1
    return withdrawal


def _random(queryset, rng: random.Random):
    ids = list(queryset.order_by("pk").values_list("pk", flat=True))
    return queryset.model.objects.get(pk=rng.choice(ids)) if ids else None


# --- After recovery -------------------------------------------------------------------------------------------


def unsettled() -> dict[str, int]:
    """What recovery has not finished yet: orders paid but not split, refunds of split orders not applied,
    withdrawals approved or still being paid."""
    return {
        "unsplit paid orders": Order.objects.filter(paid_at__isnull=False)
        .exclude(Exists(OrderSplit.objects.filter(order_id=OuterRef("pk"))))
        .count(),
        "unapplied refunds": Refund.objects.filter(Exists(OrderSplit.objects.filter(order_id=OuterRef("order_id"))))
        .exclude(Exists(RefundApplied.objects.filter(refund_id=OuterRef("pk"))))
        .count(),
        "open payouts": Withdrawal.objects.filter(
            status__in=[Withdrawal.Status.APPROVED, Withdrawal.Status.PROCESSING]
        ).count(),
    }


def final_check(scenario: str, seed: int, world: World) -> FaultRun:
    """The ledger checker's violations, plus lost orders and duplicate payouts counted without grace."""
    results = ledger_check()
    problems = [f"{result.name}: {line}" for result in results for line in result.violations]
    left = unsettled()
    lost = left["unsplit paid orders"] + left["unapplied refunds"]
    problems += [f"{name}: {count}" for name, count in left.items() if count]
    transfers = SandboxTransfer.objects.filter(outcome=SandboxTransfer.Outcome.PAID)
    # The provider records one transfer per idempotency key; a withdrawal paid twice would need two keys for one
    # withdrawal (a second withdrawal row for the same money) or money sent for a withdrawal not marked paid.
    paid = Withdrawal.objects.filter(status=Withdrawal.Status.PAID)
    duplicates = (
        transfers.exclude(Exists(paid.filter(idempotency_key=OuterRef("idempotency_key")))).count()
        + paid.exclude(Exists(transfers.filter(idempotency_key=OuterRef("idempotency_key")))).count()
        + paid.values("idempotency_key").annotate(n=Count("pk")).filter(n__gt=1).count()
    )
    figures = dict(world.figures)
    figures["paid out"] = paid.count()
    figures["clawback entries"] = CommissionEntry.objects.filter(kind=CommissionEntry.Kind.CLAWBACK).count()
    return FaultRun(
        scenario=scenario,
        seed=seed,
        violations=sum(result.count for result in results),
        lost_orders=lost,
        duplicate_payouts=duplicates,
        figures=figures,
        problems=problems,
    )
