"""Payouts' side of the ledger: which released entries the members' completed payouts cover."""

from collections import defaultdict
from decimal import Decimal

from commissions.models import CommissionEntry
from commissions.selectors import released_entries
from core.money import ZERO

Entry = CommissionEntry


def commission_entries_mark_paid(*, paid_out_by_member: dict[int, Decimal], at) -> int:
    """Label `paid` every released entry that the members' completed payouts cover (SPEC §8); returns how many.

    `paid_out_by_member` is each member's total of paid withdrawals. Coverage is cumulative, in the order the
    money arrived (`commissions.selectors.released_entries`: by release time, then id): an entry is covered when
    the running total of the member's released entries up to and including it is within what was paid out to
    them. Everything before the last such point is covered too, so a negative entry (a clawback, a released
    reversal or adjustment) is covered together with the entries before it, and it can complete the cover of a
    positive entry that did not fit on its own: a 7.20 commission followed by a −1.98 reversal are both paid by a
    payout of the whole balance. An entry only partly covered stays `available`, and so does everything
    released after it, until further payouts cover it in full. A label once `paid` never goes back.

    Called by the payouts app under a lock on the members' wallets; idempotent (a rerun finds nothing more to
    label). The balance does not depend on these labels (released = available + paid); they tell a member which
    commission their payouts covered.
    """
    entries_by_member: dict[int, list] = defaultdict(list)
    for entry_id, member_id, status, amount in released_entries(sorted(paid_out_by_member)).values_list(
        "pk", "beneficiary_id", "status", "amount"
    ):
        entries_by_member[member_id].append((entry_id, status, amount))
    ids = []
    for member_id, entries in entries_by_member.items():
        running, covered = ZERO, 0
        for position, (_entry_id, _status, amount) in enumerate(entries, start=1):
            running += amount
            if running <= paid_out_by_member[member_id]:
                covered = position
        ids += [entry_id for entry_id, status, _amount in entries[:covered] if status == Entry.Status.AVAILABLE]
    return Entry.objects.filter(pk__in=ids).update(status=Entry.Status.PAID, paid_at=at)
