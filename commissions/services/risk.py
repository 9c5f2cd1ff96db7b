"""Fraud and risk review (issue #25): scoring, holding and resolving suspicious commission.

- Scoring at the split: `risk_score_orders` runs the order rules on the orders a split run has just written, on
  data read in bulk (five queries a batch, whatever its size) and flags them in the same transaction, so the entries
  and their hold commit together.
- The nightly re-score: `risk_rescore_members` runs the member rules over every member with aggregate queries.
- Holding: an open flag holds money without touching the ledger. `held_entries` is the filter the release
  (`commissions.services.release`) leaves out: the pending entries of a flagged order, and every pending entry of a
  flagged member. A withdrawal flag holds the withdrawal's approval (payouts/risk.py).
- Resolving: `risk_flag_resolve` releases (the flag is dismissed; the entries are released by the next release run
  once their hold period has passed), reverses (the held entries are reversed in the ledger, like a refund before
  release) or bans (payouts/risk.py: the member's pending commission reversed, shop closed, membership suspended,
  withdrawals stopped). Each needs a reason and writes a `RiskEvent`; resolving a resolved flag changes nothing.
"""

from collections import defaultdict
from datetime import timedelta
from decimal import Decimal

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Count, Q, Sum
from django.db.models.functions import TruncDate
from django.utils import timezone
from django.utils.translation import gettext as _

from commissions import risk
from commissions.holds import held_entries  # noqa: F401 - importable here too
from commissions.locks import risk_flag_lock
from commissions.models import CommissionEntry, RiskEvent, RiskFlag, RiskRule, RiskSighting
from commissions.services.announce import EntryChanges
from core.money import ZERO
from referrals.models import Member
from referrals.services import member_set_status
from shops.locks import orders_lock
from shops.models import Order, ShareLinkDailyStat, Shop
from shops.services import shop_update

Entry = CommissionEntry
Flag = RiskFlag

SPIKE_HISTORY_DAYS = 28  # the member's own history a spike is measured against
REFUND_WINDOW_DAYS = 90  # orders the refund and coupon rules look at
REFLAG_AFTER_DAYS = 30  # a member flagged by a rule is not flagged by it again sooner (dismissed or not)
RESCORE_CHUNK = 5000  # flags inserted per statement


class RiskError(ValidationError):
    pass


def risk_settings() -> dict[str, risk.Setting]:
    """Every rule's setting (one query): its row, or its default when the row is missing."""
    found = {rule.code: rule.as_setting() for rule in RiskRule.objects.all()}
    return {code: found.get(code, default) for code, default in risk.DEFAULTS.items()}


@transaction.atomic
def risk_rule_update(*, rule: RiskRule, actor, reason: str, **fields) -> RiskRule:
    """Change a rule's setting (enabled, threshold, minimum) with a reason; the before and after in a RiskEvent."""
    reason = _reason(reason)
    allowed = {"is_enabled", "threshold", "minimum"}
    if set(fields) - allowed:
        raise ValueError(f"risk_rule_update cannot change {sorted(set(fields) - allowed)}")
    before = RiskRule.objects.get(pk=rule.pk)
    for name, value in fields.items():
        setattr(rule, name, value)
    rule.updated_at, rule.updated_by = timezone.now(), actor
    rule.full_clean()
    rule.save()
    RiskEvent.objects.create(
        kind=RiskEvent.Kind.RULE_CHANGED,
        rule=rule,
        actor=actor,
        reason=reason,
        detail={
            "before": {name: str(getattr(before, name)) for name in sorted(allowed)},
            "after": {name: str(getattr(rule, name)) for name in sorted(allowed)},
        },
    )
    return rule


# --- Sightings -------------------------------------------------------------------------------------------------


def risk_sighting_record(*, member_id: int, network_key: str = "", device_key: str = "", now=None) -> None:
    """Remember that the member signed in on this network and device (hashed keys). Idempotent."""
    now = now or timezone.now()
    keys = [(RiskSighting.Kind.NETWORK, network_key), (RiskSighting.Kind.DEVICE, device_key)]
    for kind, key in keys:
        if not key:
            continue
        if not RiskSighting.objects.filter(member_id=member_id, kind=kind, key=key).update(last_seen=now):
            RiskSighting.objects.bulk_create(
                [RiskSighting(member_id=member_id, kind=kind, key=key, first_seen=now, last_seen=now)],
                ignore_conflicts=True,
            )


