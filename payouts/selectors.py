"""Reads of a member's money: the one balance read model, the statement, withdrawals.

Placement (issue #19): the balance needs the ledger (commissions) and the withdrawals (payouts). Payouts sits above
commissions, so the balance lives here and is built from the ledger's own summary,
`commissions.selectors.member_ledger_totals`: every import goes down the stack, and commissions never reads the
withdrawals table behind payouts' back.
"""

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from django.conf import settings
from django.db.models import Exists, OuterRef, Prefetch, Q, Sum
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts.models import ApprovalRequest
from commissions.models import CommissionEntry as Entry
from commissions.selectors import member_ledger_totals, released_entries
from core.money import ZERO, money_sum
from payouts.models import (
    BalanceAdjustment,
    Invoice,
    InvoiceEvent,
    PayoutAccount,
    TaxWithholding,
    Transfer,
    Withdrawal,
    WithholdingRule,
)
from payouts.tax_calculations import BUSINESS_INVOICE, METHODS, PriorPayment, TaxHistory

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
    - `withdrawable` ("Available to withdraw"): `released + adjusted − in_flight − paid_out`: what a withdrawal may
      take now. Negative after a clawback of money already paid out; future commission nets it off.
    - `in_flight` ("Being withdrawn"): withdrawals requested, approved or processing.
    - `paid_out` ("Paid out", context "balance"): withdrawals the payout provider paid.
    - `clawed_back` ("Clawed back"): commission taken back by refunds after its release, as a positive amount;
      already subtracted in `released` (so in `withdrawable`), shown so a member sees why.
    - `released`: all commission released so far (available or paid entries), clawbacks included.
    - `tax_withheld`: income tax withheld from the paid withdrawals (docs/tax.md); part of `paid_out` (the member
      received `paid_out − tax_withheld`), so it never changes `withdrawable`.
    - `adjusted` ("Staff adjustments"): finance's credits less debits of the balance (`BalanceAdjustment`), signed;
      available at once.
    """

    pending: Decimal
    released: Decimal
    in_flight: Decimal
    paid_out: Decimal
    clawed_back: Decimal
    tax_withheld: Decimal = ZERO
    adjusted: Decimal = ZERO

    @property
    def withdrawable(self) -> Decimal:
        return self.released + self.adjusted - self.in_flight - self.paid_out


def member_balance(member) -> Balance:
    """The member's balance (`member` or its id): three aggregate queries, whatever the history."""
    member_id = getattr(member, "pk", member)
    ledger = member_ledger_totals(member_id)
    withdrawals = Withdrawal.objects.filter(member_id=member_id).aggregate(
        in_flight=Sum("amount", filter=Q(status__in=OPEN)),
        paid_out=Sum("amount", filter=Q(status=Withdrawal.Status.PAID)),
        tax_withheld=Sum(
            "withholding__tax",
            filter=Q(status=Withdrawal.Status.PAID, withholding__status=TaxWithholding.Status.WITHHELD),
        ),
    )
    return Balance(
        pending=ledger.pending,
        released=ledger.released,
        in_flight=money_sum(withdrawals["in_flight"]),
        paid_out=money_sum(withdrawals["paid_out"]),
        clawed_back=ledger.clawed_back,
        tax_withheld=money_sum(withdrawals["tax_withheld"]),
        adjusted=members_adjusted([member_id]).get(member_id, ZERO),
    )


def members_adjusted(member_ids) -> dict[int, Decimal]:
    """{member id: the net of their staff balance adjustments} (one grouped query; members with none are absent)."""
    rows = (
        BalanceAdjustment.objects.filter(member_id__in=list(member_ids))
        .order_by()
        .values_list("member_id")
        .annotate(total=Sum("amount"))
    )
    return {member_id: money_sum(total) for member_id, total in rows}


