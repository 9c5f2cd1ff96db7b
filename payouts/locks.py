"""The payouts app's locks: transfers at the payout rails, withdrawals and members' wallets.

Money leaves a member's balance only under the lock on their wallet (`MemberWallet`), taken before the balance is
computed, so two withdrawals at the same moment cannot both pass. Wallets are the last rows any transaction locks:
a transfer before its withdrawal, withdrawals before wallets, and orders (shops) before all of them. The order of all
locks: core/locks.py.
"""

from collections.abc import Iterable

from django.db.models import QuerySet

from core.locks import row_lock, rows_lock
from payouts.models import Invoice, MemberWallet, Transfer, Withdrawal, WithholdingRule


def wallets_lock(member_ids: Iterable[int]) -> list[MemberWallet]:
    """The members' wallets, locked in id order (a wallet a member does not have yet is made first)."""
    member_ids = sorted(set(member_ids))
    MemberWallet.objects.bulk_create([MemberWallet(member_id=m) for m in member_ids], ignore_conflicts=True)
    return rows_lock(MemberWallet.objects.filter(member_id__in=member_ids))


def withdrawal_lock(withdrawal_id: int) -> Withdrawal:
    """The withdrawal's row, locked (Withdrawal.DoesNotExist if there is none)."""
    return row_lock(Withdrawal.objects.filter(pk=withdrawal_id))


def withdrawals_lock(
    withdrawals: QuerySet[Withdrawal],
    *fields: str,
    limit: int | None = None,
    skip_locked: bool = False,
) -> list:
    """Lock the withdrawals that `withdrawals` (the caller's filter) matches, in id order, now (the first `limit`;
    with `skip_locked`, those no other transaction holds); return them, or with `fields` their values."""
    return rows_lock(withdrawals, *fields, limit=limit, skip_locked=skip_locked)


def transfer_lock(number: str) -> Transfer | None:
    """The transfer with this number at its rail, locked; None if there is none (yet)."""
    try:
        return row_lock(Transfer.objects.filter(number=number))
    except Transfer.DoesNotExist:
        return None


def withholding_rule_lock(rule_id: int) -> WithholdingRule:
    """A withholding rule's row, locked while it is activated (an activated rule never changes again)."""
    return row_lock(WithholdingRule.objects.filter(pk=rule_id))


def invoice_lock(invoice_id: int) -> Invoice:
    """An invoice's row, locked (after its withdrawal's: a withdrawal, then its invoices, then wallets)."""
    return row_lock(Invoice.objects.filter(pk=invoice_id))
