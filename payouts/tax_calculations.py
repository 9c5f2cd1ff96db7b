"""Income tax withheld at payout (个人所得税预扣预缴): the withholding rules as pure functions (docs/tax.md).

No ORM here: each rule takes what it needs about the payee's history as plain values (`TaxHistory`) and returns a
`Withholding`. The payout service (payouts.services.withdrawal_tax_withhold) gathers the history under the payee's
wallet lock and records the result.

Every amount is a Decimal. Intermediate figures are kept exact; the tax is rounded once, half-up to the cent
(四舍五入到分), as the tax bureau's withholding software rounds tax amounts.

Rules (each a `METHODS` key, chosen by a `payouts.WithholdingRule` row):

- `cumulative_2025`: STA announcement 2025 No. 16, part 一(一): platforms withhold 劳务报酬 by the cumulative
  withholding method (累计预扣法) of announcement 2018 No. 61, with cumulative expenses of 20 % of cumulative income
  and a basic deduction of ¥5,000 per month for the months, in this year up to this one, in which the worker has
  been paid by this platform without interruption (连续取得), at the rates of 预扣率表一.
- `cumulative_2025_restart`: the same, reading "连续取得" the other way: a month without income from the platform
  starts the accumulation again (docs/tax.md says why there are two readings).
- `per_payment_2018`: announcement 2018 No. 61 art. 8 and the IIT implementing regulations art. 14: one month's
  income from the same source is one payment; less ¥800 when it is at most ¥4,000, else less 20 %; then 预扣率表二
  (20 %; 30 % less ¥2,000 over ¥20,000; 40 % less ¥7,000 over ¥50,000).
- `none`: nothing withheld (a deployment outside China).

Not a rule staff choose: `business_invoice` (BUSINESS_INVOICE) is what a business payee's payout records. A business
invoices the platform (发票) and the platform pays the invoice: no 劳务报酬 of an individual, so nothing is withheld,
and such a payout is not part of any individual's cumulative history (docs/tax.md, "Business payees").
"""

from dataclasses import dataclass, replace
from datetime import date
from decimal import ROUND_HALF_UP, Decimal

CENT = Decimal("0.01")
ZERO = Decimal("0.00")

# 2018 No. 61, appendix: 个人所得税预扣率表一 (居民个人工资、薪金所得预扣预缴适用), on cumulative taxable income.
# (upper bound of the band, or None for the last; rate; quick deduction 速算扣除数)
TABLE_ONE = (
    (Decimal("36000"), Decimal("0.03"), Decimal("0")),
    (Decimal("144000"), Decimal("0.10"), Decimal("2520")),
    (Decimal("300000"), Decimal("0.20"), Decimal("16920")),
    (Decimal("420000"), Decimal("0.25"), Decimal("31920")),
    (Decimal("660000"), Decimal("0.30"), Decimal("52920")),
    (Decimal("960000"), Decimal("0.35"), Decimal("85920")),
    (None, Decimal("0.45"), Decimal("181920")),
)
# 2018 No. 61, appendix: 个人所得税预扣率表二 (居民个人劳务报酬所得预扣预缴适用), on one payment's taxable income.
TABLE_TWO = (
    (Decimal("20000"), Decimal("0.20"), Decimal("0")),
    (Decimal("50000"), Decimal("0.30"), Decimal("2000")),
    (None, Decimal("0.40"), Decimal("7000")),
)
EXPENSE_RATE = Decimal("0.20")  # 费用: 20 % of income
SMALL_PAYMENT_LIMIT = Decimal("4000")  # per payment: at most this, less a flat ¥800
SMALL_PAYMENT_EXPENSE = Decimal("800")
MONTHLY_DEDUCTION = Decimal("5000")  # 2025 No. 16: 累计减除费用, ¥5,000 a month


@dataclass(frozen=True)
class PriorPayment:
    """A payment already made to the payee this tax year, with the tax withheld from it."""

    on: date
    gross: Decimal
    tax: Decimal


@dataclass(frozen=True)
class TaxHistory:
    """What a rule needs besides the payment itself: this year's earlier payments by this platform, any day of the
    year before or on the payment day (a refund or clawback after a payout is already netted off the later gross,
    so the cumulative income is what was really paid)."""

    payments: tuple[PriorPayment, ...] = ()


@dataclass(frozen=True)
class Withholding:
    gross: Decimal
    tax: Decimal
    method: str
    # How the rule got there, shown to finance and the payee: each figure exact, the tax rounded.
    income: Decimal  # the income the rule taxed (the month's, or the year's so far)
    expenses: Decimal
    deduction: Decimal
    taxable: Decimal
    rate: Decimal
    quick_deduction: Decimal
    tax_due: Decimal  # tax on `taxable` (rounded to the cent), before what was withheld already
    withheld_before: Decimal

    @property
    def net(self) -> Decimal:
        return self.gross - self.tax


def round_tax(amount: Decimal) -> Decimal:
    """Half-up to the cent (四舍五入), never "-0.00"."""
    return amount.quantize(CENT, rounding=ROUND_HALF_UP) + ZERO


def _band(table, taxable: Decimal) -> tuple[Decimal, Decimal]:
    for upper, rate, quick in table:
        if upper is None or taxable <= upper:
            return rate, quick
    raise AssertionError("the last band is open")  # pragma: no cover


