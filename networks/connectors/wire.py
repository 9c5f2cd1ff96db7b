"""What the Chinese networks' APIs have in common on the wire: China time, and amounts of money.

淘宝开放平台 (and the sandbox, which speaks its format) and 京东联盟 write times as `YYYY-MM-DD HH:MM:SS` in China
time (UTC+8) and money in yuan. Every connector reads them here, so they all refuse the same things
(docs/networks-formats.md): an amount that is not a number, is negative, or (where the network sends exact cents)
has more than 2 decimals is a ValueError, which a connector turns into a ConnectorError. No network documents a
negative amount: a refund makes the line invalid (commission 0.00), it never reports money below zero, and our
ledger (and the database's checks) would not take one.
"""

from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal, InvalidOperation

CHINA = timezone(timedelta(hours=8), "CST")
WIRE_TIME = "%Y-%m-%d %H:%M:%S"
CENT = Decimal("0.01")


def wire_time(moment: datetime) -> str:
    """An aware moment as the networks write it: China time, to the second."""
    return moment.astimezone(CHINA).strftime(WIRE_TIME)


def parse_wire_time(text) -> datetime | None:
    """A network's China-time timestamp as an aware datetime in UTC; None for an empty one."""
    if not text:
        return None
    return datetime.strptime(str(text), WIRE_TIME).replace(tzinfo=CHINA).astimezone(UTC)


def parse_decimal(value) -> Decimal:
    """A number as the network sent it (text or a JSON number), exactly; ValueError if it is not a finite number."""
    try:
        amount = Decimal(str(value))
    except InvalidOperation:
        raise ValueError(f"not a number: {value!r}") from None
    if not amount.is_finite():
        raise ValueError(f"not a number: {value!r}")
    return amount


def parse_money(value, *, rounding: str | None = None) -> Decimal:
    """An amount of money with two places. ValueError if it is negative, and, unless `rounding` is given (for a
    network that sends floating-point JSON numbers), if it has more than 2 decimals."""
    amount = parse_decimal(value)
    if rounding is not None:
        amount = amount.quantize(CENT, rounding=rounding)
    elif amount != amount.quantize(CENT):
        raise ValueError(f"more than 2 decimals: {value!r}")
    if amount < 0:
        raise ValueError(f"negative amount: {value!r}")
    return amount.quantize(CENT) + 0  # + 0: "-0.00" comes back as 0.00
