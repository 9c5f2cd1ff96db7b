"""Risk review decisions that reach withdrawals (issue #25). The flags, their rules and the ledger side are the
commission app's (`commissions.services.risk`); payouts sits above it and adds what only it may touch:

- a withdrawal flag (the payout rule) holds the withdrawal's approval (`withdrawal_approve` refuses while it is
  open); releasing it lets staff approve it, reversing it rejects the withdrawal with the reason;
- a ban suspends the member, closes their shop and reverses their pending commission (commissions), and rejects
  their withdrawals not yet approved; approved ones are not batched while the member is suspended.
"""

from django.db import transaction

from commissions.models import RiskEvent, RiskFlag
from commissions.services.risk import BAN, RELEASE, REVERSE, RiskError, risk_flag_resolve, risk_member_ban
from payouts.locks import withdrawals_lock
from payouts.models import Withdrawal
from payouts.services import withdrawal_reject


def risk_flag_decide(*, flag: RiskFlag, action: str, actor, reason: str) -> RiskFlag | RiskEvent | None:
    """Staff's decision on a flag: release, reverse or ban (see the module). Atomic and idempotent: a flag no longer
    open, or a member already banned with nothing left to reverse, is left as it is."""
    if action == BAN:
        return risk_member_ban_and_stop(member=flag.member, actor=actor, reason=reason, flag=flag)
    if action not in (RELEASE, REVERSE):
        raise RiskError("Unknown action.", code="bad_action")
    with transaction.atomic():
        resolved = risk_flag_resolve(flag=flag, action=action, actor=actor, reason=reason)
        if action == REVERSE and flag.subject == RiskFlag.Subject.WITHDRAWAL:
            _reject_requested(Withdrawal.objects.filter(pk=flag.withdrawal_id), actor=actor, reason=reason)
        return resolved


def risk_member_ban_and_stop(*, member, actor, reason: str, flag: RiskFlag | None = None) -> RiskEvent | None:
    with transaction.atomic():
        event = risk_member_ban(member=member, actor=actor, reason=reason, flag=flag)
        _reject_requested(Withdrawal.objects.filter(member=member), actor=actor, reason=reason)
        return event


def _reject_requested(withdrawals, *, actor, reason: str) -> None:
    requested = withdrawals.filter(status=Withdrawal.Status.REQUESTED)
    for withdrawal in withdrawals_lock(requested):
        withdrawal_reject(withdrawal=withdrawal, actor=actor, reason=reason)
