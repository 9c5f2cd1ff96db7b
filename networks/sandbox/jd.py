"""京东联盟's open-API gateway (`/routerjson`), spoken by the sandbox over its own products and order lines.

So `networks.connectors.jd.JdConnector` runs against the sandbox as it would against https://api.jd.com/routerjson.
Written from JD's documentation (docs/networks-formats.md, "京东联盟 API connector"), not from the connector:

- GET or POST (form) with `method`, `app_key`, `timestamp` (China time, at most 6 minutes off the wall clock),
  `v`, optional `format=json` and `sign_method=md5`, `360buy_param_json` and `sign`: upper-case hex MD5 of
  secret + the other non-empty parameters sorted by name as name + value + secret, with the sandbox's app secret.
- Gateway errors: HTTP 200 `{"error_response": {"code", "zh_desc", "en_desc"}}`. Success:
  `{"<method, . → _>_responce": {"code": "0", "queryResult" | "getResult": "<JSON text>"}}`, the JSON text being
  `{"code": 200, "message": "success", …}`, or a business error `{"code": 400, "message": …}`.
- Three methods: jd.union.open.goods.query, jd.union.open.promotion.bysubunionid.get and
  jd.union.open.order.row.query (windows of at most one hour, pageSize up to 500, `hasMore`).

The sandbox's lines carry 淘宝联盟's tk_status; here they become JD validCodes: 12 → 16 已付款, 14 → 17 已完成,
3 → 18 已结算 (payMonth = the settlement date), 13 → 3 无效-取消. Injected failures (`fail_next`) apply here too.
"""

import hashlib
import hmac
import json
import re
from datetime import datetime, timedelta
from decimal import Decimal
from http import HTTPStatus
from urllib.parse import parse_qsl

from .catalogue import CENT, SandboxProduct
from .server import CHINA, CONFIRMED, INVALID, PAID, PROTOCOLS, SETTLED, OrderLine, SandboxError, parse_wire_time

PATH = "/routerjson"
MAX_WINDOW = timedelta(hours=1)  # order.row.query: "与endTime间隔不超过1小时"
MAX_ORDER_PAGE = 500  # order.row.query: "每页包含条数，上限为500"
MAX_GOODS_PAGE = 50
TIMESTAMP_TOLERANCE = timedelta(minutes=6)  # JOS: "京东API服务端允许客户端请求时间误差为6分钟"
VALID_CODE = {PAID: 16, CONFIRMED: 17, SETTLED: 18, INVALID: 3}
SUB_UNION_ID = re.compile(r"^[A-Za-z0-9_-]{1,80}$")
_MATERIAL = (
    re.compile(r"^(?:https?://)?item\.jd\.com/(\d+)\.html(?:[?#].*)?$"),
    re.compile(r"^(?:https?://)?item\.m\.jd\.com/product/(\d+)\.html(?:[?#].*)?$"),
    re.compile(r"^https?://[^/]+/item/(\d+)(?:[?#].*)?$"),  # the sandbox's own product page
)


class _GatewayError(Exception):
    def __init__(self, code: str, zh_desc: str, en_desc: str):
        super().__init__(en_desc)
        self.body = {"error_response": {"code": code, "zh_desc": zh_desc, "en_desc": en_desc}}


class _BusinessError(Exception):
    def __init__(self, message: str, code: int = 400):
        super().__init__(message)
        self.result = {"code": code, "message": message}


def sign(params: dict[str, str], secret: str) -> str:
    message = "".join(f"{name}{value}" for name, value in sorted(params.items()) if name != "sign" and value != "")
    return hashlib.md5(f"{secret}{message}{secret}".encode()).hexdigest().upper()  # noqa: S324 - JD's scheme


def handle(handler, query: dict[str, str], body: bytes) -> None:
    """PROTOCOLS["/routerjson"]: answer one gateway call (GET query, or POST form merged over the query)."""
    failure = handler._take_failure()
    if failure is not None:
        if failure.mode == "timeout":
            handler.network._stopping.wait(failure.hang_seconds)
            handler._json(HTTPStatus.GATEWAY_TIMEOUT, {"error": "gateway timeout"})
        else:
            handler._json(failure.status, {"error": "injected failure"})
        return
    params = dict(query)
    if body:
        params.update(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))
    try:
        method, business = _check(handler.state, params)
        endpoint, result_field = METHODS[method]
        try:
            result = endpoint(handler, business)
        except _BusinessError as error:
            result = error.result
        answer = {
            method.replace(".", "_") + "_responce": {
                "code": "0",
                result_field: json.dumps(result, ensure_ascii=False, default=_number),
            }
        }
    except _GatewayError as error:
        answer = error.body
    handler._json(HTTPStatus.OK, answer)


