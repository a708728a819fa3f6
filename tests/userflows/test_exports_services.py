import csv
import datetime as dt
import io
import json
import os
import re
from unittest import mock
from urllib.parse import parse_qs, urlparse

import pytest
from django.core.files.storage import default_storage
from django.db import connection
from django.utils import timezone

from opsplatform.errors import Conflict, InvalidInput, NotFound, RateLimited
from opsplatform.exports import ExportType
from opsplatform.models import Campaign, CampaignMetric, UsageEvent
from opsplatform.privacy import EXPORT_TYPES as CORE_TYPES
from opsplatform.privacy import day_bounds
from tests.factories import CampaignFactory, CampaignMetricFactory, staff_in
from tests.userflows.conftest import read_zip, xlsx_sheet_xml
from tests.userflows.factories import ExportRequestFactory, InvoiceFactory
from userflows import exporting
from userflows.models import ExportRequest, Invoice
from userflows.services import exports

TODAY = timezone.localdate()


def token_of(url: str) -> str:
    return parse_qs(urlparse(url).query)["token"][0]


def files_under(root) -> list[str]:
    found = []
    for folder, _, names in os.walk(root):
        found += [os.path.relpath(os.path.join(folder, n), root) for n in names]
    return sorted(found)


# --- requests ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"format": "pdf"}, "format"),
        ({"data_types": []}, "data_types"),
        ({"data_types": ["campaigns", "passwords"]}, "data_types"),
        ({"data_types": ["campaigns", "campaigns"]}, "data_types"),
        ({"date_from": TODAY, "date_to": TODAY - dt.timedelta(days=1)}, "date_to"),
        ({"date_from": dt.date(1999, 12, 31)}, "date_from"),
        ({"date_to": TODAY + dt.timedelta(days=400)}, "date_to"),
        ({"date_from": TODAY - dt.timedelta(days=5000)}, "date_from"),
    ],
)
def test_invalid_requests_are_refused_and_nothing_is_stored(account, changes, field):
    request = {
        "format": "csv",
        "data_types": ["campaigns"],
        "date_from": TODAY - dt.timedelta(days=30),
        "date_to": TODAY,
        **changes,
    }

    with pytest.raises(InvalidInput) as caught:
        exports.create_export_request(account=account, requested_by=account.user, **request)

    assert caught.value.field == field
    assert not ExportRequest.objects.exists()


def test_a_second_active_export_is_a_conflict(account, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=False):
        first = exports.create_export_request(
            account=account,
            requested_by=account.user,
            format="csv",
            data_types=["campaigns"],
            date_from=TODAY,
            date_to=TODAY,
        )

    with pytest.raises(Conflict) as caught:
        exports.create_export_request(
            account=account,
            requested_by=account.user,
            format="json",
            data_types=["account"],
            date_from=TODAY,
            date_to=TODAY,
        )

    assert caught.value.code == "export_in_progress"
    assert list(ExportRequest.objects.values_list("id", flat=True)) == [first.pk]


def test_the_daily_limit_counts_the_last_24_hours(account, settings):
    settings.EXPORT_DAILY_LIMIT = 2
    old = ExportRequestFactory(account=account)
    ExportRequest.objects.filter(pk=old.pk).update(
        created_at=timezone.now() - dt.timedelta(hours=25)
    )
    ExportRequestFactory.create_batch(2, account=account)

    with pytest.raises(RateLimited) as caught:
        exports.create_export_request(
            account=account,
            requested_by=account.user,
            format="csv",
            data_types=["campaigns"],
            date_from=TODAY,
            date_to=TODAY,
        )

    assert caught.value.code == "export_limit"
    assert "at most 2 exports" in caught.value.detail
    assert ExportRequest.objects.filter(account=account).count() == 3


def test_other_accounts_do_not_count_toward_the_limit(account, other_account, settings, run_export):
    settings.EXPORT_DAILY_LIMIT = 1
    ExportRequestFactory(account=other_account)

    export = run_export(account)

    assert export.status == ExportRequest.Status.COMPLETED


# --- row counts -------------------------------------------------------------------------------


