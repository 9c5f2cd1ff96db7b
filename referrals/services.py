"""Every write to members and the upline tree (SPEC §4).

Structural writes (join, move, delete, repair) take the tree lock first, then
re-read the rows they touch: django-mptt computes its updates from the
in-memory `lft`/`rght` of the instances it is given, so a value read before the
lock may already be stale.
"""

from dataclasses import dataclass

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, connection, transaction
from django.utils import timezone
from django.utils.translation import gettext as _
from mptt.exceptions import InvalidMove

from referrals.clicks import MISSING, click_counter, decode_target, encode_target, is_bot, visitor_hash
from referrals.locks import tree_lock_acquire
from referrals.models import (
    ClickFlush,
    Member,
    ShareLink,
    ShareLinkDailyStat,
    TreeEvent,
    new_invite_code,
    new_share_code,
)
from referrals.selectors import (
    LINK_CACHE_SECONDS,
    MISSING_CACHE_SECONDS,
    LinkTarget,
    member_ancestor_ids,
    member_by_invite_code,
    share_link_lookup,
    tree_check,
)


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


def _member_locked(member_id: int) -> Member | None:
    # Row lock after the tree lock (never before), so a concurrent status change is seen and not overwritten.
    return Member.objects.select_for_update().filter(pk=member_id).first()


@transaction.atomic
def member_join(
    *, user, sponsor: Member | None = None, source: str | None = None, actor=None, use_default_sponsor: bool = True
) -> Member:
    """Make `user` a member under `sponsor`; without one, under the configured default sponsor or as a root.

    Staff creating a root pass use_default_sponsor=False. Raises ReferralError if
    the user is already a member or the sponsor is not active. Serialised with
    every other tree write; a user joins at most once.
    """
    tree_lock_acquire()
    if Member.objects.filter(user=user).exists():
        raise ReferralError(_("You are already a member."), code="already_member")
    if sponsor is not None:
        sponsor = _member_locked(sponsor.pk)
        if sponsor is None or not sponsor.is_active:
            raise ReferralError(_("This invitation is no longer valid."), code="sponsor_inactive")
        source = source or Member.JoinSource.INVITE
    else:
        sponsor = _default_sponsor() if use_default_sponsor else None
        if sponsor is not None:
            sponsor = _member_locked(sponsor.pk)
            source = Member.JoinSource.DEFAULT_SPONSOR
        else:
            source = source or Member.JoinSource.DIRECT

    member = Member(user=user, parent=sponsor, invite_code=_unique_invite_code(), join_source=source)
    member.save()
    TreeEvent.objects.create(
        kind=TreeEvent.Kind.JOIN,
        member=member,
        actor=actor or user,
        new_parent=sponsor,
        after=_snapshot(member),
        reason=source,
    )
    return member


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
    tree_lock_acquire()
    member = _member_locked(member.pk)
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
    try:
        member.move_to(new_sponsor, "last-child")
    except InvalidMove as error:  # only reachable when the nested sets are already corrupt
        raise ReferralError(
            _("The tree's derived fields are inconsistent; run check_referral_tree --fix, then move again."),
            code="tree_corrupt",
        ) from error
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


@transaction.atomic
def member_delete(*, member: Member, actor, reason: str) -> None:
    """Remove a member who has no team. A member with a downline must be moved first."""
    tree_lock_acquire()
    member = _member_locked(member.pk)
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
    if status not in Member.Status.values:
        raise ReferralError(_("Unknown status %(status)s.") % {"status": status}, code="bad_status")
    member = _member_locked(member.pk)
    if member is None:
        raise ReferralError(_("This member no longer exists."), code="gone")
    if member.status == status:
        return member
    before = _snapshot(member)
    Member.objects.filter(pk=member.pk).update(status=status)
    member.status = status
    TreeEvent.objects.create(
        kind=TreeEvent.Kind.STATUS, member=member, actor=actor, before=before, after=_snapshot(member), reason=reason
    )
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


# --- Share links and clicks (SPEC §5) ---------------------------------------------