def _check(state, params: dict[str, str]) -> tuple[str, dict]:
    for name in ("method", "app_key", "timestamp", "v", "sign"):
        if not params.get(name):
            raise _GatewayError("11", f"缺少系统参数 {name}", f"Missing system parameter {name}")
    if not hmac.compare_digest(params["app_key"], state.app_key):
        raise _GatewayError("19", "无效的app_key", "Invalid app_key")
    if params.get("sign_method", "md5") != "md5":
        raise _GatewayError("11", "sign_method 只支持 md5", "sign_method must be md5")
    if not hmac.compare_digest(params["sign"].upper(), sign(params, state.app_secret)):
        raise _GatewayError("12", "无效签名", "Invalid signature")
    try:
        sent = parse_wire_time(params["timestamp"])
    except ValueError:
        raise _GatewayError("11", "timestamp 格式错误", "timestamp must be yyyy-MM-dd HH:mm:ss") from None
    # The wall clock, not the sandbox clock: tests move the sandbox clock, clients sign with real time.
    if abs(datetime.now(CHINA) - sent) > TIMESTAMP_TOLERANCE:
        raise _GatewayError("13", "时间戳超出允许范围", "timestamp is more than 6 minutes off")
    if params["method"] not in METHODS:
        raise _GatewayError("15", "不存在的方法名", "Invalid Method")
    try:
        business = json.loads(params.get("360buy_param_json") or "{}")
    except ValueError:
        raise _GatewayError("11", "360buy_param_json 不是合法的JSON", "360buy_param_json is not JSON") from None
    if not isinstance(business, dict):
        raise _GatewayError("11", "360buy_param_json 不是JSON对象", "360buy_param_json is not a JSON object")
    return params["method"], business


# --- the methods ---------------------------------------------------------------------------------------------


def _goods_query(handler, business: dict) -> dict:
    request = _object(business, "goodsReqDTO")
    page_index = _int(request, "pageIndex", 1, 1, 1000)
    page_size = _int(request, "pageSize", 20, 1, MAX_GOODS_PAGE)
    keyword = str(request.get("keyword") or "").strip().casefold()
    with handler.state.lock:
        products = [p for p in handler.state.products if keyword in p.title.casefold()]
    start = (page_index - 1) * page_size
    return {
        "code": 200,
        "message": "success",
        "totalCount": len(products),
        "data": [_goods(handler.network.url, p) for p in products[start : start + page_size]],
    }


def _goods(base_url: str, product: SandboxProduct) -> dict:
    share = (product.rate * 100).quantize(CENT)
    coupons = []
    if product.coupon:
        coupons.append(
            {
                "bindType": 3,
                "discount": product.coupon,
                "quota": product.price,
                "isBest": 1,
                "link": f"{base_url}/item/{product.item_id}?coupon=1",
            }
        )
    return {
        "skuId": int(product.item_id),
        "skuName": product.title,
        "materialUrl": f"item.jd.com/{product.item_id}.html",
        "imageInfo": {"imageList": [{"url": f"{base_url}/img/{product.item_id}.svg"}]},
        "priceInfo": {"price": product.price, "lowestCouponPrice": product.final_price},
        "commissionInfo": {
            "commissionShare": share,
            "commission": (product.final_price * product.rate).quantize(CENT),
        },
        "couponInfo": {"couponList": coupons},
        "shopInfo": {"shopName": product.shop_title, "shopId": int(product.item_id) % 1_000_000},
        "owner": "p",
    }


def _promotion_by_sub_union_id(handler, business: dict) -> dict:
    request = _object(business, "promotionCodeReq")
    material = str(request.get("materialId") or "").strip()
    if not material:
        raise _BusinessError("materialId不能为空")
    item_id = next((m.group(1) for pattern in _MATERIAL if (m := pattern.match(material))), None)
    if item_id is None:
        raise _BusinessError("materialId不是有效的推广物料链接")
    try:
        handler.state.product(item_id)
    except SandboxError:
        raise _BusinessError("推广物料不存在", 404) from None
    tracking = str(request.get("subUnionId") or "")
    if tracking and not SUB_UNION_ID.match(tracking):
        raise _BusinessError("subUnionId只支持字母、数字、下划线或中划线，最多80个字符")
    if not tracking:
        tracking = str(request.get("positionId") or "")
    if not tracking:
        raise _BusinessError("subUnionId或positionId至少传一个")  # the sandbox's own rule: a link must say whose
    chain_type = _int(request, "chainType", 2, 1, 3)
    link = f"{handler.network.url}/t/{handler.network._link_code(item_id, tracking)}"
    data = {}
    if chain_type in (1, 3):
        data["clickURL"] = link
    if chain_type in (2, 3):
        data["shortURL"] = link
    return {"code": 200, "message": "success", "data": data}


