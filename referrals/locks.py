"""The one lock every structural write to the upline tree takes first.

django-mptt shifts `lft`/`rght` of many rows on each insert or move and picks a
new root's `tree_id` as max + 1; two writers at once corrupt the nested sets or
duplicate a tree id. Its docs leave mutual exclusion to the caller. On PostgreSQL
that is a transaction-scoped advisory lock, taken before any row lock (so it
cannot deadlock against them) and released on commit or rollback. SQLite
serialises writers itself (transactions are BEGIN IMMEDIATE in settings).
"""

import hashlib

from django.db import DEFAULT_DB_ALIAS, connections

TREE_LOCK_KEY = int.from_bytes(hashlib.blake2b(b"referrals.member-tree", digest_size=8).digest(), "big", signed=True)


def tree_lock_acquire(*, using: str = DEFAULT_DB_ALIAS) -> None:
    """Block until this transaction holds the tree write lock."""
    connection = connections[using]
    if not connection.in_atomic_block:
        raise RuntimeError("tree_lock_acquire() must run inside transaction.atomic().")
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [TREE_LOCK_KEY])
