"""TaobaoConnector (淘宝开放平台's /router/rest) against the sandbox speaking the TOP protocol, TOP's signature
against the worked example of its documentation, and one sync from the network to the ledger."""

import json
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from urllib.parse import urlencode
from urllib.request import Request, urlopen

import pytest
from django.db.models import Sum
from django.utils import timezone

from commissions.models import CommissionEntry as Entry
from networks import services as networks_services
from networks.connectors import CONNECTORS, connector_configured, get_connector
from networks.connectors.base import ConnectorError, OrderStatus
from networks.connectors.taobao import TaobaoConnector, response_key, top_sign
from networks.models import ExternalOrder, Network, SyncRun, TrackingId
from networks.sandbox import server
from networks.sandbox.server import CHINA
from networks.tasks import networks_sync_task
from staff.ledger_check import ledger_check
from tests.factories import ShopFactory, after_commit, make_chain
from tests.payouts.test_money import ensure_plan_in_force

# As production runs them: the ledger is written after each commit (tests.factories.after_commit).
network_sync = after_commit(networks_services.network_sync)

T0 = datetime(2026, 1, 10, 9, 0, tzinfo=CHINA)
ADZONE = "109876543210"  # a 推广位 id: the last number of a PID mm_<member>_<site>_<adzone>
CENT = Decimal("0.01")


@pytest.fixture
def taobao(sandbox_network):
    return TaobaoConnector(
        base_url=sandbox_network.url,
        app_key=sandbox_network.app_key,
        app_secret=sandbox_network.app_secret,
        timeout=2.0,
        adzone_id="100200300",
    )


def _window(connector, start, end):
    lines, page, calls = [], None, 0
    while True:
        report = connector.fetch_orders(start, end, page)
        calls += 1
        lines.extend(report.orders)
        page = report.next_page
        if page is None:
            return lines, calls


def _raw_call(network, params: dict, *, secret: str | None = None, sign_method: str = "hmac") -> dict:
    """A hand-made TOP call (system parameters signed the documented way), for the protocol's error answers."""
    signed = {
        "app_key": network.app_key,
        "timestamp": datetime.now(CHINA).strftime("%Y-%m-%d %H:%M:%S"),
        "format": "json",
        "v": "2.0",
        "sign_method": sign_method,
    } | params
    signed["sign"] = top_sign(signed, secret or network.app_secret, sign_method)
    request = Request(f"{network.url}/router/rest", data=urlencode(signed).encode(), method="POST")  # noqa: S310
    with urlopen(request, timeout=5) as response:  # noqa: S310 - the loopback sandbox
        assert response.status == 200  # TOP answers errors with HTTP 200 and an error_response
        return json.loads(response.read())


# --- the signature ---------------------------------------------------------------------------------------------

# The worked example of 淘宝开放平台's "API调用方法详解" (open.taobao.com/doc.htm?docId=101617&docType=1): secret
# "helloworld", these parameters, md5 → 66987CB115214E59E6EC978214934FB8 (the document's own result, repeated in
# several SDKs' tests). The HMAC-MD5 digest of the same string is B4DDA503460D60A86B16E950E5D303E9 (computed by a
# third-party test suite from the same example; the document gives only the md5 result).
DOC_PARAMS = {
    "method": "taobao.item.seller.get",
    "app_key": "12345678",
    "session": "test",
    "timestamp": "2016-01-01 12:00:00",
    "format": "json",
    "v": "2.0",
    "sign_method": "md5",
    "fields": "num_iid,title,nick,price,num",
    "num_iid": "11223344",
}


def test_the_signature_matches_the_worked_example_of_the_top_documentation():
    assert top_sign(DOC_PARAMS, "helloworld", "md5") == "66987CB115214E59E6EC978214934FB8"
    assert top_sign(DOC_PARAMS, "helloworld", "hmac") == "B4DDA503460D60A86B16E950E5D303E9"
    # `sign` itself and empty values take no part; hmac-sha256 is 64 hex digits
    assert top_sign(DOC_PARAMS | {"sign": "X", "empty": ""}, "helloworld", "md5") == "66987CB115214E59E6EC978214934FB8"
    assert len(top_sign(DOC_PARAMS, "helloworld", "hmac-sha256")) == 64
    with pytest.raises(ValueError):
        top_sign(DOC_PARAMS, "helloworld", "sha1")


def test_answers_are_wrapped_in_the_method_name():
    assert response_key("taobao.tbk.order.details.get") == "tbk_order_details_get_response"
    assert response_key("taobao.tbk.dg.material.optional") == "tbk_dg_material_optional_response"


