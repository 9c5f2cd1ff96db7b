"""Files that staff open in a spreadsheet: CSV text from members never runs there as a formula; large XLSX files are
written as a stream."""

import re
import zipfile
from decimal import Decimal
from xml.sax.saxutils import escape


def spreadsheet_safe(value) -> str:
    """`value` as text that Excel, WPS or LibreOffice show as typed, never run as a formula (CSV injection).

    A cell starting with `=`, `@`, a tab or a carriage return, or with `+` or `-` followed by anything but a number
    (a phone number such as +86 138 0000 0000 stays as it is), gets a leading apostrophe.
    """
    value = str(value)
    if value[:1] in ("=", "@", "\t", "\r") or (value[:1] in ("+", "-") and not value[1:].replace(" ", "").isdigit()):
        return "'" + value
    return value


# --- Large XLSX files, streamed -------------------------------------------------------------------------------

XLSX_MAX_ROWS = 1_048_576  # rows of one worksheet (Excel's limit, header included)

_ILLEGAL_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")
_MAIN = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
_RELS = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
_PACKAGE_RELS = "http://schemas.openxmlformats.org/package/2006/relationships"
_HEAD = '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
# Two cell formats: 0 the default, 1 the built-in "0.00" (money).
_STYLES = (
    f'{_HEAD}<styleSheet xmlns="{_MAIN}"><fonts count="1"><font><sz val="11"/><name val="Calibri"/></font></fonts>'
    '<fills count="2"><fill><patternFill patternType="none"/></fill><fill><patternFill patternType="gray125"/></fill>'
    '</fills><borders count="1"><border><left/><right/><top/><bottom/><diagonal/></border></borders>'
    '<cellStyleXfs count="1"><xf numFmtId="0" fontId="0" fillId="0" borderId="0"/></cellStyleXfs>'
    '<cellXfs count="2"><xf numFmtId="0" fontId="0" fillId="0" borderId="0" xfId="0"/>'
    '<xf numFmtId="2" fontId="0" fillId="0" borderId="0" xfId="0" applyNumberFormat="1"/></cellXfs>'
    '<cellStyles count="1"><cellStyle name="Normal" xfId="0" builtinId="0"/></cellStyles></styleSheet>'
)


def _column_letters(count: int) -> list[str]:
    letters = []
    for index in range(1, count + 1):
        name = ""
        while index:
            index, rest = divmod(index - 1, 26)
            name = chr(65 + rest) + name
        letters.append(name)
    return letters


def _xml_text(value: str) -> str:
    text = _ILLEGAL_XML.sub("", value).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    if text != text.strip():
        return f'<is><t xml:space="preserve">{text}</t></is>'
    return f"<is><t>{text}</t></is>"


