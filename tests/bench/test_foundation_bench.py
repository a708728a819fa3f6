"""Foundation figures: demo-data write rate, and usage-event ingestion through the API."""

import datetime as dt
import io
import time

import pytest
from django.core.management import call_command

from opsplatform.models import UsageEvent
from tests.bench.conftest import report
from tests.conftest import ApiClient
from tests.factories import AccountFactory, token_for


@pytest.mark.django_db(transaction=True)
def test_seed_demo_10k_accounts_rows_per_second(postgres_only):
    out = io.StringIO()
    started = time.perf_counter()
    call_command(
        "seed_demo", "--accounts", "10000", "--seed", "1", "--as-of", "2026-06-30", stdout=out
    )
    elapsed = time.perf_counter() - started
    summary = next(line for line in out.getvalue().splitlines() if line.startswith("Seeded"))
    report(
        "seed_demo --accounts 10000 (PostgreSQL)", summary=summary, wall_seconds=f"{elapsed:.1f}"
    )
    from opsplatform.models import CampaignMetric

    assert CampaignMetric.objects.count() > 1_000_000


def test_event_ingestion_events_per_second(postgres_only):
    account = AccountFactory()
    client = ApiClient(token_for(account.user))
    now = dt.datetime(2026, 6, 1, tzinfo=dt.UTC)
    batches = 20
    started = time.perf_counter()
    for b in range(batches):
        events = [
            {
                "type": "campaign.viewed",
                "occurred_at": (now + dt.timedelta(seconds=i)).isoformat(),
                "idempotency_key": f"{b}-{i}",
                "properties": {"page": i % 7},
            }
            for i in range(1000)
        ]
        response = client.post("events", {"events": events})
        assert response.json()["accepted"] == 1000
    fresh = time.perf_counter() - started
    started = time.perf_counter()
    for b in range(5):
        events = [
            {
                "type": "campaign.viewed",
                "occurred_at": now.isoformat(),
                "idempotency_key": f"{b}-{i}",
            }
            for i in range(1000)
        ]
        assert client.post("events", {"events": events}).json()["duplicates"] == 1000
    dupes = time.perf_counter() - started
    report(
        "POST /api/v1/events, 1,000-event batches (PostgreSQL)",
        new_events_per_second=f"{batches * 1000 / fresh:,.0f}",
        duplicate_events_per_second=f"{5 * 1000 / dupes:,.0f}",
        stored=f"{UsageEvent.objects.count():,}",
    )
