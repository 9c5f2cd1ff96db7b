"""The commission-plan simulator: what a draft plan (and draft policy) would have paid over a period (SPEC §7).

Staff pick draft rates, optional policy overrides and a date range. `plan_simulation_create` checks them and queues
`plan_simulation_run`, which replays every split line paid in the range through the same calculation code as the
real split (`line_pool` and `split_line`), next to what the ledger actually holds for those lines, and stores the
comparison on the `PlanSimulation` row. Nothing else is ever written: no entry, no split marker, no balance.

What is compared, line by line: the split as written when the order was paid (commission entries of level ≥ 1 and
the platform row, `refund` null) against the draft's split. Refunds, reversals and clawbacks are left out on both
sides. The draft policy of a line is the policy its real split used (`OrderSplit.policy`) with the overrides
applied; the chain is read now, from the parent links and the members' current status (the upline snapshot taken
at payment is not kept once an order is split), so if the tree or a member's status changed since, the draft is
priced on today's chain.

Sales reported by external affiliate networks (issue #12) are replayed too: every external line paid in the range
that is in the ledger, with its pool the commission the network reports, its net amount what the buyer paid, and the
upline kept in the line's split record at its first split (so both sides are priced on the same chain). What was
paid is the line's split with the network's later changes of the commission (adjustments) added, level by level. A
line the network reported invalid is left out on both sides (counted in `external.invalid_left_out`): nothing of it
was earned, and unlike a refund of ours there is no amount left to price.
"""

import logging
from collections import defaultdict
from datetime import date, datetime, time, timedelta
from decimal import Decimal, InvalidOperation
from functools import partial

from django.core.exceptions import NON_FIELD_ERRORS
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _
from kombu.exceptions import OperationalError

from commissions.calculations import (
    CAP_CODES,
    HARD_MAX_LEVELS,
    HARD_MAX_PAYOUT_RATIO,
    INELIGIBLE_SHARE_CHOICES,
    ChainMember,
    Plan,
    Policy,
    line_pool,
    payout_ratio_ceiling_message,
    plan_violations,
    split_line,
)
from commissions.models import CommissionEntry, CommissionPlan, CompliancePolicy, PlanSimulation
from commissions.selectors import policy_in_force
from commissions.services import POLICY_FIELDS, CommissionError
from core.money import RATE_ONE, RATE_ZERO, ROUND_DOWN, ROUND_HALF_UP, ZERO, quantize_money
from networks.models import ExternalOrder
from referrals.models import Member
from referrals.selectors import member_uplines
from shops.models import Order, OrderLine

logger = logging.getLogger(__name__)

__all__ = ["CHUNK_ORDERS", "TOP_MEMBERS", "plan_simulation_create", "plan_simulation_run"]

CHUNK_ORDERS = 2_000  # orders read per round trip; the progress bar moves once per chunk
TOP_MEMBERS = 20  # members listed as most affected, each way
_RATE_STEP = Decimal("0.0001")
_RATIO_STEP = Decimal("0.0001")
_RATE_FIELDS = ("level1_rate", "level2_rate", "level3_rate")

Status = PlanSimulation.Status
COMMISSION, PLATFORM = CommissionEntry.Kind.COMMISSION.value, CommissionEntry.Kind.PLATFORM.value
ADJUSTMENT = CommissionEntry.Kind.ADJUSTMENT.value


# --- Creating one ---------------------------------------------------------------------------------------------------


def _is_blank(value) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def _rate_or_error(value) -> tuple[Decimal | None, str | None]:
    """A typed rate as a Decimal, or why it is not one: a fraction 0..1 with at most 4 decimal places."""
    if isinstance(value, float | bool):
        # Money and rates never go through float (SPEC §3): "0.1" typed as a float is 0.1000000000000000055…
        return None, _("Enter the rate as a decimal fraction such as 0.1250.")
    try:
        rate = Decimal(value.strip() if isinstance(value, str) else value)
    except (InvalidOperation, TypeError, ValueError):
        return None, _("Enter the rate as a decimal fraction such as 0.1250.")
    if not rate.is_finite():
        return None, _("Enter the rate as a decimal fraction such as 0.1250.")
    if rate < RATE_ZERO or rate > RATE_ONE:
        return None, _("A rate is a fraction from 0 to 1 (0.1250 is 12.5 %).")
    if rate.quantize(_RATE_STEP) != rate:
        return None, _("A rate has at most 4 decimal places.")
    return rate.quantize(_RATE_STEP), None


