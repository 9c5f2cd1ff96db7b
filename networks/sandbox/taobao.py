"""淘宝开放平台 (TOP)'s gateway protocol, spoken by the sandbox over its own state: `POST|GET /router/rest`.

So `networks.connectors.taobao.TaobaoConnector` runs against the sandbox exactly as it would against
gw.api.taobao.com: the system parameters (query string or form body), TOP's signature (`hmac`, `md5` or
`hmac-sha256`, verified with the sandbox's app key and secret), `{"<method>_response": …}` answers and TOP's
`error_response` for a bad call. Three methods are answered from `SandboxNetwork.state`:

- `taobao.tbk.dg.material.optional`: the catalogue, searched by title (`q`), paged (`page_no`, `page_size`);
- `taobao.tbk.dg.general.link.convert`: item ids (`item_id_list`) → tracking links for `adzone_id`, which the
  sandbox's `/t/<code>` records as clicks like its own links;
- `taobao.tbk.order.details.get`: order lines of a window (`query_type` 1 created / 2 paid / 3 settled /
  4 modified), at most `max_window` long, keyset-paged by `position_index` (bound to its window) and `page_no`.

The field names and shapes follow the documentation as described in docs/networks-formats.md; the sandbox
renders its own product and order model in them (e.g. `zk_final_price` is the sandbox's list price and
`coupon_amount` comes off it), so this is a faithful *protocol*, not a copy of 淘宝联盟's data.
"""

import base64
import binascii
import hmac
import json
import secrets
from datetime import datetime
from decimal import Decimal
from http import HTTPStatus
from urllib.parse import parse_qsl

from networks.connectors.taobao import (
    LINK_METHOD,
    ORDERS_METHOD,
    SEARCH_METHOD,
    SIGN_METHODS,
    response_key,
    top_sign,
)

from .server import (
    CENT,
    CHINA,
    MAX_PAGE_SIZE,
    PROTOCOLS,
    SETTLED,
    TIMESTAMP_TOLERANCE,
    SandboxError,
    _encode_position,
    parse_wire_time,
    wire_time,
)

MAX_PAGE_NO = 100
SITE_ID = 1000  # the sandbox's 媒体 id (PID mm_<member>_<site>_<adzone>, second number)
PUB_ID = 100  # the sandbox publisher's account id


class TopError(Exception):
    """An `error_response`: TOP's platform codes (21–43) or 15 with an `isv.*` sub_code for a method's own errors."""

    def __init__(self, code: int, msg: str, sub_code: str = "", sub_msg: str = ""):
        super().__init__(f"{code} {msg} {sub_code} {sub_msg}")
        self.body = {"code": code, "msg": msg, "sub_code": sub_code, "sub_msg": sub_msg}


def _missing(name: str) -> TopError:
    return TopError(40, "Missing Required Arguments", f"isv.missing-parameter:{name}", f"{name} is required")


def _invalid(name: str, why: str) -> TopError:
    return TopError(41, "Invalid Arguments", f"isv.invalid-parameter:{name}", why)


def handle(handler, query: dict[str, str], body: bytes) -> None:
    """PROTOCOLS["/router/rest"]: one TOP call; writes the whole HTTP answer through the sandbox's handler."""
    failure = handler._take_failure()  # the sandbox's injected failures apply to this protocol too
    if failure is not None:
        if failure.mode == "timeout":
            handler.network._stopping.wait(failure.hang_seconds)
            handler._json(HTTPStatus.GATEWAY_TIMEOUT, {"error": "gateway timeout"})
        else:
            handler._json(failure.status, {"error": "injected failure"})
        return
    request_id = secrets.token_hex(6)
    try:
        params = dict(query)
        if body:
            params |= dict(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))
        method = _check_call(handler.state, params)
        answer = METHODS[method](handler, params)
        answer["request_id"] = request_id
        payload = {response_key(method): answer}
    except TopError as error:
        payload = {"error_response": error.body | {"request_id": request_id}}
    except SandboxError as error:  # the sandbox's own refusal, as TOP reports a service's error
        payload = {"error_response": TopError(15, "Remote service error", "isv.sandbox", str(error)).body}
    handler._json(HTTPStatus.OK, payload)


