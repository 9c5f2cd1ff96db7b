"""The ledger checker: invariants of the money and the tree, computed from the database (issue #11).

Each check reads only (aggregates in SQL where it can) and returns its violations as sentences a person can act
on. `python manage.py check_ledger` prints them and exits non-zero if there are any; a nightly task logs them as
errors, which mails ADMINS in production.
"""

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal

from django.db import connection, transaction
from django.db.models import Count, Exists, F, Max, Min, OuterRef, Sum
from django.utils import timezone

from accounts.models import ApprovalRequest
from commissions.calculations import CAP_MAX_PAYOUT_RATIO, line_pool
from commissions.models import CommissionEntry as Entry
from commissions.models import OrderSplit, RefundApplied, SplitQueue
from commissions.services import external_line_target
from core.money import ZERO, money_sum
from networks.models import ExternalOrder
from payouts.models import BalanceAdjustment, SandboxTransfer, TaxWithholding, Withdrawal, WithdrawalEvent
from referrals.selectors import tree_check
from shops.models import Order, OrderLine, Product, Refund
from staff.models import ReconciliationDifference, ReconciliationRun

LISTED_MAX = 20  # violations printed per check; the count says how many there are
UNSPLIT_GRACE = timedelta(minutes=15)  # a paid order (an external line marked for the ledger) may wait this long
MEMBER_KINDS = (Entry.Kind.COMMISSION, Entry.Kind.REVERSAL, Entry.Kind.CLAWBACK)


@dataclass
class CheckResult:
    name: str
    checked: int = 0
    violations: list[str] = field(default_factory=list)
    count: int = 0  # all violations; `violations` lists at most LISTED_MAX

    def add(self, message: str) -> None:
        self.count += 1
        if len(self.violations) < LISTED_MAX:
            self.violations.append(message)

    @property
    def passed(self) -> bool:
        return self.count == 0


def check_split_lines_reconcile() -> CheckResult:
    """Every split line: its pool is net amount × rate (half-up, less a coupon's discount: `line_pool`), and member
    shares + platform remainder = pool."""
    result = CheckResult("split lines reconcile")
    rows = (
        Entry.objects.filter(
            refund__isnull=True, order_line__isnull=False, kind__in=[Entry.Kind.COMMISSION, Entry.Kind.PLATFORM]
        )
        .values("order_line_id", "order_line__net_amount", "order_line__commission_rate", "order_line__discount")
        .annotate(total=Sum("amount"), base_low=Min("base"), base_high=Max("base"), platform=Count("pk"))
        .order_by("order_line_id")
    )
    for row in rows.iterator(chunk_size=5000):
        result.checked += 1
        line_id, total = row["order_line_id"], money_sum(row["total"])
        base = money_sum(row["base_high"])
        pool = line_pool(row["order_line__net_amount"], row["order_line__commission_rate"], row["order_line__discount"])
        if money_sum(row["base_low"]) != base:
            result.add(f"order line {line_id}: its entries disagree on the pool ({row['base_low']} and {base})")
        elif base != pool:
            result.add(f"order line {line_id}: pool recorded {base}, but net × rate rounded is {pool}")
        elif total != base:
            result.add(f"order line {line_id}: shares + platform remainder = {total}, pool = {base}")
    split_without_entries = OrderLine.objects.filter(
        Exists(OrderSplit.objects.filter(order_id=OuterRef("order_id")))
    ).exclude(Exists(Entry.objects.filter(order_line_id=OuterRef("pk"), refund__isnull=True)))
    for line_id in split_without_entries.values_list("pk", flat=True)[: LISTED_MAX + 1]:
        result.add(f"order line {line_id}: its order is marked split but the line has no ledger rows")
    return result