def _clean_rates(rates, errors: dict) -> tuple[Decimal, ...]:
    values = list(rates)
    while values and _is_blank(values[-1]):
        values.pop()  # trailing blanks: those levels are simply not paid
    if not values:
        errors.setdefault("level1_rate", []).append(_("Enter at least the level 1 rate (the sharer)."))
        return ()
    if len(values) > HARD_MAX_LEVELS:
        errors.setdefault(NON_FIELD_ERRORS, []).append(
            _("At most %(max)d levels may ever be paid.") % {"max": HARD_MAX_LEVELS}
        )
        return ()
    cleaned = []
    for level, value in enumerate(values, start=1):
        field = _RATE_FIELDS[level - 1]
        if _is_blank(value):
            errors.setdefault(field, []).append(
                _("Level %(level)d is empty but a higher level is set: levels cannot skip one.") % {"level": level}
            )
            continue
        rate, problem = _rate_or_error(value)
        if problem:
            errors.setdefault(field, []).append(problem)
        else:
            cleaned.append(rate)
    return tuple(cleaned)


def _clean_overrides(overrides: dict, errors: dict) -> dict:
    """The overridden policy fields only (blank values mean "as in force"), checked as the policy form checks them."""
    unknown = set(overrides) - set(POLICY_FIELDS)
    if unknown:
        errors.setdefault(NON_FIELD_ERRORS, []).append(
            _("Unknown policy fields: %(fields)s") % {"fields": ", ".join(sorted(unknown))}
        )
    cleaned: dict = {}
    levels = overrides.get("max_levels")
    if not _is_blank(levels):
        try:
            if isinstance(levels, bool | float):
                raise TypeError
            levels = int(levels)
        except (TypeError, ValueError):
            errors.setdefault("max_levels", []).append(_("Enter a whole number of levels, 1 to 3."))
        else:
            if levels > HARD_MAX_LEVELS:
                errors.setdefault("max_levels", []).append(
                    _("At most %(max)d levels may ever be paid.") % {"max": HARD_MAX_LEVELS}
                )
            elif levels < 1:
                errors.setdefault("max_levels", []).append(_("Enter a whole number of levels, 1 to 3."))
            else:
                cleaned["max_levels"] = levels
    for name in ("max_total_rate", "max_payout_ratio"):
        value = overrides.get(name)
        if _is_blank(value):
            continue
        rate, problem = _rate_or_error(value)
        if problem:
            errors.setdefault(name, []).append(problem)
        elif name == "max_payout_ratio" and rate > HARD_MAX_PAYOUT_RATIO:
            errors.setdefault(name, []).append(payout_ratio_ceiling_message())
        else:
            cleaned[name] = rate
    earns = overrides.get("self_purchase_earns")
    if not _is_blank(earns):
        if isinstance(earns, bool):
            cleaned["self_purchase_earns"] = earns
        else:
            errors.setdefault("self_purchase_earns", []).append(_("Choose yes, no or as in force."))
    share = overrides.get("ineligible_share")
    if not _is_blank(share):
        if share in INELIGIBLE_SHARE_CHOICES:
            cleaned["ineligible_share"] = share
        else:
            errors.setdefault("ineligible_share", []).append(
                _("Choose what happens to an ineligible member's share, or as in force.")
            )
    return cleaned


def _clean_date(name: str, value, errors: dict) -> date | None:
    if isinstance(value, datetime):
        value = timezone.localtime(value).date() if timezone.is_aware(value) else value.date()
    elif isinstance(value, str):
        try:
            value = date.fromisoformat(value.strip())
        except ValueError:
            value = None
    if not isinstance(value, date):
        errors.setdefault(name, []).append(_("Enter a valid date."))
        return None
    return value


