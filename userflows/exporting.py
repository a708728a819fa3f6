"""Writes an export ZIP in constant memory: one file per data type and `manifest.json`,
with the archive's SHA-256 and size and every file's row count and checksum computed while
the bytes stream out. The job (services/exports.py) decides where the bytes go.

Rows come either from a streaming iterator (any database, any format) or, for CSV on
PostgreSQL, straight from `COPY (SELECT …) TO STDOUT (FORMAT csv)` of a query whose text
columns are already formula-safe.
"""

import csv
import datetime as dt
import hashlib
import json
import os
import tempfile
import zipfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from decimal import Decimal

import xlsxwriter

from opsplatform.exports import formula_safe

FLUSH_BYTES = 1 << 20  # write to the archive in 1 MB slices
PROGRESS_EVERY_ROWS = 2000
XLSX_MAX_ROWS = 1_048_576  # Excel's limit per sheet, header row included
# Level 1 deflate: CSV of numbers still shrinks ~4x, at a fraction of level 6's time.
COMPRESSION = {"compression": zipfile.ZIP_DEFLATED, "compresslevel": 1}

Progress = Callable[[int], None]  # called with the number of rows written since the last call


@dataclass(frozen=True)
class FileResult:
    data_type: str
    name: str
    rows: int
    bytes: int
    sha256: str


class _HashingSink:
    """The archive's destination as zipfile sees it: write-only and unseekable (so entries
    carry data descriptors and no byte is rewritten), hashing and counting on the way."""

    def __init__(self, raw):
        self.raw = raw
        self.sha256 = hashlib.sha256()
        self.size = 0
        self.discarding = False

    def write(self, data) -> int:
        if self.discarding:
            return len(data)
        self.raw.write(data)
        self.sha256.update(data)
        self.size += len(data)
        return len(data)

    def tell(self) -> int:
        return self.size

    def flush(self) -> None:
        self.raw.flush()


class _Entry:
    """A buffered writer into one archive member, hashing the uncompressed content."""

    def __init__(self, member):
        self.member = member
        self.buffer = bytearray()
        self.sha256 = hashlib.sha256()
        self.size = 0

    def write(self, data) -> None:
        self.buffer += data
        if len(self.buffer) >= FLUSH_BYTES:
            self.flush()

    def write_text(self, text: str) -> None:
        self.write(text.encode())

    def flush(self) -> None:
        if self.buffer:
            self.member.write(self.buffer)
            self.sha256.update(self.buffer)
            self.size += len(self.buffer)
            self.buffer.clear()


def csv_cell(value):
    if value is None:
        return ""
    if isinstance(value, str):
        return formula_safe(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dt.datetime, dt.date)):
        return value.isoformat()
    if isinstance(value, (dict, list)):
        return formula_safe(json.dumps(value, ensure_ascii=False, sort_keys=True))
    return value


def _json_default(value):
    if isinstance(value, Decimal):
        return str(value)  # exact: money is never turned into a float
    if isinstance(value, (dt.datetime, dt.date)):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