def tax_on_table(table, taxable: Decimal) -> tuple[Decimal, Decimal, Decimal]:
    """(tax rounded, rate, quick deduction) for `taxable` on a table; nothing on nothing."""
    if taxable <= 0:
        return ZERO, Decimal("0"), Decimal("0")
    rate, quick = _band(table, taxable)
    return round_tax(taxable * rate - quick), rate, quick


def _check(gross: Decimal) -> None:
    if not isinstance(gross, Decimal):
        raise TypeError(f"money must be a Decimal, not {type(gross).__name__}")
    if gross <= 0:
        raise ValueError("a payment is positive")


def _same_month(a: date, b: date) -> bool:
    return (a.year, a.month) == (b.year, b.month)


def per_payment_2018(gross: Decimal, on: date, history: TaxHistory) -> Withholding:
    """2018 No. 61: the month's payments from this platform are one payment (this one included); the tax on it, less
    what was withheld from its earlier payments this month. Never negative (nothing is refunded at withholding)."""
    _check(gross)
    earlier = [p for p in history.payments if _same_month(p.on, on)]
    income = gross + sum((p.gross for p in earlier), ZERO)
    withheld = sum((p.tax for p in earlier), ZERO)
    expenses = SMALL_PAYMENT_EXPENSE if income <= SMALL_PAYMENT_LIMIT else income * EXPENSE_RATE
    taxable = max(income - expenses, ZERO)
    due, rate, quick = tax_on_table(TABLE_TWO, taxable)
    return Withholding(
        gross=gross,
        tax=max(due - withheld, ZERO),
        method="per_payment_2018",
        income=income,
        expenses=expenses,
        deduction=ZERO,
        taxable=taxable,
        rate=rate,
        quick_deduction=quick,
        tax_due=due,
        withheld_before=withheld,
    )


def months_in_a_row(months: set[int], month: int) -> int:
    """How many months, ending with `month`, the payee was paid in every one of (2025 No. 16: 连续取得)."""
    count = 0
    while month - count in months:
        count += 1
    return count


def cumulative_2025(gross: Decimal, on: date, history: TaxHistory) -> Withholding:
    return _cumulative(gross, on, history, method="cumulative_2025", restart_on_gap=False)


def cumulative_2025_restart(gross: Decimal, on: date, history: TaxHistory) -> Withholding:
    """The other reading of 2025 No. 16's "连续取得" (docs/tax.md): a month without income from the platform ends the
    accumulation; income, expenses, deduction and tax withheld accumulate again from the first month of the run."""
    return _cumulative(gross, on, history, method="cumulative_2025_restart", restart_on_gap=True)


def _cumulative(gross: Decimal, on: date, history: TaxHistory, *, method: str, restart_on_gap: bool) -> Withholding:
    """2025 No. 16 一(一), over this calendar year:
        本期应预扣预缴税额 = (累计收入 − 累计费用 − 累计减除费用) × 预扣率
                             − 速算扣除数 − 累计已预扣预缴税额
    with 累计费用 = 20 % of 累计收入 and 累计减除费用 = ¥5,000 × the months paid in a row up to
    this one. (累计免税收入, 其他扣除 and 减免税额 are zero for a platform's commission.) Never
    negative: a result below zero withholds nothing now (暂不退税); the annual filing settles it.
    Capped at the payment itself (a payout is never more than withheld)."""
    _check(gross)
    this_year = [p for p in history.payments if p.on.year == on.year and p.on <= on]
    months = {p.on.month for p in this_year} | {on.month}
    in_a_row = months_in_a_row(months, on.month)
    if restart_on_gap:
        this_year = [p for p in this_year if p.on.month > on.month - in_a_row]
    income = gross + sum((p.gross for p in this_year), ZERO)
    withheld = sum((p.tax for p in this_year), ZERO)
    deduction = MONTHLY_DEDUCTION * in_a_row
    expenses = income * EXPENSE_RATE
    taxable = max(income - expenses - deduction, ZERO)
    due, rate, quick = tax_on_table(TABLE_ONE, taxable)
    return Withholding(
        gross=gross,
        tax=min(max(due - withheld, ZERO), gross),
        method=method,
        income=income,
        expenses=expenses,
        deduction=deduction,
        taxable=taxable,
        rate=rate,
        quick_deduction=quick,
        tax_due=due,
        withheld_before=withheld,
    )


def no_withholding(gross: Decimal, on: date, history: TaxHistory) -> Withholding:
    _check(gross)
    return Withholding(
        gross=gross,
        tax=ZERO,
        method="none",
        income=gross,
        expenses=ZERO,
        deduction=ZERO,
        taxable=ZERO,
        rate=Decimal("0"),
        quick_deduction=Decimal("0"),
        tax_due=ZERO,
        withheld_before=ZERO,
    )


BUSINESS_INVOICE = "business_invoice"


def business_invoice(gross: Decimal, on: date, history: TaxHistory) -> Withholding:
    """A business payee paid against its invoice: no individual income tax (the history is not read)."""
    return replace(no_withholding(gross, on, history), method=BUSINESS_INVOICE)


METHODS = {
    "cumulative_2025": cumulative_2025,
    "cumulative_2025_restart": cumulative_2025_restart,
    "per_payment_2018": per_payment_2018,
    "none": no_withholding,
}


def withhold(method: str, gross: Decimal, on: date, history: TaxHistory) -> Withholding:
    """The tax to withhold from a payment of `gross` on `on` under the rule `method` (a METHODS key)."""
    return METHODS[method](gross, on, history)
