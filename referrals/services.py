"""Every write to members and the upline tree (SPEC §4).

A join under a sponsor writes the member with its parent link (the truth) and marks its nested-set fields
pending (`lft = rght = 0`); it takes no tree lock, so joins run in parallel, in milliseconds at any tree size.
`tree_index_pending` then places every pending member in one pass under the tree lock: one shifting UPDATE for
the whole batch instead of one per join. In the embedded default (and in tests) that pass runs inside the join
itself (`REFERRALS_TREE_INDEX_INLINE`); in production a coalesced Celery task runs it just after the join commits,
and the beat runs it every few seconds as a safety net. Readers of team figures count pending members by their
parent links meanwhile (`referrals.selectors.member_pending_team`).

The other structural writes (a root join, move, delete, repair) take the tree lock first, place whatever is
pending, then re-read the rows they touch: django-mptt computes its updates from the in-memory `lft`/`rght` of
the instances it is given, so a value read before the lock may already be stale.
"""

import logging
import time

from django.conf import settings
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.db import OperationalError, connection, transaction
from django.db.models import Max
from django.utils import timezone
from django.utils.translation import gettext as _
from mptt.exceptions import InvalidMove

from core.task_helpers import task_request_once
from referrals.locks import member_lock, tree_index_pass_mark, tree_lock_acquire, tree_lock_acquire_first
from referrals.models import Member, TreeEvent, new_invite_code
from referrals.selectors import member_ancestor_ids, member_by_invite_code, tree_check
from referrals.tree import PENDING, IndexPlan, plan_index_batch


class ReferralError(ValidationError):
    """A refused tree or membership change; the message is fit to show the user."""


def _snapshot(member: Member) -> dict:
    return {"parent_id": member.parent_id, "status": member.status}


def _unique_invite_code() -> str:
    # Callers hold the tree lock, and only they create members, so check-then-insert
    # cannot race; the unique constraint is the backstop.
    while True:
        code = new_invite_code()
        if not Member.objects.filter(invite_code=code).exists():
            return code


def _default_sponsor() -> Member | None:
    code = settings.REFERRALS_DEFAULT_SPONSOR_CODE
    if not code:
        return None
    sponsor = member_by_invite_code(code)
    return sponsor if sponsor is not None and sponsor.is_active else None


logger = logging.getLogger("referrals.tree")


def member_join(
    *, user, sponsor: Member | None = None, source: str | None = None, actor=None, use_default_sponsor: bool = True
) -> Member:
    """Make `user` a member under `sponsor`; without one, under the configured default sponsor or as a root.

    Staff creating a root pass use_default_sponsor=False. Raises ReferralError if the user is already a member
    (also when two joins of the same user race: the unique user is the backstop) or the sponsor is not active.
    A join under a sponsor takes no tree lock: it waits only for a concurrent status change or deletion of that
    sponsor (a row lock), and its nested-set fields are filled by `tree_index_pending` (see the module doc). On
    PostgreSQL it is one statement (`_join_in_one_statement`): one round trip, at the peak that matters most.
    """
    if sponsor is not None and connection.vendor == "postgresql" and not settings.REFERRALS_TREE_INDEX_INLINE:
        if not connection.in_atomic_block:
            return _join_in_one_statement(user=user, sponsor_id=sponsor.pk, source=source, actor=actor)
        with transaction.atomic():  # a savepoint: a caller's transaction stays usable if the statement fails
            return _join_in_one_statement(user=user, sponsor_id=sponsor.pk, source=source, actor=actor)
    return _member_join_atomic(
        user=user, sponsor=sponsor, source=source, actor=actor, use_default_sponsor=use_default_sponsor
    )