# --- Scoring at the split --------------------------------------------------------------------------------------


def risk_score_orders(order_ids, *, now=None) -> int:
    """Run the order rules on these orders (just split, their rows locked by the caller); flag the ones that match.
    Returns how many orders the rules flag. Idempotent: an order is flagged once per rule (a unique constraint), so
    scoring again writes nothing new."""
    setting = risk_settings()[risk.SHARED_IDENTITY]
    if not setting.is_enabled or not order_ids:
        return 0
    now = now or timezone.now()
    orders = list(
        Order.objects.filter(pk__in=order_ids, sharer__isnull=False, is_self_purchase=False).values_list(
            "pk", "sharer_id", "buyer_phone", "shipping_address", "device_key", "network_key"
        )
    )
    if not orders:
        return 0
    identities = member_identities({sharer_id for _pk, sharer_id, *_rest in orders})
    flags = []
    for pk, sharer_id, phone, address, device, network in orders:
        buyer = risk.Identity(
            phones=frozenset([phone] if phone else []),
            addresses=frozenset([risk.normalise_address(address)] if address else []),
            devices=frozenset([device] if device else []),
            networks=frozenset([network] if network else []),
        )
        verdict = risk.shared_identity(buyer=buyer, sharer=identities.get(sharer_id, risk.Identity()), setting=setting)
        if verdict.is_flagged:
            flags.append(_flag(Flag.Subject.ORDER, verdict, member_id=sharer_id, order_id=pk, now=now))
    Flag.objects.bulk_create(flags, ignore_conflicts=True)
    return len(flags)


def member_identities(member_ids) -> dict[int, risk.Identity]:
    """What identifies each member (three queries for all): their phone, the addresses they had orders sent to
    when signed in, and the devices and networks they signed in on."""
    member_ids = list(member_ids)
    people = Member.objects.filter(pk__in=member_ids).values_list("pk", "user_id", "user__phone")
    member_of_user, phones = {}, {}
    for member_id, user_id, phone in people:
        member_of_user[user_id], phones[member_id] = member_id, phone
    addresses, devices, networks = defaultdict(set), defaultdict(set), defaultdict(set)
    own_orders = Order.objects.filter(buyer_user_id__in=list(member_of_user)).values_list(
        "buyer_user_id", "shipping_address"
    )
    for user_id, address in own_orders.order_by().distinct():  # no ordering: it would join the DISTINCT
        addresses[member_of_user[user_id]].add(risk.normalise_address(address))
    for member_id, kind, key in RiskSighting.objects.filter(member_id__in=member_ids).values_list(
        "member_id", "kind", "key"
    ):
        (devices if kind == RiskSighting.Kind.DEVICE else networks)[member_id].add(key)
    return {
        member_id: risk.Identity(
            phones=frozenset([phones[member_id]] if phones.get(member_id) else []),
            addresses=frozenset(addresses[member_id]),
            devices=frozenset(devices[member_id]),
            networks=frozenset(networks[member_id]),
        )
        for member_id in member_ids
    }


def _flag(subject: str, verdict: risk.Verdict, *, member_id: int, now, order_id=None, withdrawal_id=None) -> Flag:
    return Flag(
        subject=subject,
        rule=verdict.rule,
        member_id=member_id,
        order_id=order_id,
        withdrawal_id=withdrawal_id,
        score=verdict.score,
        evidence=verdict.evidence,
        created_at=now,
    )


# --- The payout rule (called by payouts when a withdrawal is asked for) ----------------------------------------


