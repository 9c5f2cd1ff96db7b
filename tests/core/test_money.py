from decimal import Decimal

from core.money import format_rate, money_sum


def test_a_sum_over_no_rows_is_zero_with_two_places():
    assert str(money_sum(None)) == "0.00"


def test_a_sum_gets_back_the_two_places_sqlite_loses():
    assert str(money_sum(Decimal("12.5"))) == "12.50"
    assert str(money_sum(Decimal("3"))) == "3.00"
    assert str(money_sum(7)) == "7.00"


def test_a_sum_rounds_half_up_to_the_cent_and_is_never_minus_zero():
    assert str(money_sum(Decimal("0.125"))) == "0.13"
    assert str(money_sum(Decimal("-1.005"))) == "-1.01"
    assert str(money_sum(Decimal("-0.001"))) == "0.00"


def test_a_rate_shows_as_a_percentage_with_the_places_it_needs():
    assert format_rate(Decimal("0.8000")) == "80%"
    assert format_rate(Decimal("0.1250")) == "12.5%"
    assert format_rate(Decimal("0.0450")) == "4.5%"
    assert format_rate(Decimal("0.0000")) == "0%"
    assert format_rate(None) == ""