@transaction.atomic
def _member_join_atomic(
    *, user, sponsor: Member | None, source: str | None, actor, use_default_sponsor: bool
) -> Member:
    """The join as separate statements in a transaction: SQLite, the inline pass, roots and the default sponsor."""
    inline = settings.REFERRALS_TREE_INDEX_INLINE
    if inline:
        # This join will place itself under the tree lock: take it before any row lock, as every tree writer does.
        tree_lock_acquire()
    if sponsor is None and use_default_sponsor:
        sponsor = _default_sponsor()
        source = Member.JoinSource.DEFAULT_SPONSOR if sponsor is not None else source
    if sponsor is None:
        return _root_join(user=user, source=source or Member.JoinSource.DIRECT, actor=actor)

    sponsor = _sponsor_key_shared(sponsor.pk)
    if sponsor is None or not sponsor.is_active:
        raise _sponsor_inactive()
    # tree_id and level are the sponsor's as read now: hints for readers until the member is placed.
    member = Member(
        user=user,
        parent=sponsor,
        join_source=source or Member.JoinSource.INVITE,
        tree_id=sponsor.tree_id,
        lft=PENDING,
        rght=PENDING,
        level=sponsor.level + 1,
    )
    _insert_with_new_code(member)
    TreeEvent.objects.create(
        kind=TreeEvent.Kind.JOIN,
        member=member,
        actor=actor or user,
        new_parent=sponsor,
        after=_snapshot(member),
        reason=member.join_source,
    )
    if inline:
        tree_index_pending()
        member.refresh_from_db(fields=["tree_id", "lft", "rght", "level"])
    else:
        transaction.on_commit(tree_index_requested)
    return member


def _sponsor_inactive() -> ReferralError:
    return ReferralError(_("This invitation is no longer valid."), code="sponsor_inactive")


def _join_in_one_statement(*, user, sponsor_id: int, source: str | None, actor) -> Member:
    """The join under a sponsor as one PostgreSQL statement, atomic by itself: read the sponsor FOR KEY SHARE,
    insert the member (pending) if the sponsor is active, insert its TreeEvent, return what happened.

    The same reads, locks and rows as `_member_join_atomic`, with one round trip instead of five (BEGIN, three
    statements, COMMIT): under load every round trip is a wait for a CPU on both sides. `ON CONFLICT DO NOTHING`
    makes the two unique clashes "no row": the user already a member is refused, a clash of the random invite
    code is retried with another. The after-commit request for an index pass runs at once here, or when the
    caller's transaction commits.
    """
    member_table = connection.ops.quote_name(Member._meta.db_table)
    event_table = connection.ops.quote_name(TreeEvent._meta.db_table)
    sql = (
        f"WITH s AS (SELECT id, tree_id, level, status FROM {member_table} WHERE id = %(sponsor)s FOR KEY SHARE), "  # noqa: S608 - quoted table names and placeholders only
        f"m AS (INSERT INTO {member_table} "
        "(user_id, parent_id, invite_code, status, join_source, joined_at, tree_id, lft, rght, level) "
        "SELECT %(user)s, s.id, %(code)s, %(active)s, %(source)s, %(now)s, s.tree_id, %(pending)s, %(pending)s, "
        "s.level + 1 FROM s WHERE s.status = %(active)s ON CONFLICT DO NOTHING RETURNING id, tree_id, level), "
        f"e AS (INSERT INTO {event_table} "
        "(kind, member_id, actor_id, new_parent_id, before, after, reason, created_at) "
        "SELECT %(kind)s, m.id, %(actor)s, %(sponsor)s, '{}'::jsonb, "
        "jsonb_build_object('parent_id', %(sponsor)s::bigint, 'status', %(active)s::text), %(source)s, %(now)s "
        "FROM m) "
        "SELECT s.status, m.id, m.tree_id, m.level FROM s LEFT JOIN m ON true"
    )
    source = source or Member.JoinSource.INVITE
    params = {
        "sponsor": sponsor_id,
        "user": user.pk,
        "active": Member.Status.ACTIVE.value,
        "source": source,
        "pending": PENDING,
        "kind": TreeEvent.Kind.JOIN.value,
        "actor": (actor or user).pk,
    }
    for _attempt in range(5):
        params.update(code=new_invite_code(), now=timezone.now())
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            row = cursor.fetchone()
        if row is None or row[0] != Member.Status.ACTIVE:
            raise _sponsor_inactive()
        status, member_id, tree_id, level = row
        if member_id is not None:
            member = Member(
                pk=member_id,
                user=user,
                parent_id=sponsor_id,
                invite_code=params["code"],
                status=status,
                join_source=source,
                joined_at=params["now"],
                tree_id=tree_id,
                lft=PENDING,
                rght=PENDING,
                level=level,
            )
            member._state.adding = False
            member._state.db = connection.alias
            transaction.on_commit(tree_index_requested)
            return member
        if Member.objects.filter(user_id=user.pk).exists():
            raise ReferralError(_("You are already a member."), code="already_member")
    raise ReferralError(_("Could not create an invite code; try again."), code="invite_code")