class ExportArchive:
    """Streams data types into a ZIP written to `raw` (any binary file-like object)."""

    def __init__(self, raw, *, fmt: str, progress: Progress, workdir: str):
        self.sink = _HashingSink(raw)
        self.zip = zipfile.ZipFile(self.sink, "w", **COMPRESSION)
        self.fmt = fmt
        self.progress = progress
        self.workdir = workdir
        self.files: list[FileResult] = []

    # -- one data type ---------------------------------------------------------------------

    def add_rows(self, data_type: str, header: list[str], rows: Iterable[tuple]) -> FileResult:
        name = f"{data_type}.{self.fmt}"
        if self.fmt == "xlsx":
            return self._add_xlsx(data_type, name, header, rows)
        with self.zip.open(name, "w", force_zip64=True) as member:
            entry = _Entry(member)
            if self.fmt == "csv":
                count = self._write_csv(entry, header, rows)
            else:
                count = self._write_json(entry, header, rows)
            entry.flush()
        return self._done(data_type, name, count, entry)

    def add_copy(
        self, data_type: str, header: list[str], cursor, sql: str, params: tuple
    ) -> FileResult:
        """CSV straight from PostgreSQL: COPY sends one row per message, which is counted and
        appended to a 1 MB buffer; nothing else touches the row in Python."""
        name = f"{data_type}.csv"
        count = 0
        with self.zip.open(name, "w", force_zip64=True) as member:
            entry = _Entry(member)
            self._write_csv_header(entry, header)
            buffer = entry.buffer
            since = 0
            with cursor.copy(f"COPY ({sql}) TO STDOUT (FORMAT csv)", params) as copy:
                for data in copy:
                    buffer += data
                    count += 1
                    if len(buffer) >= FLUSH_BYTES:
                        entry.flush()
                        self.progress(count - since)
                        since = count
            entry.flush()
            self.progress(count - since)
        return self._done(data_type, name, count, entry)

    def _write_csv_header(self, entry: _Entry, header: list[str]) -> None:
        csv.writer(_TextAdapter(entry)).writerow(header)

    def _write_csv(self, entry: _Entry, header, rows) -> int:
        writer = csv.writer(_TextAdapter(entry))
        writer.writerow(header)
        count = 0
        for row in rows:
            writer.writerow([csv_cell(v) for v in row])
            count += 1
            if count % PROGRESS_EVERY_ROWS == 0:
                self.progress(PROGRESS_EVERY_ROWS)
        self.progress(count % PROGRESS_EVERY_ROWS)
        return count

    def _write_json(self, entry: _Entry, header, rows) -> int:
        """A JSON array of objects, one per line, written as the rows arrive."""
        entry.write_text("[")
        count = 0
        for row in rows:
            text = json.dumps(
                dict(zip(header, row, strict=True)), default=_json_default, ensure_ascii=False
            )
            entry.write_text(("\n" if count == 0 else ",\n") + text)
            count += 1
            if count % PROGRESS_EVERY_ROWS == 0:
                self.progress(PROGRESS_EVERY_ROWS)
        entry.write_text("\n]\n" if count else "]\n")
        self.progress(count % PROGRESS_EVERY_ROWS)
        return count

    def _add_xlsx(self, data_type: str, name: str, header, rows) -> FileResult:
        """xlsxwriter's constant_memory mode flushes each row to a temp file; the finished
        workbook is then copied into the archive in slices."""
        path = os.path.join(self.workdir, name)
        workbook = xlsxwriter.Workbook(
            path,
            {
                "constant_memory": True,
                "tmpdir": self.workdir,
                "remove_timezone": True,
                "strings_to_formulas": False,
                "strings_to_urls": False,
                "strings_to_numbers": False,
            },
        )
        date_format = workbook.add_format({"num_format": "yyyy-mm-dd"})
        time_format = workbook.add_format({"num_format": "yyyy-mm-dd hh:mm:ss"})
        bold = workbook.add_format({"bold": True})
        sheets = 0
        sheet = None
        row_index = XLSX_MAX_ROWS
        count = 0
        for row in rows:
            if row_index >= XLSX_MAX_ROWS:
                sheets += 1
                sheet = workbook.add_worksheet(
                    data_type[:25] if sheets == 1 else f"{data_type[:25]} {sheets}"
                )
                sheet.write_row(0, 0, header, bold)
                row_index = 1
            for col, value in enumerate(row):
                _write_xlsx_cell(sheet, row_index, col, value, date_format, time_format)
            row_index += 1
            count += 1
            if count % PROGRESS_EVERY_ROWS == 0:
                self.progress(PROGRESS_EVERY_ROWS)
        if sheet is None:
            workbook.add_worksheet(data_type[:25]).write_row(0, 0, header, bold)
        workbook.close()
        self.progress(count % PROGRESS_EVERY_ROWS)
        with self.zip.open(name, "w", force_zip64=True) as member, open(path, "rb") as source:
            entry = _Entry(member)
            while chunk := source.read(FLUSH_BYTES):
                entry.write(chunk)
            entry.flush()
        os.remove(path)
        return self._done(data_type, name, count, entry)

    def _done(self, data_type, name, count, entry) -> FileResult:
        result = FileResult(
            data_type=data_type,
            name=name,
            rows=count,
            bytes=entry.size,
            sha256=entry.sha256.hexdigest(),
        )
        self.files.append(result)
        return result

    # -- the archive -----------------------------------------------------------------------

    def abort(self) -> None:
        """Close the archive after a failure without writing anything more."""
        self.sink.discarding = True
        self.zip.close()

    def finish(self, manifest: dict) -> tuple[int, str]:
        """Write manifest.json last and close; returns (archive size, archive SHA-256)."""
        manifest = {
            **manifest,
            "files": [
                {
                    "name": f.name,
                    "data_type": f.data_type,
                    "rows": f.rows,
                    "bytes": f.bytes,
                    "sha256": f.sha256,
                }
                for f in self.files
            ],
        }
        self.zip.writestr("manifest.json", json.dumps(manifest, indent=2, default=_json_default))
        self.zip.close()
        self.sink.flush()
        return self.sink.size, self.sink.sha256.hexdigest()


def _write_xlsx_cell(sheet, row, col, value, date_format, time_format):
    if value is None:
        return
    if isinstance(value, bool):
        sheet.write_boolean(row, col, value)
    elif isinstance(value, (int, float, Decimal)):
        sheet.write_number(row, col, float(value))
    elif isinstance(value, dt.datetime):
        sheet.write_datetime(row, col, value.astimezone(dt.UTC), time_format)
    elif isinstance(value, dt.date):
        sheet.write_datetime(row, col, value, date_format)
    elif isinstance(value, (dict, list)):
        sheet.write_string(
            row, col, formula_safe(json.dumps(value, ensure_ascii=False, sort_keys=True))
        )
    else:
        sheet.write_string(row, col, formula_safe(str(value)))


class _TextAdapter:
    """What csv.writer writes to: encodes each row into the entry's buffer.

    The writer keeps its default "\r\n" terminator because it quotes a field only when it
    contains a terminator character: with "\n" alone a bare "\r" would go out unquoted and
    break the file. Rows are then ended with "\n", as PostgreSQL's COPY ends them."""

    def __init__(self, entry: _Entry):
        self.entry = entry

    def write(self, line: str) -> None:
        self.entry.write_text(line[:-2] + "\n")


def make_workdir() -> tempfile.TemporaryDirectory:
    """Scratch space for formats that need a file of their own (XLSX)."""
    return tempfile.TemporaryDirectory(prefix="export-")