def check_no_duplicate_entries() -> CheckResult:
    """At most one entry per (line, level, kind, refund): the split's and each refund's exactly-once keys."""
    result = CheckResult("no duplicate entries")
    result.checked = Entry.objects.count()
    duplicates = (
        Entry.objects.filter(order_line__isnull=False)
        .values("order_line_id", "level", "kind", "refund_id")
        .annotate(n=Count("pk"))
        .filter(n__gt=1)
        .order_by("order_line_id")
    )
    for row in duplicates[: LISTED_MAX + 1]:
        result.add(
            f"order line {row['order_line_id']}: {row['n']} {row['kind']} entries at level {row['level']}"
            + (f" for refund {row['refund_id']}" if row["refund_id"] else "")
        )
    external = (
        Entry.objects.filter(external_line__isnull=False)
        .values("external_line_id", "revision", "level", "kind")
        .annotate(n=Count("pk"))
        .filter(n__gt=1)
        .order_by("external_line_id")
    )
    for row in external[: LISTED_MAX + 1]:
        result.add(
            f"external order {row['external_line_id']}: {row['n']} {row['kind']} entries at level {row['level']} "
            f"in revision {row['revision']}"
        )
    return result


def _differs(held: dict[int, Decimal], target: dict[int, Decimal]) -> bool:
    return any(held.get(level, ZERO) != target.get(level, ZERO) for level in set(held) | set(target))


def check_external_lines_reconcile() -> CheckResult:
    """Every external line in the ledger: at each level its entries add up to what the split of the network's
    latest commission gives (nothing once invalid), and every matched line is in the ledger. A line marked for the
    ledger moments ago (the networks' outbox: commissions writes it after the commit) is waiting, not wrong; one
    marked for longer than UNSPLIT_GRACE was lost."""
    result = CheckResult("external lines reconcile")
    held: dict[int, dict[int, Decimal]] = {}
    for line_id, level, total in (
        Entry.objects.filter(external_line__isnull=False)
        .values_list("external_line_id", "level")
        .annotate(total=Sum("amount"))
        .order_by("external_line_id")
    ):
        held.setdefault(line_id, {})[level] = money_sum(total)
    lines = ExternalOrder.objects.filter(member__isnull=False).select_related("split__plan", "split__policy")
    waiting_since = timezone.now() - UNSPLIT_GRACE
    for line in lines.order_by("pk").iterator(chunk_size=2000):
        result.checked += 1
        levels = held.pop(line.pk, None)
        label = f"external order {line}"
        if line.ledger_marked_at is not None:
            if line.ledger_marked_at < waiting_since:
                result.add(f"{label}: marked for the ledger more than {UNSPLIT_GRACE} ago, not written yet")
            continue
        record = getattr(line, "split", None)  # the ledger's record of the line (commissions.ExternalSplit)
        if levels is None:
            result.add(f"{label}: attributed to member {line.member_id}, yet not in the ledger")
            continue
        if record is None:
            result.add(f"{label}: ledger entries, but no record of its split")
            continue
        if record.split_commission != line.commission or record.split_status != line.status:
            result.add(f"{label}: the network's latest report is not in the ledger")
            continue
        split = external_line_target(record)
        target = {level: money_sum(share.amount) for level, share in split.items()}
        if _differs(levels, target) and split[0].capped_by == CAP_MAX_PAYOUT_RATIO:
            # Split, and last changed, before issue #19 scaled a binding payout cap to the exact cap: those lines
            # hold what the rule then gave (a cent less here and there), which was right when written.
            earlier = external_line_target(record, payout_cap_in_cents=True)
            earlier = {level: money_sum(share.amount) for level, share in earlier.items()}
            if not _differs(levels, earlier):
                continue
        for level in sorted(set(target) | set(levels)):
            if levels.get(level, ZERO) != target.get(level, ZERO):
                result.add(
                    f"{label}: level {level} holds {levels.get(level, ZERO)}, the split of "
                    f"{line.pool} gives {target.get(level, ZERO)}"
                )
    for line_id in list(held)[:LISTED_MAX]:
        result.add(f"external order {line_id}: ledger entries for a line attributed to nobody")
    return result


def check_paid_orders_split() -> CheckResult:
    """Every paid order is split, or queued for it (the outbox), or paid only moments ago."""
    result = CheckResult("paid orders are split")
    paid = Order.objects.filter(paid_at__isnull=False)
    result.checked = paid.count()
    lost = (
        paid.filter(paid_at__lt=timezone.now() - UNSPLIT_GRACE)
        .exclude(Exists(OrderSplit.objects.filter(order_id=OuterRef("pk"))))
        .exclude(Exists(SplitQueue.objects.filter(order_id=OuterRef("pk"))))
    )
    for number in lost.values_list("number", flat=True)[: LISTED_MAX + 1]:
        result.add(f"order {number}: paid more than {UNSPLIT_GRACE} ago, not split and not queued")
    return result


