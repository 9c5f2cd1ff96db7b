"""Four eyes on money and rules (SPEC §10, docs/compliance.md): a change that one staff member asks for is done only
when a second one, who holds the same permission and is never the one who asked, approves it.

Each app registers the changes it guards (`approval_action_register`, from its AppConfig.ready): a name, the
permission both people need, and the function that does the change through the app's own service, as the approver,
when approved. The staff pages (the app's admin action, the back office's approval queue) only ask and decide here;
the request row (`accounts.ApprovalRequest`) is the audit of who asked, why, who decided and what came of it.

Rules hold for every action:
- the person who asked never decides (also a database constraint); they may withdraw their own request;
- one open request per change of one object: asking again finds the first one;
- a refusal needs a note; an approval runs the change in the same transaction, and if the change's own service
  refuses it now (the object moved on since), the request ends `failed` with that reason and nothing changes;
- deciding twice (two tabs, two people at once) decides once: the row is locked and must still be pending.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Model, Q, QuerySet
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts.locks import approval_request_lock
from accounts.models import ApprovalRequest

Status = ApprovalRequest.Status

REASON_MAX_LENGTH = 2000


class ApprovalError(ValidationError):
    """A refused ask or decision; the message is fit to show. Nothing was changed."""


@dataclass(frozen=True)
class ApprovalAction:
    """A change that needs two people."""

    name: str  # "payouts.withdrawal_approve"
    label: str  # "Approve a withdrawal" (lazy translation)
    permission: str  # "payouts.change_withdrawal": the one who asks and the one who approves both hold it
    execute: Callable[[ApprovalRequest, object], str]  # does the change as the approver; returns what was done
    # Extra conditions on the approver (e.g. not someone who adjusted this member's balance lately): raises
    # ApprovalError to refuse. None: the permission is enough.
    approver_check: Callable[[ApprovalRequest, object], None] | None = None


_ACTIONS: dict[str, ApprovalAction] = {}


def approval_action_register(action: ApprovalAction) -> None:
    """Register `action` (idempotent for the same action; a second, different one of the same name is a mistake)."""
    existing = _ACTIONS.get(action.name)
    if existing is not None and existing != action:
        raise RuntimeError(f"approval action {action.name!r} is registered twice")
    _ACTIONS[action.name] = action


def approval_action(name: str) -> ApprovalAction | None:
    return _ACTIONS.get(name)


def approval_actions() -> list[ApprovalAction]:
    return sorted(_ACTIONS.values(), key=lambda action: action.name)


def second_approval_needed(amount: Decimal | None) -> bool:
    """Whether a change of `amount` needs a second person: money above FOUR_EYES_THRESHOLD; a change of rules
    (no amount) always. FOUR_EYES_THRESHOLD below zero turns four eyes on money off (a one-person operation)."""
    if amount is None:
        return True
    threshold = settings.FOUR_EYES_THRESHOLD
    return threshold >= 0 and amount > threshold


def _target_key(target: Model) -> tuple[str, str]:
    return target._meta.label_lower, str(target.pk)


def _clean_reason(reason: str) -> str:
    reason = (reason or "").strip()
    if not reason:
        raise ApprovalError({"reason": [_("Say why: the second person and the audit log read it.")]})
    if len(reason) > REASON_MAX_LENGTH:
        raise ApprovalError({"reason": [_("At most %(n)d characters.") % {"n": REASON_MAX_LENGTH}]})
    return reason


def approval_request(
    *,
    action: str,
    target: Model,
    summary: str,
    reason: str,
    requested_by,
    params: dict | None = None,
    amount: Decimal | None = None,
) -> tuple[ApprovalRequest, bool]:
    """Ask a second staff member to approve `action` on `target`. Returns (the request, whether it is new): an open
    request for the same change of the same object is returned as it is. Refused (ApprovalError) for an unknown
    action, a requester without its permission, or no reason."""
    registered = approval_action(action)
    if registered is None:
        raise ApprovalError(_("This change cannot be asked for."), code="unknown_action")
    if not (requested_by and requested_by.is_staff and requested_by.has_perm(registered.permission)):
        raise ApprovalError(_("You may not ask for this change."), code="permission")
    reason = _clean_reason(reason)
    target_type, target_id = _target_key(target)
    pending = ApprovalRequest.objects.filter(
        action=action, target_type=target_type, target_id=target_id, status=Status.PENDING
    )
    existing = pending.first()
    if existing is not None:
        return existing, False
    try:
        with transaction.atomic():
            created = ApprovalRequest.objects.create(
                action=action,
                target_type=target_type,
                target_id=target_id,
                target_label=str(target)[:200],
                summary=summary[:300],
                params=params or {},
                amount=amount,
                reason=reason,
                requested_by=requested_by,
            )
    except IntegrityError:
        # Asked at the same moment by someone else: theirs is the open request.
        return pending.get(), False
    return created, True


@transaction.atomic
def approval_decide(*, request: ApprovalRequest, approver, approve: bool, note: str = "") -> ApprovalRequest:
    """Approve (the change is done now, as `approver`) or refuse (with a note) a pending request."""
    request = approval_request_lock(request.pk)
    if request.status != Status.PENDING:
        raise ApprovalError(
            _("This request was already decided (%(status)s).") % {"status": request.get_status_display()},
            code="decided",
        )
    if approver.pk == request.requested_by_id:
        raise ApprovalError(
            _("You asked for this change: another staff member must approve or refuse it."), code="same_person"
        )
    action = approval_action(request.action)
    if action is None or not (approver.is_staff and approver.has_perm(action.permission)):
        raise ApprovalError(_("You may not decide this change."), code="permission")
    note = (note or "").strip()[:REASON_MAX_LENGTH]
    now = timezone.now()
    if not approve:
        if not note:
            raise ApprovalError({"note": [_("Say why you refuse: the requester reads it.")]})
        status, outcome = Status.REFUSED, ""
    else:
        if action.approver_check is not None:
            action.approver_check(request, approver)
        try:
            with transaction.atomic():  # a savepoint: a refused change leaves nothing behind
                status, outcome = Status.APPROVED, action.execute(request, approver)
        except ValidationError as error:
            status, outcome = Status.FAILED, " ".join(error.messages)
    request.status, request.outcome = status, outcome[:2000]
    request.decided_by, request.decided_at, request.decision_note = approver, now, note
    request.save(update_fields=["status", "outcome", "decided_by", "decided_at", "decision_note"])
    return request


@transaction.atomic
def approval_cancel(*, request: ApprovalRequest, actor) -> ApprovalRequest:
    """The requester withdraws their own pending request."""
    request = approval_request_lock(request.pk)
    if request.requested_by_id != actor.pk:
        raise ApprovalError(_("Only the person who asked can withdraw a request."), code="not_yours")
    if request.status != Status.PENDING:
        raise ApprovalError(_("This request was already decided."), code="decided")
    request.status, request.decided_at = Status.CANCELLED, timezone.now()
    request.save(update_fields=["status", "decided_at"])
    return request


def approvals_visible_to(user) -> QuerySet:
    """The requests of the actions `user` may decide or asked for themselves (superusers: all)."""
    requests = ApprovalRequest.objects.select_related("requested_by", "decided_by")
    if user.is_superuser:
        return requests
    allowed = [action.name for action in _ACTIONS.values() if user.has_perm(action.permission)]
    return requests.filter(Q(action__in=allowed) | Q(requested_by=user))


def approval_pending_for(target: Model, action: str) -> ApprovalRequest | None:
    """The open request for `action` on `target`, if any (pages say "waiting for a second approval")."""
    target_type, target_id = _target_key(target)
    return ApprovalRequest.objects.filter(
        action=action, target_type=target_type, target_id=target_id, status=Status.PENDING
    ).first()


def asked_message(request: ApprovalRequest) -> str:
    """What the requester is told once they asked."""
    return _(
        "Asked for a second approval: %(summary)s. Another staff member with the same permission approves it in "
        "Approval requests; it is done then."
    ) % {"summary": request.summary}
