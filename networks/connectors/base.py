"""What every network connector offers, and the shapes it answers in.

A connector speaks one network's API and translates it into these types; nothing outside `networks/connectors`
knows a network's field names or status codes. Money is Decimal, rates are fractions (0.2 = 20 %), times are
aware datetimes.
"""

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal


class ConnectorError(Exception):
    """The network could not be reached or answered with an error; the sync retries later."""


class OrderStatus:
    """Our lifecycle for a reported order line; connectors map the network's codes onto it."""

    PAID = "paid"  # the buyer paid; commission estimated (→ pending in the ledger)
    CONFIRMED = "confirmed"  # the buyer confirmed receipt; still estimated
    SETTLED = "settled"  # the network settled: the commission is actual (→ releasable after the hold)
    INVALID = "invalid"  # cancelled, refunded or judged invalid by the network (→ reversal or clawback)

    ALL = (PAID, CONFIRMED, SETTLED, INVALID)


@dataclass(frozen=True)
class NetworkProduct:
    external_id: str
    title: str
    image_url: str
    price: Decimal  # list price
    coupon: Decimal  # coupon value off the price (0 if none)
    commission_rate: Decimal  # the network's rate for us, a fraction of the paid amount
    shop_name: str = ""
    url: str = ""  # the product's page on the network (no tracking)


@dataclass(frozen=True)
class ReportedOrder:
    """One line of a network's order report, as the network says it is now."""

    external_order_id: str
    line_id: str  # the network's sub-order / line id ("" → the order has one line; stored as "1")
    tracking_id: str  # the sub-id / position id our link carried: whose sale it is
    product_id: str
    title: str
    quantity: int
    paid_amount: Decimal  # what the buyer paid for the line
    commission: Decimal  # estimated while not settled, actual once settled
    status: str  # one of OrderStatus
    paid_at: datetime
    updated_at: datetime  # the network's last change to the line (report windows are on this)
    settled_at: datetime | None = None
    raw: dict = field(default_factory=dict, compare=False)  # the network's own fields, for staff


@dataclass(frozen=True)
class ReportPage:
    orders: list[ReportedOrder]
    next_page: str | None  # opaque token for the next page of the same window, None at the end


class Connector(ABC):
    code: str  # "sandbox", "taobao", "jd", …
    name: str  # for people: "淘宝联盟"
    # True when a member's tracking id must be created in the network's own console (淘宝联盟's 推广位) and entered
    # by staff; False when we may make one up (a free-form sub-id such as 京东联盟's subUnionId).
    tracking_ids_assigned_by_staff: bool = False
    # The longest [start, end) that fetch_orders accepts (None: no limit); the sync splits longer spans.
    max_window: timedelta | None = None

    @abstractmethod
    def search_products(self, query: str = "", page: int = 1) -> list[NetworkProduct]:
        """Products to promote (the network's feed or search), with price, coupon and commission rate."""

    @abstractmethod
    def tracking_link(self, product_external_id: str, tracking_id: str) -> str:
        """The network's tracking URL for a product, carrying our tracking id (its sub-id / position id)."""

    @abstractmethod
    def fetch_orders(self, start: datetime, end: datetime, page: str | None = None) -> ReportPage:
        """Order lines the network changed in [start, end), one page; raises ConnectorError when unreachable."""