def check_refunds_reversed() -> CheckResult:
    """Refunds take their commission back: every refund of a split order is applied, no cancelled order carries
    commission, and a line refunded in full nets to zero for every member."""
    result = CheckResult("refunds reverse commission")
    refunds = Refund.objects.filter(Exists(OrderSplit.objects.filter(order_id=OuterRef("order_id"))))
    result.checked = refunds.count()
    unapplied = refunds.exclude(Exists(RefundApplied.objects.filter(refund_id=OuterRef("pk"))))
    for refund_id, number in unapplied.values_list("pk", "order__number")[: LISTED_MAX + 1]:
        result.add(f"refund {refund_id} of order {number}: its reversals and clawbacks were never written")
    cancelled = Order.objects.filter(status=Order.Status.CANCELLED).filter(
        Exists(Entry.objects.filter(order_id=OuterRef("pk"), level__gte=1).exclude(amount=ZERO))
    )
    for number in cancelled.values_list("number", flat=True)[: LISTED_MAX + 1]:
        result.add(f"order {number}: cancelled, yet it carries member commission")
    fully_refunded = (
        Entry.objects.filter(
            level__gte=1, kind__in=MEMBER_KINDS, order_line__refunded_quantity=F("order_line__quantity")
        )
        .values("order_line_id", "beneficiary_id")
        .annotate(net=Sum("amount"))
        .exclude(net=ZERO)
        .order_by("order_line_id")
    )
    for row in fully_refunded[: LISTED_MAX + 1]:
        if money_sum(row["net"]) != ZERO:
            result.add(
                f"order line {row['order_line_id']}: refunded in full, but member {row['beneficiary_id']} keeps "
                f"{money_sum(row['net'])}"
            )
    return result


def check_payouts() -> CheckResult:
    """No payout paid twice, none beyond what was released (staff adjustments counted: a credit may be withdrawn, a
    debit may not be), and the "paid" labels never beyond the payouts and the debits (a debit takes commission away
    as a payout does: payouts.services labels what they cover together)."""
    result = CheckResult("payouts")
    result.checked = Withdrawal.objects.count()
    twice = (
        WithdrawalEvent.objects.filter(to_status=Withdrawal.Status.PAID)
        .values("withdrawal_id")
        .annotate(n=Count("pk"))
        .filter(n__gt=1)
    )
    for row in twice[: LISTED_MAX + 1]:
        result.add(f"withdrawal {row['withdrawal_id']}: marked paid {row['n']} times")
    paid_without_event = Withdrawal.objects.filter(status=Withdrawal.Status.PAID).exclude(
        Exists(WithdrawalEvent.objects.filter(withdrawal_id=OuterRef("pk"), to_status=Withdrawal.Status.PAID))
    )
    for withdrawal_id in paid_without_event.values_list("pk", flat=True)[: LISTED_MAX + 1]:
        result.add(f"withdrawal {withdrawal_id}: paid with no event recording it")
    sandbox_paid = SandboxTransfer.objects.filter(outcome=SandboxTransfer.Outcome.PAID)
    unknown = sandbox_paid.exclude(
        Exists(Withdrawal.objects.filter(idempotency_key=OuterRef("idempotency_key"), status=Withdrawal.Status.PAID))
    )
    for key in unknown.values_list("idempotency_key", flat=True)[: LISTED_MAX + 1]:
        result.add(f"sandbox transfer {key}: money sent for a withdrawal that is not paid")

    released = dict(
        Entry.objects.filter(kind=Entry.Kind.COMMISSION, status__in=[Entry.Status.AVAILABLE, Entry.Status.PAID])
        .values_list("beneficiary_id")
        .annotate(total=Sum("amount"))
        .order_by()
    )
    labelled = dict(
        Entry.objects.filter(status=Entry.Status.PAID)
        .values_list("beneficiary_id")
        .annotate(total=Sum("amount"))
        .order_by()
    )
    outgoing = Withdrawal.objects.exclude(status__in=[Withdrawal.Status.REJECTED, Withdrawal.Status.CANCELLED])
    withdrawn = dict(
        outgoing.exclude(status=Withdrawal.Status.FAILED).values_list("member_id").annotate(t=Sum("amount")).order_by()
    )
    paid_out = dict(
        Withdrawal.objects.filter(status=Withdrawal.Status.PAID)
        .values_list("member_id")
        .annotate(t=Sum("amount"))
        .order_by()
    )
    adjusted = dict(BalanceAdjustment.objects.values_list("member_id").annotate(t=Sum("amount")).order_by())
    debited = dict(
        BalanceAdjustment.objects.filter(amount__lt=0).values_list("member_id").annotate(t=Sum("amount")).order_by()
    )
    for member_id, amount in sorted(withdrawn.items()):
        may_take = money_sum(released.get(member_id)) + money_sum(adjusted.get(member_id))
        if money_sum(amount) > may_take:
            result.add(
                f"member {member_id}: {money_sum(amount)} withdrawn or on its way, more than the {may_take} of "
                f"commission ever released to them and staff adjustments"
            )
    for member_id, amount in sorted(labelled.items()):
        covered = money_sum(paid_out.get(member_id)) - money_sum(debited.get(member_id))
        if money_sum(amount) > covered:
            result.add(
                f"member {member_id}: {money_sum(amount)} of entries labelled paid, but only "
                f"{money_sum(paid_out.get(member_id))} paid out"
                + (f" and {-money_sum(debited[member_id])} debited" if member_id in debited else "")
            )
    return result


