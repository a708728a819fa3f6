"""Exported numbers are exact: money with two decimals, ROI and ROAS in Decimal rounded to
four places (halves away from zero), the same figures in CSV, JSON and XLSX; the XLSX is one
workbook with a sheet per data type; ZIP members are dated and readable."""

import csv
import datetime as dt
import io
import json
import stat
from decimal import ROUND_HALF_UP, Decimal

import pytest
from django.utils import timezone

from tests.factories import CampaignFactory, CampaignMetricFactory
from tests.userflows.conftest import read_zip, xlsx_cells
from userflows.models import ExportRequest

TODAY = timezone.localdate()
DAY1, DAY2, DAY3 = (TODAY - dt.timedelta(days=d) for d in (3, 2, 1))

# Float sums of these show noise (0.1 + 0.2 + 1785.33 = 1785.6299999999999 as floats).
NOISY = [(DAY1, "0.10", "0.07"), (DAY2, "0.20", "0.03"), (DAY3, "1785.33", "1000.00")]
# ROAS = 1 / 20000 = 0.00005 exactly: a half, rounded up to 0.0001; ROI = -0.99995 → -1.0000.
HALF = [(DAY3, "1.00", "20000.00")]

# Written out by hand (see the comments above and the test's own recomputation).
EXPECTED = {
    "noisy": {"revenue": "1785.63", "spend": "1000.10", "roi": "0.7855", "roas": "1.7855"},
    "half": {"revenue": "1.00", "spend": "20000.00", "roi": "-1.0000", "roas": "0.0001"},
    "idle": {"revenue": "0.00", "spend": "0.00", "roi": None, "roas": None},
}


@pytest.fixture
def campaigns(account):
    made = {}
    for key, days in (("noisy", NOISY), ("half", HALF), ("idle", [])):
        campaign = CampaignFactory(
            account=account, name=f"Campaign {key}", starts_on=DAY1, ends_on=TODAY
        )
        for day, revenue, spend in days:
            CampaignMetricFactory(
                campaign=campaign,
                date=day,
                revenue=Decimal(revenue),
                spend=Decimal(spend),
                impressions=1000,
                clicks=10,
                conversions=1,
            )
        made[campaign.pk] = key
    return made


def recompute(key) -> dict:
    """The reference: the metric rows summed and divided in Decimal."""
    days = {"noisy": NOISY, "half": HALF, "idle": []}[key]
    revenue = sum((Decimal(r) for _, r, _ in days), Decimal("0.00"))
    spend = sum((Decimal(s) for _, _, s in days), Decimal("0.00"))
    step = Decimal("0.0001")

    def q(value):
        return str(value.quantize(step, rounding=ROUND_HALF_UP))

    return {
        "revenue": str(revenue),
        "spend": str(spend),
        "roi": q((revenue - spend) / spend) if spend else None,
        "roas": q(revenue / spend) if spend else None,
    }


def test_the_hand_written_figures_are_the_decimal_recomputation():
    for key, figures in EXPECTED.items():
        assert recompute(key) == figures


def run(run_export, account, fmt, types=("reports",)):
    export = run_export(account, format=fmt, data_types=list(types), date_from=DAY1, date_to=TODAY)
    assert export.status == ExportRequest.Status.COMPLETED, export.error
    return read_zip(export)


def test_csv_reports_carry_exact_money_and_ratios(account, campaigns, run_export):
    archive = run(run_export, account, "csv")

    rows = list(csv.DictReader(io.StringIO(archive.read("reports.csv").decode())))
    got = {
        campaigns[int(r["campaign_id"])]: {k: r[k] or None for k in EXPECTED["noisy"]} for r in rows
    }
    assert got == EXPECTED


def test_json_reports_carry_exact_money_and_ratios_as_strings(account, campaigns, run_export):
    archive = run(run_export, account, "json")

    rows = json.loads(archive.read("reports.json"))
    got = {campaigns[r["campaign_id"]]: {k: r[k] for k in EXPECTED["noisy"]} for r in rows}
    assert got == EXPECTED


