"""The commission split for one order line (SPEC §3, §7): pure functions on Decimals and frozen dataclasses.

No ORM and no I/O: the services read the plan, the policy and the upline, call these, and write what they return.
Everything here can be tested without a database.

The rules, in the words a shop owner would use:

- The **pool** of a line is its net amount × its commission rate, rounded half-up to the cent (四舍五入).
- The **chain** is ``[sharer, sharer's sponsor, ...]``, nearest first. Only its first
  ``min(len(plan.rates), policy.max_levels, HARD_MAX_LEVELS)`` positions are ever considered, so nobody more than
  ``max_levels - 1`` links above the sharer is ever paid, whatever the plan or the chain say.
- Level ``k`` is planned to get ``pool × plan.rates[k]``; every member share is rounded **down** to the cent.
- A self-purchase earns nobody anything unless the policy allows it; then it is split as any other sale.
- Own-sales qualification (issue #25, off when ``upline_min_own_sales`` is 0): an upline (level 2 and up) earns on a
  downline's sale only if they made at least ``upline_min_own_sales`` own sales in the period before it (the service
  counts them, ``ChainMember.own_sales``). An unqualified upline is treated exactly like an ineligible member (below),
  so recruiting alone never earns anything; the sharer (level 1) is never asked, the sale is their own.
- An ineligible (inactive or suspended) member earns nothing. With ``ineligible_share="platform"`` (the default)
  their level's share stays with the platform and they get no ``Share``; with ``"roll_up"`` it goes to the next
  eligible member further up the considered positions (a ``Share`` with that level, that member and
  ``rolled_up_from`` set), or to the platform if there is none.
- Caps, applied again here even when the plan was validated (defence in depth): when the rates actually applied
  (those of the members who earn, after ineligible shares are withheld or rolled up and the chain is cut at
  ``max_levels``) add up to more than ``max_total_rate``, or the member shares, rounded down, would add up to more
  than ``max_payout_ratio × net``, every share is scaled by the same factor, the tightest one, then rounded down,
  and the cap that bound is recorded on the split and on every share. The payout cap's factor is
  ``(net × max_payout_ratio) / planned total`` with the cap exact, not first rounded down to the cent: rounding
  once, at the end, never pays a member a cent less than the cap allows (SPEC §7; net 10.05 at a 50 % commission
  rate under the default plan pays 3.01, not 3.00, of an exact cap of 3.015).
- ``max_payout_ratio`` never exceeds ``HARD_MAX_PAYOUT_RATIO`` (0.30), like ``max_levels`` never exceeds
  ``HARD_MAX_LEVELS``: a ``Policy`` above it cannot be built, and ``split_line`` caps at it whatever it is handed.
- Whatever rounding, caps, ineligible members or a missing upline leave over is the platform remainder, so
  ``sum(share amounts) + platform_remainder == pool`` exactly, always (``Split`` refuses to exist otherwise).

Refunds reverse commission proportionally to the refunded net amount, computed on the *cumulative* refunded
amount so that any number of partial refunds never reverse more than was paid and a full refund reverses exactly
what was paid (see ``reversal_amount``).

Arithmetic runs in a local context with 60 significant digits (products of amounts and rates stay exact) that
truncates, so an inexact division can only ever make a share smaller, never push it over a cap.
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal, localcontext
from typing import Protocol

from django.utils.translation import gettext as _

from core.money import RATE_ONE, RATE_ZERO, ROUND_DOWN, ROUND_HALF_UP, ZERO, quantize_money

__all__ = [
    "CAP_CODES",
    "CAP_MAX_PAYOUT_RATIO",
    "CAP_MAX_TOTAL_RATE",
    "HARD_MAX_LEVELS",
    "HARD_MAX_PAYOUT_RATIO",
    "INELIGIBLE_SHARE_CHOICES",
    "INELIGIBLE_SHARE_PLATFORM",
    "INELIGIBLE_SHARE_ROLL_UP",
    "ChainMember",
    "PaidShare",
    "Plan",
    "Policy",
    "Reversal",
    "Share",
    "Split",
    "line_pool",
    "payout_ratio_ceiling_message",
    "plan_violations",
    "proportional_amount",
    "refund_reversals",
    "reversal_amount",
    "split_line",
]

# In China three or more paid levels is the criminal threshold for 传销 (SPEC §7): no policy, form, API or direct
# call can configure more than this, and split_line never looks further up the chain even if handed a policy that
# somehow did.
HARD_MAX_LEVELS = 3

# All member shares of one line together never exceed 30 % of its net amount: the ceiling of China's 直销管理条例
# Art. 24, which the README promises (SPEC §7). Like HARD_MAX_LEVELS, no policy, form, API or direct call can
# configure more (the database refuses it too), and split_line never pays more even if handed a policy that did.
HARD_MAX_PAYOUT_RATIO = Decimal("0.3000")

INELIGIBLE_SHARE_PLATFORM = "platform"
INELIGIBLE_SHARE_ROLL_UP = "roll_up"
INELIGIBLE_SHARE_CHOICES = (INELIGIBLE_SHARE_PLATFORM, INELIGIBLE_SHARE_ROLL_UP)

CAP_MAX_TOTAL_RATE = "max_total_rate"
CAP_MAX_PAYOUT_RATIO = "max_payout_ratio"
CAP_CODES = (CAP_MAX_TOTAL_RATE, CAP_MAX_PAYOUT_RATIO)

DEFAULT_MAX_LEVELS = 2
DEFAULT_MAX_PAYOUT_RATIO = Decimal("0.3000")

_RATE_STEP = Decimal("0.0001")  # rates are stored with 4 places (SPEC §3)
_PRECISION = 60  # digits; enough for every product of an amount and a few rates to be exact


# --- validation helpers -------------------------------------------------------------------------------------------


def _require_decimal(name: str, value: object) -> Decimal:
    # Money never touches float; an int is refused too so a caller cannot pass 1 meaning "1 cent" or "100%".
    if not isinstance(value, Decimal):
        raise TypeError(f"{name} must be a Decimal, not {type(value).__name__}")
    if not value.is_finite():
        raise ValueError(f"{name} must be a finite number, not {value}")
    return value


def _require_money(name: str, value: object, *, allow_negative: bool = False) -> Decimal:
    amount = _require_decimal(name, value)
    if amount < 0 and not allow_negative:
        raise ValueError(f"{name} must not be negative, got {amount}")
    if quantize_money(amount) != amount:
        raise ValueError(f"{name} must be a whole number of cents, got {amount}")
    return amount


def _rate_problem(rate: Decimal) -> str | None:
    """Why a Decimal rate is not a valid stored rate (0..1, at most 4 places), or None."""
    if not rate.is_finite():
        return "is not a number"
    if rate < RATE_ZERO or rate > RATE_ONE:
        return "is outside 0 to 1"
    if rate.quantize(_RATE_STEP) != rate:
        return "has more than 4 decimal places"
    return None


def _rate_violation(level: int, rate: Decimal, problem: str) -> str:
    """`_rate_problem` as a whole sentence for staff: one msgid per problem, so no translation glues fragments."""
    sentences = {
        "is not a number": _("The level %(level)d rate %(rate)s is not a number."),
        "is outside 0 to 1": _("The level %(level)d rate %(rate)s is outside 0 to 1."),
        "has more than 4 decimal places": _("The level %(level)d rate %(rate)s has more than 4 decimal places."),
    }
    return sentences[problem] % {"level": level, "rate": rate}


def payout_ratio_ceiling_message() -> str:
    """The refusal staff read wherever a max payout ratio above HARD_MAX_PAYOUT_RATIO is typed (one msgid)."""
    return _(
        "The max payout ratio can be at most %(max)s (%(percent)s of a line's net amount): that is the legal "
        "ceiling, and no policy may pay members more."
    ) % {"max": f"{HARD_MAX_PAYOUT_RATIO:.2f}", "percent": f"{HARD_MAX_PAYOUT_RATIO * 100:.0f} %"}


def _require_rate(name: str, value: object) -> Decimal:
    rate = _require_decimal(name, value)
    problem = _rate_problem(rate)
    if problem:
        raise ValueError(f"{name} {rate} {problem}")
    return rate


def _require_int(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, not {type(value).__name__}")
    return value


def _floor_cents(amount: Decimal) -> Decimal:
    return quantize_money(amount, ROUND_DOWN)


def _exact_context():
    # Truncating, so that an inexact quotient errs towards paying less, never more.
    return localcontext(prec=_PRECISION, rounding=ROUND_DOWN)


# --- inputs -------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Policy:
    """The compliance caps in force when a line was paid (SPEC §7). Defaults are the SPEC's defaults.

    Constructing one outside the rules raises: ``max_levels`` must be 1..HARD_MAX_LEVELS (ValueError otherwise),
    the two ratios must be rates (Decimal, 0..1, at most 4 places), and ``max_payout_ratio`` at most
    HARD_MAX_PAYOUT_RATIO (ValueError otherwise).
    """

    max_levels: int = DEFAULT_MAX_LEVELS
    max_total_rate: Decimal = RATE_ONE
    max_payout_ratio: Decimal = DEFAULT_MAX_PAYOUT_RATIO
    self_purchase_earns: bool = False
    ineligible_share: str = INELIGIBLE_SHARE_PLATFORM
    # An upline (level >= 2) earns only with at least this many own sales in the period; 0: no qualification.
    upline_min_own_sales: int = 0

    def __post_init__(self) -> None:
        _require_int("max_levels", self.max_levels)
        if not 1 <= self.max_levels <= HARD_MAX_LEVELS:
            raise ValueError(f"max_levels must be between 1 and {HARD_MAX_LEVELS}, got {self.max_levels}")
        _require_rate("max_total_rate", self.max_total_rate)
        _require_rate("max_payout_ratio", self.max_payout_ratio)
        if self.max_payout_ratio > HARD_MAX_PAYOUT_RATIO:
            raise ValueError(f"max_payout_ratio must be at most {HARD_MAX_PAYOUT_RATIO}, got {self.max_payout_ratio}")
        if not isinstance(self.self_purchase_earns, bool):
            raise TypeError(f"self_purchase_earns must be a bool, not {type(self.self_purchase_earns).__name__}")
        if self.ineligible_share not in INELIGIBLE_SHARE_CHOICES:
            raise ValueError(
                f"ineligible_share must be one of {INELIGIBLE_SHARE_CHOICES}, got {self.ineligible_share!r}"
            )
        if _require_int("upline_min_own_sales", self.upline_min_own_sales) < 0:
            raise ValueError(f"upline_min_own_sales must not be negative, got {self.upline_min_own_sales}")


@dataclass(frozen=True)
class Plan:
    """One rate per level, each a fraction of the pool; ``rates[0]`` is level 1, the sharer.

    Construction only checks that the rates are finite Decimals (a list is turned into a tuple), so that a form can
    build a Plan from whatever staff typed and show every problem at once: ``plan_violations(plan, policy)`` says
    what is wrong. ``split_line`` refuses a plan whose rates are not valid rates (outside 0..1 or more than 4
    places) and caps one that merely breaks the policy.
    """

    rates: tuple[Decimal, ...]

    def __post_init__(self) -> None:
        rates = tuple(self.rates)
        for level, rate in enumerate(rates, start=1):
            _require_decimal(f"level {level} rate", rate)
        object.__setattr__(self, "rates", rates)

    @property
    def levels(self) -> int:
        return len(self.rates)

    @property
    def total_rate(self) -> Decimal:
        return sum(self.rates, RATE_ZERO)


def plan_violations(plan: Plan, policy: Policy) -> list[str]:
    """Human-readable reasons why ``plan`` may not be saved or activated under ``policy``; empty if it is legal.

    Also answers "would this policy change make the active plan illegal?": pass the proposed policy.
    """
    # Whole translatable sentences (gettext, not f-strings): staff read these on the plan and policy forms.
    violations = []
    if not plan.rates:
        violations.append(_("A plan needs at least one level."))
    if plan.levels > policy.max_levels:
        violations.append(
            _("The plan pays %(levels)d levels; the compliance policy allows at most %(max_levels)d.")
            % {"levels": plan.levels, "max_levels": policy.max_levels}
        )
    has_invalid_rate = False
    for level, rate in enumerate(plan.rates, start=1):
        problem = _rate_problem(rate)
        if problem:
            has_invalid_rate = True
            violations.append(_rate_violation(level, rate, problem))
    if not has_invalid_rate and plan.total_rate > policy.max_total_rate:
        violations.append(
            _(
                "The level rates add up to %(total_rate)s, more than the compliance policy's maximum total rate "
                "of %(max_total_rate)s."
            )
            % {"total_rate": plan.total_rate, "max_total_rate": policy.max_total_rate}
        )
    return violations


@dataclass(frozen=True)
class ChainMember:
    """One position of the chain: a member id and whether they may earn (active, not suspended).

    ``own_sales`` is how many own sales the member made in the qualification period before this sale; ``None``
    when nobody counted them, which ``split_line`` accepts only where the policy asks for no qualification (the
    sharer's position, or ``upline_min_own_sales == 0``): an uncounted upline never passes for a qualified one.
    """

    member_id: int
    is_eligible: bool
    own_sales: int | None = None


# --- outputs ------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Share:
    """One member's share of one line, at one level.

    ``rate`` is the plan rate of ``level``; ``amount`` is what is paid, after any cap (``capped_by`` says which
    one bound; the amount before it is ``pool × rate`` rounded down). ``rolled_up_from`` is the id of the
    ineligible member whose level this was, when the share rolled up to ``member_id``; ``None`` otherwise.
    """

    level: int
    member_id: int
    rate: Decimal
    amount: Decimal
    capped_by: str | None = None
    rolled_up_from: int | None = None

    def __post_init__(self) -> None:
        if _require_int("level", self.level) < 1:
            raise ValueError(f"level is 1-based, got {self.level}")
        _require_rate("rate", self.rate)
        _require_money("amount", self.amount)
        if self.capped_by is not None and self.capped_by not in CAP_CODES:
            raise ValueError(f"capped_by must be None or one of {CAP_CODES}, got {self.capped_by!r}")


@dataclass(frozen=True)
class Split:
    """How one line's pool is divided. It cannot be built unless ``sum(shares) + platform_remainder == pool``.

    ``shares`` are ordered by level, at most one per level. ``withheld_levels`` lists the levels whose share stayed
    with the platform because the member there was ineligible (and, under roll-up, nobody eligible was above them
    within the considered positions). ``unqualified_levels`` lists the levels whose member was an upline without
    the policy's own sales (their share was withheld or rolled up like an ineligible member's).
    """

    pool: Decimal
    shares: tuple[Share, ...]
    platform_remainder: Decimal
    capped_by: str | None = None
    withheld_levels: tuple[int, ...] = field(default=())
    unqualified_levels: tuple[int, ...] = field(default=())

    def __post_init__(self) -> None:
        object.__setattr__(self, "shares", tuple(self.shares))
        object.__setattr__(self, "withheld_levels", tuple(self.withheld_levels))
        object.__setattr__(self, "unqualified_levels", tuple(self.unqualified_levels))
        _require_money("pool", self.pool)
        _require_money("platform_remainder", self.platform_remainder)
        if self.capped_by is not None and self.capped_by not in CAP_CODES:
            raise ValueError(f"capped_by must be None or one of {CAP_CODES}, got {self.capped_by!r}")
        levels = [share.level for share in self.shares]
        if levels != sorted(set(levels)):
            raise ValueError(f"shares must have distinct levels in order, got {levels}")
        if self.member_total + self.platform_remainder != self.pool:
            raise ValueError(
                f"split does not reconcile: shares {self.member_total} + remainder {self.platform_remainder} "
                f"!= pool {self.pool}"
            )

    @property
    def member_total(self) -> Decimal:
        return sum((share.amount for share in self.shares), ZERO)


# --- the split ----------------------------------------------------------------------------------------------------


def line_pool(net_amount: Decimal, commission_rate: Decimal, discount: Decimal = ZERO) -> Decimal:
    """The platform commission on a line: net amount × commission rate, rounded half-up to the cent (四舍五入).

    ``discount`` is what a buyer's coupon code took off the line (issue #22). It is funded from the pool before the
    split: ``net_amount`` is what the buyer was charged, the list amount is ``net_amount + discount``, and the pool
    is the list amount's pool less the discount, so the platform keeps the same margin and the members share what
    is left. A discount larger than the list amount's pool is impossible here (ValueError): staff cannot set one
    (the policy refuses it) and checkout never grants one (the storefront works the discount out at checkout,
    ``shops.coupons.coupon_line_discount``, and records it on the line).
    """
    _require_money("net_amount", net_amount)
    _require_rate("commission_rate", commission_rate)
    _require_money("discount", discount)
    with _exact_context():
        pool = quantize_money((net_amount + discount) * commission_rate, ROUND_HALF_UP)
    if discount > pool:
        raise ValueError(f"discount {discount} is larger than the line's commission pool {pool}")
    return pool - discount


def split_line(
    *,
    pool: Decimal,
    net_amount: Decimal,
    chain: Sequence[ChainMember],
    plan: Plan,
    policy: Policy,
    is_self_purchase: bool = False,
    payout_cap_in_cents: bool = False,
) -> Split:
    """Divide one line's ``pool`` between the members of ``chain`` (nearest first) and the platform.

    ``pool`` is normally ``line_pool(net_amount, commission_rate)``; ``net_amount`` is the line's net amount, the
    base of ``max_payout_ratio``. Raises ValueError for an impossible input (negative or sub-cent amounts, a plan
    rate outside 0..1 or with more than 4 places, the same member twice in the chain: a corrupted tree must not pay
    anyone twice). A plan that merely breaks the policy is not refused here but capped.

    An eligible member at a considered position always gets a ``Share``, even one that rounds to 0.00 (so every
    entry explains itself; callers may skip writing zero amounts). An ineligible member never gets one.

    ``payout_cap_in_cents=True`` reproduces the rule before issue #19, which scaled a binding payout cap to
    ``net × max_payout_ratio`` first rounded down to the cent. It is for reading history only (the ledger checker
    recognises external lines split then); a new split never uses it.
    """
    _require_money("pool", pool)
    _require_money("net_amount", net_amount)
    for level, rate in enumerate(plan.rates, start=1):
        problem = _rate_problem(rate)
        if problem:
            raise ValueError(f"level {level} rate {rate} {problem}")
    member_ids = [member.member_id for member in chain]
    if len(member_ids) != len(set(member_ids)):
        raise ValueError(f"the chain has a member twice (a corrupted tree?): {member_ids}")

    if is_self_purchase and not policy.self_purchase_earns:
        return Split(pool=pool, shares=(), platform_remainder=pool)

    depth = min(len(plan.rates), policy.max_levels, HARD_MAX_LEVELS)
    considered = tuple(chain[:depth])
    unqualified_levels = [
        index + 1 for index, member in enumerate(considered) if not _is_qualified(index, member, policy)
    ]
    # An unqualified upline is an ineligible one: the same withholding or roll-up, the same platform line.
    may_earn = [member.is_eligible and index + 1 not in unqualified_levels for index, member in enumerate(considered)]

    # (level, beneficiary id, rolled-up-from id, rate) for every level somebody may earn.
    beneficiaries: list[tuple[int, int, int | None, Decimal]] = []
    withheld_levels: list[int] = []
    for index, member in enumerate(considered):
        level, rate = index + 1, plan.rates[index]
        if may_earn[index]:
            beneficiaries.append((level, member.member_id, None, rate))
            continue
        if policy.ineligible_share == INELIGIBLE_SHARE_ROLL_UP:
            # Only within the considered positions: never beyond max_levels - 1 links above the sharer.
            heir = next(
                (upper for offset, upper in enumerate(considered[index + 1 :], index + 1) if may_earn[offset]), None
            )
            if heir is not None:
                beneficiaries.append((level, heir.member_id, member.member_id, rate))
                continue
        withheld_levels.append(level)

    applied_rate = sum((rate for _, _, _, rate in beneficiaries), RATE_ZERO)
    capped_by = None
    with _exact_context():
        # A cap scales every share by the same factor numerator / denominator. Each amount is computed with one
        # division, exact whenever the true amount is a whole number of cents, so truncation cannot cost a cent.
        numerator = denominator = Decimal(1)
        if applied_rate > policy.max_total_rate:
            numerator, denominator = policy.max_total_rate, applied_rate
            capped_by = CAP_MAX_TOTAL_RATE
        amounts = [_floor_cents(pool * rate * numerator / denominator) for _, _, _, rate in beneficiaries]
        # Exact (a product of two exact Decimals): the shares are scaled to it and rounded down once, at the end.
        # The shares are whole cents, so they exceed the exact cap exactly when they exceed it rounded down.
        payout_limit = min(policy.max_payout_ratio, HARD_MAX_PAYOUT_RATIO) * net_amount
        if payout_cap_in_cents:
            payout_limit = _floor_cents(payout_limit)
        if sum(amounts, ZERO) > payout_limit:
            # Binding here means tighter than the rate cap (if that bound too): the factor is relative to the
            # unscaled rates, so it replaces the rate factor rather than compounding with it.
            numerator, denominator = payout_limit, pool * applied_rate
            capped_by = CAP_MAX_PAYOUT_RATIO
            amounts = [_floor_cents(pool * rate * numerator / denominator) for _, _, _, rate in beneficiaries]

    shares = tuple(
        Share(
            level=level,
            member_id=member_id,
            rate=rate,
            amount=amount,
            capped_by=capped_by,
            rolled_up_from=rolled_up_from,
        )
        for (level, member_id, rolled_up_from, rate), amount in zip(beneficiaries, amounts, strict=True)
    )
    member_total = sum(amounts, ZERO)
    return Split(
        pool=pool,
        shares=shares,
        platform_remainder=pool - member_total,
        capped_by=capped_by,
        withheld_levels=tuple(withheld_levels),
        unqualified_levels=tuple(unqualified_levels),
    )


def _is_qualified(index: int, member: ChainMember, policy: Policy) -> bool:
    """Whether the member at chain position `index` (0: the sharer) meets the policy's own-sales qualification."""
    if index == 0 or policy.upline_min_own_sales == 0:
        return True
    if member.own_sales is None:
        raise ValueError(
            f"the policy asks uplines for {policy.upline_min_own_sales} own sales, but member {member.member_id}'s "
            "were not counted"
        )
    return member.own_sales >= policy.upline_min_own_sales


