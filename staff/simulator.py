"""Staff pages of the commission-plan simulator (its engine: commissions.simulation), under the admin's login and
permissions.

Included by staff/urls.py at `admin/back-office/simulations/` (namespace `staff`). Creating needs
`commissions.add_plansimulation`, the list and the results `commissions.view_plansimulation`. The pages are plain
HTML: the results page refreshes itself (a meta refresh, no script) while the run is queued or running.
"""

from datetime import timedelta
from decimal import Decimal

from django import forms
from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.urls import path
from django.utils import timezone
from django.utils.text import format_lazy
from django.utils.translation import gettext_lazy as _

from commissions.calculations import CAP_CODES, HARD_MAX_LEVELS
from commissions.forms import payout_ratio_field
from commissions.models import CommissionPlan, CompliancePolicy, PlanSimulation
from commissions.services import CommissionError
from commissions.simulation import plan_simulation_create
from core.forms import add_service_errors, rate_field

ADD_PERMISSION = "commissions.add_plansimulation"
VIEW_PERMISSION = "commissions.view_plansimulation"
DEFAULT_DAYS = 30
CAP_LABELS = {"max_total_rate": _("Max total rate"), "max_payout_ratio": _("Max payout ratio")}


class PlanChoiceField(forms.ModelChoiceField):
    def label_from_instance(self, obj: CommissionPlan) -> str:
        rates = " / ".join(str(rate) for rate in obj.rates)
        state = _("activated") if obj.is_activated else _("draft")
        return f"{obj} ({rates}, {state})"