@pytest.mark.parametrize("sign_method", ["hmac", "md5", "hmac-sha256"])
def test_the_sandbox_checks_every_documented_sign_method(sandbox_network, sign_method):
    body = _raw_call(
        sandbox_network,
        {"method": "taobao.tbk.dg.material.optional", "adzone_id": "1", "page_size": "1"},
        sign_method=sign_method,
    )
    assert body["tbk_dg_material_optional_response"]["result_list"]["map_data"]


def test_a_wrong_secret_is_refused_with_tops_error_code(sandbox_network):
    body = _raw_call(sandbox_network, {"method": "taobao.tbk.dg.material.optional", "adzone_id": "1"}, secret="no")
    assert body["error_response"]["code"] == 25 and body["error_response"]["msg"] == "Invalid Signature"

    connector = TaobaoConnector(base_url=sandbox_network.url, app_key=sandbox_network.app_key, app_secret="no")
    with pytest.raises(ConnectorError, match="code 25 Invalid Signature"):
        connector.tracking_link("1", ADZONE)


def test_unknown_methods_and_missing_parameters_are_error_responses(sandbox_network, taobao):
    unknown = _raw_call(sandbox_network, {"method": "taobao.tbk.no.such.method"})["error_response"]
    missing = _raw_call(sandbox_network, {"method": "taobao.tbk.order.details.get", "query_type": "4"})
    assert (unknown["code"], unknown["msg"]) == (22, "Invalid Method")
    assert missing["error_response"]["code"] == 40
    assert missing["error_response"]["sub_code"] == "isv.missing-parameter:start_time"

    with pytest.raises(ConnectorError, match=r"code 40 .*sub_code isv.missing-parameter:item_id_list"):
        taobao.tracking_link("", ADZONE)


# --- products and links ----------------------------------------------------------------------------------------


def test_products_come_with_price_coupon_rate_and_image(sandbox_network, taobao):
    products = taobao.search_products()
    expected = sandbox_network.state.products[0]

    assert len(products) == 20
    first = products[0]
    assert (first.external_id, first.title, first.shop_name) == (expected.item_id, expected.title, expected.shop_title)
    assert (first.price, first.coupon) == (expected.price, expected.coupon)  # zk_final_price, coupon_amount
    assert first.commission_rate == expected.rate  # commission_rate "1550" = 15.5 %
    assert first.image_url == f"{sandbox_network.url}/img/{expected.item_id}.svg"
    assert [p.external_id for p in taobao.search_products(page=3)] == [
        p.item_id for p in sandbox_network.state.products[40:60]
    ]
    word = expected.title.split()[0]
    assert all(word in p.title for p in taobao.search_products(word))


def test_the_search_needs_an_adzone(sandbox_network, monkeypatch):
    monkeypatch.delenv("NETWORK_TAOBAO_ADZONE_ID", raising=False)
    connector = TaobaoConnector(
        base_url=sandbox_network.url, app_key=sandbox_network.app_key, app_secret=sandbox_network.app_secret
    )
    with pytest.raises(ConnectorError, match="NETWORK_TAOBAO_ADZONE_ID"):
        connector.search_products()


def test_a_converted_link_carries_the_adzone_and_a_click_on_it_is_counted(sandbox_network, taobao):
    product = sandbox_network.state.products[2]

    link = taobao.tracking_link(product.item_id, ADZONE)
    with urlopen(link, timeout=5) as response:  # noqa: S310 - the loopback sandbox
        page = response.read().decode()

    assert link == taobao.tracking_link(product.item_id, ADZONE)
    assert product.title in page
    [click] = sandbox_network.clicks()
    assert (click["item_id"], click["tracking_id"]) == (product.item_id, ADZONE)


def test_links_need_a_numeric_adzone_and_a_known_product(taobao):
    with pytest.raises(ConnectorError, match="numeric"):
        taobao.tracking_link("1", "m0a1b2c3d4e5f")
    with pytest.raises(ConnectorError, match="refused item 1"):
        taobao.tracking_link("1", ADZONE)


# --- the order report ------------------------------------------------------------------------------------------


def test_the_order_report_pages_through_a_window_and_keeps_to_it(sandbox_network, taobao):
    product = sandbox_network.state.products[0]
    sandbox_network.create_order(ADZONE, product.item_id, at=T0 - timedelta(seconds=1))
    inside = [
        sandbox_network.create_order(ADZONE, product.item_id, at=T0 + timedelta(seconds=i % 90))["trade_id"]
        for i in range(250)
    ]
    sandbox_network.create_order(ADZONE, product.item_id, at=T0 + timedelta(hours=1))

    lines, calls = _window(taobao, T0, T0 + timedelta(hours=1))

    assert calls == 3  # 100 + 100 + 50, page_no 1, 2, 3 with the position_index of the page before
    assert sorted(line.line_id for line in lines) == sorted(inside)


