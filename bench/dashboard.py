"""Benchmark the shop owner's overview and team pages for a member with a big team and many orders.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/test \\
        .venv/bin/python bench/dashboard.py [--team 100000] [--orders 10000] [--requests 200] [--seed 1]

PostgreSQL only; the database named in DATABASE_URL is never read or written: the script creates a throwaway
database beside it (`test_bench_dashboard_<name>`, migrated from scratch) and drops it at the end (also on error).

What it builds:

- one tree of `--team` + 1 members loaded with COPY (`bench.tree.bulk_load`: member i's sponsor is a random earlier
  member), whose root is the measured member: everyone else is in their downline;
- a three-level policy and a 50/30/20 plan; shops (three products each) for the root and for `--shops` members of
  the downline, and a share link per shop with 30 days of click statistics;
- `--orders` paid orders over the last 30 days, half in the root's shop and half spread over the other shops, each
  split by the real commission engine (`commissions.services.commission_split_queued`), so the root has commission
  entries of its own sales (level 1) and of its team's (levels 2 and 3); then a quarter of the root's entries are
  released and some of those labelled paid, so every earnings figure is non-zero.

What it measures: the server time of `GET /dashboard/` (overview), `GET /dashboard/team/` (levels 1 and 2, first
and a later page) and `GET /dashboard/team/leaderboard/` (sales and earnings this month), signed in as the root,
through Django's test client in this process (the whole request: URL resolution, middleware, views, queries,
template rendering; no network), `--requests` times each after 5 warm-up requests, with DEBUG off. It also counts
each page's queries. The leaderboard's standings are cached for five minutes; their computation from the orders and
the ledger is timed on its own, the cache emptied before each call.

The markdown table goes to stdout, progress to stderr.
"""

import argparse
import math
import os
import random
import statistics
import sys
import time
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
RATES = (Decimal("0.5000"), Decimal("0.3000"), Decimal("0.2000"))
PRODUCTS = (("Tea", Decimal("19.90"), Decimal("0.1000")), ("Rice", Decimal("35.50"), Decimal("0.1500")),
            ("Soap", Decimal("8.80"), Decimal("0.2000")))  # fmt: skip


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--team", type=int, default=100_000, help="members in the measured member's downline")
    parser.add_argument("--orders", type=int, default=10_000, help="paid orders (default 10,000)")
    parser.add_argument("--shops", type=int, default=300, help="downline members with a shop (default 300)")
    parser.add_argument("--requests", type=int, default=200, help="timed requests per page (default 200)")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    if min(args.team, args.orders, args.shops, args.requests) < 1 or args.shops > args.team:
        parser.error("--team, --orders, --shops and --requests must be at least 1, and --shops at most --team")
    return args


