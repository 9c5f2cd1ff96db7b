"""Benchmark the fraud rules (issue #25): what scoring adds to the split, and the nightly re-score at scale.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/test \\
        .venv/bin/python bench/risk.py [--members 1000000] [--orders 300000] [--split-orders 20000] [--seed 1]

PostgreSQL only. Like bench/tree.py it works in a throwaway database created beside DATABASE_URL's
(`test_bench_risk_<name>`, migrated from scratch) and drops it at the end. In one run:

1. `--members` users and members bulk-loaded with COPY (bench/tree.py's loader), then the activity the member rules
   read: one share link each; 28 days of daily clicks for one member in ten (plus yesterday's, 5,000 for one in a
   thousand of those: click farms); two sign-in sightings each (a device of their own, except five in every thousand
   members who share one: rings; a network shared by three); `--orders` completed orders over the last 28 days with a
   line and the sharer's commission entry each, one in a hundred clawed back after release; a coupon order in twenty;
2. the split with and without scoring: `--split-orders` paid orders (one line each, random sharers with their
   sightings) queued as `commission_orders_paid` leaves them, then `commission_split_queued` in batches of 500 until
   the queue is empty, timed; once with the identity rule on, once (fresh orders) with it off; the difference per
   order is what scoring adds;
3. the nightly re-score (`risk_rescore_members`) over all of it, timed, with the flags it raised per rule.

The markdown table goes to stdout, progress to stderr.
"""

import argparse
import itertools
import random
import sys
import time
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.tree import bulk_load, log, setup_django, truncate_tables

CHUNK = 5000
RUNS = itertools.count()


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--members", type=int, default=1_000_000)
    parser.add_argument("--orders", type=int, default=300_000)
    parser.add_argument("--split-orders", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=1)
    return parser.parse_args(argv)


def sql(statement: str, params=()) -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(statement, params)


def seed_activity(members: int, orders: int, rng: random.Random):
    from django.utils import timezone

    from commissions.models import CommissionEntry
    from shops.models import Order, OrderLine, Product, ShareLink, ShareLinkDailyStat, Shop

    Entry = CommissionEntry
    now = timezone.now()
    product = Product.objects.create(title="Tea", price=Decimal("100.00"), stock=10**9, commission_rate=Decimal("0.2"))
    shop = Shop.objects.create(owner_id=1, name="Bench", slug="bench")
    started = time.perf_counter()
    links, stats = ShareLink._meta.db_table, ShareLinkDailyStat._meta.db_table  # kept their old tables (issue #20)
    sql(
        f"INSERT INTO {links} (owner_id, shop_id, code, campaign, is_active, created_at) "
        "SELECT g, %s, 'b' || g, '', true, now() FROM generate_series(1, %s) g",
        [shop.pk, members],
    )
    # "Yesterday" as the re-score reads it: the last full day in TIME_ZONE (not the database session's).
    yesterday = timezone.localdate(now) - timedelta(days=1)
    sql(
        f"INSERT INTO {stats} (link_id, day, clicks, unique_visitors) "
        "SELECT l, %s::date - d, 1 + ((l * 31 + d * 17) %% 40), 0 "
        "FROM generate_series(10, %s, 10) l, generate_series(0, 28) d",
        [yesterday, members],
    )
    # Planted: one link in a thousand of the active ones had 5,000 clicks yesterday (a click farm).
    sql(f"UPDATE {stats} SET clicks = 5000 WHERE day = %s AND link_id %% 10000 = 0", [yesterday])
    # Planted: five members in every thousand share one device (a ring); networks are shared by three.
    sql(
        "INSERT INTO commissions_risksighting (member_id, kind, key, first_seen, last_seen) "
        "SELECT g, 'device', left(md5(CASE WHEN g %% 1000 < 5 THEN 'ring' || (g / 1000) ELSE 'd' || g END), 32), "
        "now(), now() FROM generate_series(1, %s) g "
        "UNION ALL SELECT g, 'network', left(md5('n' || (g / 3)), 32), now(), now() FROM generate_series(1, %s) g",
        [members, members],
    )
    log(f"links, clicks and sightings in {time.perf_counter() - started:.0f} s")
    started = time.perf_counter()
    for first in range(0, orders, CHUNK):
        batch = []
        for n in range(first, min(first + CHUNK, orders)):
            paid = now - timedelta(days=1 + n % 28, hours=rng.randrange(24))
            batch.append(
                Order(
                    number=f"B{n:012d}", shop=shop, sharer_id=rng.randrange(1, members + 1),
                    attribution=Order.Attribution.COUPON if n % 20 == 0 else Order.Attribution.LINK,
                    status=Order.Status.COMPLETED, buyer_name="b", buyer_phone=f"+86137{n:08d}",
                    shipping_address=f"{rng.choice(['Shanghai', 'Beijing', 'Guangzhou'])} {n} Road",
                    total=Decimal("100.00"), paid_at=paid, completed_at=paid, created_at=paid,
                )
            )  # fmt: skip
        Order.objects.bulk_create(batch)
        lines = OrderLine.objects.bulk_create(
            [
                OrderLine(order=order, product=product, title="Tea", unit_price=Decimal("100.00"), quantity=1,
                          net_amount=Decimal("100.00"), commission_rate=Decimal("0.2"))
                for order in batch
            ]
        )  # fmt: skip
        entries = []
        for order, line in zip(batch, lines, strict=True):
            common = {"order": order, "order_line": line, "beneficiary_id": order.sharer_id, "level": 1,
                      "base": Decimal("20.00"), "rate": Decimal("0.5")}  # fmt: skip
            entries.append(Entry(kind="commission", amount=Decimal("10.00"), status="available", released_at=now,
                                 created_at=order.paid_at, **common))  # fmt: skip
            if rng.random() < 0.01:
                entries.append(Entry(kind="clawback", amount=Decimal("-10.00"), status="available", released_at=now,
                                     created_at=now, **common))  # fmt: skip
        Entry.objects.bulk_create(entries)
    log(f"{orders:,} orders, lines and entries in {time.perf_counter() - started:.0f} s")
    sql("ANALYZE")
    return shop, product


