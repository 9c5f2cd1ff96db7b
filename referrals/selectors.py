from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import Decimal

from django.db import connection
from django.db.models import Count, DecimalField, F, OuterRef, Q, Subquery, Sum, Value
from django.db.models.functions import Coalesce, TruncDate
from django.urls import reverse
from django.utils import timezone

from core.money import ZERO, money_sum
from referrals.models import Member, ShareLink, ShareLinkDailyStat
from referrals.tree import PENDING, TreeReport, compute_nested_sets


def member_by_invite_code(code: str) -> Member | None:
    """The member whose invite code this is (any case, surrounding spaces ignored), or None."""
    code = (code or "").strip().upper()
    if not code:
        return None
    return Member.objects.select_related("user").filter(invite_code=code).first()


def member_for_user(user) -> Member | None:
    if not getattr(user, "is_authenticated", False):
        return None
    return Member.objects.select_related("user", "parent__user").filter(user=user).first()


def member_upline(member: Member | int, levels: int) -> list[Member]:
    """The sponsor chain of `member`, nearest first, at most `levels` long.

    One query that follows the parent links (a recursive CTE), never the
    nested-set fields, so it is right even while those are being rebuilt. Each
    returned member carries `upline_depth` (1 = the sponsor).
    """
    if levels <= 0:
        return []
    member_id = getattr(member, "pk", member)
    table = connection.ops.quote_name(Member._meta.db_table)
    sql = f"""
        WITH RECURSIVE upline(id, depth) AS (
            SELECT parent_id, 1 FROM {table} WHERE id = %s AND parent_id IS NOT NULL
            UNION ALL
            SELECT m.parent_id, u.depth + 1 FROM {table} m JOIN upline u ON m.id = u.id
            WHERE m.parent_id IS NOT NULL AND u.depth < %s
        )
        SELECT m.*, u.depth AS upline_depth FROM upline u JOIN {table} m ON m.id = u.id
        ORDER BY u.depth
    """  # noqa: S608 - the only interpolation is the quoted table name
    return list(Member.objects.raw(sql, [member_id, levels]))


def member_ancestor_ids(member: Member | int) -> set[int]:
    """Every id above `member` by parent links, however deep; terminates even on a corrupt cycle."""
    member_id = getattr(member, "pk", member)
    table = connection.ops.quote_name(Member._meta.db_table)
    sql = f"""
        WITH RECURSIVE upline(id) AS (
            SELECT parent_id FROM {table} WHERE id = %s AND parent_id IS NOT NULL
            UNION
            SELECT m.parent_id FROM {table} m JOIN upline u ON m.id = u.id WHERE m.parent_id IS NOT NULL
        )
        SELECT id FROM upline
    """  # noqa: S608 - the only interpolation is the quoted table name
    with connection.cursor() as cursor:
        cursor.execute(sql, [member_id])
        return {row[0] for row in cursor.fetchall()}


def tree_check() -> TreeReport:
    """Compare every member's nested-set fields with what the parent links imply."""
    rows = Member.objects.order_by().values_list("id", "parent_id", "tree_id", "lft", "rght", "level")
    return compute_nested_sets(rows.iterator(chunk_size=20_000))


# --- Share links ----------------------------------------------------------------------

LINK_CACHE_SECONDS = 300  # how long a link's target stays cached in the click counter
MISSING_CACHE_SECONDS = 60  # how long an unknown code's 404 is cached


@dataclass(frozen=True)
class LinkTarget:
    link_id: int
    owner_id: int
    url: str


def share_link_lookup(code: str) -> LinkTarget | None:
    """Where /l/<code> goes, from the database (one query), or None for an unknown or inactive link.

    The redirect asks the click counter's cache first (`referrals.services.share_link_follow`).
    """
    link = ShareLink.objects.select_related("shop").filter(code=code, is_active=True).first()
    if link is None:
        return None
    return LinkTarget(link_id=link.pk, owner_id=link.owner_id, url=share_link_target_url(link))


def share_link_target_url(link: ShareLink) -> str:
    if link.external_product_id:
        from networks.models import ExternalListing

        listing = ExternalListing.objects.filter(shop_id=link.shop_id, product_id=link.external_product_id).first()
        return listing.tracking_url if listing else reverse("shops:shop_home", args=[link.shop.slug])
    if link.product_id:
        return reverse("shops:product_detail", args=[link.shop.slug, link.product_id])
    return reverse("shops:shop_home", args=[link.shop.slug])


