"""Payout-side changes that need two people (four eyes, accounts/approvals.py, docs/compliance.md).

A withdrawal above FOUR_EYES_THRESHOLD needs two people (four eyes, accounts/approvals.py, docs/compliance.md):
the first finance user's "Approve" in admin asks for the second approval, and the withdrawal is approved when another
finance user approves that request in the approval queue, through `withdrawal_approve`, as the approver. Until then
it stays `requested`, so no batch takes it.

A staff adjustment of a member's balance above FOUR_EYES_THRESHOLD (payouts/adjustments.py) is applied when a second
finance user approves it. A finance user who adjusted a member in the last ADJUSTMENT_CONFLICT_DAYS may approve none
of that member's withdrawals, neither first nor second (`withdrawal_approver_refusal`).

Banning a member (the risk review's "Ban the member…", issue #25) always needs a second reviewer: the ban is done by
`payouts.risk.risk_member_ban_and_stop` when approved."""

from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from accounts.approvals import ApprovalAction, ApprovalError, approval_action_register, approval_request
from commissions.models import RiskFlag
from core.money import format_money
from payouts.adjustments import PERMISSION as ADJUST_PERMISSION
from payouts.adjustments import adjustment_approve, adjustment_approver_check
from payouts.models import BalanceAdjustment, Withdrawal
from payouts.risk import risk_member_ban_and_stop
from payouts.services import PayoutError, withdrawal_approve, withdrawal_approver_refusal
from referrals.models import Member

WITHDRAWAL_APPROVE = "payouts.withdrawal_approve"
MEMBER_BAN = "payouts.member_ban"


def withdrawal_approve_request(*, withdrawal: Withdrawal, actor):
    """The first approval of a large withdrawal: checked now as an approval would be (a business payee's invoice),
    then asked for. Returns the approval request."""
    if withdrawal.status != Withdrawal.Status.REQUESTED:
        raise PayoutError(_("Only a requested withdrawal can be approved."), code="not_requested")
    refusal = withdrawal_approver_refusal(withdrawal=withdrawal, actor=actor)
    if refusal:
        raise refusal
    request, _new = approval_request(
        action=WITHDRAWAL_APPROVE,
        target=withdrawal,
        summary=_("Approve withdrawal %(id)s of %(amount)s to %(member)s")
        % {"id": withdrawal.pk, "amount": format_money(withdrawal.amount), "member": withdrawal.member},
        reason=_("First approval by %(name)s.") % {"name": actor.get_full_name() or actor.email},
        requested_by=actor,
        amount=withdrawal.amount,
    )
    return request


def _approver_check(request, approver) -> None:
    """The second approver of a withdrawal must not have adjusted the member's balance lately: refused before
    anything is done, so the request stays open for another finance user."""
    refusal = withdrawal_approver_refusal(withdrawal=Withdrawal.objects.get(pk=int(request.target_id)), actor=approver)
    if refusal:
        raise ApprovalError(refusal.messages[0], code="adjusted_recently")


def _approve(request, approver) -> str:
    withdrawal = withdrawal_approve(withdrawal=Withdrawal.objects.get(pk=int(request.target_id)), actor=approver)
    return _("Withdrawal %(id)s is approved; the next payout batch takes it.") % {"id": withdrawal.pk}


def member_ban_request(*, member: Member, actor, reason: str, flag: RiskFlag | None = None):
    """Ask for `member` to be banned (all pending commission reversed, shop hidden, payouts stopped: issue #25);
    done when a second reviewer approves. Returns the approval request."""
    request, _new = approval_request(
        action=MEMBER_BAN,
        target=member,
        summary=_("Ban %(member)s: pending commission reversed, shop hidden, payouts stopped") % {"member": member},
        reason=reason,
        requested_by=actor,
        params={"flag": flag.pk if flag else None},
    )
    return request


def _ban(request, approver) -> str:
    member = Member.objects.get(pk=int(request.target_id))
    flag = RiskFlag.objects.filter(pk=request.params.get("flag")).first() if request.params.get("flag") else None
    risk_member_ban_and_stop(member=member, actor=approver, reason=request.reason, flag=flag)
    return _("%(member)s is banned.") % {"member": member}


def approval_actions_register() -> None:
    approval_action_register(
        ApprovalAction(
            name=WITHDRAWAL_APPROVE,
            label=gettext_lazy("Approve a large withdrawal"),
            permission="payouts.change_withdrawal",
            execute=_approve,
            approver_check=_approver_check,
        )
    )
    approval_action_register(
        ApprovalAction(
            name=BalanceAdjustment.APPROVAL_ACTION,
            label=gettext_lazy("Adjust a member's balance"),
            permission=ADJUST_PERMISSION,
            execute=adjustment_approve,
            approver_check=adjustment_approver_check,
        )
    )
    approval_action_register(
        ApprovalAction(
            name=MEMBER_BAN,
            label=gettext_lazy("Ban a member"),
            permission="commissions.review_risk",
            execute=_ban,
        )
    )