def test_a_line_changed_while_paging_is_not_lost(sandbox_network, taobao):
    product = sandbox_network.state.products[0]
    ids = [sandbox_network.create_order(ADZONE, product.item_id, at=T0)["trade_id"] for _ in range(150)]
    first = taobao.fetch_orders(T0, T0 + timedelta(hours=1))
    sandbox_network.confirm_receipt(ids[0], at=T0 + timedelta(minutes=30))

    second = taobao.fetch_orders(T0, T0 + timedelta(hours=1), first.next_page)

    seen = {line.line_id for line in first.orders}
    assert {line.line_id for line in second.orders} == set(ids) - seen | {ids[0]}
    assert second.next_page is None


def test_every_tk_status_maps_onto_ours(sandbox_network, taobao):
    product = sandbox_network.state.products[4]
    sandbox_network.set_clock(T0)
    paid, confirmed, settled, invalid, refunded = (
        sandbox_network.create_order(ADZONE, product.item_id)["trade_id"] for _ in range(5)
    )
    sandbox_network.advance(60)
    for trade_id in (confirmed, settled):
        sandbox_network.confirm_receipt(trade_id)
    sandbox_network.settle(settled)
    sandbox_network.invalidate(invalid)
    sandbox_network.refund(refunded)

    lines, _calls = _window(taobao, T0, T0 + timedelta(hours=1))

    by_id = {line.line_id: line for line in lines}
    estimate = (product.final_price * product.rate).quantize(CENT, rounding="ROUND_DOWN")
    assert {k: (by_id[k].status, by_id[k].commission) for k in (paid, confirmed, settled, invalid, refunded)} == {
        paid: (OrderStatus.PAID, estimate),
        confirmed: (OrderStatus.CONFIRMED, estimate),
        settled: (OrderStatus.SETTLED, estimate),
        invalid: (OrderStatus.INVALID, Decimal("0.00")),
        refunded: (OrderStatus.INVALID, Decimal("0.00")),
    }
    assert [by_id[k].raw["tk_status"] for k in (paid, confirmed, settled, invalid)] == [12, 14, 3, 13]
    assert by_id[refunded].raw["refund_tag"] == 1
    assert by_id[settled].settled_at == (T0 + timedelta(seconds=60)).astimezone(UTC)
    line = by_id[paid]
    assert (line.tracking_id, line.product_id, line.paid_amount) == (ADZONE, product.item_id, product.final_price)
    assert line.paid_at == line.updated_at == T0.astimezone(UTC)
    assert line.settled_at is None and line.external_order_id != line.line_id


def test_a_line_with_refund_tag_is_invalid_whatever_its_tk_status(sandbox_network, taobao):
    product = sandbox_network.state.products[4]
    trade_id = sandbox_network.create_order(ADZONE, product.item_id, at=T0)["trade_id"]
    sandbox_network.state.lines[trade_id].refund_tag = 1  # 维权 on a line still reported as paid

    [line] = taobao.fetch_orders(T0, T0 + timedelta(hours=1)).orders

    assert (line.status, line.commission) == (OrderStatus.INVALID, Decimal("0.00"))


def test_an_unknown_tk_status_is_a_connector_error(sandbox_network, taobao, monkeypatch):
    product = sandbox_network.state.products[0]
    trade_id = sandbox_network.create_order(ADZONE, product.item_id, at=T0)["trade_id"]
    monkeypatch.setitem(server.STATUS_TEXT, 99, "未知")  # a code the network might add one day
    sandbox_network.state.lines[trade_id].status = 99

    with pytest.raises(ConnectorError, match="unknown tk_status"):
        taobao.fetch_orders(T0, T0 + timedelta(hours=1))


def test_a_late_lower_actual_commission_is_reported_in_a_later_window(sandbox_network, taobao):
    product = sandbox_network.state.products[6]
    trade_id = sandbox_network.create_order(ADZONE, product.item_id, quantity=3, at=T0)["trade_id"]
    sandbox_network.confirm_receipt(trade_id, at=T0 + timedelta(days=2))
    sandbox_network.settle(trade_id, at=T0 + timedelta(days=20))
    [before] = taobao.fetch_orders(T0 + timedelta(days=20), T0 + timedelta(days=20, hours=1)).orders

    sandbox_network.change_commission(trade_id, "0.01", at=T0 + timedelta(days=25))
    [after] = taobao.fetch_orders(T0 + timedelta(days=25), T0 + timedelta(days=25, hours=1)).orders

    assert before.status == after.status == OrderStatus.SETTLED
    assert before.commission == Decimal(before.raw["pub_share_fee"]) > after.commission == Decimal("0.01")
    assert after.settled_at == before.settled_at