@transaction.atomic
def share_link_create(*, owner: Member, product=None, campaign: str = "") -> ShareLink:
    """A new link to the owner's own shop, or to a product listed in it. ReferralError otherwise."""
    from shops.models import Shop, ShopListing

    shop = Shop.objects.filter(owner=owner).first()
    if shop is None:
        raise ReferralError(_("Open your shop first; links point to your own shop."), code="no_shop")
    if product is not None and not ShopListing.objects.filter(shop=shop, product=product).exists():
        raise ReferralError(_("You can only link to products listed in your own shop."), code="not_listed")
    campaign = (campaign or "").strip()
    if len(campaign) > 60:
        raise ReferralError(_("Keep the campaign label under 60 characters."), code="campaign")
    while True:
        code = new_share_code()
        if not ShareLink.objects.filter(code=code).exists():
            break
    return ShareLink.objects.create(owner=owner, shop=shop, product=product, code=code, campaign=campaign)


@transaction.atomic
def share_link_deactivate(*, link: ShareLink) -> ShareLink:
    """Stop the link; /l/<code> answers 404 from the commit on.

    Its cached target is replaced by a tombstone (not deleted) once the change is committed, and a redirect that
    read the link from the database just before never overwrites a tombstone, so no stale target comes back.
    """
    ShareLink.objects.filter(pk=link.pk).update(is_active=False)
    link.is_active = False
    code = link.code
    transaction.on_commit(
        lambda: click_counter().target_store(code, MISSING, LINK_CACHE_SECONDS, overwrite=True), robust=True
    )
    return link


@dataclass(frozen=True)
class Followed:
    """What /l/<code> found: the target, and whether the click was counted (not a bot)."""

    target: LinkTarget
    counted: bool


def share_link_follow(*, code: str, ip: str, user_agent: str) -> Followed | None:
    """Resolve /l/<code> and count the click, without a database write; None for an unknown or inactive link.

    Usually one Redis call (the cached target and the count, in one script). A miss reads the database once and
    caches the answer (a 404 too, briefly). Bots and link-preview fetchers are redirected but not counted.
    """
    counter = click_counter()
    day = timezone.localdate()
    visitor = None if is_bot(user_agent) else visitor_hash(code=code, day=day, ip=ip, user_agent=user_agent)
    value = counter.follow(code=code, day=day, visitor=visitor)
    if value is None:
        target = share_link_lookup(code)
        if target is None:
            counter.target_store(code, MISSING, MISSING_CACHE_SECONDS)
            return None
        counter.target_store(code, encode_target(target.link_id, target.owner_id, target.url), LINK_CACHE_SECONDS)
        if visitor is not None:
            counter.record(link_id=target.link_id, day=day, visitor=visitor)
        return Followed(target, visitor is not None)
    if value == MISSING:
        return None
    return Followed(LinkTarget(*decode_target(value)), visitor is not None)


def clicks_flush() -> int:
    """Move counted clicks into ShareLinkDailyStat; return how many clicks were applied.

    Safe to run twice or concurrently: each batch is applied in one transaction that
    first records its batch id (unique), and is dropped from the counter only after.
    """
    counter = click_counter()
    applied = 0
    for batch in counter.batches():
        total = sum(clicks for clicks, _uniques in batch.counts.values())
        try:
            with transaction.atomic():
                ClickFlush.objects.create(batch_id=batch.batch_id, clicks=total)
                _stats_add(batch.counts)
        except IntegrityError:
            pass  # applied already (by an earlier run that stopped before ack, or by a concurrent one)
        else:
            applied += total
        counter.ack(batch.batch_id)
    return applied


def _stats_add(counts) -> None:
    existing = set(ShareLink.objects.filter(pk__in={link_id for link_id, _day in counts}).values_list("pk", flat=True))
    rows = [
        (link_id, day, clicks, uniques) for (link_id, day), (clicks, uniques) in counts.items() if link_id in existing
    ]
    table = connection.ops.quote_name(ShareLinkDailyStat._meta.db_table)
    with connection.cursor() as cursor:
        cursor.executemany(
            f"INSERT INTO {table} (link_id, day, clicks, unique_visitors) VALUES (%s, %s, %s, %s) "  # noqa: S608
            f"ON CONFLICT (link_id, day) DO UPDATE SET clicks = {table}.clicks + EXCLUDED.clicks, "
            f"unique_visitors = {table}.unique_visitors + EXCLUDED.unique_visitors",
            rows,
        )
