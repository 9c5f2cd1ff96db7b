"""Benchmark the quarterly tax report of 国务院令第810号 (issue #24, staff/tax_reports.py) at a million members.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/h_taxreport \\
        .venv/bin/python bench/tax_report.py [--members 1000000] [--months 3] [--monthly] [--profile]

PostgreSQL only. Like bench/tree.py it works in a throwaway database created beside DATABASE_URL's
(`test_bench_tax_<pid>_<name>`) and drops it at the end. It loads, with INSERT … SELECT over generate_series (no Python
loop): N users; N members (each the root of a tree of its own: the report never reads the tree); N identities (1 %
business payees with a company name and credit code, the others resident IDs whose name and number are one of 100
distinct pairs encrypted once and reused: the report still decrypts every row's two tokens, as Fernet gives no
shortcut for equal plaintexts); and for every member one paid withdrawal a month with its withheld tax
(payouts.TaxWithholding), so 3 N withdrawals and 3 N ledger rows over the quarter. Then it times
`staff.tax_reports.tax_report_generate` for the quarter: the aggregate per member, the identities decrypted, the
XLSX and CSV written and stored encrypted, the check against the ledger; and prints the rows, the seconds, the
check, the files' sizes and the process's peak memory. `--monthly` also times the monthly withholding summary of
the quarter's last month; `--profile` runs the quarterly report under cProfile and prints the top functions.

The markdown line goes to stdout, progress to stderr.
"""

import argparse
import cProfile
import io
import os
import pstats
import resource
import sys
import threading
import time
from datetime import date
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.tree import log, setup_django

DISTINCT_IDENTITIES = 100


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--members", type=int, default=1_000_000, help="members paid (default 1,000,000)")
    parser.add_argument("--months", type=int, default=3, choices=[1, 2, 3], help="months paid (default 3)")
    parser.add_argument("--year", type=int, default=2026)
    parser.add_argument("--monthly", action="store_true", help="also time the monthly summary of the last month")
    parser.add_argument("--profile", action="store_true", help="run the quarterly report under cProfile")
    return parser.parse_args(argv)


def load(n: int, months: int, year: int) -> None:
    """The users, members, identities, withdrawals and withheld tax, in SQL."""
    from django.core.management.color import no_style
    from django.db import connection, transaction

    from accounts.models import Identity, User
    from core.encryption import encrypt
    from payouts.models import TaxWithholding, Withdrawal
    from referrals.models import Member
    from tests.staff.tax_data import id_number

    names = [encrypt(f"王{chr(0x4E00 + k)}{chr(0x4E00 + 2 * k)}") for k in range(DISTINCT_IDENTITIES)]
    numbers = [encrypt(id_number(k + 1)) for k in range(DISTINCT_IDENTITIES)]
    steps = [
        (
            "users",
            "INSERT INTO accounts_user (id, password, is_superuser, first_name, last_name, is_staff, is_active,"
            " date_joined, email) SELECT g, '!', false, '', '', false, true, now(), 'm' || g || '@bench.invalid'"
            " FROM generate_series(1, %(n)s) g",
        ),
        (
            "members",
            "INSERT INTO referrals_member (id, user_id, parent_id, invite_code, status, join_source, joined_at,"
            " tree_id, lft, rght, level, is_named_on_leaderboard) SELECT g, g, NULL, 'BENCH' || lpad(g::text, 8, '0'),"
            " 'active', 'direct', now(), g, 1, 2, 0, false FROM generate_series(1, %(n)s) g",
        ),
        (
            "identities",
            "INSERT INTO accounts_identity (id, user_id, id_type, legal_name_encrypted, id_number_encrypted,"
            " id_number_index, status, status_reason, verified_at, verification_reference, payee_kind, company_name,"
            " credit_code, created_at, updated_at)"
            " SELECT g, g, 'resident_id', (%(names)s::text[])[g %% %(k)s + 1], (%(numbers)s::text[])[g %% %(k)s + 1],"
            " md5(g::text) || md5('i' || g), 'verified', '', now(), '',"
            " CASE WHEN g %% 100 = 0 THEN 'business' ELSE 'individual' END,"
            " CASE WHEN g %% 100 = 0 THEN '示例科技有限公司' || g ELSE '' END,"
            " CASE WHEN g %% 100 = 0 THEN '91' || lpad(g::text, 16, '0') ELSE '' END, now(), now()"
            " FROM generate_series(1, %(n)s) g",
        ),
        (
            "withdrawals",
            "INSERT INTO payouts_withdrawal (id, member_id, amount, status, account, idempotency_key,"
            " provider_reference, reason, requested_at, decided_at, paid_at)"
            " SELECT (m - 1) * %(n)s + g, g, 100 + g %% 900 + (g %% 100) / 100.0, 'paid', '{}'::jsonb,"
            " 'bench-' || m || '-' || g, '', '', now(), now(), now()"
            " FROM generate_series(1, %(months)s) m, generate_series(1, %(n)s) g",
        ),
        (
            "withheld tax",
            "INSERT INTO payouts_taxwithholding (id, withdrawal_id, member_id, method, status, paid_on, gross, tax,"
            " net, income, expenses, deduction, taxable, rate, quick_deduction, tax_due, withheld_before, created_at)"
            " SELECT w.id, w.id, w.member_id, 'cumulative_2025', 'withheld',"
            " make_date(%(year)s, ((w.id - 1) / %(n)s + 1)::int, (1 + w.member_id %% 28)::int), w.amount,"
            " round(w.amount * 0.03, 2), w.amount - round(w.amount * 0.03, 2), w.amount, w.amount * 0.2, 5000, 0,"
            " 0.03, 0, round(w.amount * 0.03, 2), 0, now() FROM payouts_withdrawal w",
        ),
    ]
    params = {"n": n, "months": months, "year": year, "names": names, "numbers": numbers, "k": DISTINCT_IDENTITIES}
    for label, sql in steps:
        started = time.perf_counter()
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(sql, params)
        log(f"  loaded {label} in {time.perf_counter() - started:.1f} s")
    with connection.cursor() as cursor:
        for statement in connection.ops.sequence_reset_sql(no_style(), [User, Member, Identity, Withdrawal,
                                                                          TaxWithholding]):  # fmt: skip
            cursor.execute(statement)
        cursor.execute("VACUUM ANALYZE")