@pytest.fixture
def dataset(account, other_account):
    """Two campaigns of `account` (one long, one short), metrics on known days, usage events
    at known times, invoices; and the same for another account, which must never leak."""
    start = TODAY - dt.timedelta(days=60)
    for owner in (account, other_account):
        long_run = CampaignFactory(
            account=owner, starts_on=start, ends_on=start + dt.timedelta(days=59)
        )
        short_run = CampaignFactory(
            account=owner,
            starts_on=start + dt.timedelta(days=40),
            ends_on=start + dt.timedelta(days=44),
        )
        CampaignMetric.objects.bulk_create(
            [
                CampaignMetric(
                    campaign=long_run,
                    date=start + dt.timedelta(days=i),
                    impressions=100 + i,
                    clicks=i,
                    conversions=i // 5,
                    revenue=i * 3,
                    spend=i * 2,
                )
                for i in range(60)
            ]
            + [
                CampaignMetric(
                    campaign=short_run,
                    date=start + dt.timedelta(days=40 + i),
                    impressions=50,
                    clicks=5,
                    conversions=1,
                    revenue=10,
                    spend=4,
                )
                for i in range(5)
            ]
        )
        UsageEvent.objects.bulk_create(
            [
                UsageEvent(
                    account=owner,
                    type="login",
                    idempotency_key=f"k{i}",
                    occurred_at=dt.datetime.combine(
                        start + dt.timedelta(days=i * 3), dt.time(23, 30), tzinfo=dt.UTC
                    ),
                )
                for i in range(20)
            ]
        )
        InvoiceFactory(account=owner, period_start=timezone.now() - dt.timedelta(days=45))
    return start


def expected_counts(account, date_from, date_to) -> dict[str, int]:
    start, end = day_bounds(date_from, date_to)
    campaigns = Campaign.objects.filter(
        account=account, starts_on__lte=date_to, ends_on__gte=date_from
    ).count()
    return {
        "campaigns": campaigns,
        "analytics": CampaignMetric.objects.filter(
            campaign__account=account, date__range=(date_from, date_to)
        ).count(),
        "reports": campaigns,
        "account": 1,
        "usage_events": UsageEvent.objects.filter(
            account=account, occurred_at__gte=start, occurred_at__lt=end
        ).count(),
        "invoices": Invoice.objects.filter(
            account=account, period_start__lt=end, period_end__gt=start
        ).count(),
    }


ALL_CORE = ["campaigns", "analytics", "reports", "account", "usage_events", "invoices"]


@pytest.mark.parametrize("fmt", ["csv", "json", "xlsx"])
@pytest.mark.parametrize(("offset_from", "offset_to"), [(0, 59), (10, 42), (41, 41), (70, 80)])
def test_row_counts_equal_the_database_for_every_type_and_range(
    account, dataset, run_export, fmt, offset_from, offset_to
):
    date_from = dataset + dt.timedelta(days=offset_from)
    date_to = dataset + dt.timedelta(days=offset_to)

    export = run_export(
        account, format=fmt, data_types=ALL_CORE, date_from=date_from, date_to=date_to
    )

    expected = expected_counts(account, date_from, date_to)
    assert export.status == ExportRequest.Status.COMPLETED, export.error
    assert export.row_counts == expected
    assert export.rows_done == export.rows_total == sum(expected.values())
    archive = read_zip(export)
    manifest = json.loads(archive.read("manifest.json"))
    assert manifest["counts"] == expected
    assert manifest["period"] == {"from": date_from.isoformat(), "to": date_to.isoformat()}
    for name, count in expected.items():
        if fmt == "csv":
            body = archive.read(f"{name}.csv")
            assert len(list(csv.reader(io.StringIO(body.decode())))) == count + 1
        elif fmt == "json":
            assert len(json.loads(archive.read(f"{name}.json"))) == count
        else:
            assert len(re.findall(rb"<row ", body_of_sheet(archive, name))) == count + 1


def body_of_sheet(archive, name) -> bytes:
    return xlsx_sheet_xml(archive.read("export.xlsx"), name)