def adjustment_conflict(*, user, member_id: int, now: datetime | None = None) -> bool:
    """Whether `user` adjusted `member_id`'s balance in the last ADJUSTMENT_CONFLICT_DAYS (entered or approved an
    adjustment, or asked for one that waits for its second approval): such a user may not approve that member's
    withdrawals (four eyes, docs/compliance.md). Two small queries; False for no user (the system)."""
    if user is None or user.pk is None:
        return False
    since = (now or timezone.now()) - timedelta(days=settings.ADJUSTMENT_CONFLICT_DAYS)
    adjusted = BalanceAdjustment.objects.filter(member_id=member_id, created_at__gte=since).filter(
        Q(requested_by=user) | Q(approved_by=user)
    )
    asked = ApprovalRequest.objects.filter(
        action=BalanceAdjustment.APPROVAL_ACTION,
        target_type="referrals.member",
        target_id=str(member_id),
        status=ApprovalRequest.Status.PENDING,
        requested_by=user,
        requested_at__gte=since,
    )
    return adjusted.exists() or asked.exists()


def adjusted_alone(*, user, member_id: int, now: datetime | None = None) -> Decimal:
    """What `user` alone (no second approval) adjusted `member_id`'s balance by in the last ADJUSTMENT_CONFLICT_DAYS,
    credits and debits both counted as positive: many small adjustments add up towards FOUR_EYES_THRESHOLD."""
    since = (now or timezone.now()) - timedelta(days=settings.ADJUSTMENT_CONFLICT_DAYS)
    amounts = BalanceAdjustment.objects.filter(
        member_id=member_id, requested_by=user, approved_by__isnull=True, created_at__gte=since
    ).values_list("amount", flat=True)
    return sum((abs(amount) for amount in amounts), ZERO)


def member_adjustments(member):
    """The member's balance adjustments, newest first, with only what the member may read (the note for them, never
    the internal note or who entered it)."""
    return (
        BalanceAdjustment.objects.filter(member=member)
        .only("pk", "member_id", "amount", "member_note", "created_at")
        .order_by("-created_at", "-pk")
    )


@dataclass(frozen=True)
class StatementLine:
    at: datetime
    description: str
    amount: Decimal
    balance: Decimal
    # A withdrawal sent or paid: the income tax withheld from it and what reached the member (its amount is gross).
    tax: Decimal | None = None
    net: Decimal | None = None


# At the same moment, money in comes before money out, so a withdrawal follows the credits it was drawn from.
CREDIT, DEBIT = 0, 1
RETURNED = (Withdrawal.Status.FAILED, Withdrawal.Status.REJECTED, Withdrawal.Status.CANCELLED)


