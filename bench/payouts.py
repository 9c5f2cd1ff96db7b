"""Benchmark payouts: N approved withdrawals batched and sent through the sandbox provider, then proof of no duplicates.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/test \\
        .venv/bin/python bench/payouts.py [--withdrawals 10000] [--per-member 2] [--workers 1] [--batch-size 10000]
                                          [--requests service|bulk] [--profile]

PostgreSQL only. The database named in DATABASE_URL is never read or written: the script creates a throwaway
database next to it (`test_bench_payouts_<name>`, migrated from scratch), works only there, and drops it at the
end (also on error).

Setup (not timed against the target; its time is reported):

- members, their users, one shop, its orders and order lines, the released commission (`CommissionEntry` rows
  with status `available`, three per member) and the payout accounts are written with `bulk_create`: they are
  the world the payouts run in, not what is measured, and building them through checkout, the webhook, the
  split and the release would take many minutes. Every member is a root of its own one-node tree (valid
  nested-set values); each member's commission hangs on their own completed order, one line per entry.
- the withdrawals (`--per-member` per member, every 20th with an amount ending in .13, which the sandbox
  fails): `--requests bulk`, the default, bulk-creates them already `approved`, each with its `requested`
  and `approved` events (at 15–25 ms per `withdrawal_request` call on the benchmark machine, the service
  would add two to four minutes of setup); `--requests service` makes each through
  `payouts.services.withdrawal_request` with auto-approval on, one call (one transaction, wallet lock, balance
  check, events) each, timed and reported on its own.

Timed (the target, ≤ 60 s for 10,000): `--workers` threads, each with its own database connection, loop
`payout_batch_create(provider_name="sandbox", limit=--batch-size)` then `payout_batch_send(batch=…)` until no
approved withdrawal is left; this is what several Celery workers running the periodic task do. With the
defaults (1 worker, batch size 10,000) it is one batch sent by one worker.

Then, in the same run, it proves there are no duplicates (and stops with an error if any check fails):
every withdrawal is paid or failed (none left approved or processing); SandboxTransfer, the provider's own
record with one row per transfer actually made, has exactly one row per paid or failed withdrawal, with the
same idempotency keys and the same outcome, and no key twice; every withdrawal has exactly one
approved→processing event and exactly one terminal (processing→paid/failed) event; the money the provider
paid equals the withdrawals marked paid; no member's balance is negative. Finally every batch is sent once
more, and the script shows that nothing changes.

`--profile` wraps the per-row services (provider send, withdrawal_record_result, commission_entries_mark_paid)
with timers and times every SQL statement by kind (making the withdrawals, then the timed phase), to show where
the time goes; its figures carry that overhead (a 10–20 % slower run).

The markdown lines go to stdout, progress to stderr.
"""

import argparse
import contextlib
import os
import re
import sys
import threading
import time
from collections import Counter, defaultdict
from contextlib import nullcontext
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
INVALID_EMAIL_DOMAIN = "bench.invalid"  # RFC 2606: can never be a real address
UNUSABLE_PASSWORD = "!"  # noqa: S105 - not a secret: what set_unusable_password() stores, minus the random suffix
ENTRIES_PER_MEMBER = 3
ENTRY_AMOUNT = Decimal("50.00")
PAID_AMOUNT = Decimal("60.00")
FAILING_AMOUNT = Decimal("30.13")  # the sandbox fails amounts ending in .13
WHOLE_BALANCE_REVERSAL = Decimal("30.00")  # --whole-balance: 3 × 50.00 − 30.00 = 2 × 60.00
FAIL_EVERY = 20


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--withdrawals", type=int, default=10_000, help="approved withdrawals to pay (default 10000)")
    parser.add_argument("--per-member", type=int, default=2, help="withdrawals per member (default 2, max 2)")
    parser.add_argument("--workers", type=int, default=1, help="threads creating and sending batches (default 1)")
    parser.add_argument("--batch-size", type=int, default=10_000, help="limit of payout_batch_create (default 10000)")
    parser.add_argument("--requests", choices=["service", "bulk"], default="bulk", help="how withdrawals are made")
    parser.add_argument("--profile", action="store_true", help="time the per-row services and count SQL statements")
    parser.add_argument(
        "--whole-balance",
        action="store_true",
        help="give each member a released -30.00 reversal after their three entries, so their two 60.00 withdrawals "
        "take the whole balance (issue #19: a negative entry after one that does not fit)",
    )
    args = parser.parse_args(argv)
    if args.withdrawals < 1 or args.workers < 1 or args.batch_size < 1:
        parser.error("--withdrawals, --workers and --batch-size must be at least 1")
    if not 1 <= args.per_member <= 2:
        parser.error("--per-member must be 1 or 2 (the default WITHDRAWAL_MAX_OPEN is 3; 3 × 60.00 > 150.00)")
    if args.withdrawals % args.per_member:
        parser.error("--withdrawals must be a multiple of --per-member")
    return args


