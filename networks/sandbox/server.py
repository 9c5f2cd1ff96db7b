"""The built-in `sandbox` affiliate network: an HTTP server on loopback that behaves like 淘宝联盟 / 京东联盟.

It is the network's side of the wire, written only against the HTTP API documented in docs/networks-formats.md;
the client is `networks.connectors.sandbox.SandboxConnector`. Standard library only; all state is in memory,
guarded by one lock, and lost when the server stops.

Signed API (`/api/…`, GET): every call carries `app_key`, `timestamp` ("YYYY-MM-DD HH:MM:SS", China time,
within 10 minutes of the wall clock), `sign_method=hmac-sha256` and `sign`, the upper-case hex HMAC-SHA256 with
the app secret of the other parameters sorted by name and concatenated as name + value (淘宝开放平台's scheme).
Errors answer HTTP 200 with `{"error_response": {"code", "msg", "sub_code", "sub_msg"}}`, as the real APIs do.

Order lines carry 淘宝联盟's `tk_status` codes: 12 paid, 14 receipt confirmed, 3 settled, 13 invalid.

Unsigned pages for a browser (`/`, `/item/<id>`, `/t/<code>`, `/img/<id>.svg`) and control endpoints for tests and
the demo (`/control/…`, JSON) are served too; the control endpoints have no authentication, which is why the
server only listens on loopback (the management command refuses anything else).
"""

import base64
import binascii
import hashlib
import hmac
import json
import re
import secrets
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from decimal import ROUND_DOWN, Decimal, InvalidOperation
from html import escape
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from ipaddress import ip_address
from urllib.parse import parse_qsl, quote, urlencode, urlsplit

from .catalogue import CENT, SandboxProduct, build_catalogue, product_svg

CHINA = timezone(timedelta(hours=8), "CST")  # the networks' clock; no daylight saving since 1991
WIRE_TIME = "%Y-%m-%d %H:%M:%S"

DEFAULT_APP_KEY = "sandbox-app-key"
DEFAULT_APP_SECRET = "sandbox-app-secret"  # noqa: S105 - the sandbox's public default, documented; no real money
DEFAULT_MAX_WINDOW = timedelta(hours=3)  # 淘宝联盟 taobao.tbk.order.details.get: "不超过3个小时"
TIMESTAMP_TOLERANCE = timedelta(minutes=10)
MAX_PAGE_SIZE = 100

# tk_status, as 淘宝联盟 reports it
PAID, CONFIRMED, SETTLED, INVALID = 12, 14, 3, 13
STATUS_TEXT = {PAID: "已付款", CONFIRMED: "已收货", SETTLED: "已结算", INVALID: "已失效"}
_NEXT = {PAID: {CONFIRMED, INVALID}, CONFIRMED: {SETTLED, INVALID}, SETTLED: {INVALID}, INVALID: set()}

TRACKING_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


class SandboxError(ValueError):
    """A control call the sandbox refuses (unknown order, a move its state machine does not allow, bad input)."""


def wire_time(moment: datetime | None) -> str:
    return moment.astimezone(CHINA).strftime(WIRE_TIME) if moment else ""


def parse_wire_time(text: str) -> datetime:
    return datetime.strptime(text, WIRE_TIME).replace(tzinfo=CHINA)


def _to_second(moment: datetime) -> datetime:
    if moment.tzinfo is None:
        raise SandboxError("times must be timezone-aware")
    return moment.replace(microsecond=0)


def sign(params: dict[str, str], secret: str) -> str:
    message = "".join(f"{name}{value}" for name, value in sorted(params.items()) if name != "sign")
    return hmac.new(secret.encode(), message.encode(), hashlib.sha256).hexdigest().upper()


