"""The couriers an order can be shipped with, and what a waybill number may look like.

A small table, not a model: the list changes with a release, and a courier's code is stored on the order
(`Order.courier`), so a courier taken out of the table still shows its code. A known courier gives the buyer a
tracking link; "other" (a courier not in the table, or delivery by hand with a reference) gives none.

Tracking links go to Kuaidi100 (快递100), the tracking page every Chinese courier is searchable on, with the
courier's Kuaidi100 code: one URL shape for all of them, and no courier's own site (whose addresses change, and
several of which want a captcha or the phone's last digits) to keep up with. SF Express asks there for the last four
digits of the receiver's phone before it shows the route; the page says so itself.
"""

import re
from dataclasses import dataclass
from urllib.parse import quote

from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _

OTHER = "other"
TRACKING_URL = "https://www.kuaidi100.com/chaxun?com={company}&nu={number}"

# A waybill number, as stored: capital letters and digits (a hyphen inside for a parcel of a multi-parcel
# shipment), 6 to 32 characters. What people paste ("sf 1234 5678 9012") is tidied first (`waybill_normalise`).
WAYBILL_MAX_LENGTH = 32
WAYBILL_SHAPE = re.compile(r"[A-Z0-9][A-Z0-9-]{4,30}[A-Z0-9]")


@dataclass(frozen=True)
class Courier:
    code: str
    name: str | Promise
    tracking_company: str = ""  # the courier's code at Kuaidi100; "" for no tracking link

    def tracking_url(self, waybill: str) -> str:
        if not self.tracking_company or not waybill:
            return ""
        return TRACKING_URL.format(company=self.tracking_company, number=quote(waybill, safe=""))


COURIERS: dict[str, Courier] = {
    courier.code: courier
    for courier in (
        Courier("sf", _("SF Express"), "shunfeng"),
        Courier("jd", _("JD Logistics"), "jd"),
        Courier("zto", _("ZTO Express"), "zhongtong"),
        Courier("yto", _("YTO Express"), "yuantong"),
        Courier("sto", _("STO Express"), "shentong"),
        Courier("yd", _("Yunda Express"), "yunda"),
        Courier("ems", _("China Post EMS"), "ems"),
        Courier(OTHER, _("Other courier")),
    )
}
COURIER_CHOICES = [(courier.code, courier.name) for courier in COURIERS.values()]


def courier_for(code: str) -> Courier | None:
    """The courier of a stored code; a code no longer in the table is shown as itself, without a tracking link."""
    if not code:
        return None
    return COURIERS.get(code) or Courier(code, code)


def waybill_normalise(typed: str | None) -> str:
    """What people type or paste, in the stored form: spaces gone, letters in capitals ("sf 1234" → "SF1234")."""
    return re.sub(r"\s+", "", typed or "").upper()


def waybill_is_valid(waybill: str) -> bool:
    """A normalised waybill number of the stored shape."""
    return bool(WAYBILL_SHAPE.fullmatch(waybill))
