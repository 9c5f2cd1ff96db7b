"""Server-rendered charts for the staff overview: pure functions from numbers to SVG markup.

Built on core/charts.py: no Django, no database, no JavaScript; the caller passes translated labels
and formatters, and every piece of text is XML-escaped here, so the result is safe to insert into a page as is.
"""

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from core.charts import (
    AXIS_COLOUR,
    TEXT_COLOUR,
    plot_area,
    scale_label,
    svg_number,
    svg_opening,
    svg_text,
)

WIDTH = 640
HEIGHT = 240
LEFT = 8
RIGHT = 76  # room for the amount labels (right-aligned to the edge, so a long amount is never cut off)
TOP = 28  # room for the legend
BOTTOM = 22  # room for the day labels
PLOT_WIDTH = WIDTH - LEFT - RIGHT
PLOT_HEIGHT = HEIGHT - TOP - BOTTOM
LEGEND_SPACING = 170

COLOURS = ("#1f6feb", "#d9363e", "#1a7f37", "#9a6700")


@dataclass(frozen=True)
class Series:
    label: str
    values: Sequence[Decimal]  # one per day, in the order of the days


def amounts_chart_svg(
    days: Sequence[date],
    series: Sequence[Series],
    *,
    title: str,
    description: str,
    format_amount: Callable[[Decimal], str] = str,
    format_day: Callable[[date], str] = date.isoformat,
    chart_id: str = "amounts-chart",
) -> str:
    """An SVG of several daily amounts as lines on one shared scale, oldest day first.

    `title` and `description` become the SVG's <title> and <desc>; each day has an invisible column with its own
    <title> naming every series' figure, so the numbers are there for a screen reader and on hover. Amounts may
    be negative (a day of reversals): the scale then reaches below zero. Empty `days` give an empty plot.
    """
    if any(len(line.values) != len(days) for line in series):
        raise ValueError("every series needs one value per day")
    count = len(days)
    values = [value for line in series for value in line.values]
    plot = plot_area(left=LEFT, top=TOP, width=PLOT_WIDTH, height=PLOT_HEIGHT, values=values, count=count)
    baseline = plot.baseline
    zero_y = svg_number(plot.value_y(Decimal(0)))
    parts = svg_opening(
        width=WIDTH, height=HEIGHT, title=title, description=description, chart_id=chart_id, font_size=11
    )
    for index, line in enumerate(series):
        colour = COLOURS[index % len(COLOURS)]
        x = LEFT + index * LEGEND_SPACING
        parts.append(
            f'<line x1="{x}" y1="11" x2="{x + 16}" y2="11" stroke="{colour}" stroke-width="2"/>'
            f'<text x="{x + 20}" y="15" fill="{TEXT_COLOUR}">{svg_text(line.label)}</text>'
        )
    parts += [
        f'<line x1="{LEFT}" y1="{TOP}" x2="{LEFT + PLOT_WIDTH}" y2="{TOP}" stroke="{AXIS_COLOUR}" '
        'stroke-dasharray="2 3"/>',
        f'<line x1="{LEFT}" y1="{baseline}" x2="{LEFT + PLOT_WIDTH}" y2="{baseline}" stroke="{AXIS_COLOUR}"/>',
        scale_label(WIDTH - 1, TOP + 4, format_amount(plot.high)),
        scale_label(WIDTH - 1, baseline, format_amount(plot.low)),
    ]
    if plot.low < 0:
        parts.append(
            f'<line x1="{LEFT}" y1="{zero_y}" x2="{LEFT + PLOT_WIDTH}" y2="{zero_y}" stroke="{TEXT_COLOUR}" '
            'stroke-opacity="0.4" stroke-dasharray="2 3"/>'
        )

    if count:
        for index, line in enumerate(series):
            points = " ".join(
                f"{svg_number(plot.slot_x(day))},{svg_number(plot.value_y(amount))}"
                for day, amount in enumerate(line.values)
            )
            parts.append(
                f'<polyline class="series series-{index}" points="{points}" fill="none" '
                f'stroke="{COLOURS[index % len(COLOURS)]}" stroke-width="2" stroke-linejoin="round"/>'
            )
        parts.append('<g class="days">')
        for index, day in enumerate(days):
            figures = ", ".join(f"{line.label} {format_amount(line.values[index])}" for line in series)
            label = f"{format_day(day)}: {figures}"
            parts.append(
                f'<rect x="{svg_number(LEFT + plot.slot * index)}" y="{TOP}" width="{svg_number(plot.slot)}" '
                f'height="{PLOT_HEIGHT}" fill="transparent"><title>{svg_text(label)}</title></rect>'
            )
        parts.append("</g>")
        parts += plot.day_labels(lambda index: format_day(days[index]), y=HEIGHT - 6)
    parts.append("</svg>")
    return "".join(parts)
