"""Locks: PostgreSQL advisory locks, and row locks taken in one order.

Every lock is transaction-scoped (released at commit or rollback) and taken through a named helper in the
`locks.py` of the app that owns what is locked (`shops.locks.order_lock`, `payouts.locks.wallets_lock`, …); those
helpers are built on the two primitives here, and no other code calls `select_for_update` (a test checks). A
transaction that needs several locks takes them in this order, so two transactions never wait on each other in a
circle (a deadlock):

0. An approval request's row (`accounts.locks.approval_request_lock`, four eyes), before everything the approved
   change locks: only deciding the request ever locks it.
1. Advisory locks, before any other row lock: the tree lock (`referrals.locks`), a buyer's checkout locks
   (`shops.locks`), the commission settings lock (`commissions.locks`); several keys in ascending order.
2. Row locks, each model's rows in primary-key order, the models in this order:
   - the commission settings: the policy in force, then plans (`commissions.locks`);
   - claims of queued work (`commissions.locks.split_queue_claim`, `shops.locks.waiting_webhook_events_lock`):
     SKIP LOCKED, so they never wait;
   - a network's report import, then the network, then its order lines (`networks.locks`);
   - members (`referrals.locks`), shops, then **orders**, then their lines, then their payments (`shops.locks`);
   - risk flags (`commissions.locks.risk_flag_lock`), after the orders whose money they hold;
   - a withdrawal's transfer at a payout rail, then withdrawals, then their invoices, then **wallets**
     (`payouts.locks`): a member's money moves under the wallet lock, taken last;
   - user accounts (`accounts.locks`).

   Orders always come before wallets: a transaction that locks both takes the orders first.

On SQLite (the embedded default) writers are serialised by the database itself (transactions are BEGIN
IMMEDIATE in settings), so advisory locks do nothing there and FOR UPDATE is left out by Django.
"""

import hashlib

from django.db import DEFAULT_DB_ALIAS, connections
from django.db.models import Model, QuerySet


def advisory_lock_key(name: str) -> int:
    """A stable 64-bit advisory lock key for `name` (the same in every process)."""
    return int.from_bytes(hashlib.blake2b(name.encode(), digest_size=8).digest(), "big", signed=True)


def _in_transaction(using: str):
    connection = connections[using]
    if not connection.in_atomic_block:
        raise RuntimeError("advisory locks are taken inside transaction.atomic(): they are released at its end.")
    return connection


def advisory_lock(*keys: int, using: str = DEFAULT_DB_ALIAS) -> None:
    """Block until this transaction holds the advisory lock of every key (ascending order, each key once)."""
    connection = _in_transaction(using)
    if connection.vendor != "postgresql":
        return
    with connection.cursor() as cursor:
        for key in sorted(set(keys)):
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [key])


def advisory_lock_try(key: int, *, using: str = DEFAULT_DB_ALIAS) -> bool:
    """Take the advisory lock of `key` if it is free; False (nothing waited for) if another transaction holds it.
    True where there are no advisory locks (SQLite)."""
    connection = _in_transaction(using)
    if connection.vendor != "postgresql":
        return True
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_xact_lock(%s)", [key])
        return cursor.fetchone()[0]


def rows_lock(
    queryset: QuerySet,
    *fields: str,
    flat: bool = False,
    limit: int | None = None,
    order_by: tuple[str, ...] = ("pk",),
    **options,
) -> list:
    """Lock the rows of `queryset` (SELECT … FOR UPDATE, with Django's `options`: nowait, skip_locked, of, no_key)
    now, in primary-key order, and return them: the objects, or with `fields` their values (values_list(*fields,
    flat=flat)). `limit` takes the first rows only.

    Another order (`order_by`) only with skip_locked: a claim that skips locked rows never waits, so it cannot
    deadlock, whatever order it reads in.
    """
    if tuple(order_by) != ("pk",) and not options.get("skip_locked"):
        raise ValueError("rows are locked in primary-key order (another order only with skip_locked=True)")
    locked = queryset.select_for_update(**options).order_by(*order_by)
    if fields:
        locked = locked.values_list(*fields, flat=flat)
    if limit is not None:
        locked = locked[:limit]
    return list(locked)


def row_lock(queryset: QuerySet, **options) -> Model:
    """Lock the one row of `queryset` now and return it (`queryset.model.DoesNotExist` if there is none)."""
    return queryset.select_for_update(**options).get()