def member_share_links(member: Member):
    """The member's links with clicks, unique visitors, orders, sales and conversion, in one query."""
    from shops.models import Order

    sold = Order.objects.filter(share_link=OuterRef("pk"), paid_at__isnull=False).exclude(status=Order.Status.REFUNDED)
    stats = ShareLinkDailyStat.objects.filter(link=OuterRef("pk")).values("link")
    return (
        ShareLink.objects.filter(owner=member)
        .select_related("shop", "product")
        .annotate(
            clicks=Coalesce(Subquery(stats.annotate(n=Sum("clicks")).values("n")[:1]), 0),
            unique_visitors=Coalesce(Subquery(stats.annotate(n=Sum("unique_visitors")).values("n")[:1]), 0),
            order_count=Coalesce(Subquery(sold.values("share_link").annotate(n=Count("pk")).values("n")[:1]), 0),
            sales=Coalesce(
                Subquery(sold.values("share_link").annotate(n=Sum(F("total") - F("refunded_total"))).values("n")[:1]),
                Value(Decimal("0.00")),
                output_field=DecimalField(max_digits=14, decimal_places=2),
            ),
        )
        .order_by("-created_at", "-pk")
    )


def member_share_link(member: Member, link_id: int) -> ShareLink | None:
    return ShareLink.objects.select_related("shop", "product").filter(owner=member, pk=link_id).first()


def member_uplines(member_ids, levels: int) -> dict[int, list[tuple[int, bool]]]:
    """For many members at once: {member id: [(member id, is active), ...]} from the member itself upwards,
    at most `levels` long (the member included). One query over the parent links, never the nested sets.
    """
    member_ids = list(set(member_ids))
    if not member_ids or levels <= 0:
        return {}
    table = connection.ops.quote_name(Member._meta.db_table)
    placeholders = ", ".join(["%s"] * len(member_ids))
    sql = f"""
        WITH RECURSIVE chain(start_id, id, depth) AS (
            SELECT id, id, 0 FROM {table} WHERE id IN ({placeholders})
            UNION ALL
            SELECT c.start_id, m.parent_id, c.depth + 1 FROM chain c JOIN {table} m ON m.id = c.id
            WHERE m.parent_id IS NOT NULL AND c.depth + 1 < %s
        )
        SELECT c.start_id, c.id, m.status FROM chain c JOIN {table} m ON m.id = c.id ORDER BY c.start_id, c.depth
    """  # noqa: S608 - interpolates only the quoted table name and placeholders
    chains: dict[int, list[tuple[int, bool]]] = {member_id: [] for member_id in member_ids}
    with connection.cursor() as cursor:
        cursor.execute(sql, [*member_ids, levels])
        for start_id, member_id, status in cursor.fetchall():
            chains[start_id].append((member_id, status == Member.Status.ACTIVE))
    return chains


# --- Dashboard: overview and team -----------------------------------------------------------------------

DASHBOARD_DAYS = 30  # the chart and the longest period of the overview
DASHBOARD_PERIODS = (1, 7, 30)  # today, the last 7 days, the last 30 days (today included)


@dataclass(frozen=True)
class PeriodStats:
    """A member's links and shop over the last `days` days, today included."""

    days: int
    clicks: int
    unique_visitors: int
    orders: int
    sales: Decimal

    @property
    def conversion_rate(self) -> Decimal | None:
        """Orders per unique visitor (a fraction), or None with no visitors."""
        if not self.unique_visitors:
            return None
        return Decimal(self.orders) / Decimal(self.unique_visitors)

    @property
    def conversion_percent(self) -> Decimal | None:
        rate = self.conversion_rate
        return None if rate is None else (rate * 100).quantize(Decimal("0.1"))


@dataclass(frozen=True)
class DayStats:
    day: date
    earnings: Decimal  # the member's ledger entries created that day, signed (reversals and clawbacks subtract)
    orders: int


@dataclass(frozen=True)
class DashboardStats:
    periods: list[PeriodStats]  # one per DASHBOARD_PERIODS, shortest first
    daily: list[DayStats]  # DASHBOARD_DAYS days, oldest first, every day present