def _sponsor_key_shared(member_id: int) -> Member | None:
    """The sponsor, read under FOR KEY SHARE on PostgreSQL: a concurrent status change or deletion of the sponsor
    (FOR UPDATE) waits for this join or is seen by it, while the indexer's and moves' updates of the nested-set
    fields (FOR NO KEY UPDATE) go on in parallel. SQLite serialises writers itself."""
    queryset = Member.objects.filter(pk=member_id)
    if connection.vendor != "postgresql":
        return queryset.first()
    sql, params = queryset.query.sql_with_params()
    return next(iter(Member.objects.raw(f"{sql} FOR KEY SHARE", params)), None)


def _insert_with_new_code(member: Member) -> None:
    """Insert without django-mptt's save (which would shift the tree), in one statement.

    `ON CONFLICT DO NOTHING` turns the two unique clashes into "no row" instead of an error that would abort the
    join's transaction: the user already a member (also when two joins of the same user race) is refused, a
    clash of the random invite code (about one in a million joins at a million members) is retried.
    """
    table = connection.ops.quote_name(Member._meta.db_table)
    columns = ("user_id", "parent_id", "invite_code", "status", "join_source", "joined_at", "tree_id", "lft",
               "rght", "level")  # fmt: skip
    sql = (
        f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join(['%s'] * len(columns))}) "  # noqa: S608 - quoted table, fixed columns, placeholders
        "ON CONFLICT DO NOTHING RETURNING id"
    )
    member.joined_at = timezone.now()
    for _attempt in range(5):
        member.invite_code = new_invite_code()
        with connection.cursor() as cursor:
            cursor.execute(sql, [getattr(member, column) for column in columns])
            row = cursor.fetchone()
        if row is not None:
            member.pk = row[0]
            member._state.adding = False
            return
        if Member.objects.filter(user_id=member.user_id).exists():
            raise ReferralError(_("You are already a member."), code="already_member")
    raise ReferralError(_("Could not create an invite code; try again."), code="invite_code")


def _root_join(*, user, source: str, actor) -> Member:
    """A member without a sponsor starts a tree of its own: django-mptt's insert, under the tree lock (it picks
    the new tree id as max + 1). Rare: founders and staff-created roots."""
    tree_lock_acquire()
    if Member.objects.filter(user=user).exists():
        raise ReferralError(_("You are already a member."), code="already_member")
    member = Member(user=user, parent=None, invite_code=_unique_invite_code(), join_source=source)
    member.save()
    TreeEvent.objects.create(
        kind=TreeEvent.Kind.JOIN, member=member, actor=actor or user, after=_snapshot(member), reason=source
    )
    return member


# --- Placing pending members -----------------------------------------------------------------------------

TREE_INDEX_SCHEDULED_KEY = "referrals:tree-index-scheduled"
TREE_INDEX_REST_KEY = "referrals:tree-index-rest-until"
TREE_INDEX_REST_AFTER_SECONDS = 1.0  # shorter passes are not followed by a rest
POSITION_UPDATE_CHUNK = 5_000