@dataclass
class OrderLine:
    trade_id: str
    trade_parent_id: str
    product: SandboxProduct
    tracking_id: str
    quantity: int
    paid_amount: Decimal
    estimate: Decimal
    status: int
    created_at: datetime
    paid_at: datetime
    modified_at: datetime
    actual: Decimal | None = None
    confirmed_at: datetime | None = None
    earning_at: datetime | None = None
    refund_tag: int = 0

    def report(self) -> dict:
        """The line as the order-report API answers it (淘宝联盟's field names; money as strings)."""
        return {
            "trade_parent_id": self.trade_parent_id,
            "trade_id": self.trade_id,
            "item_id": self.product.item_id,
            "item_title": self.product.title,
            "item_num": self.quantity,
            "item_price": str(self.product.final_price),
            "alipay_total_price": str(self.paid_amount),
            "seller_shop_title": self.product.shop_title,
            "tk_status": self.status,
            "tk_status_text": STATUS_TEXT[self.status],
            "total_commission_rate": str((self.product.rate * 100).quantize(CENT)),
            "pub_share_pre_fee": str(self.estimate),
            "pub_share_fee": "" if self.actual is None else str(self.actual),
            "tk_create_time": wire_time(self.created_at),
            "tk_paid_time": wire_time(self.paid_at),
            "tk_confirm_time": wire_time(self.confirmed_at),
            "tk_earning_time": wire_time(self.earning_at),
            "modified_time": wire_time(self.modified_at),
            "adzone_id": self.tracking_id,
            "refund_tag": self.refund_tag,
        }


@dataclass
class _Failures:
    count: int = 0
    mode: str = "error"  # "error": answer `status`; "timeout": hold the request `hang_seconds`, then answer 504
    status: int = 500
    hang_seconds: float = 5.0


@dataclass
class SandboxState:
    """Everything the network knows. Every read and write holds `lock`."""

    products: list[SandboxProduct]
    app_key: str
    app_secret: str
    max_window: timedelta
    lock: threading.RLock = field(default_factory=threading.RLock)
    lines: dict[str, OrderLine] = field(default_factory=dict)
    links: dict[str, tuple[str, str]] = field(default_factory=dict)  # code → (item id, tracking id)
    clicks: list[dict] = field(default_factory=list)
    clock: datetime | None = None  # None: the wall clock
    failures: _Failures = field(default_factory=_Failures)
    next_number: int = 1

    def product(self, item_id: str) -> SandboxProduct:
        for product in self.products:
            if product.item_id == item_id:
                return product
        raise SandboxError(f"unknown product {item_id!r}")


