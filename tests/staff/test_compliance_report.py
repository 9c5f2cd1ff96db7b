"""The compliance report (staff/reports.py, staff/compliance.py) against hand-computed figures.

Orders are paid and split through the real services (sandbox webhook, split task on commit). One order is moved
to the previous month afterwards (its `paid_at` only) so that the report spans two calendar months.

The fixture, under policy v2 (2 levels, max payout ratio 0.30) and plan v2 (0.5 / 0.3 of the pool):
- tea order, 3 × 19.90 at 12.5 %: net 59.70, pool 7.4625 → 7.46; Sara (level 1) 7.46 × 0.5 = 3.73,
  Paul (level 2) 7.46 × 0.3 = 2.238 → 2.23. Members 5.96 ≤ 0.30 × 59.70 = 17.91: no cap.
- gold order, 1 × 100.00 at 90 %: net 100.00, pool 90.00; planned 45.00 + 27.00 = 72.00 > 0.30 × 100.00 = 30.00,
  so the max payout ratio binds: every share × 30/72 → Sara 18.75, Paul 11.25 (both entries capped).
- old order (previous month), 1 × 19.90 at 12.5 %: net 19.90, pool 2.4875 → 2.49; Sara 1.245 → 1.24,
  Paul 0.747 → 0.74.
Totals: sales 179.60; commission 37.94 (level 1: 3.73 + 18.75 + 1.24 = 23.72, level 2: 2.23 + 11.25 + 0.74 = 14.22).
"""

import csv
import io
from datetime import datetime, time, timedelta
from decimal import Decimal
from operator import attrgetter
from types import SimpleNamespace

import pytest
from django.conf import settings
from django.contrib.auth.models import Permission
from django.urls import reverse
from django.utils import timezone

from commissions.models import CommissionEntry, OrderSplit
from commissions.services import plan_activate, plan_create, policy_publish
from shops.models import Order
from shops.services import order_refund
from staff.reports import compliance_report
from tests.factories import ProductFactory, UserFactory, make_chain, pay_order, place_order, shop_with_products

pytestmark = pytest.mark.django_db

D = Decimal
Entry = CommissionEntry
URL = "staff:compliance_report"
CSV_URL = "staff:compliance_report_csv"


def previous_month_start(today):
    return (today.replace(day=1) - timedelta(days=1)).replace(day=1)


def pay(order, capture):
    with capture(execute=True):
        return pay_order(order)


@pytest.fixture
def world(staff_user, django_capture_on_commit_callbacks):
    grace, paul, sara = make_chain(3)
    policy = policy_publish(actor=staff_user, note="report test", max_levels=2)
    plan = plan_activate(
        plan=plan_create(actor=staff_user, name="Generous", rates=(D("0.5000"), D("0.3000"))), actor=staff_user
    )
    tea = ProductFactory(title="Oolong tea", price=D("19.90"), commission_rate=D("0.1250"))
    gold = ProductFactory(title="Gold tea", price=D("100.00"), commission_rate=D("0.9000"))
    shop = shop_with_products(tea, gold, owner=sara)
    tea_order = pay(place_order(shop, {tea: 3}), django_capture_on_commit_callbacks)
    gold_order = pay(place_order(shop, {gold: 1}), django_capture_on_commit_callbacks)
    old_order = pay(place_order(shop, {tea: 1}), django_capture_on_commit_callbacks)
    today = timezone.localdate()
    last_month = previous_month_start(today).replace(day=15)
    Order.objects.filter(pk=old_order.pk).update(paid_at=timezone.make_aware(datetime.combine(last_month, time(12, 0))))
    return SimpleNamespace(
        grace=grace,
        paul=paul,
        sara=sara,
        policy=policy,
        plan=plan,
        tea=tea,
        gold=gold,
        shop=shop,
        tea_order=tea_order,
        gold_order=gold_order,
        old_order=old_order,
        date_from=previous_month_start(today),
        date_to=today,
    )


def report_of(world):
    return compliance_report(date_from=world.date_from, date_to=world.date_to)


