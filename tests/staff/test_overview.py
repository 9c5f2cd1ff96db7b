"""The staff overview (/admin/back-office/overview/): who may open it, its figures, its health flags, its cost."""

import re
from datetime import datetime, time, timedelta
from decimal import Decimal

import pytest
from celery.schedules import crontab
from django.contrib.auth.models import Permission
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from commissions.models import CommissionEntry, SplitQueue
from payouts.services import withdrawal_approve, withdrawal_request
from shops.models import Order
from shops.services import order_mark_shipped, share_link_create
from shops.tasks import clicks_flush_task
from staff.charts import Series, amounts_chart_svg
from staff.models import JobRun
from staff.selectors import beat_interval, daily_series, jobs_health, split_health
from staff.services import job_run_record
from tests.factories import MemberFactory, ProductFactory, UserFactory, pay_order, place_order, shop_with_products
from tests.payouts.helpers import bank_account, credit, paid_withdrawal

pytestmark = pytest.mark.django_db

D = Decimal
URL = reverse("staff:overview")
BROWSER = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 Mobile/15E148"


@pytest.fixture
def admin_client(client, staff_user):
    client.force_login(staff_user)
    return client


def _overview_only_staff():
    user = UserFactory(is_staff=True)
    user.user_permissions.add(Permission.objects.get(content_type__app_label="staff", codename="view_staff_overview"))
    return user


def _figure(html: str, element_id: str) -> str:
    match = re.search(rf'id="{element_id}"[^>]*>([^<]*)<', html)
    assert match, f"no #{element_id} on the page"
    return match.group(1).strip()


def _paid_orders(count: int, *, price: str = "100.00") -> list[Order]:
    shop = shop_with_products(ProductFactory(price=D(price)))
    return [pay_order(place_order(shop)) for _ in range(count)]


@pytest.fixture
def business():
    """Two paid orders of 100.00 (one shipped, so one awaits shipment), 500.00 commission credited to a member,
    who then withdrew 30.00 (paid), 20.00 (approved) and 50.00 (requested)."""
    first, second = _paid_orders(2)
    order_mark_shipped(order=second)
    member = MemberFactory()
    credit(member, "500.00")
    bank_account(member)
    paid_withdrawal(member, "30.00")
    withdrawal_approve(withdrawal=withdrawal_request(member=member, amount=D("20.00")), actor=None)
    withdrawal_request(member=member, amount=D("50.00"))
    return first, second


# --- who may open it -----------------------------------------------------------------------------------------


def test_staff_without_the_permission_are_refused(client):
    client.force_login(UserFactory(is_staff=True))

    assert client.get(URL).status_code == 403


def test_people_who_are_not_staff_are_sent_to_the_login(client):
    client.force_login(UserFactory(is_staff=False))

    response = client.get(URL)

    assert response.status_code == 302
    assert reverse("admin:login") in response["Location"]


def test_superuser_opens_it(admin_client):
    response = admin_client.get(URL)

    assert response.status_code == 200
    html = response.content.decode()
    assert "<svg" in html and 'id="daily-table"' in html
    assert reverse("admin:payouts_withdrawal_changelist") + "?status__exact=requested" in html
    assert reverse("admin:shops_order_changelist") + "?status__exact=paid" in html


def test_staff_with_only_the_overview_permission_open_it_without_links_they_cannot_follow(client, business):
    client.force_login(_overview_only_staff())

    response = client.get(URL)

    assert response.status_code == 200
    html = response.content.decode()
    assert _figure(html, "withdrawals-requested-count") == "1"
    assert reverse("admin:payouts_withdrawal_changelist") not in html
    assert reverse("admin:shops_order_changelist") not in html


def test_page_has_no_script_and_no_inline_styles(admin_client, business):
    html = admin_client.get(URL).content.decode()
    content = html[html.index('id="content-main"') :]

    assert "<script" not in content
    assert "style=" not in content


# --- the figures --------------------------------------------------------------------------------------------


