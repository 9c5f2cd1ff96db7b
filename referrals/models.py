import secrets

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from mptt.models import MPTTModel, TreeForeignKey

# No 0/O, 1/I/L: codes are read aloud and typed from posters.
INVITE_CODE_ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"
INVITE_CODE_LENGTH = 8  # 31**8, about 8.5e11 codes


def new_invite_code() -> str:
    return "".join(secrets.choice(INVITE_CODE_ALPHABET) for _ in range(INVITE_CODE_LENGTH))


class Member(MPTTModel):
    """One participant in the programme: a node of the upline tree.

    `parent` (the sponsor) is the source of truth. django-mptt's `lft`, `rght`,
    `tree_id` and `level` are derived data for team queries; `check_referral_tree`
    verifies and rebuilds them. Write the tree only through `referrals.services`.
    A member who just joined may be pending for a few seconds (`lft = rght = 0`): not
    yet in django-mptt's queries, counted by `referrals.selectors.member_pending_team`.
    """

    class Status(models.TextChoices):
        ACTIVE = "active", _("Active")
        SUSPENDED = "suspended", _("Suspended")
        # The member closed their account (members.services.member_close): the node stays, anonymised, so the
        # uplines' chains and the ledger stay exact; a closed member earns nothing (not active).
        CLOSED = "closed", _("Closed")

    class JoinSource(models.TextChoices):
        INVITE = "invite", _("Invite link")
        SHARE_LINK = "share_link", _("Share link")
        DEFAULT_SPONSOR = "default_sponsor", _("Default sponsor")
        DIRECT = "direct", _("No sponsor")
        STAFF = "staff", _("Added by staff")

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="member", verbose_name=_("user")
    )
    parent = TreeForeignKey(
        "self",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="children",
        verbose_name=_("sponsor"),
    )
    # Unique through a constraint, not unique=True, which on PostgreSQL adds a second (LIKE) index on the column.
    invite_code = models.CharField(_("invite code"), max_length=16, editable=False)
    status = models.CharField(_("status"), max_length=16, choices=Status.choices, default=Status.ACTIVE)
    join_source = models.CharField(_("joined through"), max_length=20, choices=JoinSource.choices)
    joined_at = models.DateTimeField(_("joined"), default=timezone.now, editable=False)
    closed_at = models.DateTimeField(_("closed"), null=True, blank=True, editable=False)
    # The member's choice (members' leaderboard page): off, the leaderboards show them anonymised, never their name
    # or shop. Changed only through referrals.services.member_leaderboard_name_set.
    is_named_on_leaderboard = models.BooleanField(
        _("named on the leaderboard"),
        default=False,
        db_default=False,
        help_text=_("Off: the leaderboards show this member anonymised, without their name or shop."),
    )

    # django-mptt would add this field with an index of its own; (tree_id, lft) already serves every tree_id
    # lookup, and each index is one more write for every row an index pass shifts (a million at a million members).
    tree_id = models.PositiveIntegerField(editable=False)

    class MPTTMeta:
        order_insertion_by: list[str] = []

    class Meta:
        verbose_name = _("member")
        verbose_name_plural = _("members")
        indexes = [
            models.Index(fields=["tree_id", "lft"], name="referrals_member_tree_lft"),
            # The team page: one level of a downline in tree order, and the count per level, without scanning
            # the whole downline (100,000 rows) for the few at that level.
            models.Index(fields=["tree_id", "level", "lft"], name="referrals_member_tree_level"),
            # New members whose nested-set fields wait for the index pass (lft = rght = 0), by sponsor: the pass
            # reads them all, a team page finds its members' pending children. The only partial index on pending
            # rows: with an index on (id) as well, the planner (whose statistics rarely see pending rows) probed a
            # sponsor's children by scanning every pending row, once per member of a team.
            models.Index(fields=["parent"], condition=models.Q(lft=0), name="referrals_member_pend_parent"),
        ]
        constraints = [
            models.UniqueConstraint(fields=["invite_code"], name="referrals_member_invite_code_unique"),
            # Backstop for the tree lock: two roots can never share a tree id.
            models.UniqueConstraint(
                fields=["tree_id"], condition=models.Q(parent__isnull=True), name="referrals_member_one_root_per_tree"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.user} ({self.invite_code})"

    @property
    def display_name(self) -> str:
        """What other members and the public see: the name, else a masked email; never the full address."""
        name = self.user.get_full_name().strip()
        if name:
            return name
        local, _at, domain = (self.user.email or "").partition("@")
        return f"{local[:2]}***@{domain}" if domain else _("a member")

    @property
    def is_active(self) -> bool:
        return self.status == self.Status.ACTIVE

    @property
    def is_closed(self) -> bool:
        return self.status == self.Status.CLOSED


def member_reference(verbose_name, *, db_index: bool = True) -> models.ForeignKey:
    # No database constraint: an audit row keeps the member's id after the member is deleted.
    return models.ForeignKey(
        Member,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        db_index=db_index,
        null=True,
        related_name="+",
        verbose_name=verbose_name,
    )


class TreeEvent(models.Model):
    """Audit row for every change to the tree or to a member's standing.

    Member references keep their ids even if the member row is later deleted
    (no database constraint), so the history outlives what it describes.
    """

    class Kind(models.TextChoices):
        JOIN = "join", _("Joined")
        MOVE = "move", _("Re-parented")
        DELETE = "delete", _("Deleted")
        STATUS = "status", _("Status changed")
        REPAIR = "repair", _("Tree repaired")

    kind = models.CharField(_("kind"), max_length=16, choices=Kind.choices)
    member = member_reference(_("member"), db_index=False)  # (member, -created_at) below serves it
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("actor"),
    )
    old_parent = member_reference(_("old sponsor"))
    new_parent = member_reference(_("new sponsor"))
    before = models.JSONField(_("before"), default=dict, blank=True)
    after = models.JSONField(_("after"), default=dict, blank=True)
    reason = models.TextField(_("reason"), blank=True)
    created_at = models.DateTimeField(_("time"), default=timezone.now, db_index=True)

    class Meta:
        verbose_name = _("tree event")
        verbose_name_plural = _("tree events")
        ordering = ("-created_at", "-pk")
        indexes = [models.Index(fields=["member", "-created_at"])]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} #{self.member_id} at {self.created_at:%Y-%m-%d %H:%M}"