def check_adjustments() -> CheckResult:
    """Staff adjustments of balances (payouts/adjustments.py): one made with a second approval was approved by
    another person than the one who entered it, through an approved request of the same amount that they asked."""
    result = CheckResult("staff balance adjustments")
    adjustments = BalanceAdjustment.objects.all()
    result.checked = adjustments.count()
    same_person = adjustments.filter(approved_by_id=F("requested_by_id"))
    for pk in same_person.values_list("pk", flat=True)[: LISTED_MAX + 1]:
        result.add(f"balance adjustment {pk}: entered and approved by the same person")
    approved = adjustments.filter(approval__isnull=False)
    wrong = (
        approved.exclude(approval__status=ApprovalRequest.Status.APPROVED)
        | approved.exclude(approval__amount=F("amount"))
        | approved.exclude(approval__decided_by_id=F("approved_by_id"))
        | approved.exclude(approval__requested_by_id=F("requested_by_id"))
    )
    for pk in wrong.values_list("pk", flat=True).distinct()[: LISTED_MAX + 1]:
        result.add(f"balance adjustment {pk}: does not match its approval request (status, amount or people)")
    unapproved = adjustments.filter(approval__isnull=True, approved_by__isnull=False)
    for pk in unapproved.values_list("pk", flat=True)[: LISTED_MAX + 1]:
        result.add(f"balance adjustment {pk}: a second approver, but no approval request")
    return result


