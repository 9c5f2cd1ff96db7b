"""The fraud and risk rules (issue #25): small pure functions over small dataclasses, no database.

Each rule takes what is known (gathered in bulk by `commissions.services.risk`, or by payouts for the payout rule)
and the rule's staff-tunable setting (`commissions.RiskRule`: threshold and minimum) and returns a `Verdict`: flagged
or not, a score, and the evidence staff see in the review queue. Members never see a rule or its evidence.

The rules (docs/risk.md says how to tune them):

- `shared_identity` (order): the buyer and the sharer share a phone, an address, a payment account, a device cookie
  or a network address: a self-purchase through another account. Each shared signal weighs (phone, payment account
  and device 2, address and network 1, since families and offices share those); flagged at a total ≥ threshold.
- `many_accounts` (member): at least `threshold` members seen on one device cookie (ten times as many on one network
  address, which offices and carriers share).
- `click_spike` / `conversion_spike` (member): today's clicks (paid orders) are ≥ threshold × the member's own daily
  average over the days before, and at least `minimum`.
- `refund_after_commission` (member): of the member's orders that earned commission (at least `minimum`), the share
  refunded after the commission was released is ≥ threshold.
- `early_payout` (withdrawal): a withdrawal asked for fewer than `threshold` days after joining while every order
  that earned the member commission (at least one) was bought by the member themselves (shared identity).
- `coupon_far_from_audience` (member): of the member's coupon orders (at least `minimum`), the share whose buyer's
  region is not among the regions of the member's own link and shop buyers is ≥ threshold: a leaked code.
"""

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal

SHARED_IDENTITY = "shared_identity"
MANY_ACCOUNTS = "many_accounts"
CLICK_SPIKE = "click_spike"
CONVERSION_SPIKE = "conversion_spike"
REFUND_AFTER_COMMISSION = "refund_after_commission"
EARLY_PAYOUT = "early_payout"
COUPON_FAR = "coupon_far_from_audience"

ORDER_RULES = (SHARED_IDENTITY,)
MEMBER_RULES = (MANY_ACCOUNTS, CLICK_SPIKE, CONVERSION_SPIKE, REFUND_AFTER_COMMISSION, COUPON_FAR)
WITHDRAWAL_RULES = (EARLY_PAYOUT,)


@dataclass(frozen=True)
class Setting:
    """A rule's staff-tunable setting (a `RiskRule` row, or its default)."""

    threshold: Decimal
    minimum: int = 0
    is_enabled: bool = True


# The defaults the data migration seeds (and what a rule uses when its row is missing).
DEFAULTS: dict[str, Setting] = {
    SHARED_IDENTITY: Setting(Decimal("2"), 0),
    MANY_ACCOUNTS: Setting(Decimal("4"), 0),
    CLICK_SPIKE: Setting(Decimal("10"), 200),
    CONVERSION_SPIKE: Setting(Decimal("8"), 10),
    REFUND_AFTER_COMMISSION: Setting(Decimal("0.5"), 4),
    EARLY_PAYOUT: Setting(Decimal("14"), 0),
    COUPON_FAR: Setting(Decimal("0.8"), 10),
}


@dataclass(frozen=True)
class Verdict:
    rule: str
    is_flagged: bool
    score: Decimal
    evidence: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Identity:
    """What identifies a person: hashed or normalised values only (never a raw network address)."""

    phones: frozenset = frozenset()
    addresses: frozenset = frozenset()
    payment_accounts: frozenset = frozenset()
    devices: frozenset = frozenset()
    networks: frozenset = frozenset()


IDENTITY_WEIGHTS = {"phones": 2, "payment_accounts": 2, "devices": 2, "addresses": 1, "networks": 1}


def normalise_address(address: str) -> str:
    """An address compared with another: lower case, without spaces and punctuation."""
    return "".join(ch for ch in address.lower() if ch.isalnum())


def address_region(address: str) -> str:
    """The region of an address, for the coupon rule: its first word (a province, state or city), or its first four
    characters when it has no spaces (Chinese addresses: 广东省…)."""
    text = address.strip().lower()
    if not text:
        return ""
    first = text.split()[0].strip(",，")
    return first if " " in text else first[:4]


