"""Payout-side changes that need two people (four eyes, accounts/approvals.py, docs/compliance.md).

A withdrawal above FOUR_EYES_THRESHOLD needs two people (four eyes, accounts/approvals.py, docs/compliance.md):
the first finance user's "Approve" in admin asks for the second approval, and the withdrawal is approved when another
finance user approves that request in the approval queue, through `withdrawal_approve`, as the approver. Until then
it stays `requested`, so no batch takes it.

Banning a member (the risk review's "Ban the member…", issue #25) always needs a second reviewer: the ban is done by
`payouts.risk.risk_member_ban_and_stop` when approved."""

from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from accounts.approvals import ApprovalAction, approval_action_register, approval_request
from commissions.models import RiskFlag
from core.money import format_money
from payouts.models import Withdrawal
from payouts.risk import risk_member_ban_and_stop
from payouts.services import PayoutError, withdrawal_approve
from referrals.models import Member

WITHDRAWAL_APPROVE = "payouts.withdrawal_approve"
MEMBER_BAN = "payouts.member_ban"


def withdrawal_approve_request(*, withdrawal: Withdrawal, actor):
    """The first approval of a large withdrawal: checked now as an approval would be (a business payee's invoice),
    then asked for. Returns the approval request."""
    if withdrawal.status != Withdrawal.Status.REQUESTED:
        raise PayoutError(_("Only a requested withdrawal can be approved."), code="not_requested")
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
