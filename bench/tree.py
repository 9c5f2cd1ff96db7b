"""Benchmark the upline tree at a given size: bulk load, tree check, joins, upline reads.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/test \\
        .venv/bin/python bench/tree.py --members 10000 100000 [--joins 50] [--uplines 1000] [--seed 1]

PostgreSQL only. The database named in DATABASE_URL is never read or written:
the script creates a throwaway database next to it (`test_bench_<name>`, migrated
from scratch), works only there, and drops it at the end, so it is safe to point
at any server the URL's user may create databases on.

For each N it empties the user and member tables, loads N users and N members as
one random recursive tree (member i's sponsor is a uniformly random earlier
member) with COPY, taking the nested-set values from `referrals.tree.compute_nested_sets`
(the code the checker uses), and then measures:

- load: building the rows, COPY of both tables and ANALYZE;
- check: `referrals.selectors.tree_check()` (what `check_referral_tree` costs), which must say valid;
- join: `referrals.services.member_join` under a random existing sponsor, one transaction
  each, timed alone (the new user is created outside the timing); the tree must still be valid after;
- upline: `referrals.selectors.member_upline(member_id, levels=3)` on random members.

The markdown table goes to stdout, progress to stderr.
"""

import argparse
import math
import os
import random
import statistics
import sys
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
UPLINE_LEVELS = 3
INVALID_EMAIL_DOMAIN = "bench.invalid"  # RFC 2606: can never be a real address
UNUSABLE_PASSWORD = "!"  # noqa: S105 - not a secret: what set_unusable_password() stores, minus the random suffix

TABLE_HEADER = (
    "| N | load s | check s | join median ms | join p95 ms | join max ms | upline median ms | upline p95 ms |\n"
    "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--members", type=int, nargs="+", required=True, metavar="N", help="tree sizes to measure")
    parser.add_argument("--joins", type=int, default=50, help="member_join calls timed per N (default 50)")
    parser.add_argument("--uplines", type=int, default=1000, help="member_upline calls timed per N (default 1000)")
    parser.add_argument("--seed", type=int, default=1, help="random seed for the tree shape and picks (default 1)")
    args = parser.parse_args(argv)
    if any(n < 1 for n in args.members):
        parser.error("--members sizes must be at least 1")
    if args.joins < 1 or args.uplines < 1:
        parser.error("--joins and --uplines must be at least 1")
    return args