def test_the_manifest_checksums_match_the_files(account, dataset, run_export):
    import hashlib

    export = run_export(account, data_types=ALL_CORE, date_from=dataset, date_to=TODAY)

    archive = read_zip(export)
    manifest = json.loads(archive.read("manifest.json"))
    assert [f["name"] for f in manifest["files"]] == [f"{t}.csv" for t in ALL_CORE]
    for entry in manifest["files"]:
        body = archive.read(entry["name"])
        assert entry["sha256"] == hashlib.sha256(body).hexdigest()
        assert entry["bytes"] == len(body)
    with export.file.open("rb") as handle:
        whole = handle.read()
    assert export.sha256 == hashlib.sha256(whole).hexdigest()
    assert export.size_bytes == len(whole)
    assert manifest["generated_at"] and manifest["export_id"] == export.pk


def test_reports_compute_roi_and_roas(account, run_export):
    campaign = CampaignFactory(
        account=account, starts_on=TODAY - dt.timedelta(days=5), ends_on=TODAY
    )
    CampaignMetricFactory(campaign=campaign, date=TODAY, revenue=600, spend=400)
    idle = CampaignFactory(account=account, starts_on=TODAY, ends_on=TODAY)

    export = run_export(
        account, data_types=["reports"], date_from=TODAY, date_to=TODAY, format="json"
    )

    rows = {r["campaign_id"]: r for r in json.loads(read_zip(export).read("reports.json"))}
    assert rows[campaign.pk]["roi"] == "0.5" or rows[campaign.pk]["roi"] == "0.5000"
    assert rows[campaign.pk]["roas"] in ("1.5", "1.5000")
    assert rows[idle.pk]["roi"] is None and rows[idle.pk]["spend"] in ("0", "0.00")


# --- content ----------------------------------------------------------------------------------

DANGEROUS = ['=HYPERLINK("http://x")', "+SUM(1)", "-2+3", "@cmd", "\tTAB", "\rCR"]


@pytest.mark.parametrize("fmt", ["csv", "xlsx"])
def test_spreadsheet_formulas_are_escaped(account, run_export, fmt):
    for name in DANGEROUS:
        CampaignFactory(account=account, name=name, starts_on=TODAY, ends_on=TODAY)

    export = run_export(
        account, format=fmt, data_types=["campaigns", "analytics"], date_from=TODAY, date_to=TODAY
    )

    archive = read_zip(export)
    if fmt == "csv":
        rows = list(csv.reader(io.StringIO(archive.read("campaigns.csv").decode(), newline="")))
        names = sorted(r[1] for r in rows[1:])
        assert names == sorted("'" + n for n in DANGEROUS)
    else:
        sheet = body_of_sheet(archive, "campaigns").decode()
        assert "<f>" not in sheet
        for name in ("'=HYPERLINK", "'+SUM(1)", "'-2+3", "'@cmd"):
            assert name.replace('"', "&quot;") in sheet.replace('"', "&quot;")


def test_json_keeps_values_as_they_are(account, run_export):
    CampaignFactory(
        account=account, name="=1+1", starts_on=TODAY, ends_on=TODAY, deal_value="1234.50"
    )

    export = run_export(account, format="json", date_from=TODAY, date_to=TODAY)

    (row,) = json.loads(read_zip(export).read("campaigns.json"))
    assert row["name"] == "=1+1"
    assert row["deal_value"] == "1234.50"


def test_an_export_over_an_empty_range_has_headers_and_zero_counts(account, run_export):
    export = run_export(
        account,
        data_types=["campaigns", "analytics", "usage_events"],
        date_from=dt.date(2001, 1, 1),
        date_to=dt.date(2001, 1, 31),
    )

    archive = read_zip(export)
    assert export.status == ExportRequest.Status.COMPLETED
    assert export.row_counts == {"campaigns": 0, "analytics": 0, "usage_events": 0}
    assert archive.read("analytics.csv").decode().splitlines() == [
        ",".join(CORE_TYPES["analytics"].header)
    ]


def test_an_empty_json_file_is_an_empty_array(account, run_export):
    export = run_export(
        account, format="json", date_from=dt.date(2001, 1, 1), date_to=dt.date(2001, 1, 2)
    )

    assert json.loads(read_zip(export).read("campaigns.json")) == []


def test_only_the_accounts_own_rows_are_exported(account, other_account, dataset, run_export):
    export = run_export(
        account,
        format="json",
        data_types=["analytics", "account"],
        date_from=dataset,
        date_to=TODAY,
    )

    archive = read_zip(export)
    campaign_ids = {r["campaign_id"] for r in json.loads(archive.read("analytics.json"))}
    assert campaign_ids == set(
        Campaign.objects.filter(account=account).values_list("id", flat=True)
    )
    (profile,) = json.loads(archive.read("account.json"))
    assert profile["email"] == account.user.email