def _day_bounds(first: date, last: date) -> tuple[datetime, datetime]:
    """[start of `first`, start of the day after `last`) in the current time zone."""
    zone = timezone.get_current_timezone()
    start = timezone.make_aware(datetime.combine(first, time.min), zone)
    end = timezone.make_aware(datetime.combine(last + timedelta(days=1), time.min), zone)
    return start, end


def _sold_orders():
    """Orders that count as a member's sales: paid and not refunded in full (as `member_share_links` counts)."""
    from shops.models import Order

    return Order.objects.filter(paid_at__isnull=False).exclude(status=Order.Status.REFUNDED)


SALES = Sum(F("total") - F("refunded_total"), output_field=DecimalField(max_digits=14, decimal_places=2))


def member_dashboard_stats(member: Member, today: date) -> DashboardStats:
    """The overview's figures for `member`: clicks, orders, sales and conversion for today, 7 and 30 days, and
    daily earnings and orders for the chart (the balance is `payouts.selectors.member_balance`, as on every page).

    Three queries whatever the number of days, links, orders or entries: one aggregate of the daily link
    statistics, and the member's orders and ledger entries each grouped by day in SQL (days are
    calendar days in the current time zone). Only `member`'s own links, orders (as sharer) and entries are read.
    """
    from commissions.models import CommissionEntry

    zone = timezone.get_current_timezone()
    first = today - timedelta(days=DASHBOARD_DAYS - 1)
    start, end = _day_bounds(first, today)
    period_starts = {days: today - timedelta(days=days - 1) for days in DASHBOARD_PERIODS}

    clicks = ShareLinkDailyStat.objects.filter(link__owner=member, day__gte=first, day__lte=today).aggregate(
        **{
            f"{name}_{days}": Sum(name, filter=Q(day__gte=since), default=0)
            for days, since in period_starts.items()
            for name in ("clicks", "unique_visitors")
        }
    )
    orders_by_day = {
        row["day"]: row
        for row in _sold_orders()
        .filter(sharer=member, paid_at__gte=start, paid_at__lt=end)
        .annotate(day=TruncDate("paid_at", tzinfo=zone))
        .order_by()
        .values("day")
        .annotate(orders=Count("pk"), sales=SALES)
    }
    earnings_by_day = dict(
        CommissionEntry.objects.filter(beneficiary=member, created_at__gte=start, created_at__lt=end)
        .annotate(day=TruncDate("created_at", tzinfo=zone))
        .order_by()
        .values("day")
        .annotate(amount=Sum("amount"))
        .values_list("day", "amount")
    )

    daily = []
    for offset in range(DASHBOARD_DAYS):
        day = first + timedelta(days=offset)
        row = orders_by_day.get(day)
        daily.append(
            DayStats(day=day, earnings=money_sum(earnings_by_day.get(day)), orders=row["orders"] if row else 0)
        )
    periods = [
        PeriodStats(
            days=days,
            clicks=clicks[f"clicks_{days}"],
            unique_visitors=clicks[f"unique_visitors_{days}"],
            orders=sum(row["orders"] for day, row in orders_by_day.items() if day >= since),
            sales=money_sum(sum((money_sum(row["sales"]) for day, row in orders_by_day.items() if day >= since), ZERO)),
        )
        for days, since in period_starts.items()
    ]
    return DashboardStats(periods=periods, daily=daily)


def team_levels_in_force(at=None) -> int:
    """How many levels of a member's downline the team page shows: those whose sales can pay the member.

    `max_levels` counts the sharer, so a sale by someone k levels below me pays me only if k + 1 <= max_levels:
    the paying levels are 1 .. max_levels - 1. Direct invitees (level 1) are always shown, whom one invited
    being worth seeing even under a one-level policy. One query.
    """
    from commissions.services import policy_in_force

    policy = policy_in_force(at)
    return max(policy.max_levels - 1, 1) if policy is not None else 1


def member_downline(member: Member):
    """Everyone below `member` already placed in the nested sets (uses the (tree_id, lft) index)."""
    return Member.objects.filter(tree_id=member.tree_id, lft__gt=member.lft, lft__lt=member.rght)