class SandboxNetwork:
    """The sandbox network, served from a background thread: `with SandboxNetwork() as network: network.url`.

    The methods below are the control surface for tests and the demo (the same as the `/control/…` endpoints).
    Every change stamps the line's `modified_time` with the sandbox clock (`set_clock`, `advance`), or with `at`.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        seed: int = 0,
        products: int = 60,
        app_key: str = DEFAULT_APP_KEY,
        app_secret: str = DEFAULT_APP_SECRET,
        max_window: timedelta = DEFAULT_MAX_WINDOW,
    ):
        self.state = SandboxState(
            products=build_catalogue(seed, products), app_key=app_key, app_secret=app_secret, max_window=max_window
        )
        self._stopping = threading.Event()
        self._server = _Server((host, port), _Handler, self)
        self._thread: threading.Thread | None = None

    # --- serving -----------------------------------------------------------------------------------------------

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    @property
    def app_key(self) -> str:
        return self.state.app_key

    @property
    def app_secret(self) -> str:
        return self.state.app_secret

    def start(self) -> "SandboxNetwork":
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, name="sandbox-network", daemon=True
        )
        self._thread.start()
        return self

    def serve_forever(self) -> None:
        self._server.serve_forever()

    def stop(self) -> None:
        self._stopping.set()  # releases requests held by an injected timeout
        self._server.shutdown()
        self._server.server_close()
        if self._thread:
            self._thread.join(timeout=5)

    def __enter__(self) -> "SandboxNetwork":
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.stop()

    # --- clock -------------------------------------------------------------------------------------------------

    def now(self) -> datetime:
        with self.state.lock:
            return self.state.clock or datetime.now(CHINA).replace(microsecond=0)

    def set_clock(self, moment: datetime | None) -> None:
        """Freeze the sandbox clock at `moment` (aware), or back to the wall clock with None."""
        with self.state.lock:
            self.state.clock = None if moment is None else _to_second(moment)

    def advance(self, delta: timedelta | float) -> datetime:
        """Move the (frozen) clock forward; freezes it at wall time first if it was running."""
        if not isinstance(delta, timedelta):
            delta = timedelta(seconds=delta)
        with self.state.lock:
            self.state.clock = self.now() + delta
            return self.state.clock

    # --- orders ------------------------------------------------------------------------------------------------

    def create_order(
        self,
        tracking_id: str,
        product_id: str,
        quantity: int = 1,
        *,
        parent_id: str | None = None,
        at: datetime | None = None,
    ) -> dict:
        """A buyer pays for `quantity` of a product through a link carrying `tracking_id`: a new line, status 12.

        With `parent_id`, the line joins an existing order (a cart of several products)."""
        if not TRACKING_ID.match(str(tracking_id)):
            raise SandboxError(f"bad tracking id {tracking_id!r}")
        if not isinstance(quantity, int) or isinstance(quantity, bool) or not 1 <= quantity <= 999:
            raise SandboxError(f"bad quantity {quantity!r}")
        with self.state.lock:
            product = self.state.product(str(product_id))
            moment = self._moment(at)
            number = self.state.next_number
            self.state.next_number += 1
            trade_id = str(2_000_000_000_000_000_000 + number)
            if parent_id is None:
                parent_id = str(1_000_000_000_000_000_000 + number)
            elif not any(line.trade_parent_id == parent_id for line in self.state.lines.values()):
                raise SandboxError(f"unknown order {parent_id!r}")
            paid_amount = product.final_price * quantity
            line = OrderLine(
                trade_id=trade_id,
                trade_parent_id=parent_id,
                product=product,
                tracking_id=str(tracking_id),
                quantity=quantity,
                paid_amount=paid_amount,
                estimate=(paid_amount * product.rate).quantize(CENT, rounding=ROUND_DOWN),
                status=PAID,
                created_at=moment,
                paid_at=moment,
                modified_at=moment,
            )
            self.state.lines[trade_id] = line
            return line.report()

    def confirm_receipt(self, trade_id: str, *, at: datetime | None = None) -> dict:
        """12 → 14: the buyer confirmed receipt; the commission is still an estimate."""
        return self._move(trade_id, CONFIRMED, at=at)

    def settle(self, trade_id: str, *, actual_commission: Decimal | str | None = None, at=None) -> dict:
        """14 → 3: the network settles; the actual commission is the estimate unless given (e.g. lower)."""
        with self.state.lock:
            line = self._line(trade_id)
            actual = line.estimate if actual_commission is None else _money(actual_commission)
            self._move(trade_id, SETTLED, at=at)
            line.actual = actual
            return line.report()

    def invalidate(self, trade_id: str, *, at: datetime | None = None) -> dict:
        """→ 13: the network judged the line invalid (cancelled, fraud, …), before or after settlement."""
        return self._move(trade_id, INVALID, at=at)

    def refund(self, trade_id: str, *, at: datetime | None = None) -> dict:
        """The buyer got their money back (维权退款): → 13 with refund_tag 1, at any stage."""
        with self.state.lock:
            self._move(trade_id, INVALID, at=at)
            line = self._line(trade_id)
            line.refund_tag = 1
            return line.report()

    def change_commission(self, trade_id: str, amount: Decimal | str, *, at: datetime | None = None) -> dict:
        """A late change: the actual commission of a settled line, or the estimate of a pending one."""
        with self.state.lock:
            line = self._line(trade_id)
            if line.status == INVALID:
                raise SandboxError(f"order line {trade_id} is invalid")
            if line.status == SETTLED:
                line.actual = _money(amount)
            else:
                line.estimate = _money(amount)
            line.modified_at = self._moment(at)
            return line.report()

    def touch(self, trade_id: str, at: datetime) -> dict:
        """Stamp a line's modified_time explicitly (nothing else changes), to place it in a report window."""
        with self.state.lock:
            line = self._line(trade_id)
            line.modified_at = _to_second(at)
            return line.report()

    def orders(self) -> list[dict]:
        with self.state.lock:
            return [line.report() for line in self.state.lines.values()]

    def order(self, trade_id: str) -> dict:
        with self.state.lock:
            return self._line(trade_id).report()

    def clicks(self) -> list[dict]:
        with self.state.lock:
            return [dict(click) for click in self.state.clicks]

    def fail_next(self, count: int, *, mode: str = "error", status: int = 500, hang_seconds: float = 5.0) -> None:
        """The next `count` signed API calls fail: HTTP `status` ("error"), or no answer for `hang_seconds`
        ("timeout", then 504), so a client's timeout and the sync's retry can be tested."""
        if mode not in ("error", "timeout"):
            raise SandboxError(f"unknown failure mode {mode!r}")
        with self.state.lock:
            self.state.failures = _Failures(count=count, mode=mode, status=status, hang_seconds=hang_seconds)

    def reset(self) -> None:
        """Forget orders, links, clicks, failures and the frozen clock (the catalogue stays)."""
        with self.state.lock:
            self.state.lines.clear()
            self.state.links.clear()
            self.state.clicks.clear()
            self.state.clock = None
            self.state.failures = _Failures()
            self.state.next_number = 1

    # --- helpers -----------------------------------------------------------------------------------------------

    def _moment(self, at: datetime | None) -> datetime:
        return self.now() if at is None else _to_second(at)

    def _line(self, trade_id: str) -> OrderLine:
        try:
            return self.state.lines[str(trade_id)]
        except KeyError:
            raise SandboxError(f"unknown order line {trade_id!r}") from None

    def _move(self, trade_id: str, status: int, *, at: datetime | None) -> dict:
        with self.state.lock:
            line = self._line(trade_id)
            if status not in _NEXT[line.status]:
                raise SandboxError(
                    f"order line {trade_id} is {line.status} ({STATUS_TEXT[line.status]}), cannot move to {status}"
                )
            moment = self._moment(at)
            line.status = status
            line.modified_at = moment
            if status == CONFIRMED:
                line.confirmed_at = moment
            elif status == SETTLED:
                line.earning_at = moment
            return line.report()

    def _link_code(self, item_id: str, tracking_id: str) -> str:
        with self.state.lock:
            for code, target in self.state.links.items():
                if target == (item_id, tracking_id):
                    return code
            code = secrets.token_urlsafe(9)
            self.state.links[code] = (item_id, tracking_id)
            return code


