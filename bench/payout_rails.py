"""Benchmark the WeChat Pay transfer rail: N approved withdrawals batched and sent as 商家转账 bills to the local
WeChat Pay fake, then proof of no duplicates (issue #21's target: creation of 10,000 in ≤ 60 s, 0 duplicates).

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/<db> \\
        .venv/bin/python bench/payout_rails.py [--withdrawals 10000] [--threads 8] [--max-per-second 0]

PostgreSQL only. The database named in DATABASE_URL is never read or written: a throwaway database beside it
(`test_bench_payout_rails_<name>`, migrated from scratch) is used and dropped at the end (also on error).

The gateway: the WeChat Pay fake (shops/payments/fakes) with fresh RSA-2048 keys, serving on a loopback port from
a process of its own (forked, so it knows the keys), as the real gateway is another machine. Every request is
signed by the SDK and checked by the fake (signature, nonce, timestamp), every answer signed by the fake and checked
by the SDK, and each payee's real name is encrypted by the SDK and decrypted by the fake: the real cryptographic work
of both sides on this machine.

Setup (not timed; reported): the members, their released commission and their WeChat payout accounts (an openid
each) in bulk (bench/payouts.py's world), one approved withdrawal of 60.00 each, in bulk with their events.

Timed: `payout_batch_create(provider_name="rails")` and `payout_batch_send(batch)` with PAYOUT_RAILS=wechat_transfer:
every withdrawal's bill made at the fake (WECHATPAY_TRANSFER_THREADS threads, --threads; at most
--max-per-second requests a second: WeChat Pay takes 100 a second per merchant, 0 lifts the limit to measure this
side alone) and recorded as a Transfer, waiting for the member (WAIT_USER_CONFIRM).

Then the proof, which stops the script if it fails: the fake holds exactly one bill per withdrawal, under the
withdrawal's idempotency key, for its amount and its member's openid; we hold one Transfer per withdrawal with the
bill's number; every withdrawal is processing. Then a crash is played: every Transfer row is deleted (the worker died
after the gateway answered, before anything was recorded) and the batch is sent again (timed on its own): the fake
answers each with the bill it already has: still exactly one bill per withdrawal, none new, the Transfers back.

The markdown lines go to stdout, progress to stderr.
"""

import argparse
import multiprocessing
import os
import sys
import time
from collections import Counter
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from bench.payouts import bulk_withdrawals, bulk_world, log, setup_django  # noqa: E402 - after the path


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--withdrawals", type=int, default=10_000, help="approved withdrawals to send (default 10000)")
    parser.add_argument("--threads", type=int, default=8, help="WECHATPAY_TRANSFER_THREADS (default 8)")
    parser.add_argument(
        "--max-per-second",
        type=float,
        default=0,
        help="WECHATPAY_TRANSFER_MAX_PER_SECOND (default 0: no limit; WeChat Pay's own is 100)",
    )
    args = parser.parse_args(argv)
    if args.withdrawals < 1 or args.threads < 1 or args.max_per_second < 0:
        parser.error("--withdrawals and --threads must be at least 1, --max-per-second at least 0")
    return args


# --- the gateway, in a process of its own ----------------------------------------------------------------------


def serve_gateway(fake, ready, control) -> None:
    """The child process: serve `fake` until told to stop; on "bills", send back what it holds."""
    from shops.payments.fakes import PaymentGatewaysFake

    fake.outbox.mode = "hold"  # notifications are not what is measured; none is sent
    with PaymentGatewaysFake(wechatpay=fake) as gateways:
        ready.send(gateways.url)
        while True:
            command = control.recv()
            if command == "bills":
                with fake._lock:
                    control.send([(b.out_bill_no, b.amount, b.openid, b.state) for b in fake.transfer_bills.values()])
            else:
                return


# --- the run ---------------------------------------------------------------------------------------------------


def wechat_accounts() -> None:
    """bench/payouts.py's members are paid by Alipay: make them WeChat payees, each with an openid."""
    from django.db.models import CharField, Value
    from django.db.models.functions import Cast, Concat

    from payouts.models import PayoutAccount

    PayoutAccount.objects.update(
        method=PayoutAccount.Method.WECHAT,
        alipay_account="",
        wechat_id="bench",
        wechat_openid=Concat(Value("oBench"), Cast("member_id", output_field=CharField())),
    )


def wechatpay_merchant(settings, fake, url: str) -> None:
    """The WECHATPAY_* settings of the fake's merchant (public key mode), its gateway at `url`."""
    values = fake.merchant_settings()
    settings.WECHATPAY_GATEWAY_URL = url
    settings.WECHATPAY_MCHID, settings.WECHATPAY_APPID = values["mchid"], values["appid"]
    settings.WECHATPAY_MERCHANT_SERIAL_NO = values["merchant_serial_no"]
    settings.WECHATPAY_MERCHANT_PRIVATE_KEY = values["merchant_private_key"]
    settings.WECHATPAY_APIV3_KEY = values["apiv3_key"]
    settings.WECHATPAY_PLATFORM_PUBLIC_KEY = values["platform_public_key"]
    settings.WECHATPAY_PLATFORM_PUBLIC_KEY_ID = values["platform_public_key_id"]
    settings.WECHATPAY_CERT_DIR = ""


def configure(settings, fake, url: str, args) -> None:
    wechatpay_merchant(settings, fake, url)
    settings.PAYMENTS_PROVIDER_TIMEOUT = 30
    settings.PAYOUT_PROVIDER = "rails"
    settings.PAYOUT_RAILS = ["wechat_transfer"]
    settings.WECHATPAY_TRANSFER_THREADS = args.threads
    settings.WECHATPAY_TRANSFER_MAX_PER_SECOND = args.max_per_second
    settings.SITE_URL = "https://shop.example.com"  # the notify_url sent; the fake holds its notifications