class XlsxStreamWriter:
    """An XLSX workbook written row by row into `sink` (any object with `write(bytes)`; it need not seek), with
    nothing held in memory or written to disk but the row being written: for reports of a million rows.

    openpyxl's write-only mode does the same job, but without lxml (not installed) it spends about 240 µs a row
    of 14 cells building XML elements one by one (4 minutes for a million rows); this writes the same SpreadsheetML
    as text, about ten times faster. Cells are inline strings (text, kept exactly: an 18-digit ID number stays
    text), integers, or Decimals (shown with two decimals). A sheet that reaches `max_rows` continues on a next
    sheet, "<name> (2)", with the header repeated. openpyxl reads the result back (tests/core/test_spreadsheets.py).
    """

    def __init__(self, sink, *, max_rows: int = XLSX_MAX_ROWS):
        self._zip = zipfile.ZipFile(sink, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1)
        self._max_rows = max_rows
        self._sheets: list[str] = []
        self._stream = None
        self._header: list = []
        self._name = ""
        self._part = 0
        self._rows = 0
        self._letters: list[str] = []
        self._texts: dict = {}

    def sheet(self, name: str, header: list) -> None:
        """Start a new sheet (its name cut to Excel's 31 characters) whose first row is `header`."""
        self._name, self._header, self._part = name, list(header), 1
        self._open(name)

    def _open(self, title: str) -> None:
        self._end_sheet()
        self._sheets.append(title[:31])
        self._stream = self._zip.open(f"xl/worksheets/sheet{len(self._sheets)}.xml", "w", force_zip64=True)
        self._stream.write(f'{_HEAD}<worksheet xmlns="{_MAIN}"><sheetData>'.encode())
        self._rows = 0
        self._letters = _column_letters(len(self._header))
        self._write(self._header)

    def append(self, values) -> None:
        if self._rows >= self._max_rows:
            self._part += 1
            self._open(f"{self._name[:24]} ({self._part})")
        self._write(values)

    def _write(self, values) -> None:
        self._rows += 1
        number = self._rows
        letters = self._letters
        if len(values) > len(letters):
            letters = self._letters = _column_letters(len(values))
        texts = self._texts
        cells = []
        for letter, value in zip(letters, values, strict=False):
            kind = type(value)  # not isinstance: this runs for every cell of a million rows
            if kind is Decimal:
                cells.append(f'<c r="{letter}{number}" s="1"><v>{value}</v></c>')
            elif kind is int:
                cells.append(f'<c r="{letter}{number}"><v>{value}</v></c>')
            elif value is None or value == "":
                continue
            else:
                text = texts.get(value)
                if text is None:
                    text = _xml_text(str(value))
                    if len(texts) < 2000:  # the labels every row repeats, escaped once
                        texts[value] = text
                cells.append(f'<c r="{letter}{number}" t="inlineStr">{text}</c>')
        self._stream.write(f'<row r="{number}">{"".join(cells)}</row>'.encode())

    def _end_sheet(self) -> None:
        if self._stream is not None:
            self._stream.write(b"</sheetData></worksheet>")
            self._stream.close()
            self._stream = None

    def close(self) -> None:
        self._end_sheet()
        count = len(self._sheets)
        sheets = "".join(
            f'<sheet name="{escape(name, {chr(34): "&quot;"})}" sheetId="{n}" r:id="rId{n}"/>'
            for n, name in enumerate(self._sheets, 1)
        )
        overrides = "".join(
            f'<Override PartName="/xl/worksheets/sheet{n}.xml" '
            'ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/>'
            for n in range(1, count + 1)
        )
        relations = "".join(
            f'<Relationship Id="rId{n}" Type="{_RELS}/worksheet" Target="worksheets/sheet{n}.xml"/>'
            for n in range(1, count + 1)
        )
        parts = {
            "[Content_Types].xml": (
                f'{_HEAD}<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
                '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
                '<Default Extension="xml" ContentType="application/xml"/>'
                '<Override PartName="/xl/workbook.xml" '
                'ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/>'
                '<Override PartName="/xl/styles.xml" '
                'ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.styles+xml"/>'
                f"{overrides}</Types>"
            ),
            "_rels/.rels": (
                f'{_HEAD}<Relationships xmlns="{_PACKAGE_RELS}"><Relationship Id="rId1" '
                f'Type="{_RELS}/officeDocument" Target="xl/workbook.xml"/></Relationships>'
            ),
            "xl/workbook.xml": (
                f'{_HEAD}<workbook xmlns="{_MAIN}" xmlns:r="{_RELS}"><sheets>{sheets}</sheets></workbook>'
            ),
            "xl/_rels/workbook.xml.rels": (
                f'{_HEAD}<Relationships xmlns="{_PACKAGE_RELS}">{relations}'
                f'<Relationship Id="rId{count + 1}" Type="{_RELS}/styles" Target="styles.xml"/></Relationships>'
            ),
            "xl/styles.xml": _STYLES,
        }
        for name, text in parts.items():
            self._zip.writestr(name, text)
        self._zip.close()


class ChunkSink:
    """A write-only file that hands its bytes on in pieces of `size` bytes (the last one shorter) to `emit`: to
    store a large file as encrypted pieces without holding it whole. `tell()` lets zipfile write into it."""

    def __init__(self, emit, *, size: int = 4 * 1024 * 1024):
        self._emit, self._size = emit, size
        self._buffer = bytearray()
        self._position = 0
        self.pieces = 0

    def write(self, data) -> int:
        self._buffer += data
        self._position += len(data)
        while len(self._buffer) >= self._size:
            self._hand_on(bytes(self._buffer[: self._size]))
            del self._buffer[: self._size]
        return len(data)

    def tell(self) -> int:
        return self._position

    def flush(self) -> None:
        pass

    def close(self) -> None:
        if self._buffer:
            self._hand_on(bytes(self._buffer))
            self._buffer.clear()

    def _hand_on(self, piece: bytes) -> None:
        self._emit(self.pieces, piece)
        self.pieces += 1
