"""`JdConnector`: 京东联盟 (JD Union) through JD's open-platform gateway (宙斯 / JOS `routerjson`).

Every call is one HTTPS POST (form-encoded) to the gateway, https://api.jd.com/routerjson, with the system
parameters `method`, `app_key`, `timestamp` ("YYYY-MM-DD HH:MM:SS", China time), `format=json`, `v=1.0`,
`sign_method=md5`, the business parameters as one JSON string in `360buy_param_json`, and `sign`: the upper-case
hex MD5 of secret + every other parameter sorted by name and concatenated as name + value + secret. A gateway error
is `{"error_response": {"code", "zh_desc", "en_desc"}}`; a success is wrapped as
`{"<method with _ for .>_responce": {"code": "0", "queryResult" | "getResult": "<JSON text>"}}` (JD's spelling),
and the JSON text inside carries the business answer, `{"code": 200, "message", "data", …}`.

Three methods (docs/networks-formats.md, "京东联盟 API connector", has the sources and what is unverified):

- search_products  ← jd.union.open.goods.query (goodsReqDTO: keyword, pageIndex, pageSize, sceneId 1)
- tracking_link    ← jd.union.open.promotion.bysubunionid.get (promotionCodeReq: materialId = the product's
  item.jd.com URL, subUnionId = our tracking id, chainType 1 = the long link, which does not expire)
- fetch_orders     ← jd.union.open.order.row.query (orderReq: type 3 = by update time, startTime/endTime at most
  1 hour apart, pageIndex/pageSize, `hasMore`)

Our tracking id travels as `subUnionId` (free-form: letters, digits, `_`, `-`, at most 80), not as a positionId
(numeric, each one created beforehand through jd.union.open.position.create). An order line without a subUnionId
falls back to its positionId, which is what the report-file import (networks/imports.py) attributes by.
"""

import hashlib
import json
import re
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from http.client import HTTPException
from urllib.error import HTTPError
from urllib.parse import urlencode, urlsplit
from urllib.request import Request, urlopen

from .base import Connector, ConnectorError, NetworkProduct, OrderStatus, ReportedOrder, ReportPage
from .wire import CHINA, WIRE_TIME, parse_decimal, parse_money, parse_wire_time, wire_time

GATEWAY_PATH = "/routerjson"

# validCode beyond the ones networks.imports knows (JD_CODES, JD_INVALID_CODES), from the later order.row.query
# documentation: 23 无效-支付有礼, 25–28 违规订单 (traffic hijacking, abnormal traffic, platform rules, abnormal
# transactions) are invalid; 24 已付定金 (only a presale deposit paid) is not a sale yet, like 15 待付款: left out
# until it comes back as 16. Anything else (-1 未知, a new code) is refused: an unknown code must not move money.
LATER_INVALID_CODES = frozenset([23, 25, 26, 27, 28])
DEPOSIT_ONLY = 24

SUB_UNION_ID = re.compile(r"^[A-Za-z0-9_-]{1,80}$")


