"""Reads of external networks' products (issue #12), for the owner's dashboard and the public shop page (the shops'
listings of them are `shops.selectors`; what a member earns on one is `commissions.selectors.external_earning`), and
of staff's report-file imports. No writes."""

import re
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from urllib.parse import urlsplit

from django.core.cache import cache
from django.db.models import Case, DecimalField, ExpressionWrapper, F, QuerySet, Value, When

from core.i18n import localized
from core.money import ROUND_DOWN, ZERO, quantize_money
from networks.models import ExternalProduct, Network, ReportImport

HOST_NAME = re.compile(r"[a-z0-9.-]+", re.IGNORECASE)  # IPv4 too; no IPv6 literals, no user info

# The sorts of the dashboard's product picker: key → ORDER BY.
EXTERNAL_SORTS = {
    "": ("network__name", "title", "pk"),  # the network by its name in the active language (issue #23)
    "earn": ("-commission_pool", "title", "pk"),  # what the network pays on one unit, after the coupon
    "price": ("final_price", "title", "pk"),  # lowest price after the coupon
    "coupon": ("-coupon", "title", "pk"),
    "new": ("-synced_at", "-pk"),
}


def enabled_networks() -> QuerySet[Network]:
    return Network.objects.filter(is_enabled=True).order_by(localized("name"), "pk")


def external_product_search(*, search: str = "", network_id: int | None = None, sort: str = "") -> QuerySet:
    """Active products of enabled networks whose title contains `search`, of `network_id` if given, sorted by one
    of EXTERNAL_SORTS (an unknown sort is the default). The network comes in the same query."""
    products = ExternalProduct.objects.filter(is_active=True, network__is_enabled=True).select_related("network")
    if search:
        products = products.filter(title__icontains=search)
    if network_id:
        products = products.filter(network_id=network_id)
    money = DecimalField(max_digits=14, decimal_places=2)
    after_coupon = Case(
        When(coupon__lt=F("price"), then=ExpressionWrapper(F("price") - F("coupon"), output_field=money)),
        default=Value(ZERO, output_field=money),
        output_field=money,
    )
    if sort == "price":
        products = products.annotate(final_price=after_coupon)
    elif sort == "earn":
        products = products.annotate(
            commission_pool=ExpressionWrapper(after_coupon * F("commission_rate"), output_field=DecimalField())
        )
    ordering = EXTERNAL_SORTS.get(sort, EXTERNAL_SORTS[""])
    return products.order_by(*(localized(key).asc() if key == "network__name" else key for key in ordering))


def external_commission_pool(product: ExternalProduct) -> Decimal:
    """What the network pays on one unit bought with its coupon: price after coupon × the network's rate, rounded
    down to the cent (an estimate: the network reports the real amount with the order)."""
    return quantize_money(product.price_after_coupon * product.commission_rate, ROUND_DOWN)


def image_origin(url: str) -> str | None:
    """scheme://host[:port] of an http(s) image URL with a plain host name, else None (then no image is shown):
    the origin goes into a Content-Security-Policy header, so nothing but a host name and a port may reach it."""
    try:
        parts = urlsplit(url or "")
        port = parts.port
    except ValueError:
        return None
    if parts.scheme not in ("http", "https") or not parts.hostname or not HOST_NAME.fullmatch(parts.hostname):
        return None
    return f"{parts.scheme}://{parts.hostname}" + (f":{port}" if port else "")


def image_origins(products: Iterable[ExternalProduct]) -> list[str]:
    """The origins of the products' images, for the page's img-src: networks serve their pictures from their own
    hosts (a CDN, or the sandbox on loopback), which the site-wide policy (img-src 'self') does not allow."""
    return sorted({origin for product in products if (origin := image_origin(product.image_url))})


# --- Report-file imports (staff) ---------------------------------------------------------------------------------


def report_import_progress_key(import_id: int) -> str:
    """Where a running import notes how many lines it has recorded: its transaction keeps them out of sight."""
    return f"networks:import:{import_id}:recorded"


@dataclass(frozen=True)
class ImportProgress:
    """How far an import is: waiting for a worker, reading the file (rows read), recording its lines (done of
    total), or finished (the lines imported, of those in the file)."""

    phase: str  # "waiting", "reading", "recording", "finished"
    done: int
    total: int | None

    @property
    def percent(self) -> int | None:
        return min(100, self.done * 100 // self.total) if self.total else None

    @property
    def is_finished(self) -> bool:
        return self.phase == "finished"


def report_import_progress(record: ReportImport) -> ImportProgress:
    Status = ReportImport.Status
    if record.status == Status.QUEUED:
        return ImportProgress("waiting", 0, None)
    if record.status == Status.RUNNING:
        noted = cache.get(report_import_progress_key(record.pk))
        if noted:
            return ImportProgress("recording", noted["done"], noted["total"])
        return ImportProgress("reading", record.rows_read, None)
    return ImportProgress("finished", record.rows_done, record.rows)