def _check_call(state, params: dict[str, str]) -> str:
    """The system parameters and the signature, in TOP's order of checks; returns the method."""
    for name, code, msg in (
        ("method", 21, "Missing Method"),
        ("sign", 24, "Missing Signature"),
        ("app_key", 28, "Missing App Key"),
        ("timestamp", 30, "Missing Timestamp"),
        ("v", 32, "Missing Version"),
    ):
        if not params.get(name):
            raise TopError(code, msg)
    if params.get("format", "xml") != "json":
        raise TopError(23, "Invalid Format", "isv.invalid-parameter:format", "the sandbox answers format=json only")
    if params["v"] != "2.0":
        raise TopError(33, "Invalid Version")
    if not hmac.compare_digest(params["app_key"], state.app_key):
        raise TopError(29, "Invalid App Key")
    sign_method = params.get("sign_method", "md5")  # TOP's default when absent
    if sign_method not in SIGN_METHODS:
        raise _invalid("sign_method", f"one of {', '.join(SIGN_METHODS)}")
    if not hmac.compare_digest(params["sign"].upper(), top_sign(params, state.app_secret, sign_method)):
        raise TopError(25, "Invalid Signature")
    try:
        sent = parse_wire_time(params["timestamp"])
    except ValueError:
        raise TopError(31, "Invalid Timestamp", "", "expected yyyy-MM-dd HH:mm:ss, GMT+8") from None
    if abs(datetime.now(CHINA) - sent) > TIMESTAMP_TOLERANCE:  # the wall clock: clients sign with real time
        raise TopError(31, "Invalid Timestamp", "", "more than 10 minutes from the server's time")
    if params["method"] not in METHODS:
        raise TopError(22, "Invalid Method")
    return params["method"]


def _int(params: dict[str, str], name: str, default: int | None, low: int, high: int) -> int:
    text = params.get(name, "")
    if not text:
        if default is None:
            raise _missing(name)
        return default
    try:
        value = int(text)
    except ValueError:
        raise _invalid(name, "expected an integer") from None
    if not low <= value <= high:
        raise _invalid(name, f"expected {low} to {high}")
    return value


def _adzone(params: dict[str, str]) -> str:
    adzone_id = params.get("adzone_id", "")
    if not adzone_id:
        raise _missing("adzone_id")
    if not adzone_id.isdigit() or len(adzone_id) > 20:
        raise _invalid("adzone_id", "the 推广位 id: the last number of the PID")
    return adzone_id


# --- taobao.tbk.dg.material.optional ---------------------------------------------------------------------------


def _material_optional(handler, params: dict[str, str]) -> dict:
    _adzone(params)
    page_no = _int(params, "page_no", 1, 1, 1000)
    page_size = _int(params, "page_size", 20, 1, MAX_PAGE_SIZE)
    words = params.get("q", "").strip().casefold()
    products = [p for p in handler.state.products if words in p.title.casefold()]
    start = (page_no - 1) * page_size
    url = handler.network.url
    return {
        "total_results": len(products),
        "result_list": {
            "map_data": [
                {
                    "item_id": product.item_id,
                    "title": product.title,
                    "pict_url": f"{url}/img/{product.item_id}.svg",
                    "item_url": f"{url}/item/{product.item_id}",
                    "reserve_price": str(product.price),
                    "zk_final_price": str(product.price),
                    "coupon_amount": str(product.coupon) if product.coupon else "",
                    "commission_rate": str((product.rate * 10000).quantize(Decimal(1))),  # "1550" = 15.5 %
                    "commission_type": "COMMON",
                    "shop_title": product.shop_title,
                    "user_type": 0,
                }
                for product in products[start : start + page_size]
            ]
        },
    }


# --- taobao.tbk.dg.general.link.convert ------------------------------------------------------------------------


def _link_convert(handler, params: dict[str, str]) -> dict:
    adzone_id = _adzone(params)
    item_ids = [item for item in params.get("item_id_list", "").split(",") if item]
    if not item_ids:
        raise _missing("item_id_list")
    if len(item_ids) > 40:
        raise _invalid("item_id_list", "at most 40 item ids")
    entries = []
    for item_id in item_ids:
        try:
            product = handler.state.product(item_id)
        except SandboxError:
            entries.append({"input_item_id": item_id, "code": 1001, "msg": "商品不存在或不可推广"})
            continue
        link = f"{handler.network.url}/t/{handler.network._link_code(item_id, adzone_id)}"
        info = {"item_id": item_id, "material_type": 1, "cps_short_url": link, "cps_long_url": link}
        if product.coupon:
            info |= {"coupon_short_url": link, "coupon_long_url": link}
        entries.append({"input_item_id": item_id, "code": 0, "link_info_dto": info})
    return {"data": {"item_url_list": {"item_url_list": entries}}}


# --- taobao.tbk.order.details.get ------------------------------------------------------------------------------

_QUERY_TIME = {
    1: lambda line: line.created_at,
    2: lambda line: line.paid_at,
    3: lambda line: line.earning_at,
    4: lambda line: line.modified_at,
}


