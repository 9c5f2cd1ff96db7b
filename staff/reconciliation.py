"""The daily reconciliation: each provider's bills of a day against our payments, refunds and transfers.

For a provider (wechatpay, alipay) and a day (China's, as the bills count days), `reconciliation_run` downloads the
bills (shops.payments.bills) and records every difference (staff.models.ReconciliationDifference):

- missing here: a payment, refund or transfer on the bill that we have no record of;
- missing there: one of ours, completed that day, that the bill does not have;
- amount: both have it, with other amounts;
- status: the bill has it done (paid, refunded, transferred) and we do not, or the other way round.

A payment the bill has as paid while ours waits (its notification never came) is repaired by asking the provider
(shops.services.payment_sync), and a transfer the bill has while its withdrawal waits, by asking the rail
(payouts.services.payout_transfer_sync); a difference so repaired is recorded as resolved, with the repair. The
others stay open until staff resolve them (the reconciliation page) or a later bill shows them (a refund that
succeeded just after midnight is on the next day's bill: that run resolves the difference).

Our side of a day: payments that succeeded then (completed_at), refunds made then, withdrawals paid then. A
provider records a payment no later than we learn of it, so a payment we recorded in the first minutes after
midnight may be on the previous day's bill: that bill is read too before it counts as missing.

`check_ledger` includes every open difference and every run that could not run (staff.ledger_check).
"""

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from payouts.models import Transfer, Withdrawal
from payouts.providers import get_payout_provider
from payouts.services import PayoutError, payout_transfer_sync
from shops.models import Payment, Refund
from shops.payments import get_provider
from shops.payments.alipay import AlipayProvider
from shops.payments.base import ProviderError
from shops.payments.bills import BillLine, alipay_bill_lines, wechatpay_bill_lines
from shops.payments.wechatpay import WeChatPayProvider
from shops.services import ShopError, payment_sync, refund_sync
from staff.models import ReconciliationDifference as Difference
from staff.models import ReconciliationRun as Run

logger = logging.getLogger("staff.reconciliation")

CHINA = ZoneInfo("Asia/Shanghai")  # the bills' days
EDGE = timedelta(minutes=15)  # a payment recorded this soon after midnight may be on the previous day's bill
RESOLVE_BACK_DAYS = 3  # a run resolves "missing there" differences of up to this many days before it
RETRY_DAYS = 7  # the daily task runs again the runs that failed within this many days
CHUNK = 1000
# The payment rail and the payout rail of each provider.
RAILS = {"wechatpay": ("wechatpay", Transfer.Rail.WECHAT), "alipay": ("alipay", Transfer.Rail.ALIPAY)}
# What "done" is called: ours, and on each bill.
DONE_HERE = {
    "payment": (Payment.Status.SUCCEEDED, Payment.Status.REFUNDED),
    "refund": (Refund.Status.SUCCEEDED,),
    "transfer": (Withdrawal.Status.PAID,),
}
DONE_THERE = {"payment": ("SUCCESS", "交易"), "refund": ("REFUND", "退款"), "transfer": ("SUCCESS",)}


@dataclass
class Record:
    """One of our payments, refunds or transfers, as the comparison needs it."""

    subject: str
    reference: str
    amount: Decimal
    status: str
    at: datetime | None
    obj: object


def enabled_names() -> set[str]:
    return {
        settings.PAYMENT_PROVIDER,
        *settings.PAYMENT_RAILS,
        settings.PAYOUT_PROVIDER,
        *settings.PAYOUT_RAILS,
    }


def reconciliation_providers() -> list[str]:
    """The providers with a rail enabled (payments or payouts): the ones whose bills are compared every day."""
    names = enabled_names()
    return [provider for provider, (payment, payout) in RAILS.items() if names & {payment, payout}]


def bill_day_window(day: date) -> tuple[datetime, datetime]:
    start = datetime.combine(day, time.min, CHINA)
    return start, start + timedelta(days=1)


def yesterday() -> date:
    return (timezone.now().astimezone(CHINA) - timedelta(days=1)).date()


# --- the two sides ---------------------------------------------------------------------------------------------