def risk_score_withdrawal(*, member: Member, withdrawal_id: int, now=None) -> Flag | None:
    """Run the payout rule on a withdrawal just asked for; the flag (which holds its approval), or None."""
    setting = risk_settings()[risk.EARLY_PAYOUT]
    if not setting.is_enabled:
        return None
    now = now or timezone.now()
    commissioned = set(
        Entry.objects.filter(beneficiary=member, kind=Entry.Kind.COMMISSION, amount__gt=0, order__isnull=False)
        .values_list("order_id", flat=True)
        .distinct()
    )
    self_bought = set(
        Order.objects.filter(pk__in=commissioned, is_self_purchase=True).values_list("pk", flat=True)
    ) | set(
        Flag.objects.filter(subject=Flag.Subject.ORDER, rule=risk.SHARED_IDENTITY, order_id__in=commissioned)
        .exclude(status=Flag.Status.DISMISSED)
        .values_list("order_id", flat=True)
    )
    verdict = risk.early_payout(
        days_since_joining=(now - member.joined_at).days,
        commissioned_orders=len(commissioned),
        self_bought_orders=len(self_bought),
        setting=setting,
    )
    if not verdict.is_flagged:
        return None
    flag = _flag(Flag.Subject.WITHDRAWAL, verdict, member_id=member.pk, withdrawal_id=withdrawal_id, now=now)
    Flag.objects.bulk_create([flag], ignore_conflicts=True)
    return Flag.objects.filter(subject=Flag.Subject.WITHDRAWAL, withdrawal_id=withdrawal_id).first()


def withdrawal_is_held(withdrawal_id: int) -> bool:
    return Flag.objects.filter(
        subject=Flag.Subject.WITHDRAWAL, withdrawal_id=withdrawal_id, status=Flag.Status.OPEN
    ).exists()


# --- The nightly re-score --------------------------------------------------------------------------------------


def risk_rescore_members(*, now=None) -> dict[str, int]:
    """Run the member rules over every member (aggregate queries, no query per member); flag the ones that match and
    were not flagged by the same rule in the last REFLAG_AFTER_DAYS days. Returns the new flags per rule.

    Safe to run twice or concurrently: a member has at most one open flag per rule (a unique constraint)."""
    now = now or timezone.now()
    settings_ = risk_settings()
    verdicts: dict[str, dict[int, risk.Verdict]] = {}
    for rule, rescore in (
        (risk.MANY_ACCOUNTS, _rescore_many_accounts),
        (risk.CLICK_SPIKE, _rescore_click_spike),
        (risk.CONVERSION_SPIKE, _rescore_conversion_spike),
        (risk.REFUND_AFTER_COMMISSION, _rescore_refunds),
        (risk.COUPON_FAR, _rescore_coupons),
    ):
        setting = settings_[rule]
        verdicts[rule] = rescore(setting, now) if setting.is_enabled else {}
    written = {}
    since = now - timedelta(days=REFLAG_AFTER_DAYS)
    for rule, found in verdicts.items():
        recent = set(
            Flag.objects.filter(subject=Flag.Subject.MEMBER, rule=rule, created_at__gte=since).values_list(
                "member_id", flat=True
            )
        ) | set(
            Flag.objects.filter(subject=Flag.Subject.MEMBER, rule=rule, status=Flag.Status.OPEN).values_list(
                "member_id", flat=True
            )
        )
        flags = [
            _flag(Flag.Subject.MEMBER, verdict, member_id=member_id, now=now)
            for member_id, verdict in sorted(found.items())
            if verdict.is_flagged and member_id not in recent
        ]
        Flag.objects.bulk_create(flags, batch_size=RESCORE_CHUNK, ignore_conflicts=True)
        written[rule] = len(flags)
    return written


def _rescore_many_accounts(setting: risk.Setting, now) -> dict[int, risk.Verdict]:
    crowded = {
        (kind, key): count
        for kind, key, count in RiskSighting.objects.values_list("kind", "key")
        .annotate(members=Count("member_id", distinct=True))
        .filter(members__gte=setting.threshold)
        .values_list("kind", "key", "members")
        .order_by()
    }
    if not crowded:
        return {}
    per_member = defaultdict(dict)
    keys = Q()
    for kind, key in crowded:
        keys |= Q(kind=kind, key=key)
    for member_id, kind, key in RiskSighting.objects.filter(keys).values_list("member_id", "kind", "key").iterator():
        per_member[member_id][f"{kind}:{key}"] = crowded[(kind, key)]
    return {
        member_id: risk.many_accounts(members_per_key=counts, setting=setting)
        for member_id, counts in per_member.items()
    }