@transaction.atomic
def tree_index_pending(*, limit: int | None = None, up_to: int | None = None, only: set[int] | None = None) -> int:
    """Place up to `limit` pending members (oldest first) into the nested sets; return how many were placed.

    One pass under the tree lock: one shifting UPDATE per tree for the whole batch, then the new members' own
    fields. All in one transaction: a crash part-way leaves everything as it was (the members stay pending and
    the next run places them). Safe to run twice or concurrently (the second waits for the lock and then finds
    less or nothing to do). The result equals what `Member.objects.rebuild()` computes from the parent links.
    `up_to` places only members with an id up to it (those that joined before a given moment); `only`, only those
    ids (each with its pending sponsors among them).
    """
    limit = limit or settings.REFERRALS_TREE_INDEX_BATCH
    tree_lock_acquire()
    waiting = Member.objects.filter(lft=PENDING)
    if up_to is not None:
        waiting = waiting.filter(pk__lte=up_to)
    if only is not None:
        waiting = waiting.filter(pk__in=only)
    pending = list(waiting.order_by("pk").values_list("pk", "parent_id")[:limit])
    if not pending:
        return 0
    pending_ids = {member_id for member_id, _parent in pending}
    sponsor_ids = {parent_id for _member, parent_id in pending if parent_id and parent_id not in pending_ids}
    anchors = {
        member_id: (tree_id, lft, rght, level)
        for member_id, tree_id, lft, rght, level in Member.objects.filter(pk__in=sponsor_ids, lft__gt=PENDING)
        .order_by()
        .values_list("pk", "tree_id", "lft", "rght", "level")
    }
    later_children = (
        Member.objects.filter(parent_id__in=anchors, lft__gt=PENDING, pk__gt=min(pending_ids))
        .order_by()
        .values_list("parent_id", "pk", "lft")
    )
    next_tree_id = (Member.objects.aggregate(top=Max("tree_id"))["top"] or 0) + 1
    plan = plan_index_batch(pending, anchors, later_children, next_tree_id=next_tree_id)
    for tree_id in plan.shifts:
        _shift_tree(tree_id, plan)
    _write_positions(plan)
    placed = len(plan.positions)
    if len(pending) == limit and not settings.REFERRALS_TREE_INDEX_INLINE:
        transaction.on_commit(tree_index_requested)  # more are waiting
    if plan.skipped:
        logger.error("tree index: %d pending members have no placed sponsor: %s", len(plan.skipped), plan.skipped[:20])
    return placed


def _shift_tree(tree_id: int, plan: IndexPlan) -> None:
    """Move every indexed value of the tree at or right of an insertion point, in one statement."""
    points, cumulative = plan.shifts[tree_id]
    table = connection.ops.quote_name(Member._meta.db_table)
    if connection.vendor == "postgresql":
        # width_bucket(v, points) counts the points <= v (a binary search): the shift needs no join and no CASE.
        with connection.cursor() as cursor:
            cursor.execute(
                f"UPDATE {table} SET "  # noqa: S608 - only the quoted table name is interpolated
                "lft = lft + 2 * (%s::int[])[width_bucket(lft, %s::int[]) + 1], "
                "rght = rght + 2 * (%s::int[])[width_bucket(rght, %s::int[]) + 1] "
                "WHERE tree_id = %s AND rght >= %s AND lft > %s",
                [cumulative, points, cumulative, points, tree_id, points[0], PENDING],
            )
        return
    rows = Member.objects.filter(tree_id=tree_id, rght__gte=points[0], lft__gt=PENDING).values_list("pk", "lft", "rght")
    changes = [(plan.shift(tree_id, lft), plan.shift(tree_id, rght), pk) for pk, lft, rght in rows]
    with connection.cursor() as cursor:
        cursor.executemany(f"UPDATE {table} SET lft = %s, rght = %s WHERE id = %s", changes)  # noqa: S608 - quoted table name only


