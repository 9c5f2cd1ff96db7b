"""SandboxConnector against the sandbox network over HTTP, and the connector registry."""

import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from urllib.request import urlopen

import pytest

from networks.connectors import (
    CONNECTORS,
    UnknownConnector,
    connector_configured,
    connector_settings,
    get_connector,
)
from networks.connectors.base import ConnectorError, OrderStatus
from networks.connectors.sandbox import SandboxConnector
from networks.sandbox import SandboxNetwork, server
from networks.sandbox.server import CHINA

T0 = datetime(2026, 1, 10, 9, 0, tzinfo=CHINA)


def _window(connector, start, end):
    """Every line of [start, end), following the page token to the end."""
    lines, page, calls = [], None, 0
    while True:
        report = connector.fetch_orders(start, end, page)
        calls += 1
        lines.extend(report.orders)
        page = report.next_page
        if page is None:
            return lines, calls


def test_products_come_with_price_coupon_rate_and_image(sandbox_network, sandbox_connector):
    products = sandbox_connector.search_products()
    expected = sandbox_network.state.products[0]

    assert len(products) == 20
    first = products[0]
    assert first.external_id == expected.item_id
    assert first.title == expected.title
    assert first.price == expected.price
    assert first.coupon == expected.coupon
    assert first.commission_rate == expected.rate
    assert first.shop_name == expected.shop_title
    assert first.image_url == f"{sandbox_network.url}/img/{expected.item_id}.svg"
    assert isinstance(first.price, Decimal)
    assert [p.external_id for p in sandbox_connector.search_products(page=3)] == [
        p.item_id for p in sandbox_network.state.products[40:60]
    ]


def test_search_matches_titles(sandbox_network, sandbox_connector):
    word = sandbox_network.state.products[0].title.split()[0]

    products = sandbox_connector.search_products(word)

    assert products
    assert all(word in product.title for product in products)


def test_a_tracking_link_carries_the_tracking_id_and_a_click_on_it_is_counted(sandbox_network, sandbox_connector):
    product = sandbox_network.state.products[2]

    link = sandbox_connector.tracking_link(product.item_id, "member-17")
    assert link == sandbox_connector.tracking_link(product.item_id, "member-17")  # stable per product and member
    with urlopen(link, timeout=5) as response:  # noqa: S310 - the loopback sandbox
        page = response.read().decode()

    assert response.url.endswith(f"/item/{product.item_id}?tid=member-17")
    assert product.title in page
    [click] = sandbox_network.clicks()
    assert (click["item_id"], click["tracking_id"]) == (product.item_id, "member-17")


def test_a_link_for_an_unknown_product_is_a_connector_error(sandbox_connector):
    with pytest.raises(ConnectorError, match="item-not-found"):
        sandbox_connector.tracking_link("1", "member-17")


def test_the_order_report_pages_through_a_window_and_keeps_to_it(sandbox_network, sandbox_connector):
    # given 250 lines in the window, one just before it and one at its end (excluded: the window is [start, end))
    product = sandbox_network.state.products[0]
    sandbox_network.create_order("m1", product.item_id, at=T0 - timedelta(seconds=1))
    inside = [
        sandbox_network.create_order("m1", product.item_id, at=T0 + timedelta(seconds=i % 90))["trade_id"]
        for i in range(250)
    ]
    sandbox_network.create_order("m1", product.item_id, at=T0 + timedelta(hours=1))

    lines, calls = _window(sandbox_connector, T0, T0 + timedelta(hours=1))

    assert calls == 3  # 100 + 100 + 50
    assert sorted(line.line_id for line in lines) == sorted(inside)
    assert len({line.line_id for line in lines}) == 250


def test_a_line_changed_while_paging_is_not_lost(sandbox_network, sandbox_connector):
    product = sandbox_network.state.products[0]
    ids = [sandbox_network.create_order("m1", product.item_id, at=T0)["trade_id"] for _ in range(150)]
    first = sandbox_connector.fetch_orders(T0, T0 + timedelta(hours=1))
    seen = {line.line_id for line in first.orders}

    # a line of the first page changes later in the same window: it shows up again on a later page
    changed = ids[0]
    sandbox_network.confirm_receipt(changed, at=T0 + timedelta(minutes=30))
    second = sandbox_connector.fetch_orders(T0, T0 + timedelta(hours=1), first.next_page)

    assert changed in seen
    assert {line.line_id for line in second.orders} == set(ids) - seen | {changed}
    assert second.next_page is None


