"""Staff adjustments of a member's balance (issue #25, docs/balance.md "Staff adjustments"): finance credits or debits
a member's balance by an amount, with a note the member reads (goodwill, a mistake put right) and an internal note
only staff read.

- Applied at once when small; one that is larger than FOUR_EYES_THRESHOLD (counting what the same staff member alone
  adjusted this member by in the last ADJUSTMENT_CONFLICT_DAYS, so splitting one large adjustment into small ones
  does not avoid a second person) needs a second finance user's approval (four eyes, accounts/approvals.py); the
  one who asked never approves it.
- A debit never takes *available to withdraw* below zero: checked under the member's wallet lock, when it is
  applied (again when a second person approves it, since the balance may have moved meanwhile).
- Idempotent: every adjustment carries a key (the form's, kept in the approval request), unique in the table, so a
  form sent twice or an approval decided twice applies once.
- Audited: the adjustment row names who entered it and who approved it (staff/audit.py), and the approval request
  its asking and deciding.
- A finance user who adjusted a member lately may not approve that member's withdrawals
  (`payouts.services.withdrawal_approver_refusal`).
"""

import uuid
from decimal import Decimal, InvalidOperation

from django.db import IntegrityError, transaction
from django.utils.translation import gettext as _

from accounts.approvals import ApprovalError, approval_request, second_approval_needed
from accounts.models import ApprovalRequest
from core.money import CENT, ZERO, format_money
from payouts.locks import wallets_lock
from payouts.models import BalanceAdjustment
from payouts.selectors import adjusted_alone, member_balance
from payouts.services import PayoutError
from referrals.models import Member

PERMISSION = "payouts.add_balanceadjustment"
AMOUNT_MAX = Decimal("1000000.00")  # a typo guard: a larger change of one balance is not an adjustment
MEMBER_NOTE_MAX_LENGTH = BalanceAdjustment._meta.get_field("member_note").max_length
INTERNAL_NOTE_MAX_LENGTH = 2000


def new_adjustment_key() -> str:
    """A fresh idempotency key for one adjustment form (the form carries it, so sending it twice applies once)."""
    return uuid.uuid4().hex


def _clean(amount, member_note: str, internal_note: str) -> tuple[Decimal, str, str]:
    """The amount (signed, whole cents, not zero, at most AMOUNT_MAX either way) and both notes, required."""
    errors: dict[str, list[str]] = {}
    try:
        amount = Decimal(str(amount).strip())
    except (InvalidOperation, ValueError):
        errors["amount"] = [_("Enter an amount such as 50.00 (a credit) or -50.00 (a debit).")]
    else:
        if not amount.is_finite() or amount != amount.quantize(CENT):
            errors["amount"] = [_("Enter an amount in whole cents, such as 50.00 or -50.00.")]
        elif amount == ZERO:
            errors["amount"] = [_("An adjustment of 0.00 changes nothing.")]
        elif abs(amount) > AMOUNT_MAX:
            errors["amount"] = [_("At most %(max)s either way.") % {"max": format_money(AMOUNT_MAX)}]
    member_note, internal_note = (member_note or "").strip(), (internal_note or "").strip()
    if not member_note:
        errors["member_note"] = [_("Tell the member why: they read this note on their statement.")]
    elif len(member_note) > MEMBER_NOTE_MAX_LENGTH:
        errors["member_note"] = [_("At most %(n)d characters.") % {"n": MEMBER_NOTE_MAX_LENGTH}]
    if not internal_note:
        errors["internal_note"] = [_("Say why, for the second approver and the audit log (a ticket, what went wrong).")]
    elif len(internal_note) > INTERNAL_NOTE_MAX_LENGTH:
        errors["internal_note"] = [_("At most %(n)d characters.") % {"n": INTERNAL_NOTE_MAX_LENGTH}]
    if errors:
        raise PayoutError(errors)
    return amount.quantize(CENT), member_note, internal_note


def _debit_refusal(member_id: int, amount: Decimal) -> PayoutError | None:
    """A debit larger than what the member has available to withdraw now, or None (the message is on `amount`)."""
    if amount >= ZERO:
        return None
    available = member_balance(member_id).withdrawable
    if available + amount >= ZERO:
        return None
    return PayoutError(
        {
            "amount": [
                _(
                    "A debit may not take the member's available balance below zero: %(available)s is available "
                    "to withdraw now."
                )
                % {"available": format_money(max(available, ZERO))}
            ]
        }
    )


def _may_adjust(user) -> bool:
    return bool(user and user.is_active and user.is_staff and user.has_perm(PERMISSION))