def member_statement(member) -> list[StatementLine]:
    """Every credit and debit of the withdrawable balance, oldest first, with the running balance; three queries.

    Each line is dated when the money moved: a released entry when it was released (commission, and released
    reversals, adjustments and clawbacks, which are debits), a staff balance adjustment when it was applied (with
    the note for the member), a withdrawal when it was requested (its money leaves
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
        moves.append((entry.moved_at, CREDIT if entry.amount >= 0 else DEBIT, description, entry.amount, None))
    for adjustment in member_adjustments(member_id).order_by("created_at", "pk"):
        description = _("Balance adjustment by staff: %(note)s") % {"note": adjustment.member_note}
        side = CREDIT if adjustment.amount > 0 else DEBIT
        moves.append((adjustment.created_at, side, description, adjustment.amount, None))
    withdrawals = Withdrawal.objects.filter(member_id=member_id).select_related("withholding__invoice")
    for withdrawal in withdrawals.order_by("requested_at", "pk"):
        description = _("Withdrawal %(id)s") % {"id": withdrawal.pk}
        paid_against = business_invoice_of(withdrawal)
        if paid_against is not None:
            description = _("Withdrawal %(id)s: no individual income tax withheld: paid against invoice %(number)s") % {
                "id": withdrawal.pk,
                "number": paid_against.display_number,
            }
        elif withdrawal.tax_withheld:
            description = _("Withdrawal %(id)s: gross %(gross)s, tax withheld %(tax)s, net paid %(net)s") % {
                "id": withdrawal.pk,
                "gross": withdrawal.amount,
                "tax": withdrawal.tax_withheld,
                "net": withdrawal.net_amount,
            }
        entry = withdrawal.withholding_or_none
        taxed = (entry.tax, entry.net) if entry and entry.status == entry.Status.WITHHELD else None
        moves.append((withdrawal.requested_at, DEBIT, description, -withdrawal.amount, taxed))
        if withdrawal.status in RETURNED:
            back_at = withdrawal.failed_at or withdrawal.decided_at or withdrawal.requested_at
            description = _("Withdrawal %(id)s %(status)s: returned") % {
                "id": withdrawal.pk,
                "status": withdrawal.get_status_display().lower(),
            }
            moves.append((back_at, CREDIT, description, withdrawal.amount, None))
    moves.sort(key=lambda move: (move[0], move[1]))  # stable: same time and side keep their order
    running = ZERO
    lines = []
    for at, _side, description, amount, taxed in moves:
        running += amount
        tax, net = taxed or (None, None)
        lines.append(StatementLine(at=at, description=description, amount=amount, balance=running, tax=tax, net=net))
    return lines


def member_withdrawal(member, withdrawal_id: int) -> Withdrawal | None:
    return Withdrawal.objects.filter(member=member, pk=withdrawal_id).first()


def member_withdrawals(member):
    """The member's withdrawals, newest first, each with its transfer at a payout rail (if any) in the same query,
    its tax entry (and the invoice it was paid against) and its invoices (one more query)."""
    return (
        Withdrawal.objects.filter(member=member)
        .select_related("transfer", "withholding__invoice")
        .prefetch_related(Prefetch("invoices", queryset=Invoice.objects.order_by("-pk")))
        .order_by("-requested_at", "-pk")
    )


# --- Business payees' invoices (docs/tax.md, "Business payees") ---------------------------------------------------


def business_invoice_of(withdrawal: Withdrawal) -> Invoice | None:
    """The invoice a business payee's withdrawal was paid against (its tax entry says business_invoice), or None."""
    entry = withdrawal.withholding_or_none
    if entry is None or entry.status != TaxWithholding.Status.WITHHELD or entry.method != BUSINESS_INVOICE:
        return None
    return entry.invoice


def invoice_missing() -> Q:
    """Withdrawals to a business payee without an accepted invoice: not to be approved or sent (先票后款)."""
    accepted = Invoice.objects.filter(withdrawal=OuterRef("pk"), status=Invoice.Status.ACCEPTED)
    return Q(payee_kind=Withdrawal.PayeeKind.BUSINESS) & ~Exists(accepted)


def accepted_invoice(withdrawal_id: int) -> Invoice | None:
    return Invoice.objects.filter(withdrawal_id=withdrawal_id, status=Invoice.Status.ACCEPTED).first()


def member_invoice(member, withdrawal_id: int, invoice_id: int) -> Invoice | None:
    """One of the member's own invoices (None for anyone else's: the page answers 404)."""
    return Invoice.objects.filter(member=member, withdrawal_id=withdrawal_id, pk=invoice_id).first()


def withdrawal_invoices(withdrawal: Withdrawal) -> list[Invoice]:
    """A withdrawal's invoices, newest first, each with its events (two queries)."""
    events = Prefetch("events", queryset=InvoiceEvent.objects.order_by("created_at", "pk"))
    return list(withdrawal.invoices.order_by("-pk").prefetch_related(events))


def invoice_buyer() -> dict[str, str]:
    """What a business payee's invoice must name as the buyer: the platform (settings)."""
    return {"name": settings.PLATFORM_INVOICE_TITLE, "tax_id": settings.PLATFORM_TAX_ID}


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


# --- Income tax withheld at payout (docs/tax.md) -----------------------------------------------------------------


def withholding_rule_in_force(at: datetime | None = None) -> tuple[WithholdingRule | None, str]:
    """The withholding rule for a payout at `at`: the activated rule with the latest `effective_from` not after it
    (the highest version on a tie), and its method; with none, (None, settings.TAX_WITHHOLDING_METHOD)."""
    at = at or timezone.now()
    rule = (
        WithholdingRule.objects.filter(is_activated=True, effective_from__lte=at)
        .order_by("-effective_from", "-version")
        .first()
    )
    if rule is not None:
        return rule, rule.method
    if settings.TAX_WITHHOLDING_METHOD not in METHODS:
        raise ValueError(f"TAX_WITHHOLDING_METHOD {settings.TAX_WITHHOLDING_METHOD!r} is not one of {sorted(METHODS)}")
    return None, settings.TAX_WITHHOLDING_METHOD


