"""The commission rules' changes that need two people (four eyes, accounts/approvals.py, docs/compliance.md):
activating a plan and publishing a compliance policy version. One compliance user asks (the admin's "Activate now"
action, the "Publish a new version" form); another approves in the back office's approval queue, and the change is
done then, by the services here, as the approver."""

from datetime import datetime

from django.db import transaction
from django.utils import formats, timezone
from django.utils.dateparse import parse_datetime
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from accounts.approvals import ApprovalAction, approval_action_register, approval_request
from commissions.models import CommissionPlan, CompliancePolicy
from commissions.services import CommissionError, plan_activate, plan_validate, policy_publish
from commissions.services.plans import ATTRIBUTION_FIELDS, POLICY_FIELDS, QUALIFICATION_FIELDS, plan_start_check

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


def _start_to_json(effective_from: datetime | None) -> str:
    return effective_from.isoformat() if effective_from else ""


def _start_from_params(params: dict) -> datetime | None:
    return parse_datetime(params.get("effective_from") or "") or None


def _start_words(effective_from: datetime) -> str:
    return formats.date_format(timezone.localtime(effective_from), "Y-m-d H:i")


def policy_publish_check(*, actor, note: str, values: dict, effective_from: datetime | None = None) -> None:
    """Raise CommissionError if publishing `values` now would be refused; changes nothing."""
    try:
        with transaction.atomic():
            policy_publish(actor=actor, note=note, effective_from=effective_from, **values)
            raise _DryRun
    except _DryRun:
        pass


def policy_publish_request(*, actor, note: str, values: dict, effective_from: datetime | None = None):
    """Ask for a new policy version in force from `effective_from` (default: the moment of approval): checked now (a
    refusal is the form's error), checked again and published when approved. The very first policy (none in force
    yet: setting up) is published at once."""
    current = CompliancePolicy.objects.filter(is_active=True).first()
    if current is None:
        return policy_publish(actor=actor, note=note, effective_from=effective_from, **values), None
    policy_publish_check(actor=actor, note=note, values=values, effective_from=effective_from)
    summary = ", ".join(f"{name} {value}" for name, value in policy_values_to_json(values).items())
    if effective_from:
        summary += ", " + _("in force from %(date)s") % {"date": _start_words(effective_from)}
    request, _new = approval_request(
        action=POLICY_PUBLISH,
        target=current,
        summary=_("New policy version: %(values)s") % {"values": summary},
        reason=note,
        requested_by=actor,
        params={
            **policy_values_to_json(values),
            **({"effective_from": _start_to_json(effective_from)} if effective_from else {}),
        },
    )
    return None, request


def _publish(request, approver) -> str:
    current = CompliancePolicy.objects.filter(is_active=True).first()
    if current is None or str(current.pk) != request.target_id:
        raise CommissionError(_("Another policy version was published since this was asked for: ask again."))
    published_at = timezone.now()
    published = policy_publish(
        actor=approver,
        note=request.reason,
        effective_from=_start_from_params(request.params),
        **policy_values_from_json(request.params),
    )
    if published.effective_from <= published_at:
        return _("Published %(policy)s; it is in force from now.") % {"policy": published}
    return _("Published %(policy)s; it is in force from %(date)s.") % {
        "policy": published,
        "date": _start_words(published.effective_from),
    }


def plan_activate_request(*, plan: CommissionPlan, actor, reason: str, effective_from: datetime | None = None):
    """Ask for `plan` to be put in force from `effective_from` (default: the moment of approval); checked now,
    checked again and activated when approved (the notice is counted from the approval)."""
    if plan.is_activated:
        raise CommissionError(_("This plan is already activated; plans in force never change."), code="activated")
    plan_start_check(effective_from)  # the notice from now; again from the approval
    plan_validate(rates=plan.rates)  # against the policy in force now; again when approved
    summary = _("Put %(plan)s in force") % {"plan": plan}
    if effective_from:
        summary += " " + _("from %(date)s") % {"date": _start_words(effective_from)}
    request, _new = approval_request(
        action=PLAN_ACTIVATE,
        target=plan,
        summary=summary,
        reason=reason,
        requested_by=actor,
        params={"effective_from": _start_to_json(effective_from)} if effective_from else None,
    )
    return request


def _activate(request, approver) -> str:
    plan = plan_activate(
        plan=CommissionPlan.objects.get(pk=int(request.target_id)),
        actor=approver,
        effective_from=_start_from_params(request.params or {}),
    )
    if plan.effective_from <= plan.activated_at:
        return _("%(plan)s is in force from now.") % {"plan": plan}
    return _("%(plan)s is in force from %(date)s.") % {"plan": plan, "date": _start_words(plan.effective_from)}


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
