"""Reads of a member's money: the one balance read model, the statement, withdrawals.

Placement (issue #19): the balance needs the ledger (commissions) and the withdrawals (payouts). Payouts sits above
commissions, so the balance lives here and is built from the ledger's own summary,
`commissions.selectors.member_ledger_totals`: every import goes down the stack, and commissions never reads the
withdrawals table behind payouts' back.
"""

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from django.conf import settings
from django.db.models import Q, Sum
from django.utils import timezone
from django.utils.translation import gettext as _

from commissions.models import CommissionEntry as Entry
from commissions.selectors import member_ledger_totals, released_entries
from core.money import ZERO, money_sum
from payouts.models import PayoutAccount, Transfer, Withdrawal

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
    """A member's money: the one read model every page, the API, the admin and the withdrawal check show.

    Derived from the commission ledger (`commissions.selectors.member_ledger_totals`) and the member's
    withdrawals, never stored. Each figure has one label, the same on every page (docs/payouts.md):

    - `pending` ("Pending (on hold)"): commission not released yet, less the reversals of refunds before release.
    - `withdrawable` ("Available to withdraw"): `released − in_flight − paid_out`: what a withdrawal may take now.
      Negative after a clawback of money already paid out; future commission nets it off.
    - `in_flight` ("Being withdrawn"): withdrawals requested, approved or processing.
    - `paid_out` ("Paid out", context "balance"): withdrawals the payout provider paid.
    - `clawed_back` ("Clawed back"): commission taken back by refunds after its release, as a positive amount;
      already subtracted in `released` (so in `withdrawable`), shown so a member sees why.
    - `released`: all commission released so far (available or paid entries), clawbacks included.
    - `tax_withheld`: income tax withheld at payout (SPEC §10). Always 0.00 until the tax rules land; it will be
      part of `paid_out` (the member receives `paid_out − tax_withheld`), so it never changes `withdrawable`.
    """

    pending: Decimal
    released: Decimal
    in_flight: Decimal
    paid_out: Decimal
    clawed_back: Decimal
    tax_withheld: Decimal = ZERO

    @property
    def withdrawable(self) -> Decimal:
        return self.released - self.in_flight - self.paid_out


def member_balance(member) -> Balance:
    """The member's balance (`member` or its id): two aggregate queries, whatever the history."""
    member_id = getattr(member, "pk", member)
    ledger = member_ledger_totals(member_id)
    withdrawals = Withdrawal.objects.filter(member_id=member_id).aggregate(
        in_flight=Sum("amount", filter=Q(status__in=OPEN)),
        paid_out=Sum("amount", filter=Q(status=Withdrawal.Status.PAID)),
    )
    return Balance(
        pending=ledger.pending,
        released=ledger.released,
        in_flight=money_sum(withdrawals["in_flight"]),
        paid_out=money_sum(withdrawals["paid_out"]),
        clawed_back=ledger.clawed_back,
    )


@dataclass(frozen=True)
class StatementLine:
    at: datetime
    description: str
    amount: Decimal
    balance: Decimal


# At the same moment, money in comes before money out, so a withdrawal follows the credits it was drawn from.
CREDIT, DEBIT = 0, 1
RETURNED = (Withdrawal.Status.FAILED, Withdrawal.Status.REJECTED, Withdrawal.Status.CANCELLED)


def member_statement(member) -> list[StatementLine]:
    """Every credit and debit of the withdrawable balance, oldest first, with the running balance; two queries.

    Each line is dated when the money moved: a released entry when it was released (commission, and released
    reversals, adjustments and clawbacks, which are debits), a withdrawal when it was requested (its money leaves
    the balance then), and a failed, rejected or cancelled withdrawal's return when that happened. Release times
    are stamped with the real clock, so a withdrawal always comes after the credits it was drawn from and the
    running balance is negative only after a clawback. Ends at `member_balance(member).withdrawable`.
    """
    member_id = getattr(member, "pk", member)
    labels = {
        Entry.Kind.CLAWBACK: _("Clawback"),
        Entry.Kind.REVERSAL: _("Reversal"),
        Entry.Kind.ADJUSTMENT: _("Adjustment"),
    }
    moves = []
    for entry in released_entries([member_id]).select_related("order", "external_line__network"):
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
        moves.append((entry.moved_at, CREDIT if entry.amount >= 0 else DEBIT, description, entry.amount))
    for withdrawal in Withdrawal.objects.filter(member_id=member_id).order_by("requested_at", "pk"):
        moves.append(
            (withdrawal.requested_at, DEBIT, _("Withdrawal %(id)s") % {"id": withdrawal.pk}, -withdrawal.amount)
        )
        if withdrawal.status in RETURNED:
            back_at = withdrawal.failed_at or withdrawal.decided_at or withdrawal.requested_at
            description = _("Withdrawal %(id)s %(status)s: returned") % {
                "id": withdrawal.pk,
                "status": withdrawal.get_status_display().lower(),
            }
            moves.append((back_at, CREDIT, description, withdrawal.amount))
    moves.sort(key=lambda move: (move[0], move[1]))  # stable: same time and side keep their order
    running = ZERO
    lines = []
    for at, _side, description, amount in moves:
        running += amount
        lines.append(StatementLine(at=at, description=description, amount=amount, balance=running))
    return lines


def member_withdrawal(member, withdrawal_id: int) -> Withdrawal | None:
    return Withdrawal.objects.filter(member=member, pk=withdrawal_id).first()


def member_withdrawals(member):
    """The member's withdrawals, newest first, each with its transfer at a payout rail (if any) in the same query."""
    return Withdrawal.objects.filter(member=member).select_related("transfer").order_by("-requested_at", "-pk")


def transfer_confirmation(withdrawal: Withdrawal, now: datetime | None = None) -> dict[str, str] | None:
    """What the member's WeChat needs to confirm receipt of a WeChat Pay transfer waiting for them (the arguments of
    WeixinJSBridge.invoke("requestMerchantTransfer", …): mchId, appId, package), or None if nothing waits."""
    transfer = getattr(withdrawal, "transfer", None) if withdrawal.status == Withdrawal.Status.PROCESSING else None
    if transfer is None or transfer.rail != Transfer.Rail.WECHAT or transfer.state != "WAIT_USER_CONFIRM":
        return None
    if not transfer.package_info or (transfer.confirm_by and transfer.confirm_by <= (now or timezone.now())):
        return None
    return {"mchId": settings.WECHATPAY_MCHID, "appId": settings.WECHATPAY_APPID, "package": transfer.package_info}


def member_payout_account(member) -> PayoutAccount | None:
    return PayoutAccount.objects.filter(member=member).first()