def setup_django() -> None:
    here = str(Path(__file__).resolve().parent)
    sys.path[:] = [p for p in sys.path if p != here]
    sys.path.insert(0, str(REPO_ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    # It measures a three-level plan: the international preset (the code's ceiling), in its workers too.
    os.environ["COMPLIANCE_PRESET"] = "international"
    # Its rules start at once in its throwaway database: no members to give notice to (RULES_CHANGE_NOTICE_DAYS).
    os.environ["RULES_CHANGE_NOTICE_DAYS"] = "0"
    os.environ.setdefault("SECRET_KEY", "bench-dashboard-" + "x" * 40)
    import django

    django.setup()


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def percentile(values: list[float], pct: float) -> float:
    """Nearest-rank percentile: a value that was actually observed."""
    ordered = sorted(values)
    return ordered[max(math.ceil(pct / 100 * len(ordered)), 1) - 1]


def build(args: argparse.Namespace) -> int:
    """Everything the pages read; returns the measured member's id."""
    from django.db import transaction
    from django.utils import timezone

    from bench.tree import bulk_load
    from commissions.models import CommissionEntry, CommissionPlan, CompliancePolicy, SplitQueue
    from commissions.services import commission_split_queued, plan_activate, plan_create, policy_publish
    from referrals.models import Member
    from shops.models import Order, OrderLine, Product, ShareLink, ShareLinkDailyStat, Shop, ShopListing

    rng = random.Random(args.seed)
    started = time.perf_counter()
    depth = bulk_load(args.team + 1, rng)
    log(f"{args.team + 1:,} members (depth {depth}) in {time.perf_counter() - started:.1f} s")

    policy_publish(actor=None, max_levels=3, note="benchmark: three paid levels")
    plan = plan_activate(plan=plan_create(actor=None, name="benchmark 50/30/20", rates=RATES), actor=None)
    # The orders below were paid over the last 30 days: put this policy and plan in force before them (the
    # services refuse to backdate, rightly; this is test data).
    long_ago = timezone.now() - timedelta(days=60)
    CompliancePolicy.objects.filter(is_active=True).update(effective_from=long_ago)
    CommissionPlan.objects.filter(pk=plan.pk).update(effective_from=long_ago)
    products = [
        Product.objects.create(title=title, price=price, stock=10**9, commission_rate=rate)
        for title, price, rate in PRODUCTS
    ]
    root = Member.objects.get(parent__isnull=True)
    # The root and members near the top (where sales reach the root's levels 2 and 3) get shops.
    near = list(Member.objects.filter(level__in=[1, 2]).order_by("?").values_list("pk", flat=True)[: args.shops])
    owners = [root.pk, *near]
    shops = Shop.objects.bulk_create(
        [Shop(owner_id=owner, name=f"Shop {owner}", slug=f"shop-{owner}") for owner in owners]
    )
    ShopListing.objects.bulk_create(
        [ShopListing(shop=shop, product=product, position=i) for shop in shops for i, product in enumerate(products)]
    )
    links = ShareLink.objects.bulk_create(
        [ShareLink(owner_id=shop.owner_id, shop=shop, code=f"B{shop.owner_id:09d}") for shop in shops]
    )
    today = timezone.localdate()
    ShareLinkDailyStat.objects.bulk_create(
        [
            ShareLinkDailyStat(link=link, day=today - timedelta(days=d), clicks=rng.randint(5, 500), unique_visitors=3)
            for link in links
            for d in range(30)
        ]
    )
    link_of = {link.shop_id: link for link in links}

    now = timezone.now()
    orders, lines = [], []
    for n in range(args.orders):
        shop = shops[0] if n % 2 == 0 else rng.choice(shops[1:] or shops)
        paid_at = now - timedelta(seconds=rng.randint(0, 30 * 24 * 3600))
        quantity = rng.randint(1, 3)
        title, price, rate = PRODUCTS[n % 3]
        orders.append(
            Order(
                number=f"BD{n:010d}", shop=shop, sharer_id=shop.owner_id, share_link=link_of[shop.pk],
                status=Order.Status.PAID, buyer_name="Bench buyer", buyer_phone="13900001111",
                shipping_address="1 Bench Road", total=price * quantity, created_at=paid_at, paid_at=paid_at,
            )
        )  # fmt: skip
        lines.append((title, price, rate, quantity, products[n % 3]))
    with transaction.atomic():
        Order.objects.bulk_create(orders, batch_size=2000)
        OrderLine.objects.bulk_create(
            [
                OrderLine(order=order, product=product, title=title, unit_price=price, quantity=quantity,
                          net_amount=price * quantity, commission_rate=rate)
                for order, (title, price, rate, quantity, product) in zip(orders, lines, strict=True)
            ],
            batch_size=2000,
        )  # fmt: skip
        SplitQueue.objects.bulk_create([SplitQueue(order=order) for order in orders], batch_size=2000)
    started = time.perf_counter()
    while commission_split_queued(limit=1000):
        pass
    log(f"{args.orders:,} orders split in {time.perf_counter() - started:.1f} s")
    mine = list(CommissionEntry.objects.filter(beneficiary_id=root.pk).order_by("pk").values_list("pk", flat=True))
    released = mine[: len(mine) // 4]
    CommissionEntry.objects.filter(pk__in=released).update(status=CommissionEntry.Status.AVAILABLE, released_at=now)
    CommissionEntry.objects.filter(pk__in=released[: len(released) // 2]).update(
        status=CommissionEntry.Status.PAID, paid_at=now
    )
    log(f"the measured member has {len(mine):,} commission entries")
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    return root.pk


class QueryTimer:
    """A database execute wrapper that records (ms, sql) of every query into `into`."""

    def __init__(self, into: list) -> None:
        self.into = into

    def __call__(self, execute, sql, params, many, context):
        started = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            self.into.append(((time.perf_counter() - started) * 1000, sql))


def measure(member_id: int, requests: int) -> list[str]:
    from django.db import connection
    from django.test import Client
    from django.urls import reverse

    from referrals.models import Member

    member = Member.objects.select_related("user").get(pk=member_id)
    client = Client()
    client.force_login(member.user)
    pages = [
        ("overview `/dashboard/`", reverse("members:dashboard")),
        ("team, level 1 `/dashboard/team/`", reverse("members:team")),
        ("team, level 2", reverse("members:team") + "?level=2"),
        ("team, level 2, page 10", reverse("members:team") + "?level=2&page=10"),
        # Standings cached per period (commissions.selectors.leaderboard_standings): the warm page; the cold
        # computation is timed on its own below.
        ("leaderboard, sales, this month", reverse("members:leaderboard") + "?by=sales&period=month"),
        ("leaderboard, earnings, this month", reverse("members:leaderboard") + "?by=earnings&period=month"),
    ]
    rows = [
        "| page | requests | p50 ms | p95 ms | max ms | queries |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for label, url in pages:
        for _ in range(5):
            response = client.get(url)
            if response.status_code != 200:
                raise SystemExit(f"GET {url} answered {response.status_code}")
        queries: list[tuple[float, str]] = []
        with connection.execute_wrapper(QueryTimer(queries)):
            client.get(url)
        if os.environ.get("BENCH_SHOW_QUERIES"):
            for ms, sql in sorted(queries, reverse=True)[:5]:
                log(f"    {ms:7.1f} ms  {sql[:300]}")
        times = []
        for _ in range(requests):
            started = time.perf_counter()
            client.get(url)
            times.append((time.perf_counter() - started) * 1000)
        rows.append(
            f"| {label} | {requests} | {statistics.median(times):.1f} | {percentile(times, 95):.1f} "
            f"| {max(times):.1f} | {len(queries)} |"
        )
        log(rows[-1])
    rows.extend(measure_standings(requests))
    return rows


def measure_standings(requests: int) -> list[str]:
    """The leaderboard's standings computed from the ledger and the orders, the cache emptied before each call: what
    one page view costs every five minutes per board (the two boards over this month, the widest period)."""
    from django.core.cache import cache
    from django.db import connection
    from django.utils import timezone

    from commissions.selectors import LEADERBOARD_METRICS, leaderboard_bounds, leaderboard_standings

    since, until = leaderboard_bounds("month", timezone.localdate())
    rows = []
    for metric in LEADERBOARD_METRICS:
        queries: list[tuple[float, str]] = []
        cache.clear()
        with connection.execute_wrapper(QueryTimer(queries)):
            ranked = len(leaderboard_standings(metric, since, until))
        times = []
        for _ in range(requests):
            cache.clear()
            started = time.perf_counter()
            leaderboard_standings(metric, since, until)
            times.append((time.perf_counter() - started) * 1000)
        rows.append(
            f"| {metric} standings, this month, uncached ({ranked:,} ranked) | {requests} "
            f"| {statistics.median(times):.1f} | {percentile(times, 95):.1f} | {max(times):.1f} | {len(queries)} |"
        )
        log(rows[-1])
    return rows


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    setup_django()
    from django.conf import settings
    from django.db import connection

    if connection.vendor != "postgresql":
        print("bench/dashboard.py needs PostgreSQL: set DATABASE_URL=postgres://user@host:5432/name", file=sys.stderr)
        return 2
    settings.DEBUG = False
    settings.ALLOWED_HOSTS = ["testserver"]
    settings.SECURE_SSL_REDIRECT = False
    old_name = connection.settings_dict["NAME"]
    connection.settings_dict["TEST"]["NAME"] = f"test_bench_dashboard_{old_name}"
    log(f"creating throwaway database test_bench_dashboard_{old_name} ({old_name} is not touched)")
    connection.creation.create_test_db(verbosity=0, autoclobber=True, serialize=False, keepdb=False)
    try:
        member_id = build(args)
        rows = measure(member_id, args.requests)
        with connection.cursor() as cursor:
            cursor.execute("SHOW server_version")
            server = cursor.fetchone()[0]
    finally:
        connection.creation.destroy_test_db(old_name, verbosity=0, keepdb=False)
    print(
        f"{args.team:,} members in the downline, {args.orders:,} paid orders; PostgreSQL {server}, "
        f"{os.cpu_count()} CPUs; in-process, DEBUG off\n"
    )
    print("\n".join(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