def split_run(shop, product, count: int, members: int, rng: random.Random, *, scoring: bool) -> float:
    from django.db import transaction
    from django.utils import timezone

    from commissions.models import RiskRule
    from commissions.services import commission_orders_paid, commission_split_queued
    from commissions.services import split as split_module
    from shops.models import Order, OrderLine

    RiskRule.objects.filter(code="shared_identity").update(is_enabled=scoring)
    # Queue only: the embedded default runs the split task eagerly at commit, before the clock would start.
    split_module.commission_split_requested = lambda: False
    now = timezone.now()
    tag = f"{'on' if scoring else 'off'}{next(RUNS)}"
    orders = []
    for first in range(0, count, CHUNK):
        batch = [
            Order(
                number=f"S{tag}{n:08d}", shop=shop, sharer_id=rng.randrange(1, members + 1),
                status=Order.Status.PAID, buyer_name="b", buyer_phone=f"+86139{n:08d}", shipping_address=f"{n} Road",
                device_key=f"{n:032x}", network_key=f"{n * 7:032x}", total=Decimal("100.00"), paid_at=now,
            )
            for n in range(first, min(first + CHUNK, count))
        ]  # fmt: skip
        Order.objects.bulk_create(batch)
        OrderLine.objects.bulk_create(
            [
                OrderLine(order=order, product=product, title="Tea", unit_price=Decimal("100.00"), quantity=1,
                          net_amount=Decimal("100.00"), commission_rate=Decimal("0.2"))
                for order in batch
            ]
        )  # fmt: skip
        orders.extend(batch)
        with transaction.atomic():
            commission_orders_paid(orders=[(order.pk, order.sharer_id) for order in batch])
    started = time.perf_counter()
    while commission_split_queued(limit=500):
        pass
    return time.perf_counter() - started, [order.pk for order in orders]


def scoring_alone(order_ids: list[int]) -> float:
    """`risk_score_orders` again over split orders, in the split's batches of 500 (it is idempotent): its own cost."""
    from django.db import transaction

    from commissions.models import RiskRule
    from commissions.services.risk import risk_score_orders

    RiskRule.objects.filter(code="shared_identity").update(is_enabled=True)
    started = time.perf_counter()
    for first in range(0, len(order_ids), 500):
        with transaction.atomic():
            risk_score_orders(order_ids[first : first + 500])
    return time.perf_counter() - started


def main(argv=None) -> int:
    args = parse_args(argv)
    setup_django()
    from django.conf import settings
    from django.db import connection
    from django.utils import timezone

    from commissions.models import RiskFlag
    from commissions.services.risk import risk_rescore_members

    if connection.vendor != "postgresql":
        print("bench/risk.py needs PostgreSQL: set DATABASE_URL=postgres://…", file=sys.stderr)
        return 2
    settings.DEBUG = False
    old_name = connection.settings_dict["NAME"]
    connection.settings_dict["TEST"]["NAME"] = f"test_bench_risk_{old_name}"
    log(f"creating throwaway database test_bench_risk_{old_name}")
    connection.creation.create_test_db(verbosity=0, autoclobber=True, serialize=False, keepdb=False)
    try:
        rng = random.Random(args.seed)
        truncate_tables()
        started = time.perf_counter()
        bulk_load(args.members, rng)
        log(f"loaded {args.members:,} members in {time.perf_counter() - started:.0f} s")
        shop, product = seed_activity(args.members, args.orders, rng)

        # Alternately on and off, twice each, so neither profits from a warmer cache or a fuller table.
        on = off = alone = 0.0
        for _round in range(2):
            seconds, ids = split_run(shop, product, args.split_orders, args.members, rng, scoring=True)
            on += seconds / 2
            alone += scoring_alone(ids) / 2
            off += split_run(shop, product, args.split_orders, args.members, rng, scoring=False)[0] / 2
        log(f"split: {on:.1f} s with scoring, {off:.1f} s without; scoring alone {alone:.2f} s")

        started = time.perf_counter()
        raised = risk_rescore_members(now=timezone.now())
        rescore = time.perf_counter() - started
        log(f"re-score: {rescore:.0f} s, flags {raised}")

        per_order_on = on / args.split_orders * 1000
        per_order_off = off / args.split_orders * 1000
        print("| members | orders (28 days) | split, ms/order with scoring | without | scoring alone, ms/order | "
              "nightly re-score, s | flags raised |")  # fmt: skip
        print("| ---: | ---: | ---: | ---: | ---: | ---: | --- |")
        print(
            f"| {args.members:,} | {args.orders:,} | {per_order_on:.3f} | {per_order_off:.3f} | "
            f"{alone / args.split_orders * 1000:.3f} | {rescore:.0f} | "
            f"{', '.join(f'{rule} {n}' for rule, n in raised.items())} |"
        )
        log(f"order flags at the split: {RiskFlag.objects.filter(subject='order').count()}")
    finally:
        connection.creation.destroy_test_db(old_name, verbosity=0, keepdb=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
