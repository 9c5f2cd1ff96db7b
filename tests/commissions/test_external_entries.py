"""Ledger entries of sales reported by external affiliate networks (issue #12) wherever entries are read: the
member's commission pages, the statement, the staff ledger, the compliance report, the overview and the dashboard.

The lines are written as in production, through `external_order_record` (the sync's and the import's service), and
released by `commission_release_due`. The world, under the default policy (2 levels, payout ratio ≤ 0.30 of the paid
amount) and plan (80 % / 20 %), on 淘宝联盟, every line paid 100.00 by the buyer twenty days ago:

- TB1001 paid, commission 12.00, pending: sharer 9.60, middle 2.40.
- TB1002 reported 12.00, then confirmed at 10.00: an adjustment of -1.60 / -0.40, pending: 8.00 / 2.00 held.
- TB1003 settled at 20.00 ten days ago, released: sharer 16.00, middle 4.00 available.
- TB1004 settled at 20.00, released, then invalid: clawed back, -16.00 / -4.00.

Sharer: pending 9.60 + 8.00 = 17.60; available 16.00 + 16.00 - 16.00 = 16.00; clawed back 16.00.
"""

from datetime import timedelta
from decimal import Decimal
from types import SimpleNamespace

import pytest
from django.conf import settings
from django.urls import reverse
from django.utils import timezone

from commissions.models import CommissionEntry as Entry
from commissions.selectors import member_commission_entries
from commissions.services import commission_release_due
from commissions.simulation import plan_simulation_create
from core.money import format_money
from members.selectors import member_dashboard_stats
from networks import services as networks_services
from networks.connectors.base import OrderStatus, ReportedOrder
from networks.models import ExternalOrder, Network, TrackingId
from payouts.selectors import member_balance, member_statement
from staff.ledger_check import ledger_check
from staff.reports import compliance_report
from staff.selectors import daily_series
from tests.factories import after_commit, make_chain
from tests.payouts.test_money import ensure_plan_in_force

pytestmark = pytest.mark.django_db

D = Decimal
NETWORK_NAME = "淘宝联盟"
ENTRIES = reverse("members:commission_entries")


def detail_url(entry) -> str:
    return reverse("members:commission_entry_detail", args=[entry.pk])


def reported(tracking: str, order: str, *, commission: str, status=OrderStatus.PAID, at=None, **kw) -> ReportedOrder:
    paid_at = kw.pop("paid_at")
    return ReportedOrder(
        external_order_id=order,
        line_id="1",
        tracking_id=tracking,
        product_id="P1",
        title=kw.pop("title", f"Green tea {order}"),
        quantity=1,
        paid_amount=D(kw.pop("paid", "100.00")),
        commission=D(commission),
        status=status,
        paid_at=paid_at,
        updated_at=at or paid_at,
        settled_at=kw.pop("settled_at", None),
    )


def record(world, order: str, **kw) -> ExternalOrder:
    kw.setdefault("paid_at", world.paid_at)
    record_reported = after_commit(networks_services.external_order_record)  # the ledger is written after the commit
    record_reported(network=world.network, reported=reported(world.tracking, order, **kw), source="sync")
    return ExternalOrder.objects.get(network=world.network, external_order_id=order)


def entry_of(line: ExternalOrder, member, kind=Entry.Kind.COMMISSION) -> Entry:
    return Entry.objects.get(external_line=line, beneficiary=member, kind=kind)


@pytest.fixture
def world(db):
    ensure_plan_in_force()
    network = Network.objects.update_or_create(code="taobao", defaults={"name": NETWORK_NAME})[0]
    root, middle, sharer = make_chain(3)
    now = timezone.now()
    paid_at = now - timedelta(days=20)
    settled_at = now - timedelta(days=settings.COMMISSION_HOLD_DAYS + 3)
    world = SimpleNamespace(
        network=network,
        root=root,
        middle=middle,
        sharer=sharer,
        # 淘宝联盟's 推广位 are created in its console and entered by staff (networks.services.tracking_id_for).
        tracking=TrackingId.objects.create(network=network, member=sharer, value="110732600234").value,
        paid_at=paid_at,
        today=timezone.localdate(),
    )
    world.pending = record(world, "TB1001", commission="12.00")
    record(world, "TB1002", commission="12.00")
    world.adjusted = record(
        world, "TB1002", commission="10.00", status=OrderStatus.CONFIRMED, at=paid_at + timedelta(days=1)
    )
    settled = {"commission": "20.00", "status": OrderStatus.SETTLED, "at": settled_at, "settled_at": settled_at}
    world.released = record(world, "TB1003", **settled)
    record(world, "TB1004", **settled)
    commission_release_due()
    world.clawed_back = record(
        world, "TB1004", commission="20.00", status=OrderStatus.INVALID, at=now - timedelta(hours=1)
    )
    return world


