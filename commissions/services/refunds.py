"""Refunds of our own sales (SPEC §7): the commission on the refunded part is reversed (still on hold) or clawed
back (released or paid out).

How much each level gives back is `commissions.calculations.refund_reversals`: the level's share of the sale,
in proportion to the cumulative refunded net amount. How it is booked (reversal or clawback, pending or
available, and when a share leaves the balances) is `commissions.calculations.take_back`, the rule the external
lines use too (`commissions.services.external`).
"""

import logging

from django.db import IntegrityError, transaction
from django.db.models import Sum
from django.utils import timezone

from commissions.calculations import refund_reversals, take_back
from commissions.models import CommissionEntry, OrderSplit, RefundApplied
from commissions.services.announce import EntryChanges
from core.money import ZERO
from shops.locks import order_lock
from shops.models import Refund, RefundLine

logger = logging.getLogger(__name__)

Entry = CommissionEntry


def commission_apply_refund(*, refund_id: int) -> None:
    """Reverse (before release) or claw back (after release or payout) the commission on a refund.

    Idempotent (a RefundApplied marker and unique entries). If the order is not split yet, does nothing:
    the split applies refunds it finds, under the same order lock. The entries it writes and voids are announced
    after the commit (`commissions.signals.commission_entries_changed`).
    """
    changes = EntryChanges()
    with transaction.atomic():
        refund = Refund.objects.filter(pk=refund_id).first()
        if refund is None:
            return
        order_lock(refund.order_id)
        if not OrderSplit.objects.filter(order_id=refund.order_id).exists():
            return
        # In refund order: a later refund's amounts are computed on top of the earlier ones, so an earlier
        # refund whose task arrives late is applied first, never after.
        for earlier in Refund.objects.filter(order_id=refund.order_id, pk__lte=refund.pk).order_by("pk"):
            refund_reversals_write(earlier, changes=changes)
        changes.announce()


def refund_reversals_write(refund, *, changes: EntryChanges) -> None:
    """Write one refund's reversals and clawbacks unless they are written (its RefundApplied marker). The caller
    holds the order's row lock (`shops.locks`) and applies an order's refunds in their order; the ids written
    (created) and voided (reversed) are added to `changes`, which the caller announces once."""
    if RefundApplied.objects.filter(refund=refund).exists():
        return
    mine = EntryChanges()
    try:
        with transaction.atomic():
            # The marker first: a concurrent run blocks on it, then fails here and writes nothing.
            RefundApplied.objects.create(refund=refund)
            _write_reversals(refund, mine)
    except IntegrityError:
        logger.info("refund %s was applied by a concurrent run", refund.pk)
        return
    changes.created.extend(mine.created)
    changes.reversed.extend(mine.reversed)


def _write_reversals(refund, changes: EntryChanges) -> None:
    now = timezone.now()
    for refund_line in RefundLine.objects.filter(refund=refund).select_related("order_line"):
        line = refund_line.order_line
        cumulative = (
            RefundLine.objects.filter(order_line=line, refund_id__lte=refund.pk).aggregate(total=Sum("amount"))["total"]
            or ZERO
        )
        originals = {
            entry.level: entry
            # A reversed original has left the balances with everything it owed (a refund in full, or a risk
            # reversal, commissions.services.risk): nothing of it is left to take back.
            for entry in Entry.objects.filter(order_line=line, kind=Entry.Kind.COMMISSION, amount__gt=0).exclude(
                status=Entry.Status.REVERSED
            )
        }
        if not originals:
            continue
        earlier = (
            Entry.objects.filter(
                order_line=line, kind__in=[Entry.Kind.REVERSAL, Entry.Kind.CLAWBACK], refund_id__lt=refund.pk
            )
            .values_list("level")
            .annotate(total=Sum("amount"))
        )
        already = {level: -total for level, total in earlier}
        reversals = refund_reversals(
            shares=[_Paid(e.level, e.beneficiary_id, e.amount) for e in originals.values()],
            net_amount=line.net_amount,
            refunded_net_total=cumulative,
            already_reversed=already,
        )
        for reversal in reversals:
            original = originals[reversal.level]
            # A share of our own sale is released all at once (the order's release), with the reversals
            # written while it was on hold: what is on hold is the original less those, or nothing.
            on_hold = original.amount - already.get(original.level, ZERO)
            booked = take_back(reversal.amount, pending=on_hold if original.status == Entry.Status.PENDING else ZERO)
            for kind, amount in ((Entry.Kind.REVERSAL, booked.reversed), (Entry.Kind.CLAWBACK, booked.clawed_back)):
                if not amount:
                    continue
                before_release = kind == Entry.Kind.REVERSAL
                entry = Entry.objects.create(
                    order_id=line.order_id,
                    order_line=line,
                    refund=refund,
                    beneficiary_id=original.beneficiary_id,
                    level=original.level,
                    kind=kind,
                    base=original.base,
                    rate=original.rate,
                    amount=-amount,
                    plan_id=original.plan_id,
                    policy_id=original.policy_id,
                    status=Entry.Status.PENDING if before_release else Entry.Status.AVAILABLE,
                    released_at=None if before_release else now,
                    note=f"refund {refund.pk}",
                )
                changes.created.append(entry.pk)
            if booked.reversed and not booked.pending_left:
                # Nothing of it is left to earn: the original and its reversals leave the balances together.
                voided = list(
                    Entry.objects.filter(
                        order_line=line, level=original.level, status=Entry.Status.PENDING
                    ).values_list("pk", flat=True)
                )
                Entry.objects.filter(pk__in=voided).update(status=Entry.Status.REVERSED, reversed_at=now)
                changes.reversed.extend(voided)


class _Paid:
    __slots__ = ("amount", "level", "member_id")

    def __init__(self, level, member_id, amount):
        self.level, self.member_id, self.amount = level, member_id, amount
