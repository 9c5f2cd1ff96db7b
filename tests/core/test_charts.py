"""The SVG charts alone (core/charts.py): well-formed, every label escaped; the pages that show them are tested
with the pages."""

import xml.etree.ElementTree as ET
from datetime import date
from decimal import Decimal

from core.charts import daily_chart_svg

SVG = "{http://www.w3.org/2000/svg}"


def parse_svg(markup: str) -> ET.Element:
    return ET.fromstring(markup)  # noqa: S314 - markup our own code wrote: parsing it is the test


def test_chart_escapes_every_label_and_scales_negative_earnings():
    days = [(date(2025, 3, 1), Decimal("-2.00"), 0), (date(2025, 3, 2), Decimal("4.00"), 3)]

    svg = daily_chart_svg(
        days,
        title='Earnings <script>alert("x")</script> & orders',
        description="A & B",
        earnings_label="<b>Earned</b>",
        orders_label="Orders & co",
        format_amount=lambda amount: f"¥{amount}",
        format_day=lambda day: f"<{day:%d}>",
    )
    chart = parse_svg(svg)  # well-formed, so nothing was left unescaped

    assert "<script>" not in svg and "<b>" not in svg
    assert chart.find(f"{SVG}title").text == 'Earnings <script>alert("x")</script> & orders'
    assert chart.find(f"{SVG}desc").text == "A & B"
    labels = [text.text for text in chart.iter(f"{SVG}text")]
    assert "¥4.00" in labels and "¥-2.00" in labels  # the earnings scale reaches below zero
    assert labels[-2:] == ["<01>", "<02>"]
    first, second = (point.split(",") for point in chart.find(f"{SVG}polyline").get("points").split())
    assert float(first[1]) > float(second[1])  # -2.00 is drawn below 4.00


def test_chart_with_no_days_is_still_well_formed():
    chart = parse_svg(
        daily_chart_svg([], title="t", description="d", earnings_label="e", orders_label="o", chart_id="empty")
    )

    assert chart.get("id") == "empty"
    assert chart.find(f"{SVG}polyline") is None
    assert chart.findall(f"{SVG}g/{SVG}rect") == []
