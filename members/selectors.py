"""Reads for the shop owner's pages that combine several apps.

The overview's figures: the member's link clicks and sales (shops) and earnings (commissions), per day and per
period. The team page's: the levels of the downline the policy pays (commissions), and each member of a level
(referrals) with their sales (shops). The orders page's rows: an order (shops) with what the member earns on it
(commissions), its buyer masked. The leaderboard's: the standings (commissions) with the names of the members
who chose to be named (referrals, shops), everyone else anonymised.
"""

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import Decimal

from django.db.models import Count, F, Q
from django.db.models.functions import TruncDate
from django.utils import timezone
from django.utils.crypto import salted_hmac
from django.utils.formats import date_format
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from commissions.selectors import (
    LEADERBOARD_METRICS,
    PendingRelease,
    Standing,
    leaderboard_bounds,
    leaderboard_standings,
    member_earnings_by_day,
    member_order_commissions,
    member_pending_release,
    policy_in_force,
)
from core.masking import mask_email, mask_name, mask_phone
from core.money import ZERO, format_money, money_sum
from payouts.selectors import Balance, member_balance
from referrals.models import Member
from referrals.selectors import member_team_level
from shops.models import Order, Shop
from shops.selectors import SALES, member_link_clicks, member_orders, sharer_sales, shop_progress, sold_orders

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


def member_dashboard_stats(member: Member, today: date) -> DashboardStats:
    """The overview's figures for `member`: clicks, orders, sales and conversion for today, 7 and 30 days, and
    daily earnings and orders for the chart (the balance is `payouts.selectors.member_balance`, as on every page).

    Three queries whatever the number of days, links, orders or entries: one aggregate of the daily link
    statistics, and the member's orders and ledger entries each grouped by day in SQL (days are
    calendar days in the current time zone). Only `member`'s own links, orders (as sharer) and entries are read.
    """
    zone = timezone.get_current_timezone()
    first = today - timedelta(days=DASHBOARD_DAYS - 1)
    start, end = _day_bounds(first, today)
    period_starts = {days: today - timedelta(days=days - 1) for days in DASHBOARD_PERIODS}

    clicks = member_link_clicks(member, first=first, last=today, since=period_starts)
    orders_by_day = {
        row["day"]: row
        for row in sold_orders()
        .filter(sharer=member, paid_at__gte=start, paid_at__lt=end)
        .annotate(day=TruncDate("paid_at", tzinfo=zone))
        .order_by()
        .values("day")
        .annotate(orders=Count("pk"), sales=SALES)
    }
    earnings_by_day = member_earnings_by_day(member, start, end)

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


# --- Team -----------------------------------------------------------------------------------------------------


def commission_levels_in_force(at=None) -> int:
    """How many commission levels the policy in force pays a member: 1 (their own sales) to its `max_levels`
    (1 without a policy). One query."""
    policy = policy_in_force(at)
    return policy.max_levels if policy is not None else 1


def team_levels_for(commission_levels: int) -> int:
    """How many levels of a member's downline the team page shows: those whose sales can pay the member.

    `max_levels` counts the sharer, so a sale by someone k levels below me pays me only if k + 1 <= max_levels:
    the paying levels are 1 .. max_levels - 1. Direct invitees (level 1) are always shown, whom one invited
    being worth seeing even under a one-level policy.
    """
    return max(commission_levels - 1, 1)


def team_levels_in_force(at=None) -> int:
    """`team_levels_for` the policy in force. One query."""
    return team_levels_for(commission_levels_in_force(at))


def member_team_level_sales(
    member: Member, level: int, since: datetime, until: datetime, pending: dict[int, list[int]] | None = None
):
    """`referrals.selectors.member_team_level` (the members exactly `level` links below `member`, in tree order),
    each annotated with `sales`: the paid, not fully refunded orders they shared with `paid_at` in [since, until),
    net of partial refunds. One query per page however large the team."""
    return member_team_level(member, level, pending).annotate(sales=sharer_sales(since, until))


def month_bounds(day: date) -> tuple[datetime, datetime]:
    """[start of the month of `day`, start of the next month) in the current time zone: "this month" of the team's
    sales."""
    month_start = day.replace(day=1)
    next_month = (month_start + timedelta(days=32)).replace(day=1)
    return _day_bounds(month_start, next_month - timedelta(days=1))


