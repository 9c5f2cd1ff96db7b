"""A withdrawal above FOUR_EYES_THRESHOLD needs two people (four eyes, accounts/approvals.py, docs/compliance.md):
the first finance user's "Approve" in admin asks for the second approval, and the withdrawal is approved when another
finance user approves that request in the approval queue, through `withdrawal_approve`, as the approver. Until then
it stays `requested`, so no batch takes it."""

from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from accounts.approvals import ApprovalAction, approval_action_register, approval_request
from core.money import format_money
from payouts.models import Withdrawal
from payouts.services import PayoutError, withdrawal_approve

WITHDRAWAL_APPROVE = "payouts.withdrawal_approve"


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


def approval_actions_register() -> None:
    approval_action_register(
        ApprovalAction(
            name=WITHDRAWAL_APPROVE,
            label=gettext_lazy("Approve a large withdrawal"),
            permission="payouts.change_withdrawal",
            execute=_approve,
        )
    )