def test_xlsx_reports_are_numbers_with_number_formats(account, campaigns, run_export):
    archive = run(run_export, account, "xlsx")

    header, *rows = xlsx_cells(archive.read("export.xlsx"), "reports")
    columns = [text for text, _ in header]
    got = {}
    for row in rows:
        cells = dict(zip(columns, row, strict=False))
        key = campaigns[int(cells["campaign_id"][0])]
        got[key] = {
            name: (Decimal(cells[name][0]), cells[name][1]) if name in cells else None
            for name in EXPECTED["noisy"]
        }
    for key, figures in EXPECTED.items():
        for name in ("revenue", "spend"):
            value, code = got[key][name]
            assert value == Decimal(figures[name]) and code == "#,##0.00"
        for name in ("roi", "roas"):
            if figures[name] is None:
                assert got[key][name] is None  # an empty cell, not 0
            else:
                value, code = got[key][name]
                assert value == Decimal(figures[name]) and code == "#,##0.0000"


@pytest.mark.parametrize("fmt", ["csv", "json", "xlsx"])
def test_daily_analytics_money_has_two_decimals_in_every_format(
    account, campaigns, run_export, fmt
):
    archive = run(run_export, account, fmt, types=("analytics",))

    if fmt == "csv":
        rows = list(csv.DictReader(io.StringIO(archive.read("analytics.csv").decode())))
        got = sorted((r["revenue"], r["spend"]) for r in rows)
    elif fmt == "json":
        rows = json.loads(archive.read("analytics.json"))
        got = sorted((r["revenue"], r["spend"]) for r in rows)
    else:
        header, *rows = xlsx_cells(archive.read("export.xlsx"), "analytics")
        names = [t for t, _ in header]
        got = []
        for row in rows:
            cells = dict(zip(names, row, strict=True))
            assert cells["revenue"][1] == cells["spend"][1] == "#,##0.00"
            got.append((f"{Decimal(cells['revenue'][0]):.2f}", f"{Decimal(cells['spend'][0]):.2f}"))
        got.sort()
    assert got == sorted(
        [("0.10", "0.07"), ("0.20", "0.03"), ("1785.33", "1000.00"), ("1.00", "20000.00")]
    )


def test_xlsx_is_one_workbook_with_a_sheet_per_data_type(account, campaigns, run_export):
    archive = run(run_export, account, "xlsx", types=("campaigns", "analytics", "reports"))

    assert sorted(archive.namelist()) == ["export.xlsx", "manifest.json"]
    workbook = archive.read("export.xlsx")
    assert len(xlsx_cells(workbook, "campaigns")) == 1 + 3
    assert len(xlsx_cells(workbook, "analytics")) == 1 + 4
    assert len(xlsx_cells(workbook, "reports")) == 1 + 3
    manifest = json.loads(archive.read("manifest.json"))
    (entry,) = manifest["files"]
    assert entry["name"] == "export.xlsx"
    assert entry["sheets"] == [
        {"data_type": "campaigns", "sheet": "campaigns", "rows": 3},
        {"data_type": "analytics", "sheet": "analytics", "rows": 4},
        {"data_type": "reports", "sheet": "reports", "rows": 3},
    ]
    assert manifest["counts"] == {"campaigns": 3, "analytics": 4, "reports": 3}


@pytest.mark.parametrize("fmt", ["csv", "json", "xlsx"])
def test_zip_members_are_dated_with_the_export_and_readable(account, campaigns, run_export, fmt):
    archive = run(run_export, account, fmt, types=("campaigns", "reports"))

    generated = dt.datetime.fromisoformat(json.loads(archive.read("manifest.json"))["generated_at"])
    generated = generated.astimezone(dt.UTC).replace(tzinfo=None)
    for info in archive.infolist():
        stamped = dt.datetime(*info.date_time)
        # ZIP keeps even seconds only.
        assert dt.timedelta(0) <= generated - stamped < dt.timedelta(seconds=2), info.filename
        mode = info.external_attr >> 16
        assert stat.S_ISREG(mode) and stat.S_IMODE(mode) == 0o644, info.filename