# --- Orders ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class OwnerOrderRow:
    """An order as its shop's owner or its sharer sees it: what they earn on it, and who bought masked (name
    initial, phone 139****1111, or the email's first letter when there is no phone), never the address."""

    order: Order
    source: str  # shops.selectors.ORDER_SOURCES
    commission: Decimal | None  # None: no entry for the member on this order (yet)
    buyer_name: str
    buyer_contact: str

    @property
    def number(self) -> str:
        return self.order.number


def member_order_rows(member: Member, orders) -> list[OwnerOrderRow]:
    """A page of `shops.selectors.member_orders` as rows, the member's commission on each read in one query."""
    orders = list(orders)
    commissions = member_order_commissions(member, [order.pk for order in orders])
    return [
        OwnerOrderRow(
            order=order,
            source=order.source,
            commission=commissions.get(order.pk),
            buyer_name=mask_name(order.buyer_name),
            buyer_contact=mask_phone(order.buyer_phone) if order.buyer_phone else mask_email(order.buyer_email),
        )
        for order in orders
    ]


# --- Leaderboard ----------------------------------------------------------------------------------------------

LEADERBOARD_SIZE = 20


def leaderboard_pseudonym(member_id: int) -> str:
    """What a member who did not choose to be named is called on a leaderboard: "Member #" and five digits, the same
    every week, derived from the id with the site's secret key, so it cannot be traced back to an id or a name."""
    digest = salted_hmac("members.leaderboard.pseudonym", str(member_id)).hexdigest()
    return _("Member #%(number)s") % {"number": f"{int(digest[:8], 16) % 100000:05d}"}


@dataclass(frozen=True)
class LeaderboardRow:
    rank: int
    amount: Decimal
    name: str  # the member's display name if they chose to be named (or it is me), else their pseudonym
    shop_name: str  # likewise: blank unless named
    is_me: bool
    is_named: bool


@dataclass(frozen=True)
class Leaderboard:
    metric: str
    period: str
    since: datetime
    until: datetime  # exclusive
    rows: list[LeaderboardRow]  # the top LEADERBOARD_SIZE
    me: LeaderboardRow | None  # my own standing (None: nothing in the period)
    ranked: int  # how many members have more than zero

    @property
    def last_day(self) -> date:
        return timezone.localtime(self.until - timedelta(microseconds=1)).date()


def member_leaderboard(member: Member, *, metric: str, period: str, today: date) -> Leaderboard:
    """The top of the `metric` board for `period`, and `member`'s own standing. Members who did not choose to be
    named are anonymised: their name and shop are never read from the database (only ids), so no page can leak
    them. Standings come from the cache (`commissions.selectors.leaderboard_standings`); then one query for the
    names of the named members on the board (and mine)."""
    if metric not in LEADERBOARD_METRICS:
        raise ValueError(f"unknown leaderboard metric {metric!r}")
    since, until = leaderboard_bounds(period, today)
    standings = leaderboard_standings(metric, since, until)
    top = standings.top(LEADERBOARD_SIZE)
    mine = standings.of(member.pk)
    ids = {standing.member_id for standing in top} | {member.pk}
    named = {
        teammate.pk: teammate
        for teammate in Member.objects.filter(Q(is_named_on_leaderboard=True) | Q(pk=member.pk), pk__in=ids)
        .select_related("user")
        .annotate(shop_name=F("shop__name"))
        .only("pk", "is_named_on_leaderboard", "user__first_name", "user__last_name", "user__email")
    }

    def row(standing: Standing) -> LeaderboardRow:
        found = named.get(standing.member_id)
        return LeaderboardRow(
            rank=standing.rank,
            amount=standing.amount,
            name=found.display_name if found else leaderboard_pseudonym(standing.member_id),
            shop_name=(found.shop_name or "") if found else "",
            is_me=standing.member_id == member.pk,
            is_named=bool(found and found.is_named_on_leaderboard),
        )

    return Leaderboard(
        metric=metric,
        period=period,
        since=since,
        until=until,
        rows=[row(standing) for standing in top],
        me=row(mine) if mine else None,
        ranked=len(standings),
    )


# --- First-run guidance on the overview ------------------------------------------------------------------------

FIRST_RUN_PRODUCTS = 3  # step 2: add this many products to the shop


