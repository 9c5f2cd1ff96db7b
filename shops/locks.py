"""The shops app's locks: a buyer's checkouts, and the rows of shops, orders, their lines and payments.

Checkouts of one buyer are serialised, so limits on what their unpaid orders hold cannot be raced. A checkout
counts the units the buyer's unpaid orders already hold, then reserves more; two checkouts of the same buyer at
once would both count the same total and both pass. On PostgreSQL each checkout first takes a transaction-scoped
advisory lock per name (one per buyer contact, one per client address), in one order, before any row lock: the
second checkout waits, then counts the first one's order. SQLite serialises writers itself (transactions are BEGIN
IMMEDIATE in settings).

Order rows are the lock the storefront and the commission ledger agree on: every order transition, payment and
refund here, and the split, the refund reversals and the release in commissions, lock the order row first (through
`order_lock` / `orders_lock`, in id order), so a refund is either seen by the split or applied after it, and a
release never races a refund. In one transaction: the shop, then orders, then their lines, then their payments;
orders always before wallets (payouts). The order of all locks: core/locks.py.
"""

from collections.abc import Iterable

from django.db import DEFAULT_DB_ALIAS
from django.db.models import QuerySet

from core.locks import advisory_lock, advisory_lock_key, row_lock, rows_lock
from shops.models import Order, OrderLine, Payment, Shop, WebhookEvent


def checkout_limit_lock(names: Iterable[str], *, using: str = DEFAULT_DB_ALIAS) -> None:
    """Block until this transaction holds the checkout lock of every name (released at commit or rollback)."""
    advisory_lock(*(advisory_lock_key(f"shops.checkout:{name}") for name in names), using=using)


def shop_lock(shop_id: int, *, with_owner: bool = False) -> Shop:
    """The shop's row, locked: changes to a shop and to its listings are serialised on it. `with_owner` reads the
    owner in the same query, whose member row is then locked too (FOR UPDATE covers every row the query joins)."""
    shops = Shop.objects.select_related("owner") if with_owner else Shop.objects
    return row_lock(shops.filter(pk=shop_id))


def order_lock(order_id: int) -> Order:
    """The order's row, locked (Order.DoesNotExist if there is none)."""
    return row_lock(Order.objects.filter(pk=order_id))


def orders_lock(orders: QuerySet[Order], *fields: str, flat: bool = False) -> list:
    """Lock the orders that `orders` (the caller's filter of Order.objects) matches, in id order, now; return them,
    or with `fields` their values (as values_list(*fields, flat=flat))."""
    return rows_lock(orders, *fields, flat=flat)


def order_lines_lock(order: Order) -> list[OrderLine]:
    """Every line of `order`, locked, in id order (after the order's own lock)."""
    return rows_lock(OrderLine.objects.filter(order=order))


def payment_lock(payment_id: int) -> Payment:
    """The payment's row, locked (after its order's lock)."""
    return row_lock(Payment.objects.filter(pk=payment_id))


def payments_lock(payments: QuerySet[Payment]) -> list[Payment]:
    """Lock the payments that `payments` (the caller's filter) matches, in id order (after their orders' locks)."""
    return rows_lock(payments)


def waiting_webhook_events_lock(events: QuerySet[WebhookEvent], *, limit: int | None = None) -> list[WebhookEvent]:
    """Claim the waiting (not yet applied) ones of `events`, oldest first, up to `limit`: locked, skipping those
    another run holds (so concurrent runs take different events and never wait for each other). Taken before any
    order lock."""
    # Without the payload (the provider's whole message, kept for people to read): the apply reads only `notice`.
    return rows_lock(events.filter(applied_at__isnull=True).defer("payload"), limit=limit, skip_locked=True)