def corrupt(world, order, *, level, amount, policy=None, kind=Entry.Kind.COMMISSION, base=None, refund=None):
    """Test-only corruption: a ledger row written with the ORM, past every service check."""
    line = order.lines.get()
    return Entry.objects.create(
        order=order,
        order_line=line,
        refund=refund,
        beneficiary=world.grace,
        level=level,
        kind=kind,
        base=base if base is not None else Entry.objects.filter(order_line=line).values_list("base", flat=True)[0],
        rate=D("0.1000"),
        amount=amount,
        plan=world.plan,
        policy=policy or world.policy,
    )


def check(report, code):
    return next(c for c in report.checks if c.code == code)


# --- figures -----------------------------------------------------------------------------------------------------


def test_the_report_matches_the_hand_computed_figures(world):
    # when
    report = report_of(world)

    # then: sales and commission
    assert report.gross_sales == D("179.60")
    assert report.refunded_sales == D("0.00")
    assert report.net_sales == D("179.60")
    assert report.gross_commission == D("37.94")
    assert report.member_commission == D("37.94")
    assert report.payout_ratio == D("0.2112")  # 37.94 / 179.60 = 0.21125
    assert report.gross_payout_ratio == D("0.2112")
    # per level
    levels = {row.level: row for row in report.levels}
    assert [row.level for row in report.levels] == [1, 2, 3]
    assert levels[1].member_commission == D("23.72")
    assert levels[2].member_commission == D("14.22")
    assert levels[3].member_commission == D("0.00")
    assert levels[1].payout_ratio == D("0.1321")  # 23.72 / 179.60 = 0.13207
    assert levels[2].payout_ratio == D("0.0792")  # 14.22 / 179.60 = 0.07918
    assert levels[3].payout_ratio == D("0.0000")
    assert levels[1].lines_paid == 3
    assert levels[2].lines_paid == 3
    # own sales versus others' sales
    assert report.own_sales_commission == D("23.72")
    assert report.others_sales_commission == D("14.22")
    assert report.others_sales_share == D("0.3748")  # 14.22 / 37.94 = 0.37480
    assert report.own_sales_share == D("0.6252")
    assert report.others_sales_percent == D("37.48")
    # per month: the old order alone last month, the other two this month
    assert [(m.month, m.net_sales, m.member_commission, m.payout_ratio) for m in report.months] == [
        (world.date_from, D("19.90"), D("1.98"), D("0.0995")),  # 1.98 / 19.90 = 0.09950
        (world.date_to.replace(day=1), D("159.70"), D("35.96"), D("0.2252")),  # 35.96 / 159.70 = 0.22517
    ]
    # levels actually paid and the tree
    assert [(row.levels, row.lines) for row in report.levels_paid] == [(0, 0), (1, 0), (2, 3), (3, 0)]
    assert report.lines_split == 3
    assert report.max_level_paid == 2
    assert [(row.depth, row.members) for row in report.depths] == [(1, 1), (2, 1), (3, 1)]


def test_capped_entries_are_listed_with_the_cap(world):
    report = report_of(world)

    assert report.capped_count == 2
    fields = attrgetter(
        "order_number", "level", "beneficiary_id", "base", "rate", "uncapped_amount", "amount", "capped_by", "cap_rate"
    )
    assert [fields(entry) for entry in report.capped_entries] == [
        (world.gold_order.number, 1, world.sara.pk, D("90.00"), D("0.5000"), D("45.00"), D("18.75"),
         "max_payout_ratio", D("0.3000")),
        (world.gold_order.number, 2, world.paul.pk, D("90.00"), D("0.3000"), D("27.00"), D("11.25"),
         "max_payout_ratio", D("0.3000")),
    ]  # fmt: skip


def test_top_earners_with_their_levels(world):
    report = report_of(world)

    assert [(t.member_id, t.depth, t.member_commission, t.by_level) for t in report.top_earners] == [
        (world.sara.pk, 3, D("23.72"), (D("23.72"), D("0.00"), D("0.00"))),
        (world.paul.pk, 2, D("14.22"), (D("0.00"), D("14.22"), D("0.00"))),
    ]


