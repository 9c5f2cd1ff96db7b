"""The whole external-CPS cycle against the sandbox network over HTTP: a member adds a product of the network to
their shop, a buyer follows the buy button (/l/ → the network's tracking link), pays on the network, the sync reads
the report and splits the commission, the network settles (lower than estimated), the commission is released and
paid out, then the buyer is refunded on the network and the commission is clawed back."""

from datetime import timedelta
from decimal import Decimal
from urllib.request import urlopen

import pytest
from django.db.models import Sum
from django.utils import timezone

from commissions.models import CommissionEntry as Entry
from commissions.services import commission_release_due
from networks import services as networks_services
from networks.connectors import CONNECTORS
from networks.connectors.base import ConnectorError
from networks.connectors.sandbox import SandboxConnector
from networks.models import ExternalOrder, ExternalProduct, Network, ReportImport, SyncRun
from networks.services import external_products_sync
from networks.tasks import networks_sync_task
from payouts.selectors import member_balance
from payouts.services import payout_account_save
from shops.services import external_listing_add
from staff.ledger_check import ledger_check
from tests.factories import ShopFactory, after_commit, make_chain
from tests.networks.test_imports import _taobao_file, _taobao_row
from tests.payouts.test_money import ensure_plan_in_force, pay_out

# As production runs them: the ledger is written after each commit (tests.factories.after_commit).
network_sync = after_commit(networks_services.network_sync)
report_import = after_commit(networks_services.report_import)

pytestmark = pytest.mark.django_db


@pytest.fixture
def network(sandbox_network, settings):
    settings.COMMISSION_HOLD_DAYS = 0
    ensure_plan_in_force()  # 2 levels, 80 % / 20 %, payout ratio ≤ 30 % of the paid amount
    network = Network.objects.get_or_create(code="sandbox", defaults={"name": "Sandbox network"})[0]
    network.cursor = timezone.now() - timedelta(minutes=10)
    network.save()
    external_products_sync(network=network, pages=2)
    return network


@pytest.fixture
def sharer(network):
    root, middle, sharer = make_chain(3)
    for member in (root, middle, sharer):
        payout_account_save(
            member=member, method="alipay", holder_name="王芳", alipay_account=f"{member.pk}@example.com"
        )
    ShopFactory(owner=sharer)
    return sharer


def sync(network):
    # The report's times have whole seconds and a window is [start, end): end a moment ahead so that a line the
    # sandbox changed within this very second is in it (in production the next window's overlap picks it up).
    run = network_sync(network=Network.objects.get(pk=network.pk), now=timezone.now() + timedelta(seconds=2))
    assert run is not None and run.status == SyncRun.Status.DONE, run and run.error
    return run


def by_level(line) -> dict[int, Decimal]:
    return dict(Entry.objects.filter(external_line=line).values_list("level").annotate(t=Sum("amount")))


def assert_ledger_clean():
    problems = [f"{r.name}: {v}" for r in ledger_check() for v in r.violations]
    assert not problems, problems


def test_the_full_cycle_from_link_to_clawback(network, sharer, sandbox_network, client):
    product = ExternalProduct.objects.filter(network=network).order_by("pk").first()
    listing = external_listing_add(shop=sharer.shop, product=product)

    # The buyer's buy button: our /l/ link (counted like any click) → the network's tracking link → its page.
    response = client.get(f"/l/{listing.share_link.code}", HTTP_USER_AGENT="Mozilla/5.0 (Linux; Android 14)")
    assert response.status_code == 302 and response["Location"] == listing.tracking_url
    with urlopen(response["Location"], timeout=5) as page:  # noqa: S310 - the loopback sandbox
        assert product.title in page.read().decode()
    [click] = sandbox_network.clicks()
    tracking = sharer.tracking_ids.get(network=network).value
    assert click["tracking_id"] == tracking

    # The buyer pays on the network; the sync reads the report and splits the estimated commission.
    paid = sandbox_network.create_order(tracking, product.external_id, quantity=2)
    first = sync(network)
    line = ExternalOrder.objects.get()
    estimate = Decimal(paid["pub_share_pre_fee"])
    assert (first.created, line.member, line.status, line.commission) == (1, sharer, "paid", estimate)
    assert sum(by_level(line).values()) == estimate
    assert member_balance(sharer).pending > 0

    # The same report again changes nothing.
    again = sync(network)
    entries_before = Entry.objects.count()
    network.refresh_from_db()
    network.cursor -= timedelta(minutes=30)  # read the same window once more
    network.save()
    sync(network)
    assert (again.created, again.changed) == (0, 0)
    assert Entry.objects.count() == entries_before

    # Receipt confirmed, then settled with an actual commission lower than the estimate: negative adjustments.
    sandbox_network.confirm_receipt(paid["trade_id"])
    actual = (estimate * Decimal("0.8")).quantize(Decimal("0.01"))
    sandbox_network.settle(paid["trade_id"], actual_commission=actual)
    sync(network)
    line.refresh_from_db()
    assert (line.status, line.commission) == ("settled", actual)
    adjustments = Entry.objects.filter(external_line=line, kind="adjustment", beneficiary__isnull=False)
    assert sorted(entry.level for entry in adjustments) == [1, 2]  # every paid level
    assert all(entry.amount < 0 for entry in adjustments)
    assert sum(by_level(line).values()) == actual

    # Released after the hold (0 days here) and paid out.
    commission_release_due(now=timezone.now() + timedelta(seconds=1))
    earned = member_balance(sharer).withdrawable
    assert earned == by_level(line)[1] and earned > 0
    if earned >= Decimal("10.00"):
        assert pay_out(sharer, earned).status == "paid"

    # The buyer is refunded on the network after settlement: the commission is clawed back.
    sandbox_network.refund(paid["trade_id"])
    sync(network)
    line.refresh_from_db()
    assert line.status == "invalid"
    assert sum(by_level(line).values()) == Decimal("0.00")
    assert Entry.objects.filter(external_line=line, kind="clawback").exists()
    assert member_balance(sharer).withdrawable == (-earned if earned >= Decimal("10.00") else Decimal("0.00"))
    assert_ledger_clean()


