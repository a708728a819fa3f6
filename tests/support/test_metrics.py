"""Dashboard figures against a hand-computed fixture: open by status and level, SLA
attainment, breached list, median and p90 (linear interpolation) by channel and priority."""

import datetime as dt

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from support import selectors
from support.models import CSATRating, Ticket
from tests.factories import AccountFactory

pytestmark = pytest.mark.django_db
Status = Ticket.Status
NOW = dt.datetime(2025, 3, 31, 12, 0, tzinfo=dt.UTC)
MIN = dt.timedelta(minutes=1)


@pytest.fixture
def fixture(clock):
    """Seven answered tickets created on 2025-03-10 (first-response target 30 min):

    email, normal: first response after 10, 20, 30, 40, 100 min; resolved after 120, 240 min
    web, high:     first response after 60, 120 min
    plus one unanswered web ticket past its due time (breached, L2, open), one pending
    ticket, one ticket created before the window (excluded from the window's figures).
    """
    clock.now = NOW
    account = AccountFactory()
    base = dt.datetime(2025, 3, 10, 9, 0, tzinfo=dt.UTC)
    rows = []

    def add(
        channel,
        priority,
        first=None,
        resolved=None,
        status=Status.OPEN,
        level=1,
        created=base,
        paused=None,
    ):
        rows.append(
            Ticket(
                account=account,
                requester_email="a@example.com",
                channel=channel,
                subject=f"{channel} {first}",
                priority=priority,
                status=status,
                escalation_level=level,
                created_at=created,
                updated_at=created,
                first_response_at=created + first * MIN if first is not None else None,
                resolved_at=created + resolved * MIN if resolved is not None else None,
                first_response_due_at=created + 30 * MIN,
                resolution_due_at=created + 180 * MIN,
                sla_paused_at=paused,
            )
        )

    add("email", "normal", 10, 120, status=Status.RESOLVED)
    add("email", "normal", 20, 240, status=Status.CLOSED)
    add("email", "normal", 30)
    add("email", "normal", 40)
    add("email", "normal", 100)
    add("web", "high", 60, status=Status.ON_HOLD, level=3)
    add("web", "high", 120)
    add("web", "urgent", None, level=2)  # unanswered, due long ago: breached
    add("chat", "low", None, status=Status.PENDING, created=NOW - 10 * MIN, paused=NOW - 5 * MIN)
    add(
        "email",
        "normal",
        5,
        5,
        status=Status.CLOSED,
        created=dt.datetime(2025, 1, 5, tzinfo=dt.UTC),
    )
    Ticket.objects.bulk_create(rows)
    resolved = Ticket.objects.filter(
        status__in=[Status.RESOLVED, Status.CLOSED], created_at=base
    ).order_by("id")
    CSATRating.objects.bulk_create(
        [CSATRating(ticket=resolved[0], rating=5), CSATRating(ticket=resolved[1], rating=2)]
    )
    return account


def metrics(user):
    return selectors.support_metrics_get(
        user=user, date_from=dt.date(2025, 3, 1), date_to=dt.date(2025, 3, 31)
    )


def test_durations_by_channel_priority_and_overall(fixture, agent):
    m = metrics(agent)

    email = m.first_response["channel"]["email"]
    assert (email.count, email.median_seconds, email.p90_seconds) == (5, 30 * 60, 76 * 60)
    web = m.first_response["channel"]["web"]
    assert (web.count, web.median_seconds, web.p90_seconds) == (2, 90 * 60, 114 * 60)
    overall = m.first_response["all"]
    assert (overall.count, overall.median_seconds, overall.p90_seconds) == (7, 40 * 60, 108 * 60)
    assert m.first_response["priority"]["high"].median_seconds == 90 * 60
    assert m.first_response["channel"]["chat"].count == 0
    assert m.first_response["channel"]["chat"].median_seconds is None
    resolution = m.resolution["channel"]["email"]
    assert (resolution.count, resolution.median_seconds, resolution.p90_seconds) == (
        2,
        180 * 60,
        228 * 60,
    )


