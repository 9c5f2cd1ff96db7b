"""The withholding rules as pure functions, with the worked examples of their sources (docs/tax.md)."""

from dataclasses import replace
from datetime import date
from decimal import Decimal

import pytest

from payouts.tax_calculations import (
    PriorPayment,
    TaxHistory,
    cumulative_2025,
    cumulative_2025_restart,
    months_in_a_row,
    no_withholding,
    per_payment_2018,
    withhold,
)

D = Decimal
NONE = TaxHistory()


def history(*payments) -> TaxHistory:
    return TaxHistory(payments=tuple(PriorPayment(on=on, gross=D(gross), tax=D(tax)) for on, gross, tax in payments))


# --- 2018 No. 61: per payment, a month as one payment ------------------------------------------------------------


@pytest.mark.parametrize(
    ("gross", "tax"),
    [
        # The STA's own examples (解读 of 2018 No. 61): 2,000 → (2,000 − 800) × 20 % = 240;
        # 60,000 → 60,000 × (1 − 20 %) × 30 % − 2,000 = 12,400.
        ("2000.00", "240.00"),
        ("60000.00", "12400.00"),
        ("800.00", "0.00"),  # nothing left after the ¥800
        ("500.00", "0.00"),
        ("4000.00", "640.00"),  # at most ¥4,000: less ¥800 → 3,200 × 20 %
        ("4000.01", "640.00"),  # above: less 20 % → 3,200.008 × 20 % = 640.0016 → 640.00
        ("4100.00", "656.00"),  # 3,280 × 20 %
        ("25000.00", "4000.00"),  # taxable 20,000 exactly: still 20 %
        ("25000.01", "4000.00"),  # 20,000.008 × 30 % − 2,000 = 4,000.0024
        ("62500.00", "13000.00"),  # taxable 50,000 exactly: 30 % − 2,000
        ("100000.00", "25000.00"),  # 80,000 × 40 % − 7,000
        ("4376.57", "700.25"),  # 3,501.256 × 20 % = 700.2512 → 700.25
        ("4376.60", "700.26"),  # 3,501.28 × 20 % = 700.256 → 700.26: half-up, not down
    ],
)
def test_per_payment_examples(gross, tax):
    assert per_payment_2018(D(gross), date(2026, 3, 5), NONE).tax == D(tax)


def test_per_payment_several_payouts_in_a_month_are_one_payment():
    # given 3,000 paid on 5 March (tax (3,000 − 800) × 20 % = 440)
    first = per_payment_2018(D("3000.00"), date(2026, 3, 5), NONE)
    assert first.tax == D("440.00")
    # when 2,000 more is paid on 20 March: the month's 5,000 is one payment, (5,000 × 80 %) × 20 % = 800, less 440
    second = per_payment_2018(D("2000.00"), date(2026, 3, 20), history((date(2026, 3, 5), "3000.00", "440.00")))
    # then
    assert second.income == D("5000.00")
    assert second.tax_due == D("800.00")
    assert second.withheld_before == D("440.00")
    assert second.tax == D("360.00")
    assert first.tax + second.tax == per_payment_2018(D("5000.00"), date(2026, 3, 31), NONE).tax


def test_per_payment_month_boundary_starts_a_new_payment():
    paid = history((date(2026, 3, 31), "3000.00", "440.00"))
    april = per_payment_2018(D("2000.00"), date(2026, 4, 1), paid)
    assert april.income == D("2000.00")
    assert april.tax == D("240.00")  # not 360: 31 March and 1 April are two payments


def test_per_payment_never_negative():
    # the month's earlier payout had more withheld than the month now owes (it was computed while a payout that
    # failed afterwards still counted): 4,510 × 80 % × 20 % = 721.60 < 900, so nothing, never a refund
    paid = history((date(2026, 3, 5), "4500.00", "900.00"))
    assert per_payment_2018(D("10.00"), date(2026, 3, 6), paid).tax == D("0.00")
    paid = history((date(2026, 3, 5), "5000.00", "800.00"))
    assert per_payment_2018(D("10.00"), date(2026, 3, 6), paid).tax == D("1.60")  # 5,010 × 80 % × 20 % = 801.60