def _write_positions(plan: IndexPlan) -> None:
    table = connection.ops.quote_name(Member._meta.db_table)
    rows = [(tree_id, lft, rght, level, pk) for pk, (tree_id, lft, rght, level) in plan.positions.items()]
    if connection.vendor != "postgresql":
        with connection.cursor() as cursor:
            cursor.executemany(
                f"UPDATE {table} SET tree_id = %s, lft = %s, rght = %s, level = %s WHERE id = %s",  # noqa: S608 - quoted table name only
                rows,
            )
        return
    with connection.cursor() as cursor:
        for start in range(0, len(rows), POSITION_UPDATE_CHUNK):
            chunk = rows[start : start + POSITION_UPDATE_CHUNK]
            values = ", ".join(["(%s, %s, %s, %s, %s)"] * len(chunk))
            cursor.execute(
                f"UPDATE {table} AS m SET tree_id = v.tree_id, lft = v.lft, rght = v.rght, level = v.level "  # noqa: S608 - table name and placeholders
                f"FROM (VALUES {values}) AS v(tree_id, lft, rght, level, id) WHERE m.id = v.id",
                [value for row in chunk for value in row],
            )


def _place_members(*member_ids: int) -> None:
    """Under the tree lock: place these members if they are pending, with their pending sponsors, and nobody else
    (a move or delete must not wait for a pass over everyone who joined meanwhile)."""
    sponsor_of = dict(Member.objects.filter(lft=PENDING).values_list("pk", "parent_id"))
    chain: set[int] = set()
    for member_id in member_ids:
        while member_id in sponsor_of and member_id not in chain:
            chain.add(member_id)
            member_id = sponsor_of[member_id]
    if chain:
        tree_index_pending(only=chain)


def _place_all_pending() -> None:
    """Under the tree lock, before a move, delete or repair: place everyone who joined before now, so the members
    django-mptt moves or numbers are all placed. Members joining meanwhile stay pending (django-mptt's updates
    leave lft = rght = 0 alone) and are placed by the next run; waiting for them too would never end at a peak."""
    up_to = Member.objects.filter(lft=PENDING).order_by("-pk").values_list("pk", flat=True).first()
    if up_to is None:
        return
    while tree_index_pending(up_to=up_to):
        pass


def tree_index_requested() -> bool:
    """Ask for an index run unless one is already asked for and not started (many joins, one message)."""
    from referrals.tasks import tree_index_pending_task

    return task_request_once(
        flag=TREE_INDEX_SCHEDULED_KEY,
        task=tree_index_pending_task,
        flag_seconds=settings.REFERRALS_TREE_INDEX_FLAG_SECONDS,
        logger=logger,
        fallback="the beat schedule will place the pending members",
    )


def tree_index_run() -> int:
    """One index run (the task): clear the "asked for" flag first, so a join committed after it asks again.

    A run cancelled by a staff move (see referrals.locks.tree_lock_acquire_first) changed nothing; it asks for
    another and returns 0. After a long pass (a large tree) the runs rest for `REFERRALS_TREE_INDEX_REST` times
    its duration: a run asked for meanwhile returns 0 at once and leaves the flag set, so the joins send no more
    messages, and the beat's first run after the rest places everyone who joined meanwhile in one pass.
    """
    rest_until = cache.get(TREE_INDEX_REST_KEY)
    if rest_until is not None and time.time() < rest_until:
        return 0
    cache.delete(TREE_INDEX_SCHEDULED_KEY)
    started = time.monotonic()
    try:
        with transaction.atomic():
            tree_index_pass_mark()  # a staff move may cancel this run rather than wait for it (all or nothing)
            placed = tree_index_pending()
    except OperationalError as error:
        if not is_query_cancelled(error):
            raise
        logger.info("tree index pass cancelled for a move; asking for another")
        tree_index_requested()
        return 0
    took = time.monotonic() - started
    rest = took * settings.REFERRALS_TREE_INDEX_REST
    if placed and took >= TREE_INDEX_REST_AFTER_SECONDS and rest > 0:
        cache.set(TREE_INDEX_REST_KEY, time.time() + rest, timeout=int(rest) + 1)
        logger.info("tree index: %d members placed in %.1f s; the next run in %.0f s or later", placed, took, rest)
    return placed


