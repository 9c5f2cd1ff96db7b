"""Benchmark the upline tree at scale (issue #10): joins into one tree of a million members.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/test \\
        .venv/bin/python bench/tree_scale.py --members 1000000 [--joiners 8] [--seconds 60] \\
        [--total-joins 100000] [--mptt-joins 5] [--subtree 10000] [--seed 1]

PostgreSQL only. Like bench/tree.py it works in a throwaway database created beside DATABASE_URL's
(`test_bench_scale_<name>`) and drops it at the end. In one run, on one tree bulk-loaded with COPY (member i under
a uniformly random earlier member), it measures:

1. django-mptt's plain insert (`--mptt-joins` of them): the tree lock, `Member.save()` shifting every node to the
   right, one join at a time: what joins cost before deferred placement;
2. deferred joins: `--joiners` processes call `member_join` under random sponsors as fast as they can, while one
   indexer process runs `tree_index_pending` in a loop (standing in for the Celery worker the join's on-commit
   hook would wake; the hook itself is switched off in the joiners). Join latency (member_join alone; the user
   row is made before the clock starts), joins per second over the first `--seconds` and over the whole run,
   the index passes (how many, how long, how many members each), the placement lag (join commit → the pass
   that placed it commits), and whether a new member is in its sponsor's team figures (member_team_level_counts,
   which counts pending members by their parent links) right after its join. It goes on until
   `--total-joins` members have joined;
3. after the joins: every pending member placed, `tree_check()` valid, and every joined member's parent equal to
   the sponsor its joiner chose (the upline follows from both);
4. a re-parent of a subtree of about `--subtree` members (`member_move`) while the joiners keep joining:
   the move's duration and the joins' latency meanwhile; the tree valid after;
5. upline reads (`member_uplines` for 500 members, 3 levels: what the commission split reads) at this size.

The markdown table goes to stdout, progress to stderr.
"""

import argparse
import multiprocessing
import os
import random
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.tree import (
    INVALID_EMAIL_DOMAIN,
    UNUSABLE_PASSWORD,
    bulk_load,
    log,
    percentile,
    require_valid_tree,
    setup_django,
    truncate_tables,
)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--members", type=int, default=1_000_000, help="tree size (default 1,000,000)")
    parser.add_argument("--joiners", type=int, default=8, help="concurrent joining processes (default 8)")
    parser.add_argument(
        "--rate", type=float, default=200.0, help="joins per second offered by all joiners together (0: flat out)"
    )
    parser.add_argument("--seconds", type=float, default=60.0, help="window for the sustained rate (default 60)")
    parser.add_argument("--total-joins", type=int, default=100_000, help="joins before the check (default 100,000)")
    parser.add_argument("--mptt-joins", type=int, default=5, help="django-mptt plain inserts timed (default 5)")
    parser.add_argument("--subtree", type=int, default=10_000, help="size of the subtree to re-parent")
    parser.add_argument("--move-joins-seconds", type=float, default=5.0, help="joins before the move starts")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--skip-move", action="store_true", help="leave out the re-parent (step 4)")
    parser.add_argument("--dump", help="write every join and pass as JSON to this file, for analysis")
    return parser.parse_args(argv)


# --- the baseline: django-mptt's own insert ------------------------------------------------------------------


def mptt_plain_joins(n: int, count: int, rng: random.Random) -> list[float]:
    """What member_join did before deferred placement: tree lock, then django-mptt's insert (shifts the tree)."""
    from django.db import transaction

    from accounts.models import User
    from referrals.locks import member_lock, tree_lock_acquire
    from referrals.models import Member, TreeEvent, new_invite_code

    timings = []
    for index in range(count):
        user = User.objects.create(email=f"mptt{index}@{INVALID_EMAIL_DOMAIN}", password=UNUSABLE_PASSWORD)
        started = time.perf_counter()
        with transaction.atomic():
            tree_lock_acquire()
            sponsor = member_lock(rng.randint(1, n))
            member = Member(user=user, parent=sponsor, invite_code=new_invite_code(), join_source="invite")
            member.save()
            TreeEvent.objects.create(kind=TreeEvent.Kind.JOIN, member=member, actor=user, new_parent=sponsor)
        timings.append(time.perf_counter() - started)
        log(f"  django-mptt insert {index + 1}/{count}: {timings[-1] * 1000:.0f} ms")
    return timings