class PlanSimulationForm(forms.Form):
    """The shape of what was typed; `plan_simulation_create` decides what is allowed."""

    name = forms.CharField(label=_("Name"), required=False, max_length=80)
    draft_plan = PlanChoiceField(
        label=_("Copy the rates of a plan"),
        queryset=CommissionPlan.objects.order_by("-version"),
        required=False,
        empty_label=_("— none: type the rates below —"),
        help_text=_("Any plan, drafts included. Leave the rates below empty to use the plan's."),
    )
    level1_rate = rate_field(
        _("Level 1 rate (the sharer)"), required=False, help_text=_("A fraction of the pool: 0.5000 is 50 %.")
    )
    level2_rate = rate_field(_("Level 2 rate"), required=False, help_text=_("Empty: level 2 is not paid."))
    level3_rate = rate_field(_("Level 3 rate"), required=False, help_text=_("Empty: level 3 is not paid."))
    max_levels = forms.IntegerField(
        label=_("Max paid levels"),
        required=False,
        min_value=1,
        help_text=_("Empty: as in force when each line was paid. Never more than 3."),
    )
    max_total_rate = rate_field(
        _("Max total rate"), required=False, help_text=_("Empty: as in force when each line was paid.")
    )
    max_payout_ratio = payout_ratio_field(
        _("Max payout ratio"),
        required=False,
        help_text=_("Empty: as in force when each line was paid. Never more than 0.30 (30 %)."),
    )
    self_purchase_earns = forms.TypedChoiceField(
        label=_("Self-purchase earns commission"),
        required=False,
        choices=[("", _("As in force")), ("yes", _("Yes")), ("no", _("No"))],
        coerce=lambda value: value == "yes",
        empty_value=None,
    )
    ineligible_share = forms.ChoiceField(
        label=_("Share of an ineligible member"),
        required=False,
        choices=[("", _("As in force")), *CompliancePolicy.IneligibleShare.choices],
    )
    date_from = forms.DateField(label=_("Paid from"), widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"))
    date_to = forms.DateField(
        label=_("Paid until (inclusive)"),
        widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
        help_text=_("Dates of payment in the site's time zone."),
    )

    RATE_FIELDS = ("level1_rate", "level2_rate", "level3_rate")
    POLICY_FIELDS = ("max_levels", "max_total_rate", "max_payout_ratio", "self_purchase_earns", "ineligible_share")

    @classmethod
    def initial_values(cls) -> dict:
        today = timezone.localdate()
        return {"date_from": today - timedelta(days=DEFAULT_DAYS - 1), "date_to": today}

    def save(self, *, actor) -> PlanSimulation:
        """Create and queue the simulation; raises CommissionError (nothing written) when the service refuses."""
        data = self.cleaned_data
        return plan_simulation_create(
            actor=actor,
            name=data["name"],
            rates=[data[name] for name in self.RATE_FIELDS],
            policy_overrides={name: data[name] for name in self.POLICY_FIELDS},
            date_from=data["date_from"],
            date_to=data["date_to"],
            draft_plan=data["draft_plan"],
        )


def _require(request, permission: str) -> None:
    if not request.user.has_perm(permission):
        raise PermissionDenied


def _context(request, title, **extra) -> dict:
    opts = PlanSimulation._meta
    return {**admin.site.each_context(request), "title": title, "opts": opts, **extra}


# --- Pages ------------------------------------------------------------------------------------------------------------


def simulation_list(request):
    _require(request, VIEW_PERMISSION)
    simulations = PlanSimulation.objects.select_related("created_by").order_by("-created_at", "-pk")
    page = Paginator(simulations, 50).get_page(request.GET.get("page"))
    context = _context(
        request,
        _("Plan simulations"),
        page=page,
        can_add=request.user.has_perm(ADD_PERMISSION),
    )
    return TemplateResponse(request, "admin/staff/simulation_list.html", context)


def simulation_create(request):
    _require(request, ADD_PERMISSION)
    if request.method == "POST":
        form = PlanSimulationForm(request.POST)
        if form.is_valid():
            try:
                simulation = form.save(actor=request.user)
            except CommissionError as error:
                add_service_errors(form, error)
            else:
                return redirect("staff:simulation_detail", pk=simulation.pk)
    else:
        form = PlanSimulationForm(initial=PlanSimulationForm.initial_values())
    fieldsets = [
        {"title": _("Draft plan"), "description": "", "fields": ["name", "draft_plan", *form.RATE_FIELDS]},
        {
            "title": _("Draft policy (optional)"),
            "description": format_lazy(
                _(
                    "Leave a field empty to use the policy that was in force when each line was paid. At most {max} "
                    "levels may ever be paid."
                ),
                max=HARD_MAX_LEVELS,
            ),
            "fields": list(form.POLICY_FIELDS),
        },
        {"title": _("Period"), "description": "", "fields": ["date_from", "date_to"]},
    ]
    for fieldset in fieldsets:
        fieldset["fields"] = [form[name] for name in fieldset["fields"]]
    context = _context(request, _("Simulate a commission plan"), form=form, fieldsets=fieldsets)
    return TemplateResponse(request, "admin/staff/simulation_form.html", context)


def simulation_detail(request, pk: int):
    _require(request, VIEW_PERMISSION)
    simulation = get_object_or_404(PlanSimulation.objects.select_related("created_by", "draft_plan"), pk=pk)
    is_pending = simulation.status in (PlanSimulation.Status.QUEUED, PlanSimulation.Status.RUNNING)
    context = _context(
        request,
        str(simulation),
        simulation=simulation,
        is_pending=is_pending,
        report=_report(simulation.result) if simulation.status == PlanSimulation.Status.DONE else None,
        overrides=_override_rows(simulation),
    )
    return TemplateResponse(request, "admin/staff/simulation_detail.html", context)


def _override_rows(simulation: PlanSimulation) -> list[tuple]:
    rows = []
    for name in PlanSimulationForm.POLICY_FIELDS:
        value = getattr(simulation, name)
        if value is None or value == "":
            continue
        if name == "self_purchase_earns":
            value = _("Yes") if value else _("No")
        elif name == "ineligible_share":
            value = CompliancePolicy.IneligibleShare(value).label
        rows.append((PlanSimulation._meta.get_field(name).verbose_name, value))
    return rows


def _percent(ratio: str) -> Decimal:
    return (Decimal(ratio) * 100).quantize(Decimal("0.01"))


def _report(result: dict | None) -> dict | None:
    """The stored result (amounts as strings) as Decimals and rows for the template."""
    if not result:
        return None
    actual, simulated = result["actual"], result["simulated"]
    levels = sorted({*actual["levels"], *simulated["levels"]}, key=int)
    level_rows = []
    for level in levels:
        paid = Decimal(actual["levels"].get(level, "0.00"))
        draft = Decimal(simulated["levels"].get(level, "0.00"))
        level_rows.append({"level": int(level), "actual": paid, "simulated": draft, "difference": draft - paid})

    def pair(key):
        paid, draft = Decimal(actual[key]), Decimal(simulated[key])
        return {"actual": paid, "simulated": draft, "difference": draft - paid}

    cap_rows = []
    for code in CAP_CODES:
        paid, draft = actual["capped"].get(code), simulated["capped"].get(code)
        if not paid or not draft:
            continue
        cap_rows.append(
            {
                "label": CAP_LABELS.get(code, code),
                "binds": bool(draft["lines"]),
                "actual_lines": paid["lines"],
                "simulated_lines": draft["lines"],
                "actual_withheld": Decimal(paid["withheld"]),
                "simulated_withheld": Decimal(draft["withheld"]),
            }
        )

    def members(rows):
        return [
            {"id": member_id, "label": label, "actual": Decimal(paid), "simulated": Decimal(draft),
             "difference": Decimal(delta)}
            for member_id, label, paid, draft, delta in rows
        ]  # fmt: skip

    actual_percent, simulated_percent = _percent(actual["ratio"]), _percent(simulated["ratio"])
    return {
        "lines": result["lines"],
        "members": result.get("members", 0),
        "net_sales": Decimal(result["net_sales"]),
        "levels": level_rows,
        "member_total": pair("member_total"),
        "platform": pair("platform"),
        "ratio": {
            "actual": actual_percent,
            "simulated": simulated_percent,
            "difference": simulated_percent - actual_percent,
        },
        "caps": cap_rows,
        "gainers": members(result["top_gainers"]),
        "losers": members(result["top_losers"]),
        "violations": result.get("violations", []),
        "historic_violations": result.get("historic_violations", []),
        "unmatched": result.get("unmatched", {}),
        "external": result.get("external", {}),  # absent from results stored before issue #12
    }


urlpatterns = [
    path("", admin.site.admin_view(simulation_list), name="simulation_list"),
    path("new/", admin.site.admin_view(simulation_create), name="simulation_create"),
    path("<int:pk>/", admin.site.admin_view(simulation_detail), name="simulation_detail"),
]