def plan_simulation_create(
    *,
    actor,
    name: str,
    rates,
    policy_overrides: dict,
    date_from,
    date_to,
    draft_plan: CommissionPlan | None = None,
) -> PlanSimulation:
    """Record a simulation and queue its run after commit; return it (status `queued`).

    `rates` are the draft's level rates (Decimals or strings, level 1 first; trailing blanks are dropped). With a
    `draft_plan` and no rates, the plan's rates are used; with both they must agree. `policy_overrides` holds the
    policy fields to change (blank or missing: the policy in force when each line was paid). The dates are
    inclusive, on the orders' payment time in the current time zone.

    Refused with a CommissionError whose messages are keyed by form field (nothing is written) for: a bad date or
    `date_from` after `date_to`; no rate, more than 3, a gap, a rate outside 0..1 or with more than 4 places; a
    `max_levels` override outside 1..3 (3 is the legal ceiling, SPEC §7); a `max_payout_ratio` override above 0.30
    (the legal ceiling too); any other bad override. A draft that
    merely breaks the policy is accepted: the run simulates it (the caps bind) and reports why it would be refused.
    """
    errors: dict[str, list[str]] = {}
    name = (name or "").strip()
    if len(name) > PlanSimulation._meta.get_field("name").max_length:
        errors.setdefault("name", []).append(_("The name is too long."))
    rates = [] if rates is None else list(rates)
    if draft_plan is not None and all(_is_blank(rate) for rate in rates):
        rates = list(draft_plan.rates)
    cleaned_rates = _clean_rates(rates, errors)
    if draft_plan is not None and cleaned_rates and cleaned_rates != tuple(draft_plan.rates):
        errors.setdefault("draft_plan", []).append(
            _("Either copy the rates of a plan or type them, not both: the typed rates differ from %(plan)s.")
            % {"plan": draft_plan}
        )
    overrides = _clean_overrides(dict(policy_overrides or {}), errors)
    start = _clean_date("date_from", date_from, errors)
    end = _clean_date("date_to", date_to, errors)
    if start and end and start > end:
        errors.setdefault("date_to", []).append(_("The end of the period is before its start."))
    if errors:
        raise CommissionError(errors, code="invalid_simulation")

    padded = (*cleaned_rates, None, None, None)[:HARD_MAX_LEVELS]
    with transaction.atomic():
        simulation = PlanSimulation.objects.create(
            name=name,
            draft_plan=draft_plan,
            level1_rate=padded[0],
            level2_rate=padded[1],
            level3_rate=padded[2],
            max_levels=overrides.get("max_levels"),
            max_total_rate=overrides.get("max_total_rate"),
            max_payout_ratio=overrides.get("max_payout_ratio"),
            self_purchase_earns=overrides.get("self_purchase_earns"),
            ineligible_share=overrides.get("ineligible_share", ""),
            date_from=start,
            date_to=end,
            created_by=actor if getattr(actor, "pk", None) else None,
        )
        transaction.on_commit(partial(_send_run, simulation.pk))
    return simulation


def _send_run(simulation_id: int) -> None:
    from commissions.tasks import plan_simulation_run_task

    try:
        plan_simulation_run_task.delay(simulation_id)
    except OperationalError:
        # The broker is down: say so on the page rather than leave it "queued" for ever.
        logger.exception("could not send the simulation task for simulation %s", simulation_id)
        PlanSimulation.objects.filter(pk=simulation_id, status=Status.QUEUED).update(
            status=Status.FAILED,
            error=_("The task queue could not be reached; nothing was simulated. Create the simulation again."),
            finished_at=timezone.now(),
        )


# --- Running one ----------------------------------------------------------------------------------------------------


def _overrides(simulation: PlanSimulation) -> dict:
    values = {name: getattr(simulation, name) for name in POLICY_FIELDS}
    return {name: value for name, value in values.items() if value is not None and value != ""}


def _draft_policy(policy: CompliancePolicy | None, overrides: dict) -> Policy:
    """The policy in force (or the SPEC defaults if there was none) with the draft's overrides applied."""
    base = {name: getattr(policy, name) for name in POLICY_FIELDS} if policy is not None else {}
    return Policy(**{**base, **overrides})


def _period(simulation: PlanSimulation) -> tuple[datetime, datetime]:
    """[start, end) of the inclusive date range, in the current time zone."""
    zone = timezone.get_current_timezone()
    start = timezone.make_aware(datetime.combine(simulation.date_from, time.min), zone)
    end = timezone.make_aware(datetime.combine(simulation.date_to + timedelta(days=1), time.min), zone)
    return start, end


