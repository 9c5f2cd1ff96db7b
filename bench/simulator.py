"""Benchmark the commission-plan simulator: `plan_simulation_run` over ≥ 100,000 split lines, end to end.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres .venv/bin/python bench/simulator.py \\
        [--lines 100000] [--sharers 200] [--seed 1]

PostgreSQL only. The database named in DATABASE_URL is never read or written: the script creates a throwaway
database next to it, `bench_simulator_<random>`, migrated from scratch, and drops it at the end (also on error).

What it does:

1. a three-level policy and plan (50/30/20 % of each line's pool) and `--sharers` chains of three members made
   through the services (bench/commissions.py's `make_catalogue`); the shops sell tea (12.5 %), rice (15 %) and a
   gadget whose 40 % commission makes the members' 100 % of its pool exceed the 30 % payout ratio, so a third of
   the lines are capped;
2. COPYs ⌈lines / 3⌉ paid orders of 3 lines each with their split-queue rows (bench/commissions.py's
   `load_paid_orders`), then runs the real split in-process (`commission_split_queued`) so the ledger holds exactly
   what production writes: an `OrderSplit` per order and 4 entries per line;
3. times `plan_simulation_run` (one call, in this process, as the Celery task runs it) for a draft equal to the
   plan in force (and checks that both sides then agree to the cent) and for a different draft with a tighter
   payout ratio; also checks that the ledger is unchanged.

The markdown table goes to stdout, progress to stderr.
"""

import argparse
import os
import platform
import random
import secrets
import signal
import sys
import time
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
GADGET = ("Gadget", Decimal("45.00"), Decimal("0.4000"))  # 40 % of the net to members > the 30 % payout ratio
DRAFTS = (
    ("equal to the plan in force (50/30/20)", ("0.5000", "0.3000", "0.2000"), {}),
    ("60/25/15, max payout ratio 0.2000", ("0.6000", "0.2500", "0.1500"), {"max_payout_ratio": Decimal("0.2000")}),
)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lines", type=int, default=100_000, help="split lines to replay (default 100,000)")
    parser.add_argument("--sharers", type=int, default=200, help="three-member chains, one shop each (default 200)")
    parser.add_argument("--seed", type=int, default=1, help="random seed for sharers and quantities (default 1)")
    args = parser.parse_args(argv)
    if args.lines < 3 or args.sharers < 1:
        parser.error("--lines must be at least 3 and --sharers at least 1")
    return args


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def load_ledger(args):
    """The catalogue, the paid orders and their real split; returns the number of split lines."""
    from django.db import connection

    from bench.commissions import Catalogue, load_paid_orders, make_catalogue
    from commissions.services import commission_split_queued
    from shops.models import Product

    started = time.perf_counter()
    catalogue = make_catalogue(args.sharers)
    title, price, rate = GADGET
    gadget = Product.objects.create(title=title, price=price, stock=10**9, commission_rate=rate)
    catalogue = Catalogue(
        sharers=catalogue.sharers,
        products=[*catalogue.products[:2], (gadget.pk, gadget.title, gadget.price, gadget.commission_rate)],
    )
    log(f"{args.sharers} sharers three levels deep with their shops in {time.perf_counter() - started:.1f} s")

    orders = -(-args.lines // 3)
    started = time.perf_counter()
    load_paid_orders(orders, catalogue, random.Random(f"{args.seed}:orders"))
    log(f"{orders:,} paid orders loaded in {time.perf_counter() - started:.1f} s")
    started = time.perf_counter()
    while commission_split_queued(limit=5_000):
        pass
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE")
    log(f"split by the real split in {time.perf_counter() - started:.1f} s")
    return orders * 3


def ledger_fingerprint() -> tuple:
    from django.db.models import Count, Sum

    from commissions.models import CommissionEntry, OrderSplit

    totals = CommissionEntry.objects.aggregate(rows=Count("pk"), amount=Sum("amount"), last=Sum("pk"))
    return (OrderSplit.objects.count(), totals["rows"], totals["amount"], totals["last"])


def timed_run(label: str, rates: tuple, overrides: dict) -> tuple[str, dict, float]:
    from django.utils import timezone

    from commissions.models import PlanSimulation
    from commissions.simulation import plan_simulation_run

    today = timezone.localdate()
    padded = (*(Decimal(rate) for rate in rates), None, None, None)[:3]
    # The row plan_simulation_create would write, without its on-commit task (eager here): the run is timed alone.
    simulation = PlanSimulation.objects.create(
        name=label,
        level1_rate=padded[0],
        level2_rate=padded[1],
        level3_rate=padded[2],
        date_from=today - timedelta(days=1),
        date_to=today,
        **overrides,
    )
    started = time.perf_counter()
    plan_simulation_run(simulation_id=simulation.pk)
    seconds = time.perf_counter() - started
    simulation.refresh_from_db()
    if simulation.status != PlanSimulation.Status.DONE:
        raise RuntimeError(f"[{label}] the simulation ended {simulation.status}: {simulation.error}")
    log(f"[{label}] {simulation.result['lines']:,} lines in {seconds:.1f} s")
    return label, simulation.result, seconds


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, lambda _signum, _frame: sys.exit(143))
    sys.path.insert(0, str(REPO_ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    import django

    django.setup()
    from django.conf import settings
    from django.db import connection

    if connection.vendor != "postgresql":
        print(
            "bench/simulator.py needs PostgreSQL: set DATABASE_URL=postgres://user@host:5432/name (not touched; a "
            "throwaway database is created beside it).",
            file=sys.stderr,
        )
        return 2
    settings.DEBUG = False  # no query log kept in memory

    old_name = connection.settings_dict["NAME"]
    name = f"bench_simulator_{secrets.token_hex(4)}"
    with connection.cursor() as cursor:
        cursor.execute("SHOW server_version")
        server = cursor.fetchone()[0]
    log(f"PostgreSQL {server}, {os.cpu_count()} CPUs, Python {platform.python_version()}, Django "
        f"{django.get_version()}")  # fmt: skip
    connection.settings_dict["TEST"]["NAME"] = name
    log(f"creating throwaway database {name} ({old_name} is not touched)")
    connection.creation.create_test_db(verbosity=0, autoclobber=True, serialize=False, keepdb=False)
    try:
        lines = load_ledger(args)
        before = ledger_fingerprint()
        results = [timed_run(label, rates, overrides) for label, rates, overrides in DRAFTS]
        if ledger_fingerprint() != before:
            raise RuntimeError("the ledger changed during a simulation")
        equal = results[0][1]
        if equal["simulated"] != equal["actual"] or equal["top_gainers"] or equal["top_losers"]:
            raise RuntimeError("a draft equal to the plan in force does not reproduce the real split")
        if equal["lines"] != lines:
            raise RuntimeError(f"replayed {equal['lines']:,} lines, expected {lines:,}")
    finally:
        connection.creation.destroy_test_db(old_name, verbosity=0, keepdb=False)

    print("| draft | lines | seconds | lines/s | members' total, paid | members' total, draft | lines capped, draft |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for label, result, seconds in results:
        capped = sum(cap["lines"] for cap in result["simulated"]["capped"].values())
        print(
            f"| {label} | {result['lines']:,} | {seconds:.1f} | {result['lines'] / seconds:,.0f} "
            f"| {result['actual']['member_total']} | {result['simulated']['member_total']} | {capped:,} |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
