import datetime as dt
import io
import zipfile

import pytest
from django.utils import timezone

from tests.factories import CampaignFactory, CampaignMetricFactory
from userflows.services import exports


@pytest.fixture
def run_export(django_capture_on_commit_callbacks):
    """Create an export through the service and run the queued job (Q runs in sync mode)."""

    def run(account, **kwargs):
        kwargs.setdefault("format", "csv")
        kwargs.setdefault("data_types", ["campaigns"])
        kwargs.setdefault("date_from", timezone.localdate() - dt.timedelta(days=90))
        kwargs.setdefault("date_to", timezone.localdate())
        with django_capture_on_commit_callbacks(execute=True):
            export = exports.create_export_request(
                account=account, requested_by=account.user, **kwargs
            )
        export.refresh_from_db()
        return export

    return run


def xlsx_sheet_xml(workbook: bytes, sheet_name: str) -> bytes:
    """The XML of the sheet called `sheet_name` in an XLSX workbook (found through
    xl/workbook.xml and its relationships, as a spreadsheet program finds it)."""
    from xml.etree import ElementTree

    book = zipfile.ZipFile(io.BytesIO(workbook))
    ns = {
        "m": "http://schemas.openxmlformats.org/spreadsheetml/2006/main",
        "r": "http://schemas.openxmlformats.org/officeDocument/2006/relationships",
        "p": "http://schemas.openxmlformats.org/package/2006/relationships",
    }
    sheets = ElementTree.fromstring(book.read("xl/workbook.xml")).find("m:sheets", ns)
    rel_id = next(s.get(f"{{{ns['r']}}}id") for s in sheets if s.get("name") == sheet_name)
    rels = ElementTree.fromstring(book.read("xl/_rels/workbook.xml.rels"))
    target = next(r.get("Target") for r in rels if r.get("Id") == rel_id)
    return book.read(f"xl/{target}")


def xlsx_cells(workbook: bytes, sheet_name: str) -> list[list[tuple[str, str]]]:
    """Rows of (value text, number format code) from a sheet; shared strings are resolved
    and numbers keep the text the file stores."""
    from xml.etree import ElementTree

    book = zipfile.ZipFile(io.BytesIO(workbook))
    m = "{http://schemas.openxmlformats.org/spreadsheetml/2006/main}"
    strings = []
    if "xl/sharedStrings.xml" in book.namelist():
        for si in ElementTree.fromstring(book.read("xl/sharedStrings.xml")):
            strings.append("".join(t.text or "" for t in si.iter(f"{m}t")))
    styles = ElementTree.fromstring(book.read("xl/styles.xml"))
    codes = {"0": "General", "14": "m/d/yyyy"}
    num_fmts = styles.find(f"{m}numFmts")
    for fmt in num_fmts if num_fmts is not None else []:
        codes[fmt.get("numFmtId")] = fmt.get("formatCode")
    xfs = [xf.get("numFmtId", "0") for xf in styles.find(f"{m}cellXfs")]
    sheet = ElementTree.fromstring(xlsx_sheet_xml(workbook, sheet_name))
    rows = []
    for row in sheet.iter(f"{m}row"):
        cells = []
        for cell in row.iter(f"{m}c"):
            raw = cell.findtext(f"{m}v") or ""
            if cell.get("t") == "s":
                text = strings[int(raw)]
            elif cell.get("t") == "inlineStr":
                text = "".join(t.text or "" for t in cell.iter(f"{m}t"))
            else:
                text = raw
            code = codes.get(xfs[int(cell.get("s", "0"))], "General")
            cells.append((text, code))
        rows.append(cells)
    return rows


def read_zip(export) -> zipfile.ZipFile:
    with export.file.open("rb") as handle:
        return zipfile.ZipFile(io.BytesIO(handle.read()))


@pytest.fixture
def campaign_with_metrics(account):
    """A campaign of `account` with 10 days of metrics starting 20 days ago."""
    start = timezone.localdate() - dt.timedelta(days=20)
    campaign = CampaignFactory(
        account=account, starts_on=start, ends_on=start + dt.timedelta(days=29)
    )
    for i in range(10):
        CampaignMetricFactory(
            campaign=campaign,
            date=start + dt.timedelta(days=i),
            impressions=1000 + i,
            clicks=10 + i,
        )
    return campaign