# --- the ledger as written (the premises of every test below) ------------------------------------------------------


def test_the_world_is_written_as_described(world):
    assert entry_of(world.pending, world.sharer).amount == D("9.60")
    assert entry_of(world.adjusted, world.sharer, Entry.Kind.ADJUSTMENT).amount == D("-1.60")
    assert entry_of(world.released, world.sharer).status == Entry.Status.AVAILABLE
    assert entry_of(world.clawed_back, world.sharer, Entry.Kind.CLAWBACK).amount == D("-16.00")
    balance = member_balance(world.sharer)
    assert (balance.pending, balance.withdrawable, balance.clawed_back) == (D("17.60"), D("16.00"), D("16.00"))
    assert not [v for result in ledger_check() for v in result.violations]


# --- the member's pages ----------------------------------------------------------------------------------------------


def test_the_summary_counts_external_commission(world):
    balance = member_balance(world.sharer)

    assert (balance.pending, balance.withdrawable, balance.paid_out, balance.clawed_back) == (
        D("17.60"),
        D("16.00"),
        D("0.00"),
        D("16.00"),
    )


def test_the_entries_page_shows_the_network_and_its_order(client, world, django_assert_max_num_queries):
    client.force_login(world.sharer.user)

    with django_assert_max_num_queries(10):  # +1: unread notifications in the header (#22); +1: staff adjustments (#25)
        response = client.get(ENTRIES)

    assert response.status_code == 200
    html = response.content.decode()
    for order in ("TB1001", "TB1002", "TB1003", "TB1004"):
        assert f"{NETWORK_NAME} order {order} · level 1" in html
        assert f"Green tea {order}" in html
    assert "Adjustment (the network changed the commission)" in html
    assert "Clawback (refund after release)" in html
    assert len(response.context["page"]) == 6  # 4 commissions, 1 adjustment, 1 clawback


def test_the_entries_list_reads_no_more_queries_for_more_external_lines(client, world, django_assert_max_num_queries):
    for number in range(5):
        record(world, f"TB2{number:03d}", commission="3.00")
    client.force_login(world.sharer.user)

    with django_assert_max_num_queries(10):  # +1: unread notifications in the header (#22); +1: staff adjustments (#25)
        response = client.get(ENTRIES)

    assert len(response.context["page"]) == 11


def test_the_entry_detail_explains_an_external_commission(client, world):
    entry = entry_of(world.adjusted, world.sharer)
    client.force_login(world.sharer.user)

    response = client.get(detail_url(entry))

    assert response.status_code == 200
    html = response.content.decode()
    assert NETWORK_NAME in html
    assert "TB1002" in html
    assert "1 × Green tea TB1002" in html
    assert "Amount the buyer paid" in html and format_money(D("100.00")) in html
    assert "Receipt confirmed" in html  # the network's status
    # Only this line's other entries at this level: its adjustment, not the other external lines' entries.
    assert [other.kind for other in response.context["related"]] == [Entry.Kind.ADJUSTMENT]
    assert response.context["line"] is None


def test_the_entry_detail_explains_an_adjustment_and_a_clawback(client, world):
    client.force_login(world.sharer.user)
    adjustment = entry_of(world.adjusted, world.sharer, Entry.Kind.ADJUSTMENT)
    clawback = entry_of(world.clawed_back, world.sharer, Entry.Kind.CLAWBACK)

    adjustment_html = client.get(detail_url(adjustment)).content.decode()
    clawback_html = client.get(detail_url(clawback)).content.decode()

    assert "The network changed the commission it pays on this item" in adjustment_html
    assert format_money(D("-1.60")) in adjustment_html
    assert "The network reported this order invalid" in clawback_html
    assert "after your commission was released" in clawback_html


def test_another_member_gets_a_404_for_someone_elses_external_entry(client, world):
    entry = entry_of(world.pending, world.sharer)
    client.force_login(world.root.user)  # in the sharer's upline, but not this entry's beneficiary

    assert client.get(detail_url(entry)).status_code == 404


def test_member_entries_can_be_filtered_by_status_and_level(world):
    pending = member_commission_entries(world.sharer, status=Entry.Status.PENDING)
    level_two = member_commission_entries(world.middle, level=2)

    assert {entry.external_line.external_order_id for entry in pending} == {"TB1001", "TB1002"}
    assert level_two.count() == 6