def test_open_counts_attainment_breached_and_csat(fixture, agent):
    m = metrics(agent)

    assert m.created == 9
    assert m.open_total == 7  # 3 email open, web on_hold, web open, web urgent, chat pending
    assert m.open_by_status[Status.OPEN] == {1: 4, 2: 1, 3: 0, 4: 0, "total": 5}
    assert m.open_by_status[Status.ON_HOLD][3] == 1
    assert m.open_by_status[Status.PENDING]["total"] == 1
    assert m.open_by_level == {1: 5, 2: 1, 3: 1, 4: 0}
    # First response due after 30 min: 10, 20, 30 met; 40, 100, 60, 120 late; the
    # unanswered urgent one is breached; the pending one paused before its due time.
    assert (m.first_response_met, m.first_response_missed) == (3, 5)
    assert m.first_response_attainment == 37.5
    # Resolution due after 180 min: 120 met, 240 late; six active tickets past due.
    assert (m.resolution_met, m.resolution_missed) == (1, 7)
    assert m.breached_total == 6
    assert "web None" in [t.subject for t in m.breached]
    assert (m.csat_count, m.csat_average) == (2, 3.5)


def test_window_excludes_other_tickets(fixture, agent):
    m = selectors.support_metrics_get(
        user=agent, date_from=dt.date(2025, 1, 1), date_to=dt.date(2025, 1, 31)
    )
    assert m.created == 1
    assert m.first_response["all"].median_seconds == 5 * 60
    assert m.first_response["channel"]["web"].count == 0


def test_api_and_dashboard_show_the_same_figures(fixture, agent, agent_api, client):
    response = agent_api.get(
        "support/metrics", {"date_from": "2025-03-01", "date_to": "2025-03-31"}
    )
    assert response.status_code == 200
    body = response.json()
    assert body["first_response"]["channel"]["email"] == {
        "count": 5,
        "median_seconds": 1800.0,
        "p90_seconds": 4560.0,
    }
    assert body["open_by_level"] == {"1": 5, "2": 1, "3": 1, "4": 0}
    assert body["first_response_attainment"] == 37.5

    client.force_login(agent)
    page = client.get(
        reverse("admin:support_ticket_dashboard"),
        {"date_from": "2025-03-01", "date_to": "2025-03-31"},
    )
    assert page.status_code == 200
    html = page.content.decode()
    assert "30 min" in html and "1 h 16 min" in html and "1 h 48 min" in html
    assert "37.5 %" in html


def test_dashboard_rejects_a_reversed_window(agent, client):
    client.force_login(agent)
    page = client.get(
        reverse("admin:support_ticket_dashboard"),
        {"date_from": "2025-03-10", "date_to": "2025-03-01"},
    )
    assert page.status_code == 200
    assert "date_from must be on or before date_to" in page.content.decode()


def dashboard_queries(client) -> int:
    with CaptureQueriesContext(connection) as queries:
        response = client.get(reverse("admin:support_ticket_dashboard"))
    assert response.status_code == 200
    return len(queries)


def test_dashboard_costs_the_same_queries_at_ten_and_sixty_tickets(fixture, agent, client):
    client.force_login(agent)
    client.get(reverse("admin:support_ticket_dashboard"))  # warm caches (content types)
    at_ten = dashboard_queries(client)

    Ticket.objects.bulk_create(
        [
            Ticket(
                account=fixture,
                requester_email=f"r{n}@example.com",
                channel="web",
                subject=f"More {n}",
                priority="normal",
                status=Status.OPEN,
                created_at=NOW - n * MIN,
                updated_at=NOW - n * MIN,
                first_response_due_at=NOW - n * MIN + 30 * MIN,
                resolution_due_at=NOW - n * MIN + 180 * MIN,
            )
            for n in range(1, 51)
        ]
    )
    at_sixty = dashboard_queries(client)

    assert at_ten == at_sixty
    assert at_ten <= 20