def check_tax_withheld() -> CheckResult:
    """The tax withheld at payout (docs/tax.md): every entry adds up (gross = tax + net, tax never negative), its
    gross is its withdrawal's amount, it is withheld exactly while its withdrawal is sent or paid (void once that
    failed), and what a payout rail was sent (the sandbox's record) is the net."""
    result = CheckResult("tax withheld at payout")
    entries = TaxWithholding.objects.all()
    result.checked = entries.count()
    wrong_sum = entries.exclude(gross=F("tax") + F("net")) | entries.filter(tax__lt=0) | entries.filter(net__lt=0)
    for pk, withdrawal_id in wrong_sum.values_list("pk", "withdrawal_id")[: LISTED_MAX + 1]:
        result.add(f"withdrawal {withdrawal_id}: its tax entry {pk} does not add up (gross ≠ tax + net)")
    for withdrawal_id, gross, amount in (
        entries.exclude(gross=F("withdrawal__amount")).values_list("withdrawal_id", "gross", "withdrawal__amount")
    )[: LISTED_MAX + 1]:
        result.add(f"withdrawal {withdrawal_id}: tax computed on {gross}, but the withdrawal is {amount}")
    Status = Withdrawal.Status
    withheld_not_sent = entries.filter(status=TaxWithholding.Status.WITHHELD).exclude(
        withdrawal__status__in=[Status.PROCESSING, Status.PAID]
    )
    for withdrawal_id, status in withheld_not_sent.values_list("withdrawal_id", "withdrawal__status")[: LISTED_MAX + 1]:
        result.add(f"withdrawal {withdrawal_id}: tax still counted as withheld, but the withdrawal is {status}")
    void_but_sent = entries.filter(status=TaxWithholding.Status.VOID).exclude(withdrawal__status=Status.FAILED)
    for withdrawal_id, status in void_but_sent.values_list("withdrawal_id", "withdrawal__status")[: LISTED_MAX + 1]:
        result.add(f"withdrawal {withdrawal_id}: its tax is void, but the withdrawal is {status}")
    sent = SandboxTransfer.objects.filter(
        Exists(
            entries.filter(
                withdrawal__idempotency_key=OuterRef("idempotency_key"), status=TaxWithholding.Status.WITHHELD
            )
        )
    ).exclude(Exists(entries.filter(withdrawal__idempotency_key=OuterRef("idempotency_key"), net=OuterRef("amount"))))
    for key, amount in sent.values_list("idempotency_key", "amount")[: LISTED_MAX + 1]:
        result.add(f"sandbox transfer {key}: {amount} sent, not the net after the tax withheld")
    return result


def check_stock() -> CheckResult:
    result = CheckResult("stock never below zero")
    result.checked = Product.objects.count()
    for pk, title, stock in Product.objects.filter(stock__lt=0).values_list("pk", "title", "stock")[: LISTED_MAX + 1]:
        result.add(f"product {pk} ({title}): stock {stock}")
    return result


def check_tree() -> CheckResult:
    result = CheckResult("referral tree")
    report = tree_check()
    result.checked = report.checked
    for line in report.describe(limit=LISTED_MAX):
        result.add(line)
    result.count = len(report.wrong) + len(report.unreachable)
    return result


def check_reconciliation() -> CheckResult:
    """The providers' bills agree with our records: no open reconciliation difference, no run that could not run
    (staff.reconciliation; its page lists them with their details)."""
    result = CheckResult("reconciliation with the providers' bills")
    result.checked = ReconciliationRun.objects.count()
    for run in ReconciliationRun.objects.filter(status=ReconciliationRun.Status.FAILED).order_by("bill_date")[
        : LISTED_MAX + 1
    ]:
        result.add(f"reconciliation {run}: could not run ({run.error[:120]})")
    open_differences = (
        ReconciliationDifference.objects.filter(resolved_at__isnull=True).select_related("run").order_by("pk")
    )
    for difference in open_differences[: LISTED_MAX + 1]:
        amounts = f" (ours {difference.our_amount}, on the bill {difference.their_amount})"
        if difference.kind == ReconciliationDifference.Kind.STATUS:
            amounts = f" (ours {difference.our_status}, on the bill {difference.their_status})"
        result.add(
            f"reconciliation {difference.run}: {difference.subject} {difference.reference}: "
            f"{ReconciliationDifference.Kind(difference.kind).label}{amounts}"
        )
    result.count = (
        ReconciliationRun.objects.filter(status=ReconciliationRun.Status.FAILED).count() + open_differences.count()
    )
    return result


CHECKS: tuple[Callable[[], CheckResult], ...] = (
    check_split_lines_reconcile,
    check_no_duplicate_entries,
    check_external_lines_reconcile,
    check_paid_orders_split,
    check_refunds_reversed,
    check_payouts,
    check_adjustments,
    check_tax_withheld,
    check_stock,
    check_tree,
    check_reconciliation,
)


def ledger_check() -> list[CheckResult]:
    """Run every check (read-only; safe at any time, also while traffic goes on).

    On PostgreSQL all checks read one snapshot (REPEATABLE READ), so a sync or a split committing between two of
    a check's queries is never reported as a half-written line."""
    if connection.vendor != "postgresql" or connection.in_atomic_block:
        return [check() for check in CHECKS]
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        return [check() for check in CHECKS]