class _Side:
    """Running totals of one side of the comparison (what was paid, or what the draft would pay)."""

    __slots__ = ("capped", "levels", "platform")

    def __init__(self) -> None:
        self.levels: dict[int, Decimal] = defaultdict(lambda: ZERO)
        self.platform = ZERO
        # cap code -> [lines, entries, amount paid on those entries, amount the cap held back]
        self.capped: dict[str, list] = {code: [0, 0, ZERO, ZERO] for code in CAP_CODES}

    def as_json(self, net_sales: Decimal) -> dict:
        member_total = sum(self.levels.values(), ZERO)
        return {
            "levels": {str(level): str(amount) for level, amount in sorted(self.levels.items())},
            "member_total": str(member_total),
            "platform": str(self.platform),
            "ratio": _ratio(member_total, net_sales),
            "capped": {
                code: {"lines": lines, "entries": entries, "amount": str(amount), "withheld": str(withheld)}
                for code, (lines, entries, amount, withheld) in self.capped.items()
            },
        }


def _ratio(part: Decimal, whole: Decimal) -> str:
    if not whole:
        return "0.0000"
    return str((part / whole).quantize(_RATIO_STEP, rounding=ROUND_HALF_UP))


def plan_simulation_run(*, simulation_id: int) -> None:
    """Replay the simulation's period with its draft and store the comparison on the row. Writes nothing else.

    Safe to call twice or concurrently: only a `queued` simulation is claimed (one conditional UPDATE), so a
    second call, or one for a simulation already running, done or failed, does nothing. Any error marks it
    `failed` with the error text (and is logged); it is never left `running` by an exception.
    """
    now = timezone.now()
    claimed = PlanSimulation.objects.filter(pk=simulation_id, status=Status.QUEUED).update(
        status=Status.RUNNING, started_at=now, lines_done=0, error=""
    )
    if not claimed:
        logger.info("simulation %s is not queued (already run, running or gone): nothing to do", simulation_id)
        return
    try:
        simulation = PlanSimulation.objects.get(pk=simulation_id)
        result = _replay(simulation)
    except Exception as error:
        logger.exception("simulation %s failed", simulation_id)
        PlanSimulation.objects.filter(pk=simulation_id, status=Status.RUNNING).update(
            status=Status.FAILED, error=f"{type(error).__name__}: {error}"[:5000], finished_at=timezone.now()
        )
        return
    PlanSimulation.objects.filter(pk=simulation_id, status=Status.RUNNING).update(
        status=Status.DONE,
        result=result,
        lines_total=result["lines"],
        lines_done=result["lines"],
        finished_at=timezone.now(),
    )