def _daily_counts(rows, today) -> dict[int, tuple[int, list[int]]]:
    """{member: (count on `today`, [counts of the SPIKE_HISTORY_DAYS days before, zeros included])}."""
    days = defaultdict(dict)
    for member_id, day, count in rows:
        days[member_id][day] = count or 0
    history = [today - timedelta(days=n) for n in range(1, SPIKE_HISTORY_DAYS + 1)]
    return {
        member_id: (counts.get(today, 0), [counts.get(day, 0) for day in history])
        for member_id, counts in days.items()
        if counts.get(today, 0)
    }


def _last_full_day(now):
    return timezone.localdate(now) - timedelta(days=1)


def _rescore_click_spike(setting: risk.Setting, now) -> dict[int, risk.Verdict]:
    today = _last_full_day(now)
    busy = (
        ShareLinkDailyStat.objects.filter(day=today)
        .values("link__owner_id")
        .annotate(clicks=Sum("clicks"))
        .filter(clicks__gte=max(setting.minimum, 1))
        .values_list("link__owner_id", flat=True)
    )
    rows = (
        ShareLinkDailyStat.objects.filter(
            day__gte=today - timedelta(days=SPIKE_HISTORY_DAYS), day__lte=today, link__owner_id__in=busy
        )
        .values_list("link__owner_id", "day")
        .annotate(clicks=Sum("clicks"))
        .order_by()
    )
    return {
        member_id: risk.activity_spike(rule=risk.CLICK_SPIKE, today=count, history=history, setting=setting)
        for member_id, (count, history) in _daily_counts(rows, today).items()
    }


def _rescore_conversion_spike(setting: risk.Setting, now) -> dict[int, risk.Verdict]:
    today = _last_full_day(now)
    start = timezone.make_aware(
        timezone.datetime.combine(today - timedelta(days=SPIKE_HISTORY_DAYS), timezone.datetime.min.time())
    )
    rows = (
        Order.objects.filter(paid_at__gte=start, paid_at__lt=start + timedelta(days=SPIKE_HISTORY_DAYS + 1))
        .filter(sharer__isnull=False, is_self_purchase=False)
        .annotate(day=TruncDate("paid_at"))
        .values_list("sharer_id", "day")
        .annotate(orders=Count("pk"))
        .order_by()
    )
    return {
        member_id: risk.activity_spike(rule=risk.CONVERSION_SPIKE, today=count, history=history, setting=setting)
        for member_id, (count, history) in _daily_counts(rows, today).items()
        if count >= setting.minimum
    }


def _rescore_refunds(setting: risk.Setting, now) -> dict[int, risk.Verdict]:
    since = now - timedelta(days=REFUND_WINDOW_DAYS)
    rows = (
        Entry.objects.filter(level=1, order__isnull=False, created_at__gte=since)
        .values_list("beneficiary_id")
        .annotate(
            orders=Count("order_id", distinct=True, filter=Q(kind=Entry.Kind.COMMISSION, amount__gt=0)),
            clawed=Count("order_id", distinct=True, filter=Q(kind=Entry.Kind.CLAWBACK)),
        )
        .filter(clawed__gt=0, orders__gte=max(setting.minimum, 1))
        .order_by()
    )
    return {
        member_id: risk.refund_after_commission(
            commissioned_orders=orders, refunded_after_release=clawed, setting=setting
        )
        for member_id, orders, clawed in rows
    }


def _rescore_coupons(setting: risk.Setting, now) -> dict[int, risk.Verdict]:
    since = now - timedelta(days=REFUND_WINDOW_DAYS)
    recent = Order.objects.filter(paid_at__gte=since, sharer__isnull=False)
    users = (
        recent.filter(attribution=Order.Attribution.COUPON)
        .values_list("sharer_id")
        .annotate(n=Count("pk"))
        .filter(n__gte=max(setting.minimum, 1))
        .values_list("sharer_id", flat=True)
    )
    coupon, audience = defaultdict(list), defaultdict(set)
    for sharer_id, attribution, address in recent.filter(sharer_id__in=users).values_list(
        "sharer_id", "attribution", "shipping_address"
    ):
        region = risk.address_region(address)
        if attribution == Order.Attribution.COUPON:
            coupon[sharer_id].append(region)
        else:
            audience[sharer_id].add(region)
    return {
        member_id: risk.coupon_far_from_audience(
            coupon_regions=regions, audience_regions=audience[member_id], setting=setting
        )
        for member_id, regions in coupon.items()
    }