def members_tax_history(member_ids, year: int) -> dict[int, list[PriorPayment]]:
    """Each member's payments in `year` that tax was withheld from (voided ones, of failed payouts, left out), oldest
    first, for the withholding rules (one query; a member with none has no key). Payouts to the member's business
    (paid against an invoice) are not the person's income: left out too."""
    rows = (
        TaxWithholding.objects.filter(
            member_id__in=list(member_ids), paid_on__year=year, status=TaxWithholding.Status.WITHHELD
        )
        .exclude(method=BUSINESS_INVOICE)  # a business's payouts are not the person's 劳务报酬 (docs/tax.md)
        .order_by("paid_on", "pk")
        .values_list("member_id", "paid_on", "gross", "tax")
    )
    history: dict[int, list[PriorPayment]] = {}
    for member_id, on, gross, tax in rows:
        history.setdefault(member_id, []).append(PriorPayment(on=on, gross=gross, tax=tax))
    return history


def member_tax_history(member_id: int, year: int) -> TaxHistory:
    return TaxHistory(payments=tuple(members_tax_history([member_id], year).get(member_id, ())))


@dataclass(frozen=True)
class IncomeMonth:
    month: int
    payouts: int
    gross: Decimal
    tax: Decimal
    net: Decimal


@dataclass(frozen=True)
class IncomeStatement:
    """A member's income from the platform in a year, by month, for their own annual filing (综合所得汇算)."""

    year: int
    months: tuple[IncomeMonth, ...]
    payouts: tuple[TaxWithholding, ...]
    # Paid to the member's business against its invoices: the business's income, not the person's (no tax withheld);
    # listed apart, in no month's figures. Each entry's `invoice` is loaded.
    business_payouts: tuple[TaxWithholding, ...] = ()

    @property
    def gross(self) -> Decimal:
        return sum((m.gross for m in self.months), ZERO)

    @property
    def tax(self) -> Decimal:
        return sum((m.tax for m in self.months), ZERO)

    @property
    def net(self) -> Decimal:
        return sum((m.net for m in self.months), ZERO)


def member_income_statement(member, year: int) -> IncomeStatement:
    """The member's paid withdrawals in `year` with the tax withheld from each (by income date), by month; those
    paid to their business against an invoice apart (`business_payouts`)."""
    member_id = getattr(member, "pk", member)
    entries = list(
        TaxWithholding.objects.filter(
            member_id=member_id,
            paid_on__year=year,
            status=TaxWithholding.Status.WITHHELD,
            withdrawal__status=Withdrawal.Status.PAID,
        )
        .select_related("invoice")
        .order_by("paid_on", "pk")
    )
    rows = [row for row in entries if row.method != BUSINESS_INVOICE]
    business = tuple(row for row in entries if row.method == BUSINESS_INVOICE)
    months = []
    for month in range(1, 13):
        of_month = [row for row in rows if row.paid_on.month == month]
        if of_month:
            months.append(
                IncomeMonth(
                    month=month,
                    payouts=len(of_month),
                    gross=sum((row.gross for row in of_month), ZERO),
                    tax=sum((row.tax for row in of_month), ZERO),
                    net=sum((row.net for row in of_month), ZERO),
                )
            )
    return IncomeStatement(year=year, months=tuple(months), payouts=tuple(rows), business_payouts=business)


def member_income_years(member) -> list[int]:
    """The years the member was paid in (with a tax computation), newest first."""
    member_id = getattr(member, "pk", member)
    dates = TaxWithholding.objects.filter(
        member_id=member_id, status=TaxWithholding.Status.WITHHELD, withdrawal__status=Withdrawal.Status.PAID
    ).dates("paid_on", "year", order="DESC")
    return [d.year for d in dates]


def approved_withdrawals_missing_invoice() -> int:
    """Approved withdrawals a batch leaves out: to a business payee whose invoice is no longer accepted."""
    return Withdrawal.objects.filter(status=Withdrawal.Status.APPROVED).filter(invoice_missing()).count()
