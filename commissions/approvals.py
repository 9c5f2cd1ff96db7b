"""The commission rules' changes that need two people (four eyes, accounts/approvals.py, docs/compliance.md):
activating a plan and publishing a compliance policy version. One compliance user asks (the admin's "Activate now"
action, the "Publish a new version" form); another approves in the back office's approval queue, and the change is
done then, by the services here, as the approver."""

from django.db import transaction
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from accounts.approvals import ApprovalAction, approval_action_register, approval_request
from commissions.models import CommissionPlan, CompliancePolicy
from commissions.services import CommissionError, plan_activate, plan_validate, policy_publish
from commissions.services.plans import ATTRIBUTION_FIELDS, POLICY_FIELDS, QUALIFICATION_FIELDS

PLAN_ACTIVATE = "commissions.plan_activate"
POLICY_PUBLISH = "commissions.policy_publish"


class _DryRun(Exception):
    """Rolls back a publication that was only tried, to check it before asking for approval."""


def policy_values_to_json(values: dict) -> dict:
    """A new policy's values as JSON (decimals as their exact text)."""
    return {name: value if isinstance(value, bool | int) else str(value) for name, value in values.items()}


def policy_values_from_json(params: dict) -> dict:
    return {
        name: CompliancePolicy._meta.get_field(name).to_python(value)
        for name, value in params.items()
        if name in POLICY_FIELDS + ATTRIBUTION_FIELDS + QUALIFICATION_FIELDS
    }


def policy_publish_check(*, actor, note: str, values: dict) -> None:
    """Raise CommissionError if publishing `values` now would be refused; changes nothing."""
    try:
        with transaction.atomic():
            policy_publish(actor=actor, note=note, **values)
            raise _DryRun
    except _DryRun:
        pass


def policy_publish_request(*, actor, note: str, values: dict):
    """Ask for a new policy version: checked now (a refusal is the form's error), published when approved. The very
    first policy (none in force yet: setting up) is published at once."""
    current = CompliancePolicy.objects.filter(is_active=True).first()
    if current is None:
        return policy_publish(actor=actor, note=note, **values), None
    policy_publish_check(actor=actor, note=note, values=values)
    summary = ", ".join(f"{name} {value}" for name, value in policy_values_to_json(values).items())
    request, _new = approval_request(
        action=POLICY_PUBLISH,
        target=current,
        summary=_("New policy version: %(values)s") % {"values": summary},
        reason=note,
        requested_by=actor,
        params=policy_values_to_json(values),
    )
    return None, request


def _publish(request, approver) -> str:
    current = CompliancePolicy.objects.filter(is_active=True).first()
    if current is None or str(current.pk) != request.target_id:
        raise CommissionError(_("Another policy version was published since this was asked for: ask again."))
    published = policy_publish(actor=approver, note=request.reason, **policy_values_from_json(request.params))
    return _("Published %(policy)s; it is in force from now.") % {"policy": published}


def plan_activate_request(*, plan: CommissionPlan, actor, reason: str):
    """Ask for `plan` to be put in force; checked now, activated (from the moment of approval) when approved."""
    if plan.is_activated:
        raise CommissionError(_("This plan is already activated; plans in force never change."), code="activated")
    plan_validate(rates=plan.rates)  # against the policy in force now; again when approved
    request, _new = approval_request(
        action=PLAN_ACTIVATE,
        target=plan,
        summary=_("Put %(plan)s in force") % {"plan": plan},
        reason=reason,
        requested_by=actor,
    )
    return request


def _activate(request, approver) -> str:
    plan = plan_activate(plan=CommissionPlan.objects.get(pk=int(request.target_id)), actor=approver)
    return _("%(plan)s is in force from now.") % {"plan": plan}


def approval_actions_register() -> None:
    approval_action_register(
        ApprovalAction(
            name=PLAN_ACTIVATE,
            label=gettext_lazy("Activate a commission plan"),
            permission="commissions.change_commissionplan",
            execute=_activate,
        )
    )
    approval_action_register(
        ApprovalAction(
            name=POLICY_PUBLISH,
            label=gettext_lazy("Publish a compliance policy version"),
            permission="commissions.add_compliancepolicy",
            execute=_publish,
        )
    )