def _order_details(handler, params: dict[str, str]) -> dict:
    state = handler.state
    bounds = []
    for name in ("start_time", "end_time"):
        if not params.get(name):
            raise _missing(name)
        try:
            bounds.append(parse_wire_time(params[name]))
        except ValueError:
            raise _invalid(name, "expected yyyy-MM-dd HH:mm:ss") from None
    start, end = bounds
    if end <= start:
        raise _invalid("end_time", "end_time must be after start_time")
    if end - start > state.max_window:
        hours = state.max_window.total_seconds() / 3600
        raise TopError(15, "Remote service error", "isv.window-too-large", f"查询时间段不能超过{hours:g}个小时")
    query_type = _int(params, "query_type", 1, 1, 4)
    page_size = _int(params, "page_size", 20, 1, MAX_PAGE_SIZE)
    page_no = _int(params, "page_no", 1, 1, MAX_PAGE_NO)
    tk_status = _int(params, "tk_status", 0, 0, 14)
    if params.get("order_scene") and params["order_scene"] not in ("1", "2", "3"):
        raise _invalid("order_scene", "1, 2 or 3")
    after = _position(params.get("position_index", ""), start, end, query_type)
    if page_no > 1 and after is None:
        raise _missing("position_index")
    moment = _QUERY_TIME[query_type]
    with state.lock:
        lines = sorted(
            (
                line
                for line in state.lines.values()
                if moment(line) is not None
                and start <= moment(line) < end
                and (not tk_status or line.status == tk_status)
            ),
            key=lambda line: (moment(line), line.trade_id),
        )
        if after is not None:
            lines = [line for line in lines if (moment(line), line.trade_id) > after]
        page = lines[:page_size]
        results = [_order_json(line) for line in page]
    has_next = len(lines) > page_size
    position = ""
    if page:
        last = page[-1]
        position = _encode_position(start, end, moment(last), f"{query_type}:{last.trade_id}")
    return {
        "data": {
            "has_next": has_next,
            "has_pre": page_no > 1,
            "page_no": page_no,
            "page_size": page_size,
            "position_index": position,
            "results": {"publisher_order_dto": results},
        }
    }


def _position(token: str, start: datetime, end: datetime, query_type: int) -> tuple[datetime, str] | None:
    if not token:
        return None
    try:
        data = json.loads(base64.urlsafe_b64decode(token.encode() + b"==="))
        kind, _, trade_id = str(data["t"]).partition(":")
        if data["s"] != wire_time(start) or data["e"] != wire_time(end) or kind != str(query_type):
            raise ValueError("another window")
        return parse_wire_time(data["m"]), trade_id
    except (ValueError, KeyError, TypeError, binascii.Error):
        raise _invalid("position_index", "not a position of this query") from None


def _order_json(line) -> dict:
    """An order line as a PublisherOrderDto: TOP's types (adzone_id, tk_status, item_num are numbers) and no
    field for a time that has not happened (pub_share_fee is "0.00" until settlement)."""
    report = line.report()
    dto = {
        "trade_parent_id": report["trade_parent_id"],
        "trade_id": report["trade_id"],
        "item_id": report["item_id"],
        "item_title": report["item_title"],
        "item_num": line.quantity,
        "item_price": report["item_price"],
        "alipay_total_price": report["alipay_total_price"],
        "pay_price": report["alipay_total_price"] if line.status == SETTLED else "",
        "seller_shop_title": report["seller_shop_title"],
        "order_type": "淘宝",
        "flow_source": "--",
        "terminal_type": "无线",
        "tk_status": line.status,
        "total_commission_rate": report["total_commission_rate"],
        "pub_share_pre_fee": report["pub_share_pre_fee"],
        "pub_share_fee": str(line.actual) if line.actual is not None else str(Decimal(0).quantize(CENT)),
        "tk_create_time": report["tk_create_time"],
        "tk_paid_time": report["tk_paid_time"],
        "tb_paid_time": report["tk_paid_time"],
        "tk_earning_time": report["tk_earning_time"],
        "modified_time": report["modified_time"],
        "adzone_id": int(line.tracking_id) if line.tracking_id.isdigit() else line.tracking_id,
        "adzone_name": f"sandbox {line.tracking_id}",
        "site_id": SITE_ID,
        "site_name": "sandbox",
        "pub_id": PUB_ID,
        "tk_order_role": 2,
        "refund_tag": line.refund_tag,
    }
    return {name: value for name, value in dto.items() if value != ""}


METHODS = {
    SEARCH_METHOD: _material_optional,
    LINK_METHOD: _link_convert,
    ORDERS_METHOD: _order_details,
}

PROTOCOLS["/router/rest"] = handle
