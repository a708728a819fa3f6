"""Studies on PostgreSQL: each study over the 10k-account demo data and over 100k accounts
(about 50M metric rows), in seconds and queries, against the same aggregate written by hand
in SQL in the same run (goal: at most 2x the hand-written query).

The large scale takes a while to build (50M rows); set STUDIES_BENCH_ACCOUNTS (default
100000) and STUDIES_BENCH_CAMPAIGNS (campaigns per account, default 6, each ~85 days of
metric rows) to run it smaller, or STUDIES_BENCH_CAMPAIGNS_ONLY=1 to build no metric rows and
time only revenue growth (it reads campaigns only)."""

import datetime as dt
import os
import time

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from deployments.health.models import AccountHealthCheck
from opsplatform.demo import DemoContext
from opsplatform.demo import seed_demo as seed_core
from opsplatform.models import Account, Campaign, CampaignMetric, Persona, Sponsor, UsageEvent
from studies import metrics, services
from studies.models import Study
from support.models import Ticket
from tests.bench.conftest import report

C = Campaign._meta.db_table
A = Account._meta.db_table
M = CampaignMetric._meta.db_table
T = Ticket._meta.db_table
E = UsageEvent._meta.db_table
H = AccountHealthCheck._meta.db_table

HAND_SQL = {
    "renewal_rate": f"""
        SELECT a.persona_id, COUNT(*), COUNT(r.id)
        FROM {C} c JOIN {A} a ON a.id = c.account_id
        LEFT JOIN {C} r ON r.renewed_from_id = c.id AND r.status <> 'canceled'
        WHERE c.status <> 'canceled' AND c.ends_on BETWEEN %(start)s AND %(end)s
        GROUP BY a.persona_id""",
    "revenue_growth": f"""
        SELECT c.account_id,
          SUM(CASE WHEN c.starts_on <= %(end)s AND c.ends_on >= %(start)s THEN c.deal_value
              * (LEAST(c.ends_on, %(end)s::date) - GREATEST(c.starts_on, %(start)s::date) + 1)
              / (c.ends_on - c.starts_on + 1) ELSE 0 END),
          SUM(CASE WHEN c.starts_on <= %(prev_end)s AND c.ends_on >= %(prev_start)s
              THEN c.deal_value * (LEAST(c.ends_on, %(prev_end)s::date)
              - GREATEST(c.starts_on, %(prev_start)s::date) + 1)
              / (c.ends_on - c.starts_on + 1) ELSE 0 END)
        FROM {C} c
        WHERE c.status <> 'canceled' AND c.starts_on <= %(end)s AND c.ends_on >= %(prev_start)s
        GROUP BY c.account_id""",
    "campaign_efficiency": f"""
        SELECT m.campaign_id, a.persona_id, SUM(m.spend), SUM(m.revenue), SUM(m.conversions),
               SUM(m.clicks), SUM(m.impressions)
        FROM {M} m JOIN {C} c ON c.id = m.campaign_id JOIN {A} a ON a.id = c.account_id
        WHERE m.date BETWEEN %(start)s AND %(end)s AND c.status <> 'canceled'
        GROUP BY m.campaign_id, a.persona_id""",
    "revenue_cohorts": f"""
        WITH firsts AS (
            SELECT account_id, date_trunc('month', MIN(starts_on))::date AS cohort
            FROM {C} WHERE status <> 'canceled' GROUP BY account_id),
        months AS (
            SELECT m::date AS m_start, (m + interval '1 month - 1 day')::date AS m_end
            FROM generate_series(%(start)s::date, %(end)s::date, interval '1 month') m)
        SELECT f.cohort, mo.m_start, COUNT(DISTINCT c.account_id),
               SUM(c.deal_value * (LEAST(c.ends_on, mo.m_end) - GREATEST(c.starts_on,
                   mo.m_start) + 1) / (c.ends_on - c.starts_on + 1))
        FROM firsts f JOIN {C} c ON c.account_id = f.account_id AND c.status <> 'canceled'
        JOIN months mo ON mo.m_start >= f.cohort
             AND c.starts_on <= mo.m_end AND c.ends_on >= mo.m_start
        WHERE f.cohort BETWEEN %(start)s AND %(end)s
        GROUP BY f.cohort, mo.m_start""",
}
HAND_SQL["persona_impact"] = [
    HAND_SQL["renewal_rate"],
    HAND_SQL["revenue_growth"],
    HAND_SQL["campaign_efficiency"],
    f"SELECT persona_id, COUNT(*) FROM {A} GROUP BY persona_id",
    f"""SELECT a.persona_id, COUNT(*) FROM {T} t JOIN {A} a ON a.id = t.account_id
        WHERE t.created_at >= %(start)s AND t.created_at < %(end)s::date + 1
        GROUP BY a.persona_id""",
    # Account health (each account's latest check by the period's end) and onboarding
    # completion, per persona (definition 2026.11-2).
    f"""SELECT a.persona_id, COUNT(*),
               COUNT(*) FILTER (WHERE EXISTS (SELECT 1 FROM {E} e WHERE e.account_id = a.id
                   AND e.type = 'onboarding_completed' AND e.occurred_at < %(end)s::date + 1)),
               COUNT(h.status), COUNT(*) FILTER (WHERE h.status = 'healthy'),
               COUNT(*) FILTER (WHERE h.status = 'at_risk'),
               COUNT(*) FILTER (WHERE h.status = 'critical'), SUM(h.score), COUNT(h.score)
        FROM {A} a LEFT JOIN LATERAL (
            SELECT score, status FROM {H} WHERE account_id = a.id
              AND checked_at < %(end)s::date + 1 ORDER BY checked_at DESC, id DESC LIMIT 1
        ) h ON true
        WHERE a.created_at < %(end)s::date + 1
        GROUP BY a.persona_id""",
]


