"""`TaobaoConnector`: 淘宝联盟 (Taobao Union) through 淘宝开放平台 (TOP), the gateway `<URL>/router/rest`.

Written from TOP's published protocol and the 淘宝客 API documentation (sources and what is unverified:
docs/networks-formats.md, "淘宝联盟 API connector"):

- every call is an HTTP POST to `<URL>/router/rest`: the system parameters (`method`, `app_key`, `timestamp`
  "YYYY-MM-DD HH:MM:SS" GMT+8, `format=json`, `v=2.0`, `sign_method`, `sign`) in the query string and the
  method's own parameters form-encoded in the body, as TOP's own SDKs send them;
- `sign` is the upper-case hex digest of every parameter but `sign` (system and method, empty ones left out),
  sorted by name and concatenated as name + value: HMAC-MD5 keyed with the app secret (`hmac`, what we send),
  MD5 of secret + string + secret (`md5`) or HMAC-SHA256 (`hmac-sha256`);
- an answer is `{"<method without 'taobao.', dots as underscores>_response": {...}}` or
  `{"error_response": {"code", "msg", "sub_code", "sub_msg"}}`, both with HTTP 200.

The methods: products ← `taobao.tbk.dg.material.optional` (物料搜索), links ← `taobao.tbk.dg.general.link.convert`
(万能转链, by item id), orders ← `taobao.tbk.order.details.get` with `query_type=4` (by the line's last change).
Our tracking id is the 推广位 (adzone) id: the last number of the PID `mm_<member>_<site>_<adzone>`, digits only.
"""

import hashlib
import hmac
import json
import os
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation
from http.client import HTTPException
from urllib.error import HTTPError
from urllib.parse import urlencode, urlsplit
from urllib.request import Request, urlopen

from .base import Connector, ConnectorError, NetworkProduct, OrderStatus, ReportedOrder, ReportPage
from .wire import CHINA, WIRE_TIME, parse_decimal, parse_money, parse_wire_time, wire_time

GATEWAY_PATH = "/router/rest"

SEARCH_METHOD = "taobao.tbk.dg.material.optional"
LINK_METHOD = "taobao.tbk.dg.general.link.convert"
ORDERS_METHOD = "taobao.tbk.order.details.get"

QUERY_BY_MODIFIED_TIME = 4  # query_type 4: 按照订单更新时间 (1 created, 2 paid, 3 settled)
MAX_PAGE_NO = 100  # order.details.get: page_no 1~100

# tk_status → our lifecycle ("3:订单结算，12:订单付款，13:订单失效，14:订单成功"). Anything else is refused.
STATUS_MAP = {
    "12": OrderStatus.PAID,  # 已付款
    "14": OrderStatus.CONFIRMED,  # 已收货 / 订单成功
    "3": OrderStatus.SETTLED,  # 已结算
    "13": OrderStatus.INVALID,  # 已失效
}

SIGN_METHODS = ("hmac", "md5", "hmac-sha256")


def top_sign(params: dict[str, str], secret: str, sign_method: str = "hmac") -> str:
    """TOP's signature: every parameter but `sign` with a non-empty name and value, sorted by name (byte order),
    concatenated as name + value, UTF-8; HMAC-MD5 keyed with the secret (`hmac`), MD5 of secret + string + secret
    (`md5`), or HMAC-SHA256 (`hmac-sha256`); upper-case hex."""
    signed = sorted((name, value) for name, value in params.items() if name and name != "sign" and value)
    message = "".join(f"{name}{value}" for name, value in signed)
    if sign_method == "hmac":
        digest = hmac.new(secret.encode(), message.encode(), hashlib.md5).hexdigest()
    elif sign_method == "md5":
        digest = hashlib.md5(f"{secret}{message}{secret}".encode()).hexdigest()  # noqa: S324 - TOP's scheme
    elif sign_method == "hmac-sha256":
        digest = hmac.new(secret.encode(), message.encode(), hashlib.sha256).hexdigest()
    else:
        raise ValueError(f"unknown sign_method {sign_method!r}")
    return digest.upper()


def response_key(method: str) -> str:
    """The key TOP wraps a method's answer in: taobao.tbk.order.details.get → tbk_order_details_get_response."""
    return method.removeprefix("taobao.").replace(".", "_") + "_response"


