"""Export of 1M analytics rows on PostgreSQL through the API and the worker (less an empty
export), against a plain `COPY (SELECT the metric rows) TO STDOUT` — the floor, goal at most
1.5x — and against COPY of the export's own SQL (joins and escaping), in the same run; and the
worker's peak memory at 100k and 1M rows in a fresh process (goal: within 10%)."""

import dataclasses
import datetime as dt
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection
from django.utils import timezone

from opsplatform.models import Campaign, CampaignMetric, Sponsor
from opsplatform.privacy import EXPORT_TYPES
from tests.bench.conftest import report
from tests.conftest import ApiClient
from tests.factories import AccountFactory, token_for
from userflows.models import ExportRequest

# CAMPAIGNS x DAYS = 1M metric rows; BENCH_EXPORT_CAMPAIGNS=100 runs a 100k-row rehearsal.
CAMPAIGNS = int(os.environ.get("BENCH_EXPORT_CAMPAIGNS", "1000"))
DAYS = 1000
ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.django_db(transaction=True)


def load_metrics(account) -> dt.date:
    """1,000 campaigns x 1,000 days, written with COPY FROM STDIN (a few seconds)."""
    first_day = timezone.localdate() - dt.timedelta(days=DAYS + 5)
    sponsor = Sponsor.objects.create(account=account, name="Bench sponsor")
    campaigns = Campaign.objects.bulk_create(
        [
            Campaign(
                account=account,
                sponsor=sponsor,
                name=f"=Bench campaign {i}",
                starts_on=first_day,
                ends_on=first_day + dt.timedelta(days=DAYS - 1),
                deal_value=1000,
            )
            for i in range(CAMPAIGNS)
        ]
    )
    table = CampaignMetric._meta.db_table
    with connection.cursor() as cursor:
        with cursor.cursor.copy(
            f"COPY {table} (campaign_id, date, impressions, clicks, conversions, revenue, "
            "spend) FROM STDIN"
        ) as copy:
            for campaign in campaigns:
                for day in range(DAYS):
                    copy.write_row(
                        (
                            campaign.pk,
                            first_day + dt.timedelta(days=day),
                            1000 + day,
                            20 + day % 7,
                            day % 5,
                            f"{day % 97}.50",
                            f"{day % 53}.25",
                        )
                    )
        cursor.execute(f"VACUUM ANALYZE {table}")
    return first_day


def copy_seconds(account, date_from, date_to) -> tuple[float, int]:
    sql, params = EXPORT_TYPES["analytics"].copy_sql(account, date_from, date_to)
    started = time.perf_counter()
    rows = 0
    with (
        connection.cursor() as cursor,
        cursor.cursor.copy(f"COPY ({sql}) TO STDOUT (FORMAT csv)", params) as copy,
    ):
        for _ in copy:
            rows += 1
    return time.perf_counter() - started, rows


def plain_copy_seconds(account, date_from, date_to) -> tuple[float, int]:
    """The floor: the account's metric rows as they are stored, no join, no escaping."""
    metric, campaign = CampaignMetric._meta.db_table, Campaign._meta.db_table
    sql = (
        f"SELECT campaign_id, date, impressions, clicks, conversions, revenue, spend "
        f"FROM {metric} WHERE campaign_id IN (SELECT id FROM {campaign} WHERE account_id = %s) "
        "AND date BETWEEN %s AND %s"
    )
    started = time.perf_counter()
    rows = 0
    with (
        connection.cursor() as cursor,
        cursor.cursor.copy(
            f"COPY ({sql}) TO STDOUT (FORMAT csv)", (account.pk, date_from, date_to)
        ) as copy,
    ):
        for _ in copy:
            rows += 1
    return time.perf_counter() - started, rows


def through_the_api(client, date_from, date_to) -> tuple[float, dict]:
    """POST /exports; the worker's job runs as the request commits (django-q sync mode in
    tests), so the call returns once the ZIP is published; then GET the result."""
    started = time.perf_counter()
    created = client.post(
        "exports",
        {
            "format": "csv",
            "data_types": ["analytics"],
            "date_from": str(date_from),
            "date_to": str(date_to),
        },
    )
    elapsed = time.perf_counter() - started
    assert created.status_code == 202, created.content
    return elapsed, client.get(f"exports/{created.json()['id']}").json()


WORKER = """
import json, os, resource, sys, time, tracemalloc
import django
django.setup()
from userflows.services.exports import process_export
trace = sys.argv[2] == "tracemalloc"
if trace:
    tracemalloc.start()
started = time.perf_counter()
export = process_export(export_id=int(sys.argv[1]))
elapsed = time.perf_counter() - started
print(json.dumps({
    "status": export.status, "rows": export.rows_done, "seconds": elapsed,
    "max_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    "python_peak_mb": tracemalloc.get_traced_memory()[1] / 2**20 if trace else None,
}))
"""


def worker_peak(account, date_from, date_to, mode: str) -> dict:
    export = ExportRequest.objects.create(
        account=account,
        requested_by=account.user,
        format="csv",
        data_types=["analytics"],
        date_from=date_from,
        date_to=date_to,
    )
    database = connection.settings_dict
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "opsplatform.settings_test",
        "DATABASE_URL": f"postgres://{database['USER']}@{database['HOST']}:"
        f"{database['PORT']}/{database['NAME']}",
        "MEDIA_ROOT": str(settings.MEDIA_ROOT),
    }
    done = subprocess.run(
        [sys.executable, "-c", WORKER, str(export.pk), mode],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        check=True,
    )
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["status"] == "completed", done.stderr[-2000:]
    return result