def test_versions_in_force_during_the_period_with_history(world, staff_user):
    report = report_of(world)

    assert [(p.version, p.is_in_force_at_start) for p in report.policies] == [(1, True), (2, False)]
    assert report.policies[1].created_by == str(staff_user)
    assert [(p.version, p.rates, p.is_in_force_at_start) for p in report.plans] == [
        (1, (D("0.8000"), D("0.2000")), True),
        (2, (D("0.5000"), D("0.3000")), False),
    ]
    assert report.plans[1].activated_by == str(staff_user)


def test_versions_before_the_period_are_history_not_shown(world):
    # a period starting after v2 took effect: only v2 was in force
    tomorrow = timezone.localdate() + timedelta(days=1)
    report = compliance_report(date_from=tomorrow, date_to=tomorrow)

    assert [p.version for p in report.policies] == [2]
    assert [p.version for p in report.plans] == [2]


def test_a_refund_lowers_net_sales_and_member_commission_by_the_exact_amounts(
    world, django_capture_on_commit_callbacks
):
    # given
    before = report_of(world)
    line = world.tea_order.lines.get()

    # when: 1 of the 3 teas is refunded (19.90); reversals round down: Sara 3.73 / 3 → 1.24, Paul 2.23 / 3 → 0.74
    with django_capture_on_commit_callbacks(execute=True):
        order_refund(order=world.tea_order, quantities={line.pk: 1}, reason="test")
    after = report_of(world)

    # then
    assert before.net_sales - after.net_sales == D("19.90")
    assert before.member_commission - after.member_commission == D("1.98")
    assert after.net_sales == D("159.70")
    assert after.refunded_sales == D("19.90")
    assert after.member_commission == D("35.96")
    assert after.gross_commission == D("37.94")  # gross counts the split only
    assert after.payout_ratio == D("0.2252")  # 35.96 / 159.70
    levels = {row.level: row.member_commission for row in after.levels}
    assert levels == {1: D("22.48"), 2: D("13.48"), 3: D("0.00")}
    assert after.months[1].net_sales == D("139.80")
    assert after.months[1].member_commission == D("33.98")
    assert all(c.passed for c in after.checks)


def test_an_empty_period_shows_zeros_and_no_ratio(db):
    report = compliance_report(date_from=timezone.localdate(), date_to=timezone.localdate())

    assert report.net_sales == report.member_commission == D("0.00")
    assert report.payout_ratio is None
    assert report.others_sales_share is None
    assert all(row.payout_ratio is None and row.share is None for row in report.levels)
    assert report.months[0].payout_ratio is None
    assert report.capped_count == 0
    assert report.top_earners == []
    assert all(c.passed for c in report.checks)


# --- checks ------------------------------------------------------------------------------------------------------


def test_every_check_passes_on_clean_data(world):
    report = report_of(world)

    assert [(c.code, c.passed, c.offenders) for c in report.checks] == [
        ("levels", True, []),
        ("payout_ratio", True, []),
        ("no_fee", True, []),
        ("no_recruitment_reward", True, []),
        ("preset", True, []),
    ]
    assert report.all_checks_passed
    assert "the highest line ratio is 0.3000" in check(report, "payout_ratio").evidence  # the capped gold line
    assert "the highest level seen is 2" in check(report, "levels").evidence


def test_the_levels_check_fails_on_an_entry_above_its_policy(world):
    # given: a level 3 commission under policy v2, which allows 2 levels
    entry = corrupt(world, world.tea_order, level=3, amount=D("0.01"))

    # when
    report = report_of(world)

    # then
    levels = check(report, "levels")
    assert not levels.passed
    assert levels.offender_count == 1
    assert [(o.entry_id, o.order_number) for o in levels.offenders] == [(entry.pk, world.tea_order.number)]
    assert check(report, "payout_ratio").passed
    assert not report.all_checks_passed


def test_the_payout_ratio_check_fails_one_cent_over_the_cap(world, staff_user):
    # given: a policy allowing 3 levels, and a level 3 cent on the gold line, already at 30.00 = 0.30 × 100.00
    policy = policy_publish(actor=staff_user, note="three levels", max_levels=3)
    corrupt(world, world.gold_order, level=3, amount=D("0.01"), policy=policy)

    # when
    report = report_of(world)

    # then
    ratio = check(report, "payout_ratio")
    assert not ratio.passed
    assert ratio.offender_count == 1
    [offender] = ratio.offenders
    assert offender.order_number == world.gold_order.number
    assert offender.order_line_id == world.gold_order.lines.get().pk
    assert "30.01" in offender.detail
    assert "the highest line ratio is 0.3001" in ratio.evidence
    assert check(report, "levels").passed