def setup_django() -> None:
    sys.path.insert(0, str(REPO_ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    import django

    django.setup()


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


@contextlib.contextmanager
def throwaway_database(script: str):
    """A database beside DATABASE_URL's (`test_bench_<script>_<name>`, migrated from scratch), dropped at the end,
    also on error; DATABASE_URL's own is never touched."""
    from django.db import connection, connections

    old_name = connection.settings_dict["NAME"]
    test_name = f"test_bench_{script}_{old_name}"
    connection.settings_dict["TEST"]["NAME"] = test_name
    log(f"creating throwaway database {test_name} (DATABASE_URL's database {old_name} is not touched)")
    connection.creation.create_test_db(verbosity=0, autoclobber=True, serialize=False, keepdb=False)
    try:
        yield test_name
    finally:
        connections.close_all()
        connection.creation.destroy_test_db(old_name, verbosity=0, keepdb=False)


def withdrawal_amount(index: int) -> Decimal:
    return FAILING_AMOUNT if index % FAIL_EVERY == FAIL_EVERY - 1 else PAID_AMOUNT


# --- Setup ---------------------------------------------------------------------------------------------------


def bulk_world(members: int, *, whole_balance: bool = False) -> list[int]:
    """Members with released commission and payout accounts, in bulk; return the member ids."""
    from django.db import transaction
    from django.utils import timezone

    from accounts.models import User
    from commissions.models import CommissionEntry, CommissionPlan, CompliancePolicy
    from payouts.models import PayoutAccount
    from referrals.models import Member
    from shops.models import Order, OrderLine, Product, Shop

    now = timezone.now()
    plan = CommissionPlan.objects.get(version=1)
    policy = CompliancePolicy.objects.get(version=1)
    with transaction.atomic():
        users = User.objects.bulk_create(
            [
                User(email=f"p{i}@{INVALID_EMAIL_DOMAIN}", password=UNUSABLE_PASSWORD, first_name=f"Payee {i}")
                for i in range(members + 1)
            ],
            batch_size=5000,
        )
        # Every member a root of a one-node tree: valid nested sets without the tree lock of member_join.
        people = Member.objects.bulk_create(
            [
                Member(
                    user=user,
                    invite_code=f"BP{i:09d}",
                    join_source=Member.JoinSource.DIRECT,
                    tree_id=i + 1,
                    lft=1,
                    rght=2,
                    level=0,
                )
                for i, user in enumerate(users)
            ],
            batch_size=5000,
        )
        owner, payees = people[0], people[1:]
        shop = Shop.objects.create(owner=owner, name="Bench shop", slug="bench-shop")
        price = (ENTRY_AMOUNT / Decimal("0.08")).quantize(Decimal("0.01"))
        product = Product.objects.create(title="Bench product", price=price, stock=0, commission_rate=Decimal("0.1"))
        orders = Order.objects.bulk_create(
            [
                Order(
                    number=f"B{i:012d}",
                    shop=shop,
                    sharer=member,
                    status=Order.Status.COMPLETED,
                    buyer_name="Bench buyer",
                    buyer_email=f"buyer@{INVALID_EMAIL_DOMAIN}",
                    shipping_address="1 Bench Road",
                    total=price * ENTRIES_PER_MEMBER,
                    paid_at=now - timedelta(days=20),
                    shipped_at=now - timedelta(days=19),
                    completed_at=now - timedelta(days=18),
                )
                for i, member in enumerate(payees)
            ],
            batch_size=5000,
        )
        lines = OrderLine.objects.bulk_create(
            [
                OrderLine(
                    order=order,
                    product=product,
                    title=product.title,
                    unit_price=price,
                    quantity=1,
                    net_amount=price,
                    commission_rate=product.commission_rate,
                )
                for order in orders
                for _ in range(ENTRIES_PER_MEMBER)
            ],
            batch_size=5000,
        )
        pool = price * product.commission_rate
        CommissionEntry.objects.bulk_create(
            [
                CommissionEntry(
                    order_id=line.order_id,
                    order_line=line,
                    beneficiary=member,
                    level=1,
                    kind=CommissionEntry.Kind.COMMISSION,
                    base=pool,
                    rate=Decimal("0.8"),
                    amount=ENTRY_AMOUNT,
                    plan=plan,
                    policy=policy,
                    status=CommissionEntry.Status.AVAILABLE,
                    created_at=now - timedelta(days=20),
                    released_at=now - timedelta(days=10, seconds=k),
                )
                for member, order_lines in zip(
                    payees,
                    (lines[i : i + ENTRIES_PER_MEMBER] for i in range(0, len(lines), ENTRIES_PER_MEMBER)),
                    strict=True,
                )
                for k, line in enumerate(order_lines)
            ],
            batch_size=5000,
        )
        if whole_balance:  # a refund before release of 30.00 of each member's last line, released with it
            CommissionEntry.objects.bulk_create(
                [
                    CommissionEntry(
                        order_id=order_lines[-1].order_id,
                        order_line=order_lines[-1],
                        beneficiary=member,
                        level=1,
                        kind=CommissionEntry.Kind.REVERSAL,
                        base=pool,
                        rate=Decimal("0.8"),
                        amount=-WHOLE_BALANCE_REVERSAL,
                        plan=plan,
                        policy=policy,
                        status=CommissionEntry.Status.AVAILABLE,
                        created_at=now - timedelta(days=19),
                        released_at=now - timedelta(days=9),
                    )
                    for member, order_lines in zip(
                        payees,
                        (lines[i : i + ENTRIES_PER_MEMBER] for i in range(0, len(lines), ENTRIES_PER_MEMBER)),
                        strict=True,
                    )
                ],
                batch_size=5000,
            )
        PayoutAccount.objects.bulk_create(
            [
                PayoutAccount(
                    member=member,
                    method=PayoutAccount.Method.ALIPAY,
                    holder_name=f"Payee {i}",
                    alipay_account=f"payee{i}@{INVALID_EMAIL_DOMAIN}",
                )
                for i, member in enumerate(payees)
            ],
            batch_size=5000,
        )
    return [member.pk for member in payees]


def request_withdrawals(member_ids: list[int], per_member: int) -> None:
    """One withdrawal_request call per withdrawal (auto-approved), as members would."""
    from django.conf import settings

    from payouts.services import withdrawal_request
    from referrals.models import Member

    settings.WITHDRAWAL_AUTO_APPROVE_MAX = PAID_AMOUNT
    members = Member.objects.select_related("user").in_bulk(member_ids)
    index = 0
    for _round in range(per_member):
        for member_id in member_ids:
            withdrawal_request(member=members[member_id], amount=withdrawal_amount(index))
            index += 1


def bulk_withdrawals(member_ids: list[int], per_member: int) -> None:
    """The same withdrawals written in bulk, already approved, with their requested and approved events."""
    import uuid

    from django.db import transaction
    from django.utils import timezone

    from payouts.models import PayoutAccount, Withdrawal, WithdrawalEvent

    now = timezone.now()
    accounts = {account.member_id: account.snapshot() for account in PayoutAccount.objects.all()}
    rows = []
    index = 0
    for _round in range(per_member):
        for member_id in member_ids:
            rows.append(
                Withdrawal(
                    member_id=member_id,
                    amount=withdrawal_amount(index),
                    status=Withdrawal.Status.APPROVED,
                    account=accounts[member_id],
                    idempotency_key=uuid.uuid4().hex,
                    requested_at=now,
                    decided_at=now,
                )
            )
            index += 1
    with transaction.atomic():
        withdrawals = Withdrawal.objects.bulk_create(rows, batch_size=5000)
        events = []
        for withdrawal in withdrawals:
            common = {"withdrawal": withdrawal, "amount": withdrawal.amount}
            events.append(WithdrawalEvent(from_status="", to_status="requested", actor_label="member", **common))
            events.append(
                WithdrawalEvent(from_status="requested", to_status="approved", actor_label="auto-approval", **common)
            )
        WithdrawalEvent.objects.bulk_create(events, batch_size=5000)


# --- The timed phase ---------------------------------------------------------------------------------------


STATEMENT_TABLE = re.compile(r'(?:FROM|INTO|UPDATE)\s+"(\w+)"')


class Profile:
    """Time spent in the per-row services, and in each kind of SQL statement, summed over all workers."""

    def __init__(self):
        self.lock = threading.Lock()
        self.seconds = defaultdict(float)
        self.calls = Counter()
        self.statement_seconds = defaultdict(float)
        self.statements = Counter()

    def add(self, name: str, seconds: float) -> None:
        with self.lock:
            self.seconds[name] += seconds
            self.calls[name] += 1

    def wrap(self, owner, attribute: str, name: str) -> None:
        original = getattr(owner, attribute)

        def timed(*args, **kwargs):
            started = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                self.add(name, time.perf_counter() - started)

        setattr(owner, attribute, timed)

    def time_statement(self, execute, sql, params, many, context):
        """A connection.execute_wrapper: BEGIN and COMMIT do not pass here (psycopg sends them itself)."""
        table = STATEMENT_TABLE.search(sql)
        kind = f"{sql.split(None, 1)[0]} {table.group(1) if table else ''}"
        if "FOR UPDATE" in sql:
            kind += " FOR UPDATE" + (" SKIP LOCKED" if "SKIP LOCKED" in sql else "")
        started = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            elapsed = time.perf_counter() - started
            with self.lock:
                self.statement_seconds[kind] += elapsed
                self.statements[kind] += 1

    def report(self, title: str, rows: int) -> list[str]:
        """The markdown table of what was measured since the last report; the counters start again."""
        lines = ["", f"| {title} (summed over workers) | calls | s | ms per call |", "| --- | ---: | ---: | ---: |"]
        for name, seconds in self.seconds.items():
            calls = self.calls[name]
            lines.append(f"| {name} | {calls:,} | {seconds:.2f} | {seconds / calls * 1000:.2f} |")
        for kind, seconds in sorted(self.statement_seconds.items(), key=lambda item: -item[1]):
            calls = self.statements[kind]
            lines.append(f"| SQL `{kind.strip()}` | {calls:,} | {seconds:.2f} | {seconds / calls * 1000:.2f} |")
        total = sum(self.statements.values())
        lines.append(
            f"| all SQL statements ({total / rows:.1f} per withdrawal; BEGIN/COMMIT not seen) | {total:,} "
            f"| {sum(self.statement_seconds.values()):.2f} | |"
        )
        self.seconds.clear()
        self.calls.clear()
        self.statement_seconds.clear()
        self.statements.clear()
        return lines


def install_profile(profile: Profile) -> None:
    import commissions.services
    from payouts import services
    from payouts.providers.sandbox import SandboxPayoutProvider

    profile.wrap(SandboxPayoutProvider, "send", "provider send (SandboxTransfer insert)")
    profile.wrap(services, "withdrawal_record_result", "withdrawal_record_result (whole transaction)")
    # withdrawal_record_result imports it from commissions.services at each call, so this catches it.
    profile.wrap(commissions.services, "commission_entries_mark_paid", "  of which commission_entries_mark_paid")
    profile.wrap(services, "payout_batch_create", "payout_batch_create")


def send_everything(workers: int, batch_size: int, profile: Profile | None) -> tuple[list[dict], list[int]]:
    """Each worker: create a batch of what is approved, send it; again until nothing is left."""
    from django.db import connection, connections

    from payouts.services import payout_batch_create, payout_batch_send

    outcomes: list[dict] = []
    batch_ids: list[int] = []
    errors: list[BaseException] = []
    lock = threading.Lock()
    barrier = threading.Barrier(workers)

    def worker():
        try:
            counting = connection.execute_wrapper(profile.time_statement) if profile else nullcontext()
            with counting:
                barrier.wait(timeout=60)
                while True:
                    batch = payout_batch_create(provider_name="sandbox", limit=batch_size)
                    if batch is None:
                        return
                    outcome = payout_batch_send(batch=batch)
                    with lock:
                        outcomes.append(outcome)
                        batch_ids.append(batch.pk)
        except BaseException as error:
            with lock:
                errors.append(error)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=worker) for _ in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise RuntimeError(f"{len(errors)} worker(s) failed: {errors[0]!r}") from errors[0]
    return outcomes, batch_ids


# --- Proof ---------------------------------------------------------------------------------------------------


def fingerprint() -> dict:
    """Everything a second send must leave alone."""
    from django.db.models import Sum

    from commissions.models import CommissionEntry
    from payouts.models import PayoutBatch, SandboxTransfer, Withdrawal, WithdrawalEvent

    return {
        "withdrawals": dict(Counter(Withdrawal.objects.values_list("status", flat=True))),
        "transfers": SandboxTransfer.objects.count(),
        "transfer_max_id": SandboxTransfer.objects.order_by("-pk").values_list("pk", flat=True).first(),
        "events": WithdrawalEvent.objects.count(),
        "event_max_id": WithdrawalEvent.objects.order_by("-pk").values_list("pk", flat=True).first(),
        "entries": dict(Counter(CommissionEntry.objects.values_list("status", flat=True))),
        "batches": dict(Counter(PayoutBatch.objects.values_list("status", flat=True))),
        "paid_total": Withdrawal.objects.filter(status="paid").aggregate(total=Sum("amount"))["total"],
    }


def prove_no_duplicates(expected: int) -> dict[str, object]:
    """Stop the benchmark unless every withdrawal was paid or failed exactly once; return the figures."""
    from django.db.models import Count, OuterRef, Subquery, Sum

    from commissions.models import CommissionEntry
    from payouts.models import SandboxTransfer, Withdrawal, WithdrawalEvent

    problems = []
    statuses = Counter(Withdrawal.objects.values_list("status", flat=True))
    paid, failed = statuses["paid"], statuses["failed"]
    if paid + failed != expected or sum(statuses.values()) != expected:
        problems.append(f"withdrawals by status: {dict(statuses)}, expected {expected} paid or failed")
    transfers = SandboxTransfer.objects.count()
    distinct_keys = SandboxTransfer.objects.values("idempotency_key").distinct().count()
    if transfers != paid + failed:
        problems.append(f"{transfers} SandboxTransfer rows for {paid + failed} paid or failed withdrawals")
    if distinct_keys != transfers:
        problems.append(f"{transfers - distinct_keys} idempotency keys sent twice")
    transfer = SandboxTransfer.objects.filter(idempotency_key=OuterRef("idempotency_key"))
    done = Withdrawal.objects.filter(status__in=["paid", "failed"]).annotate(
        outcome=Subquery(transfer.values("outcome")[:1])
    )
    without_transfer = done.filter(outcome__isnull=True).count()
    mismatched = sum(1 for status, outcome in done.values_list("status", "outcome") if status != outcome)
    if without_transfer or mismatched:
        problems.append(f"{without_transfer} withdrawals without a transfer, {mismatched} with another outcome")
    terminal = WithdrawalEvent.objects.filter(from_status="processing", to_status__in=["paid", "failed"])
    terminal_counts = Counter(terminal.values("withdrawal_id").annotate(n=Count("pk")).values_list("n", flat=True))
    if terminal_counts != Counter({1: expected}):
        problems.append(f"terminal events per withdrawal: {dict(terminal_counts)} (want {{1: {expected}}})")
    batched = WithdrawalEvent.objects.filter(from_status="approved", to_status="processing")
    batched_counts = Counter(batched.values("withdrawal_id").annotate(n=Count("pk")).values_list("n", flat=True))
    if batched_counts != Counter({1: expected}):
        problems.append(f"approved→processing events per withdrawal: {dict(batched_counts)}")
    sent_paid = SandboxTransfer.objects.filter(outcome="paid").aggregate(total=Sum("amount"))["total"]
    marked_paid = Withdrawal.objects.filter(status="paid").aggregate(total=Sum("amount"))["total"]
    if sent_paid != marked_paid:
        problems.append(f"the provider paid {sent_paid}, withdrawals marked paid add up to {marked_paid}")
    released = dict(
        CommissionEntry.objects.filter(status__in=["available", "paid"])
        .values("beneficiary_id")
        .annotate(total=Sum("amount"))
        .values_list("beneficiary_id", "total")
    )
    outgoing = dict(
        Withdrawal.objects.filter(status__in=["requested", "approved", "processing", "paid"])
        .values("member_id")
        .annotate(total=Sum("amount"))
        .values_list("member_id", "total")
    )
    negative = sum(1 for member_id, total in outgoing.items() if total > released.get(member_id, 0))
    if negative:
        problems.append(f"{negative} members with a negative balance")
    covered_not_paid, paid_not_covered = coverage_mismatches()
    if covered_not_paid or paid_not_covered:
        problems.append(
            f"{covered_not_paid} entries covered by completed payouts but not labelled paid, "
            f"{paid_not_covered} labelled paid but not covered"
        )
    if problems:
        raise SystemExit("DUPLICATES OR LOSSES FOUND:\n- " + "\n- ".join(problems))
    entries = Counter(CommissionEntry.objects.values_list("status", flat=True))
    return {
        "paid": paid,
        "failed": failed,
        "transfers": transfers,
        "distinct keys": distinct_keys,
        "terminal events": sum(terminal_counts.values()),
        "paid total": marked_paid,
        "entries labelled paid": entries["paid"],
        "entries still available": entries["available"],
        "covered but still available": covered_not_paid,
    }


def coverage_mismatches() -> tuple[int, int]:
    """SPEC §8, computed here independently of the service: in release order, an entry is covered when the running
    total up to it is within what was paid out to its member, and so is everything before it. Returns how many
    covered entries are not labelled paid, and how many labelled paid are not covered."""
    from django.db.models import Sum

    from commissions.models import CommissionEntry
    from payouts.models import Withdrawal

    paid_out = dict(
        Withdrawal.objects.filter(status="paid")
        .values("member_id")
        .annotate(total=Sum("amount"))
        .values_list("member_id", "total")
    )
    by_member = defaultdict(list)
    for member_id, status, amount in (
        CommissionEntry.objects.filter(status__in=["available", "paid"], beneficiary__isnull=False)
        .order_by("beneficiary_id", "released_at", "pk")
        .values_list("beneficiary_id", "status", "amount")
    ):
        by_member[member_id].append((status, amount))
    covered_not_paid = paid_not_covered = 0
    for member_id, entries in by_member.items():
        running, covered = Decimal("0.00"), 0
        for position, (_status, amount) in enumerate(entries, start=1):
            running += amount
            if running <= paid_out.get(member_id, Decimal("0.00")):
                covered = position
        covered_not_paid += sum(1 for status, _amount in entries[:covered] if status != "paid")
        paid_not_covered += sum(1 for status, _amount in entries[covered:] if status == "paid")
    return covered_not_paid, paid_not_covered


# --- Main ------------------------------------------------------------------------------------------------------


def run(args: argparse.Namespace) -> None:
    from django.db import connection

    from payouts.models import PayoutBatch
    from payouts.services import payout_batch_send, payout_batches_run

    members = args.withdrawals // args.per_member
    started = time.perf_counter()
    member_ids = bulk_world(members, whole_balance=args.whole_balance)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    world_s = time.perf_counter() - started
    log(f"setup: {members} members, {members * ENTRIES_PER_MEMBER} released entries, accounts in {world_s:.1f} s")

    profile = Profile() if args.profile else None
    started = time.perf_counter()
    with connection.execute_wrapper(profile.time_statement) if profile else nullcontext():
        if args.requests == "service":
            request_withdrawals(member_ids, args.per_member)
        else:
            bulk_withdrawals(member_ids, args.per_member)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    requests_s = time.perf_counter() - started
    how = "withdrawal_request calls" if args.requests == "service" else "bulk-created approved withdrawals"
    log(f"setup: {args.withdrawals} {how} in {requests_s:.1f} s ({requests_s / args.withdrawals * 1000:.2f} ms each)")

    profile_lines = []
    if profile:
        profile_lines += profile.report(f"making the withdrawals ({how})", args.withdrawals)
        install_profile(profile)
    started = time.perf_counter()
    outcomes, batch_ids = send_everything(args.workers, args.batch_size, profile)
    send_s = time.perf_counter() - started
    if profile:
        profile_lines += profile.report("batch and send, the timed phase", args.withdrawals)
    totals = Counter()
    for outcome in outcomes:
        totals.update(outcome)
    log(f"timed: {len(batch_ids)} batches, {dict(totals)} in {send_s:.2f} s")

    started = time.perf_counter()
    proof = prove_no_duplicates(args.withdrawals)
    proof_s = time.perf_counter() - started
    log(f"proof: no duplicates ({proof}) in {proof_s:.1f} s")

    before = fingerprint()
    started = time.perf_counter()
    resent = Counter()
    for batch in PayoutBatch.objects.order_by("pk"):
        resent.update(payout_batch_send(batch=batch))
    periodic = payout_batches_run(provider_name="sandbox")
    resend_s = time.perf_counter() - started
    after = fingerprint()
    if after != before or any(resent.values()) or periodic:
        raise SystemExit(f"THE RE-SEND CHANGED SOMETHING: {dict(resent)}, periodic {periodic}\n{before}\n{after}")
    log(f"re-send of {len(batch_ids)} batches and the periodic task: nothing changed ({resend_s:.2f} s)")

    rate = args.withdrawals / send_s
    print("| withdrawals | requests | workers | batch size | batches | paid | failed | batch+send s | per s |")
    print("| ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    print(
        f"| {args.withdrawals:,} | {args.requests} | {args.workers} | {args.batch_size:,} | {len(batch_ids)} "
        f"| {totals['paid']:,} | {totals['failed']:,} | {send_s:.2f} | {rate:,.0f} |"
    )
    print()
    print(
        f"setup {world_s:.1f} s; withdrawals made ({how}) {requests_s:.1f} s "
        f"({requests_s / args.withdrawals * 1000:.2f} ms each); proof {proof_s:.1f} s; re-send {resend_s:.2f} s"
    )
    print(
        f"proof: {proof['transfers']:,} SandboxTransfer rows = {proof['paid']:,} paid + {proof['failed']:,} failed; "
        f"{proof['distinct keys']:,} distinct keys; {proof['terminal events']:,} terminal events, one per withdrawal; "
        f"paid {proof['paid total']}; entries labelled paid {proof['entries labelled paid']:,}, "
        f"still available {proof['entries still available']:,} (covered by completed payouts but still available: "
        f"{proof['covered but still available']:,})"
    )
    print(f"re-send: outcomes {dict(resent)}, periodic task sent {periodic} batches, fingerprint unchanged")
    for line in profile_lines:
        print(line)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    setup_django()

    from django.conf import settings
    from django.db import connection

    if connection.vendor != "postgresql":
        print(
            f"bench/payouts.py needs PostgreSQL, but DATABASE_URL gives a {connection.vendor} database. "
            "Set DATABASE_URL=postgres://user@host:5432/name (the named database is not touched; "
            "a throwaway one is created beside it).",
            file=sys.stderr,
        )
        return 2
    settings.DEBUG = False  # Django's query log would cost time inside the measurement
    old_name = connection.settings_dict["NAME"]
    test_name = f"test_bench_payouts_{old_name}"
    connection.settings_dict["TEST"]["NAME"] = test_name
    log(f"creating throwaway database {test_name} (DATABASE_URL's database {old_name} is not touched)")
    connection.creation.create_test_db(verbosity=0, autoclobber=True, serialize=False, keepdb=False)
    try:
        with connection.cursor() as cursor:
            cursor.execute("SHOW server_version")
            version = cursor.fetchone()[0]
            cursor.execute("SHOW synchronous_commit")
            synchronous_commit = cursor.fetchone()[0]
        log(f"PostgreSQL {version} (synchronous_commit {synchronous_commit}), {os.cpu_count()} CPUs")
        run(args)
    finally:
        from django.db import connections

        connections.close_all()
        connection.creation.destroy_test_db(old_name, verbosity=0, keepdb=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