def shared_identity(*, buyer: Identity, sharer: Identity, setting: Setting) -> Verdict:
    shared = {
        kind: len(getattr(buyer, kind) & getattr(sharer, kind))
        for kind in IDENTITY_WEIGHTS
        if getattr(buyer, kind) & getattr(sharer, kind)
    }
    score = Decimal(sum(IDENTITY_WEIGHTS[kind] for kind in shared))
    return Verdict(
        SHARED_IDENTITY, setting.is_enabled and score >= setting.threshold, score, {"shared": sorted(shared)}
    )


# An office, a campus or a mobile carrier's shared address puts many honest people on one network address: a network
# counts as crowded only at NETWORK_CROWD_FACTOR times the threshold a device cookie needs.
NETWORK_CROWD_FACTOR = 10


def many_accounts(*, members_per_key: Mapping[str, int], setting: Setting) -> Verdict:
    """`members_per_key`: for each device cookie ("device:<hash>") or network address ("network:<hash>") the member
    was seen on, how many members were seen on it, the member included."""

    def needed(key: str) -> Decimal:
        return setting.threshold * (NETWORK_CROWD_FACTOR if key.startswith("network:") else 1)

    crowded = {key: count for key, count in members_per_key.items() if count >= needed(key)}
    most = max(crowded.values(), default=max(members_per_key.values(), default=0))
    on = sorted({key.split(":", 1)[0] for key in crowded})
    return Verdict(MANY_ACCOUNTS, setting.is_enabled and bool(crowded), Decimal(most), {"accounts": most, "on": on})


def activity_spike(*, rule: str, today: int, history: Iterable[int], setting: Setting) -> Verdict:
    """Today's count against the member's own daily average over `history` (the days before, zeros included)."""
    days = list(history)
    average = Decimal(sum(days)) / len(days) if days else Decimal(0)
    ratio = Decimal(today) / max(average, Decimal(1))
    flagged = setting.is_enabled and today >= setting.minimum and ratio >= setting.threshold
    evidence = {"today": today, "daily_average": str(average.quantize(Decimal("0.01"))), "days": len(days)}
    return Verdict(rule, flagged, ratio.quantize(Decimal("0.01")), evidence)


def refund_after_commission(*, commissioned_orders: int, refunded_after_release: int, setting: Setting) -> Verdict:
    rate = Decimal(refunded_after_release) / commissioned_orders if commissioned_orders else Decimal(0)
    flagged = setting.is_enabled and commissioned_orders >= setting.minimum and rate >= setting.threshold
    evidence = {"orders": commissioned_orders, "refunded_after_release": refunded_after_release}
    return Verdict(REFUND_AFTER_COMMISSION, flagged, rate.quantize(Decimal("0.0001")), evidence)


def early_payout(*, days_since_joining: int, commissioned_orders: int, self_bought_orders: int, setting: Setting):
    flagged = (
        setting.is_enabled
        and days_since_joining < setting.threshold
        and commissioned_orders >= 1
        and self_bought_orders >= commissioned_orders
    )
    evidence = {
        "days_since_joining": days_since_joining,
        "orders": commissioned_orders,
        "self_bought_orders": self_bought_orders,
    }
    return Verdict(EARLY_PAYOUT, flagged, Decimal(days_since_joining), evidence)


def coupon_far_from_audience(*, coupon_regions: Iterable[str], audience_regions: Iterable[str], setting: Setting):
    coupon = list(coupon_regions)
    audience = set(audience_regions)
    far = sum(1 for region in coupon if region not in audience)
    share = Decimal(far) / len(coupon) if coupon else Decimal(0)
    flagged = setting.is_enabled and len(coupon) >= max(setting.minimum, 1) and share >= setting.threshold
    evidence = {"coupon_orders": len(coupon), "outside_audience": far, "audience_regions": len(audience)}
    return Verdict(COUPON_FAR, flagged, share.quantize(Decimal("0.0001")), evidence)
