"""Property tests for the values that reached the database and broke it on PostgreSQL:
date-times with any UTC offset and any year, dates at the ends of the calendar, numbers far
beyond a column's range. Every answer is a documented 2xx or a 4xx JSON error, never a 5xx;
CI runs this file on SQLite and on PostgreSQL (`make test` with DATABASE_URL).

Schemathesis (tests/test_api_schema.py) covers every operation with generated requests; these
strategies aim more examples at the fields where the databases differ.
"""

import datetime as dt

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from opsplatform.models import CampaignMetric, UsageEvent
from tests.conftest import ApiClient
from tests.factories import AccountFactory, CampaignFactory, staff_in, token_for

EXAMPLES = hypothesis_settings(
    max_examples=120, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True
)

offsets = st.integers(min_value=-(23 * 60 + 59), max_value=23 * 60 + 59)
naive_moments = st.datetimes(min_value=dt.datetime(1, 1, 1), max_value=dt.datetime(9999, 12, 31))


def with_offset(moment: dt.datetime, minutes: int) -> str:
    sign = "-" if minutes < 0 else "+"
    hours, mins = divmod(abs(minutes), 60)
    return f"{moment.isoformat()}{sign}{hours:02d}:{mins:02d}"


edge_datetimes = st.one_of(
    st.builds(with_offset, naive_moments, offsets),
    st.sampled_from(
        [
            "0001-01-01T00:00:00+14:00",
            "9999-12-31T23:59:59-14:00",
            "0000-01-01T00:00:00Z",
            "10000-01-01T00:00:00Z",
            "2026-02-30T00:00:00Z",
            "2026-01-05T10:00:00+24:00",
            "2026-01-05T10:00:00",
        ]
    ),
)
edge_dates = st.one_of(
    st.dates(min_value=dt.date(1, 1, 1), max_value=dt.date(9999, 12, 31)).map(str),
    st.sampled_from(["0001-01-01", "9999-12-31", "0000-01-01", "10000-01-01", "2026-13-01"]),
)
huge_ints = st.one_of(
    st.integers(min_value=-(2**70), max_value=2**70),
    st.sampled_from([2**31, 2**63 - 1, 2**63, 10**12, 10**12 + 1, -1]),
)
edge_numbers = st.one_of(
    huge_ints.map(str),
    st.decimals(allow_nan=False, allow_infinity=False, places=2).map(str),
    st.sampled_from(["1e999999", "-0.00", "0.001", "NaN", "Infinity", "99999999999999.99"]),
)


@pytest.fixture
def customer(db):
    account = AccountFactory()
    return account, ApiClient(token_for(account.user))


def assert_handled(response):
    assert response.status_code < 500, response.content
    if response.status_code >= 400:
        body = response.json()
        assert body["detail"] and body["code"], body


@pytest.mark.django_db
@EXAMPLES
@given(occurred_at=edge_datetimes)
def test_event_times(customer, occurred_at):
    account, api = customer
    before = UsageEvent.objects.filter(account=account).count()
    body = {"events": [{"type": "login", "occurred_at": occurred_at, "idempotency_key": "x"}]}

    response = api.post("events", body)

    assert_handled(response)
    if response.status_code >= 400:
        assert UsageEvent.objects.filter(account=account).count() == before


@pytest.mark.django_db
@EXAMPLES
@given(day=edge_dates, impressions=huge_ints, revenue=edge_numbers)
def test_metric_values(customer, day, impressions, revenue):
    account, api = customer
    campaign = CampaignFactory(account=account)
    row = {
        "date": day,
        "impressions": impressions,
        "clicks": 0,
        "conversions": 0,
        "revenue": revenue,
        "spend": "0",
    }

    response = api.put(f"campaigns/{campaign.id}/metrics", {"metrics": [row]})

    assert_handled(response)
    if response.status_code >= 400:
        assert not CampaignMetric.objects.filter(campaign=campaign).exists()


@pytest.mark.django_db
@EXAMPLES
@given(starts_on=edge_dates, ends_on=edge_dates, deal_value=edge_numbers)
def test_campaign_dates_and_values(customer, starts_on, ends_on, deal_value):
    _, api = customer
    body = {
        "name": "Edge",
        "sponsor": "Acme",
        "starts_on": starts_on,
        "ends_on": ends_on,
        "deal_value": deal_value,
    }
    assert_handled(api.post("campaigns", body))


@pytest.mark.django_db
@EXAMPLES
@given(date_from=edge_dates, date_to=edge_dates)
def test_date_ranges_in_queries_and_bodies(customer, date_from, date_to):
    _, api = customer
    assert_handled(
        api.post(
            "exports",
            {
                "format": "csv",
                "data_types": ["campaigns"],
                "date_from": date_from,
                "date_to": date_to,
            },
        )
    )
    staff = ApiClient(token_for(staff_in("support_l2", is_superuser=True)))
    assert_handled(staff.get("support/metrics", {"date_from": date_from, "date_to": date_to}))