def test_a_window_over_three_hours_is_an_error_response(taobao):
    assert taobao.max_window == timedelta(hours=3)

    with pytest.raises(ConnectorError, match=r"isv\.window-too-large"):
        taobao.fetch_orders(T0, T0 + timedelta(hours=3, seconds=1))
    assert taobao.fetch_orders(T0, T0 + timedelta(hours=3)).orders == []


def test_http_errors_and_timeouts_are_connector_errors(sandbox_network):
    connector = TaobaoConnector(
        base_url=sandbox_network.url + "/router/rest",  # the full gateway URL is taken as well
        app_key=sandbox_network.app_key,
        app_secret=sandbox_network.app_secret,
        timeout=0.2,
    )
    sandbox_network.fail_next(1, status=502)
    with pytest.raises(ConnectorError, match="HTTP 502"):
        connector.fetch_orders(T0, T0 + timedelta(hours=1))

    sandbox_network.fail_next(1, mode="timeout", hang_seconds=2)
    started = time.monotonic()
    with pytest.raises(ConnectorError, match="unreachable"):
        connector.fetch_orders(T0, T0 + timedelta(hours=1))
    assert time.monotonic() - started < 1.5
    assert connector.fetch_orders(T0, T0 + timedelta(hours=1)).orders == []


# --- registry and sync -----------------------------------------------------------------------------------------


@pytest.fixture
def taobao_env(sandbox_network, monkeypatch):
    monkeypatch.setenv("NETWORK_TAOBAO_URL", sandbox_network.url)
    monkeypatch.setenv("NETWORK_TAOBAO_APP_KEY", sandbox_network.app_key)
    monkeypatch.setenv("NETWORK_TAOBAO_APP_SECRET", sandbox_network.app_secret)
    monkeypatch.setenv("NETWORK_TAOBAO_TIMEOUT", "2")
    monkeypatch.setenv("NETWORK_TAOBAO_ADZONE_ID", "100200300")
    return sandbox_network


def test_the_registry_builds_the_taobao_connector_from_the_environment(taobao_env):
    assert CONNECTORS["taobao"] is TaobaoConnector
    connector = get_connector("taobao")
    assert isinstance(connector, TaobaoConnector) and connector.url == f"{taobao_env.url}/router/rest"
    assert connector_configured("taobao")


@pytest.mark.django_db
def test_the_periodic_sync_leaves_out_a_network_that_is_not_configured(monkeypatch):
    for name in ("URL", "APP_KEY", "APP_SECRET"):
        monkeypatch.delenv(f"NETWORK_TAOBAO_{name}", raising=False)
    Network.objects.update_or_create(code="taobao", defaults={"name": "淘宝联盟", "is_enabled": True})
    Network.objects.filter(code="sandbox").update(is_enabled=False)

    assert networks_sync_task() == 0
    assert not SyncRun.objects.filter(network__code="taobao").exists()


@pytest.mark.django_db
def test_a_taobao_order_syncs_into_the_members_ledger(taobao_env, settings):
    settings.COMMISSION_HOLD_DAYS = 0
    ensure_plan_in_force()
    network = Network.objects.update_or_create(code="taobao", defaults={"name": "淘宝联盟", "is_enabled": True})[0]
    network.cursor = timezone.now() - timedelta(minutes=10)
    network.save()
    _root, _middle, sharer = make_chain(3)
    ShopFactory(owner=sharer)
    # tracking_id_for makes "m…" ids; a 淘宝联盟 member needs a numeric adzone id (see the report's proposal)
    TrackingId.objects.create(network=network, member=sharer, value=ADZONE)
    product = taobao_env.state.products[1]
    paid = taobao_env.create_order(ADZONE, product.item_id, quantity=2, at=timezone.now() - timedelta(seconds=5))

    run = network_sync(network=network, now=timezone.now() + timedelta(seconds=2))

    assert run is not None and run.status == SyncRun.Status.DONE, run and run.error
    line = ExternalOrder.objects.get(network=network)
    assert (line.member, line.status, line.line_id) == (sharer, "paid", paid["trade_id"])
    assert line.commission == Decimal(paid["pub_share_pre_fee"]) > 0
    total = Entry.objects.filter(external_line=line).aggregate(total=Sum("amount"))["total"]
    assert total == line.commission
    assert Entry.objects.filter(external_line=line, beneficiary=sharer).exists()
    problems = [f"{r.name}: {v}" for r in ledger_check() for v in r.violations]
    assert not problems, problems