def watch(report_id: int, stop: threading.Event) -> None:
    """Print the report's progress every 10 s, as the admin shows it (another connection: the run commits it)."""
    from django.db import connection

    from staff.models import TaxReport

    while not stop.wait(10):
        row = TaxReport.objects.filter(pk=report_id).values("status", "rows_done", "rows_total").first()
        log(f"    progress: {row}")
    connection.close()


def timed(kind: str, start: date, end: date, *, profile: bool) -> tuple[float, object]:
    from staff.models import TaxReport
    from staff.tax_reports import tax_report_generate

    report = TaxReport.objects.create(kind=kind, period_start=start, period_end=end)
    stop = threading.Event()
    watcher = threading.Thread(target=watch, args=(report.pk, stop), daemon=True)
    watcher.start()
    profiler = cProfile.Profile() if profile else None
    started = time.perf_counter()
    if profiler:
        profiler.enable()
    report = tax_report_generate(report_id=report.pk)
    if profiler:
        profiler.disable()
    seconds = time.perf_counter() - started
    stop.set()
    watcher.join()
    if profiler:
        out = io.StringIO()
        pstats.Stats(profiler, stream=out).sort_stats("cumulative").print_stats(30)
        log(out.getvalue())
        out = io.StringIO()
        pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(20)
        log(out.getvalue())
    return seconds, report


def sizes(report) -> str:
    from django.db.models import Sum
    from django.db.models.functions import Length

    from staff.models import TaxReportPiece

    found = dict(
        TaxReportPiece.objects.filter(report=report, generation=report.generation)
        .values("format")
        .annotate(size=Sum(Length("data")))
        .values_list("format", "size")
    )
    return f"XLSX {found.get('xlsx', 0) / 1e6:.0f} MB, CSV {found.get('csv', 0) / 1e6:.0f} MB (encrypted)"


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    setup_django()

    from django.conf import settings
    from django.db import connection

    from staff.models import TaxReport

    if connection.vendor != "postgresql":
        print("bench/tax_report.py needs PostgreSQL: set DATABASE_URL=postgres://…", file=sys.stderr)
        return 2
    settings.DEBUG = False
    old_name = connection.settings_dict["NAME"]
    connection.settings_dict["TEST"]["NAME"] = f"test_bench_tax_{os.getpid()}_{old_name}"
    log(f"creating throwaway database test_bench_tax_{os.getpid()}_{old_name} (DATABASE_URL's database is untouched)")
    connection.creation.create_test_db(verbosity=0, autoclobber=True, serialize=False, keepdb=False)
    try:
        with connection.cursor() as cursor:
            cursor.execute("SHOW server_version")
            log(f"PostgreSQL {cursor.fetchone()[0]}, {os.cpu_count()} CPUs")
        started = time.perf_counter()
        load(args.members, args.months, args.year)
        log(f"loaded {args.members:,} members × {args.months} months in {time.perf_counter() - started:.0f} s")
        end_month = args.months
        end = date(args.year, end_month + 1, 1) if end_month < 12 else date(args.year + 1, 1, 1)
        end = date.fromordinal(end.toordinal() - 1)
        seconds, report = timed(TaxReport.Kind.QUARTERLY, date(args.year, 1, 1), end, profile=args.profile)
        check = report.check_result
        print("| report | members | ledger rows | rows written | seconds | check | files | peak RSS |")
        print("| --- | ---: | ---: | ---: | ---: | --- | --- | ---: |")
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(
            f"| quarterly (810) | {args.members:,} | {check['ledger']['payouts']:,} | {check['report']['rows']:,} "
            f"| {seconds:.1f} | {'passed' if check['passed'] else 'FAILED'} | {sizes(report)} | {rss:.0f} MB |",
            flush=True,
        )
        log(f"check: {check}")
        if args.monthly:
            month_start = date(args.year, end_month, 1)
            seconds, report = timed(TaxReport.Kind.MONTHLY, month_start, end, profile=False)
            check = report.check_result
            rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
            print(
                f"| monthly summary | {args.members:,} | {check['ledger']['payouts']:,} | {check['report']['rows']:,} "
                f"| {seconds:.1f} | {'passed' if check['passed'] else 'FAILED'} | {sizes(report)} | {rss:.0f} MB |",
                flush=True,
            )
            log(f"check: {check}")
    finally:
        connection.close()
        connection.creation.destroy_test_db(old_name, verbosity=0, keepdb=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