def test_figures_are_exact(admin_client, business):
    first, _second = business

    html = admin_client.get(URL).content.decode()

    assert _figure(html, "withdrawals-requested-count") == "1"
    assert _figure(html, "withdrawals-requested-total") == "¥50.00"
    assert _figure(html, "withdrawals-approved-count") == "1"
    assert _figure(html, "withdrawals-approved-total") == "¥20.00"
    assert _figure(html, "awaiting-shipment-count") == "1"
    assert _figure(html, "total-sales") == "¥200.00"
    assert _figure(html, "total-commission") == "¥500.00"
    assert _figure(html, "total-payouts") == "¥30.00"
    assert _figure(html, "unsplit-count") == "2"  # the split task never ran: nobody executed the on-commit hooks
    assert _figure(html, "queue-length") == "2"


def test_daily_series_puts_each_amount_on_its_local_day():
    # given: commission written just after local midnight today (the previous day in UTC), 29 days ago, and 30
    # days ago (outside the window)
    member = MemberFactory()
    today = timezone.localdate()
    early_today = credit(member, "1.10")
    oldest_kept = credit(member, "2.20")
    too_old = credit(member, "4.40")
    local_midnight = timezone.make_aware(datetime.combine(today, time.min))
    CommissionEntry.objects.filter(pk=early_today.pk).update(created_at=local_midnight + timedelta(minutes=30))
    CommissionEntry.objects.filter(pk=oldest_kept.pk).update(created_at=local_midnight - timedelta(days=29))
    CommissionEntry.objects.filter(pk=too_old.pk).update(created_at=local_midnight - timedelta(seconds=1, days=29))

    # when
    series = daily_series(today=today)

    # then
    assert len(series.days) == 30
    assert series.days[0].day == today - timedelta(days=29)
    assert series.days[-1].day == today
    assert series.days[-1].commission == D("1.10")
    assert series.days[0].commission == D("2.20")
    assert series.commission_total == D("3.30")
    assert all(row.sales == D("0.00") and row.payouts == D("0.00") for row in series.days)


def test_platform_remainder_is_not_member_commission():
    order = _paid_orders(1)[0]
    line = order.lines.get()
    CommissionEntry.objects.create(
        order=order, order_line=line, level=0, kind="platform", base=D("10.00"), rate=D("1.0000"), amount=D("10.00")
    )

    assert daily_series().commission_total == D("0.00")
    assert daily_series().sales_total == D("100.00")


# --- health -------------------------------------------------------------------------------------------------


