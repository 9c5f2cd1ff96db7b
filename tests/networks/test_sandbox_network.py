"""The sandbox network over raw HTTP: its signed API, its refusals, its browser flow and its control endpoints."""

import json
from datetime import datetime, timedelta
from decimal import Decimal
from http.client import HTTPConnection
from urllib.parse import urlencode, urlsplit

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from networks.connectors.sandbox import sign
from networks.sandbox import SandboxError, SandboxNetwork
from networks.sandbox.server import CHINA


def _request(network, method, path, body=None, headers=None):
    parts = urlsplit(network.url)
    connection = HTTPConnection(parts.hostname, parts.port, timeout=5)
    try:
        connection.request(method, path, body=body, headers=headers or {})
        response = connection.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        connection.close()


def _signed(network, path, params, *, secret=None, timestamp=None):
    params = {name: str(value) for name, value in params.items()}
    params |= {
        "app_key": network.app_key,
        "timestamp": timestamp or datetime.now(CHINA).strftime("%Y-%m-%d %H:%M:%S"),
        "sign_method": "hmac-sha256",
    }
    params["sign"] = sign(params, secret or network.app_secret)
    status, _headers, body = _request(network, "GET", f"{path}?{urlencode(params)}")
    return status, json.loads(body)


def _control(network, path, data=None):
    status, _headers, body = _request(
        network, "POST", f"/control/{path}", json.dumps(data or {}), {"Content-Type": "application/json"}
    )
    return status, json.loads(body)


def test_signed_product_feed_pages_and_searches(sandbox_network):
    status, body = _signed(sandbox_network, "/api/products", {"page_no": 2, "page_size": 25})

    assert status == 200
    response = body["products_response"]
    assert response["total_results"] == 60
    assert len(response["results"]) == 25
    first = response["results"][0]
    assert set(first) >= {"item_id", "title", "pict_url", "zk_final_price", "coupon_amount", "commission_rate"}
    assert first["pict_url"].startswith(sandbox_network.url)


def test_a_bad_signature_is_refused_with_an_error_body(sandbox_network):
    status, body = _signed(sandbox_network, "/api/products", {}, secret="not-the-secret")

    assert status == 200  # as 淘宝开放平台: the error is in the body
    assert body["error_response"]["code"] == 25
    assert body["error_response"]["sub_code"] == "isv.invalid-signature"


def test_a_stale_timestamp_and_a_missing_app_key_are_refused(sandbox_network):
    stale = (datetime.now(CHINA) - timedelta(hours=1)).strftime("%Y-%m-%d %H:%M:%S")
    _status, body = _signed(sandbox_network, "/api/products", {}, timestamp=stale)
    assert body["error_response"]["sub_code"] == "isv.invalid-timestamp"

    _status, _headers, raw = _request(sandbox_network, "GET", "/api/products?page_no=1")
    assert json.loads(raw)["error_response"]["code"] == 40


def test_order_report_windows_over_three_hours_are_refused(sandbox_network):
    params = {"start_time": "2026-01-01 00:00:00", "end_time": "2026-01-01 03:00:01"}

    _status, body = _signed(sandbox_network, "/api/orders", params)

    assert body["error_response"]["sub_code"] == "isv.window-too-large"


def test_a_position_from_another_window_is_refused(sandbox_network):
    moment = datetime(2026, 1, 1, 10, 0, tzinfo=CHINA)
    sandbox_network.set_clock(moment)
    product = sandbox_network.state.products[0]
    for _ in range(3):
        sandbox_network.create_order("t1", product.item_id)
    window = {"start_time": "2026-01-01 09:00:00", "end_time": "2026-01-01 11:00:00", "page_size": 2}
    _status, body = _signed(sandbox_network, "/api/orders", window)
    position = body["orders_response"]["position_index"]

    _status, body = _signed(
        sandbox_network, "/api/orders", window | {"start_time": "2026-01-01 09:30:00", "position_index": position}
    )

    assert body["error_response"]["sub_code"] == "isv.invalid-parameter:position_index"


def test_a_click_on_a_tracking_link_is_recorded_and_redirects_to_the_product_page(sandbox_network):
    product = sandbox_network.state.products[3]
    _status, body = _signed(sandbox_network, "/api/link", {"item_id": product.item_id, "adzone_id": "m42"})
    click_path = urlsplit(body["link_response"]["click_url"]).path

    status, headers, _body = _request(sandbox_network, "GET", click_path, headers={"User-Agent": "test-browser"})

    assert status == 302
    assert headers["Location"] == f"/item/{product.item_id}?tid=m42"
    [click] = sandbox_network.clicks()
    assert click["item_id"] == product.item_id
    assert click["tracking_id"] == "m42"
    assert click["user_agent"] == "test-browser"