# --- refunds ------------------------------------------------------------------------------------------------------


def proportional_amount(amount: Decimal, part: Decimal | int, whole: Decimal | int) -> Decimal:
    """``amount × part / whole``, rounded down (towards zero) to the cent; ``0 <= part <= whole``, ``whole > 0``.

    ``part`` / ``whole`` may be quantities (ints) or money (Decimals), e.g. refunded net / line net. ``part ==
    whole`` gives back ``amount`` exactly.
    """
    amount = _require_money("amount", amount, allow_negative=True)
    part_d = _fraction_term("part", part)
    whole_d = _fraction_term("whole", whole)
    if whole_d <= 0:
        raise ValueError(f"whole must be positive, got {whole}")
    if not 0 <= part_d <= whole_d:
        raise ValueError(f"part must be between 0 and whole ({whole}), got {part}")
    with _exact_context():
        return _floor_cents(amount * part_d / whole_d)


def _fraction_term(name: str, value: object) -> Decimal:
    if isinstance(value, int) and not isinstance(value, bool):
        return Decimal(value)
    return _require_decimal(name, value)


def reversal_amount(
    *,
    original_amount: Decimal,
    net_amount: Decimal,
    refunded_net_total: Decimal,
    already_reversed: Decimal = ZERO,
) -> Decimal:
    """How much of one commission entry to reverse (or claw back) now, as a positive amount.

    ``refunded_net_total`` is the line's *cumulative* refunded net amount, this refund included;
    ``already_reversed`` is what earlier refunds already reversed or clawed back from this entry (both kinds
    together, as positive amounts). The answer is ``round_down(original × refunded_net_total / net_amount) −
    already_reversed``: because the target is recomputed from the cumulative total each time, rounding never
    drifts, the running total never exceeds the original, and once the whole line is refunded exactly the
    original has been reversed. Rerunning with the same inputs after writing the result gives 0.

    Raises ValueError if the refunded total exceeds the net amount or went backwards (already reversed more than
    the new target), which would mean the caller passed a per-refund rather than cumulative amount.
    """
    original_amount = _require_money("original_amount", original_amount)
    net_amount = _require_money("net_amount", net_amount)
    refunded_net_total = _require_money("refunded_net_total", refunded_net_total)
    already_reversed = _require_money("already_reversed", already_reversed)
    if refunded_net_total > net_amount:
        raise ValueError(f"refunded net {refunded_net_total} exceeds the line's net amount {net_amount}")
    if already_reversed > original_amount:
        raise ValueError(f"already reversed {already_reversed} is more than the original {original_amount}")
    if refunded_net_total == ZERO or original_amount == ZERO:
        target = ZERO
    else:
        target = proportional_amount(original_amount, refunded_net_total, net_amount)
    if target < already_reversed:
        raise ValueError(
            f"already reversed {already_reversed} is more than {target}, the share of a cumulative refund of "
            f"{refunded_net_total}: pass the cumulative refunded net amount"
        )
    return target - already_reversed


