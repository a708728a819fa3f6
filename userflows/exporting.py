"""Writes an export ZIP in constant memory: one file per data type and `manifest.json`,
with the archive's SHA-256 and size and every file's row count and checksum computed while
the bytes stream out. The job (services/exports.py) decides where the bytes go.

Rows come either from a streaming iterator (any database, any format) or, for CSV on
PostgreSQL, straight from `COPY (SELECT …) TO STDOUT (FORMAT csv)` of a query whose text
columns are already formula-safe.

CSV and JSON give one file per data type; XLSX gives one workbook, `export.xlsx`, with a sheet
per data type. Every archive member is dated with the export's time (UTC) and readable
(rw-r--r--). Decimals keep their places: money is written with two, ratios with the four the
reports state; in XLSX they are numbers with a number format of as many places.
"""

import csv
import datetime as dt
import hashlib
import json
import os
import queue
import tempfile
import threading
import zipfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from decimal import Decimal

import xlsxwriter

from opsplatform.exports import formula_safe

FLUSH_BYTES = 1 << 20  # write to the archive in 1 MB slices
PROGRESS_EVERY_ROWS = 2000
CHUNKS_PER_FETCH = 20  # csv_chunks rows (one per campaign) fetched at a time
XLSX_MAX_ROWS = 1_048_576  # Excel's limit per sheet, header row included
# Level 1 deflate: CSV of numbers still shrinks ~4x, at a fraction of level 6's time.
COMPRESSLEVEL = 1
COMPRESSION = {"compression": zipfile.ZIP_DEFLATED, "compresslevel": COMPRESSLEVEL}
FILE_MODE = 0o100644  # a regular file, rw-r--r--: unzip tools keep it readable
WORKBOOK_NAME = "export.xlsx"

Progress = Callable[[int], None]  # called with the number of rows written since the last call


