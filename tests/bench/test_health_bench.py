"""Account health figures on PostgreSQL: `check_all_accounts` over the 10k-account demo data
and over 100k accounts — accounts per second (goal ≥ 5,000/s), queries per batch and peak
Python memory.

    DATABASE_URL=postgres://…/opsplatform_health_bench python -m pytest \
        tests/bench/test_health_bench.py -s -q
HEALTH_BENCH_ACCOUNTS (default 100000) and HEALTH_BENCH_DEMO (default 10000) shrink them."""

import datetime as dt
import os
import time
import tracemalloc

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from deployments.health import services
from deployments.health.models import AccountHealth, AccountHealthCheck
from opsplatform.demo import DemoContext
from opsplatform.demo import seed_demo as seed_core
from opsplatform.models import Account, Campaign, CampaignMetric, Persona, Sponsor, UsageEvent
from support.demo import seed_demo as seed_support
from support.models import Ticket
from tests.bench.conftest import report
from userflows.demo import seed_demo as seed_userflows
from userflows.models import Plan, Subscription

LARGE = int(os.environ.get("HEALTH_BENCH_ACCOUNTS", "100000"))
DEMO = int(os.environ.get("HEALTH_BENCH_DEMO", "10000"))
BATCH = 2000
# The daily schedule checks the present: data is made up to this hour and checked as of it
# (a check of a past moment also reads the subscriptions' history).
NOW = dt.datetime.now(dt.UTC).replace(minute=0, second=0, microsecond=0)


@pytest.fixture(autouse=True)
def _queue_tickets_without_running_them(monkeypatch):
    """The test cluster runs tasks inline; in production the critical-episode tickets are
    opened by the worker after each batch. Record the queued tasks instead of timing them."""
    from opsplatform import queueing

    queued = []
    monkeypatch.setattr(queueing, "async_task", lambda *a, **k: queued.append(a))
    return queued


def _measure(title: str, accounts: int, **extra) -> dict:
    for table in (Account, UsageEvent, Campaign, CampaignMetric, Ticket, Subscription):
        with connection.cursor() as cursor:
            cursor.execute(f"ANALYZE {table._meta.db_table}")
    runs = {}
    # Two runs as the schedule makes them (the next batch read on a second connection while
    # this one is scored), then one on a single connection, whose statements are counted.
    for label, read_ahead in (("first run", True), ("second run", True), ("one-connection", False)):
        with CaptureQueriesContext(connection) as ctx:
            started = time.perf_counter()
            result = services.check_all_accounts(
                batch_size=BATCH, days=30, now=NOW, read_ahead=read_ahead
            )
            seconds = time.perf_counter() - started
        assert result["checked"] == accounts
        runs[label] = (seconds, len(ctx.captured_queries), result)
        if os.environ.get("HEALTH_BENCH_SLOWEST"):
            for q in sorted(ctx.captured_queries, key=lambda q: -float(q["time"]))[:8]:
                print(q["time"], q["sql"][:300])
    # Peak Python memory on a fourth run (tracemalloc slows Python down: not timed).
    tracemalloc.start()
    services.check_all_accounts(batch_size=BATCH, days=30, now=NOW)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    seconds, _, result = runs["second run"]
    single_seconds, queries, single = runs["one-connection"]
    batches = single["batches"]
    report(
        title,
        accounts=f"{accounts:,}",
        **extra,
        batch_size=BATCH,
        first_run_seconds=f"{runs['first run'][0]:.2f}",
        first_run_accounts_per_second=f"{accounts / runs['first run'][0]:,.0f}",
        second_run_seconds=f"{seconds:.2f}",
        second_run_accounts_per_second=f"{accounts / seconds:,.0f}",
        one_connection_run_accounts_per_second=f"{accounts / single_seconds:,.0f}",
        queries=f"{queries} ({batches} batches; per batch {(queries - 4) / batches:.0f}, "
        "plus two COPY statements)",
        peak_python_memory=f"{peak / 2**20:.1f} MiB",
        counts=result["counts"],
        critical_tickets_queued_first_run=runs["first run"][2]["critical_tickets_queued"],
        changed_on_second_run=result["changed_total"],
    )
    assert AccountHealthCheck.objects.count() == 4 * accounts
    assert AccountHealth.objects.count() == accounts
    return result


@pytest.mark.django_db(transaction=True)
def test_check_all_over_the_10k_demo_data(postgres_only):
    ctx = DemoContext(seed=1, accounts_wanted=DEMO, as_of=NOW.date(), write=lambda *a: None)
    started = time.perf_counter()
    seed_core(ctx)
    seed_support(ctx)
    seed_userflows(ctx)
    seeded = time.perf_counter() - started
    result = _measure(
        "health: check_all_accounts over the demo data",
        DEMO,
        metric_rows=f"{CampaignMetric.objects.count():,}",
        usage_events=f"{UsageEvent.objects.count():,}",
        tickets=f"{Ticket.objects.count():,}",
        seed_seconds=f"{seeded:.0f}",
    )
    assert sum(result["counts"].values()) == DEMO  # every account has a status