def bill_lines(provider: str, day: date) -> list[BillLine]:
    """The provider's bills of `day` as lines (ProviderError if they cannot be had now)."""
    if provider == "wechatpay":
        return wechatpay_bill_lines(WeChatPayProvider(), day)
    names = enabled_names()
    # With the transfer rail on, its application (in the certificate mode) downloads the account's bills.
    api = get_payout_provider(Transfer.Rail.ALIPAY).api if Transfer.Rail.ALIPAY in names else AlipayProvider()
    return alipay_bill_lines(api, day, trades="alipay" in names)


def _refund_reference(provider: str):
    try:
        return get_provider(provider).refund_reference
    except KeyError:
        return lambda key: key


def our_records(provider: str, day: date) -> dict[tuple[str, str], Record]:
    """Our payments that succeeded, refunds made and withdrawals paid on `day` (China time) through `provider`."""
    start, end = bill_day_window(day)
    payment_rail, payout_rail = RAILS[provider]
    reference_of = _refund_reference(payment_rail)
    records = {}
    payments = Payment.objects.filter(
        provider=payment_rail, status__in=DONE_HERE["payment"], completed_at__gte=start, completed_at__lt=end
    )
    for payment in payments.iterator(chunk_size=CHUNK):
        records["payment", payment.reference] = Record(
            "payment", payment.reference, payment.amount, payment.status, payment.completed_at, payment
        )
    refunds = Refund.objects.filter(
        payment__provider=payment_rail, status=Refund.Status.SUCCEEDED, created_at__gte=start, created_at__lt=end
    )
    for refund in refunds.iterator(chunk_size=CHUNK):
        reference = reference_of(refund.idempotency_key)
        records["refund", reference] = Record(
            "refund", reference, refund.amount, refund.status, refund.created_at, refund
        )
    transfers = Transfer.objects.filter(
        rail=payout_rail,
        withdrawal__status=Withdrawal.Status.PAID,
        withdrawal__paid_at__gte=start,
        withdrawal__paid_at__lt=end,
    ).select_related("withdrawal__withholding")
    for transfer in transfers.iterator(chunk_size=CHUNK):
        withdrawal = transfer.withdrawal
        records["transfer", transfer.number] = Record(
            "transfer", transfer.number, withdrawal.net_amount, withdrawal.status, withdrawal.paid_at, withdrawal
        )
    return records


def _chunks(values: list, size: int = CHUNK) -> Iterable[list]:
    for start in range(0, len(values), size):
        yield values[start : start + size]


def records_on_bill(provider: str, lines: list[BillLine]) -> dict[tuple[str, str], Record]:
    """Our record of each line of the bill, whatever day it is ours (a few queries per thousand lines)."""
    payment_rail, payout_rail = RAILS[provider]
    reference_of = _refund_reference(payment_rail)
    found = {}
    payments = [line.reference for line in lines if line.subject == "payment"]
    for chunk in _chunks(payments):
        for payment in Payment.objects.filter(provider=payment_rail, reference__in=chunk):
            found["payment", payment.reference] = Record(
                "payment", payment.reference, payment.amount, payment.status, payment.completed_at, payment
            )
    refunded = sorted({line.payment_reference for line in lines if line.subject == "refund"})
    for chunk in _chunks(refunded):
        for refund in Refund.objects.filter(payment__provider=payment_rail, payment__reference__in=chunk):
            reference = reference_of(refund.idempotency_key)
            found["refund", reference] = Record(
                "refund", reference, refund.amount, refund.status, refund.created_at, refund
            )
    numbers = [line.reference for line in lines if line.subject == "transfer"]
    for chunk in _chunks(numbers):
        for transfer in Transfer.objects.filter(rail=payout_rail, number__in=chunk).select_related(
            "withdrawal__withholding"
        ):
            withdrawal = transfer.withdrawal
            found["transfer", transfer.number] = Record(
                "transfer", transfer.number, withdrawal.net_amount, withdrawal.status, withdrawal.paid_at, withdrawal
            )
    return found


# --- repairs ---------------------------------------------------------------------------------------------------


