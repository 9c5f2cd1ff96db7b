"""Locks that serialise checkouts of one buyer, so limits on what their unpaid orders hold cannot be raced.

A checkout counts the units the buyer's unpaid orders already hold, then reserves more; two checkouts of the same
buyer at once would both count the same total and both pass. On PostgreSQL each checkout first takes a
transaction-scoped advisory lock per name (one per buyer contact, one per client address), in one order, before any
row lock: the second checkout waits, then counts the first one's order. SQLite serialises writers itself
(transactions are BEGIN IMMEDIATE in settings).
"""

import hashlib
from collections.abc import Iterable

from django.db import DEFAULT_DB_ALIAS, connections


def _lock_key(name: str) -> int:
    digest = hashlib.blake2b(f"shops.checkout:{name}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


def checkout_limit_lock(names: Iterable[str], *, using: str = DEFAULT_DB_ALIAS) -> None:
    """Block until this transaction holds the lock of every name (released at commit or rollback)."""
    connection = connections[using]
    if not connection.in_atomic_block:
        raise RuntimeError("checkout_limit_lock() must run inside transaction.atomic().")
    if connection.vendor != "postgresql":
        return
    with connection.cursor() as cursor:
        for key in sorted({_lock_key(name) for name in names}):  # one order: two checkouts never wait on each other
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [key])