# --- deferred joins: joiner and indexer processes -----------------------------------------------------------


def _child_setup() -> None:
    from django.conf import settings
    from django.db import connections

    connections.close_all()  # never share the parent's socket
    settings.REFERRALS_TREE_INDEX_INLINE = False
    import referrals.services

    referrals.services.tree_index_requested = lambda: False  # the indexer process plays the worker


def joiner(
    worker: int, sponsor_max: int, stop_at: float, quota, results, seed: int, probe_every: int, interval: float
) -> None:
    """Join under random sponsors until the quota or the time is used up, one join every `interval` seconds (an
    open schedule: a late join does not push the next one back), or flat out when `interval` is 0."""
    _child_setup()
    from accounts.models import User
    from referrals.models import Member
    from referrals.services import ReferralError, member_join

    rng = random.Random(f"{seed}:{worker}")
    rows = []
    index = 0
    next_at = time.monotonic() + rng.random() * interval
    while time.monotonic() < stop_at:
        if interval:
            delay = next_at - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            next_at += interval
        with quota.get_lock():
            if quota.value <= 0:
                break
            quota.value -= 1
        user = User.objects.create(email=f"w{worker}-{index}-{seed}@{INVALID_EMAIL_DOMAIN}", password=UNUSABLE_PASSWORD)
        while True:
            sponsor_id = rng.randint(1, sponsor_max)
            started = time.perf_counter()
            try:
                member = member_join(user=user, sponsor=Member(pk=sponsor_id))
            except ReferralError:
                continue  # an id the sequence skipped (a rolled-back insert): pick another sponsor
            elapsed = time.perf_counter() - started
            break
        committed = time.time()
        visible = None
        if index % probe_every == 0:
            visible = probe_team_figures(member, sponsor_id, with_founder=index % (probe_every * FOUNDER_EVERY) == 0)
        rows.append((member.pk, sponsor_id, elapsed, committed, visible))
        index += 1
    results.put(rows)


# Every 50th join of each joiner probes its sponsor's team figures, and every 2,500th the founder's too: a founder's
# team page reads every pending member at a peak (0.5 s), a measurement, not a load (8 of them every 20 s were 10-20 %
# of the machine's CPU in an earlier run).
FOUNDER_EVERY = 50


def probe_team_figures(member, sponsor_id: int, *, with_founder: bool) -> tuple:
    """Right after a join: is the new member in its sponsor's team figures, and (now and then) in the founder's
    (member 1, the whole tree's team)? And how long do the team page's figures take to read, as the team page reads
    them: the pending members once, then the counts for three levels and the team size."""
    from referrals.models import Member
    from referrals.selectors import member_pending_team, member_team_level_counts, member_team_size

    def team_has(leader_id: int) -> tuple[bool, float]:
        leader = Member.objects.get(pk=leader_id)
        started = time.perf_counter()
        pending = member_pending_team(leader)
        member_team_level_counts(leader, 3, pending=pending)
        member_team_size(leader, pending=pending)
        elapsed = (time.perf_counter() - started) * 1000
        found = any(member.pk in ids for ids in pending.values()) or (
            Member.objects.filter(pk=member.pk, lft__gt=0).exists()
            and leader.get_descendants().filter(pk=member.pk).exists()
        )
        return found, elapsed

    in_sponsors, sponsor_ms = team_has(sponsor_id)
    in_founders, founder_ms = team_has(1) if with_founder else (None, None)
    return in_sponsors, sponsor_ms, in_founders, founder_ms