# --- 2025 No. 16: cumulative withholding --------------------------------------------------------------------------


def test_cumulative_first_month():
    # 10,000 in January: (10,000 − 2,000 − 5,000) × 3 % = 90
    result = cumulative_2025(D("10000.00"), date(2026, 1, 15), NONE)
    assert (result.income, result.expenses, result.deduction, result.taxable) == (
        D("10000.00"),
        D("2000.0000"),
        D("5000"),
        D("3000.0000"),
    )
    assert result.rate == D("0.03")
    assert result.tax == D("90.00")
    assert result.net == D("9910.00")


def test_cumulative_second_month_subtracts_what_was_withheld():
    # February, 10,000 more: (20,000 − 4,000 − 10,000) × 3 % = 180, less January's 90
    paid = history((date(2026, 1, 15), "10000.00", "90.00"))
    result = cumulative_2025(D("10000.00"), date(2026, 2, 15), paid)
    assert result.taxable == D("6000.0000")
    assert result.tax_due == D("180.00")
    assert result.tax == D("90.00")


def test_cumulative_several_payouts_in_a_month():
    on = date(2026, 1, 10)
    first = cumulative_2025(D("3000.00"), on, NONE)
    assert first.tax == D("0.00")  # 2,400 − 5,000 < 0
    second = cumulative_2025(D("3000.00"), date(2026, 1, 20), history((on, "3000.00", "0.00")))
    assert second.tax == D("0.00")  # 4,800 − 5,000 < 0: one month, one ¥5,000
    third = cumulative_2025(
        D("4000.00"), date(2026, 1, 31), history((on, "3000.00", "0.00"), (date(2026, 1, 20), "3000.00", "0.00"))
    )
    assert third.deduction == D("5000")
    assert third.tax == D("90.00")  # as one payment of 10,000


def test_cumulative_bands_and_quick_deduction():
    # 60,000 in January: taxable 48,000 − 5,000 = 43,000 → 10 % − 2,520 = 1,780
    assert cumulative_2025(D("60000.00"), date(2026, 1, 5), NONE).tax == D("1780.00")
    # 51,250 in January: taxable exactly 36,000 → 3 %: 1,080
    assert cumulative_2025(D("51250.00"), date(2026, 1, 5), NONE).tax == D("1080.00")
    # 1,000,000 in January: 795,000 → 35 % − 85,920 = 192,330
    assert cumulative_2025(D("1000000.00"), date(2026, 1, 5), NONE).tax == D("192330.00")
    # 2,000,000: 1,595,000 → 45 % − 181,920 = 535,830
    assert cumulative_2025(D("2000000.00"), date(2026, 1, 5), NONE).tax == D("535830.00")


def test_cumulative_rounds_half_up_to_the_cent():
    # 10,000.25: taxable 3,000.20 → 90.006 → 90.01 (half-up; rounding down would give 90.00)
    assert cumulative_2025(D("10000.25"), date(2026, 1, 5), NONE).tax == D("90.01")
    # 10,000.03: taxable 3,000.024 → 90.00072 → 90.00
    assert cumulative_2025(D("10000.03"), date(2026, 1, 5), NONE).tax == D("90.00")


def test_cumulative_never_refunds_at_withholding():
    # January 60,000 (1,780 withheld); a clawback netted off February's payouts leaves only 100 paid in February:
    # (60,100 − 12,020 − 10,000) × 10 % − 2,520 = 1,288 < 1,780 withheld: nothing now (暂不退税), the annual filing
    paid = history((date(2026, 1, 5), "60000.00", "1780.00"))
    result = cumulative_2025(D("100.00"), date(2026, 2, 5), paid)
    assert result.tax_due == D("1288.00")
    assert result.tax == D("0.00")


def test_cumulative_year_boundary_starts_afresh():
    paid = history((date(2025, 12, 31), "60000.00", "1780.00"))
    january = cumulative_2025(D("10000.00"), date(2026, 1, 1), paid)
    assert january.income == D("10000.00")
    assert january.withheld_before == D("0.00")
    assert january.tax == D("90.00")