def test_the_fee_check_fails_on_a_negative_entry_without_a_refund(world):
    entry = corrupt(world, world.tea_order, level=1, amount=D("-1.00"), kind=Entry.Kind.REVERSAL)

    report = report_of(world)

    fee = check(report, "no_fee")
    assert not fee.passed
    assert [o.entry_id for o in fee.offenders] == [entry.pk]


def test_the_recruitment_check_fails_on_pay_without_a_pool(world, staff_user):
    policy = policy_publish(actor=staff_user, note="three levels", max_levels=3)
    entry = corrupt(world, world.tea_order, level=3, amount=D("5.00"), base=D("0.00"), policy=policy)

    report = report_of(world)

    reward = check(report, "no_recruitment_reward")
    assert not reward.passed
    assert [o.entry_id for o in reward.offenders] == [entry.pk]


# --- the page ----------------------------------------------------------------------------------------------------


def params(world):
    return {"date_from": world.date_from.isoformat(), "date_to": world.date_to.isoformat()}


def test_a_superuser_sees_the_report(client, staff_user, world):
    client.force_login(staff_user)

    response = client.get(reverse(URL), params(world))

    assert response.status_code == 200
    assert response.context["report"].member_commission == D("37.94")
    assert response.context["title"]
    content = response.content.decode()
    assert "¥37.94" in content
    assert "¥179.60" in content
    assert world.gold_order.number in content
    assert "<script" not in content.split('id="content-main"')[1]
    # printable: the print rules are in the back office's stylesheet (the CSP allows no inline style)
    assert "/static/css/backoffice.css" in content
    assert "@media print" in (settings.BASE_DIR / "static" / "css" / "backoffice.css").read_text()


def test_the_default_period_is_this_month_to_today(client, staff_user, world):
    client.force_login(staff_user)

    response = client.get(reverse(URL))

    assert response.status_code == 200
    report = response.context["report"]
    assert (report.date_from, report.date_to) == (timezone.localdate().replace(day=1), timezone.localdate())
    assert report.net_sales == D("159.70")  # the old order was paid last month


def test_staff_with_the_permission_see_the_report(client, world):
    user = UserFactory(is_staff=True)
    user.user_permissions.add(
        Permission.objects.get(content_type__app_label="commissions", codename="view_compliance_report")
    )
    client.force_login(user)

    assert client.get(reverse(URL), params(world)).status_code == 200
    assert client.get(reverse(CSV_URL), params(world)).status_code == 200


def test_staff_without_the_permission_are_refused(client, world):
    client.force_login(UserFactory(is_staff=True))

    assert client.get(reverse(URL), params(world)).status_code == 403
    assert client.get(reverse(CSV_URL), params(world)).status_code == 403


def test_anonymous_visitors_go_to_the_admin_login(client, db):
    response = client.get(reverse(URL))

    assert response.status_code == 302
    assert response["Location"].startswith(reverse("admin:login"))


@pytest.mark.parametrize(
    "query",
    [
        {"date_from": "2026-13-01", "date_to": "2026-01-31"},
        {"date_from": "yesterday", "date_to": "2026-01-31"},
        {"date_from": "2026-02-01", "date_to": "2026-01-31"},
        {"date_from": "", "date_to": "2026-01-31"},
        {"date_from": "0001-01-01", "date_to": "0001-01-02"},
        {"date_from": "9999-12-31", "date_to": "9999-12-31"},
    ],
)
def test_a_bad_period_is_a_form_error_and_nothing_is_computed(client, staff_user, query):
    client.force_login(staff_user)

    response = client.get(reverse(URL), query)
    csv_response = client.get(reverse(CSV_URL), query)

    assert response.status_code == 200
    assert response.context["report"] is None
    assert response.context["form"].errors
    assert 'class="errorlist' in response.content.decode()
    assert csv_response.status_code == 200
    assert csv_response["Content-Type"].startswith("text/html")