def indexer(stop, results) -> None:
    _child_setup()
    from referrals.models import Member
    from referrals.services import tree_index_run

    passes = []
    while True:
        stopping = stop.is_set()
        started = time.perf_counter()
        high = Member.objects.filter(lft=0).order_by("-pk").values_list("pk", flat=True).first()
        placed = tree_index_run()  # as the Celery task runs it: a staff move may cancel it (it returns 0)
        if placed:
            passes.append((time.time(), time.perf_counter() - started, placed, high))
        elif stopping:
            break
        else:
            time.sleep(0.2)
    results.put(passes)


def run_joins(args, *, sponsor_max: int, total: int, seconds_cap: float, label: str):
    """Joiners until `total` joins or `seconds_cap` seconds, with the indexer running; returns their records."""
    from django.db import connections

    connections.close_all()
    context = multiprocessing.get_context("fork")
    quota = context.Value("q", total)
    results = context.Queue()
    stop = context.Event()
    index_results = context.Queue()
    started = time.time()
    stop_at = time.monotonic() + seconds_cap
    interval = args.joiners / args.rate if args.rate else 0.0
    index_process = context.Process(target=indexer, args=(stop, index_results))
    index_process.start()
    joiners = [
        context.Process(target=joiner, args=(w, sponsor_max, stop_at, quota, results, args.seed, 50, interval))
        for w in range(args.joiners)
    ]
    for process in joiners:
        process.start()
    rows = []
    for _ in joiners:
        rows.extend(results.get())
    for process in joiners:
        process.join()
    stop.set()
    passes = index_results.get()
    index_process.join()
    log(f"{label}: {len(rows)} joins in {time.time() - started:.1f} s, {len(passes)} index passes")
    return started, rows, passes


def summarise_joins(started: float, rows, passes, window: float) -> dict:
    latencies = [row[2] * 1000 for row in rows]
    commits = sorted(row[3] for row in rows)
    in_window = sum(1 for at in commits if at - started <= window)
    span = (commits[-1] - started) if commits else 0.0
    # Placement lag: a member is placed by the first pass, committed after its join, that covered its id.
    passes_sorted = sorted(passes)
    lags = []
    for member_id, _sponsor, _elapsed, committed, _visible in rows:
        placed_at = next(
            (at for at, _d, _n, high in passes_sorted if at >= committed and (high or 0) >= member_id), None
        )
        if placed_at is not None:
            lags.append(placed_at - committed)
    probes = [row[4] for row in rows if row[4] is not None]
    founder_probes = [probe for probe in probes if probe[2] is not None]
    # Joins that overlapped a pass (the pass ends at `at` after `duration` seconds) against those that did not.
    spans = [(at - duration, at) for at, duration, _n, _h in passes_sorted]
    during, outside = [], []
    for _member, _sponsor, elapsed, committed, _visible in rows:
        begun = committed - elapsed
        overlapped = any(start < committed and begun < end for start, end in spans)
        (during if overlapped else outside).append(elapsed * 1000)
    return {
        "p99_during_pass": percentile(during, 99) if during else float("nan"),
        "p99_outside_pass": percentile(outside, 99) if outside else float("nan"),
        "share_during_pass": len(during) / len(rows) if rows else 0.0,
        "joins": len(rows),
        "rate_window": in_window / window,
        "rate_all": len(rows) / span if span else 0.0,
        "p50": statistics.median(latencies),
        "p95": percentile(latencies, 95),
        "p99": percentile(latencies, 99),
        "max": max(latencies),
        "passes": len(passes),
        "pass_median_s": statistics.median([d for _a, d, _n, _h in passes]) if passes else 0.0,
        "pass_max_s": max([d for _a, d, _n, _h in passes], default=0.0),
        "pass_members_max": max([n for _a, _d, n, _h in passes], default=0),
        "lag_p50": statistics.median(lags) if lags else float("nan"),
        "lag_p99": percentile(lags, 99) if lags else float("nan"),
        "lag_max": max(lags) if lags else float("nan"),
        "probes": len(probes),
        "probes_visible": sum(1 for probe in probes if probe[0]),
        "team_ms_p50": statistics.median([probe[1] for probe in probes]) if probes else float("nan"),
        "team_ms_p99": percentile([probe[1] for probe in probes], 99) if probes else float("nan"),
        "founder_probes": len(founder_probes),
        "founder_visible": sum(1 for probe in founder_probes if probe[2]),
        "founder_ms_p50": statistics.median([p[3] for p in founder_probes]) if founder_probes else float("nan"),
        "founder_ms_p99": percentile([p[3] for p in founder_probes], 99) if founder_probes else float("nan"),
    }