class PaidShare(Protocol):
    """What ``refund_reversals`` needs of an original entry: a ``Share``, or anything shaped like one."""

    @property
    def level(self) -> int: ...

    @property
    def member_id(self) -> int: ...

    @property
    def amount(self) -> Decimal: ...


@dataclass(frozen=True)
class Reversal:
    """Reverse ``amount`` (positive; the ledger records it negated) of the level ``level`` entry of ``member_id``.

    Whether it is a ``reversal`` or a ``clawback`` depends on where the money is now: ``take_back`` books it.
    """

    level: int
    member_id: int
    amount: Decimal


def refund_reversals(
    *,
    shares: Sequence[PaidShare],
    net_amount: Decimal,
    refunded_net_total: Decimal,
    already_reversed: Mapping[int, Decimal] | None = None,
) -> tuple[Reversal, ...]:
    """Per-level amounts to reverse now for a (partial or full) refund of one line; see ``reversal_amount``.

    ``already_reversed`` maps level to what earlier refunds reversed or clawed back at that level. Levels with
    nothing (more) to reverse are left out, so a rerun after the first result was written returns ``()``.
    """
    already_reversed = already_reversed or {}
    levels = [share.level for share in shares]
    if len(levels) != len(set(levels)):
        raise ValueError(f"one original entry per level expected, got levels {levels}")
    reversals = []
    for share in sorted(shares, key=lambda share: share.level):
        amount = reversal_amount(
            original_amount=share.amount,
            net_amount=net_amount,
            refunded_net_total=refunded_net_total,
            already_reversed=already_reversed.get(share.level, ZERO),
        )
        if amount:
            reversals.append(Reversal(level=share.level, member_id=share.member_id, amount=amount))
    return tuple(reversals)


