from dataclasses import dataclass
from datetime import date, datetime

from django.db import connection
from django.db.models import Count, DateField, F, Q
from django.db.models.functions import TruncMonth
from django.utils import timezone

from referrals.models import Member
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


# --- Team -----------------------------------------------------------------------------------------------------


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


def member_team_level(member: Member, level: int, pending: dict[int, list[int]] | None = None):
    """The members exactly `level` links below `member`, in tree order (those who joined moments ago and are not
    placed yet first), with only what a team list shows: no contact details beyond what `Member.display_name`
    masks. Annotate it further (their sales: `members.selectors.member_team_level_sales`) before reading it.
    """
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
        .order_by("lft")
    )


# --- The whole tree (statistics for compliance: the compliance report, the evidence pack) ---------------------------


def tree_depth_counts(*, before: datetime) -> dict[int, int]:
    """{depth (1 = a root): members} of the members who joined before `before` and are placed in the nested sets.
    One who joined moments ago is not placed yet (lft = 0), and the level it carries until then is only a hint
    that a move of its upline can make wrong: `tree_pending_count` counts those."""
    rows = (
        Member.objects.filter(joined_at__lt=before, lft__gt=PENDING)
        .values("level")
        .annotate(members=Count("pk"))
        .order_by("level")
        .values_list("level", "members")
    )
    return {level + 1: members for level, members in rows}


def tree_pending_count(*, before: datetime) -> int:
    """Members who joined before `before` and are not placed in the nested sets yet (seconds, normally)."""
    return Member.objects.filter(joined_at__lt=before, lft=PENDING).count()


@dataclass(frozen=True)
class Downline:
    member_id: int
    depth: int  # 1 = a root
    size: int  # members below it who joined before the cut-off


# Candidates read at a time, largest downline today first, while looking for the largest ones at a cut-off.
DOWNLINE_CANDIDATES = 100


def tree_largest_downlines(*, before: datetime, limit: int = 20) -> list[Downline]:
    """The `limit` members (who joined before `before`) with the largest downlines counting only members who joined
    before `before`, largest first (ties by id), placed members only, in the tree as it stands (a move after the
    cut-off is not undone).

    A downline today (`rght - lft`, no count) is never smaller than the same downline at the cut-off, so members are
    taken largest-today first and counted exactly at the cut-off (one indexed range count each) until the next
    one's size today cannot beat the smallest kept: for a cut-off of now that is `limit` counts."""
    candidates = (
        Member.objects.filter(joined_at__lt=before, lft__gt=PENDING)
        .annotate(today=(F("rght") - F("lft") - 1) / 2)
        .order_by("-today", "pk")
        .values_list("pk", "tree_id", "lft", "rght", "level", "today")
    )
    kept: list[Downline] = []
    offset = 0
    while True:
        batch = list(candidates[offset : offset + DOWNLINE_CANDIDATES])
        for pk, tree_id, lft, rght, level, today in batch:
            if len(kept) >= limit and today <= kept[-1].size:
                return kept
            size = Member.objects.filter(tree_id=tree_id, lft__gt=lft, lft__lt=rght, joined_at__lt=before).count()
            kept.append(Downline(member_id=pk, depth=level + 1, size=size))
            kept.sort(key=lambda downline: (-downline.size, downline.member_id))
            del kept[limit:]
        if len(batch) < DOWNLINE_CANDIDATES:
            return kept
        offset += DOWNLINE_CANDIDATES


def tree_joins_by_month(*, start: datetime, end: datetime) -> dict[date, int]:
    """{first day of the month (current time zone): members who joined} for joins in [start, end), placed or not."""
    rows = (
        Member.objects.filter(joined_at__gte=start, joined_at__lt=end)
        .annotate(month=TruncMonth("joined_at", output_field=DateField(), tzinfo=timezone.get_current_timezone()))
        .values("month")
        .annotate(members=Count("pk"))
        .order_by("month")
        .values_list("month", "members")
    )
    return dict(rows)
