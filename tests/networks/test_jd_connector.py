"""JdConnector (京东联盟's open API through the routerjson gateway) against the sandbox speaking JD's protocol
(networks/sandbox/jd.py) over HTTP, the validCode mapping, the signature, and one sync end to end."""

import json
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from urllib.parse import urlencode
from urllib.request import Request, urlopen

import pytest
from django.utils import timezone

from commissions.models import CommissionEntry as Entry
from networks import services as networks_services
from networks.connectors import CONNECTORS, get_connector
from networks.connectors.base import ConnectorError, OrderStatus
from networks.connectors.jd import CHINA, JdConnector, product_url, reported_order, sign
from networks.models import ExternalOrder, Network, SyncRun
from networks.services import tracking_id_for
from tests.factories import after_commit, make_chain
from tests.payouts.test_money import ensure_plan_in_force

# As production runs them: the ledger is written after each commit (tests.factories.after_commit).
network_sync = after_commit(networks_services.network_sync)

T0 = datetime(2026, 1, 10, 9, 0, tzinfo=CHINA)


@pytest.fixture
def jd(sandbox_network):
    return JdConnector(
        base_url=sandbox_network.url,
        app_key=sandbox_network.app_key,
        app_secret=sandbox_network.app_secret,
        timeout=2.0,
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


def _gateway(network, params: dict) -> dict:
    """A raw call to the sandbox's /routerjson, signed unless `sign` is given."""
    params = {"format": "json", "v": "1.0", "sign_method": "md5", "app_key": network.app_key} | params
    params.setdefault("timestamp", datetime.now(CHINA).strftime("%Y-%m-%d %H:%M:%S"))
    params.setdefault("sign", sign(params, network.app_secret))
    request = Request(f"{network.url}/routerjson", data=urlencode(params).encode())  # noqa: S310 - loopback
    with urlopen(request, timeout=5) as response:  # noqa: S310 - the loopback sandbox
        return json.loads(response.read())


# --- the signature -------------------------------------------------------------------------------------------


def test_the_signature_is_upper_hex_md5_of_secret_sorted_names_and_values_secret():
    # No worked example with a published result was found in JD's documentation; this one was computed
    # independently with coreutils: printf '%s' 'testsecret360buy_param_json{…}app_keytestkey…v1.0testsecret' | md5sum
    params = {
        "method": "jd.union.open.order.row.query",
        "app_key": "testkey",
        "timestamp": "2026-01-10 09:00:00",
        "format": "json",
        "v": "1.0",
        "sign_method": "md5",
        "360buy_param_json": '{"orderReq":{"pageIndex":1}}',
    }
    assert sign(params, "testsecret") == "832AD4EF334D78FE30E1A3A5C0AA28AA"
    # `sign` itself and empty parameters (an unset access_token) are not signed
    assert sign(params | {"sign": "X", "access_token": ""}, "testsecret") == "832AD4EF334D78FE30E1A3A5C0AA28AA"


def test_a_bad_signature_an_unknown_method_and_a_wrong_key_are_gateway_errors(sandbox_network):
    bad = _gateway(sandbox_network, {"method": "jd.union.open.goods.query", "sign": "0" * 32})
    assert bad["error_response"]["code"] == "12"
    unknown = _gateway(sandbox_network, {"method": "jd.union.open.nothing"})
    assert unknown["error_response"]["code"] == "15"
    stale = _gateway(sandbox_network, {"method": "jd.union.open.goods.query", "timestamp": "2020-01-01 00:00:00"})
    assert "error_response" in stale

    wrong_secret = JdConnector(base_url=sandbox_network.url, app_key=sandbox_network.app_key, app_secret="nope")
    with pytest.raises(ConnectorError, match="12"):
        wrong_secret.search_products()


def test_the_answer_is_wrapped_as_jd_does_with_the_result_as_json_text(sandbox_network):
    body = _gateway(sandbox_network, {"method": "jd.union.open.goods.query", "360buy_param_json": '{"goodsReqDTO":{}}'})
    wrapper = body["jd_union_open_goods_query_responce"]
    assert wrapper["code"] == "0" and isinstance(wrapper["queryResult"], str)
    assert json.loads(wrapper["queryResult"])["code"] == 200


# --- products and links --------------------------------------------------------------------------------------


def test_products_come_with_price_coupon_rate_image_and_jd_page(sandbox_network, jd):
    products = jd.search_products()
    assert len(products) == jd.search_page_size
    catalogue = {p.item_id: p for p in sandbox_network.state.products}
    for product in products:
        source = catalogue[product.external_id]
        assert (product.title, product.price, product.coupon) == (source.title, source.price, source.coupon)
        assert product.commission_rate == source.rate
        assert product.shop_name == source.shop_title
        assert product.url == f"https://item.jd.com/{source.item_id}.html"
        assert product.image_url.endswith(f"/img/{source.item_id}.svg")
    assert any(p.coupon > 0 for p in products)
    assert jd.search_products(page=2)[0].external_id not in {p.external_id for p in products}


def test_search_matches_titles(sandbox_network, jd):
    word = sandbox_network.state.products[0].title.split()[0]
    found = jd.search_products(word)
    assert found and all(word in p.title for p in found)
    assert jd.search_products("没有这种商品") == []


def test_a_link_carries_the_tracking_id_as_sub_union_id_and_its_click_is_counted(sandbox_network, jd):
    product = sandbox_network.state.products[3]
    link = jd.tracking_link(product.item_id, "m0123456789ab")
    assert link.startswith(f"{sandbox_network.url}/t/")
    assert jd.tracking_link(product.item_id, "m0123456789ab") == link  # the same material and subUnionId
    with urlopen(link, timeout=5) as page:  # noqa: S310 - the loopback sandbox
        assert "m0123456789ab" in page.read().decode()
    [click] = sandbox_network.clicks()
    assert (click["item_id"], click["tracking_id"]) == (product.item_id, "m0123456789ab")
    assert product_url(product.item_id) == f"https://item.jd.com/{product.item_id}.html"


def test_a_link_for_an_unknown_product_or_a_bad_tracking_id_is_a_connector_error(jd):
    with pytest.raises(ConnectorError, match="404"):
        jd.tracking_link("123", "m0123456789ab")
    with pytest.raises(ConnectorError, match="subUnionId"):
        jd.tracking_link("123", "has space")


# --- the order report ----------------------------------------------------------------------------------------


def test_the_order_report_pages_through_a_window_and_keeps_to_it(sandbox_network, jd):
    jd.page_size = 3
    product = sandbox_network.state.products[0]
    inside = [
        sandbox_network.create_order(f"m{n:012d}", product.item_id, at=T0 + timedelta(minutes=n)) for n in range(8)
    ]
    sandbox_network.create_order("m_outside", product.item_id, at=T0 + timedelta(hours=1))  # at the end: excluded
    sandbox_network.create_order("m_before", product.item_id, at=T0 - timedelta(seconds=1))

    lines, calls = _window(jd, T0, T0 + timedelta(hours=1))

    assert calls == 3
    assert [line.tracking_id for line in lines] == [f"m{n:012d}" for n in range(8)]
    first = lines[0]
    assert first.external_order_id == inside[0]["trade_parent_id"]
    assert first.line_id == first.product_id == product.item_id
    assert (first.status, first.quantity, first.paid_amount) == (OrderStatus.PAID, 1, product.final_price)
    assert first.commission == Decimal(inside[0]["pub_share_pre_fee"])
    assert first.paid_at == first.updated_at == T0.astimezone(UTC)
    assert first.raw["validCode"] == 16


def test_a_window_over_one_hour_is_refused_and_naive_times_too(jd):
    assert jd.max_window == timedelta(hours=1)
    with pytest.raises(ConnectorError, match="1小时"):
        jd.fetch_orders(T0, T0 + timedelta(hours=1, seconds=1))
    with pytest.raises(ValueError, match="aware"):
        jd.fetch_orders(datetime(2026, 1, 1), datetime(2026, 1, 1, 1))


def test_every_sandbox_state_arrives_as_its_valid_code(sandbox_network, jd):
    product = sandbox_network.state.products[1]
    paid = sandbox_network.create_order("m_paid", product.item_id, at=T0)
    confirmed = sandbox_network.create_order("m_confirmed", product.item_id, at=T0)
    sandbox_network.confirm_receipt(confirmed["trade_id"], at=T0 + timedelta(minutes=1))
    settled = sandbox_network.create_order("m_settled", product.item_id, at=T0)
    sandbox_network.confirm_receipt(settled["trade_id"], at=T0 + timedelta(minutes=1))
    sandbox_network.settle(settled["trade_id"], at=T0 + timedelta(minutes=2))
    invalid = sandbox_network.create_order("m_invalid", product.item_id, at=T0)
    sandbox_network.invalidate(invalid["trade_id"], at=T0 + timedelta(minutes=3))

    lines, _calls = _window(jd, T0, T0 + timedelta(minutes=30))
    by_tracking = {line.tracking_id: line for line in lines}

    assert {t: (line.raw["validCode"], line.status) for t, line in by_tracking.items()} == {
        "m_paid": (16, OrderStatus.PAID),
        "m_confirmed": (17, OrderStatus.CONFIRMED),
        "m_settled": (18, OrderStatus.SETTLED),
        "m_invalid": (3, OrderStatus.INVALID),
    }
    assert by_tracking["m_paid"].commission == Decimal(paid["pub_share_pre_fee"])
    assert by_tracking["m_settled"].settled_at == datetime(2026, 1, 10, tzinfo=CHINA)  # payMonth 20260110
    assert by_tracking["m_invalid"].commission == Decimal("0.00")
    assert by_tracking["m_confirmed"].settled_at is None


def test_a_late_lower_actual_commission_is_reported_in_a_later_window(sandbox_network, jd):
    product = sandbox_network.state.products[2]
    line = sandbox_network.create_order("m_late", product.item_id, quantity=3, at=T0)
    sandbox_network.confirm_receipt(line["trade_id"], at=T0 + timedelta(minutes=5))
    estimate = Decimal(line["pub_share_pre_fee"])
    sandbox_network.settle(line["trade_id"], at=T0 + timedelta(minutes=10))
    lower = (estimate * Decimal("0.6")).quantize(Decimal("0.01"))
    sandbox_network.change_commission(line["trade_id"], lower, at=T0 + timedelta(hours=2))

    first, _ = _window(jd, T0, T0 + timedelta(hours=1))
    later, _ = _window(jd, T0 + timedelta(hours=1, minutes=30), T0 + timedelta(hours=2, minutes=30))

    assert first == []  # the line's modifyTime moved out of the first window
    [settled] = later
    assert (settled.status, settled.commission) == (OrderStatus.SETTLED, lower)
    assert settled.paid_amount == product.final_price * 3


def test_an_http_500_and_an_error_code_are_connector_errors(sandbox_network, jd):
    sandbox_network.fail_next(1, status=502)
    with pytest.raises(ConnectorError, match="HTTP 502"):
        jd.fetch_orders(T0, T0 + timedelta(minutes=20))
    assert jd.fetch_orders(T0, T0 + timedelta(minutes=20)).orders == []  # the next call succeeds

    with pytest.raises(ConnectorError, match="400"):
        jd.fetch_orders(T0 + timedelta(minutes=20), T0)  # endTime before startTime: a business error


def test_an_unreachable_gateway_is_a_connector_error():
    connector = JdConnector(base_url="http://127.0.0.1:9", app_key="k", app_secret="s", timeout=1)
    with pytest.raises(ConnectorError, match="unreachable"):
        connector.search_products()
    assert JdConnector(base_url="https://api.jd.com", app_key="k", app_secret="s").gateway == (
        "https://api.jd.com/routerjson"
    )
    assert JdConnector(base_url="https://api.jd.com/routerjson", app_key="k", app_secret="s").gateway == (
        "https://api.jd.com/routerjson"
    )


# --- validCode mapping (a row as order.row.query documents it) ---------------------------------------------------


def _row(**changes) -> dict:
    row = {
        "id": "9001",
        "orderId": 250000000001,
        "parentId": 0,
        "orderTime": "2026-01-10 09:00:00",
        "finishTime": "",
        "modifyTime": "2026-01-10 09:30:00",
        "skuId": 100012043978,
        "skuName": "商品",
        "skuNum": 2,
        "estimateCosPrice": Decimal("199.00"),
        "estimateFee": Decimal("9.95"),
        "actualCosPrice": Decimal("0"),
        "actualFee": Decimal("0"),
        "validCode": 16,
        "payMonth": 0,
        "subUnionId": "m0123456789ab",
        "positionId": 0,
    }
    return row | changes


TODAY = date(2026, 2, 1)


@pytest.mark.parametrize(
    ("changes", "status", "commission"),
    [
        ({"validCode": 16}, OrderStatus.PAID, Decimal("9.95")),
        ({"validCode": 17}, OrderStatus.CONFIRMED, Decimal("9.95")),
        ({"validCode": 17, "payMonth": 20260220}, OrderStatus.CONFIRMED, Decimal("9.95")),  # settles later
        ({"validCode": 17, "payMonth": 20260120, "actualFee": 8.5, "actualCosPrice": 170}, OrderStatus.SETTLED, 8.5),
        ({"validCode": 18, "payMonth": 20260120, "actualFee": 8.5, "actualCosPrice": 170}, OrderStatus.SETTLED, 8.5),
        *[({"validCode": code}, OrderStatus.INVALID, Decimal("0.00")) for code in [2, 3, 9, 13, 14, 19, 22, 23, 28]],
    ],
)
def test_every_valid_code_maps_onto_our_lifecycle(changes, status, commission):
    order = reported_order(_row(**changes), today=TODAY)
    assert order.status == status
    assert order.commission == Decimal(str(commission)).quantize(Decimal("0.01"))
    if status == OrderStatus.SETTLED:
        assert order.paid_amount == Decimal("170.00")
        assert order.settled_at == datetime(2026, 1, 20, tzinfo=CHINA)
    else:
        assert order.settled_at is None
    assert (order.external_order_id, order.line_id, order.tracking_id) == (
        "250000000001",
        "100012043978",
        "m0123456789ab",
    )
    assert order.paid_at == datetime(2026, 1, 10, 1, 0, tzinfo=UTC)


def test_unpaid_and_deposit_only_rows_are_left_out_and_unknown_codes_refused():
    assert reported_order(_row(validCode=15), today=TODAY) is None
    assert reported_order(_row(validCode=24), today=TODAY) is None
    for code in (-1, 1, 99):
        with pytest.raises(ValueError, match="unknown validCode"):
            reported_order(_row(validCode=code), today=TODAY)


def test_a_row_without_sub_union_id_falls_back_to_its_position_id():
    assert reported_order(_row(subUnionId="", positionId=3003271490), today=TODAY).tracking_id == "3003271490"
    assert reported_order(_row(subUnionId="", positionId=0), today=TODAY).tracking_id == ""


# --- end to end ----------------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_jd_order_for_a_members_tracking_id_is_synced_attributed_and_split(sandbox_network, monkeypatch, settings):
    settings.COMMISSION_HOLD_DAYS = 0
    ensure_plan_in_force()
    monkeypatch.setenv("NETWORK_JD_URL", sandbox_network.url)
    monkeypatch.setenv("NETWORK_JD_APP_KEY", sandbox_network.app_key)
    monkeypatch.setenv("NETWORK_JD_APP_SECRET", sandbox_network.app_secret)
    monkeypatch.setenv("NETWORK_JD_TIMEOUT", "2")
    assert CONNECTORS["jd"] is JdConnector and isinstance(get_connector("jd"), JdConnector)

    network = Network.objects.get_or_create(code="jd", defaults={"name": "京东联盟"})[0]
    network.cursor = timezone.now() - timedelta(minutes=10)
    network.save()
    _root, sharer = make_chain(2)
    tracking = tracking_id_for(network=network, member=sharer).value
    product = sandbox_network.state.products[0]
    paid = sandbox_network.create_order(tracking, product.item_id, quantity=2)

    run = network_sync(network=network, now=timezone.now() + timedelta(seconds=2))

    assert run is not None and run.status == SyncRun.Status.DONE, run and run.error
    line = ExternalOrder.objects.get(network=network)
    assert (line.member, line.tracking_id, line.status) == (sharer, tracking, "paid")
    assert (line.external_order_id, line.line_id) == (paid["trade_parent_id"], product.item_id)
    assert line.commission == Decimal(paid["pub_share_pre_fee"])
    entries = Entry.objects.filter(external_line=line)
    assert entries.exists()
    assert sum(entry.amount for entry in entries) == line.commission