def server_counters() -> dict:
    """PostgreSQL's own counters: checkpoints, buffers written, WAL position (what a pass costs the server)."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT checkpoints_timed, checkpoints_req, buffers_checkpoint, buffers_backend, "
            "pg_current_wal_lsn() - '0/0'::pg_lsn FROM pg_stat_bgwriter"
        )
        timed, requested, by_checkpoint, by_backend, wal = cursor.fetchone()
    return {"checkpoints": timed + requested, "requested": requested, "by_checkpoint": by_checkpoint,
            "by_backend": by_backend, "wal": int(wal)}  # fmt: skip


def server_delta(before: dict, after: dict) -> str:
    return (
        f"{after['checkpoints'] - before['checkpoints']} checkpoints ({after['requested'] - before['requested']} "
        f"forced by WAL volume), {(after['wal'] - before['wal']) / 2**30:.1f} GiB of WAL, buffers written by "
        f"checkpoints {after['by_checkpoint'] - before['by_checkpoint']:,}, by backends "
        f"{after['by_backend'] - before['by_backend']:,}"
    )


def server_settings() -> str:
    from django.db import connection

    names = ("shared_buffers", "max_wal_size", "checkpoint_timeout", "wal_compression", "synchronous_commit")
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT name, current_setting(name) FROM pg_settings WHERE name = ANY(%s) ORDER BY name", [list(names)]
        )
        return ", ".join(f"{name}={setting}" for name, setting in cursor.fetchall())


def verify(rows) -> float:
    from referrals.models import Member
    from referrals.services import tree_index_pending

    while tree_index_pending():
        pass
    seconds = require_valid_tree("after the concurrent joins")
    intended = {member_id: sponsor_id for member_id, sponsor_id, *_rest in rows}
    actual = {}
    ids = list(intended)
    for start in range(0, len(ids), 50_000):
        actual.update(Member.objects.filter(pk__in=ids[start : start + 50_000]).values_list("pk", "parent_id"))
    wrong = [member_id for member_id, sponsor_id in intended.items() if actual.get(member_id) != sponsor_id]
    if wrong:
        raise SystemExit(f"{len(wrong)} members have the wrong sponsor, e.g. {wrong[:10]}")
    log(f"verified: tree valid ({seconds:.1f} s to check), {len(intended)} sponsors exactly as chosen")
    return seconds


def reparent_during_joins(args, total_members: int) -> dict:
    """Move a subtree of about --subtree members while the joiners join elsewhere."""
    from django.db import connections

    from accounts.models import User
    from referrals.models import Member
    from referrals.services import member_move

    subtree_root = (
        Member.objects.filter(rght__gt=0)
        .extra(where=["(rght - lft - 1) / 2 BETWEEN %s AND %s"], params=[args.subtree, args.subtree * 3])
        .order_by("level")
        .values_list("pk", "lft", "rght", "tree_id", "parent_id")
        .first()
    )
    if subtree_root is None:
        raise SystemExit(f"no subtree of {args.subtree}..{args.subtree * 3} members to move")
    pk, lft, rght, tree_id, parent_id = subtree_root
    size = (rght - lft - 1) // 2
    target = (
        Member.objects.filter(tree_id=tree_id, rght__gt=0)
        .exclude(lft__gte=lft, lft__lte=rght)
        .exclude(pk=parent_id)
        .order_by("?")
        .values_list("pk", flat=True)
        .first()
    )
    staff = User.objects.create(email=f"staff@{INVALID_EMAIL_DOMAIN}", password=UNUSABLE_PASSWORD, is_staff=True)
    connections.close_all()

    context = multiprocessing.get_context("fork")
    quota = context.Value("q", 10**9)
    results = context.Queue()
    stop = context.Event()
    index_results = context.Queue()
    window = args.move_joins_seconds * 2 + 600
    stop_at = time.monotonic() + window
    index_process = context.Process(target=indexer, args=(stop, index_results))
    index_process.start()
    joiners = [
        context.Process(
            target=joiner,
            args=(w + 100, total_members, stop_at, quota, results, args.seed, 10**9, args.joiners / args.rate),
        )
        for w in range(args.joiners)
    ]
    for process in joiners:
        process.start()
    time.sleep(args.move_joins_seconds)
    log(f"moving member {pk} with {size} members below it under member {target}")
    move_started = time.time()
    member_move(member=Member(pk=pk), new_sponsor=Member(pk=target), actor=staff, reason="benchmark re-parent")
    move_ended = time.time()
    move_seconds = move_ended - move_started
    log(f"move done in {move_seconds:.1f} s")
    with quota.get_lock():
        quota.value = 0  # the joiners stop after their current join
    rows = []
    for _ in joiners:
        rows.extend(results.get())
    for process in joiners:
        process.join()
    stop.set()
    index_results.get()
    index_process.join()
    during = [row[2] * 1000 for row in rows if move_started <= row[3] <= move_ended]
    verify(rows)
    return {
        "size": size,
        "seconds": move_seconds,
        "joins_during": len(during),
        "p99_during": percentile(during, 99) if during else float("nan"),
        "max_during": max(during) if during else float("nan"),
    }


def uplines(total: int, rng: random.Random) -> tuple[float, float]:
    from referrals.selectors import member_uplines

    timings = []
    for _ in range(20):
        ids = [rng.randint(1, total) for _ in range(500)]
        started = time.perf_counter()
        member_uplines(ids, 3)
        timings.append((time.perf_counter() - started) * 1000)
    return statistics.median(timings), max(timings)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    setup_django()
    from django.conf import settings
    from django.db import connection

    if connection.vendor != "postgresql":
        print("bench/tree_scale.py needs PostgreSQL: set DATABASE_URL=postgres://…", file=sys.stderr)
        return 2
    settings.DEBUG = False
    old_name = connection.settings_dict["NAME"]
    connection.settings_dict["TEST"]["NAME"] = f"test_bench_scale_{old_name}"
    log(f"creating throwaway database test_bench_scale_{old_name}; server: {server_settings()}")
    connection.creation.create_test_db(verbosity=0, autoclobber=True, serialize=False, keepdb=False)
    try:
        rng = random.Random(args.seed)
        truncate_tables()
        started = time.perf_counter()
        depth = bulk_load(args.members, rng)
        log(f"loaded {args.members:,} members in {time.perf_counter() - started:.0f} s (depth {depth})")

        mptt = [t * 1000 for t in mptt_plain_joins(args.members, args.mptt_joins, rng)]
        require_valid_tree("after the django-mptt inserts")
        base = args.members + args.mptt_joins

        log(f"deferred joins: {args.joiners} joiners until {args.total_joins:,} joins")
        server_before = server_counters()
        began, rows, passes = run_joins(
            args, sponsor_max=base, total=args.total_joins, seconds_cap=3600, label="deferred joins"
        )
        joins = summarise_joins(began, rows, passes, args.seconds)
        log(f"server during the joins: {server_delta(server_before, server_counters())}")
        log(
            f"p50 {joins['p50']:.1f} p95 {joins['p95']:.1f} p99 {joins['p99']:.1f} max {joins['max']:.1f} ms; "
            f"p99 during a pass {joins['p99_during_pass']:.1f} ms ({joins['share_during_pass']:.0%} of joins), "
            f"outside {joins['p99_outside_pass']:.1f} ms"
        )
        if args.dump:
            import json

            Path(args.dump).write_text(json.dumps({"started": began, "rows": rows, "passes": passes}))
        check_seconds = verify(rows)
        total_members = base + len(rows)
        move = (
            {"size": 0, "seconds": float("nan"), "joins_during": 0, "p99_during": float("nan")}
            if args.skip_move
            else reparent_during_joins(args, total_members)
        )
        upline_median, upline_max = uplines(total_members, rng)

        print(f"One tree of {args.members:,} members (bulk-loaded), PostgreSQL, {os.cpu_count()} CPUs.\n")
        print("| measure | django-mptt plain insert | deferred placement |")
        print("| --- | ---: | ---: |")
        print(f"| join latency median | {statistics.median(mptt):,.0f} ms | {joins['p50']:.1f} ms |")
        print(f"| join latency p95 | {percentile(mptt, 95):,.0f} ms | {joins['p95']:.1f} ms |")
        print(f"| join latency p99 | {percentile(mptt, 99):,.0f} ms | {joins['p99']:.1f} ms |")
        print(f"| join latency max | {max(mptt):,.0f} ms | {joins['max']:.1f} ms |")
        mptt_rate = 1000 / statistics.median(mptt)
        print(
            f"| joins/s, first {args.seconds:.0f} s ({args.joiners} joiners offering {args.rate:.0f}/s) "
            f"| {mptt_rate:.2f} (serialised) "
            f"| {joins['rate_window']:.0f} |"
        )
        print(f"| joins/s, all {joins['joins']:,} joins | — | {joins['rate_all']:.0f} |")
        print(
            f"| new member in its sponsor's team figures right after the join | after the insert "
            f"| {joins['probes_visible']}/{joins['probes']} probes |"
        )
        print(
            f"| … and in the founder's (the whole tree's) team figures | after the insert "
            f"| {joins['founder_visible']}/{joins['founder_probes']} probes |"
        )
        print(
            f"| team figures during the joins (pending members, 3 level counts, team size): a member's team, "
            f"p50 / p99 | — | {joins['team_ms_p50']:.1f} / {joins['team_ms_p99']:.1f} ms |"
        )
        print(
            f"| … the founder's team ({args.members:,}+ members), p50 / p99 | — "
            f"| {joins['founder_ms_p50']:.1f} / {joins['founder_ms_p99']:.1f} ms |"
        )
        print(
            f"| placed in the nested sets after (p50 / p99 / max) | at once "
            f"| {joins['lag_p50']:.1f} / {joins['lag_p99']:.1f} / {joins['lag_max']:.1f} s |"
        )
        print(
            f"| index passes: count, median, max, most members in one | — | {joins['passes']}, "
            f"{joins['pass_median_s']:.1f} s, {joins['pass_max_s']:.1f} s, {joins['pass_members_max']:,} |"
        )
        print(f"| tree_check after {joins['joins']:,} concurrent joins | — | valid ({check_seconds:.0f} s) |")
        print(
            f"| re-parent {move['size']:,} members while joining | — | {move['seconds']:.1f} s; "
            f"{move['joins_during']} joins meanwhile, p99 {move['p99_during']:.0f} ms |"
        )
        print(
            f"| member_uplines, 500 members × 3 levels | — | median {upline_median:.1f} ms, max {upline_max:.1f} ms |"
        )
    finally:
        from django.db import connections

        connections.close_all()
        connection.creation.destroy_test_db(old_name, verbosity=0, keepdb=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