def test_an_order_whose_tracking_id_matches_nobody_is_kept_for_staff(network, sandbox_network):
    product = ExternalProduct.objects.filter(network=network).first()
    sandbox_network.create_order("m00nobody000", product.external_id)

    sync(network)

    line = ExternalOrder.objects.get()
    assert line.member is None and line.tracking_id == "m00nobody000"
    assert not Entry.objects.filter(external_line=line).exists()
    assert_ledger_clean()


def test_a_network_that_fails_is_recorded_and_its_cursor_stays(network, sandbox_network):
    cursor = network.cursor
    sandbox_network.fail_next(50)

    with pytest.raises(ConnectorError):
        network_sync(network=network)

    network.refresh_from_db()
    assert network.cursor == cursor and network.consecutive_failures == 1 and network.last_error
    assert SyncRun.objects.get().status == SyncRun.Status.FAILED


def test_one_network_failing_does_not_stop_the_others(network, sandbox_network, sharer, monkeypatch):
    monkeypatch.setitem(CONNECTORS, "broken", SandboxConnector)
    monkeypatch.setenv("NETWORK_BROKEN_URL", "http://127.0.0.1:9")  # nothing listens there
    monkeypatch.setenv("NETWORK_BROKEN_APP_KEY", "k")
    monkeypatch.setenv("NETWORK_BROKEN_APP_SECRET", "s")
    monkeypatch.setenv("NETWORK_BROKEN_TIMEOUT", "1")
    Network.objects.create(code="broken", name="Broken", cursor=timezone.now() - timedelta(minutes=5))
    product = ExternalProduct.objects.filter(network=network).first()
    listing = external_listing_add(shop=sharer.shop, product=product)
    tracking = sharer.tracking_ids.get(network=network).value
    assert listing.tracking_url.startswith(sandbox_network.url)
    sandbox_network.create_order(tracking, product.external_id, at=timezone.now() - timedelta(seconds=5))

    networks_sync_task()  # eager in tests: each network's task runs here, "broken" first, and fails

    assert Network.objects.get(code="broken").consecutive_failures >= 1
    assert ExternalOrder.objects.filter(network=network, member=sharer).count() == 1


def test_a_malformed_report_file_is_refused_whole(db):
    network = Network.objects.get_or_create(code="taobao", defaults={"name": "淘宝联盟"})[0]
    rows = [_taobao_row(), _taobao_row(**{"淘宝子订单编号": "9", "付款金额": "abc"})]

    record = report_import(network=network, file_name="2026-01.csv", content=_taobao_file(rows))

    assert record.status == ReportImport.Status.REFUSED and record.error_row == 3
    assert "付款金额" in record.error
    assert not ExternalOrder.objects.exists()


def test_a_report_file_imported_twice_changes_nothing_the_second_time(db):
    ensure_plan_in_force()
    network = Network.objects.get_or_create(code="taobao", defaults={"name": "淘宝联盟"})[0]
    content = _taobao_file([_taobao_row(), _taobao_row(**{"淘宝子订单编号": "9"})])

    first = report_import(network=network, file_name="a.csv", content=content)
    second = report_import(network=network, file_name="a.csv", content=content)

    assert (first.status, first.rows, first.created) == ("done", 2, 2)
    assert (second.status, second.created, second.changed) == ("refused", 0, 0)
    assert "imported already" in second.error
    assert ExternalOrder.objects.count() == 2
