"""run_checkpoint over the 10k-account demo data on PostgreSQL: seconds and queries, a first
run (opens tickets and backlog items) and a second (points at them).

    DATABASE_URL=postgres://…/opsplatform_ckpt python -m pytest \
        tests/bench/test_checkpoints_bench.py -s -q
CHECKPOINTS_BENCH_DEMO (default 10000) shrinks the demo."""

import datetime as dt
import os
import time

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from checkpoints import services
from checkpoints.models import KPIDefinition, KPIResult
from deployments.health import services as health
from opsplatform.demo import DemoContext
from opsplatform.demo import seed_demo as seed_core
from opsplatform.models import Account, CampaignMetric, UsageEvent
from support.demo import seed_demo as seed_support
from support.models import Ticket
from tests.bench.conftest import report
from userflows.demo import seed_demo as seed_userflows

DEMO = int(os.environ.get("CHECKPOINTS_BENCH_DEMO", "10000"))
NOW = dt.datetime(2026, 6, 30, 12, tzinfo=dt.UTC)


@pytest.fixture(autouse=True)
def _no_tasks(monkeypatch):
    from opsplatform import queueing

    monkeypatch.setattr(queueing, "async_task", lambda *a, **k: None)


@pytest.mark.django_db(transaction=True)
def test_run_checkpoint_over_the_10k_demo_data(postgres_only):
    ctx = DemoContext(seed=1, accounts_wanted=DEMO, as_of=NOW.date(), write=lambda *a: None)
    seed_core(ctx)
    seed_support(ctx)
    seed_userflows(ctx)
    health.check_all_accounts(batch_size=2000, days=30, now=NOW)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    KPIDefinition.objects.update(active=True)
    figures = {}
    for label in ("first run", "second run"):
        with CaptureQueriesContext(connection) as captured:
            started = time.perf_counter()
            checkpoint = services.run_checkpoint(f"bench {label}", 90, as_of=NOW)
            seconds = time.perf_counter() - started
        figures[label] = (
            f"{seconds:.2f} s, {len(captured.captured_queries)} queries, {checkpoint.status}"
        )
    report(
        "checkpoints: run_checkpoint over the demo data (90 days, every default KPI)",
        accounts=f"{Account.objects.count():,}",
        metric_rows=f"{CampaignMetric.objects.count():,}",
        usage_events=f"{UsageEvent.objects.count():,}",
        tickets=f"{Ticket.objects.count():,}",
        readings=KPIResult.objects.filter(checkpoint=checkpoint).count(),
        **figures,
    )
    assert KPIResult.objects.filter(checkpoint=checkpoint).count() == 46  # 7 KPIs x 4 personas + 18