def is_query_cancelled(error: BaseException) -> bool:
    """PostgreSQL's "canceling statement due to user request" (pg_cancel_backend), as Django wraps it.

    Not a statement timeout (the same SQLSTATE 57014, another message): a pass that times out every time must fail
    loudly, not be taken for a move's cancel and retried in silence.
    """
    cause = error.__cause__
    message = getattr(getattr(cause, "diag", None), "message_primary", None) or str(cause or "")
    return getattr(cause, "sqlstate", None) == "57014" and "user request" in message


@transaction.atomic
def member_move(*, member: Member, new_sponsor: Member | None, actor, reason: str) -> Member:
    """Re-parent `member` (with its whole team) under `new_sponsor`, or make it a root when None.

    Staff only. Refuses a cycle (under itself or its own downline) and a move to
    the current sponsor, changing nothing. Commission already written is never
    touched: it recorded its beneficiaries when it was written.
    """
    reason = (reason or "").strip()
    if not reason:
        raise ReferralError(_("Give a reason for the move; it goes in the audit log."), code="reason_required")
    tree_lock_acquire_first()
    # Only the two members the move reads must be placed; the others may stay pending (below the moved team too:
    # they are placed later from where their placed sponsor then is).
    _place_members(member.pk, *([new_sponsor.pk] if new_sponsor else []))
    member = member_lock(member.pk, no_key=True)
    if new_sponsor is not None:
        new_sponsor = Member.objects.get(pk=new_sponsor.pk)
        if not new_sponsor.is_active:
            raise ReferralError(
                _("%(sponsor)s is suspended; pick an active sponsor.") % {"sponsor": new_sponsor},
                code="sponsor_inactive",
            )
        if new_sponsor.pk == member.pk or member.pk in member_ancestor_ids(new_sponsor):
            raise ReferralError(
                _("%(sponsor)s is %(member)s or in their own team; a member cannot be moved under their downline.")
                % {"sponsor": new_sponsor, "member": member},
                code="cycle",
            )
    if member.parent_id == (new_sponsor.pk if new_sponsor else None):
        raise ReferralError(_("%(member)s is already there.") % {"member": member}, code="no_change")

    before = _snapshot(member)
    old_parent_id = member.parent_id
    # Among the new siblings in id order (join order), as joins place them: before the first placed sibling with a
    # larger id. A new root gets a tree of its own at the end (never "left of" another root: that would renumber
    # every later tree).
    next_sibling = None
    if new_sponsor is not None:
        next_sibling = (
            Member.objects.filter(parent=new_sponsor, pk__gt=member.pk, lft__gt=PENDING).order_by("pk").first()
        )
    if new_sponsor is not None and member.parent_id is not None and new_sponsor.tree_id == member.tree_id:
        _move_within_tree(member, new_sponsor, next_sibling)
    else:
        _move_across_trees(member, new_sponsor, next_sibling)
    member.refresh_from_db()
    TreeEvent.objects.create(
        kind=TreeEvent.Kind.MOVE,
        member=member,
        actor=actor,
        old_parent_id=old_parent_id,
        new_parent=new_sponsor,
        before=before,
        after=_snapshot(member),
        reason=reason,
    )
    return member


