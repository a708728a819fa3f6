"""Scoring figures on PostgreSQL: one score whose ticket evidence reads 1M tickets (180 days,
half inside the 90-day window), a 100-item roadmap, a 50-feature comparison, and a refit over
50 launched features (exact NNLS with leave-one-out), in seconds and queries.

SCORING_BENCH_TICKETS (default 1000000) and SCORING_BENCH_ACCOUNTS (default 2000) scale it."""

import datetime as dt
import os
import time
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from scoring import services
from scoring.models import Feature, ScoringModel
from support.models import Ticket
from tests.bench.conftest import report
from tests.factories import AccountFactory

TICKETS = int(os.environ.get("SCORING_BENCH_TICKETS", "1000000"))
ACCOUNTS = int(os.environ.get("SCORING_BENCH_ACCOUNTS", "2000"))
TAGS = ["billing", "export", "attribution", "links", "access", "renewal", "how-to", "bug"]


def insert_tickets(count: int, accounts: list[int]) -> None:
    """One INSERT ... SELECT: tickets over the last 180 days, one or two tags each."""
    now = timezone.now()
    sql = f"""
        INSERT INTO {Ticket._meta.db_table} (
            account_id, requester_email, requester_name, channel, subject, priority, status,
            escalation_level, tags, chat_session_id, created_at, updated_at,
            first_response_due_at, resolution_due_at)
        SELECT (%s::bigint[])[1 + g %% %s], '', '', 'web', 'Bench ' || g, 'normal', 'open', 1,
               CASE WHEN g %% 3 = 0
                    THEN (%s::text[])[1 + g %% 8] || ',' || (%s::text[])[1 + (g / 8) %% 8]
                    ELSE (%s::text[])[1 + g %% 8] END,
               '', %s - make_interval(mins => g %% (180 * 1440)), %s, %s, %s
        FROM generate_series(1, %s) AS g
    """
    with connection.cursor() as cursor:
        cursor.execute(sql, [accounts, len(accounts), TAGS, TAGS, TAGS, now, now, now, now, count])
        cursor.execute(f"ANALYZE {Ticket._meta.db_table}")


def measured(fn):
    with CaptureQueriesContext(connection) as ctx:
        started = time.perf_counter()
        result = fn()
        seconds = time.perf_counter() - started
    return result, f"{seconds:.3f} s", len(ctx.captured_queries)


@pytest.fixture
def loaded(postgres_only):
    accounts = [AccountFactory().id for _ in range(ACCOUNTS)]
    started = time.perf_counter()
    insert_tickets(TICKETS, accounts)
    return time.perf_counter() - started


def test_scoring_at_scale(loaded):
    score, score_time, score_queries = measured(
        lambda: services.score_feature(
            "invoices",
            "Invoices",
            {"support_tags": ["billing"], "estimated_revenue_impact": 1000, "effort_weeks": 2},
        )
    )
    tickets = score.evidence["tickets"]
    # Billing is the first tag of 1 in 8 tickets and the second of some more; half of all
    # tickets fall inside the 90 days.
    assert 0 < tickets["accounts"] <= ACCOUNTS
    assert tickets["tickets"] > TICKETS // 16

    items = [
        {
            "feature_id": f"item{n:03d}",
            "name": f"Item {n}",
            "metadata": {
                "estimated_revenue_impact": 100 * n,
                "effort_weeks": 1 + n % 7,
                "support_tags": [TAGS[n % 8]] if n % 10 == 0 else [],
            },
            "depends_on": [f"item{n - 1:03d}"] if n % 5 == 4 else [],
        }
        for n in range(100)
    ]
    roadmap, roadmap_time, roadmap_queries = measured(
        lambda: services.score_feature_roadmap(items, Decimal(12))
    )
    placed = [i["feature_id"] for i in roadmap.items]
    for n in range(100):
        if n % 5 == 4:
            assert placed.index(f"item{n - 1:03d}") < placed.index(f"item{n:03d}")

    keys = [f"item{n:03d}" for n in range(50)]
    comparison, compare_time, compare_queries = measured(lambda: services.compare_features(keys))
    assert len(comparison["pairs"]) == 50 * 49 // 2

    launch = timezone.localdate() - dt.timedelta(days=30)
    for n in range(50):
        f = Feature.objects.get(key=f"item{n:03d}")
        for to in ("planned", "in_progress"):
            services.change_feature_status(feature_id=f.pk, to=to)
        services.change_feature_status(feature_id=f.pk, to="launched", launched_on=launch)
        services.record_outcome(
            feature_id=f.key,
            measured_on=timezone.localdate(),
            adoption_rate=Decimal(n % 10) / 10,
            revenue_change=Decimal(50 * n),
            ticket_change=-(n % 7),
            time_saved_hours=Decimal(n % 13),
        )
    refit, refit_time, refit_queries = measured(services.refit_scoring_model)
    assert refit["n"] == 50
    assert ScoringModel.objects.filter(active=True).count() == 1

    report(
        f"scoring on PostgreSQL, {TICKETS:,} tickets of {ACCOUNTS:,} accounts",
        tickets_inserted=f"{loaded:.1f} s",
        score_with_ticket_evidence=f"{score_time}, {score_queries} queries, "
        f"{tickets['tickets']:,} tickets / {tickets['accounts']:,} accounts in the window",
        roadmap_100_items=f"{roadmap_time}, {roadmap_queries} queries",
        compare_50_features=f"{compare_time}, {compare_queries} queries (50 already scored)",
        refit_50_outcomes=f"{refit_time}, {refit_queries} queries; {refit['reason']}",
    )
