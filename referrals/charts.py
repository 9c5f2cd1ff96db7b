"""Server-rendered charts for the member dashboard: pure functions from numbers to SVG markup.

No Django, no database, no JavaScript: the caller passes the translated labels and the formatters (money, dates),
so the same function serves every language and is testable alone. Every piece of text is XML-escaped here, so
the result is safe to insert into a page as it is.
"""

from collections.abc import Callable, Sequence
from datetime import date
from decimal import Decimal
from html import escape

# Drawing units of the viewBox: the SVG scales to the width of its box (about 310 px on a 375 px phone, where one
# unit is about one pixel, so the 10-unit text stays legible).
WIDTH = 320
HEIGHT = 190
LEFT = 30  # room for the order axis labels
RIGHT = 58  # room for the earnings axis labels (right-aligned to the edge, so a long amount is never cut off)
TOP = 26  # room for the legend
BOTTOM = 22  # room for the day labels
PLOT_WIDTH = WIDTH - LEFT - RIGHT
PLOT_HEIGHT = HEIGHT - TOP - BOTTOM

BAR_COLOUR = "#9ecbff"
LINE_COLOUR = "#d9363e"
AXIS_COLOUR = "#d0d7de"
TEXT_COLOUR = "#656d76"

Day = tuple[date, Decimal, int]  # (day, earnings, orders)


def _text(value) -> str:
    return escape(str(value), quote=True)


def _number(value: float) -> str:
    """Coordinates with at most one decimal, without a trailing `.0`."""
    rounded = round(value, 1)
    return str(int(rounded)) if rounded == int(rounded) else f"{rounded:.1f}"


def daily_chart_svg(
    days: Sequence[Day],
    *,
    title: str,
    description: str,
    earnings_label: str,
    orders_label: str,
    format_amount: Callable[[Decimal], str] = str,
    format_day: Callable[[date], str] = date.isoformat,
    chart_id: str = "daily-chart",
) -> str:
    """An SVG of daily orders (bars, left scale) and earnings (a line, right scale), oldest day first.

    `title` and `description` become the SVG's <title> and <desc> (what a screen reader announces); each bar has
    its own <title> with the day's figures. Earnings may be negative (a day of clawbacks): the earnings scale then
    reaches below zero. An empty `days` gives an empty plot with its axes.
    """
    count = len(days)
    slot = PLOT_WIDTH / count if count else PLOT_WIDTH
    bar_width = max(slot * 0.7, 1)
    max_orders = max((orders for _day, _earnings, orders in days), default=0) or 1
    earnings = [amount for _day, amount, _orders in days]
    high = max([Decimal(0), *earnings])
    low = min([Decimal(0), *earnings])
    if high == low:
        high = low + 1
    baseline = TOP + PLOT_HEIGHT

    def orders_y(orders: int) -> float:
        return baseline - PLOT_HEIGHT * orders / max_orders

    def earnings_y(amount: Decimal) -> float:
        return baseline - PLOT_HEIGHT * float((amount - low) / (high - low))

    def slot_x(index: int) -> float:
        return LEFT + slot * index + slot / 2

    title_id, desc_id = f"{chart_id}-title", f"{chart_id}-desc"
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {HEIGHT}" width="100%" '
        f'preserveAspectRatio="xMidYMid meet" role="img" aria-labelledby="{_text(title_id)} {_text(desc_id)}" '
        f'id="{_text(chart_id)}" class="chart" font-family="system-ui, sans-serif" font-size="10">',
        f'<title id="{_text(title_id)}">{_text(title)}</title>',
        f'<desc id="{_text(desc_id)}">{_text(description)}</desc>',
        # Legend.
        f'<rect x="{LEFT}" y="6" width="10" height="10" fill="{BAR_COLOUR}"/>',
        f'<text x="{LEFT + 14}" y="15" fill="{TEXT_COLOUR}">{_text(orders_label)}</text>',
        f'<line x1="{LEFT + 110}" y1="11" x2="{LEFT + 124}" y2="11" stroke="{LINE_COLOUR}" stroke-width="2"/>',
        f'<text x="{LEFT + 128}" y="15" fill="{TEXT_COLOUR}">{_text(earnings_label)}</text>',
        # Axes: the baseline, and the scales' top and bottom values.
        f'<line x1="{LEFT}" y1="{baseline}" x2="{LEFT + PLOT_WIDTH}" y2="{baseline}" stroke="{AXIS_COLOUR}"/>',
        f'<line x1="{LEFT}" y1="{TOP}" x2="{LEFT + PLOT_WIDTH}" y2="{TOP}" stroke="{AXIS_COLOUR}" '
        'stroke-dasharray="2 3"/>',
        f'<text x="{LEFT - 4}" y="{TOP + 4}" text-anchor="end" fill="{TEXT_COLOUR}">{max_orders}</text>',
        f'<text x="{LEFT - 4}" y="{baseline}" text-anchor="end" fill="{TEXT_COLOUR}">0</text>',
        f'<text x="{WIDTH - 1}" y="{TOP + 4}" text-anchor="end" fill="{TEXT_COLOUR}">'
        f"{_text(format_amount(high))}</text>",
        f'<text x="{WIDTH - 1}" y="{baseline}" text-anchor="end" fill="{TEXT_COLOUR}">'
        f"{_text(format_amount(low))}</text>",
    ]
    if low < 0:
        zero = _number(earnings_y(Decimal(0)))
        parts.append(
            f'<line x1="{LEFT}" y1="{zero}" x2="{LEFT + PLOT_WIDTH}" y2="{zero}" stroke="{LINE_COLOUR}" '
            'stroke-opacity="0.3" stroke-dasharray="2 3"/>'
        )

    parts.append('<g class="orders">')
    for index, (day, amount, orders) in enumerate(days):
        top = orders_y(orders)
        label = f"{format_day(day)}: {orders_label} {orders}, {earnings_label} {format_amount(amount)}"
        parts.append(
            f'<rect x="{_number(slot_x(index) - bar_width / 2)}" y="{_number(top)}" width="{_number(bar_width)}" '
            f'height="{_number(baseline - top)}" fill="{BAR_COLOUR}"><title>{_text(label)}</title></rect>'
        )
    parts.append("</g>")

    if days:
        points = " ".join(
            f"{_number(slot_x(index))},{_number(earnings_y(amount))}" for index, amount in enumerate(earnings)
        )
        parts.append(
            f'<polyline class="earnings" points="{points}" fill="none" stroke="{LINE_COLOUR}" stroke-width="2" '
            'stroke-linejoin="round"/>'
        )
        # Day labels: first, middle and last, so they never overlap at phone width.
        for index, anchor in sorted({0: "start", count // 2: "middle", count - 1: "end"}.items()):
            x = LEFT if anchor == "start" else LEFT + PLOT_WIDTH if anchor == "end" else slot_x(index)
            parts.append(
                f'<text x="{_number(x)}" y="{HEIGHT - 6}" text-anchor="{anchor}" fill="{TEXT_COLOUR}">'
                f"{_text(format_day(days[index][0]))}</text>"
            )
    parts.append("</svg>")
    return "".join(parts)