# --- the job ----------------------------------------------------------------------------------


def test_running_the_job_twice_gives_one_file(account, dataset, run_export, settings):
    export = run_export(account, data_types=ALL_CORE, date_from=dataset, date_to=TODAY)
    first = (export.file.name, export.sha256)

    again = exports.process_export(export_id=export.pk)

    assert (again.file.name, again.sha256) == first
    assert files_under(settings.MEDIA_ROOT) == [first[0]]
    assert export.history.filter(status=ExportRequest.Status.COMPLETED).count() == 1


def test_a_failure_marks_the_export_failed_and_leaves_no_file(
    account, run_export, settings, monkeypatch
):
    CampaignFactory(account=account, starts_on=TODAY, ends_on=TODAY)

    def broken(account, date_from, date_to):
        yield (1, "first row")
        raise RuntimeError("database went away")

    monkeypatch.setitem(
        CORE_TYPES, "campaigns", ExportType("campaigns", "Campaigns", ("id", "name"), broken)
    )
    export = run_export(account, data_types=["account", "campaigns"])

    assert export.status == ExportRequest.Status.FAILED
    assert "unexpected error" in export.error and f"#{export.pk}" in export.error
    assert not export.file
    assert files_under(settings.MEDIA_ROOT) == []
    assert export.history.filter(status=ExportRequest.Status.FAILED).count() == 1


def test_a_storage_failure_says_so(account, run_export, settings, monkeypatch):
    monkeypatch.setattr(exports._Spool, "publish", mock.Mock(side_effect=OSError("disk full")))

    export = run_export(account)

    assert export.status == ExportRequest.Status.FAILED
    assert "storage problem" in export.error


def test_a_finished_export_is_left_alone(account, run_export):
    export = ExportRequestFactory(
        account=account, status=ExportRequest.Status.FAILED, error="earlier failure"
    )

    result = exports.process_export(export_id=export.pk)

    assert result.status == ExportRequest.Status.FAILED and result.error == "earlier failure"
    assert exports.process_export(export_id=10**9) is None


def test_exports_work_with_a_storage_that_has_no_local_path(account, run_export, settings):
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {"BACKEND": "django.core.files.storage.InMemoryStorage"},
    }
    CampaignFactory(account=account, starts_on=TODAY, ends_on=TODAY)

    export = run_export(account, date_from=TODAY, date_to=TODAY)

    assert export.status == ExportRequest.Status.COMPLETED
    assert default_storage.exists(export.file.name)
    assert export.row_counts == {"campaigns": 1}


@pytest.mark.django_db(transaction=True)
def test_progress_is_written_while_the_job_runs(account, monkeypatch, settings):
    """Progress ticks are visible to other connections mid-run (the page polls them)."""
    monkeypatch.setattr(exports, "PROGRESS_SECONDS", 0)
    seen = []

    def slow(account, date_from, date_to):
        for n in range(5000):
            if n == 4500:
                seen.append(ExportRequest.objects.values_list("rows_done", "rows_total").get())
            yield (n,)

    monkeypatch.setitem(
        CORE_TYPES,
        "campaigns",
        ExportType("campaigns", "Campaigns", ("n",), slow, count=lambda a, f, t: 5000),
    )
    export = ExportRequestFactory(
        account=account, status=ExportRequest.Status.PENDING, format="json"
    )

    exports.process_export(export_id=export.pk)

    export.refresh_from_db()
    if connection.vendor == "sqlite":  # PostgreSQL writes ticks on a second connection
        assert seen == [(2 * exporting.PROGRESS_EVERY_ROWS, 5000)]
    assert (export.status, export.rows_done, export.rows_total) == (
        ExportRequest.Status.COMPLETED,
        5000,
        5000,
    )


def test_an_export_type_without_a_count_has_no_total(account, monkeypatch, run_export):
    uncounted = ExportType("campaigns", "Campaigns", ("n",), lambda a, f, t: iter([(1,), (2,)]))
    monkeypatch.setitem(CORE_TYPES, "campaigns", uncounted)

    export = run_export(account, data_types=["campaigns", "account"])

    assert export.row_counts == {"campaigns": 2, "account": 1}
    assert export.rows_total == 3