# A team is searched from the pending members up (their sponsors' nested sets) when there are fewer pending members
# than this share of its placed members, else from the team down (each member's pending children, through a
# partial index). Measured at a million members: about 3.5 µs per placed member down, 5-8 µs per pending one up.
PENDING_TEAM_UP_SHARE = 0.5
# A guard against a cycle of pending parent links (none can be made: a sponsor is always older than its member).
PENDING_TEAM_MAX_DEPTH = 10_000


def member_pending_team(member: Member) -> dict[int, list[int]]:
    """{relative level: [member ids]} of the members below `member` who joined moments ago and are not placed in
    the nested sets yet (see referrals.services.tree_index_pending), found by their parent links.

    One query (a recursive CTE) that reads only this team's pending members: it starts from the pending members
    whose sponsor is placed inside `member`'s nested set (or is `member`), then follows parent links down through
    pending members who sponsored others. It is searched from the team's placed members down (each one's pending
    children, through the partial index on pending members' sponsors) or from the pending members up, whichever
    reads fewer rows (in the same statement, a count of the pending members, stopped at half the team's size,
    decides), so a team page never reads every pending member of the platform unless that is the cheaper way.
    Read together with
    `member_downline`, nobody is missing or counted twice.
    """
    table = connection.ops.quote_name(Member._meta.db_table)
    pending = f"c.lft = {PENDING} AND c.rght = {PENDING}"
    up = (
        f"SELECT c.id, p.level - %s + 1 AS depth FROM {table} c JOIN {table} p ON p.id = c.parent_id "  # noqa: S608 - quoted table name and constants only
        f"WHERE {pending} AND p.tree_id = %s AND p.lft >= %s AND p.lft < %s"
    )
    placed = [member.level, member.tree_id, member.lft, member.rght]
    prefix = ""
    if member.lft == PENDING:
        seed = f"SELECT c.id, 1 AS depth FROM {table} c WHERE c.parent_id = %s AND {pending}"  # noqa: S608 - quoted table name and constants only
        params: list = [member.pk]
    elif connection.vendor == "postgresql":
        # Both ways in one statement; a count of the pending members (stopped at the limit) switches one off (a
        # one-time filter: the other is never run). From the team down, OFFSET 0 keeps the lateral probe per
        # placed member: a plan that scanned every pending member instead would be chosen whenever the statistics
        # say there are few pending rows, which is when there are many.
        prefix = (
            f"few(yes) AS MATERIALIZED (SELECT count(*) < %s FROM (SELECT 1 FROM {table} "  # noqa: S608 - quoted table name and constants only
            f"WHERE lft = {PENDING} LIMIT %s) AS counted), "
        )
        down = (
            f"SELECT c.id, p.level - %s + 1 AS depth FROM {table} p CROSS JOIN LATERAL ("  # noqa: S608 - quoted table name and constants only
            f"SELECT c.id FROM {table} c WHERE c.parent_id = p.id AND {pending} OFFSET 0) c "
            "WHERE p.tree_id = %s AND p.lft >= %s AND p.lft < %s"
        )
        seed = f"{up} AND (SELECT yes FROM few) UNION ALL {down} AND NOT (SELECT yes FROM few)"  # noqa: S608 - built above
        limit = int(member.get_descendant_count() * PENDING_TEAM_UP_SHARE) + 1
        params = [limit, limit, *placed, *placed]
    else:
        seed, params = up, placed
    if connection.vendor == "postgresql":
        # Each member found probes for its own pending children. As a plain join, the planner (whose statistics say
        # there are almost no pending rows, because passes keep emptying them) compared every pair instead: 14,000
        # pending members took 30 s for a founder's team at a peak.
        below = (
            f"FROM team CROSS JOIN LATERAL (SELECT c.id FROM {table} c "  # noqa: S608 - quoted table name, constants
            f"WHERE c.parent_id = team.id AND {pending} OFFSET 0) c WHERE team.depth < %s"
        )
    else:
        below = f"FROM team JOIN {table} c ON c.parent_id = team.id WHERE {pending} AND team.depth < %s"
    sql = (
        f"WITH RECURSIVE {prefix}team(id, depth) AS ({seed} "  # noqa: S608 - quoted table name and constants only
        f"UNION ALL SELECT c.id, team.depth + 1 {below}) SELECT id, depth FROM team ORDER BY id"
    )
    team: dict[int, list[int]] = {}
    with connection.cursor() as cursor:
        cursor.execute(sql, [*params, PENDING_TEAM_MAX_DEPTH])
        for member_id, depth in cursor.fetchall():
            team.setdefault(depth, []).append(member_id)
    return team