def test_export_1m_analytics_rows_against_copy_and_in_constant_memory(postgres_only, monkeypatch):
    account = AccountFactory()
    client = ApiClient(token_for(account.user))
    first_day = load_metrics(account)
    last_day = first_day + dt.timedelta(days=DAYS - 1)
    empty_from, empty_to = first_day - dt.timedelta(days=30), first_day - dt.timedelta(days=1)

    copy_times, plain_times, rows = [], [], 0
    for _ in range(3):
        seconds, rows = copy_seconds(account, first_day, last_day)
        copy_times.append(seconds)
        seconds, plain_rows = plain_copy_seconds(account, first_day, last_day)
        plain_times.append(seconds)
    assert plain_rows == rows
    through_the_api(client, empty_from, empty_to)  # warm up: first request in the process
    empties = [through_the_api(client, empty_from, empty_to) for _ in range(2)]
    fulls = [through_the_api(client, first_day, last_day) for _ in range(2)]
    empty_seconds, empty = min(empties, key=lambda r: r[0])
    full_seconds, full = min(fulls, key=lambda r: r[0])

    assert rows == CAMPAIGNS * DAYS
    assert (empty["status"], empty["row_counts"]) == ("completed", {"analytics": 0})
    assert (full["status"], full["row_counts"]) == ("completed", {"analytics": rows})
    copy_best = min(copy_times)
    plain_best = min(plain_times)
    export_net = full_seconds - empty_seconds
    # The alternatives the job does not take on PostgreSQL: COPY of the export's SQL (one
    # message per row through Python) and a server-side cursor streamed through csv.writer
    # with escaping in Python (what SQLite uses).
    with monkeypatch.context() as patch:
        per_row = dataclasses.replace(EXPORT_TYPES["analytics"], csv_chunks=None)
        patch.setitem(EXPORT_TYPES, "analytics", per_row)
        copy_path_seconds, copied = through_the_api(client, first_day, last_day)
    assert copied["row_counts"] == {"analytics": rows}
    with monkeypatch.context() as patch:
        without_copy = dataclasses.replace(
            EXPORT_TYPES["analytics"], copy_sql=None, csv_chunks=None
        )
        patch.setitem(EXPORT_TYPES, "analytics", without_copy)
        iterator_seconds, iterated = through_the_api(client, first_day, last_day)
    assert iterated["row_counts"] == {"analytics": rows}
    report(
        "export of 1M analytics rows (CSV in a ZIP) vs COPY TO STDOUT",
        rows=f"{rows:,}",
        copy_seconds=f"{copy_best:.2f} (best of 3: "
        + ", ".join(f"{t:.2f}" for t in copy_times)
        + ")",
        api_and_worker_seconds=f"{full_seconds:.2f} (best of 2: "
        + ", ".join(f"{t:.2f}" for t, _ in fulls)
        + ")",
        same_request_empty_range_seconds=f"{empty_seconds:.3f} (best of 2)",
        plain_copy_seconds=f"{plain_best:.2f} (the metric rows alone, best of 3: "
        + ", ".join(f"{t:.2f}" for t in plain_times)
        + ")",
        export_net_seconds=f"{export_net:.2f}",
        ratio_to_plain_copy=f"{export_net / plain_best:.2f}x (goal <= 1.5x)",
        ratio_to_export_sql_copy=f"{export_net / copy_best:.2f}x",
        zip_mb=f"{full['size_bytes'] / 2**20:.1f}",
        copy_path_seconds=f"{copy_path_seconds:.2f} (COPY, a message per row: "
        f"{(copy_path_seconds - empty_seconds) / plain_best:.2f}x)",
        without_copy_seconds=f"{iterator_seconds:.2f} (server-side cursor + csv.writer: "
        f"{(iterator_seconds - empty_seconds) / plain_best:.2f}x)",
    )

    slice_to = first_day + dt.timedelta(days=DAYS // 10 - 1)  # 100k rows
    peaks = {}
    for label, date_to in (("100k", slice_to), ("1M", last_day)):
        peaks[label] = {
            mode: worker_peak(account, first_day, date_to, mode) for mode in ("rss", "tracemalloc")
        }
    assert peaks["100k"]["rss"]["rows"] == rows // 10 and peaks["1M"]["rss"]["rows"] == rows
    rss_small, rss_big = (peaks[k]["rss"]["max_rss_mb"] for k in ("100k", "1M"))
    heap_small, heap_big = (peaks[k]["tracemalloc"]["python_peak_mb"] for k in ("100k", "1M"))
    report(
        "worker peak memory, fresh process per export (goal: 1M within 10% of 100k)",
        rss_100k_mb=f"{rss_small:.1f} ({peaks['100k']['rss']['seconds']:.2f}s)",
        rss_1m_mb=f"{rss_big:.1f} ({peaks['1M']['rss']['seconds']:.2f}s)",
        rss_growth=f"{(rss_big / rss_small - 1) * 100:+.1f}%",
        python_heap_peak_100k_mb=f"{heap_small:.2f}",
        python_heap_peak_1m_mb=f"{heap_big:.2f}",
        python_heap_growth=f"{(heap_big / heap_small - 1) * 100:+.1f}%",
    )
