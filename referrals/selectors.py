from django.db import connection

from referrals.models import Member
from referrals.tree import TreeReport, compute_nested_sets


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
