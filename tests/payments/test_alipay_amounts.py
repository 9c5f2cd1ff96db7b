"""Alipay amounts in notifications and answers: only whole cents between 0.01 and the gateway's bound are amounts;
anything else is no amount (a refusal), never an exception (issue #21's fuzzing found 1e999 raising one)."""

from decimal import Decimal

import pytest

from shops.payments.alipay import _money


@pytest.mark.parametrize("value", ["1e999", "-1e999", "1e12", "NaN", "Infinity", "0", "-1", "12.345", "", "x", None])
def test_what_is_not_an_amount_is_none(value):
    assert _money(value) is None


@pytest.mark.parametrize(("value", "amount"), [("19.90", "19.90"), ("0.01", "0.01"), ("1E+2", "100.00")])
def test_amounts_are_whole_cents(value, amount):
    assert _money(value) == Decimal(amount)
