"""The connectors' shared reading of the wire (networks/connectors/wire.py): one behaviour for every network."""

from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Decimal

import pytest

from networks.connectors.wire import CHINA, parse_decimal, parse_money, parse_wire_time, wire_time


@pytest.mark.parametrize(("value", "amount"), [("12.50", "12.50"), ("3", "3.00"), (7, "7.00"), ("0.00", "0.00")])
def test_money_comes_back_with_two_places(value, amount):
    assert str(parse_money(value)) == amount


@pytest.mark.parametrize("value", ["-0.01", "-12.50", -3])
def test_a_negative_amount_is_refused_in_exact_cents(value):
    with pytest.raises(ValueError, match="negative amount"):
        parse_money(value)  # the sandbox and 淘宝联盟


@pytest.mark.parametrize("value", ["-0.01", "-12.50", -3, -0.005])
def test_a_negative_amount_is_refused_when_rounded(value):
    with pytest.raises(ValueError, match="negative amount"):
        parse_money(value, rounding=ROUND_HALF_UP)  # 京东联盟: JSON numbers, rounded to the cent


def test_more_than_two_decimals_are_refused_unless_the_network_sends_floats():
    with pytest.raises(ValueError, match="more than 2 decimals"):
        parse_money("1.005")

    assert parse_money(1.005, rounding=ROUND_HALF_UP) == Decimal("1.01")  # str(1.005) is "1.005"
    assert parse_money("19.999", rounding=ROUND_HALF_UP) == Decimal("20.00")


def test_minus_zero_comes_back_as_zero():
    assert str(parse_money("-0.00")) == "0.00"
    assert str(parse_money("-0.004", rounding=ROUND_HALF_UP)) == "0.00"


@pytest.mark.parametrize("value", ["", "N/A", "1,5", "NaN", "Infinity", "-Infinity", None])
def test_what_is_not_a_finite_number_is_a_value_error(value):
    with pytest.raises(ValueError, match="not a number"):
        parse_decimal(value)
    with pytest.raises(ValueError, match="not a number"):
        parse_money(value)


def test_times_are_china_time_on_the_wire_and_aware_utc_here():
    moment = datetime(2026, 1, 10, 1, 30, 5, 999, tzinfo=UTC)

    assert wire_time(moment) == "2026-01-10 09:30:05"
    assert parse_wire_time("2026-01-10 09:30:05") == datetime(2026, 1, 10, 1, 30, 5, tzinfo=UTC)
    assert parse_wire_time("2026-01-10 09:30:05").tzinfo is UTC
    assert parse_wire_time("") is None
    assert parse_wire_time(None) is None
    assert datetime(2026, 1, 10, 9, 30, 5, tzinfo=CHINA) == parse_wire_time("2026-01-10 09:30:05")
