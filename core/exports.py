"""ZIP exports of tables: each table as JSON (for programs) and CSV (for a spreadsheet, every cell formula-safe), and
a ZIP that knows the SHA-256 of every file it holds and writes their manifest.

Used by a member's "Download my data" (members/export.py) and the evidence pack (staff/evidence.py). Money is
written as the Decimal's string ("12.30"), never a float; times in ISO 8601 in the given zone. Nothing holds all the
rows of a table at once: the JSON goes into the archive row by row, the CSV into a spooled file meanwhile.
"""

import csv
import hashlib
import json
import tempfile
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime

from django.utils import timezone

from core.spreadsheets import spreadsheet_safe

SPOOL_MAX_BYTES = 8 * 1024 * 1024  # past this a file being built goes to a temporary file on disk
CHUNK = 2_000  # rows written to the archive at a time
MANIFEST_NAME = "MANIFEST.sha256"


@dataclass(frozen=True)
class Table:
    name: str  # the files' stem: <name>.json, <name>.csv
    description: str  # one line of a README
    columns: list[str]
    rows: Iterable[dict]


def export_value(value, zone) -> str | int | bool | None:
    """A value as JSON and CSV carry it: Decimals as their exact string, times in `zone` (ISO 8601), None as null."""
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, datetime):
        return (value.astimezone(zone) if timezone.is_aware(value) else value).isoformat()
    if isinstance(value, date):
        return value.isoformat()
    return str(value)  # Decimal: "12.30", never a float


def zip_write_table(archive, table: Table, *, zone=None) -> int:
    """`table` as <name>.json (written into the archive row by row) and <name>.csv (into a spooled file meanwhile,
    then copied in: a ZIP is written one member file at a time). `archive`: a zipfile.ZipFile or a ChecksumZip.
    Returns the number of rows."""
    zone = zone or timezone.get_current_timezone()
    rows = 0
    with tempfile.SpooledTemporaryFile(max_size=SPOOL_MAX_BYTES, mode="w+", encoding="utf-8", newline="") as text:
        text.write("\ufeff")  # a BOM first, so Excel reads the file as UTF-8
        writer = csv.writer(text)
        writer.writerow(table.columns)
        with archive.open(f"{table.name}.json", "w") as raw:
            pieces = ["["]
            for number, row in enumerate(table.rows):
                record = {column: export_value(row.get(column), zone) for column in table.columns}
                pieces.append((",\n " if number else "\n ") + json.dumps(record, ensure_ascii=False))
                writer.writerow(["" if value is None else spreadsheet_safe(value) for value in record.values()])
                rows = number + 1
                if len(pieces) >= CHUNK:  # a few large writes: the compressor is slow on many small ones
                    raw.write("".join(pieces).encode())
                    pieces = []
            pieces.append("\n]\n")
            raw.write("".join(pieces).encode())
        text.seek(0)
        with archive.open(f"{table.name}.csv", "w") as raw:
            while chunk := text.read(64 * 1024):
                raw.write(chunk.encode("utf-8"))
    return rows


class _HashingFile:
    """A file being written into a ZIP that also feeds a SHA-256 of what is written."""

    def __init__(self, raw, on_close):
        self._raw, self._on_close = raw, on_close
        self._sha256 = hashlib.sha256()

    def write(self, data: bytes) -> int:
        self._sha256.update(data)
        return self._raw.write(data)

    def flush(self) -> None:
        pass  # the ZIP's file flushes when it is closed

    def close(self) -> None:
        self._raw.close()
        self._on_close(self._sha256.hexdigest())

    def __enter__(self):
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()


class ChecksumZip:
    """A ZIP written as a stream into `sink` (any object with `write` and `tell`; it need not seek) that keeps the
    SHA-256 of every file written into it, in order, and writes them as a manifest in `sha256sum` format, so that
    `sha256sum -c MANIFEST.sha256` in the unpacked folder checks every file."""

    def __init__(self, sink):
        self._zip = zipfile.ZipFile(sink, "w", compression=zipfile.ZIP_DEFLATED)
        self.checksums: dict[str, str] = {}

    def open(self, name: str, mode: str = "w") -> _HashingFile:
        if mode != "w" or name in self.checksums or name == MANIFEST_NAME:
            raise ValueError(f"{name} cannot be written (again) into this archive")
        raw = self._zip.open(name, "w", force_zip64=True)  # a file of unknown size may pass 2 GiB
        return _HashingFile(raw, lambda digest: self.checksums.__setitem__(name, digest))

    def writestr(self, name: str, data: str | bytes) -> None:
        with self.open(name) as file:
            file.write(data.encode() if isinstance(data, str) else data)

    def manifest(self) -> bytes:
        """The manifest's text: one line per file, "<sha256>  <name>", in the order they were written."""
        return "".join(f"{digest}  {name}\n" for name, digest in self.checksums.items()).encode()

    def close(self) -> str:
        """Write the manifest as the last file, close the ZIP, and return the manifest's own SHA-256."""
        manifest = self.manifest()
        self._zip.writestr(MANIFEST_NAME, manifest)
        self._zip.close()
        return hashlib.sha256(manifest).hexdigest()