# --- Resolving -------------------------------------------------------------------------------------------------

RELEASE, REVERSE, BAN = "release", "reverse", "ban"


def _reason(reason: str) -> str:
    reason = (reason or "").strip()
    if not reason:
        raise RiskError({"reason": [_("Give a reason.")]}, code="reason_required")
    return reason


def risk_flag_resolve(*, flag: Flag, action: str, actor, reason: str) -> Flag:
    """Release (dismiss) or reverse (confirm) an open flag, with a reason; a RiskEvent records it.

    Reverse: the entries the flag holds (an order's pending entries, or a member's pending entries for a member
    flag) are reversed in the ledger, as a refund before release reverses them. A withdrawal flag's withdrawal is
    the caller's (payouts/risk.py), which calls this in its own transaction. Atomic; the orders, then the flag, are
    locked; a flag that is no longer open is returned unchanged (resolving twice changes nothing the second time).
    """
    if action not in (RELEASE, REVERSE):
        raise RiskError(_("Unknown action."), code="bad_action")
    reason = _reason(reason)
    with transaction.atomic():
        entries = _held_by(flag) if action == REVERSE else None
        if entries is not None:
            orders_lock(Order.objects.filter(pk__in=entries.values("order_id")), "pk", flat=True)
        flag = risk_flag_lock(flag.pk)
        if flag.status != Flag.Status.OPEN:
            return flag
        amount = _reverse_entries(_held_by(flag), note="reversed after review") if entries is not None else None
        status = Flag.Status.CONFIRMED if action == REVERSE else Flag.Status.DISMISSED
        resolution = Flag.Resolution.REVERSED if action == REVERSE else Flag.Resolution.RELEASED
        _resolve(flag, status, resolution, actor, reason)
        RiskEvent.objects.create(
            kind=RiskEvent.Kind.REVERSED if action == REVERSE else RiskEvent.Kind.RELEASED,
            flag=flag,
            member_id=flag.member_id,
            actor=actor,
            reason=reason,
            amount=amount,
            detail={"rule": flag.rule, "subject": flag.subject, "subject_id": flag.subject_id},
        )
    return flag


def risk_member_ban(*, member: Member, actor, reason: str, flag: Flag | None = None) -> RiskEvent | None:
    """Ban a member: suspend the membership (no new withdrawals, no commission on new sales), close their shop,
    reverse all their pending commission, and confirm every open flag of theirs. The caller (payouts/risk.py) stops
    their withdrawals in the same transaction. Idempotent: banning a suspended member with no pending commission and
    no open flag writes nothing and returns None."""
    reason = _reason(reason)
    with transaction.atomic():
        was_suspended = Member.objects.filter(pk=member.pk, status=Member.Status.SUSPENDED).exists()
        member_set_status(member=member, status=Member.Status.SUSPENDED, actor=actor, reason=reason)
        shop = Shop.objects.filter(owner=member, is_open=True).first()
        if shop is not None:
            shop_update(shop=shop, is_open=False)
        flagged_orders = list(
            Flag.objects.filter(member=member, status=Flag.Status.OPEN, subject=Flag.Subject.ORDER).values_list(
                "order_id", flat=True
            )
        )
        pending = _pending_of_member(member.pk, flagged_orders)
        orders_lock(Order.objects.filter(pk__in=pending.values("order_id")), "pk", flat=True)
        open_flags = list(Flag.objects.filter(member=member, status=Flag.Status.OPEN).values_list("pk", flat=True))
        amount = _reverse_entries(_pending_of_member(member.pk, flagged_orders), note="reversed after review")
        for flag_id in open_flags:
            _resolve(risk_flag_lock(flag_id), Flag.Status.CONFIRMED, Flag.Resolution.BANNED, actor, reason)
        member.status = Member.Status.SUSPENDED
        if not amount and not open_flags and shop is None and was_suspended:
            return None
        return RiskEvent.objects.create(
            kind=RiskEvent.Kind.BANNED,
            flag=flag,
            member=member,
            actor=actor,
            reason=reason,
            amount=amount,
            detail={"flags": open_flags, "shop_closed": shop.pk if shop else None},
        )