def test_the_csv_has_every_section_and_exact_amounts(client, staff_user, world):
    # given: a member whose name would be a formula in a spreadsheet
    world.sara.user.first_name = "=HYPERLINK(1)"
    world.sara.user.save(update_fields=["first_name"])
    client.force_login(staff_user)

    # when
    response = client.get(reverse(CSV_URL), params(world))

    # then
    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"] == (
        f'attachment; filename="compliance-{world.date_from.isoformat()}-{world.date_to.isoformat()}.csv"'
    )
    rows = list(csv.reader(io.StringIO(response.content.decode())))
    sections = {row[0] for row in rows}
    assert {"summary", "per_level", "per_month", "capped_entries", "top_earners", "checks"} <= sections
    summary = {row[1]: row[2] for row in rows if row[0] == "summary"}
    assert summary["net sales"] == "179.60"
    assert summary["member commission"] == "37.94"
    assert summary["payout ratio"] == "0.2112"
    assert summary["share on others' sales"] == "0.3748"
    per_level = [row[1:4] for row in rows if row[0] == "per_level"][1:]
    assert per_level == [["1", "23.72", "23.72"], ["2", "14.22", "14.22"], ["3", "0.00", "0.00"]]
    per_month = [row[1:6] for row in rows if row[0] == "per_month"][1:]
    assert per_month == [
        [world.date_from.strftime("%Y-%m"), "19.90", "19.90", "1.98", "1.98"],
        [world.date_to.strftime("%Y-%m"), "159.70", "159.70", "35.96", "35.96"],
    ]
    capped = [row for row in rows if row[0] == "capped_entries"][1:]
    assert [(row[2], row[4], row[10], row[11], row[12]) for row in capped] == [
        (world.gold_order.number, "1", "18.75", "45.00", "max_payout_ratio"),
        (world.gold_order.number, "2", "11.25", "27.00", "max_payout_ratio"),
    ]
    assert capped[0][6].startswith("'=HYPERLINK(1)")  # spreadsheet-safe
    earners = [row for row in rows if row[0] == "top_earners"][1:]
    assert [(row[1], row[7], row[8]) for row in earners] == [
        (str(world.sara.pk), "23.72", "23.72"),
        (str(world.paul.pk), "14.22", "0.00"),
    ]
    assert earners[0][2].startswith("'=HYPERLINK(1)")
    checks = [row for row in rows if row[0] == "checks"][1:]
    assert [row[2] for row in checks] == ["pass", "pass", "pass", "pass", "pass"]
    preset = {row[1]: row[2] for row in rows if row[0] == "preset"}
    assert preset["preset"] == "international"  # the tests' preset (tests/conftest.py)
    assert preset["max paid levels"] == "3"
    assert preset["rules in force comply"] == "yes"


# --- performance ---------------------------------------------------------------------------------------------------


# 2 for the session and user, 17 for the report (2 of them the rules in force under the preset), whatever the
# number of orders
PAGE_QUERIES = 19


def make_orders(count, capture):
    grace, paul, sara = make_chain(3)
    tea = ProductFactory(price=D("19.90"), commission_rate=D("0.1250"))
    gold = ProductFactory(price=D("100.00"), commission_rate=D("0.9000"))
    shop = shop_with_products(tea, gold, owner=sara)
    for index in range(count):
        pay(place_order(shop, {tea: index + 1, gold: 1}), capture)
    assert OrderSplit.objects.count() == count


@pytest.mark.parametrize("orders", [2, 6])
def test_the_page_makes_a_fixed_number_of_queries(
    client, staff_user, django_capture_on_commit_callbacks, django_assert_max_num_queries, orders
):
    make_orders(orders, django_capture_on_commit_callbacks)
    client.force_login(staff_user)

    with django_assert_max_num_queries(PAGE_QUERIES):
        response = client.get(reverse(URL))
    with django_assert_max_num_queries(PAGE_QUERIES):
        csv_response = client.get(reverse(CSV_URL))

    assert response.status_code == 200
    assert response.context["report"].capped_count == 2 * orders
    assert csv_response.status_code == 200