@transaction.atomic
def balance_adjustment_apply(
    *,
    member: Member,
    amount,
    member_note: str,
    internal_note: str,
    requested_by,
    key: str,
    approved_by=None,
    approval: ApprovalRequest | None = None,
) -> tuple[BalanceAdjustment, bool]:
    """Apply an adjustment now: returns (the adjustment, whether it is new). Locks the member's wallet, then checks a
    debit against *available to withdraw* (an error on `amount`; nothing changes). Idempotent by `key`: an
    adjustment already applied with it is returned as it is."""
    amount, member_note, internal_note = _clean(amount, member_note, internal_note)
    wallets_lock([member.pk])
    existing = BalanceAdjustment.objects.filter(idempotency_key=key).first()
    if existing is not None:
        return existing, False
    refusal = _debit_refusal(member.pk, amount)
    if refusal:
        raise refusal
    try:
        with transaction.atomic():
            adjustment = BalanceAdjustment.objects.create(
                member=member,
                amount=amount,
                member_note=member_note,
                internal_note=internal_note,
                requested_by=requested_by,
                approved_by=approved_by,
                approval=approval,
                idempotency_key=key,
            )
    except IntegrityError:
        # The same key applied by another transaction meanwhile (the wallet lock makes this rare): theirs stands.
        return BalanceAdjustment.objects.get(idempotency_key=key), False
    return adjustment, True


@transaction.atomic
def balance_adjustment_request(
    *, member: Member, amount, member_note: str, internal_note: str, actor, key: str
) -> BalanceAdjustment | ApprovalRequest:
    """What finance's "Adjust a balance" page does: the adjustment applied now (returned), or, when it needs a second
    person, the approval request asked for (returned; the adjustment is applied when another finance user approves
    it). Refused (PayoutError, nothing changes) for a user without the permission, bad input, or a debit beyond what
    the member has available now. One open request per member: the same form sent again returns it, another
    adjustment is refused (code `already_waiting`) until it is decided or withdrawn.

    Takes the member's wallet lock before it adds up what the same person adjusted alone, so two small adjustments
    sent at once by one person cannot both stay below the threshold."""
    if not _may_adjust(actor):
        raise PayoutError(_("You may not adjust members' balances."), code="permission")
    if member.user_id == actor.pk:
        raise PayoutError(_("You may not adjust your own balance."), code="own_balance")
    amount, member_note, internal_note = _clean(amount, member_note, internal_note)
    wallets_lock([member.pk])
    if not second_approval_needed(abs(amount) + adjusted_alone(user=actor, member_id=member.pk)):
        adjustment, _new = balance_adjustment_apply(
            member=member,
            amount=amount,
            member_note=member_note,
            internal_note=internal_note,
            requested_by=actor,
            key=key,
        )
        return adjustment
    refusal = _debit_refusal(member.pk, amount)  # now, as the approval will check it again
    if refusal:
        raise refusal
    request, new = approval_request(
        action=BalanceAdjustment.APPROVAL_ACTION,
        target=member,
        summary=_("Adjust the balance of %(member)s by %(amount)s: %(note)s")
        % {"member": member, "amount": _signed_money(amount), "note": member_note},
        reason=internal_note,
        requested_by=actor,
        params={"amount": str(amount), "member_note": member_note, "key": key},
        amount=amount,
    )
    if not new and request.params.get("key") != key:
        # One open request per member: this one is not recorded; the one waiting is decided (or withdrawn) first.
        raise PayoutError(
            _(
                "An adjustment of this member is already waiting for a second approval: %(summary)s. Decide or "
                "withdraw it first."
            )
            % {"summary": request.summary},
            code="already_waiting",
        )
    return request


def _signed_money(amount: Decimal) -> str:
    return ("+" if amount > 0 else "−") + format_money(abs(amount))


def adjustment_approve(request: ApprovalRequest, approver) -> str:
    """The four eyes action: the second finance user approved; the adjustment is applied now, as they approved it
    (its `requested_by` the one who asked). The approval row is locked by `approval_decide` and the key is unique, so
    deciding twice applies once; a debit the balance no longer covers ends the request `failed`."""
    member = Member.objects.get(pk=int(request.target_id))
    adjustment, _new = balance_adjustment_apply(
        member=member,
        amount=request.params["amount"],
        member_note=request.params["member_note"],
        internal_note=request.reason,
        requested_by=request.requested_by,
        approved_by=approver,
        approval=request,
        key=request.params["key"],
    )
    return _("Balance of %(member)s adjusted by %(amount)s.") % {
        "member": member,
        "amount": _signed_money(adjustment.amount),
    }


def adjustment_approver_check(request: ApprovalRequest, approver) -> None:
    """Nobody approves an adjustment of their own balance (a staff member who is also a member)."""
    if Member.objects.filter(pk=int(request.target_id), user_id=approver.pk).exists():
        raise ApprovalError(_("You may not approve an adjustment of your own balance."), code="own_balance")