@dataclass(frozen=True)
class FirstRun:
    """A new member's three first steps, each done or not from what is in the database: 1 open the shop, 2 put
    FIRST_RUN_PRODUCTS products in it, 3 make a link to share (a product's or the shop's)."""

    has_shop: bool
    product_count: int
    has_shared: bool

    @property
    def has_products(self) -> bool:
        return self.product_count >= FIRST_RUN_PRODUCTS

    @property
    def products_counted(self) -> int:
        """The count shown as "n/3": never "5/3"."""
        return min(self.product_count, FIRST_RUN_PRODUCTS)

    @property
    def is_done(self) -> bool:
        return self.has_shop and self.has_products and self.has_shared

    @property
    def done_count(self) -> int:
        return sum((self.has_shop, self.has_products, self.has_shared))


def member_first_run(shop: Shop | None) -> FirstRun:
    """The first steps of the owner of `shop` (None: no shop yet, no query); one query otherwise."""
    if shop is None:
        return FirstRun(has_shop=False, product_count=0, has_shared=False)
    progress = shop_progress(shop)
    return FirstRun(has_shop=True, product_count=progress.product_count, has_shared=progress.has_shared)


# --- Closing an account (issue #24): what stands in the way ----------------------------------------------------

OPEN_ORDER_STATUSES = (Order.Status.PENDING_PAYMENT, Order.Status.PAID, Order.Status.SHIPPED)


@dataclass(frozen=True)
class ClosureBlocker:
    code: str  # suspended, open_orders, pending, in_flight, available
    message: str
    can_give_up: bool = False  # only an available balance: the member may give it up explicitly


@dataclass(frozen=True)
class ClosureReview:
    """What closing `member`'s account would meet: the blockers (each with a sentence saying what to do), and the
    figures the page shows."""

    open_orders: int
    pending: PendingRelease
    balance: Balance
    blockers: list[ClosureBlocker]

    def blocking(self, *, give_up_balance: bool) -> list[ClosureBlocker]:
        """The blockers that still refuse the closure when the member has (or has not) given up their balance."""
        return [b for b in self.blockers if not (b.can_give_up and give_up_balance)]


def member_closure_review(member: Member) -> ClosureReview:
    """The closure page's figures and blockers (a handful of aggregate queries). Read again under the locks by
    members.services.member_close, which refuses with the same blockers."""
    open_orders = member_orders(member).filter(status__in=OPEN_ORDER_STATUSES).count()
    pending = member_pending_release(member)
    balance = member_balance(member)
    blockers = []
    if member.status == Member.Status.SUSPENDED:
        blockers.append(
            ClosureBlocker(
                "suspended",
                _("Your account is suspended while staff look into it; it cannot be closed until they have decided. "
                  "Contact support."),
            )
        )  # fmt: skip
    if open_orders:
        blockers.append(
            ClosureBlocker(
                "open_orders",
                ngettext(
                    "%(count)d order of your shop or through your links is still open (awaiting payment, paid or "
                    "shipped). Wait until it is completed, cancelled or refunded.",
                    "%(count)d orders of your shop or through your links are still open (awaiting payment, paid or "
                    "shipped). Wait until they are completed, cancelled or refunded.",
                    open_orders,
                )
                % {"count": open_orders},
            )
        )
    if pending.amount > ZERO or pending.waiting_for_completion:
        if pending.releases_by and not pending.waiting_for_completion:
            when = _("It becomes available by %(date)s (the refund window ends); close your account after that.") % {
                "date": date_format(timezone.localtime(pending.releases_by), "DATE_FORMAT")
            }
        else:
            when = _("It becomes available when its orders are completed and the refund window has passed.")
        blockers.append(
            ClosureBlocker(
                "pending",
                _("%(amount)s of commission is still on hold.") % {"amount": format_money(pending.amount)} + " " + when,
            )
        )
    if balance.in_flight > ZERO:
        blockers.append(
            ClosureBlocker(
                "in_flight",
                _("%(amount)s is being withdrawn. Wait until the withdrawal is paid (or cancel it).")
                % {"amount": format_money(balance.in_flight)},
            )
        )
    if balance.withdrawable > ZERO:
        blockers.append(
            ClosureBlocker(
                "available",
                _("%(amount)s is available to withdraw. Withdraw it first, or give it up below.")
                % {"amount": format_money(balance.withdrawable)},
                can_give_up=True,
            )
        )
    return ClosureReview(open_orders=open_orders, pending=pending, balance=balance, blockers=blockers)