def _move_within_tree(member: Member, new_sponsor: Member, next_sibling: Member | None) -> None:
    """Move `member`'s team inside its tree: last child of `new_sponsor`, or just before `next_sibling`.

    One UPDATE that rewrites only the rows whose numbers change: those between the old and the new place (the
    moved team and what it jumps over) and their ancestors' edges. django-mptt's own move rewrites every row of
    the tree, a million at that size, to change a few thousand.
    """
    left, right, width = member.lft, member.rght, member.rght - member.lft + 1
    point = next_sibling.lft if next_sibling is not None else new_sponsor.rght  # insert just before this value
    new_left = point - width if point > right else point
    shift = new_left - left
    low, high = min(left, new_left), max(right, new_left + width - 1)
    gap = -width if shift > 0 else width  # what the rows jumped over move by
    level_change = new_sponsor.level + 1 - member.level
    table = connection.ops.quote_name(Member._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {table} SET "  # noqa: S608 - only the quoted table name is interpolated
            "level = CASE WHEN lft BETWEEN %(left)s AND %(right)s THEN level + %(level)s ELSE level END, "
            "lft = CASE WHEN lft BETWEEN %(left)s AND %(right)s THEN lft + %(shift)s "
            "  WHEN lft BETWEEN %(low)s AND %(high)s THEN lft + %(gap)s ELSE lft END, "
            "rght = CASE WHEN rght BETWEEN %(left)s AND %(right)s THEN rght + %(shift)s "
            "  WHEN rght BETWEEN %(low)s AND %(high)s THEN rght + %(gap)s ELSE rght END, "
            "parent_id = CASE WHEN id = %(member)s THEN %(sponsor)s ELSE parent_id END "
            "WHERE tree_id = %(tree_id)s AND lft > %(pending)s "
            "  AND (lft BETWEEN %(low)s AND %(high)s OR rght BETWEEN %(low)s AND %(high)s)",
            {
                "left": left,
                "right": right,
                "level": level_change,
                "shift": shift,
                "low": low,
                "high": high,
                "gap": gap,
                "member": member.pk,
                "sponsor": new_sponsor.pk,
                "tree_id": member.tree_id,
                "pending": PENDING,
            },
        )


def _move_across_trees(member: Member, new_sponsor: Member | None, next_sibling: Member | None) -> None:
    """To another tree, to the top (a tree of its own), or a root under someone: django-mptt's move (rare)."""
    target, position = (next_sibling, "left") if next_sibling else (new_sponsor, "last-child")
    if member.parent_id is None and new_sponsor is not None:
        # django-mptt moves a root's tree into the target tree before it sets the root's parent, so for one
        # statement two parentless rows share a tree id and the one-root-per-tree constraint refuses it. Set the
        # parent first (django-mptt works from the in-memory instance, which still says "root").
        Member.objects.filter(pk=member.pk).update(parent=new_sponsor)
    try:
        member.move_to(target, position)
    except InvalidMove as error:  # only reachable when the nested sets are already corrupt
        raise ReferralError(
            _("The tree's derived fields are inconsistent; run check_referral_tree --fix, then move again."),
            code="tree_corrupt",
        ) from error


@transaction.atomic
def member_delete(*, member: Member, actor, reason: str) -> None:
    """Remove a member who has no team. A member with a downline must be moved first."""
    tree_lock_acquire()
    _place_members(member.pk)  # django-mptt's delete closes the gap the member leaves: it must have one
    member = member_lock(member.pk)
    if Member.objects.filter(parent=member).exists():
        raise ReferralError(
            _("%(member)s has a team; move the team before deleting the member.") % {"member": member},
            code="has_team",
        )
    before = _snapshot(member)
    member_id, parent_id = member.pk, member.parent_id
    member.delete()
    TreeEvent.objects.create(
        kind=TreeEvent.Kind.DELETE,
        member_id=member_id,
        actor=actor,
        old_parent_id=parent_id,
        before=before,
        reason=reason or "",
    )