def test_every_network_status_maps_onto_ours(sandbox_network, sandbox_connector):
    product = sandbox_network.state.products[4]
    sandbox_network.set_clock(T0)
    paid = sandbox_network.create_order("m1", product.item_id)["trade_id"]
    confirmed = sandbox_network.create_order("m1", product.item_id)["trade_id"]
    settled = sandbox_network.create_order("m1", product.item_id)["trade_id"]
    invalid = sandbox_network.create_order("m1", product.item_id)["trade_id"]
    sandbox_network.advance(60)
    sandbox_network.confirm_receipt(confirmed)
    sandbox_network.confirm_receipt(settled)
    sandbox_network.settle(settled)
    sandbox_network.invalidate(invalid)

    lines, _calls = _window(sandbox_connector, T0, T0 + timedelta(hours=1))

    by_id = {line.line_id: line for line in lines}
    estimate = (product.final_price * product.rate).quantize(Decimal("0.01"), rounding="ROUND_DOWN")
    assert {k: by_id[k].status for k in (paid, confirmed, settled, invalid)} == {
        paid: OrderStatus.PAID,
        confirmed: OrderStatus.CONFIRMED,
        settled: OrderStatus.SETTLED,
        invalid: OrderStatus.INVALID,
    }
    assert by_id[paid].commission == estimate
    assert by_id[confirmed].commission == estimate
    assert by_id[settled].commission == estimate
    assert by_id[settled].settled_at == (T0 + timedelta(seconds=60)).astimezone(UTC)
    assert by_id[paid].settled_at is None
    assert by_id[invalid].commission == Decimal("0.00")
    line = by_id[paid]
    assert line.tracking_id == "m1"
    assert line.product_id == product.item_id
    assert line.external_order_id != line.line_id
    assert line.paid_amount == product.final_price
    assert line.paid_at == T0.astimezone(UTC)
    assert line.paid_at.tzinfo is not None
    assert line.updated_at == T0.astimezone(UTC)
    assert line.raw["tk_status"] == 12


def test_an_unknown_status_code_is_a_connector_error_not_a_guess(sandbox_network, sandbox_connector):
    product = sandbox_network.state.products[0]
    trade_id = sandbox_network.create_order("m1", product.item_id, at=T0)["trade_id"]
    sandbox_network.state.lines[trade_id].status = 99  # a code the network might add one day
    sandbox_network.state.lines[trade_id].report = lambda: {"tk_status": 99, "trade_id": trade_id}

    with pytest.raises(ConnectorError, match="unknown tk_status"):
        sandbox_connector.fetch_orders(T0, T0 + timedelta(hours=1))


def test_a_late_lower_actual_commission_is_reported_in_a_later_window(sandbox_network, sandbox_connector):
    product = sandbox_network.state.products[6]
    trade_id = sandbox_network.create_order("m1", product.item_id, quantity=3, at=T0)["trade_id"]
    sandbox_network.confirm_receipt(trade_id, at=T0 + timedelta(days=2))
    sandbox_network.settle(trade_id, at=T0 + timedelta(days=20))
    [before] = sandbox_connector.fetch_orders(T0 + timedelta(days=20), T0 + timedelta(days=20, hours=1)).orders

    sandbox_network.change_commission(trade_id, "0.01", at=T0 + timedelta(days=25))
    [after] = sandbox_connector.fetch_orders(T0 + timedelta(days=25), T0 + timedelta(days=25, hours=1)).orders

    assert before.status == after.status == OrderStatus.SETTLED
    assert before.commission > after.commission == Decimal("0.01")
    assert after.updated_at == (T0 + timedelta(days=25)).astimezone(UTC)
    assert after.settled_at == before.settled_at


def test_a_refund_after_settlement_reports_the_line_invalid(sandbox_network, sandbox_connector):
    product = sandbox_network.state.products[6]
    trade_id = sandbox_network.create_order("m1", product.item_id, at=T0)["trade_id"]
    sandbox_network.confirm_receipt(trade_id, at=T0)
    sandbox_network.settle(trade_id, at=T0)

    sandbox_network.refund(trade_id, at=T0 + timedelta(days=40))
    [line] = sandbox_connector.fetch_orders(T0 + timedelta(days=40), T0 + timedelta(days=40, hours=1)).orders

    assert line.status == OrderStatus.INVALID
    assert line.commission == Decimal("0.00")
    assert line.raw["refund_tag"] == 1


def test_a_window_over_the_limit_is_refused(sandbox_connector):
    assert sandbox_connector.max_window == timedelta(hours=3)

    with pytest.raises(ConnectorError, match="window-too-large"):
        sandbox_connector.fetch_orders(T0, T0 + timedelta(hours=3, seconds=1))
    assert sandbox_connector.fetch_orders(T0, T0 + timedelta(hours=3)).orders == []


def test_naive_times_are_refused(sandbox_connector):
    with pytest.raises(ValueError, match="aware"):
        sandbox_connector.fetch_orders(datetime(2026, 1, 1), datetime(2026, 1, 1, 1))


