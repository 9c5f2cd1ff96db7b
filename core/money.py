"""Money and rates: one field definition each and one rounding helper (SPEC §3).

Every amount is a Decimal with two places in the deployment's single currency;
every rate a Decimal fraction with four places, 0 <= rate <= 1. Nothing here
ever touches float.
"""

from decimal import ROUND_DOWN, ROUND_HALF_UP, Decimal

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils.formats import number_format

MONEY_MAX_DIGITS = 14
MONEY_DECIMAL_PLACES = 2
RATE_MAX_DIGITS = 5
RATE_DECIMAL_PLACES = 4

CENT = Decimal("0.01")
ZERO = Decimal("0.00")
RATE_ZERO = Decimal("0.0000")
RATE_ONE = Decimal("1.0000")

__all__ = ["CENT", "ROUND_DOWN", "ROUND_HALF_UP", "ZERO", "MoneyField", "RateField", "money_sum", "quantize_money"]


def quantize_money(amount: Decimal, rounding: str = ROUND_DOWN) -> Decimal:
    """Round to the cent. Member shares round down (the default); a pool rounds half-up (四舍五入)."""
    if not isinstance(amount, Decimal):
        raise TypeError(f"money must be a Decimal, not {type(amount).__name__}")
    return amount.quantize(CENT, rounding=rounding)


def money_sum(value) -> Decimal:
    """A database sum of money as cents: 0.00 for no rows (None), and the scale SQLite's sums lose restored."""
    return quantize_money(Decimal(value or 0), ROUND_HALF_UP) + ZERO  # + ZERO: never "-0.00"


class MoneyField(models.DecimalField):
    def __init__(self, *args, **kwargs):
        kwargs.setdefault("max_digits", MONEY_MAX_DIGITS)
        kwargs.setdefault("decimal_places", MONEY_DECIMAL_PLACES)
        super().__init__(*args, **kwargs)


class RateField(models.DecimalField):
    def __init__(self, *args, **kwargs):
        kwargs.setdefault("max_digits", RATE_MAX_DIGITS)
        kwargs.setdefault("decimal_places", RATE_DECIMAL_PLACES)
        kwargs.setdefault("validators", [MinValueValidator(RATE_ZERO), MaxValueValidator(RATE_ONE)])
        super().__init__(*args, **kwargs)


CURRENCY_SYMBOLS = {"CNY": "¥", "USD": "$", "EUR": "€", "HKD": "HK$", "JPY": "¥", "GBP": "£"}


def format_money(amount: Decimal | None) -> str:
    """`¥1,234.50` (en) or `¥1234.50` (zh-hans) for display.

    The symbol follows settings.CURRENCY; the separators follow the active language's formats (Django's
    DECIMAL_SEPARATOR, THOUSAND_SEPARATOR, NUMBER_GROUPING), always with two decimal places.
    """
    if amount is None:
        return ""
    symbol = CURRENCY_SYMBOLS.get(settings.CURRENCY, settings.CURRENCY + " ")
    sign = "-" if amount < 0 else ""
    number = number_format(abs(quantize_money(amount, ROUND_HALF_UP)), MONEY_DECIMAL_PLACES, force_grouping=True)
    return f"{sign}{symbol}{number}"


def format_rate(rate: Decimal | None) -> str:
    """A rate as a percentage, as many places as it needs: 0.8000 → "80%", 0.1250 → "12.5%"; "" for None."""
    if rate is None:
        return ""
    return f"{(rate * 100).normalize():f}%"