def _repair(record: Record) -> tuple[str, bool]:
    """Ask the provider about a record the bill has as done while we wait: (what happened, whether it now matches).
    Only payments, refunds and transfers still waiting are asked (their notification never came); anything else is
    for staff to look at."""
    try:
        if record.subject == "payment" and record.status == Payment.Status.PENDING:
            outcome = payment_sync(payment=record.obj)
            status = Payment.objects.filter(pk=record.obj.pk).values_list("status", flat=True).get()
        elif record.subject == "refund" and record.status == Refund.Status.PENDING:
            outcome = refund_sync(refund=record.obj)
            status = Refund.objects.filter(pk=record.obj.pk).values_list("status", flat=True).get()
        elif record.subject == "transfer" and record.status == Withdrawal.Status.PROCESSING:
            outcome = payout_transfer_sync(transfer=Transfer.objects.get(withdrawal_id=record.obj.pk))
            status = Withdrawal.objects.filter(pk=record.obj.pk).values_list("status", flat=True).get()
        else:
            return "", False
    except (ProviderError, ShopError, PayoutError) as error:
        return f"query failed: {error}"[:200], False
    return f"query: {outcome}"[:200], status in DONE_HERE[record.subject]


def reconciliation_repair(difference: Difference) -> str:
    """Staff's "ask the provider again" on one difference: the query a missed notification needs (a payment, a
    refund or a transfer still waiting), applied as the notification would have been; the difference is resolved if our
    record now matches the bill."""
    provider = difference.run.provider
    found = records_on_bill(provider, [BillLine(difference.subject, difference.reference, Decimal("0"), "")])
    record = found.get((difference.subject, difference.reference))
    if record is None:
        return "no record of ours to ask about"
    repair, repaired = _repair(record)
    if not repair:
        return "nothing to ask: our record is not waiting"
    updates = {"repair": repair}
    if repaired:
        updates.update(resolved_at=timezone.now(), resolution="repaired by a query")
    Difference.objects.filter(pk=difference.pk, resolved_at__isnull=True).update(**updates)
    return repair


# --- the run ---------------------------------------------------------------------------------------------------


def _difference(kind: str, subject: str, reference: str, record: Record | None, line: BillLine | None) -> Difference:
    return Difference(
        kind=kind,
        subject=subject,
        reference=reference[:64],
        our_amount=record.amount if record else None,
        their_amount=line.amount if line else None,
        our_status=(record.status if record else "")[:30],
        their_status=(line.state if line else "")[:30],
    )


def compare(provider: str, day: date, lines: list[BillLine], *, lookback=None) -> tuple[list[Difference], int]:
    """The differences between the bill `lines` of `day` and our records, repairs made; and how many of our
    records were checked. `lookback()` gives the previous day's bill lines (read only if needed)."""
    differences = []
    found = records_on_bill(provider, lines)
    seen = set()
    for line in lines:
        key = (line.subject, line.reference)
        seen.add(key)
        record = found.get(key)
        if record is None:
            differences.append(_difference(Difference.Kind.MISSING_HERE, line.subject, line.reference, None, line))
            continue
        if record.amount != line.amount:
            differences.append(_difference(Difference.Kind.AMOUNT, line.subject, line.reference, record, line))
            continue
        done_here = record.status in DONE_HERE[line.subject]
        done_there = line.state in DONE_THERE[line.subject]
        if done_here == done_there:
            continue
        difference = _difference(Difference.Kind.STATUS, line.subject, line.reference, record, line)
        if done_there:
            difference.repair, repaired = _repair(record)
            if repaired:
                difference.resolved_at, difference.resolution = timezone.now(), "repaired by a query"
        differences.append(difference)
    ours = our_records(provider, day)
    start, _end = bill_day_window(day)
    earlier = None
    for key, record in ours.items():
        if key in seen:
            continue
        if record.subject == "payment" and record.at and record.at < start + EDGE and lookback is not None:
            if earlier is None:
                earlier = {(line.subject, line.reference) for line in lookback()}
            if key in earlier:
                continue
        differences.append(_difference(Difference.Kind.MISSING_THERE, record.subject, record.reference, record, None))
    return differences, len(set(ours) | set(found))