# --- the statement ---------------------------------------------------------------------------------------------------


def test_the_statement_names_the_network_and_its_order(world):
    lines = member_statement(world.sharer)

    descriptions = [line.description for line in lines]
    assert sorted(descriptions) == sorted(
        [
            f"Commission, {NETWORK_NAME} order TB1003, level 1",
            f"Commission, {NETWORK_NAME} order TB1004, level 1",
            f"Clawback, {NETWORK_NAME} order TB1004, level 1",
        ]
    )
    assert lines[-1].balance == member_balance(world.sharer).withdrawable == D("16.00")


def test_the_statement_page_and_csv_show_external_lines(client, world):
    client.force_login(world.sharer.user)

    page = client.get(reverse("members:payout_statement"))
    csv_file = client.get(reverse("members:payout_statement_csv"))

    assert page.status_code == csv_file.status_code == 200
    assert f"{NETWORK_NAME} order TB1003" in page.content.decode()
    assert f"{NETWORK_NAME} order TB1004" in csv_file.content.decode("utf-8-sig")


# --- staff ------------------------------------------------------------------------------------------------------------


def test_the_admin_ledger_lists_and_finds_external_entries(client, staff_user, world):
    client.force_login(staff_user)
    url = reverse("admin:commissions_commissionentry_changelist")

    everything = client.get(url)
    found = client.get(url, {"q": "TB1003"})

    assert everything.status_code == 200
    assert f"{NETWORK_NAME} order TB1001" in everything.content.decode()
    assert {entry.external_line_id for entry in found.context["cl"].result_list} == {world.released.pk}
    assert found.context["cl"].result_list.count() == 3  # sharer, middle and the platform remainder


@pytest.mark.parametrize("more_lines", [0, 6])
def test_the_admin_ledger_reads_no_more_queries_for_more_external_lines(
    client, staff_user, world, django_assert_max_num_queries, more_lines
):
    for number in range(more_lines):
        record(world, f"TB4{number:03d}", commission="3.00")
    client.force_login(staff_user)

    with django_assert_max_num_queries(6):  # the same few queries, whatever the number of rows
        response = client.get(reverse("admin:commissions_commissionentry_changelist"))

    assert len(response.context["cl"].result_list) == 16 + 3 * more_lines  # 4 splits, 2 adjustments, 2 clawbacks


def test_the_admin_entry_page_opens_for_an_external_entry(client, staff_user, world):
    client.force_login(staff_user)
    entry = entry_of(world.released, world.sharer)

    response = client.get(reverse("admin:commissions_commissionentry_change", args=[entry.pk]))

    assert response.status_code == 200
    assert reverse("admin:networks_externalorder_change", args=[world.released.pk]) in response.content.decode()


def test_the_overview_chart_counts_external_commission(world):
    series = daily_series(today=world.today)

    # Every entry was written today: 12.00 + (12.00 - 2.00) + 20.00 + 20.00 - 20.00 for the members.
    assert series.commission_total == D("42.00")
    assert series.sales_total == D("0.00")  # the chart's sales are our own shops' sales


def test_the_dashboard_earnings_count_external_commission(world):
    stats = member_dashboard_stats(world.sharer, world.today)

    assert stats.daily[-1].earnings == D("33.60")  # 9.60 + 9.60 - 1.60 + 16.00 + 16.00 - 16.00
    assert member_balance(world.sharer).pending == D("17.60")
    assert stats.periods[0].sales == D("0.00")  # sales stay our own shops' sales


# --- the compliance report --------------------------------------------------------------------------------------------


def report_of(world):
    return compliance_report(date_from=world.today - timedelta(days=40), date_to=world.today)


def check(report, code):
    return next(c for c in report.checks if c.code == code)


