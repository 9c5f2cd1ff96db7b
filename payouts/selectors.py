from dataclasses import dataclass
from decimal import Decimal

from django.db.models import Q, Sum
from django.utils.translation import gettext as _

from config.money import ROUND_HALF_UP, ZERO, quantize_money
from payouts.models import Withdrawal

# Withdrawals whose money has left (or is leaving) the balance.
OUTGOING = (
    Withdrawal.Status.REQUESTED,
    Withdrawal.Status.APPROVED,
    Withdrawal.Status.PROCESSING,
    Withdrawal.Status.PAID,
)
OPEN = (Withdrawal.Status.REQUESTED, Withdrawal.Status.APPROVED, Withdrawal.Status.PROCESSING)


@dataclass(frozen=True)
class Balance:
    released: Decimal  # commission made available (or already paid out), clawbacks included
    pending: Decimal  # commission still on hold
    in_flight: Decimal  # withdrawals requested, approved or processing
    paid_out: Decimal  # withdrawals paid
    clawed_back: Decimal  # clawbacks (negative)

    @property
    def available(self) -> Decimal:
        """What can be withdrawn now; negative after a clawback, netted against future commission."""
        return self.released - self.in_flight - self.paid_out


def member_balance(member) -> Balance:
    """The balance, derived from the ledger and the withdrawals (two aggregate queries). Never stored."""
    from commissions.models import CommissionEntry as Entry

    member_id = getattr(member, "pk", member)
    entries = Entry.objects.filter(beneficiary_id=member_id).aggregate(
        released=Sum("amount", filter=Q(status__in=[Entry.Status.AVAILABLE, Entry.Status.PAID])),
        pending=Sum("amount", filter=Q(status=Entry.Status.PENDING)),
        clawed_back=Sum("amount", filter=Q(kind=Entry.Kind.CLAWBACK)),
    )
    withdrawals = Withdrawal.objects.filter(member_id=member_id).aggregate(
        in_flight=Sum("amount", filter=Q(status__in=OPEN)),
        paid_out=Sum("amount", filter=Q(status=Withdrawal.Status.PAID)),
    )

    def cents(value) -> Decimal:  # SQLite sums decimals without their scale
        return quantize_money(value or ZERO, ROUND_HALF_UP)

    return Balance(
        released=cents(entries["released"]),
        pending=cents(entries["pending"]),
        in_flight=cents(withdrawals["in_flight"]),
        paid_out=cents(withdrawals["paid_out"]),
        clawed_back=cents(entries["clawed_back"]),
    )


@dataclass(frozen=True)
class StatementLine:
    at: object
    description: str
    amount: Decimal
    balance: Decimal


def member_statement(member) -> list[StatementLine]:
    """Every credit and debit of the withdrawable balance, oldest first, with the running balance.

    Ends at member_balance(member).available.
    """
    from commissions.models import CommissionEntry as Entry

    moves = []
    released = (
        Entry.objects.filter(beneficiary=member, status__in=[Entry.Status.AVAILABLE, Entry.Status.PAID])
        .select_related("order", "external_line__network")
        .order_by("released_at", "pk")
    )
    labels = {
        Entry.Kind.CLAWBACK: _("Clawback"),
        Entry.Kind.REVERSAL: _("Reversal"),
        Entry.Kind.ADJUSTMENT: _("Adjustment"),
    }
    for entry in released:
        label = labels.get(entry.kind, _("Commission"))
        if entry.external_line_id is not None:  # a sale on an external affiliate network
            line = entry.external_line
            description = _("%(kind)s, %(network)s order %(number)s, level %(level)s") % {
                "kind": label,
                "network": line.network.name,
                "number": line.external_order_id,
                "level": entry.level,
            }
        else:
            description = _("%(kind)s, order %(number)s, level %(level)s") % {
                "kind": label,
                "number": entry.order.number,
                "level": entry.level,
            }
        moves.append((entry.released_at or entry.created_at, description, entry.amount))
    for withdrawal in Withdrawal.objects.filter(member=member).order_by("requested_at", "pk"):
        moves.append((withdrawal.requested_at, _("Withdrawal %(id)s") % {"id": withdrawal.pk}, -withdrawal.amount))
        if withdrawal.status in (Withdrawal.Status.FAILED, Withdrawal.Status.REJECTED, Withdrawal.Status.CANCELLED):
            back_at = withdrawal.failed_at or withdrawal.decided_at or withdrawal.requested_at
            moves.append(
                (
                    back_at,
                    _("Withdrawal %(id)s %(status)s: returned")
                    % {"id": withdrawal.pk, "status": withdrawal.get_status_display().lower()},
                    withdrawal.amount,
                )
            )
    moves.sort(key=lambda move: move[0])
    running = ZERO
    lines = []
    for at, description, amount in moves:
        running += amount
        lines.append(StatementLine(at=at, description=description, amount=amount, balance=running))
    return lines


def member_withdrawal(member, withdrawal_id: int) -> Withdrawal | None:
    return Withdrawal.objects.filter(member=member, pk=withdrawal_id).first()