def _insert_large(accounts: int) -> None:
    """Accounts, one running campaign each with a metric every third day over 60 days, ten
    usage events, a subscription, and a ticket for one account in ten; all INSERT … SELECT."""
    A, S, C, M = (m._meta.db_table for m in (Account, Sponsor, Campaign, CampaignMetric))
    E, T, SUB = UsageEvent._meta.db_table, Ticket._meta.db_table, Subscription._meta.db_table
    personas = list(Persona.objects.order_by("id").values_list("id", flat=True))
    plan = Plan.objects.get(code="starter").id
    with connection.cursor() as cursor:
        cursor.execute(
            """INSERT INTO auth_user (password, is_superuser, username, first_name, last_name,
                   email, is_staff, is_active, date_joined)
               SELECT '!', false, 'hb' || g, '', '', 'hb' || g || '@example.test', false, true,
                      %s
               FROM generate_series(1, %s) g""",
            [NOW - dt.timedelta(days=400), accounts],
        )
        cursor.execute(
            f"""INSERT INTO {A} (user_id, name, persona_id, plan, country, created_at)
                SELECT u.id, 'HB ' || u.id, (%s::bigint[])[1 + u.id %% %s], 'starter', 'US',
                       u.date_joined
                FROM auth_user u WHERE u.username LIKE 'hb%%'""",
            [personas, len(personas)],
        )
        cursor.execute(
            f"INSERT INTO {S} (account_id, name, created_at) SELECT id, 'HB', now() FROM {A}"
        )
        cursor.execute(
            f"""INSERT INTO {C} (account_id, sponsor_id, name, starts_on, ends_on, deal_value,
                   status, created_at)
                SELECT account_id, id, 'HB', %s::date - 70, %s::date + 20, 5000, 'active', now()
                FROM {S}""",
            [NOW.date(), NOW.date()],
        )
        cursor.execute(
            f"""INSERT INTO {M} (campaign_id, date, impressions, clicks, conversions, revenue,
                   spend)
                SELECT c.id, %s::date - d, 1000, 20, 2, 100 + (c.id + d) %% 90, 80
                FROM {C} c CROSS JOIN generate_series(1, 60, 3) d""",
            [NOW.date()],
        )
        cursor.execute(
            f"""INSERT INTO {E} (account_id, type, occurred_at, properties, idempotency_key,
                   received_at)
                SELECT a.id, CASE WHEN k %% 3 = 0 THEN 'login' ELSE 'report.exported' END,
                       %s - make_interval(days => ((a.id * 7 + k * 11) %% 60)::int), '{{}}',
                       'hb-' || k, %s
                FROM {A} a CROSS JOIN generate_series(1, 10) k""",
            [NOW, NOW],
        )
        cursor.execute(
            f"""INSERT INTO {SUB} (account_id, plan_id, status, provider, provider_customer_id,
                   provider_subscription_id, current_period_start, current_period_end,
                   cancel_at_period_end, cancellation_reason, cancellation_comment, created_at)
                SELECT id, %s, CASE WHEN id %% 23 = 0 THEN 'past_due' ELSE 'active' END,
                       'local', '', '', %s, %s, id %% 41 = 0, '', '', %s
                FROM {A}""",
            [plan, NOW - dt.timedelta(days=10), NOW + dt.timedelta(days=20), NOW],
        )
        cursor.execute(
            f"""INSERT INTO {T} (account_id, requester_email, requester_name, channel, subject,
                   priority, status, escalation_level, tags, chat_session_id, created_at,
                   updated_at, first_response_due_at, resolution_due_at)
                SELECT id, 'hb@example.test', '', 'web', 'HB', 'normal',
                       CASE WHEN id %% 20 = 0 THEN 'open' ELSE 'resolved' END,
                       1 + id %% 4, '', '', %s - make_interval(days => (id %% 25)::int), %s,
                       %s - make_interval(days => (id %% 25)::int) + interval '4 hours',
                       %s - make_interval(days => (id %% 25)::int) + interval '2 days'
                FROM {A} WHERE id %% 10 = 0""",
            [NOW, NOW, NOW, NOW],
        )


@pytest.mark.django_db(transaction=True)
def test_check_all_at_100k_accounts(postgres_only):
    started = time.perf_counter()
    _insert_large(LARGE)
    seeded = time.perf_counter() - started
    result = _measure(
        "health: check_all_accounts at scale",
        LARGE,
        metric_rows=f"{CampaignMetric.objects.count():,}",
        usage_events=f"{UsageEvent.objects.count():,}",
        seed_seconds=f"{seeded:.0f}",
    )
    assert sum(result["counts"].values()) == LARGE  # every account has a status