def _order_row_query(handler, business: dict) -> dict:
    request = _object(business, "orderReq")
    page_index = _int(request, "pageIndex", None, 1, 100_000)
    page_size = _int(request, "pageSize", None, 1, MAX_ORDER_PAGE)
    time_type = _int(request, "type", None, 1, 3)
    bounds = []
    for name in ("startTime", "endTime"):
        try:
            bounds.append(parse_wire_time(str(request.get(name) or "")))
        except ValueError:
            raise _BusinessError(f"{name}格式错误，应为yyyy-MM-dd HH:mm:ss") from None
    start, end = bounds
    if end <= start:
        raise _BusinessError("endTime必须晚于startTime")
    if end - start > MAX_WINDOW:
        raise _BusinessError("startTime与endTime间隔不能超过1小时")

    def moment(line: OrderLine) -> datetime | None:
        return {1: line.created_at, 2: line.confirmed_at, 3: line.modified_at}[time_type]

    with handler.state.lock:
        lines = sorted(
            (line for line in handler.state.lines.values() if moment(line) and start <= moment(line) < end),
            key=lambda line: (moment(line), line.trade_id),
        )
        offset = (page_index - 1) * page_size
        rows = [_row(line) for line in lines[offset : offset + page_size]]
    return {"code": 200, "message": "success", "hasMore": len(lines) > offset + page_size, "data": rows}


def _row(line: OrderLine) -> dict:
    """A sandbox line as an order.row.query row (JD's field names; money as JSON numbers)."""
    settled = line.status == SETTLED
    final_rate = Decimal("100.00")
    return {
        "id": line.trade_id,
        "orderId": int(line.trade_parent_id),
        "parentId": 0,
        "orderTime": _wire(line.created_at),
        "finishTime": _wire(line.confirmed_at),
        "modifyTime": _wire(line.modified_at),
        "orderEmt": 2,
        "plus": 0,
        "unionId": 0,
        "skuId": int(line.product.item_id),
        "skuName": line.product.title,
        "skuNum": line.quantity,
        "skuReturnNum": line.quantity if line.refund_tag else 0,
        "skuFrozenNum": 0,
        "price": line.product.final_price,
        "commissionRate": (line.product.rate * 100).quantize(CENT),
        "subSideRate": final_rate,
        "subsidyRate": Decimal("0.00"),
        "finalRate": final_rate,
        "estimateCosPrice": line.paid_amount,
        "estimateFee": line.estimate,
        "actualCosPrice": line.paid_amount if settled else Decimal("0.00"),
        "actualFee": line.actual if settled and line.actual is not None else Decimal("0.00"),
        "validCode": VALID_CODE[line.status],
        "traceType": 2,
        "positionId": 0,
        "siteId": 0,
        "unionAlias": "",
        "pid": "",
        "subUnionId": line.tracking_id,
        "unionTag": "0" * 32,
        "popId": 0,
        "ext1": "",
        "payMonth": int(line.earning_at.astimezone(CHINA).strftime("%Y%m%d")) if settled and line.earning_at else 0,
        "cpActId": 0,
        "unionRole": 1,
        "expressStatus": 20 if line.confirmed_at else 10,
    }


METHODS = {
    "jd.union.open.goods.query": (_goods_query, "queryResult"),
    "jd.union.open.promotion.bysubunionid.get": (_promotion_by_sub_union_id, "getResult"),
    "jd.union.open.order.row.query": (_order_row_query, "queryResult"),
}


# --- helpers -------------------------------------------------------------------------------------------------


def _object(business: dict, name: str) -> dict:
    value = business.get(name)
    if not isinstance(value, dict):
        raise _BusinessError(f"{name}不能为空")
    return value


def _int(request: dict, name: str, default: int | None, low: int, high: int) -> int:
    value = request.get(name)
    if value is None or value == "":
        if default is None:
            raise _BusinessError(f"{name}不能为空")
        return default
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise _BusinessError(f"{name}应为整数")
    try:
        number = int(value)
    except ValueError:
        raise _BusinessError(f"{name}应为整数") from None
    if not low <= number <= high:
        raise _BusinessError(f"{name}应在{low}到{high}之间")
    return number


def _wire(moment: datetime | None) -> str:
    return moment.astimezone(CHINA).strftime("%Y-%m-%d %H:%M:%S") if moment else ""


def _number(value):
    """Money and rates go out as JSON numbers, as JD sends them (json.dumps calls this for Decimals)."""
    if isinstance(value, Decimal):
        return float(value)
    raise TypeError(f"{type(value).__name__} is not JSON")


PROTOCOLS[PATH] = handle
