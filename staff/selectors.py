"""What the staff overview reads: one database query per figure or series, whatever the amount of data.

The back office owns no business data: these only read other apps' models, and every sum and count is made by
the database (daily series with TruncDate in the current time zone), so the page's query count is constant.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from itertools import pairwise

from celery.schedules import crontab
from celery.schedules import schedule as interval_schedule
from django.conf import settings
from django.db.models import Count, Exists, Max, Min, OuterRef, Q, Sum
from django.db.models.functions import TruncDate
from django.utils import timezone

from commissions.models import CommissionEntry, OrderSplit, SplitQueue
from core.money import ZERO, money_sum
from payouts.models import Withdrawal
from shops.models import ClickFlush, Order
from staff.jobs import RECORDED_JOBS
from staff.models import JobRun

OVERVIEW_DAYS = 30
# A paid order still unsplit (or a queue row still waiting) after this long means the split task is not keeping up.
SPLIT_LATE_AFTER = timedelta(minutes=10)
# A job is late when it has not finished for this many of its beat intervals.
JOB_LATE_INTERVALS = 2

# (JobRun name, the Celery task it records, so its interval is read from CELERY_BEAT_SCHEDULE)
MONITORED_JOBS = tuple((job.name, job.task) for job in RECORDED_JOBS if job.on_overview)

_MINUTES_PER_WEEK = 7 * 24 * 60


# --- The last 30 days -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DayFigures:
    day: date
    sales: Decimal  # gross total of the orders paid that day
    commission: Decimal  # member commission written that day (level ≥ 1 entries of every kind, so net of refunds)
    payouts: Decimal  # withdrawals paid that day


@dataclass(frozen=True)
class DailySeries:
    days: list[DayFigures]  # oldest first, one per calendar day, days without activity included
    sales_total: Decimal
    commission_total: Decimal
    payouts_total: Decimal


def _per_day(queryset, field: str, amount: str, start: datetime) -> dict[date, Decimal]:
    """{local day: sum of `amount`} of the rows whose `field` is at or after `start` (one query)."""
    rows = (
        queryset.filter(**{f"{field}__gte": start})
        .annotate(day=TruncDate(field, tzinfo=timezone.get_current_timezone()))
        .values("day")
        .annotate(total=Sum(amount))
        .order_by("day")
        .values_list("day", "total")
    )
    return {day: money_sum(total) for day, total in rows}


def daily_series(*, today: date | None = None, days: int = OVERVIEW_DAYS) -> DailySeries:
    """Sales, member commission and payouts per day for the `days` days ending `today` (local time): 3 queries."""
    today = today or timezone.localdate()
    first = today - timedelta(days=days - 1)
    start = timezone.make_aware(datetime.combine(first, time.min))
    sales = _per_day(Order.objects.filter(paid_at__isnull=False), "paid_at", "total", start)
    commission = _per_day(CommissionEntry.objects.filter(level__gte=1), "created_at", "amount", start)
    payouts = _per_day(Withdrawal.objects.filter(status=Withdrawal.Status.PAID), "paid_at", "amount", start)
    figures = [
        DayFigures(
            day=day, sales=sales.get(day, ZERO), commission=commission.get(day, ZERO), payouts=payouts.get(day, ZERO)
        )
        for day in (first + timedelta(days=offset) for offset in range(days))
    ]
    return DailySeries(
        days=figures,
        sales_total=sum((row.sales for row in figures), ZERO),
        commission_total=sum((row.commission for row in figures), ZERO),
        payouts_total=sum((row.payouts for row in figures), ZERO),
    )


# --- Work waiting for staff -------------------------------------------------------------------------------


@dataclass(frozen=True)
class PendingWithdrawals:
    requested_count: int
    requested_total: Decimal
    approved_count: int
    approved_total: Decimal


def pending_withdrawals() -> PendingWithdrawals:
    """Withdrawals waiting for a decision (requested) and for a batch (approved): one query."""
    requested = Q(status=Withdrawal.Status.REQUESTED)
    approved = Q(status=Withdrawal.Status.APPROVED)
    row = Withdrawal.objects.filter(requested | approved).aggregate(
        requested_count=Count("pk", filter=requested),
        requested_total=Sum("amount", filter=requested),
        approved_count=Count("pk", filter=approved),
        approved_total=Sum("amount", filter=approved),
    )
    return PendingWithdrawals(
        requested_count=row["requested_count"],
        requested_total=money_sum(row["requested_total"]),
        approved_count=row["approved_count"],
        approved_total=money_sum(row["approved_total"]),
    )


@dataclass(frozen=True)
class AwaitingShipment:
    count: int
    oldest_paid_at: datetime | None


def orders_awaiting_shipment() -> AwaitingShipment:
    """Paid orders not yet shipped, and when the oldest was paid: one query."""
    row = Order.objects.filter(status=Order.Status.PAID).aggregate(count=Count("pk"), oldest=Min("paid_at"))
    return AwaitingShipment(count=row["count"], oldest_paid_at=row["oldest"])


# --- Health -----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SplitHealth:
    unsplit_count: int  # paid orders without a split marker
    unsplit_oldest_paid_at: datetime | None
    queue_length: int
    queue_oldest_at: datetime | None
    is_late: bool  # an unsplit order or a queue row older than SPLIT_LATE_AFTER


def split_health(*, now: datetime | None = None) -> SplitHealth:
    """Is the commission split keeping up? Two queries."""
    now = now or timezone.now()
    unsplit = (
        Order.objects.filter(paid_at__isnull=False)
        .exclude(Exists(OrderSplit.objects.filter(order=OuterRef("pk"))))
        .aggregate(count=Count("pk"), oldest=Min("paid_at"))
    )
    queue = SplitQueue.objects.aggregate(count=Count("pk"), oldest=Min("queued_at"))
    late_before = now - SPLIT_LATE_AFTER
    is_late = any(moment is not None and moment < late_before for moment in (unsplit["oldest"], queue["oldest"]))
    return SplitHealth(
        unsplit_count=unsplit["count"],
        unsplit_oldest_paid_at=unsplit["oldest"],
        queue_length=queue["count"],
        queue_oldest_at=queue["oldest"],
        is_late=is_late,
    )


def last_click_flush_at() -> datetime | None:
    """When the last batch of counted clicks was applied (none when nobody clicked): one query."""
    return ClickFlush.objects.aggregate(latest=Max("applied_at"))["latest"]


def beat_interval(entry_schedule) -> timedelta | None:
    """How long a beat schedule may leave between two runs: the interval, or a crontab's longest gap in a week.

    Pure: takes what CELERY_BEAT_SCHEDULE holds (seconds, a timedelta, a celery schedule or a crontab).
    """
    if isinstance(entry_schedule, int | float):
        return timedelta(seconds=entry_schedule)
    if isinstance(entry_schedule, timedelta):
        return entry_schedule
    if isinstance(entry_schedule, crontab):
        if len(entry_schedule.month_of_year) < 12:
            return timedelta(days=366)  # some months only: up to a year between runs
        if len(entry_schedule.day_of_month) < 31:
            return timedelta(days=31)
        moments = sorted(
            day * 24 * 60 + hour * 60 + minute
            for day in entry_schedule.day_of_week
            for hour in entry_schedule.hour
            for minute in entry_schedule.minute
        )
        if not moments:
            return None
        gaps = [later - earlier for earlier, later in pairwise(moments)]
        gaps.append(moments[0] + _MINUTES_PER_WEEK - moments[-1])  # from the week's last run to the next week's first
        return timedelta(minutes=max(gaps))
    if isinstance(entry_schedule, interval_schedule):
        return entry_schedule.run_every
    return None


def beat_intervals(beat_schedule: Mapping[str, dict] | None = None) -> dict[str, timedelta]:
    """{task name: interval} of the periodic tasks in CELERY_BEAT_SCHEDULE (the shortest if one appears twice)."""
    beat_schedule = settings.CELERY_BEAT_SCHEDULE if beat_schedule is None else beat_schedule
    intervals: dict[str, timedelta] = {}
    for entry in beat_schedule.values():
        interval = beat_interval(entry.get("schedule"))
        task = entry.get("task")
        if interval is not None and task:
            intervals[task] = min(interval, intervals.get(task, interval))
    return intervals


@dataclass(frozen=True)
class JobHealth:
    name: str
    task: str
    last_finished_at: datetime | None  # None: never ran
    last_result: str
    interval: timedelta | None  # None: not in the beat schedule
    is_late: bool  # never ran, or not for over JOB_LATE_INTERVALS × its interval


def jobs_health(*, now: datetime | None = None) -> list[JobHealth]:
    """The monitored periodic jobs' last runs against their beat intervals: one query."""
    now = now or timezone.now()
    runs = {run.name: run for run in JobRun.objects.filter(name__in=[name for name, _task in MONITORED_JOBS])}
    intervals = beat_intervals()
    health = []
    for name, task in MONITORED_JOBS:
        run = runs.get(name)
        interval = intervals.get(task)
        last = run.last_finished_at if run else None
        # Never finished: beat or the workers are not running, or the job fails before it finishes.
        is_late = last is None or (interval is not None and now - last > JOB_LATE_INTERVALS * interval)
        health.append(
            JobHealth(
                name=name,
                task=task,
                last_finished_at=last,
                last_result=run.last_result if run else "",
                interval=interval,
                is_late=is_late,
            )
        )
    return health


# --- All of it --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class StaffOverview:
    series: DailySeries
    withdrawals: PendingWithdrawals
    shipment: AwaitingShipment
    split: SplitHealth
    last_click_flush_at: datetime | None
    jobs: list[JobHealth]


def staff_overview(*, now: datetime | None = None) -> StaffOverview:
    """Every figure of the overview page: nine queries, whatever the amount of data."""
    now = now or timezone.now()
    return StaffOverview(
        series=daily_series(today=timezone.localdate(now)),
        withdrawals=pending_withdrawals(),
        shipment=orders_awaiting_shipment(),
        split=split_health(now=now),
        last_click_flush_at=last_click_flush_at(),
        jobs=jobs_health(now=now),
    )
