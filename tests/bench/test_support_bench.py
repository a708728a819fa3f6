"""Support figures with 100k tickets on PostgreSQL: the admin changelist and the ticket list
endpoint (time per request, queries), and the SLA breach sweep over 100k open tickets."""

import statistics
import time

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from support import services
from support.models import Escalation, Ticket
from tests.bench.conftest import report
from tests.conftest import ApiClient
from tests.factories import AccountFactory, token_for
from tests.support.factories import make_agent

TICKETS = 100_000
ACCOUNTS = 200
REQUESTS = 10


def insert_tickets(count: int, accounts: list[int], agent_id: int) -> None:
    """One INSERT … SELECT over generate_series: 100k open tickets, a third of them assigned,
    all due an hour ago (so every one is breached for the sweep)."""
    now = timezone.now()
    sql = f"""
        INSERT INTO {Ticket._meta.db_table} (
            account_id, requester_email, requester_name, channel, subject, priority, status,
            escalation_level, assignee_id, tags, chat_session_id, created_at, updated_at,
            first_response_due_at, resolution_due_at)
        SELECT (%s::bigint[])[1 + g %% %s], 'bench' || g || '@example.com', '',
               (ARRAY['email','chat','web','in_app','api'])[1 + g %% 5],
               'Bench ticket ' || g,
               (ARRAY['low','normal','high','urgent'])[1 + g %% 4],
               (ARRAY['new','open','on_hold'])[1 + g %% 3],
               CASE WHEN g %% 4 = 3 THEN 2 ELSE 1 END,
               CASE WHEN g %% 3 = 0 THEN %s ELSE NULL END, '', '',
               %s - make_interval(mins => g %% 10000), %s,
               %s - interval '1 hour', %s - interval '1 hour'
        FROM generate_series(1, %s) AS g
    """
    with connection.cursor() as cursor:
        cursor.execute(sql, [accounts, len(accounts), agent_id, now, now, now, now, count])
        cursor.execute(f"ANALYZE {Ticket._meta.db_table}")


def timed(fn, n=REQUESTS):
    fn()  # warm caches
    with CaptureQueriesContext(connection) as ctx:
        fn()
    queries = len(ctx.captured_queries)
    times = []
    for _ in range(n):
        started = time.perf_counter()
        fn()
        times.append((time.perf_counter() - started) * 1000)
    return f"{statistics.median(times):.1f} ms median, {max(times):.1f} ms max", queries


@pytest.fixture
def loaded(postgres_only):
    accounts = [AccountFactory().id for _ in range(ACCOUNTS)]
    agent = make_agent(1, is_superuser=False)
    started = time.perf_counter()
    insert_tickets(TICKETS, accounts, agent.id)
    created = time.perf_counter() - started
    assert Ticket.objects.count() == TICKETS
    return agent, created


def test_changelist_and_api_with_100k_tickets(loaded):
    agent, created = loaded
    client = Client()
    client.force_login(agent)
    url = reverse("admin:support_ticket_changelist")

    def page(**params):
        response = client.get(url, params)
        assert response.status_code == 200

    api = ApiClient(token_for(agent))

    def listing(**params):
        response = api.get("support/tickets", params)
        assert response.status_code == 200
        assert len(response.json()["items"]) == 50 or params

    figures = {"insert_100k_tickets": f"{created:.2f} s (one INSERT … SELECT)"}
    for label, fn, params in [
        ("changelist", page, {}),
        ("changelist ?status=open", page, {"status": "open"}),
        ("changelist ?assignee=me&breached=yes", page, {"assignee": "me", "breached": "yes"}),
        ("changelist ?q=SUP-…", page, {"q": "SUP-050000"}),
        ("GET tickets", listing, {}),
        ("GET tickets?priority=urgent&level=2", listing, {"priority": "urgent", "level": 2}),
        ("GET tickets?breached=true", listing, {"breached": "true"}),
    ]:
        timing, queries = timed(lambda fn=fn, params=params: fn(**params))
        figures[label] = f"{timing}, {queries} queries"
    report(f"support lists with {TICKETS:,} tickets (PostgreSQL)", **figures)


def test_sla_sweep_over_100k_open_tickets(loaded):
    with CaptureQueriesContext(connection) as ctx:
        started = time.perf_counter()
        escalated = services.sweep_sla_breaches()
        first = time.perf_counter() - started
    first_queries = len(ctx.captured_queries)
    with CaptureQueriesContext(connection) as ctx:
        started = time.perf_counter()
        again = services.sweep_sla_breaches()
        second = time.perf_counter() - started
    assert escalated == TICKETS and again == 0
    assert Escalation.objects.count() == TICKETS
    report(
        f"SLA breach sweep over {TICKETS:,} open, breached tickets (PostgreSQL)",
        first_run=f"{first:.2f} s, {first_queries} queries, {escalated:,} escalated "
        f"(+{TICKETS:,} Escalation and history rows)",
        second_run=f"{second * 1000:.1f} ms, {len(ctx.captured_queries)} queries, "
        f"{again} escalated",
    )