def setup_django() -> None:
    sys.path.insert(0, str(REPO_ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    import django

    django.setup()


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def percentile(values: list[float], pct: float) -> float:
    """Nearest-rank percentile: a value that was actually observed."""
    ordered = sorted(values)
    rank = max(math.ceil(pct / 100 * len(ordered)), 1)
    return ordered[rank - 1]


def random_parents(n: int, rng: random.Random) -> list[int | None]:
    """Sponsor index of each member (0-based): member 0 is the root, member i > 0 under a random earlier one."""
    return [None] + [rng.randrange(i) for i in range(1, n)]


def truncate_tables() -> None:
    from django.db import connection

    from accounts.models import User
    from referrals.models import Member, TreeEvent

    models = [User, Member, TreeEvent]
    tables = ", ".join(connection.ops.quote_name(model._meta.db_table) for model in models)
    with connection.cursor() as cursor:
        # CASCADE empties whatever else points at users (shops, commissions...), all empty in the throwaway db.
        cursor.execute(f"TRUNCATE {tables} RESTART IDENTITY CASCADE")


def bulk_load(n: int, rng: random.Random) -> int:
    """Load N users and N members (ids 1..N, member i belongs to user i) as one tree; return its depth."""
    from django.core.management.color import no_style
    from django.db import connection, transaction
    from django.utils import timezone

    from accounts.models import User
    from referrals.models import Member
    from referrals.tree import compute_nested_sets

    parents = random_parents(n, rng)
    member_ids = range(1, n + 1)
    parent_ids = [None if p is None else p + 1 for p in parents]
    rows = ((mid, pid, None, None, None, None) for mid, pid in zip(member_ids, parent_ids, strict=True))
    report = compute_nested_sets(rows)
    if len(report.expected) != n:
        raise RuntimeError(f"compute_nested_sets numbered {len(report.expected)} of {n} members")
    now = timezone.now()
    user_table = connection.ops.quote_name(User._meta.db_table)
    member_table = connection.ops.quote_name(Member._meta.db_table)

    connection.ensure_connection()
    raw = connection.connection  # the psycopg 3 connection under Django's wrapper
    with transaction.atomic():
        with raw.cursor() as cursor:
            user_copy = (
                f"COPY {user_table} (id, password, is_superuser, first_name, last_name, is_staff, is_active,"
                " date_joined, email) FROM STDIN"
            )
            with cursor.copy(user_copy) as copy:
                for uid in member_ids:
                    copy.write_row(
                        (uid, UNUSABLE_PASSWORD, False, "", "", False, True, now, f"m{uid}@{INVALID_EMAIL_DOMAIN}")
                    )
            member_copy = (
                f"COPY {member_table} (id, user_id, parent_id, invite_code, status, join_source, joined_at,"
                " tree_id, lft, rght, level) FROM STDIN"
            )
            with cursor.copy(member_copy) as copy:
                for mid, pid in zip(member_ids, parent_ids, strict=True):
                    tree_id, lft, rght, level = report.expected[mid]
                    source = Member.JoinSource.DIRECT if pid is None else Member.JoinSource.INVITE
                    # 13 characters, never clashing with the 8-character codes member_join generates.
                    code = f"BENCH{mid:08d}"
                    copy.write_row((mid, mid, pid, code, Member.Status.ACTIVE, source, now, tree_id, lft, rght, level))
        with connection.cursor() as cursor:
            # Ids were given explicitly, so move the sequences past them for the joins that follow.
            for statement in connection.ops.sequence_reset_sql(no_style(), [User, Member]):
                cursor.execute(statement)
    with connection.cursor() as cursor:
        cursor.execute(f"ANALYZE {user_table}, {member_table}")
    return max(level for _tree_id, _lft, _rght, level in report.expected.values())


def require_valid_tree(when: str) -> float:
    """Run the checker; return how long it took. Stops the benchmark if the tree is not valid."""
    from referrals.selectors import tree_check

    started = time.perf_counter()
    report = tree_check()
    elapsed = time.perf_counter() - started
    if not report.is_valid:
        details = "\n".join(report.describe(limit=10))
        raise SystemExit(f"tree is not valid {when}:\n{details}")
    return elapsed


def measure_joins(n: int, joins: int, rng: random.Random) -> list[float]:
    """Time member_join alone, `joins` times, each under a random member that exists at that moment."""
    from accounts.models import User
    from referrals.models import Member
    from referrals.services import member_join

    timings = []
    for j in range(joins):
        user = User.objects.create(email=f"join{j}@{INVALID_EMAIL_DOMAIN}", password=UNUSABLE_PASSWORD)
        sponsor = Member(pk=rng.randint(1, n + j))  # member_join re-reads the sponsor under its lock
        started = time.perf_counter()
        member = member_join(user=user, sponsor=sponsor)
        timings.append(time.perf_counter() - started)
        if member.pk != n + j + 1:
            raise RuntimeError(f"expected the new member to get id {n + j + 1}, got {member.pk}")
    return timings


def measure_uplines(total: int, uplines: int, rng: random.Random) -> list[float]:
    from referrals.selectors import member_upline

    timings = []
    for _ in range(uplines):
        member_id = rng.randint(1, total)
        started = time.perf_counter()
        member_upline(member_id, UPLINE_LEVELS)
        timings.append(time.perf_counter() - started)
    return timings


def bench_size(n: int, args: argparse.Namespace) -> str:
    # One generator per N, so a size gives the same tree and picks whatever else is on the command line.
    rng = random.Random(f"{args.seed}:{n}")
    log(f"N={n}: emptying tables")
    truncate_tables()

    started = time.perf_counter()
    depth = bulk_load(n, rng)
    load_s = time.perf_counter() - started
    log(f"N={n}: loaded in {load_s:.2f} s (tree depth {depth})")

    check_s = require_valid_tree("after the bulk load")
    log(f"N={n}: tree_check valid in {check_s:.2f} s")

    joins = measure_joins(n, args.joins, rng)
    joins_ms = [t * 1000 for t in joins]
    log(f"N={n}: {args.joins} joins, median {statistics.median(joins_ms):.1f} ms, max {max(joins_ms):.1f} ms")
    check_after_s = require_valid_tree(f"after {args.joins} joins")
    log(f"N={n}: tree_check valid after the joins in {check_after_s:.2f} s")

    uplines_ms = [t * 1000 for t in measure_uplines(n + args.joins, args.uplines, rng)]
    log(f"N={n}: {args.uplines} uplines, median {statistics.median(uplines_ms):.2f} ms")

    return (
        f"| {n:,} | {load_s:.2f} | {check_s:.2f} "
        f"| {statistics.median(joins_ms):.1f} | {percentile(joins_ms, 95):.1f} | {max(joins_ms):.1f} "
        f"| {statistics.median(uplines_ms):.2f} | {percentile(uplines_ms, 95):.2f} |"
    )


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    setup_django()

    from django.conf import settings
    from django.db import connection

    if connection.vendor != "postgresql":
        print(
            f"bench/tree.py needs PostgreSQL, but DATABASE_URL gives a {connection.vendor} database. "
            "Set DATABASE_URL=postgres://user@host:5432/name (the named database is not touched; "
            "a throwaway one is created beside it).",
            file=sys.stderr,
        )
        return 2
    # The query log DEBUG keeps would cost time inside every measurement; production runs with DEBUG off.
    settings.DEBUG = False

    old_name = connection.settings_dict["NAME"]
    # Not pytest-django's `test_<name>`: a test run against the same server must not clobber us, nor we it.
    connection.settings_dict["TEST"]["NAME"] = f"test_bench_{old_name}"
    log(f"creating throwaway database test_bench_{old_name} (DATABASE_URL's database {old_name} is not touched)")
    connection.creation.create_test_db(verbosity=0, autoclobber=True, serialize=False, keepdb=False)
    try:
        with connection.cursor() as cursor:
            cursor.execute("SHOW server_version")
            log(f"PostgreSQL {cursor.fetchone()[0]}, {os.cpu_count()} CPUs")
        print(TABLE_HEADER, flush=True)
        for n in args.members:
            print(bench_size(n, args), flush=True)
    finally:
        connection.creation.destroy_test_db(old_name, verbosity=0, keepdb=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