def prove(bills, expected: int) -> dict:
    """Exactly one bill per withdrawal, under its key, for its amount and payee; one Transfer each."""
    from payouts.models import Transfer, Withdrawal

    withdrawals = {
        key: (amount, account["wechat_openid"], status)
        for key, amount, account, status in Withdrawal.objects.values_list(
            "idempotency_key", "amount", "account", "status"
        )
    }
    numbers = Counter(number for number, *_rest in bills)
    problems = []
    if len(withdrawals) != expected:
        problems.append(f"{len(withdrawals)} withdrawals, {expected} expected")
    if len(bills) != len(withdrawals) or set(numbers) != set(withdrawals):
        problems.append(f"{len(bills)} bills for {len(withdrawals)} withdrawals")
    if any(count > 1 for count in numbers.values()):
        problems.append("a bill number twice")
    for number, fen, openid, state in bills:
        amount, payee, status = withdrawals.get(number, (None, None, None))
        if amount is None or int(amount * 100) != fen or payee != openid or state != "WAIT_USER_CONFIRM":
            problems.append(f"bill {number}: {fen} to {openid} ({state}) does not match its withdrawal")
            break
        if status != Withdrawal.Status.PROCESSING:
            problems.append(f"withdrawal {number} is {status}")
            break
    transfers = Counter(Transfer.objects.values_list("number", flat=True))
    if set(transfers) != set(withdrawals) or any(count > 1 for count in transfers.values()):
        problems.append(f"{sum(transfers.values())} Transfer rows for {len(withdrawals)} withdrawals")
    if problems:
        raise SystemExit("DUPLICATES OR MISMATCHES: " + "; ".join(problems))
    return {"bills": len(bills), "distinct numbers": len(numbers), "transfers": sum(transfers.values())}


def run(args: argparse.Namespace, settings, fake, url: str, control) -> None:
    from django.db import connection

    from payouts.models import PayoutBatch, Transfer
    from payouts.services import payout_batch_create, payout_batch_send

    configure(settings, fake, url, args)
    started = time.perf_counter()
    member_ids = bulk_world(args.withdrawals)
    wechat_accounts()
    bulk_withdrawals(member_ids, per_member=1)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    setup_s = time.perf_counter() - started
    log(f"setup: {args.withdrawals} members with a WeChat payee and an approved withdrawal in {setup_s:.1f} s")

    started = time.perf_counter()
    batch = payout_batch_create(provider_name="rails", limit=args.withdrawals)
    outcome = payout_batch_send(batch=batch)
    send_s = time.perf_counter() - started
    log(f"timed: {outcome} in {send_s:.2f} s")

    control.send("bills")
    proof = prove(control.recv(), args.withdrawals)
    log(f"proof: {proof}")

    # The crash: the gateway answered, nothing was recorded. Sent again, the same bills come back.
    Transfer.objects.all().delete()
    started = time.perf_counter()
    resent = payout_batch_send(batch=PayoutBatch.objects.get(pk=batch.pk))
    resend_s = time.perf_counter() - started
    control.send("bills")
    after = prove(control.recv(), args.withdrawals)
    log(f"re-send after the crash: {resent} in {resend_s:.2f} s; {after}")

    limit = f"{args.max_per_second:g}/s" if args.max_per_second else "none"
    print("| withdrawals | threads | rate limit | bills | creation s | per s | duplicates | re-send s | bills after |")
    print("| ---: | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    duplicates = proof["bills"] - proof["distinct numbers"] + after["bills"] - proof["bills"]
    print(
        f"| {args.withdrawals:,} | {args.threads} | {limit} | {proof['bills']:,} | {send_s:.2f} "
        f"| {args.withdrawals / send_s:,.0f} | {duplicates} | {resend_s:.2f} | {after['bills']:,} |"
    )
    print()
    print(f"setup {setup_s:.1f} s; outcome {outcome}; re-send outcome {resent}; CPUs {os.cpu_count()}")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    setup_django()

    from django.conf import settings
    from django.db import connection

    from shops.payments.fakes import WeChatPayFake

    if connection.vendor != "postgresql":
        print(
            "bench/payout_rails.py needs PostgreSQL: set DATABASE_URL=postgres://user@host:5432/name", file=sys.stderr
        )
        return 2
    settings.DEBUG = False
    fake = WeChatPayFake()
    context = multiprocessing.get_context("fork")
    ready_parent, ready_child = context.Pipe()
    control_parent, control_child = context.Pipe()
    gateway = context.Process(target=serve_gateway, args=(fake, ready_child, control_child), daemon=True)
    gateway.start()
    url = ready_parent.recv()
    log(f"WeChat Pay fake serving at {url} (process {gateway.pid})")
    old_name = connection.settings_dict["NAME"]
    test_name = f"test_bench_payout_rails_{old_name}"
    connection.settings_dict["TEST"]["NAME"] = test_name
    log(f"creating throwaway database {test_name} (DATABASE_URL's database {old_name} is not touched)")
    connection.creation.create_test_db(verbosity=0, autoclobber=True, serialize=False, keepdb=False)
    try:
        run(args, settings, fake, url, control_parent)
    finally:
        from django.db import connections

        control_parent.send("stop")
        gateway.join(timeout=10)
        connections.close_all()
        connection.creation.destroy_test_db(old_name, verbosity=0, keepdb=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