def test_buying_on_the_product_page_creates_a_paid_order_for_the_tracking_id(sandbox_network):
    product = sandbox_network.state.products[5]
    status, _headers, page = _request(sandbox_network, "GET", f"/item/{product.item_id}?tid=m7")
    assert status == 200
    assert b'name="tid" value="m7"' in page

    status, headers, _body = _request(
        sandbox_network,
        "POST",
        f"/item/{product.item_id}/buy",
        "tid=m7&quantity=2",
        {"Content-Type": "application/x-www-form-urlencoded"},
    )

    assert status == 303
    [order] = sandbox_network.orders()
    assert headers["Location"] == f"/order/{order['trade_id']}"
    assert order["adzone_id"] == "m7"
    assert order["item_num"] == 2
    assert order["tk_status"] == 12
    assert Decimal(order["alipay_total_price"]) == product.final_price * 2


def test_the_sandbox_serves_product_images_itself(sandbox_network):
    product = sandbox_network.state.products[0]

    status, headers, body = _request(sandbox_network, "GET", f"/img/{product.item_id}.svg")

    assert status == 200
    assert headers["Content-Type"] == "image/svg+xml"
    assert body.startswith(b"<svg")


def test_control_endpoints_drive_an_order_through_its_life(sandbox_network):
    product = sandbox_network.state.products[1]
    status, line = _control(
        sandbox_network,
        "orders",
        {"tracking_id": "m1", "product_id": product.item_id, "quantity": 1, "at": "2026-01-01T10:00:00+08:00"},
    )
    assert status == 200
    trade_id = line["trade_id"]

    _control(sandbox_network, f"orders/{trade_id}/confirm", {"at": "2026-01-03T10:00:00+08:00"})
    _status, settled = _control(
        sandbox_network, f"orders/{trade_id}/settle", {"actual_commission": "0.50", "at": "2026-01-20T08:00:00+08:00"}
    )
    _status, refunded = _control(sandbox_network, f"orders/{trade_id}/refund", {"at": "2026-01-25T08:00:00+08:00"})

    assert settled["tk_status"] == 3
    assert settled["pub_share_fee"] == "0.50"
    assert settled["tk_earning_time"] == "2026-01-20 08:00:00"
    assert refunded["tk_status"] == 13
    assert refunded["refund_tag"] == 1
    assert refunded["modified_time"] == "2026-01-25 08:00:00"


def test_control_refuses_a_move_the_state_machine_does_not_allow(sandbox_network):
    product = sandbox_network.state.products[1]
    line = sandbox_network.create_order("m1", product.item_id)

    status, body = _control(sandbox_network, f"orders/{line['trade_id']}/settle")

    assert status == 400
    assert "cannot move" in body["error"]
    assert sandbox_network.order(line["trade_id"])["tk_status"] == 12
    with pytest.raises(SandboxError):
        sandbox_network.create_order("not a tracking id!", product.item_id)


def test_control_clock_and_injected_failures(sandbox_network):
    _status, body = _control(sandbox_network, "clock", {"now": "2026-03-01T12:00:00+08:00"})
    assert body["now"] == "2026-03-01T12:00:00+08:00"
    _control(sandbox_network, "clock", {"advance_seconds": 90})
    assert sandbox_network.now() == datetime(2026, 3, 1, 12, 1, 30, tzinfo=CHINA)

    _control(sandbox_network, "failures", {"count": 1, "status": 502})
    status, _body = _signed(sandbox_network, "/api/products", {})
    assert status == 502
    status, _body = _signed(sandbox_network, "/api/products", {})
    assert status == 200


def test_the_management_command_refuses_to_listen_beyond_loopback():
    with pytest.raises(CommandError):
        call_command("sandbox_network", "--host", "0.0.0.0")  # noqa: S104 - the refusal under test


def test_the_catalogue_is_the_same_for_the_same_seed():
    with SandboxNetwork(seed=7) as first, SandboxNetwork(seed=7) as second, SandboxNetwork(seed=8) as third:
        assert first.state.products == second.state.products
        assert first.state.products != third.state.products