class JdConnector(Connector):
    code = "jd"
    name = "京东联盟"
    max_window = timedelta(hours=1)  # order.row.query: "startTime … 与endTime间隔不超过1小时"
    page_size = 200  # order lines per call; the documented maximum is 500 ("每页包含条数，上限为500")
    search_page_size = 20  # goods.query's default page size
    chain_type = 1  # 1 long link; the default short link (2) "有效期60天" would break a listing's stored link

    def __init__(self, *, base_url: str, app_key: str, app_secret: str, timeout: float = 10.0):
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError(f"the JD gateway URL must be http(s)://host[/routerjson], not {base_url!r}")
        url = base_url.rstrip("/")
        if parts.path in ("", "/"):
            url += GATEWAY_PATH  # NETWORK_JD_URL may name the host only (the sandbox's URL does)
        self.gateway = url
        self.app_key = app_key
        self.app_secret = app_secret
        self.timeout = timeout

    # --- Connector ---------------------------------------------------------------------------------------------

    def search_products(self, query: str = "", page: int = 1) -> list[NetworkProduct]:
        request = {"pageIndex": page, "pageSize": self.search_page_size, "sceneId": 1}
        if query.strip():
            request["keyword"] = query.strip()
        result = self._call("jd.union.open.goods.query", {"goodsReqDTO": request}, "queryResult")
        try:
            return [_product(item) for item in result.get("data") or []]
        except (KeyError, TypeError, ValueError, InvalidOperation) as error:
            raise ConnectorError(f"jd: unexpected goods answer: {error!r}") from error

    def tracking_link(self, product_external_id: str, tracking_id: str) -> str:
        if not SUB_UNION_ID.match(str(tracking_id)):
            raise ConnectorError(f"jd: {tracking_id!r} cannot be a subUnionId (letters, digits, _ and -, at most 80)")
        request = {
            "materialId": product_url(product_external_id),
            "subUnionId": str(tracking_id),
            "chainType": self.chain_type,
        }
        result = self._call("jd.union.open.promotion.bysubunionid.get", {"promotionCodeReq": request}, "getResult")
        try:
            data = result["data"]
            url = data.get("clickURL") or data.get("shortURL")
        except (KeyError, TypeError, AttributeError) as error:
            raise ConnectorError(f"jd: unexpected link answer: {error!r}") from error
        if not url:
            raise ConnectorError("jd: the link answer has no clickURL")
        return str(url)

    def fetch_orders(self, start: datetime, end: datetime, page: str | None = None) -> ReportPage:
        """Lines whose modifyTime is in the window (type 3), one page; `page` is the next pageIndex. Both bounds are
        floored to the second on the wire, as JD's clock has whole seconds. Windows over an hour are refused by JD.

        pageIndex paging is an offset: a line changed while we page can shift the rest by one. It is not lost: its
        new modifyTime is later than this window, so a later window reads it."""
        if start.tzinfo is None or end.tzinfo is None:
            raise ValueError("start and end must be timezone-aware")
        try:
            index = int(page) if page else 1
        except ValueError:
            raise ValueError(f"not a page of this connector: {page!r}") from None
        request = {
            "pageIndex": index,
            "pageSize": self.page_size,
            "type": 3,
            "startTime": wire_time(start),
            "endTime": wire_time(end),
        }
        result = self._call("jd.union.open.order.row.query", {"orderReq": request}, "queryResult")
        today = datetime.now(CHINA).date()
        try:
            rows = result.get("data") or []
            orders = [order for order in (reported_order(row, today=today) for row in rows) if order is not None]
            has_more = bool(result.get("hasMore"))
        except (KeyError, TypeError, ValueError, InvalidOperation, AttributeError) as error:
            raise ConnectorError(f"jd: unexpected order report: {error!r}") from error
        return ReportPage(orders=orders, next_page=str(index + 1) if has_more and rows else None)

    # --- the wire ----------------------------------------------------------------------------------------------

    def _call(self, method: str, business: dict, result_field: str) -> dict:
        params = {
            "method": method,
            "app_key": self.app_key,
            "timestamp": datetime.now(CHINA).strftime(WIRE_TIME),
            "format": "json",
            "v": "1.0",
            "sign_method": "md5",
            "360buy_param_json": json.dumps(business, ensure_ascii=False, separators=(",", ":")),
        }
        params["sign"] = sign(params, self.app_secret)
        data = urlencode(params).encode()
        # The scheme is checked in __init__ (http/https only), so no file:// or custom scheme reaches urlopen.
        request = Request(  # noqa: S310
            self.gateway,
            data=data,
            headers={
                "Content-Type": "application/x-www-form-urlencoded;charset=UTF-8",
                "Accept": "application/json",
                "User-Agent": "cps-storefront/networks",
            },
        )
        try:
            with urlopen(request, timeout=self.timeout) as response:  # noqa: S310 - same URL, checked scheme
                raw = response.read()
        except HTTPError as error:
            raise ConnectorError(f"jd: HTTP {error.code} from {method}") from error
        except (OSError, HTTPException) as error:  # URLError, timeouts, resets are OSErrors
            raise ConnectorError(f"jd: {method} unreachable: {error}") from error
        try:
            body = json.loads(raw, parse_float=Decimal)
        except ValueError as error:
            raise ConnectorError(f"jd: {method} answered something other than JSON") from error
        if not isinstance(body, dict):
            raise ConnectorError(f"jd: {method} answered an unexpected body")
        if "error_response" in body:
            error = body["error_response"] if isinstance(body["error_response"], dict) else {}
            raise ConnectorError(
                f"jd: {method} refused by the gateway: {error.get('code')} {error.get('zh_desc') or ''} "
                f"({error.get('en_desc') or ''})"
            )
        key = method.replace(".", "_")
        wrapper = body.get(f"{key}_responce", body.get(f"{key}_response"))  # JD spells it "responce"
        if not isinstance(wrapper, dict):
            raise ConnectorError(f"jd: {method} answered without {key}_responce")
        if str(wrapper.get("code")) != "0":
            raise ConnectorError(f"jd: {method} answered code {wrapper.get('code')!r}")
        result = wrapper.get(result_field)
        if isinstance(result, str):  # the business answer is JSON text inside the JSON
            try:
                result = json.loads(result, parse_float=Decimal)
            except ValueError as error:
                raise ConnectorError(f"jd: {method}: {result_field} is not JSON") from error
        if not isinstance(result, dict):
            raise ConnectorError(f"jd: {method} answered without {result_field}")
        if str(result.get("code")) != "200":
            raise ConnectorError(f"jd: {method} refused: {result.get('code')} {result.get('message') or ''}")
        return result


def sign(params: dict[str, str], secret: str) -> str:
    """JD's md5 signature: upper-case hex MD5 of secret + name + value of every parameter but `sign` (and but empty
    ones), sorted by name + secret."""
    message = "".join(f"{name}{value}" for name, value in sorted(params.items()) if name != "sign" and value != "")
    return hashlib.md5(f"{secret}{message}{secret}".encode()).hexdigest().upper()  # noqa: S324 - JD's scheme