class TaobaoConnector(Connector):
    code = "taobao"
    name = "淘宝联盟"
    tracking_ids_assigned_by_staff = True  # a 推广位 (adzone) is created in the 淘宝联盟 console, one per member
    max_window = timedelta(hours=3)  # order.details.get: "日常要求不超过3个小时" (20 minutes during big sales)
    page_size = 100  # order-report lines per call (the API's maximum)
    search_page_size = 20
    sign_method = "hmac"

    def __init__(
        self,
        *,
        base_url: str,
        app_key: str,
        app_secret: str,
        timeout: float = 10.0,
        adzone_id: str | None = None,
    ):
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError(f"the TOP gateway URL must be http(s)://host[:port], not {base_url!r}")
        base = base_url.rstrip("/")
        self.url = base if base.endswith(GATEWAY_PATH) else base + GATEWAY_PATH
        self.base_url = base
        self.app_key = app_key
        self.app_secret = app_secret
        self.timeout = timeout
        # The 推广位 the product search is made for (material.optional needs one); not a secret, so the
        # environment (NETWORK_TAOBAO_ADZONE_ID) rather than a constructor argument from the registry.
        self.adzone_id = adzone_id if adzone_id is not None else os.environ.get("NETWORK_TAOBAO_ADZONE_ID", "")

    # --- Connector ---------------------------------------------------------------------------------------------

    def search_products(self, query: str = "", page: int = 1) -> list[NetworkProduct]:
        if not self.adzone_id.isdigit():
            raise ConnectorError("taobao: set NETWORK_TAOBAO_ADZONE_ID (the 推广位 id the search is made for)")
        params = {"adzone_id": self.adzone_id, "page_no": page, "page_size": self.search_page_size}
        if query:
            params["q"] = query
        body = self._call(SEARCH_METHOD, params)
        try:
            return [_product(item) for item in _list(body.get("result_list"), "map_data")]
        except (KeyError, TypeError, ValueError, InvalidOperation) as error:
            raise ConnectorError(f"taobao: unexpected {SEARCH_METHOD} answer: {error!r}") from error

    def tracking_link(self, product_external_id: str, tracking_id: str) -> str:
        tracking_id = str(tracking_id)
        if not tracking_id.isdigit():
            raise ConnectorError(f"taobao: the tracking id must be a numeric 推广位 (adzone) id, not {tracking_id!r}")
        params = {"adzone_id": tracking_id, "biz_scene_id": "1", "item_id_list": str(product_external_id)}
        body = self._call(LINK_METHOD, params)
        try:
            entries = _list((body.get("data") or {}).get("item_url_list"), "item_url_list")
            entry = next(e for e in entries if str(e.get("input_item_id", product_external_id)) == product_external_id)
        except (StopIteration, AttributeError, TypeError) as error:
            raise ConnectorError(f"taobao: {LINK_METHOD} gave no link for item {product_external_id}") from error
        if str(entry.get("code", "0")) not in ("0", "") or not entry.get("link_info_dto"):
            raise ConnectorError(
                f"taobao: {LINK_METHOD} refused item {product_external_id}: {entry.get('code')} {entry.get('msg')}"
            )
        links = entry["link_info_dto"]
        # 二合一 (product + coupon) when the item has a coupon, else the plain CPS link; short before long.
        for name in ("coupon_short_url", "cps_short_url", "coupon_long_url", "cps_long_url"):
            if links.get(name):
                return _https(str(links[name]))
        raise ConnectorError(f"taobao: {LINK_METHOD} answered no URL for item {product_external_id}")

    def fetch_orders(self, start: datetime, end: datetime, page: str | None = None) -> ReportPage:
        """Lines whose modified_time is in [start, end) (query_type 4); both bounds floored to the second on the
        wire. Pages: page_no with the position_index of the previous answer and jump_type 1 (forward)."""
        if start.tzinfo is None or end.tzinfo is None:
            raise ValueError("start and end must be timezone-aware")
        params = {
            "query_type": QUERY_BY_MODIFIED_TIME,
            "start_time": wire_time(start),
            "end_time": wire_time(end),
            "page_size": self.page_size,
        }
        page_no = 1
        if page:
            number, _, position = page.partition(":")
            if not number.isdigit() or not position:
                raise ValueError(f"not a page token of this connector: {page!r}")
            page_no = int(number)
            params |= {"page_no": page_no, "position_index": position, "jump_type": 1}
        body = self._call(ORDERS_METHOD, params)
        try:
            data = body["data"]
            orders = [_reported(line) for line in _list(data.get("results"), "publisher_order_dto")]
            has_next = _true(data.get("has_next"))
            position = str(data.get("position_index") or "")
        except (KeyError, TypeError, ValueError, AttributeError, InvalidOperation) as error:
            raise ConnectorError(f"taobao: unexpected {ORDERS_METHOD} answer: {error!r}") from error
        next_page = None
        if has_next:
            if not position:
                raise ConnectorError(f"taobao: {ORDERS_METHOD} says has_next without a position_index")
            if page_no >= MAX_PAGE_NO:
                raise ConnectorError(f"taobao: more than {MAX_PAGE_NO} pages in one window; shorten the window")
            next_page = f"{page_no + 1}:{position}"
        return ReportPage(orders=orders, next_page=next_page)

    # --- the wire ----------------------------------------------------------------------------------------------

    def _call(self, method: str, params: dict) -> dict:
        business = {name: str(value) for name, value in params.items() if value not in (None, "")}
        system = {
            "method": method,
            "app_key": self.app_key,
            "timestamp": datetime.now(CHINA).strftime(WIRE_TIME),
            "format": "json",
            "v": "2.0",
            "sign_method": self.sign_method,
        }
        system["sign"] = top_sign(system | business, self.app_secret, self.sign_method)
        # The scheme is checked in __init__ (http/https only), so no file:// or custom scheme reaches urlopen.
        request = Request(  # noqa: S310
            f"{self.url}?{urlencode(system)}",
            data=urlencode(business).encode(),
            headers={
                "Content-Type": "application/x-www-form-urlencoded;charset=utf-8",
                "Accept": "application/json",
                "User-Agent": "cps-storefront/networks",
            },
            method="POST",
        )
        try:
            with urlopen(request, timeout=self.timeout) as response:  # noqa: S310 - same URL, checked scheme
                raw = response.read()
        except HTTPError as error:
            raise ConnectorError(f"taobao: HTTP {error.code} from {method}") from error
        except (OSError, HTTPException) as error:  # URLError, timeouts, resets are OSErrors
            raise ConnectorError(f"taobao: {method} unreachable: {error}") from error
        try:
            body = json.loads(raw)
        except ValueError as error:
            raise ConnectorError(f"taobao: {method} answered something other than JSON") from error
        if not isinstance(body, dict):
            raise ConnectorError(f"taobao: {method} answered an unexpected body")
        if "error_response" in body:
            error = body["error_response"] or {}
            raise ConnectorError(
                f"taobao: {method} refused: code {error.get('code')} {error.get('msg')} "
                f"(sub_code {error.get('sub_code')}: {error.get('sub_msg')}) request_id {error.get('request_id')}"
            )
        answer = body.get(response_key(method))
        if not isinstance(answer, dict):
            raise ConnectorError(f"taobao: {method} answered without {response_key(method)}")
        return answer