@dataclass(frozen=True)
class FileResult:
    """One data type's part of the archive: its own file, or (XLSX) a sheet of the workbook."""

    data_type: str
    name: str
    rows: int
    bytes: int
    sha256: str
    sheet: str = ""


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
    """A buffered writer into one archive member, hashing the uncompressed content.

    With `background=True` each full buffer is compressed, checksummed and written by a
    helper thread while the caller reads the next chunk from the database (zlib, crc32 and
    sha256 release the GIL on large buffers, the database read waits on its socket); `close`
    waits for it and re-raises its error. At most QUEUED_SLICES buffers wait, so memory
    stays bounded."""

    QUEUED_SLICES = 4

    def __init__(self, member, *, background: bool = False):
        self.member = member
        self.buffer = bytearray()
        self.sha256 = hashlib.sha256()
        self.size = 0
        self.queue = None
        self.thread = None
        self.error = None
        if background:
            self.queue = queue.Queue(maxsize=self.QUEUED_SLICES)
            self.thread = threading.Thread(target=self._drain, name="export-writer", daemon=True)
            self.thread.start()

    def write(self, data) -> None:
        self.buffer += data
        if len(self.buffer) >= FLUSH_BYTES:
            self.flush()

    def write_text(self, text: str) -> None:
        self.write(text.encode())

    def _store(self, data) -> None:
        self.member.write(data)
        self.sha256.update(data)
        self.size += len(data)

    def _drain(self) -> None:
        while (data := self.queue.get()) is not None:
            if self.error is None:
                try:
                    self._store(data)
                except BaseException as exc:  # handed to the caller in close()
                    self.error = exc

    def flush(self) -> None:
        if not self.buffer:
            return
        if self.queue is None:
            self._store(self.buffer)
            self.buffer.clear()
            return
        if self.error is not None:
            raise self.error
        self.queue.put(bytes(self.buffer))
        self.buffer.clear()

    def close(self) -> None:
        """Flush and, in the background mode, wait for the writer."""
        self.flush()
        if self.thread is not None:
            self.queue.put(None)
            self.thread.join()
            self.thread = None
            if self.error is not None:
                raise self.error


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
    """Streams data types into a ZIP written to `raw` (any binary file-like object);
    `generated_at` dates every member."""

    def __init__(
        self, raw, *, fmt: str, progress: Progress, workdir: str, generated_at: dt.datetime
    ):
        self.sink = _HashingSink(raw)
        self.zip = zipfile.ZipFile(self.sink, "w", **COMPRESSION)
        self.fmt = fmt
        self.progress = progress
        self.workdir = workdir
        utc = generated_at.astimezone(dt.UTC)
        # ZIP dates have no zone and start in 1980.
        self.date_time = max(utc.timetuple()[:6], (1980, 1, 1, 0, 0, 0))
        self.files: list[FileResult] = []
        self.members: list[dict] = []
        self.workbook = None

    def member_info(self, name: str) -> zipfile.ZipInfo:
        info = zipfile.ZipInfo(name, date_time=self.date_time)
        info.compress_type = zipfile.ZIP_DEFLATED
        info._compresslevel = COMPRESSLEVEL  # 3.11's name; 3.13 keeps it as an alias
        info.external_attr = FILE_MODE << 16
        return info

    def _open(self, name: str):
        return self.zip.open(self.member_info(name), "w", force_zip64=True)

    # -- one data type ---------------------------------------------------------------------

    def add_rows(self, data_type: str, header: list[str], rows: Iterable[tuple]) -> FileResult:
        name = f"{data_type}.{self.fmt}"
        if self.fmt == "xlsx":
            return self._add_sheet(data_type, header, rows)
        with self._open(name) as member:
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
        with self._open(name) as member:
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

    def add_csv_chunks(
        self, data_type: str, header: list[str], cursor, sql: str, params: tuple
    ) -> FileResult:
        """CSV made by PostgreSQL in chunks of many rows (`ExportType.csv_chunks`), read
        through a server-side cursor (constant memory) while a helper thread compresses the
        previous megabyte."""
        name = f"{data_type}.csv"
        count = 0
        with self._open(name) as member:
            entry = _Entry(member, background=True)
            try:
                self._write_csv_header(entry, header)
                cursor.execute(sql, params)
                while batch := cursor.fetchmany(CHUNKS_PER_FETCH):
                    rows = 0
                    for chunk_rows, text in batch:
                        if chunk_rows:
                            entry.write(text.encode())
                            rows += chunk_rows
                    count += rows
                    self.progress(rows)
            finally:
                entry.close()
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

    def _add_sheet(self, data_type: str, header, rows) -> FileResult:
        """One sheet (more past Excel's 1,048,576 rows) of the one workbook. xlsxwriter's
        constant_memory mode flushes each row to a temp file; `finish` copies the finished
        workbook into the archive in slices."""
        if self.workbook is None:
            self.workbook = _Workbook(os.path.join(self.workdir, WORKBOOK_NAME), self.workdir)
        book = self.workbook
        base = data_type[:25]
        sheets = 0
        sheet = None
        row_index = XLSX_MAX_ROWS
        count = 0
        for row in rows:
            if row_index >= XLSX_MAX_ROWS:
                sheets += 1
                sheet = book.add_sheet(base if sheets == 1 else f"{base} {sheets}", header)
                row_index = 1
            for col, value in enumerate(row):
                book.write_cell(sheet, row_index, col, value)
            row_index += 1
            count += 1
            if count % PROGRESS_EVERY_ROWS == 0:
                self.progress(PROGRESS_EVERY_ROWS)
        if sheet is None:
            book.add_sheet(base, header)
        self.progress(count % PROGRESS_EVERY_ROWS)
        result = FileResult(
            data_type=data_type, name=WORKBOOK_NAME, rows=count, bytes=0, sha256="", sheet=base
        )
        self.files.append(result)
        return result

    def _close_workbook(self) -> None:
        path = self.workbook.close()
        with self._open(WORKBOOK_NAME) as member, open(path, "rb") as source:
            entry = _Entry(member)
            while chunk := source.read(FLUSH_BYTES):
                entry.write(chunk)
            entry.flush()
        os.remove(path)
        self.members.append(
            {
                "name": WORKBOOK_NAME,
                "bytes": entry.size,
                "sha256": entry.sha256.hexdigest(),
                "sheets": [
                    {"data_type": f.data_type, "sheet": f.sheet, "rows": f.rows} for f in self.files
                ],
            }
        )

    def _done(self, data_type, name, count, entry) -> FileResult:
        result = FileResult(
            data_type=data_type,
            name=name,
            rows=count,
            bytes=entry.size,
            sha256=entry.sha256.hexdigest(),
        )
        self.files.append(result)
        self.members.append(
            {
                "name": name,
                "data_type": data_type,
                "rows": count,
                "bytes": result.bytes,
                "sha256": result.sha256,
            }
        )
        return result

    # -- the archive -----------------------------------------------------------------------

    def abort(self) -> None:
        """Close the archive after a failure without writing anything more."""
        self.sink.discarding = True
        self.zip.close()

    def finish(self, manifest: dict) -> tuple[int, str]:
        """Write manifest.json last and close; returns (archive size, archive SHA-256)."""
        if self.workbook is not None:
            self._close_workbook()
        manifest = {**manifest, "files": self.members}
        self.zip.writestr(
            self.member_info("manifest.json"),
            json.dumps(manifest, indent=2, default=_json_default),
        )
        self.zip.close()
        self.sink.flush()
        return self.sink.size, self.sink.sha256.hexdigest()