def _hand(study_type, params) -> float:
    statements = HAND_SQL[study_type]
    if isinstance(statements, str):
        statements = [statements]
    started = time.perf_counter()
    with connection.cursor() as cursor:
        for sql in statements:
            cursor.execute(sql, params)
            cursor.fetchall()
    return time.perf_counter() - started


def _ours(study_type, start, end) -> tuple[float, int]:
    with CaptureQueriesContext(connection) as ctx:
        started = time.perf_counter()
        study = services.request_study(study_type=study_type, period_start=start, period_end=end)
        elapsed = time.perf_counter() - started
    assert study.status == Study.Status.COMPLETED, study.error
    return elapsed, len(ctx.captured_queries)


def _compare(title: str, periods: dict, study_types=None) -> dict:
    figures = {}
    for study_type in study_types or Study.Type.values:
        start, end = periods[study_type]
        days = (end - start).days + 1
        params = {
            "start": start,
            "end": end,
            "prev_start": start - dt.timedelta(days=days),
            "prev_end": start - dt.timedelta(days=1),
        }
        _hand(study_type, params)  # warm the cache for both
        ours, queries = _ours(study_type, start, end)
        started = time.perf_counter()
        metrics.COMPUTE[study_type](start, end, None)  # the figures without the Study row
        compute = time.perf_counter() - started
        hand = _hand(study_type, params)
        figures[study_type] = (
            f"service {ours:.2f} s, {queries} queries; computation {compute:.2f} s; "
            f"hand SQL {hand:.2f} s; ratio {compute / hand:.2f}x ({ours / hand:.2f}x service)"
        )
    report(title, **figures)
    return figures


def _periods(end: dt.date) -> dict:
    month_start = end.replace(day=1)
    quarter_start = (month_start - dt.timedelta(days=62)).replace(day=1)
    year_start = (month_start - dt.timedelta(days=340)).replace(day=1)
    return {
        "renewal_rate": (quarter_start, end),
        "revenue_growth": (quarter_start, end),
        "campaign_efficiency": (month_start, end),
        "persona_impact": (month_start, end),
        "revenue_cohorts": (year_start, end),
    }


@pytest.mark.django_db(transaction=True)
def test_studies_over_the_10k_demo_data(postgres_only):
    ctx = DemoContext(
        seed=1, accounts_wanted=10_000, as_of=dt.date(2026, 6, 30), write=lambda *a: None
    )
    seed_core(ctx)
    with connection.cursor() as cursor:
        cursor.execute(f"ANALYZE {C}; ANALYZE {M}; ANALYZE {A}")
    rows = CampaignMetric.objects.count()
    figures = _compare(
        f"studies over the demo data: 10k accounts, {rows:,} metric rows",
        _periods(dt.date(2026, 5, 31)),
    )
    assert rows > 0 and set(figures) == set(Study.Type.values)