def _list(value, element: str) -> list:
    """A TOP list: `{"<element>": [...]}` in the default JSON, a bare list with simplify=true; absent is empty."""
    if value is None:
        return []
    if isinstance(value, dict):
        value = value.get(element, [])
        if isinstance(value, dict):  # a single element, as XML-converted JSON sometimes has it
            value = [value]
    if not isinstance(value, list):
        raise TypeError(f"expected a list of {element}, got {type(value).__name__}")
    return value


def _true(value) -> bool:
    return value is True or str(value).lower() == "true"


def _https(url: str) -> str:
    return f"https:{url}" if url.startswith("//") else url


def _product(item: dict) -> NetworkProduct:
    item_id = item.get("item_id") or item.get("num_iid")  # num_iid: the older, deprecated name
    if not item_id:
        raise KeyError("item_id")
    price = item.get("zk_final_price") or item["reserve_price"]  # 折扣价; the coupon comes off it
    return NetworkProduct(
        external_id=str(item_id),
        title=str(item["title"]),
        image_url=_https(str(item.get("pict_url", ""))),
        price=parse_money(price),
        coupon=parse_money(item.get("coupon_amount") or "0"),
        commission_rate=parse_decimal(item["commission_rate"]) / 10000,  # "1550" = 15.5 %
        shop_name=str(item.get("shop_title", "")),
        url=_https(str(item.get("item_url", ""))),
    )


def _reported(line: dict) -> ReportedOrder:
    code = str(line["tk_status"])
    if code not in STATUS_MAP:
        raise ValueError(f"unknown tk_status {code!r} on line {line.get('trade_id')!r}")
    status = STATUS_MAP[code]
    if str(line.get("refund_tag", "0")) == "1":
        status = OrderStatus.INVALID  # 维权 (refund claimed): no commission for it, whatever stage it was at
    if status == OrderStatus.SETTLED:
        commission = parse_money(line["pub_share_fee"])  # 结算预估收入
    elif status == OrderStatus.INVALID:
        commission = Decimal("0.00")  # the network pays nothing for an invalid line, whatever it estimated
    else:
        commission = parse_money(line["pub_share_pre_fee"])  # 付款预估收入
    paid_at = parse_wire_time(line.get("tk_paid_time")) or parse_wire_time(line.get("tk_create_time"))
    updated_at = parse_wire_time(line.get("modified_time"))
    if paid_at is None or updated_at is None:
        raise ValueError(f"line {line.get('trade_id')!r} without tk_paid_time or modified_time")
    settled_at = parse_wire_time(line.get("tk_earning_time")) if status == OrderStatus.SETTLED else None
    if status == OrderStatus.SETTLED and settled_at is None:
        raise ValueError(f"settled line {line.get('trade_id')!r} without tk_earning_time")
    return ReportedOrder(
        external_order_id=str(line["trade_parent_id"]),
        line_id=str(line["trade_id"]),
        tracking_id=str(line["adzone_id"]),
        product_id=str(line["item_id"]),
        title=str(line.get("item_title", "")),
        quantity=int(line["item_num"]),
        paid_amount=parse_money(line["alipay_total_price"]),
        commission=commission,
        status=status,
        paid_at=paid_at,
        updated_at=updated_at,
        settled_at=settled_at,
        raw=dict(line),
    )