def test_the_report_counts_external_lines_as_sales_under_the_same_caps(world):
    report = report_of(world)

    # Sales: four lines of 100.00; TB1004 invalid is refunded in full.
    assert (report.gross_sales, report.refunded_sales, report.net_sales) == (D("400.00"), D("100.00"), D("300.00"))
    assert (report.network_gross_sales, report.network_net_sales) == (D("400.00"), D("300.00"))
    # Commission: 12.00 + 10.00 + 20.00 + 20.00 before the clawback of TB1004; 42.00 after.
    assert report.gross_commission == D("62.00")
    assert report.member_commission == D("42.00")
    assert report.payout_ratio == D("0.1400")  # 42.00 / 300.00
    levels = {row.level: row for row in report.levels}
    assert (levels[1].member_commission, levels[2].member_commission) == (D("33.60"), D("8.40"))
    assert (levels[1].lines_paid, levels[2].lines_paid) == (4, 4)
    assert [(row.levels, row.lines) for row in report.levels_paid] == [(0, 0), (1, 0), (2, 4), (3, 0)]
    assert report.lines_split == 4
    assert sum(month.member_commission for month in report.months) == D("42.00")
    assert sum(month.net_sales for month in report.months) == D("300.00")
    assert [(earner.member_id, earner.member_commission) for earner in report.top_earners] == [
        (world.sharer.pk, D("33.60")),
        (world.middle.pk, D("8.40")),
    ]


def test_adjustments_reversals_and_clawbacks_of_external_lines_pass_every_check(world):
    invalid_before_release = record(world, "TB1005", commission="12.00")
    record(world, "TB1005", commission="12.00", status=OrderStatus.INVALID, at=world.paid_at + timedelta(hours=1))
    assert Entry.objects.filter(external_line=invalid_before_release, kind=Entry.Kind.REVERSAL).count() == 2

    report = report_of(world)

    assert [(c.code, c.passed, c.offender_count) for c in report.checks] == [
        ("levels", True, 0),
        ("payout_ratio", True, 0),
        ("no_fee", True, 0),
        ("no_recruitment_reward", True, 0),
        ("preset", True, 0),
    ]
    assert "the highest line ratio is 0.2000" in check(report, "payout_ratio").evidence  # 20.00 / 100.00


def test_a_capped_external_line_is_listed_with_its_paid_amount(world):
    # 50.00 of commission on 100.00 paid: the members may get 30 % of 100.00 = 30.00 (24.00 / 6.00).
    capped = record(world, "TB1006", commission="50.00")

    report = report_of(world)

    assert report.capped_count == 2
    entry = report.capped_entries[0]
    assert (entry.order_id, entry.order_number, entry.external_line_id) == (
        None,
        f"{NETWORK_NAME} order TB1006",
        capped.pk,
    )
    assert (entry.amount, entry.uncapped_amount, entry.line_net_amount) == (D("24.00"), D("40.00"), D("100.00"))
    assert "the highest line ratio is 0.3000" in check(report, "payout_ratio").evidence
    assert report.all_checks_passed


def test_an_external_line_over_the_cap_is_an_offender(world):
    # Test-only corruption past every service check: a level 1 cent more on the capped line.
    capped = record(world, "TB1006", commission="50.00")
    Entry.objects.create(
        external_line=capped,
        revision=99,
        beneficiary=world.sharer,
        level=1,
        kind=Entry.Kind.ADJUSTMENT,
        base=D("50.00"),
        rate=D("0.8000"),
        amount=D("0.01"),
        plan=capped.split.plan,
        policy=capped.split.policy,
    )

    report = report_of(world)

    ratio = check(report, "payout_ratio")
    assert not ratio.passed
    [offender] = ratio.offenders
    assert (offender.order_number, offender.order_line_id, offender.external_line_id) == (
        f"{NETWORK_NAME} order TB1006",
        None,
        capped.pk,
    )
    assert "30.01" in offender.detail


def test_a_positive_external_entry_on_an_empty_pool_is_still_an_offender(world):
    Entry.objects.create(
        external_line=world.clawed_back,
        revision=99,
        beneficiary=world.sharer,
        level=1,
        kind=Entry.Kind.ADJUSTMENT,
        base=D("0.00"),
        rate=D("0.8000"),
        amount=D("1.00"),
    )

    reward = check(report_of(world), "no_recruitment_reward")

    assert not reward.passed
    assert [offender.order_number for offender in reward.offenders] == [f"{NETWORK_NAME} order TB1004"]


def test_the_report_page_and_csv_show_external_lines(client, staff_user, world):
    record(world, "TB1006", commission="50.00")  # a capped line, linked to its external order
    client.force_login(staff_user)
    period = {"date_from": (world.today - timedelta(days=40)).isoformat(), "date_to": world.today.isoformat()}

    page = client.get(reverse("staff:compliance_report"), period)
    csv_file = client.get(reverse("staff:compliance_report_csv"), period)

    assert page.status_code == csv_file.status_code == 200
    html = page.content.decode()
    assert f"{NETWORK_NAME} order TB1006" in html
    external = ExternalOrder.objects.get(external_order_id="TB1006")
    assert reverse("admin:networks_externalorder_change", args=[external.pk]) in html
    text = csv_file.content.decode()
    assert "net sales reported by external networks,400.00" in text
    assert f"{NETWORK_NAME} order TB1006" in text