def member_team_size(member: Member, pending: dict[int, list[int]] | None = None) -> int:
    """Everyone below `member`: placed (django-mptt's count, no query) and pending (one query, unless the caller
    passes what `member_pending_team` returned)."""
    placed = member.get_descendant_count() if member.lft != PENDING else 0
    pending = member_pending_team(member) if pending is None else pending
    return placed + sum(len(ids) for ids in pending.values())


def member_team_level_counts(
    member: Member, levels: int, pending: dict[int, list[int]] | None = None
) -> dict[int, int]:
    """{relative level: number of members} for levels 1..`levels` below `member` (0 for an empty level).
    An aggregate over the placed members, plus the pending ones (`member_pending_team`; passed in or read)."""
    counts = dict.fromkeys(range(1, levels + 1), 0)
    pending = member_pending_team(member) if pending is None else pending
    if member.lft != PENDING:
        # Read after the pending ones: a member placed in between is in both reads; count it once. Only the levels
        # counted here matter (the founder's team has every pending member of the platform, at all depths).
        just_placed = [member_id for relative in counts for member_id in pending.get(relative, [])]
        rows = (
            member_downline(member)
            .exclude(pk__in=just_placed)
            .filter(level__lte=member.level + levels)
            .order_by()
            .values("level")
            .annotate(n=Count("pk"))
            .values_list("level", "n")
        )
        for level, n in rows:
            counts[level - member.level] = n
    for relative, ids in pending.items():
        if relative in counts:
            counts[relative] += len(ids)
    return counts


def member_team_level(
    member: Member, level: int, since: datetime, until: datetime, pending: dict[int, list[int]] | None = None
):
    """The members exactly `level` links below `member`, in tree order (those who joined moments ago and are not
    placed yet first), each annotated with `sales`: the
    paid, not fully refunded orders they shared with `paid_at` in [since, until), net of partial refunds.

    One query per page however large the team (the sales are a correlated subquery on the orders' sharer index),
    reading only what the team list shows: no contact details beyond what `Member.display_name` masks.
    """
    sales = (
        _sold_orders()
        .filter(sharer=OuterRef("pk"), paid_at__gte=since, paid_at__lt=until)
        .order_by()
        .values("sharer")
        .annotate(amount=SALES)
        .values("amount")[:1]
    )
    placed = Q(tree_id=member.tree_id, lft__gt=member.lft, lft__lt=member.rght, level=member.level + level)
    pending = (member_pending_team(member) if pending is None else pending).get(level, [])
    # Pending members (lft 0, not placed yet) sort first: they are the newest.
    return (
        Member.objects.filter(placed | Q(pk__in=pending) if pending else placed)
        .select_related("user")
        .only(
            "pk",
            "status",
            "joined_at",
            "invite_code",
            "tree_id",
            "lft",
            "rght",
            "level",
            "parent_id",
            "user__first_name",
            "user__last_name",
            "user__email",
        )
        .annotate(
            sales=Coalesce(Subquery(sales), Value(ZERO), output_field=DecimalField(max_digits=14, decimal_places=2))
        )
        .order_by("lft")
    )


def member_attributed_orders(member: Member):
    """The orders `member` shared (is the sharer of), newest first, with their lines: amounts only.

    Reads no buyer field (name, phone, email, address): they are deferred and never shown to the sharer.
    Two queries a page (the orders, then their lines).
    """
    from django.db.models import Prefetch

    from shops.models import Order, OrderLine

    lines = OrderLine.objects.only(
        "pk", "order_id", "title", "quantity", "net_amount", "refunded_quantity", "refunded_amount"
    ).order_by("pk")
    return (
        Order.objects.filter(sharer=member)
        .only(
            "pk",
            "number",
            "status",
            "total",
            "refunded_total",
            "currency",
            "created_at",
            "paid_at",
            "sharer_id",
            "share_link_id",
        )
        .prefetch_related(Prefetch("lines", queryset=lines))
        .order_by("-created_at", "-pk")
    )