class _Workbook:
    """The export's one XLSX workbook. Numbers are numbers: a Decimal is written with a number
    format of its own places (money "#,##0.00", ratios "0.0000"), so the cell shows the exact
    figure of the CSV; dates and times carry date formats; text is formula-safe."""

    def __init__(self, path: str, workdir: str):
        self.path = path
        self.book = xlsxwriter.Workbook(
            path,
            {
                "constant_memory": True,
                "tmpdir": workdir,
                "remove_timezone": True,
                "strings_to_formulas": False,
                "strings_to_urls": False,
                "strings_to_numbers": False,
            },
        )
        self.date_format = self.book.add_format({"num_format": "yyyy-mm-dd"})
        self.time_format = self.book.add_format({"num_format": "yyyy-mm-dd hh:mm:ss"})
        self.bold = self.book.add_format({"bold": True})
        self.decimal_formats: dict[int, object] = {}

    def add_sheet(self, name: str, header):
        sheet = self.book.add_worksheet(name)
        sheet.write_row(0, 0, header, self.bold)
        return sheet

    def decimal_format(self, places: int):
        fmt = self.decimal_formats.get(places)
        if fmt is None:
            pattern = "#,##0" + ("." + "0" * places if places > 0 else "")
            fmt = self.decimal_formats[places] = self.book.add_format({"num_format": pattern})
        return fmt

    def write_cell(self, sheet, row, col, value) -> None:
        if value is None:
            return
        if isinstance(value, bool):
            sheet.write_boolean(row, col, value)
        elif isinstance(value, Decimal):
            places = max(-value.as_tuple().exponent, 0) if value.is_finite() else 0
            sheet.write_number(row, col, value, self.decimal_format(places))
        elif isinstance(value, (int, float)):
            sheet.write_number(row, col, value)
        elif isinstance(value, dt.datetime):
            sheet.write_datetime(row, col, value.astimezone(dt.UTC), self.time_format)
        elif isinstance(value, dt.date):
            sheet.write_datetime(row, col, value, self.date_format)
        elif isinstance(value, (dict, list)):
            sheet.write_string(
                row, col, formula_safe(json.dumps(value, ensure_ascii=False, sort_keys=True))
            )
        else:
            sheet.write_string(row, col, formula_safe(str(value)))

    def close(self) -> str:
        self.book.close()
        return self.path


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
