"""Regressions from a review of the external-network money paths: a refund reported after settlement by file is
applied, an older file cannot move a line back, a line first seen unmatched is attributed once a report names a
member's tracking id, a failed sync is never left "running", a refused insert is not retried for ever, money
added after release waits for settlement."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.db.models import Sum
from django.utils import timezone

from commissions.models import CommissionEntry as Entry
from networks import services as networks_services
from networks.connectors.base import OrderStatus, ReportedOrder
from networks.imports import parse_report_file
from networks.models import ExternalOrder, Network, ReportImport, SyncRun
from networks.services import NetworkError, tracking_id_for
from tests.factories import MemberFactory, after_commit
from tests.networks.test_imports import _jd_row, _jd_workbook, _taobao_file, _taobao_row
from tests.payouts.test_money import ensure_plan_in_force

# As production runs them: the ledger is written after each commit (tests.factories.after_commit).
external_order_record = after_commit(networks_services.external_order_record)
network_sync = after_commit(networks_services.network_sync)
report_import = after_commit(networks_services.report_import)

pytestmark = pytest.mark.django_db

T0 = datetime(2026, 1, 5, 2, 0, tzinfo=UTC)


@pytest.fixture
def networks(db):
    ensure_plan_in_force()
    for code, name in (("sandbox", "Sandbox network"), ("taobao", "淘宝联盟"), ("jd", "京东联盟")):
        Network.objects.get_or_create(code=code, defaults={"name": name})
    return {network.code: network for network in Network.objects.all()}


def report(tracking, *, status=OrderStatus.PAID, commission="10.00", at=T0, settled_at=None, order="X1"):
    return ReportedOrder(
        external_order_id=order, line_id="1", tracking_id=tracking, product_id="P", title="Tea", quantity=1,
        paid_amount=Decimal("100.00"), commission=Decimal(commission), status=status, paid_at=T0, updated_at=at,
        settled_at=settled_at,
    )  # fmt: skip


def test_a_jd_line_refunded_after_settlement_is_as_new_as_its_settlement():
    settled = _jd_row(**{"订单状态": 18, "完成时间": datetime(2026, 1, 8, 9), "预估结算时间": "2026-01-20",
                         "实际计佣金额": 199.0, "实际佣金": "8.96"})  # fmt: skip
    refunded = dict(settled, **{"订单状态": 3})

    [before] = parse_report_file("jd", "a.xlsx", _jd_workbook([settled]), now=datetime(2026, 2, 1, tzinfo=UTC))
    [after] = parse_report_file("jd", "b.xlsx", _jd_workbook([refunded]), now=datetime(2026, 2, 1, tzinfo=UTC))

    assert (before.status, after.status) == (OrderStatus.SETTLED, OrderStatus.INVALID)
    assert after.updated_at >= before.updated_at  # so the invalid report is not taken for an older one
    assert after.settled_at is None


def test_an_older_file_imported_again_cannot_move_a_refunded_line_back(networks):
    member = MemberFactory()
    from networks.models import TrackingId

    TrackingId.objects.create(network=networks["taobao"], member=member, value="110732600234")
    confirmed = _taobao_file([_taobao_row(**{"订单状态": "已收货"})])
    refunded = _taobao_file([_taobao_row(**{"订单状态": "已失效"})])

    for content in (confirmed, refunded, confirmed + b"\n"):  # the last: last week's file again, not byte-identical
        report_import(network=networks["taobao"], file_name="report.csv", content=content)

    line = ExternalOrder.objects.get()
    assert line.status == "invalid"
    assert Entry.objects.filter(external_line=line).aggregate(t=Sum("amount"))["t"] == Decimal("0.00")
    assert ReportImport.objects.order_by("pk").last().stale == 1


def test_the_same_file_twice_is_refused_the_second_time_and_changes_nothing(networks):
    content = _taobao_file([_taobao_row()])
    first = report_import(network=networks["taobao"], file_name="a.csv", content=content)
    second = report_import(network=networks["taobao"], file_name="a-copy.csv", content=content)

    assert (first.status, second.status) == ("done", "refused")
    assert "imported already" in second.error
    assert ExternalOrder.objects.count() == 1


def test_a_line_first_seen_unmatched_is_attributed_when_a_report_names_a_members_tracking_id(networks):
    member = MemberFactory()
    network = networks["sandbox"]
    external_order_record(network=network, reported=report("3003456789"), source="import 1")  # a position id
    tracking = tracking_id_for(network=network, member=member).value

    external_order_record(network=network, reported=report(tracking, at=T0 + timedelta(minutes=1)), source="sync")

    line = ExternalOrder.objects.get()
    assert line.member == member and line.tracking_id == tracking
    assert Entry.objects.filter(external_line=line, beneficiary=member).exists()


def test_a_sync_that_fails_on_anything_is_recorded_and_raised(networks, sandbox_network, monkeypatch):
    network = networks["sandbox"]
    network.cursor = timezone.now() - timedelta(minutes=5)
    network.save()

    def refuse(**kwargs):
        raise NetworkError("a line we cannot store")

    monkeypatch.setattr("networks.services.external_order_store", refuse)
    product = sandbox_network.state.products[0]
    sandbox_network.create_order("m00nobody000", product.item_id, at=timezone.now() - timedelta(seconds=5))

    with pytest.raises(NetworkError):
        network_sync(network=network)

    network.refresh_from_db()
    assert SyncRun.objects.get().status == "failed"
    assert network.consecutive_failures == 1 and "a line we cannot store" in network.last_error


def test_an_id_longer_than_the_columns_is_refused_cleanly(networks):
    with pytest.raises(NetworkError, match="longer than 128"):
        external_order_record(network=networks["sandbox"], reported=report("t" * 129), source="sync")
    assert not ExternalOrder.objects.exists()


def test_a_refused_insert_is_raised_not_retried_for_ever(networks):
    from django.db import IntegrityError

    bad = report("nobody")
    bad = ReportedOrder(**{**bad.__dict__, "paid_amount": Decimal("-1.00")})  # breaks networks_order_money

    with pytest.raises(IntegrityError):
        external_order_record(network=networks["sandbox"], reported=bad, source="sync")


def test_money_added_after_release_waits_for_settlement(networks, settings):
    settings.COMMISSION_HOLD_DAYS = 0
    member = MemberFactory()
    network = networks["sandbox"]
    tracking = tracking_id_for(network=network, member=member).value
    at = timezone.now() - timedelta(days=1)
    external_order_record(
        network=network,
        reported=report(tracking, status=OrderStatus.SETTLED, at=at, settled_at=at),
        source="sync",
    )
    from commissions.services import commission_release_due

    commission_release_due()
    # The network takes the settlement back and reopens the line with a higher estimate.
    external_order_record(
        network=network,
        reported=report(tracking, status=OrderStatus.CONFIRMED, commission="12.00", at=at + timedelta(hours=1)),
        source="sync",
    )

    raised = Entry.objects.filter(external_line__isnull=False, beneficiary=member, revision=2).get()
    assert raised.amount > 0 and raised.status == "pending"
