"""Pure rules of the attribution options (issue #22): who a buyer is for a binding, a typed coupon code, and a
coupon's discount on one line. No ORM: shops.services reads and writes, these decide.

The discount is funded from the line's commission pool before the split (docs/commissions.md §11), so it is never
more than the pool: ``list amount × discount rate`` rounded down to the cent, at most ``list amount × commission
rate`` rounded half-up (the line's pool, ``commissions.calculations.line_pool``, which refuses a larger discount);
tests/commissions/test_coupon_split.py checks the two together on every input it tries.
"""

import re
from decimal import ROUND_HALF_UP, Decimal

from core.money import ZERO, quantize_money
from core.phones import phone_e164

CODE_TYPED = re.compile(r"[\s\-]")


def coupon_code_normalise(typed: str) -> str:
    """A code as typed ("ab cd-2345") in the form it is stored in ("ABCD2345")."""
    return CODE_TYPED.sub("", typed or "").upper()


def coupon_line_discount(list_amount: Decimal, commission_rate: Decimal, discount_rate: Decimal) -> Decimal:
    """The discount on a line of ``list_amount``: ``list_amount × discount_rate`` rounded down, never above the pool."""
    if list_amount <= ZERO or discount_rate <= ZERO:
        return ZERO
    wanted = quantize_money(list_amount * discount_rate)
    pool = quantize_money(list_amount * commission_rate, ROUND_HALF_UP)
    return min(wanted, pool)


def buyer_keys(*, user_id: int | None, phone: str) -> list[str]:
    """Who the buyer is, as far as the shop knows, most certain first: the signed-in user, then the phone number
    in E.164 form (however it was typed). Email addresses are not used: anybody can type anybody's."""
    keys = [f"user:{user_id}"] if user_id else []
    e164 = phone_e164(phone) if phone else None
    if e164:
        keys.append(f"phone:{e164}")
    return keys