def _resolve(flag: Flag, status: str, resolution: str, actor, reason: str) -> None:
    flag.status, flag.resolution = status, resolution
    flag.resolved_at, flag.resolved_by, flag.reason = timezone.now(), actor, reason
    flag.save(update_fields=["status", "resolution", "resolved_at", "resolved_by", "reason"])


def _pending_of_member(member_id: int, flagged_orders: list[int]):
    """A banned member's pending commission, and every level's on the orders flagged against them (their upline's
    share of a self-purchase is not earned either)."""
    return Entry.objects.filter(
        Q(beneficiary_id=member_id) | Q(order_id__in=flagged_orders, level__gte=1),
        status=Entry.Status.PENDING,
        kind=Entry.Kind.COMMISSION,
        order_line__isnull=False,
    )


def _held_by(flag: Flag):
    """The pending commission entries (of our own orders) a flag holds."""
    pending = Entry.objects.filter(status=Entry.Status.PENDING, kind=Entry.Kind.COMMISSION, order_line__isnull=False)
    if flag.subject == Flag.Subject.ORDER:
        return pending.filter(order_id=flag.order_id, level__gte=1)
    if flag.subject == Flag.Subject.MEMBER:
        return pending.filter(beneficiary_id=flag.member_id)
    return pending.none()


def _reverse_entries(originals, *, note: str):
    """Reverse pending commission entries (their orders locked by the caller): for each, a reversal of what is still
    on hold (the original less the reversals refunds wrote), then the original and its reversals leave the balances
    together (status reversed), as a refund in full before release does. The reversal's key (line, level, kind, no
    refund) is unique, so this happens once. Returns the amount reversed (None when nothing was)."""
    now = timezone.now()
    changes = EntryChanges()
    total = ZERO
    for original in originals.filter(amount__gt=0).order_by("pk"):
        siblings = Entry.objects.filter(
            order_line_id=original.order_line_id, level=original.level, status=Entry.Status.PENDING
        )
        on_hold = original.amount + (
            siblings.filter(kind=Entry.Kind.REVERSAL).aggregate(total=Sum("amount"))["total"] or ZERO
        )
        if (
            on_hold > ZERO
            and not Entry.objects.filter(
                order_line_id=original.order_line_id,
                level=original.level,
                kind=Entry.Kind.REVERSAL,
                refund__isnull=True,
            ).exists()
        ):
            reversal = Entry.objects.create(
                order_id=original.order_id,
                order_line_id=original.order_line_id,
                beneficiary_id=original.beneficiary_id,
                level=original.level,
                kind=Entry.Kind.REVERSAL,
                base=original.base,
                rate=original.rate,
                amount=-on_hold,
                plan_id=original.plan_id,
                policy_id=original.policy_id,
                status=Entry.Status.REVERSED,
                reversed_at=now,
                note=note,
            )
            changes.created.append(reversal.pk)
            total += on_hold
        voided = list(siblings.values_list("pk", flat=True))
        Entry.objects.filter(pk__in=voided).update(status=Entry.Status.REVERSED, reversed_at=now)
        changes.reversed.extend(voided)
    changes.announce()
    return total or None


# --- Reads for the back office and the member's pages ----------------------------------------------------------


def risk_rule_metrics() -> list[dict]:
    """Per rule: flags raised, confirmed, dismissed, open, and the dismissal rate (dismissed of resolved)."""
    counts = {
        row["rule"]: row
        for row in Flag.objects.values("rule")
        .annotate(
            raised=Count("pk"),
            confirmed=Count("pk", filter=Q(status=Flag.Status.CONFIRMED)),
            dismissed=Count("pk", filter=Q(status=Flag.Status.DISMISSED)),
            open=Count("pk", filter=Q(status=Flag.Status.OPEN)),
        )
        .order_by()
    }
    rows = []
    for code, label in RiskRule.Code.choices:
        row = counts.get(code, {"raised": 0, "confirmed": 0, "dismissed": 0, "open": 0})
        resolved = row["confirmed"] + row["dismissed"]
        rate = (Decimal(row["dismissed"]) / resolved).quantize(Decimal("0.01")) if resolved else None
        rows.append({"code": code, "label": label, **{k: row[k] for k in ("raised", "confirmed", "dismissed", "open")},
                     "dismissal_rate": rate})  # fmt: skip
    return rows