def _insert_large(accounts: int, per_account: int, metric_rows: bool = True) -> int:
    personas = list(Persona.objects.order_by("id").values_list("id", flat=True))
    with connection.cursor() as cursor:
        cursor.execute(
            """INSERT INTO auth_user (password, is_superuser, username, first_name, last_name,
                   email, is_staff, is_active, date_joined)
               SELECT '!', false, 'bench' || g, '', '', 'bench' || g || '@example.test',
                      false, true, now()
               FROM generate_series(1, %s) g""",
            [accounts],
        )
        cursor.execute(
            f"""INSERT INTO {A} (user_id, name, persona_id, plan, country, created_at)
                SELECT u.id, 'Bench ' || u.id, (%s::bigint[])[1 + u.id %% %s], 'starter',
                       'US', '2024-01-01'
                FROM auth_user u WHERE u.username LIKE 'bench%%'""",
            [personas, len(personas)],
        )
        cursor.execute(
            f"""INSERT INTO {Sponsor._meta.db_table} (account_id, name, created_at)
                SELECT id, 'Bench sponsor', now() FROM {A}"""
        )
        cursor.execute(
            f"""INSERT INTO {C} (account_id, sponsor_id, name, starts_on, ends_on, deal_value,
                   status, created_at)
                SELECT s.account_id, s.id, 'Bench',
                       DATE '2025-01-01' + (k * 90 + s.account_id %% 30)::int,
                       DATE '2025-01-01' + (k * 90 + s.account_id %% 30 + 79
                           + (s.account_id + k) %% 11)::int,
                       500 + ((s.account_id * 37 + k * 11) %% 40000) + 0.01 * (k %% 3),
                       CASE WHEN (s.account_id + k) %% 29 = 0 THEN 'canceled'
                            ELSE 'completed' END,
                       now()
                FROM {Sponsor._meta.db_table} s CROSS JOIN generate_series(0, %s - 1) k""",
            [per_account],
        )
        cursor.execute(
            f"""UPDATE {C} c SET renewed_from_id = p.prev_id
                FROM (SELECT id, lag(id) OVER (PARTITION BY account_id ORDER BY starts_on)
                      AS prev_id FROM {C}) p
                WHERE p.id = c.id AND p.prev_id IS NOT NULL AND c.id %% 3 <> 0""",
            [],
        )
        if metric_rows:
            cursor.execute(
                f"""INSERT INTO {M} (campaign_id, date, impressions, clicks, conversions,
                       revenue, spend)
                    SELECT c.id, c.starts_on + d::int, 1000 + (c.id + d) %% 500,
                           (c.id + d) %% 50, (c.id + d) %% 5, ((c.id * 7 + d) %% 10000) / 100.0,
                           ((c.id * 3 + d) %% 8000) / 100.0
                    FROM {C} c CROSS JOIN LATERAL generate_series(0, c.ends_on - c.starts_on) d""",
                [],
            )
        cursor.execute(f"ANALYZE {C}; ANALYZE {M}; ANALYZE {A}")
        cursor.execute(f"SELECT COUNT(*) FROM {M}")
        return cursor.fetchone()[0]


@pytest.mark.django_db(transaction=True)
def test_studies_at_100k_accounts_and_50m_metric_rows(postgres_only):
    accounts = int(os.environ.get("STUDIES_BENCH_ACCOUNTS", "100000"))
    per_account = int(os.environ.get("STUDIES_BENCH_CAMPAIGNS", "6"))
    campaigns_only = os.environ.get("STUDIES_BENCH_CAMPAIGNS_ONLY") == "1"
    started = time.perf_counter()
    rows = _insert_large(accounts, per_account, metric_rows=not campaigns_only)
    built = time.perf_counter() - started
    report(
        "studies bench data",
        accounts=accounts,
        metric_rows=f"{rows:,}",
        build_seconds=f"{built:.0f}",
    )
    study_types = ["revenue_growth"] if campaigns_only else None
    figures = _compare(
        f"studies at {accounts:,} accounts, {rows:,} metric rows",
        _periods(dt.date(2025, 12, 31)),
        study_types,
    )
    assert set(figures) == set(study_types or Study.Type.values)
    assert campaigns_only or rows > 0