def _replay(simulation: PlanSimulation) -> dict:
    start, end = _period(simulation)
    overrides = _overrides(simulation)
    plan = Plan(rates=tuple(simulation.rates))
    in_range = Order.objects.filter(paid_at__gte=start, paid_at__lt=end, commission_split__isnull=False)
    external_in_range = ExternalOrder.objects.filter(paid_at__gte=start, paid_at__lt=end, split__revision__gte=1)
    external_lines = external_in_range.exclude(status=ExternalOrder.Status.INVALID)
    external_invalid = external_in_range.filter(status=ExternalOrder.Status.INVALID).count()
    lines_total = OrderLine.objects.filter(order__in=in_range.values("pk")).count() + external_lines.count()
    PlanSimulation.objects.filter(pk=simulation.pk).update(lines_total=lines_total)

    policies = {policy.pk: policy for policy in CompliancePolicy.objects.all()}
    draft_policies: dict[int | None, Policy] = {}  # historic policy id -> that policy with the overrides
    chains: dict[int | None, tuple[ChainMember, ...]] = {None: ()}
    actual, simulated = _Side(), _Side()
    members: dict[int, list[Decimal]] = {}  # member id -> [actual, simulated]
    net_sales = ZERO
    lines_done = 0
    no_version_lines = 0  # lines whose real split had no plan or policy in force (the platform kept the pool)
    no_entry_lines = 0  # split lines without any ledger row (should not happen)
    last_id = 0
    levels_simulated, capped_simulated = simulated.levels, simulated.capped

    def simulate(*, pool, net_amount, chain, policy_id, is_self_purchase) -> None:
        """What the draft would pay on one line, with the real calculation, added to the draft's side."""
        policy = draft_policies.get(policy_id)
        if policy is None:
            policy = draft_policies[policy_id] = _draft_policy(policies.get(policy_id), overrides)
        split = split_line(
            pool=pool,
            net_amount=net_amount,
            chain=chain,
            plan=plan,
            policy=policy,
            is_self_purchase=is_self_purchase,
        )
        simulated.platform += split.platform_remainder
        cap = capped_simulated[split.capped_by] if split.capped_by else None
        if cap is not None:
            cap[0] += 1
        for share in split.shares:
            amount = share.amount
            levels_simulated[share.level] += amount
            totals = members.get(share.member_id)
            if totals is None:
                totals = members[share.member_id] = [ZERO, ZERO]
            totals[1] += amount
            if cap is not None:
                cap[1] += 1
                cap[2] += amount
                cap[3] += quantize_money(pool * share.rate, ROUND_DOWN) - amount

    while True:
        orders = {
            pk: (sharer_id, is_self_purchase, plan_id, policy_id)
            for pk, sharer_id, is_self_purchase, plan_id, policy_id in in_range.filter(pk__gt=last_id)
            .order_by("pk")
            .values_list(
                "pk", "sharer_id", "is_self_purchase", "commission_split__plan_id", "commission_split__policy_id"
            )[:CHUNK_ORDERS]
        }
        if not orders:
            break
        order_ids = list(orders)
        last_id = order_ids[-1]

        unknown = {sharer for sharer, _self, _plan, _policy in orders.values() if sharer not in chains}
        if unknown:
            for sharer, links in member_uplines(unknown, HARD_MAX_LEVELS).items():
                chains[sharer] = tuple(ChainMember(member_id, eligible) for member_id, eligible in links)
            for sharer in unknown:
                chains.setdefault(sharer, ())  # a sharer that no longer exists: nobody to pay

        # What was paid: the split as written at payment time.
        paid_lines = set()
        levels_actual, capped_actual = actual.levels, actual.capped
        for line_id, kind, level, member_id, amount, base, rate, capped_by in (
            CommissionEntry.objects.filter(order_id__in=order_ids, refund__isnull=True, kind__in=[COMMISSION, PLATFORM])
            .values_list("order_line_id", "kind", "level", "beneficiary_id", "amount", "base", "rate", "capped_by")
            .order_by()
        ):
            if kind == PLATFORM:
                paid_lines.add(line_id)
                actual.platform += amount
                if capped_by:
                    capped_actual.setdefault(capped_by, [0, 0, ZERO, ZERO])[0] += 1
                continue
            if level < 1 or member_id is None:
                continue
            levels_actual[level] += amount
            totals = members.get(member_id)
            if totals is None:
                totals = members[member_id] = [ZERO, ZERO]
            totals[0] += amount
            if capped_by:
                cap = capped_actual.setdefault(capped_by, [0, 0, ZERO, ZERO])
                cap[1] += 1
                cap[2] += amount
                cap[3] += quantize_money(base * rate, ROUND_DOWN) - amount

        # What the draft would pay, line by line, with the real calculation.
        for line_id, order_id, net_amount, commission_rate, discount in (
            OrderLine.objects.filter(order_id__in=order_ids)
            .order_by()
            .values_list("pk", "order_id", "net_amount", "commission_rate", "discount")
        ):
            sharer_id, is_self_purchase, plan_id, policy_id = orders[order_id]
            net_sales += net_amount
            lines_done += 1
            if line_id not in paid_lines:
                no_entry_lines += 1
            if plan_id is None or policy_id is None:
                no_version_lines += 1
            simulate(
                pool=line_pool(net_amount, commission_rate, discount),
                net_amount=net_amount,
                chain=chains[sharer_id],
                policy_id=policy_id,
                is_self_purchase=is_self_purchase,
            )

        PlanSimulation.objects.filter(pk=simulation.pk).update(lines_done=lines_done)

    last_id = external_done = 0
    while True:
        lines = list(
            external_lines.filter(pk__gt=last_id)
            .order_by("pk")
            .values_list("pk", "paid_amount", "commission", "split__chain", "split__plan_id", "split__policy_id")[
                :CHUNK_ORDERS
            ]
        )
        if not lines:
            break
        last_id = lines[-1][0]

        # What was paid: each level's split plus the network's later changes, with the cap of the latest change.
        held: dict[tuple[int, int], list] = {}  # (line, level) -> [member id, amount, base, rate, capped_by]
        for line_id, level, member_id, amount, base, rate, capped_by in (
            CommissionEntry.objects.filter(
                external_line_id__in=[line[0] for line in lines], kind__in=[COMMISSION, PLATFORM, ADJUSTMENT]
            )
            .order_by("external_line_id", "level", "revision")
            .values_list("external_line_id", "level", "beneficiary_id", "amount", "base", "rate", "capped_by")
        ):
            row = held.get((line_id, level))
            if row is None:
                held[line_id, level] = [member_id, amount, base, rate, capped_by]
            else:
                row[1:] = [row[1] + amount, base, rate, capped_by]
        paid_lines = set()
        for (line_id, level), (member_id, amount, base, rate, capped_by) in held.items():
            if level == 0:
                paid_lines.add(line_id)
                actual.platform += amount
                if capped_by:
                    actual.capped.setdefault(capped_by, [0, 0, ZERO, ZERO])[0] += 1
                continue
            if member_id is None:
                continue
            actual.levels[level] += amount
            members.setdefault(member_id, [ZERO, ZERO])[0] += amount
            if capped_by:
                cap = actual.capped.setdefault(capped_by, [0, 0, ZERO, ZERO])
                cap[1] += 1
                cap[2] += amount
                cap[3] += quantize_money(base * rate, ROUND_DOWN) - amount

        for line_id, paid_amount, commission, chain, plan_id, policy_id in lines:
            net_sales += paid_amount
            lines_done += 1
            external_done += 1
            if line_id not in paid_lines:
                no_entry_lines += 1
            if plan_id is None or policy_id is None:
                no_version_lines += 1
            simulate(
                pool=commission,
                net_amount=paid_amount,
                # An upline's own sales, kept on some links, are not replayed: the draft has no qualification.
                chain=tuple(ChainMember(link[0], link[1]) for link in chain or []),
                policy_id=policy_id,
                is_self_purchase=False,
            )

        PlanSimulation.objects.filter(pk=simulation.pk).update(lines_done=lines_done)

    gainers, losers = _most_affected(members)
    violations_now, historic = _violations(plan, overrides, [pk for pk in draft_policies if pk is not None], policies)
    return {
        "lines": lines_done,
        "net_sales": str(net_sales),
        "actual": actual.as_json(net_sales),
        "simulated": simulated.as_json(net_sales),
        "members": len(members),
        "top_gainers": gainers,
        "top_losers": losers,
        "violations": violations_now,
        "historic_violations": historic,
        "unmatched": {"no_plan_or_policy": no_version_lines, "no_ledger_rows": no_entry_lines},
        "external": {"lines": external_done, "invalid_left_out": external_invalid},
        "rates": [str(rate) for rate in plan.rates],
        "overrides": {name: str(value) for name, value in overrides.items()},
    }


