from dataclasses import dataclass
from decimal import Decimal

from django.db import connection
from django.db.models import Count, DecimalField, F, OuterRef, Subquery, Sum, Value
from django.db.models.functions import Coalesce
from django.urls import reverse

from referrals.models import Member, ShareLink, ShareLinkDailyStat
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