def reconciliation_run(*, provider: str, bill_date: date) -> Run:
    """Compare `provider`'s bills of `bill_date` with our records and record the differences (replacing the open
    ones of an earlier run of the same day; resolved ones stay). The bills are read and the repairs asked outside
    any transaction. A bill that cannot be had (not made yet, unreachable, not matching its hash) makes a failed run,
    which the daily task runs again."""
    if provider not in RAILS:
        raise ValueError(f"no reconciliation for {provider!r}")
    started = timezone.now()
    try:
        lines = bill_lines(provider, bill_date)
        differences, checked = compare(
            provider, bill_date, lines, lookback=lambda: bill_lines(provider, bill_date - timedelta(days=1))
        )
    except ProviderError as error:
        logger.warning("reconciliation of %s %s could not run: %s", provider, bill_date, error)
        return _run_save(provider, bill_date, started, status=Run.Status.FAILED, error=str(error)[:2000])
    with transaction.atomic():
        run = _run_save(
            provider, bill_date, started, status=Run.Status.MATCHED, lines_on_bill=len(lines), records_checked=checked
        )
        run.differences.filter(resolved_at__isnull=True).delete()
        kept = set(run.differences.values_list("subject", "reference", "kind"))
        new = [d for d in differences if (d.subject, d.reference, d.kind) not in kept]
        for difference in new:
            difference.run = run
        Difference.objects.bulk_create(new, batch_size=CHUNK)
        if run.differences.filter(resolved_at__isnull=True).exists():
            run.status = Run.Status.DIFFERENCES
            run.save(update_fields=["status"])
        _resolve_found_later(provider, bill_date, lines)
    return run


def _run_save(provider: str, bill_date: date, started: datetime, **fields) -> Run:
    run, _created = Run.objects.update_or_create(
        provider=provider,
        bill_date=bill_date,
        defaults={"started_at": started, "finished_at": timezone.now(), "error": "", **fields},
    )
    return run


def _resolve_found_later(provider: str, bill_date: date, lines: list[BillLine]) -> None:
    """Differences "ours, not on the bill" of the days before that this bill has, with the same amount: a refund
    that succeeded just after midnight, a transfer confirmed late. Resolved, saying where they were found."""
    on_bill = {(line.subject, line.reference): line.amount for line in lines}
    open_before = Difference.objects.filter(
        run__provider=provider,
        run__bill_date__gte=bill_date - timedelta(days=RESOLVE_BACK_DAYS),
        run__bill_date__lt=bill_date,
        kind=Difference.Kind.MISSING_THERE,
        resolved_at__isnull=True,
    )
    touched = set()
    for difference in open_before:
        if on_bill.get((difference.subject, difference.reference)) == difference.our_amount:
            difference.resolved_at = timezone.now()
            difference.resolution = f"on the bill of {bill_date}"
            difference.save(update_fields=["resolved_at", "resolution"])
            touched.add(difference.run_id)
    for run in Run.objects.filter(pk__in=touched, status=Run.Status.DIFFERENCES):
        if not run.differences.filter(resolved_at__isnull=True).exists():
            Run.objects.filter(pk=run.pk).update(status=Run.Status.MATCHED)


def reconciliation_runs_due(*, today: date | None = None) -> list[tuple[str, date]]:
    """What the daily task runs: yesterday for every enabled provider, and the failed runs of the last days."""
    day = today - timedelta(days=1) if today else yesterday()
    due = [(provider, day) for provider in reconciliation_providers()]
    failed = Run.objects.filter(
        status=Run.Status.FAILED, bill_date__gte=day - timedelta(days=RETRY_DAYS), bill_date__lt=day
    ).order_by("bill_date", "provider")
    due += [(run.provider, run.bill_date) for run in failed if run.provider in reconciliation_providers()]
    return due


def reconciliation_resolve(*, difference: Difference, note: str, actor_label: str = "staff") -> bool:
    """Staff close a difference they have looked into, saying what they did. False if it was resolved already."""
    note = (note or "").strip()
    if not note:
        raise ValueError("a resolution needs a note")
    return bool(
        Difference.objects.filter(pk=difference.pk, resolved_at__isnull=True).update(
            resolved_at=timezone.now(), resolution=f"{actor_label}: {note}"[:2000]
        )
    )
