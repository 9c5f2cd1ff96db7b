"""A member's annual income statement as a PDF document (issue #24): what the platform paid them in a year, the
income tax withheld from it and what reached them, for their own annual filing (综合所得年度汇算).

The figures are `payouts.selectors.member_income_statement`'s, the same as the page and the CSV. Drawn with
ReportLab: text in the page's language, Chinese in a font that has it (the TrueType CJK font the posters use,
embedded as a subset, when one is installed; otherwise ReportLab's built-in STSong-Light, a CID font every PDF reader
with Chinese support draws without embedding). The identity is masked, as on every page.
"""

from __future__ import annotations

import functools
import io
import logging
from dataclasses import dataclass
from xml.sax.saxutils import escape

from django.conf import settings
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.translation import gettext as _
from reportlab.lib import colors
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.cidfonts import UnicodeCIDFont
from reportlab.pdfbase.ttfonts import TTFont
from reportlab.platypus import Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

from core.money import format_money
from members.posters import font_path

logger = logging.getLogger(__name__)

BUILT_IN_CJK_FONT = "STSong-Light"
INK = colors.HexColor("#1f2937")
MUTED = colors.HexColor("#4b5563")
RULE = colors.HexColor("#d1d5db")
HEAD_FILL = colors.HexColor("#f3f4f6")


@dataclass(frozen=True)
class Payee:
    """Who the statement is for, as the pages show it (masked)."""

    display_name: str
    invite_code: str
    legal_name: str = ""  # masked: 张*
    id_label: str = ""  # "Resident ID card 110***********1234"
    company: str = ""  # a business payee: "某某科技有限公司 (91350100M000100Y43)"


@functools.lru_cache(maxsize=1)
def _font_name() -> str:
    """Register the statement's font once per process and return its name."""
    path = font_path()
    if path:
        try:
            pdfmetrics.registerFont(TTFont("StatementCJK", path, subfontIndex=0))
            return "StatementCJK"
        except Exception as error:  # a font ReportLab cannot embed (CFF outlines, a damaged file): use the CID font
            logger.info("income statement PDF: %s not embeddable (%s); using %s", path, error, BUILT_IN_CJK_FONT)
    pdfmetrics.registerFont(UnicodeCIDFont(BUILT_IN_CJK_FONT))
    return BUILT_IN_CJK_FONT


def _styles(font: str) -> dict[str, ParagraphStyle]:
    base = ParagraphStyle("body", fontName=font, fontSize=9.5, leading=14, textColor=INK, wordWrap="CJK")
    return {
        "title": ParagraphStyle("title", parent=base, fontSize=17, leading=22, spaceAfter=2 * mm),
        "body": base,
        "muted": ParagraphStyle("muted", parent=base, textColor=MUTED, fontSize=8.5, leading=12),
        "heading": ParagraphStyle(
            "heading", parent=base, fontSize=11.5, leading=16, spaceBefore=5 * mm, spaceAfter=2 * mm
        ),
        "cell": ParagraphStyle("cell", parent=base, fontSize=9, leading=12),
        "num": ParagraphStyle("num", parent=base, fontSize=9, leading=12, alignment=2),
    }


def _table(rows: list[list], styles: dict, *, widths: list[float], total: bool) -> Table:
    """A ruled table: the first row is the head, numbers right-aligned (every column but the first), the last row
    bold-ruled when it is a total."""
    cells = [
        [Paragraph(escape(str(value)), styles["cell"] if i == 0 else styles["num"]) for i, value in enumerate(row)]
        for row in rows
    ]
    table = Table(cells, colWidths=widths, repeatRows=1)
    commands = [
        ("BACKGROUND", (0, 0), (-1, 0), HEAD_FILL),
        ("LINEBELOW", (0, 0), (-1, 0), 0.8, INK),
        ("LINEBELOW", (0, 1), (-1, -1), 0.3, RULE),
        ("VALIGN", (0, 0), (-1, -1), "MIDDLE"),
        ("TOPPADDING", (0, 0), (-1, -1), 3),
        ("BOTTOMPADDING", (0, 0), (-1, -1), 3),
    ]
    if total:
        commands.append(("LINEABOVE", (0, -1), (-1, -1), 0.8, INK))
    table.setStyle(TableStyle(commands))
    return table