def test_cumulative_month_boundary_counts_another_deduction():
    # 31 January and 1 February: two months in a row, ¥10,000 deducted
    paid = history((date(2026, 1, 31), "10000.00", "90.00"))
    february = cumulative_2025(D("10000.00"), date(2026, 2, 1), paid)
    assert february.deduction == D("10000")
    assert february.tax == D("90.00")


def test_cumulative_a_gap_restarts_the_months_in_a_row():
    # Paid in January, nothing in February, paid in March: only March is "in a row" (连续取得): ¥5,000 deducted.
    # (20,000 − 4,000 − 5,000) × 3 % = 330, less January's 90
    paid = history((date(2026, 1, 15), "10000.00", "90.00"))
    march = cumulative_2025(D("10000.00"), date(2026, 3, 15), paid)
    assert march.deduction == D("5000")
    assert march.tax == D("240.00")


def test_cumulative_restart_reading_starts_again_after_a_gap():
    # The other reading: March starts a new run, January is not carried: (10,000 − 2,000 − 5,000) × 3 % = 90
    paid = history((date(2026, 1, 15), "10000.00", "90.00"))
    march = cumulative_2025_restart(D("10000.00"), date(2026, 3, 15), paid)
    assert (march.income, march.deduction, march.withheld_before, march.tax) == (
        D("10000.00"),
        D("5000"),
        D("0.00"),
        D("90.00"),
    )
    # without a gap both readings agree
    paid = history((date(2026, 1, 15), "10000.00", "90.00"), (date(2026, 2, 15), "10000.00", "90.00"))
    literal = cumulative_2025(D("10000.00"), date(2026, 3, 15), paid)
    assert cumulative_2025_restart(D("10000.00"), date(2026, 3, 15), paid) == replace(
        literal, method="cumulative_2025_restart"
    )


def test_the_literal_reading_caps_a_catch_up_at_the_payment():
    # Six months of 5,000 (nothing withheld: 4,000 − 5,000 a month), no July, then 10.00 in August: the run is one
    # month, so (30,010 − 6,002 − 5,000) × 3 % = 570.24 is due; only the 10.00 paid can be withheld now
    paid = history(*[(date(2026, month, 10), "5000.00", "0.00") for month in range(1, 7)])
    august = cumulative_2025(D("10.00"), date(2026, 8, 10), paid)
    assert august.tax_due == D("570.24")
    assert (august.tax, august.net) == (D("10.00"), D("0.00"))
    assert cumulative_2025_restart(D("10.00"), date(2026, 8, 10), paid).tax == D("0.00")


def test_months_in_a_row():
    assert months_in_a_row({1, 2, 3}, 3) == 3
    assert months_in_a_row({1, 3}, 3) == 1
    assert months_in_a_row({3}, 3) == 1
    assert months_in_a_row({1, 2, 4, 5, 6}, 6) == 3


def test_no_withholding_and_the_registry():
    assert no_withholding(D("99999.00"), date(2026, 1, 1), NONE).tax == D("0.00")
    assert withhold("per_payment_2018", D("2000.00"), date(2026, 1, 1), NONE).tax == D("240.00")
    assert withhold("cumulative_2025", D("10000.00"), date(2026, 1, 1), NONE).tax == D("90.00")


@pytest.mark.parametrize("rule", [per_payment_2018, cumulative_2025, cumulative_2025_restart, no_withholding])
def test_money_is_decimal_and_positive(rule):
    with pytest.raises(TypeError):
        rule(10000.0, date(2026, 1, 1), NONE)
    with pytest.raises(ValueError):
        rule(D("0.00"), date(2026, 1, 1), NONE)


@pytest.mark.parametrize("rule", [per_payment_2018, cumulative_2025, cumulative_2025_restart])
def test_gross_is_tax_plus_net_and_tax_never_negative(rule):
    on = date(2026, 6, 30)
    paid = history((date(2026, 6, 1), "12345.67", "1000.00"), (date(2026, 5, 1), "800.00", "0.00"))
    for cents in (1, 99, 80001, 400000, 400001, 2500001, 99999999):
        gross = D(cents) / 100
        result = rule(gross, on, paid)
        assert result.tax >= 0
        assert result.tax + result.net == gross
        assert result.tax == result.tax.quantize(D("0.01"))
