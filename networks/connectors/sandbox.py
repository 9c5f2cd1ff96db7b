"""`SandboxConnector`: the client of the built-in sandbox network's HTTP API (networks/sandbox/server.py).

Written like a real network's client: signed GET calls (HMAC-SHA256, 淘宝开放平台's scheme), a timeout on every
call, the network's error bodies and 5xx answers turned into ConnectorError, its status codes mapped onto
OrderStatus, money as Decimal and its China-time timestamps as aware datetimes (UTC).
"""

import hashlib
import hmac
import json
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation
from http.client import HTTPException
from urllib.error import HTTPError
from urllib.parse import urlencode, urlsplit
from urllib.request import Request, urlopen

from django.utils.translation import gettext_lazy as _

from .base import Connector, ConnectorError, NetworkProduct, OrderStatus, ReportedOrder, ReportPage
from .wire import CHINA, WIRE_TIME, parse_decimal, parse_money, parse_wire_time, wire_time

# tk_status → our lifecycle. Anything else is refused: a code we do not know must not move money.
STATUS_MAP = {
    "12": OrderStatus.PAID,  # 已付款
    "14": OrderStatus.CONFIRMED,  # 已收货 (receipt confirmed)
    "3": OrderStatus.SETTLED,  # 已结算
    "13": OrderStatus.INVALID,  # 已失效 (cancelled, refunded, judged invalid)
}


class SandboxConnector(Connector):
    code = "sandbox"
    name = _("Sandbox network")
    max_window = timedelta(hours=3)  # the API refuses larger order-report windows
    page_size = 100  # order-report lines per call (the API's maximum)
    search_page_size = 20

    def __init__(self, *, base_url: str, app_key: str, app_secret: str, timeout: float = 10.0):
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError(f"the sandbox URL must be http(s)://host:port, not {base_url!r}")
        self.base_url = base_url.rstrip("/")
        self.app_key = app_key
        self.app_secret = app_secret
        self.timeout = timeout

    # --- Connector ---------------------------------------------------------------------------------------------

    def search_products(self, query: str = "", page: int = 1) -> list[NetworkProduct]:
        body = self._call("/api/products", {"q": query, "page_no": page, "page_size": self.search_page_size})
        try:
            results = body["products_response"]["results"]
            return [
                NetworkProduct(
                    external_id=str(item["item_id"]),
                    title=str(item["title"]),
                    image_url=str(item["pict_url"]),
                    price=parse_money(item["reserve_price"]),
                    coupon=parse_money(item["coupon_amount"]),
                    commission_rate=(parse_decimal(item["commission_rate"]) / 100),
                    shop_name=str(item.get("shop_title", "")),
                    url=str(item.get("item_url", "")),
                )
                for item in results
            ]
        except (KeyError, TypeError, ValueError) as error:
            raise ConnectorError(f"sandbox: unexpected product feed: {error!r}") from error

    def tracking_link(self, product_external_id: str, tracking_id: str) -> str:
        body = self._call("/api/link", {"item_id": product_external_id, "adzone_id": tracking_id})
        try:
            return str(body["link_response"]["click_url"])
        except (KeyError, TypeError) as error:
            raise ConnectorError(f"sandbox: unexpected link answer: {error!r}") from error

    def fetch_orders(self, start: datetime, end: datetime, page: str | None = None) -> ReportPage:
        """Lines whose modified_time is in [start, end); the API's clock has whole seconds, so both bounds are
        floored to the second (contiguous windows stay contiguous). Windows over `max_window` are refused."""
        if start.tzinfo is None or end.tzinfo is None:
            raise ValueError("start and end must be timezone-aware")
        params = {"start_time": wire_time(start), "end_time": wire_time(end), "page_size": self.page_size}
        if page:
            params["position_index"] = page
        body = self._call("/api/orders", params)
        try:
            response = body["orders_response"]
            orders = [_reported(line) for line in response["results"]]
            next_page = str(response["position_index"]) if response["has_next"] else None
        except (KeyError, TypeError, ValueError, InvalidOperation) as error:
            raise ConnectorError(f"sandbox: unexpected order report: {error!r}") from error
        return ReportPage(orders=orders, next_page=next_page)

    # --- the wire ----------------------------------------------------------------------------------------------

    def _call(self, path: str, params: dict) -> dict:
        signed = {name: str(value) for name, value in params.items()}
        signed |= {
            "app_key": self.app_key,
            "timestamp": datetime.now(CHINA).strftime(WIRE_TIME),
            "sign_method": "hmac-sha256",
        }
        signed["sign"] = sign(signed, self.app_secret)
        url = f"{self.base_url}{path}?{urlencode(signed)}"
        # The scheme is checked in __init__ (http/https only), so no file:// or custom scheme reaches urlopen.
        request = Request(url, headers={"Accept": "application/json", "User-Agent": "cps-storefront/networks"})  # noqa: S310
        try:
            with urlopen(request, timeout=self.timeout) as response:  # noqa: S310 - same URL, checked scheme
                raw = response.read()
        except HTTPError as error:
            raise ConnectorError(f"sandbox: HTTP {error.code} from {path}") from error
        except (OSError, HTTPException) as error:  # URLError, timeouts, resets are OSErrors
            raise ConnectorError(f"sandbox: {path} unreachable: {error}") from error
        try:
            body = json.loads(raw)
        except ValueError as error:
            raise ConnectorError(f"sandbox: {path} answered something other than JSON") from error
        if not isinstance(body, dict):
            raise ConnectorError(f"sandbox: {path} answered an unexpected body")
        if "error_response" in body:
            error = body["error_response"] or {}
            raise ConnectorError(
                f"sandbox: {path} refused: {error.get('code')} {error.get('msg')} "
                f"({error.get('sub_code')}: {error.get('sub_msg')})"
            )
        return body


def sign(params: dict[str, str], secret: str) -> str:
    """Upper-case hex HMAC-SHA256 (key: the app secret) of the parameters but `sign`, sorted, name + value."""
    message = "".join(f"{name}{value}" for name, value in sorted(params.items()) if name != "sign")
    return hmac.new(secret.encode(), message.encode(), hashlib.sha256).hexdigest().upper()


def _reported(line: dict) -> ReportedOrder:
    code = str(line["tk_status"])
    if code not in STATUS_MAP:
        raise ValueError(f"unknown tk_status {code!r} on line {line.get('trade_id')!r}")
    status = STATUS_MAP[code]
    if status == OrderStatus.SETTLED:
        commission = parse_money(line["pub_share_fee"])
    elif status == OrderStatus.INVALID:
        commission = Decimal("0.00")  # the network pays nothing for an invalid line, whatever it estimated
    else:
        commission = parse_money(line["pub_share_pre_fee"])
    paid_at = parse_wire_time(line["tk_paid_time"])
    updated_at = parse_wire_time(line["modified_time"])
    if paid_at is None or updated_at is None:
        raise ValueError(f"line {line.get('trade_id')!r} without tk_paid_time or modified_time")
    return ReportedOrder(
        external_order_id=str(line["trade_parent_id"]),
        line_id=str(line["trade_id"]),
        tracking_id=str(line["adzone_id"]),
        product_id=str(line["item_id"]),
        title=str(line["item_title"]),
        quantity=int(line["item_num"]),
        paid_amount=parse_money(line["alipay_total_price"]),
        commission=commission,
        status=status,
        paid_at=paid_at,
        updated_at=updated_at,
        settled_at=parse_wire_time(line.get("tk_earning_time")) if status == OrderStatus.SETTLED else None,
        raw=dict(line),
    )