@dataclass(frozen=True)
class TakeBack:
    """Money taken back from one member's share of one line, booked by where it is now (``take_back``)."""

    reversed: Decimal  # off what is still on hold: a ``reversal`` entry, pending like what it reverses
    clawed_back: Decimal  # off what was released (available or paid out): a ``clawback`` entry, available at once
    pending_left: Decimal  # what stays on hold; at zero the share's pending entries leave the balances together


def take_back(amount: Decimal, *, pending: Decimal) -> TakeBack:
    """Book ``amount`` (positive) taken back from a member's share of one line, of which ``pending`` is still on
    hold: reversed from what is pending first, the rest clawed back from what was released.

    One rule for every way commission is taken back: a refund of our own sale (``refund_reversals`` says how
    much) and an external line its network reports invalid (all of it). A share is usually all pending or all
    released; an external line can hold both (a commission released, then more added by the network that waits
    for its hold), and clawing all of it back would leave the added part pending for ever, never released (its
    line is invalid) and never reversed. Raises ValueError on a negative amount or a fraction of a cent.
    """
    amount = _require_money("amount", amount)
    pending = _require_money("pending", pending, allow_negative=True)
    reversed_amount = min(amount, max(pending, ZERO))
    return TakeBack(
        reversed=reversed_amount, clawed_back=amount - reversed_amount, pending_left=pending - reversed_amount
    )