def test_a_wrong_secret_is_refused_as_a_connector_error(sandbox_network):
    connector = SandboxConnector(base_url=sandbox_network.url, app_key=sandbox_network.app_key, app_secret="wrong")

    with pytest.raises(ConnectorError, match="invalid-signature"):
        connector.search_products()


def test_an_http_500_is_a_connector_error_and_the_next_call_succeeds(sandbox_network, sandbox_connector):
    sandbox_network.fail_next(2)

    for _ in range(2):
        with pytest.raises(ConnectorError, match="HTTP 500"):
            sandbox_connector.fetch_orders(T0, T0 + timedelta(hours=1))
    assert sandbox_connector.fetch_orders(T0, T0 + timedelta(hours=1)).orders == []


def test_a_network_that_does_not_answer_in_time_is_a_connector_error(sandbox_network):
    connector = SandboxConnector(
        base_url=sandbox_network.url,
        app_key=sandbox_network.app_key,
        app_secret=sandbox_network.app_secret,
        timeout=0.2,
    )
    sandbox_network.fail_next(1, mode="timeout", hang_seconds=2)

    started = time.monotonic()
    with pytest.raises(ConnectorError, match="unreachable"):
        connector.search_products()

    assert time.monotonic() - started < 1.5


def test_an_unreachable_network_is_a_connector_error():
    with SandboxNetwork() as network:
        url = network.url
    connector = SandboxConnector(base_url=url, app_key="k", app_secret="s", timeout=1)

    with pytest.raises(ConnectorError):
        connector.search_products()


def test_the_registry_builds_the_sandbox_connector_from_the_environment(monkeypatch, settings):
    monkeypatch.delenv("NETWORK_SANDBOX_URL", raising=False)
    monkeypatch.delenv("NETWORK_SANDBOX_APP_KEY", raising=False)
    monkeypatch.delenv("NETWORK_SANDBOX_APP_SECRET", raising=False)
    assert "sandbox" in CONNECTORS

    settings.DEBUG = False  # production: the sandbox's public defaults do not count
    with pytest.raises(ConnectorError, match="not configured"):
        get_connector("sandbox")
    assert not connector_configured("sandbox")

    settings.DEBUG = True  # development (make run): they do
    default = get_connector("sandbox")
    assert (default.base_url, default.app_key) == ("http://127.0.0.1:8765", "sandbox-app-key")

    monkeypatch.setenv("NETWORK_SANDBOX_URL", "http://127.0.0.1:9999")
    monkeypatch.setenv("NETWORK_SANDBOX_APP_KEY", "key-from-env")
    monkeypatch.setenv("NETWORK_SANDBOX_APP_SECRET", "secret-from-env")
    monkeypatch.setenv("NETWORK_SANDBOX_TIMEOUT", "3.5")
    configured = get_connector("sandbox")
    assert (configured.base_url, configured.app_key, configured.app_secret) == (
        "http://127.0.0.1:9999",
        "key-from-env",
        "secret-from-env",
    )
    assert configured.timeout == 3.5
    assert get_connector("sandbox", base_url="http://127.0.0.1:1234").base_url == "http://127.0.0.1:1234"

    with pytest.raises(UnknownConnector):
        get_connector("no-such-network")
    with pytest.raises(ConnectorError, match="not configured"):  # taobao has a connector but no defaults
        get_connector("taobao")
    assert connector_configured("sandbox")
    assert not connector_configured("taobao")
    assert connector_settings("taobao") == {}


def test_the_connector_refuses_a_url_that_is_not_http():
    with pytest.raises(ValueError, match="http"):
        SandboxConnector(base_url="file:///etc/passwd", app_key="k", app_secret="s")


def test_the_sandbox_fixture_points_the_registry_at_the_running_network(sandbox_network):
    connector = get_connector("sandbox")

    assert connector.base_url == sandbox_network.url
    assert len(connector.search_products()) == 20


def test_a_negative_amount_in_the_report_is_a_connector_error_as_from_taobao(sandbox_network, sandbox_connector):
    # The sandbox speaks 淘宝联盟's format, whose connector refuses a negative amount (docs/networks-formats.md):
    # no network reports money below zero (a refund makes the line invalid), so one is a report we do not trust.
    product = sandbox_network.state.products[0]
    trade_id = sandbox_network.create_order("m1", product.item_id, at=T0)["trade_id"]
    sandbox_network.state.lines[trade_id].estimate = Decimal("-1.00")

    with pytest.raises(ConnectorError, match="negative amount"):
        sandbox_connector.fetch_orders(T0, T0 + timedelta(hours=1))


def test_a_price_that_is_not_a_number_is_a_connector_error(sandbox_network, sandbox_connector, monkeypatch):
    answer = server._Handler._product_json
    monkeypatch.setattr(server._Handler, "_product_json", lambda self, p: answer(self, p) | {"reserve_price": "N/A"})

    with pytest.raises(ConnectorError, match="not a number"):
        sandbox_connector.search_products()