@pytest.mark.parametrize("lines", [1, 5])
def test_the_report_page_makes_a_fixed_number_of_queries_with_external_lines(
    client, staff_user, world, django_assert_max_num_queries, lines
):
    from tests.staff.test_compliance_report import PAGE_QUERIES

    for number in range(lines):
        record(world, f"TB3{number:03d}", commission="50.00")  # capped, like the gold tea of the other tests
    client.force_login(staff_user)
    period = {"date_from": (world.today - timedelta(days=40)).isoformat(), "date_to": world.today.isoformat()}

    with django_assert_max_num_queries(PAGE_QUERIES):
        response = client.get(reverse("staff:compliance_report"), period)

    assert response.context["report"].capped_count == 2 * lines


# --- the plan simulator -------------------------------------------------------------------------------------------


def simulate(world, capture, actor, rates):
    with capture(execute=True):
        simulation = plan_simulation_create(
            actor=actor,
            name="external",
            rates=rates,
            policy_overrides={},
            date_from=world.today - timedelta(days=40),
            date_to=world.today,
        )
    simulation.refresh_from_db()
    return simulation


def test_the_simulator_replays_external_lines_like_the_ledger_paid_them(
    world, staff_user, django_capture_on_commit_callbacks
):
    record(world, "TB1006", commission="50.00")  # capped: 24.00 / 6.00 of a 50.00 pool

    simulation = simulate(world, django_capture_on_commit_callbacks, staff_user, (D("0.8000"), D("0.2000")))

    result = simulation.result
    assert simulation.status == "done"
    assert (result["lines"], result["external"]) == (4, {"lines": 4, "invalid_left_out": 1})  # TB1004 left out
    assert result["net_sales"] == "400.00"
    assert result["simulated"] == result["actual"]
    # TB1001 9.60 / 2.40, TB1002 8.00 / 2.00 after its adjustment, TB1003 16.00 / 4.00, TB1006 24.00 / 6.00.
    assert result["actual"]["levels"] == {"1": "57.60", "2": "14.40"}
    assert result["actual"]["platform"] == "20.00"  # what the cap held back on TB1006
    assert result["actual"]["capped"]["max_payout_ratio"]["lines"] == 1
    assert result["unmatched"] == {"no_plan_or_policy": 0, "no_ledger_rows": 0}


def test_the_simulation_page_says_external_lines_are_included(
    client, world, staff_user, django_capture_on_commit_callbacks
):
    simulation = simulate(world, django_capture_on_commit_callbacks, staff_user, (D("0.8000"), D("0.2000")))
    client.force_login(staff_user)

    html = client.get(reverse("staff:simulation_detail", args=[simulation.pk])).content.decode()

    assert "3 lines are sales reported by external networks" in html
    assert "1 line reported invalid by its network is left out on both sides." in html


def test_the_simulator_prices_a_draft_on_the_commission_the_network_reports(
    world, staff_user, django_capture_on_commit_callbacks
):
    simulation = simulate(world, django_capture_on_commit_callbacks, staff_user, (D("0.5000"),))

    # A sharer-only draft at 50 % of the pools 12.00, 10.00 and 20.00: 6.00 + 5.00 + 10.00.
    assert simulation.result["simulated"]["levels"] == {"1": "21.00"}
    assert simulation.result["simulated"]["platform"] == "21.00"


# --- the audit log ---------------------------------------------------------------------------------------------------


def test_the_audit_log_lists_what_the_networks_reported(client, staff_user, world):
    client.force_login(staff_user)
    url = reverse("staff:audit_log")

    response = client.get(url, {"object_type": "external_order", "object_id": "TB1002"})
    settled = client.get(url, {"kind": "external_order.settled"})

    assert response.status_code == 200
    rows = [item["row"] for item in response.context["rows"]]
    assert [(row.kind, row.object_label, row.amount, row.actor_label) for row in rows] == [
        ("external_order.confirmed", f"{NETWORK_NAME} TB1002/1", D("10.00"), "sync"),
        ("external_order.paid", f"{NETWORK_NAME} TB1002/1", D("12.00"), "sync"),
    ]
    assert "paid → confirmed · commission 12.00 → 10.00" in rows[0].detail
    assert rows[0].url == reverse("admin:networks_externalorder_change", args=[world.adjusted.pk])
    assert {item["row"].object_id for item in settled.context["rows"]} == {"TB1003", "TB1004"}