def product_url(sku_id: str) -> str:
    """The product's page on JD, the `materialId` JD converts (it does not take a bare skuId)."""
    if not str(sku_id).isdigit():
        raise ConnectorError(f"jd: {sku_id!r} is not a JD sku id")
    return f"https://item.jd.com/{sku_id}.html"


def reported_order(row: dict, *, today: date) -> ReportedOrder | None:
    """One order.row.query row as a ReportedOrder; None for a row that is not a sale yet (15 待付款, 24 已付定金).

    `today` (China) decides whether a 17 row is settled: JD stopped writing 18 in 2019 and documents a payMonth
    in the past as settled. Raises ValueError for an unknown validCode or a row without its times."""
    # The file import's mapping, shared; imported here because networks.imports imports this package's base.
    from networks.imports import JD_CODES, JD_INVALID_CODES, JD_UNPAID

    code = int(row["validCode"])
    if code in JD_CODES:
        status = JD_CODES[code]
    elif code in JD_INVALID_CODES or code in LATER_INVALID_CODES:
        status = OrderStatus.INVALID
    elif code == DEPOSIT_ONLY:
        status = JD_UNPAID
    else:
        raise ValueError(f"unknown validCode {code} on row {row.get('id')!r}")
    if status == JD_UNPAID:
        return None
    pay_date = _pay_month(row.get("payMonth"))
    if status == OrderStatus.CONFIRMED and pay_date is not None and pay_date <= today:
        status = OrderStatus.SETTLED
    updated_at = parse_wire_time(row.get("modifyTime"))
    paid_at = parse_wire_time(row.get("orderTime"))
    if paid_at is None or updated_at is None:
        raise ValueError(f"row {row.get('id')!r} without orderTime or modifyTime")
    settled_at = None
    if status == OrderStatus.SETTLED:
        commission = _money(row["actualFee"])
        paid_amount = _money(row["actualCosPrice"])
        settled_at = _china_midnight(pay_date) if pay_date else updated_at
    elif status == OrderStatus.INVALID:
        commission = Decimal("0.00")  # JD pays nothing for an invalid line, whatever it estimated
        paid_amount = _money(row.get("estimateCosPrice") or 0)
    else:
        commission = _money(row["estimateFee"])
        paid_amount = _money(row["estimateCosPrice"])
    tracking_id = str(row.get("subUnionId") or "")
    if not tracking_id and str(row.get("positionId") or "0") != "0":
        tracking_id = str(row["positionId"])
    return ReportedOrder(
        external_order_id=str(row["orderId"]),
        line_id=str(row["skuId"]),  # a JD row is order + SKU (as in the report-file import)
        tracking_id=tracking_id,
        product_id=str(row["skuId"]),
        title=str(row.get("skuName") or ""),
        quantity=int(row.get("skuNum") or 1),
        paid_amount=paid_amount,
        commission=commission,
        status=status,
        paid_at=paid_at,
        updated_at=updated_at,
        settled_at=settled_at,
        raw=_plain(row),
    )


def _product(item: dict) -> NetworkProduct:
    price = _money(item["priceInfo"]["price"])
    coupon = Decimal("0.00")
    coupons = ((item.get("couponInfo") or {}).get("couponList")) or []
    usable = [
        c for c in coupons if parse_decimal(c.get("quota") or 0) <= price and parse_decimal(c.get("discount") or 0) > 0
    ]
    if usable:
        best = [c for c in usable if str(c.get("isBest")) == "1"] or usable
        coupon = min(max(_money(c["discount"]) for c in best), price)
    images = ((item.get("imageInfo") or {}).get("imageList")) or []
    url = str(item.get("materialUrl") or "")
    if url and "://" not in url:
        url = f"https://{url}"  # JD sends "item.jd.com/<sku>.html"
    return NetworkProduct(
        external_id=str(item["skuId"]),
        title=str(item["skuName"]),
        image_url=str(images[0]["url"]) if images else "",
        price=price,
        coupon=coupon,
        commission_rate=parse_decimal(item["commissionInfo"]["commissionShare"]) / 100,  # a percentage on the wire
        shop_name=str((item.get("shopInfo") or {}).get("shopName") or ""),
        url=url,
    )


def _pay_month(value) -> date | None:
    text = str(value or "0").strip()
    if text == "0":
        return None  # "订单完成后才会返回 … 默认：0"
    return datetime.strptime(text, "%Y%m%d").date()


def _china_midnight(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=CHINA).astimezone(UTC)


def _money(value) -> Decimal:
    """JD sends money as JSON numbers: rounded to the cent (half up); never negative."""
    return parse_money(value, rounding=ROUND_HALF_UP)


def _plain(value):
    """The row for `raw` (stored as JSON): Decimals back to strings."""
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_plain(item) for item in value]
    if isinstance(value, Decimal):
        return str(value)
    return value