def _most_affected(members: dict[int, list[Decimal]]) -> tuple[list, list]:
    deltas = [(totals[1] - totals[0], member_id) for member_id, totals in members.items() if totals[1] != totals[0]]
    gainers = sorted((d for d in deltas if d[0] > 0), key=lambda d: (-d[0], d[1]))[:TOP_MEMBERS]
    losers = sorted((d for d in deltas if d[0] < 0), key=lambda d: (d[0], d[1]))[:TOP_MEMBERS]
    ids = [member_id for _delta, member_id in gainers + losers]
    labels = {member.pk: str(member) for member in Member.objects.filter(pk__in=ids).select_related("user")}

    def rows(picked):
        return [
            [member_id, labels.get(member_id, f"#{member_id}"), str(members[member_id][0]),
             str(members[member_id][1]), str(delta)]
            for delta, member_id in picked
        ]  # fmt: skip

    return rows(gainers), rows(losers)


def _violations(plan: Plan, overrides: dict, policy_ids: list[int], policies: dict) -> tuple[list[str], list[dict]]:
    """Why the draft could not be saved under the policy in force now (with the overrides), and under each policy
    that was in force during the period (with the overrides) that would also refuse it."""
    current = policy_in_force()
    now = plan_violations(plan, _draft_policy(current, overrides))
    if current is None:
        now = [_("There is no compliance policy yet."), *now]
    historic = []
    for policy_id in sorted(policy_ids, key=lambda pk: policies[pk].version):
        reasons = plan_violations(plan, _draft_policy(policies[policy_id], overrides))
        if reasons:
            historic.append({"policy": str(policies[policy_id]), "reasons": reasons})
    return now, historic
