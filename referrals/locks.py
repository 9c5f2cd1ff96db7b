"""The tree's locks: the one lock every structural write to the upline tree takes first, and member rows.

django-mptt shifts `lft`/`rght` of many rows on each insert or move and picks a
new root's `tree_id` as max + 1; two writers at once corrupt the nested sets or
duplicate a tree id. Its docs leave mutual exclusion to the caller. On PostgreSQL
that is a transaction-scoped advisory lock, taken before any row lock (so it
cannot deadlock against them) and released on commit or rollback. SQLite
serialises writers itself (transactions are BEGIN IMMEDIATE in settings).
The order of all locks: core/locks.py.
"""

import time

from django.db import DEFAULT_DB_ALIAS, connections

from core.locks import advisory_lock, advisory_lock_key, advisory_lock_try, rows_lock
from referrals.models import Member

TREE_LOCK_KEY = advisory_lock_key("referrals.member-tree")


def tree_lock_acquire(*, using: str = DEFAULT_DB_ALIAS) -> None:
    """Block until this transaction holds the tree write lock."""
    advisory_lock(TREE_LOCK_KEY, using=using)


# An index pass (referrals.services.tree_index_pending) marks its transaction with this application name, so that
# a staff move can find it and cancel it: a pass is all-or-nothing, and a cancelled one simply runs again later.
INDEX_RUN_APPLICATION_NAME = "referrals-tree-index"
# How long a staff move keeps cancelling an index pass that holds the tree lock before it waits, and how often.
TREE_LOCK_CANCEL_SECONDS = 5.0
TREE_LOCK_CANCEL_PAUSE = 0.02


def tree_index_pass_mark(*, using: str = DEFAULT_DB_ALIAS) -> None:
    """Label this transaction as an index pass (PostgreSQL; reverts at commit or rollback)."""
    connection = connections[using]
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL application_name = %s", [INDEX_RUN_APPLICATION_NAME])


def tree_lock_acquire_first(*, using: str = DEFAULT_DB_ALIAS) -> None:
    """Take the tree lock ahead of index passes: cancel a pass that holds it rather than wait for it.

    At a million members a pass rewrites most of the tree and can hold the lock for a minute; a staff move should
    not wait for that. Anything else holding the lock (another move, a delete, a repair) is waited for as usual.

    A cancel reaches only a statement that is running: a pass caught between two statements (idle in its
    transaction) ignores it and runs its next statement. So the cancel is repeated, with a try for the lock after
    each, for up to TREE_LOCK_CANCEL_SECONDS; then, if a pass still holds the lock, the move waits for it.
    """
    connection = connections[using]
    if advisory_lock_try(TREE_LOCK_KEY, using=using) or connection.vendor != "postgresql":
        return
    deadline = time.monotonic() + TREE_LOCK_CANCEL_SECONDS
    while _index_passes_cancel(connection) and time.monotonic() < deadline:
        time.sleep(TREE_LOCK_CANCEL_PAUSE)
        if advisory_lock_try(TREE_LOCK_KEY, using=using):
            return
    # Queue for the lock (at once when no pass holds it): a run asked for after the cancel queues behind this move.
    tree_lock_acquire(using=using)


def _index_passes_cancel(connection) -> int:
    """Send a cancel to each index pass of this database holding the tree lock; how many there were."""
    unsigned = TREE_LOCK_KEY & 0xFFFFFFFFFFFFFFFF
    high, low = unsigned >> 32, unsigned & 0xFFFFFFFF
    with connection.cursor() as cursor:
        # pg_stat_activity is a snapshot per transaction: refresh it, or a run started since is invisible.
        cursor.execute("SELECT pg_stat_clear_snapshot()")
        cursor.execute(
            "SELECT pg_cancel_backend(l.pid) FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
            "WHERE l.locktype = 'advisory' AND l.granted AND l.classid::bigint = %s AND l.objid::bigint = %s "
            "AND l.objsubid = 1 AND a.application_name = %s "
            # Advisory locks are per database: a pass of another database on the same server is not ours to cancel.
            "AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())",
            [high, low, INDEX_RUN_APPLICATION_NAME],
        )
        return len(cursor.fetchall())


def member_lock(member_id: int, *, no_key: bool = False) -> Member | None:
    """The member's row, locked (None if there is no such member). Taken after the tree lock, never before, so a
    concurrent status change is seen and not overwritten.

    FOR UPDATE (a status change, a delete) also waits for joins under this member (they hold FOR KEY SHARE on it);
    `no_key` (FOR NO KEY UPDATE: a move, as the parent link is not a key) lets them go on.
    """
    locked = rows_lock(Member.objects.filter(pk=member_id), limit=1, no_key=no_key)
    return locked[0] if locked else None