def _money(value) -> Decimal:
    try:
        amount = Decimal(str(value))
    except InvalidOperation:
        raise SandboxError(f"bad amount {value!r}") from None
    if not amount.is_finite() or amount < 0 or amount != amount.quantize(CENT):
        raise SandboxError(f"bad amount {value!r}")
    return amount.quantize(CENT)


# --- HTTP ------------------------------------------------------------------------------------------------------


# Other wire protocols the sandbox answers, by path: a real network's API gateway (e.g. 淘宝开放平台's /router/rest),
# so that a connector written for that network runs against the sandbox's state. Each module registers itself:
# PROTOCOLS["/router/rest"] = handle, where handle(handler, query, body) writes the whole response.
PROTOCOLS: dict[str, Callable] = {}


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address, handler, network: SandboxNetwork):
        self.network = network
        super().__init__(address, handler)

    def handle_error(self, request, client_address):
        # A client that gave up (its timeout, an injected hang) is not the server's error.
        if isinstance(sys.exc_info()[1], ConnectionError):
            return
        super().handle_error(request, client_address)


class _ApiError(Exception):
    def __init__(self, code: int, msg: str, sub_code: str, sub_msg: str):
        super().__init__(sub_msg)
        self.body = {"error_response": {"code": code, "msg": msg, "sub_code": sub_code, "sub_msg": sub_msg}}