@transaction.atomic
def member_set_status(*, member: Member, status: str, actor, reason: str = "") -> Member:
    """Suspend or reactivate a member. Not a tree change, so no tree lock: a row lock.

    Tree writers lock the same row after the tree lock, so neither overwrites the other.
    """
    if status not in Member.Status.values or status == Member.Status.CLOSED:
        # Closing is the member's own act with its own service (member_close), never a staff status change.
        raise ReferralError(_("Unknown status %(status)s.") % {"status": status}, code="bad_status")
    member = member_lock(member.pk)
    if member is None:
        raise ReferralError(_("This member no longer exists."), code="gone")
    if member.status == Member.Status.CLOSED:
        raise ReferralError(_("This member closed their account; it cannot be reopened."), code="closed")
    if member.status == status:
        return member
    before = _snapshot(member)
    Member.objects.filter(pk=member.pk).update(status=status)
    member.status = status
    TreeEvent.objects.create(
        kind=TreeEvent.Kind.STATUS, member=member, actor=actor, before=before, after=_snapshot(member), reason=reason
    )
    return member


@transaction.atomic
def member_close(*, member: Member, actor, reason: str = "", now=None, detail: dict | None = None) -> Member:
    """Mark the member closed (their account closed: members.services.member_close). The node stays where it is,
    so the uplines' chains and the ledger stay exact; a closed member is not active, so they earn nothing and a
    share link's cookie no longer attributes to them (SPEC §5). Also leaves the leaderboards. A row lock, no tree
    lock (not a tree change). Writes a TreeEvent (status; `detail`, what else the closure did, in its `after`).
    Idempotent."""
    member = member_lock(member.pk)
    if member is None:
        raise ReferralError(_("This member no longer exists."), code="gone")
    if member.status == Member.Status.CLOSED:
        return member
    before = _snapshot(member)
    member.status = Member.Status.CLOSED
    member.closed_at = now or timezone.now()
    member.is_named_on_leaderboard = False
    member.save(update_fields=["status", "closed_at", "is_named_on_leaderboard"])
    TreeEvent.objects.create(
        kind=TreeEvent.Kind.STATUS,
        member=member,
        actor=actor,
        before=before,
        after={**_snapshot(member), "closed_at": member.closed_at.isoformat(), **(detail or {})},
        reason=reason or _("The member closed their account."),
    )
    return member


def member_leaderboard_name_set(*, member: Member, is_named: bool) -> Member:
    """The member's own choice whether the leaderboards show their name and shop (else they are anonymised).
    Idempotent: one conditional UPDATE of that column only, so it never overwrites a concurrent tree or status
    write. Not a change to money or to the tree, so no audit row."""
    Member.objects.filter(pk=member.pk).exclude(is_named_on_leaderboard=is_named).update(
        is_named_on_leaderboard=is_named
    )
    member.is_named_on_leaderboard = is_named
    return member


BULK_UPDATE_BATCH = 2_000


@transaction.atomic
def tree_repair(*, actor=None) -> int:
    """Rewrite every member's nested-set fields from the parent links; return how many changed.

    Idempotent: on a valid tree it changes nothing and writes no event. Refuses
    (ReferralError) when the parent links themselves are broken (a cycle), which
    needs a person to decide who goes where.
    """
    tree_lock_acquire()
    _place_all_pending()
    report = tree_check()
    if report.unreachable:
        raise ReferralError(
            _("Parent links form a cycle at members %(ids)s; fix the sponsors by hand first.")
            % {"ids": ", ".join(map(str, report.unreachable[:20]))},
            code="cycle",
        )
    if not report.wrong:
        return 0
    members = []
    for member_id, (_have, (tree_id, lft, rght, level)) in report.wrong.items():
        members.append(Member(pk=member_id, tree_id=tree_id, lft=lft, rght=rght, level=level))
    Member.objects.bulk_update(members, ["tree_id", "lft", "rght", "level"], batch_size=BULK_UPDATE_BATCH)
    TreeEvent.objects.create(
        kind=TreeEvent.Kind.REPAIR,
        actor=actor,
        after={"members_changed": len(members)},
        reason="check_referral_tree --fix",
    )
    return len(members)
