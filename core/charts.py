"""Server-rendered charts: pure functions from numbers to SVG markup (the member dashboard's daily chart, and the
pieces every chart is drawn with: the opening, the plot area, scale labels, escaped text; staff/charts.py uses them).

No Django, no database, no JavaScript: the caller passes the translated labels and the formatters (money, dates),
so the same function serves every language and is testable alone. Every piece of text is XML-escaped here, so
the result is safe to insert into a page as it is.
"""

from collections.abc import Callable, Sequence
from dataclasses import dataclass
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


# --- building blocks, shared with the staff overview's charts (staff/charts.py) ------------------------------------


def svg_text(value) -> str:
    """Text or an attribute value, XML-escaped."""
    return escape(str(value), quote=True)


def svg_number(value: float) -> str:
    """Coordinates with at most one decimal, without a trailing `.0`."""
    rounded = round(value, 1)
    return str(int(rounded)) if rounded == int(rounded) else f"{rounded:.1f}"


def svg_opening(*, width: int, height: int, title: str, description: str, chart_id: str, font_size: int) -> list[str]:
    """The <svg> tag with its <title> and <desc> (what a screen reader announces); the caller closes the tag."""
    title_id, desc_id = f"{chart_id}-title", f"{chart_id}-desc"
    return [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" width="100%" '
        f'preserveAspectRatio="xMidYMid meet" role="img" aria-labelledby="{svg_text(title_id)} {svg_text(desc_id)}" '
        f'id="{svg_text(chart_id)}" class="chart" font-family="system-ui, sans-serif" font-size="{font_size}">',
        f'<title id="{svg_text(title_id)}">{svg_text(title)}</title>',
        f'<desc id="{svg_text(desc_id)}">{svg_text(description)}</desc>',
    ]


def scale_label(x: float, y: float, value) -> str:
    """A scale's value, right-aligned to `x`."""
    return f'<text x="{x}" y="{y}" text-anchor="end" fill="{TEXT_COLOUR}">{svg_text(value)}</text>'


@dataclass(frozen=True)
class PlotArea:
    """The plot inside a chart's viewBox: one slot per day across, and a value scale from `low` up to `high`."""

    left: int
    top: int
    width: int
    height: int
    count: int  # of days
    high: Decimal
    low: Decimal

    @property
    def slot(self) -> float:
        return self.width / self.count if self.count else self.width

    @property
    def baseline(self) -> int:
        return self.top + self.height

    def slot_x(self, index: int) -> float:
        """The middle of the day's slot."""
        return self.left + self.slot * index + self.slot / 2

    def value_y(self, value: Decimal) -> float:
        return self.baseline - self.height * float((value - self.low) / (self.high - self.low))

    def day_labels(self, label: Callable[[int], str], *, y: int) -> list[str]:
        """Labels of the first, middle and last day only, so they never overlap on a narrow screen."""
        if not self.count:
            return []
        parts = []
        for index, anchor in sorted({0: "start", self.count // 2: "middle", self.count - 1: "end"}.items()):
            x = self.left if anchor == "start" else self.left + self.width if anchor == "end" else self.slot_x(index)
            parts.append(
                f'<text x="{svg_number(x)}" y="{y}" text-anchor="{anchor}" fill="{TEXT_COLOUR}">'
                f"{svg_text(label(index))}</text>"
            )
        return parts


def plot_area(*, left: int, top: int, width: int, height: int, values: Sequence[Decimal], count: int) -> PlotArea:
    """The plot area for `count` days whose values are `values` (any number of them: all series together).

    The scale always shows zero, and is never flat (so dividing by its span is safe).
    """
    high = max([Decimal(0), *values])
    low = min([Decimal(0), *values])
    if high == low:
        high = low + 1
    return PlotArea(left=left, top=top, width=width, height=height, count=count, high=high, low=low)


# --- the member dashboard's chart -----------------------------------------------------------------------------------


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
    earnings = [amount for _day, amount, _orders in days]
    plot = plot_area(left=LEFT, top=TOP, width=PLOT_WIDTH, height=PLOT_HEIGHT, values=earnings, count=count)
    baseline = plot.baseline
    bar_width = max(plot.slot * 0.7, 1)
    max_orders = max((orders for _day, _earnings, orders in days), default=0) or 1

    def orders_y(orders: int) -> float:
        return baseline - PLOT_HEIGHT * orders / max_orders

    parts = [
        *svg_opening(width=WIDTH, height=HEIGHT, title=title, description=description, chart_id=chart_id, font_size=10),
        # Legend.
        f'<rect x="{LEFT}" y="6" width="10" height="10" fill="{BAR_COLOUR}"/>',
        f'<text x="{LEFT + 14}" y="15" fill="{TEXT_COLOUR}">{svg_text(orders_label)}</text>',
        f'<line x1="{LEFT + 110}" y1="11" x2="{LEFT + 124}" y2="11" stroke="{LINE_COLOUR}" stroke-width="2"/>',
        f'<text x="{LEFT + 128}" y="15" fill="{TEXT_COLOUR}">{svg_text(earnings_label)}</text>',
        # Axes: the baseline, and the scales' top and bottom values.
        f'<line x1="{LEFT}" y1="{baseline}" x2="{LEFT + PLOT_WIDTH}" y2="{baseline}" stroke="{AXIS_COLOUR}"/>',
        f'<line x1="{LEFT}" y1="{TOP}" x2="{LEFT + PLOT_WIDTH}" y2="{TOP}" stroke="{AXIS_COLOUR}" '
        'stroke-dasharray="2 3"/>',
        scale_label(LEFT - 4, TOP + 4, max_orders),
        scale_label(LEFT - 4, baseline, 0),
        scale_label(WIDTH - 1, TOP + 4, format_amount(plot.high)),
        scale_label(WIDTH - 1, baseline, format_amount(plot.low)),
    ]
    if plot.low < 0:
        zero = svg_number(plot.value_y(Decimal(0)))
        parts.append(
            f'<line x1="{LEFT}" y1="{zero}" x2="{LEFT + PLOT_WIDTH}" y2="{zero}" stroke="{LINE_COLOUR}" '
            'stroke-opacity="0.3" stroke-dasharray="2 3"/>'
        )

    parts.append('<g class="orders">')
    for index, (day, amount, orders) in enumerate(days):
        top = orders_y(orders)
        label = f"{format_day(day)}: {orders_label} {orders}, {earnings_label} {format_amount(amount)}"
        parts.append(
            f'<rect x="{svg_number(plot.slot_x(index) - bar_width / 2)}" y="{svg_number(top)}" '
            f'width="{svg_number(bar_width)}" height="{svg_number(baseline - top)}" fill="{BAR_COLOUR}">'
            f"<title>{svg_text(label)}</title></rect>"
        )
    parts.append("</g>")

    if days:
        points = " ".join(
            f"{svg_number(plot.slot_x(index))},{svg_number(plot.value_y(amount))}"
            for index, amount in enumerate(earnings)
        )
        parts.append(
            f'<polyline class="earnings" points="{points}" fill="none" stroke="{LINE_COLOUR}" stroke-width="2" '
            'stroke-linejoin="round"/>'
        )
        parts += plot.day_labels(lambda index: format_day(days[index][0]), y=HEIGHT - 6)
    parts.append("</svg>")
    return "".join(parts)