def _missing(name: str) -> _ApiError:
    return _ApiError(40, "Missing required arguments", f"isv.missing-parameter:{name}", f"{name} is required")


def _invalid(name: str, why: str) -> _ApiError:
    return _ApiError(41, "Invalid arguments", f"isv.invalid-parameter:{name}", why)


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    server_version = "SandboxNetwork/1"
    protocol_version = "HTTP/1.1"

    def log_message(self, format, *args):
        pass  # quiet in tests; the management command prints its own lines

    @property
    def network(self) -> SandboxNetwork:
        return self.server.network

    @property
    def state(self) -> SandboxState:
        return self.server.network.state

    # --- dispatch ----------------------------------------------------------------------------------------------

    def do_GET(self):
        path, query = self._split()
        if path in PROTOCOLS:  # a real network's wire protocol, spoken by the sandbox (networks/sandbox/<network>.py)
            PROTOCOLS[path](self, query, b"")
            return
        api: dict[str, Callable[[dict], dict]] = {
            "/api/products": self._api_products,
            "/api/link": self._api_link,
            "/api/orders": self._api_orders,
        }
        try:
            if path in api:
                self._signed_api(api[path], query)
            elif path == "/":
                self._page_index(query)
            elif match := re.fullmatch(r"/t/([A-Za-z0-9_-]+)", path):
                self._click(match.group(1))
            elif match := re.fullmatch(r"/item/(\d+)", path):
                self._page_item(match.group(1), query)
            elif match := re.fullmatch(r"/img/(\d+)\.svg", path):
                self._image(match.group(1))
            elif match := re.fullmatch(r"/order/(\d+)", path):
                self._page_order(match.group(1))
            elif path == "/control/orders":
                self._json(HTTPStatus.OK, {"orders": self.network.orders()})
            elif path == "/control/clicks":
                self._json(HTTPStatus.OK, {"clicks": self.network.clicks()})
            else:
                self._json(HTTPStatus.NOT_FOUND, {"error": "not found"})
        except SandboxError as error:
            self._json(HTTPStatus.NOT_FOUND, {"error": str(error)})

    def do_POST(self):
        path, _query = self._split()
        if path in PROTOCOLS:
            PROTOCOLS[path](self, _query, self._body())
            return
        try:
            if match := re.fullmatch(r"/item/(\d+)/buy", path):
                self._buy(match.group(1), dict(parse_qsl(self._body().decode("utf-8", "replace"))))
            elif path.startswith("/control/"):
                self._control(path.removeprefix("/control/"))
            else:
                self._json(HTTPStatus.NOT_FOUND, {"error": "not found"})
        except (SandboxError, ValueError, TypeError) as error:  # SandboxError is a ValueError; bad JSON types too
            self._json(HTTPStatus.BAD_REQUEST, {"error": str(error)})

    # --- signed API --------------------------------------------------------------------------------------------

    def _signed_api(self, endpoint: Callable[[dict], dict], query: dict[str, str]) -> None:
        failure = self._take_failure()
        if failure is not None:
            if failure.mode == "timeout":
                self.network._stopping.wait(failure.hang_seconds)
                self._json(HTTPStatus.GATEWAY_TIMEOUT, {"error": "gateway timeout"})
            else:
                self._json(failure.status, {"error": "injected failure"})
            return
        try:
            self._check_signature(query)
            body = endpoint(query)
        except _ApiError as error:
            body = error.body
        self._json(HTTPStatus.OK, body)

    def _take_failure(self) -> _Failures | None:
        with self.state.lock:
            failures = self.state.failures
            if failures.count <= 0:
                return None
            failures.count -= 1
            return failures

    def _check_signature(self, query: dict[str, str]) -> None:
        for name in ("app_key", "timestamp", "sign_method", "sign"):
            if not query.get(name):
                raise _missing(name)
        if not hmac.compare_digest(query["app_key"], self.state.app_key):
            raise _ApiError(29, "Invalid app Key", "isv.appkey-not-exists", "unknown app_key")
        if query["sign_method"] != "hmac-sha256":
            raise _invalid("sign_method", "only hmac-sha256 is supported")
        if not hmac.compare_digest(query["sign"].upper(), sign(query, self.state.app_secret)):
            raise _ApiError(25, "Invalid signature", "isv.invalid-signature", "the signature does not match")
        try:
            sent = parse_wire_time(query["timestamp"])
        except ValueError:
            raise _invalid("timestamp", "expected YYYY-MM-DD HH:MM:SS, China time") from None
        # The wall clock, not the sandbox clock: tests move the sandbox clock, clients sign with real time.
        if abs(datetime.now(CHINA) - sent) > TIMESTAMP_TOLERANCE:
            raise _ApiError(43, "Invalid timestamp", "isv.invalid-timestamp", "timestamp is more than 10 min off")

    def _api_products(self, query: dict[str, str]) -> dict:
        page_no = _int_param(query, "page_no", 1, 1, 1000)
        page_size = _int_param(query, "page_size", 20, 1, MAX_PAGE_SIZE)
        words = query.get("q", "").strip().casefold()
        products = [p for p in self.state.products if words in p.title.casefold()]
        start = (page_no - 1) * page_size
        return {
            "products_response": {
                "total_results": len(products),
                "page_no": page_no,
                "page_size": page_size,
                "results": [self._product_json(p) for p in products[start : start + page_size]],
            }
        }

    def _product_json(self, product: SandboxProduct) -> dict:
        return {
            "item_id": product.item_id,
            "title": product.title,
            "pict_url": f"{self.network.url}/img/{product.item_id}.svg",
            "item_url": f"{self.network.url}/item/{product.item_id}",
            "reserve_price": str(product.price),
            "coupon_amount": str(product.coupon),
            "zk_final_price": str(product.final_price),
            "commission_rate": str((product.rate * 100).quantize(CENT)),  # percent, as the networks send it
            "shop_title": product.shop_title,
        }

    def _api_link(self, query: dict[str, str]) -> dict:
        item_id = query.get("item_id") or ""
        tracking_id = query.get("adzone_id") or ""
        if not item_id:
            raise _missing("item_id")
        if not tracking_id:
            raise _missing("adzone_id")
        if not TRACKING_ID.match(tracking_id):
            raise _invalid("adzone_id", "letters, digits, _ and -, at most 64")
        try:
            self.state.product(item_id)
        except SandboxError:
            raise _ApiError(15, "Remote service error", "isv.item-not-found", "no such item") from None
        code = self.network._link_code(item_id, tracking_id)
        return {"link_response": {"click_url": f"{self.network.url}/t/{code}", "item_id": item_id}}

    def _api_orders(self, query: dict[str, str]) -> dict:
        start, end = self._window(query)
        page_size = _int_param(query, "page_size", 20, 1, MAX_PAGE_SIZE)
        after = self._position(query.get("position_index", ""), start, end)
        with self.state.lock:
            lines = sorted(
                (line for line in self.state.lines.values() if start <= line.modified_at < end),
                key=lambda line: (line.modified_at, line.trade_id),
            )
            if after is not None:
                lines = [line for line in lines if (line.modified_at, line.trade_id) > after]
            page = lines[:page_size]
            results = [line.report() for line in page]
        has_next = len(lines) > page_size
        position = ""
        if has_next:
            last = page[-1]
            position = _encode_position(start, end, last.modified_at, last.trade_id)
        return {"orders_response": {"has_next": has_next, "position_index": position, "results": results}}

    def _window(self, query: dict[str, str]) -> tuple[datetime, datetime]:
        bounds = []
        for name in ("start_time", "end_time"):
            if not query.get(name):
                raise _missing(name)
            try:
                bounds.append(parse_wire_time(query[name]))
            except ValueError:
                raise _invalid(name, "expected YYYY-MM-DD HH:MM:SS, China time") from None
        start, end = bounds
        if end <= start:
            raise _invalid("end_time", "end_time must be after start_time")
        if end - start > self.state.max_window:
            minutes = int(self.state.max_window.total_seconds() // 60)
            raise _ApiError(
                41, "Invalid arguments", "isv.window-too-large", f"the time window is limited to {minutes} minutes"
            )
        return start, end

    def _position(self, token: str, start: datetime, end: datetime) -> tuple[datetime, str] | None:
        if not token:
            return None
        try:
            data = json.loads(base64.urlsafe_b64decode(token.encode() + b"==="))
            if data["s"] != wire_time(start) or data["e"] != wire_time(end):
                raise ValueError("another window")
            return parse_wire_time(data["m"]), str(data["t"])
        except (ValueError, KeyError, TypeError, binascii.Error):
            raise _invalid("position_index", "not a position of this window") from None

    # --- browser pages -----------------------------------------------------------------------------------------

    def _click(self, code: str) -> None:
        with self.state.lock:
            target = self.state.links.get(code)
            if target is None:
                raise SandboxError("unknown link")
            item_id, tracking_id = target
            self.state.clicks.append(
                {
                    "code": code,
                    "item_id": item_id,
                    "tracking_id": tracking_id,
                    "at": wire_time(self.network.now()),
                    "user_agent": self.headers.get("User-Agent", ""),
                }
            )
        self._redirect(f"/item/{item_id}?{urlencode({'tid': tracking_id})}")

    def _page_index(self, query: dict[str, str]) -> None:
        items = "".join(
            f'<li><a href="/item/{p.item_id}"><img src="/img/{p.item_id}.svg" width="80" alt=""> '
            f"{escape(p.title)}</a> ¥{p.final_price}</li>"
            for p in self.state.products
        )
        self._html(f"<h1>Sandbox network</h1><ul>{items}</ul>")

    def _page_item(self, item_id: str, query: dict[str, str]) -> None:
        product = self.state.product(item_id)
        tracking_id = query.get("tid", "")
        if tracking_id and not TRACKING_ID.match(tracking_id):
            tracking_id = ""
        coupon = f"<p>券 ¥{product.coupon}</p>" if product.coupon else ""
        via = f"<p>via tracking id <code>{escape(tracking_id)}</code></p>" if tracking_id else "<p>not via a link</p>"
        self._html(
            f"<h1>{escape(product.title)}</h1><p>{escape(product.shop_title)}</p>"
            f'<img src="/img/{product.item_id}.svg" width="240" alt="">'
            f"<p>¥{product.price}</p>{coupon}<p><strong>¥{product.final_price}</strong></p>{via}"
            f'<form method="post" action="/item/{product.item_id}/buy">'
            f'<input type="hidden" name="tid" value="{escape(tracking_id)}">'
            '<label>数量 <input type="number" name="quantity" value="1" min="1" max="99"></label> '
            '<button type="submit">立即购买 (pay)</button></form>'
        )

    def _buy(self, item_id: str, form: dict[str, str]) -> None:
        tracking_id = form.get("tid", "")
        if not tracking_id:
            self._html("<h1>No tracking id</h1><p>Open the product through a tracking link.</p>", HTTPStatus.OK)
            return
        try:
            quantity = int(form.get("quantity", "1"))
        except ValueError:
            raise SandboxError("bad quantity") from None
        line = self.network.create_order(tracking_id, item_id, quantity)
        self._redirect(f"/order/{line['trade_id']}", HTTPStatus.SEE_OTHER)

    def _page_order(self, trade_id: str) -> None:
        line = self.network.order(trade_id)
        rows = "".join(f"<tr><th>{escape(k)}</th><td>{escape(str(v))}</td></tr>" for k, v in line.items())
        self._html(f"<h1>Paid: order {escape(line['trade_parent_id'])}</h1><table>{rows}</table>")

    def _image(self, item_id: str) -> None:
        body = product_svg(self.state.product(item_id)).encode()
        self._send(HTTPStatus.OK, body, "image/svg+xml")

    # --- control -----------------------------------------------------------------------------------------------

    def _control(self, action: str) -> None:
        try:
            data = json.loads(self._body() or b"{}")
        except ValueError:
            raise SandboxError("the body must be JSON") from None
        if not isinstance(data, dict):
            raise SandboxError("the body must be a JSON object")
        at = _parse_at(data.get("at"))
        network = self.network
        if action == "orders":
            result = network.create_order(
                str(data.get("tracking_id", "")),
                str(data.get("product_id", "")),
                data.get("quantity", 1),
                parent_id=data.get("parent_id"),
                at=at,
            )
        elif match := re.fullmatch(r"orders/(\d+)/(confirm|settle|invalidate|refund|commission|touch)", action):
            trade_id, verb = match.groups()
            if verb == "confirm":
                result = network.confirm_receipt(trade_id, at=at)
            elif verb == "settle":
                result = network.settle(trade_id, actual_commission=data.get("actual_commission"), at=at)
            elif verb == "invalidate":
                result = network.invalidate(trade_id, at=at)
            elif verb == "refund":
                result = network.refund(trade_id, at=at)
            elif verb == "commission":
                result = network.change_commission(trade_id, data.get("amount", ""), at=at)
            else:
                if at is None:
                    raise SandboxError("touch needs at")
                result = network.touch(trade_id, at)
        elif action == "clock":
            if "advance_seconds" in data:
                network.advance(float(data["advance_seconds"]))
            else:
                network.set_clock(_parse_at(data.get("now")))
            result = {"now": network.now().isoformat()}
        elif action == "failures":
            network.fail_next(
                int(data.get("count", 1)),
                mode=str(data.get("mode", "error")),
                status=int(data.get("status", 500)),
                hang_seconds=float(data.get("hang_seconds", 5.0)),
            )
            result = {"ok": True}
        elif action == "reset":
            network.reset()
            result = {"ok": True}
        else:
            self._json(HTTPStatus.NOT_FOUND, {"error": "not found"})
            return
        self._json(HTTPStatus.OK, result)

    # --- plumbing ----------------------------------------------------------------------------------------------

    def _split(self) -> tuple[str, dict[str, str]]:
        parts = urlsplit(self.path)
        return parts.path, dict(parse_qsl(parts.query, keep_blank_values=True))

    def _body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        if length > 1_000_000:
            raise SandboxError("body too large")
        return self.rfile.read(length) if length else b""

    def _json(self, status: int, body: dict) -> None:
        self._send(status, json.dumps(body, ensure_ascii=False).encode(), "application/json; charset=utf-8")

    def _html(self, body: str, status: int = HTTPStatus.OK) -> None:
        page = f'<!doctype html><html lang="zh"><meta charset="utf-8"><title>Sandbox network</title>{body}</html>'
        self._send(status, page.encode(), "text/html; charset=utf-8")

    def _redirect(self, location: str, status: int = HTTPStatus.FOUND) -> None:
        self.send_response(status)
        self.send_header("Location", quote(location, safe="/?=&:%"))
        self.send_header("Content-Length", "0")
        self.end_headers()

    def _send(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(body)


def _int_param(query: dict[str, str], name: str, default: int, low: int, high: int) -> int:
    text = query.get(name, "")
    if not text:
        return default
    try:
        value = int(text)
    except ValueError:
        raise _invalid(name, "expected an integer") from None
    if not low <= value <= high:
        raise _invalid(name, f"expected {low} to {high}")
    return value


def _encode_position(start: datetime, end: datetime, modified: datetime, trade_id: str) -> str:
    data = {"s": wire_time(start), "e": wire_time(end), "m": wire_time(modified), "t": trade_id}
    return base64.urlsafe_b64encode(json.dumps(data, separators=(",", ":")).encode()).decode().rstrip("=")


def _parse_at(value) -> datetime | None:
    if value in (None, ""):
        return None
    try:
        moment = datetime.fromisoformat(str(value))
    except ValueError:
        raise SandboxError(f"bad time {value!r}: ISO 8601 with an offset") from None
    if moment.tzinfo is None:
        raise SandboxError(f"bad time {value!r}: ISO 8601 with an offset")
    return moment


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ip_address(host).is_loopback
    except ValueError:
        return False