# --- signed links -----------------------------------------------------------------------------


def test_a_signed_link_serves_the_owner_until_it_expires(account, run_export, settings):
    export = run_export(account)
    token = token_of(exports.export_file_url(export))

    assert (
        exports.export_for_download(user=account.user, export_id=export.pk, token=token) == export
    )
    later = timezone.now() + dt.timedelta(minutes=settings.EXPORT_LINK_MINUTES, seconds=5)
    with (
        mock.patch("django.core.signing.time.time", return_value=later.timestamp()),
        pytest.raises(NotFound) as caught,
    ):
        exports.export_for_download(user=account.user, export_id=export.pk, token=token)
    assert caught.value.code == "link_expired"


@pytest.mark.parametrize(
    "tamper",
    [
        lambda t: t[:-1] + ("A" if t[-1] != "A" else "B"),
        lambda t: "999:" + t.split(":", 1)[1],
        lambda t: "",
    ],
)
def test_a_tampered_link_is_not_found(account, run_export, tamper):
    export = run_export(account)
    token = token_of(exports.export_file_url(export))

    with pytest.raises(NotFound) as caught:
        exports.export_for_download(user=account.user, export_id=export.pk, token=tamper(token))
    assert caught.value.code == "not_found"


def test_a_link_is_only_for_the_owner_and_staff_with_permission(account, other_account, run_export):
    export = run_export(account)
    token = token_of(exports.export_file_url(export))

    for outsider in (other_account.user, staff_in("support_l1")):
        with pytest.raises(NotFound):
            exports.export_for_download(user=outsider, export_id=export.pk, token=token)
    assert (
        exports.export_for_download(user=staff_in("compliance"), export_id=export.pk, token=token)
        == export
    )


def test_a_link_to_an_expired_export_is_not_found(
    account, run_export, django_capture_on_commit_callbacks
):
    export = run_export(account)
    token = token_of(exports.export_file_url(export))
    with django_capture_on_commit_callbacks(execute=True):
        exports.expire_exports(now=export.expires_at)

    with pytest.raises(NotFound) as caught:
        exports.export_for_download(user=account.user, export_id=export.pk, token=token)
    assert caught.value.code == "export_unavailable"
    export.refresh_from_db()
    assert exports.export_file_url(export) is None


# --- retention --------------------------------------------------------------------------------


def test_files_are_deleted_after_the_retention_period(
    account, run_export, settings, django_capture_on_commit_callbacks
):
    export = run_export(account)
    name = export.file.name
    assert export.expires_at == export.completed_at + dt.timedelta(
        days=settings.EXPORT_RETENTION_DAYS
    )

    before = exports.expire_exports(now=export.expires_at - dt.timedelta(seconds=1))
    with django_capture_on_commit_callbacks(execute=True):
        after = exports.expire_exports(now=export.expires_at)

    export.refresh_from_db()
    assert before["expired"] == 0 and after["expired"] == 1
    assert export.status == ExportRequest.Status.EXPIRED and not export.file
    assert not default_storage.exists(name)
    assert export.history.first().history_change_reason == "expired: retention period over"


def test_stuck_exports_fail_with_a_reason_and_stale_partials_go(account, settings):
    stuck = ExportRequestFactory(account=account, status=ExportRequest.Status.PROCESSING)
    ExportRequest.objects.filter(pk=stuck.pk).update(
        created_at=timezone.now() - dt.timedelta(hours=4)
    )
    partial = os.path.join(settings.MEDIA_ROOT, exports.TEMP_DIR, "1-dead.part")
    os.makedirs(os.path.dirname(partial))
    with open(partial, "wb") as handle:
        handle.write(b"half a zip")
    old = (timezone.now() - dt.timedelta(hours=4)).timestamp()
    os.utime(partial, (old, old))

    result = exports.expire_exports()

    stuck.refresh_from_db()
    assert result == {"expired": 0, "stuck_failed": 1, "temp_removed": 1}
    assert stuck.status == ExportRequest.Status.FAILED and "did not finish in time" in stuck.error
    assert not os.path.exists(partial)