def test_an_unsplit_paid_order_shows_and_turns_red_after_ten_minutes(admin_client, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        _paid_orders(1)  # split at once
    late = _paid_orders(1)[0]  # its split never ran

    fresh = admin_client.get(URL).content.decode()
    assert _figure(fresh, "unsplit-count") == "1"
    assert _figure(fresh, "queue-length") == "1"
    assert 'id="split-late"' not in fresh

    eleven_minutes_ago = timezone.now() - timedelta(minutes=11)
    Order.objects.filter(pk=late.pk).update(paid_at=eleven_minutes_ago)
    SplitQueue.objects.filter(order=late).update(queued_at=eleven_minutes_ago)
    stale = admin_client.get(URL).content.decode()

    assert 'id="split-late"' in stale
    assert split_health().is_late is True


def test_an_order_lost_from_the_queue_still_counts_as_unsplit():
    order = _paid_orders(1)[0]
    SplitQueue.objects.filter(order=order).delete()

    health = split_health()

    assert (health.unsplit_count, health.queue_length) == (1, 0)
    assert health.unsplit_oldest_paid_at == Order.objects.get(pk=order.pk).paid_at


def test_the_click_flush_task_records_its_run_and_the_page_shows_it(client, admin_client):
    product = ProductFactory()
    shop = shop_with_products(product)
    link = share_link_create(owner=shop.owner, product=product)
    client.get(reverse("share_link", args=[link.code]), HTTP_USER_AGENT=BROWSER, REMOTE_ADDR="10.0.0.1")

    before = admin_client.get(URL).content.decode()
    assert clicks_flush_task.delay().get() == 1  # eager: Celery's task_success records the run
    after = admin_client.get(URL).content.decode()

    run = JobRun.objects.get(name="clicks_flush")
    assert run.last_result == "1"
    assert "never" in _job_row(before, "clicks_flush")
    row = _job_row(after, "clicks_flush")
    assert "never" not in row and "late" not in row
    assert 'class="overview-alert"' not in row
    assert "never" not in after[after.index('id="health-click-flush"') :][:300]
    # the jobs the commissions tasks record have not run here
    assert "never" in _job_row(after, "commission_release")
    assert "overview-alert" in _job_row(after, "commission_sweep")


def _job_row(html: str, name: str) -> str:
    start = html.index(f'id="job-{name}"')
    return html[start - 20 : html.index("</tr>", start)]


def test_a_job_is_late_after_twice_its_beat_interval():
    now = timezone.now()
    job_run_record(name="clicks_flush", result="0")  # every 30 seconds
    job_run_record(name="commission_sweep", result="3")  # every 120 seconds
    JobRun.objects.filter(name="clicks_flush").update(last_finished_at=now - timedelta(seconds=61))
    JobRun.objects.filter(name="commission_sweep").update(last_finished_at=now - timedelta(seconds=239))

    health = {job.name: job for job in jobs_health(now=now)}

    assert health["clicks_flush"].is_late is True
    assert health["clicks_flush"].interval == timedelta(seconds=30)
    assert health["commission_sweep"].is_late is False
    assert health["commission_sweep"].last_result == "3"
    assert health["commission_release"].last_finished_at is None  # never ran
    assert health["commission_release"].is_late is True
    assert health["commission_release"].interval == timedelta(hours=1)


def test_beat_interval_reads_every_kind_of_schedule():
    assert beat_interval(30.0) == timedelta(seconds=30)
    assert beat_interval(timedelta(minutes=5)) == timedelta(minutes=5)
    assert beat_interval(crontab(minute=5)) == timedelta(hours=1)
    assert beat_interval(crontab(minute="*/15")) == timedelta(minutes=15)
    assert beat_interval(crontab(hour=3, minute=17)) == timedelta(days=1)
    assert beat_interval(crontab(hour=3, minute=0, day_of_week="mon,thu")) == timedelta(days=4)
    assert beat_interval("nonsense") is None


# --- the chart ---------------------------------------------------------------------------------------------


def test_chart_escapes_every_text_and_draws_one_line_per_series():
    days = [timezone.localdate() - timedelta(days=1), timezone.localdate()]

    svg = amounts_chart_svg(
        days,
        [Series("<b>Sales</b>", [D("1.00"), D("-2.00")]), Series('Say "hi"', [D("0.00"), D("3.00")])],
        title="<script>alert(1)</script>",
        description="a & b",
    )

    assert "<script" not in svg and "<b>" not in svg
    assert "&lt;script&gt;" in svg and "a &amp; b" in svg and "Say &quot;hi&quot;" in svg
    assert svg.count("<polyline") == 2
    assert svg.count("<rect") == 2  # one hover column per day


def test_chart_refuses_series_of_the_wrong_length():
    with pytest.raises(ValueError, match="one value per day"):
        amounts_chart_svg([timezone.localdate()], [Series("x", [])], title="t", description="d")


# --- cost ---------------------------------------------------------------------------------------------------


def _page_queries(client) -> int:
    with CaptureQueriesContext(connection) as queries:
        response = client.get(URL)
    assert response.status_code == 200
    return len(queries)


# session, user, 3 daily series, withdrawals, shipment, unsplit orders, split queue, click flush, job runs (+ the
# user's and their groups' permissions for staff who are not superusers)
@pytest.mark.parametrize(("as_superuser", "bound"), [(True, 11), (False, 13)], ids=["superuser", "overview-only staff"])
def test_query_count_does_not_grow_with_the_data(
    client, staff_user, django_assert_max_num_queries, as_superuser, bound
):
    client.force_login(staff_user if as_superuser else _overview_only_staff())
    _paid_orders(1)
    member = MemberFactory()
    credit(member, "100.00")
    bank_account(member)
    withdrawal_request(member=member, amount=D("10.00"))
    client.get(URL)  # warm Django's own caches first
    with django_assert_max_num_queries(bound):
        small = _page_queries(client)

    for _ in range(5):
        _paid_orders(3)
        other = MemberFactory()
        credit(other, "100.00")
        bank_account(other)
        paid_withdrawal(other, "10.00")
        withdrawal_request(member=other, amount=D("20.00"))
    clicks_flush_task.delay()
    with django_assert_max_num_queries(bound):
        large = _page_queries(client)

    assert large == small