def income_statement_pdf(*, statement, payee: Payee) -> bytes:
    """The statement of one year (`payouts.selectors.IncomeStatement`) as PDF bytes."""
    font = _font_name()
    styles = _styles(font)
    buffer = io.BytesIO()
    title = _("Annual income statement %(year)s") % {"year": statement.year}
    document = SimpleDocTemplate(
        buffer,
        pagesize=A4,
        leftMargin=18 * mm,
        rightMargin=18 * mm,
        topMargin=16 * mm,
        bottomMargin=16 * mm,
        title=title,
        author=settings.PLATFORM_INVOICE_TITLE or _("Micro-shop"),
        subject=_("Income from the platform and income tax withheld"),
        creator="micro-shop",
    )
    width = A4[0] - 36 * mm
    story: list = [Paragraph(escape(title), styles["title"])]

    who = [[_("Member"), f"{payee.display_name} ({payee.invite_code})"]]
    if payee.legal_name:
        who.append([_("Legal name"), payee.legal_name])
    if payee.id_label:
        who.append([_("ID"), payee.id_label])
    if payee.company:
        who.append([_("Business payee"), payee.company])
    if settings.PLATFORM_INVOICE_TITLE:
        agent = settings.PLATFORM_INVOICE_TITLE
        if settings.PLATFORM_TAX_ID:
            agent = f"{agent} ({settings.PLATFORM_TAX_ID})"
        who.append([_("Withholding agent"), agent])
    who.append([_("Income type"), _("Remuneration for services (劳务报酬)")])
    who.append([_("Issued"), date_format(timezone.localdate(), "DATE_FORMAT")])
    facts = Table(
        [[Paragraph(escape(label), styles["muted"]), Paragraph(escape(value), styles["body"])] for label, value in who],
        colWidths=[38 * mm, width - 38 * mm],
    )
    facts.setStyle(TableStyle([("VALIGN", (0, 0), (-1, -1), "TOP")]))
    story += [facts, Spacer(1, 3 * mm)]

    columns = [0.2 * width, 0.14 * width, 0.22 * width, 0.22 * width, 0.22 * width]
    story.append(Paragraph(escape(_("By month")), styles["heading"]))
    head = [_("Month"), _("Payouts"), _("Gross"), _("Income tax withheld"), _("Net paid to you")]
    rows = [head]
    for month in statement.months:
        rows.append(
            [
                f"{statement.year}-{month.month:02d}",
                month.payouts,
                format_money(month.gross),
                format_money(month.tax),
                format_money(month.net),
            ]
        )
    rows.append(
        [
            _("Year"),
            sum(month.payouts for month in statement.months),
            format_money(statement.gross),
            format_money(statement.tax),
            format_money(statement.net),
        ]
    )
    story.append(_table(rows, styles, widths=columns, total=True))

    story.append(Paragraph(escape(_("Each payout")), styles["heading"]))
    rows = [[_("Income date"), _("Withdrawal"), _("Gross"), _("Income tax withheld"), _("Net paid to you")]]
    for entry in statement.payouts:
        rows.append(
            [
                date_format(entry.paid_on, "SHORT_DATE_FORMAT"),
                f"#{entry.withdrawal_id}",
                format_money(entry.gross),
                format_money(entry.tax),
                format_money(entry.net),
            ]
        )
    story.append(_table(rows, styles, widths=columns, total=False))

    story += [
        Spacer(1, 5 * mm),
        Paragraph(
            escape(
                _(
                    "Gross is what left your balance with each paid withdrawal; the income tax was withheld in advance "
                    "(预扣预缴) and paid to the tax bureau in your name; the net reached your account. Your annual "
                    "filing (综合所得年度汇算) settles the year: the tax withheld counts as already paid."
                )
            ),
            styles["muted"],
        ),
    ]
    document.build(story)
    return buffer.getvalue()
