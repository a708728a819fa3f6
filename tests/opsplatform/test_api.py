"""The core API: me, events, campaigns, metrics — validation, tenancy, malformed input."""

import datetime as dt
from decimal import Decimal

import pytest
from django.utils import timezone

from opsplatform.models import Campaign, CampaignMetric, UsageEvent
from tests.conftest import ApiClient
from tests.factories import (
    AccountFactory,
    CampaignFactory,
    CampaignMetricFactory,
    staff_in,
    token_for,
)

pytestmark = pytest.mark.django_db

CAMPAIGN = {
    "name": "Spring read",
    "sponsor": "Acme",
    "starts_on": "2026-03-01",
    "ends_on": "2026-03-31",
    "deal_value": "2500.00",
}


def event(key="k1", **kw):
    return {"type": "login", "occurred_at": "2026-01-05T10:00:00Z", "idempotency_key": key, **kw}


def metric(day="2026-03-02", **kw):
    return {
        "date": day,
        "impressions": 1000,
        "clicks": 10,
        "conversions": 1,
        "revenue": "50.00",
        "spend": "20.00",
        **kw,
    }


# --- auth ---------------------------------------------------------------------------------------


def test_me_describes_the_customer_and_their_account(api, account):
    response = api.get("me")

    assert response.status_code == 200
    body = response.json()
    assert body["account"] == {
        "id": account.id,
        "name": account.name,
        "persona": "solo_podcaster",
        "plan": "starter",
        "country": "US",
    }
    assert body["is_staff"] is False


@pytest.mark.parametrize("header", [None, "Bearer nope", "Bearer ops_\x00", "Basic abc", "Bearer "])
def test_missing_or_bad_credentials_answer_401_json(db, header):
    client = ApiClient(None)
    if header:
        client.headers = {"Authorization": header}

    response = client.get("me")

    assert response.status_code == 401
    assert response.json()["code"] == "unauthenticated"


def test_revoked_token_stops_working_at_once(account):
    from opsplatform import services
    from opsplatform.models import ApiToken

    raw = token_for(account.user)
    client = ApiClient(raw)
    assert client.get("me").status_code == 200

    services.revoke_api_token(token=ApiToken.objects.get(token_hash=ApiToken.hash(raw)))

    assert client.get("me").status_code == 401


def test_token_of_an_inactive_user_is_refused(account):
    client = ApiClient(token_for(account.user))
    account.user.is_active = False
    account.user.save()

    assert client.get("me").status_code == 401


def test_session_auth_requires_csrf_for_writes(account, client):
    from django.test import Client

    csrf_client = Client(enforce_csrf_checks=True)
    csrf_client.force_login(account.user)

    assert csrf_client.get("/api/v1/me").status_code == 200
    response = csrf_client.post("/api/v1/campaigns", CAMPAIGN, content_type="application/json")
    assert response.status_code == 403
    assert Campaign.objects.count() == 0


# --- events -------------------------------------------------------------------------------------


def test_events_are_stored_once_per_idempotency_key(api, account):
    first = api.post("events", {"events": [event("a"), event("b"), event("a")]})
    again = api.post("events", {"events": [event("b"), event("c")]})

    assert first.json() == {"accepted": 2, "duplicates": 1}
    assert again.json() == {"accepted": 1, "duplicates": 1}
    assert sorted(
        UsageEvent.objects.filter(account=account).values_list("idempotency_key", flat=True)
    ) == ["a", "b", "c"]


def test_a_stored_event_keeps_its_type_time_and_properties(api, account):
    body = {
        "type": "ad.played",
        "occurred_at": "2026-03-01T03:15:30.250000-08:00",
        "idempotency_key": "kept",
        "properties": {"episode": 12, "label": "Folge \u00fcber", "tags": ["a", "b"], "ok": True},
    }
    before = timezone.now()
    assert api.post("events", {"events": [body]}).json() == {"accepted": 1, "duplicates": 0}

    stored = UsageEvent.objects.get(account=account, idempotency_key="kept")
    assert stored.type == "ad.played"
    assert stored.occurred_at == dt.datetime(2026, 3, 1, 11, 15, 30, 250000, tzinfo=dt.UTC)
    assert stored.properties == {
        "episode": 12,
        "label": "Folge über",
        "tags": ["a", "b"],
        "ok": True,
    }
    assert before <= stored.received_at <= timezone.now()


def test_the_same_key_in_two_accounts_is_two_events(api, other_api):
    api.post("events", {"events": [event("same")]})
    response = other_api.post("events", {"events": [event("same")]})

    assert response.json() == {"accepted": 1, "duplicates": 0}
    assert UsageEvent.objects.count() == 2


def test_one_invalid_event_rejects_the_whole_batch(api):
    batch = {"events": [event("ok"), event("bad", occurred_at="2026-01-05T10:00:00")]}

    response = api.post("events", batch)

    assert response.status_code == 422
    assert response.json()["errors"][0]["loc"] == ["body", "events", 1, "occurred_at"]
    assert UsageEvent.objects.count() == 0


def test_more_than_1000_events_is_rejected(api):
    response = api.post("events", {"events": [event(str(i)) for i in range(1001)]})

    assert response.status_code == 422
    assert UsageEvent.objects.count() == 0


def test_a_batch_of_1000_events_is_accepted(api):
    response = api.post("events", {"events": [event(str(i)) for i in range(1000)]})

    assert response.json() == {"accepted": 1000, "duplicates": 0}


def test_customers_cannot_push_events_for_another_account(api, other_account):
    response = api.post("events", {"events": [event(account_id=other_account.id)]})

    assert response.status_code == 422
    assert UsageEvent.objects.count() == 0


def test_staff_push_events_for_a_named_account(staff_api, account):
    response = staff_api.post("events", {"events": [event(account_id=account.id)]})

    assert response.json() == {"accepted": 1, "duplicates": 0}
    assert UsageEvent.objects.get().account == account


def test_staff_event_for_unknown_account_is_404(staff_api):
    response = staff_api.post("events", {"events": [event(account_id=999999)]})

    assert response.status_code == 404
    assert UsageEvent.objects.count() == 0


def test_event_in_the_far_future_is_invalid(api):
    future = (dt.datetime.now(dt.UTC) + dt.timedelta(days=3)).isoformat()

    response = api.post("events", {"events": [event(occurred_at=future)]})

    assert response.status_code == 422


# --- campaigns ----------------------------------------------------------------------------------


def test_create_campaign_creates_the_sponsor_and_answers_201(api, account):
    response = api.post("campaigns", CAMPAIGN)

    assert response.status_code == 201
    body = response.json()
    campaign = Campaign.objects.get(id=body["id"])
    assert campaign.account == account
    assert campaign.sponsor.name == "Acme"
    assert campaign.deal_value == Decimal("2500.00")
    assert body["sponsor"] == "Acme"
    assert campaign.history.get().history_user == account.user


def test_renewal_links_to_the_campaign_it_renews(api):
    first = api.post("campaigns", CAMPAIGN).json()

    renewal = api.post(
        "campaigns",
        {
            **CAMPAIGN,
            "starts_on": "2026-04-01",
            "ends_on": "2026-04-30",
            "renewed_from": first["id"],
        },
    )
    twice = api.post(
        "campaigns",
        {
            **CAMPAIGN,
            "starts_on": "2026-05-01",
            "ends_on": "2026-05-30",
            "renewed_from": first["id"],
        },
    )

    assert renewal.status_code == 201
    assert renewal.json()["renewed_from"] == first["id"]
    assert twice.status_code == 409
    assert Campaign.objects.count() == 2


def test_cannot_renew_another_accounts_campaign(api, other_account):
    theirs = CampaignFactory(account=other_account)

    response = api.post("campaigns", {**CAMPAIGN, "renewed_from": theirs.id})

    assert response.status_code == 422
    assert response.json()["errors"][0]["loc"] == ["body", "renewed_from"]
    assert Campaign.objects.count() == 1


@pytest.mark.parametrize(
    "change, field",
    [
        ({"ends_on": "2026-02-01"}, None),
        ({"deal_value": "-5"}, "deal_value"),
        ({"deal_value": "1.234"}, "deal_value"),
        ({"deal_value": "NaN"}, "deal_value"),
        ({"starts_on": "2026-02-30"}, "starts_on"),
        ({"name": ""}, "name"),
        ({"name": "x" * 201}, "name"),
        ({"sponsor": 12}, "sponsor"),
        ({"extra": 1}, "extra"),
    ],
)
def test_invalid_campaign_answers_422_with_field_errors(api, change, field):
    response = api.post("campaigns", {**CAMPAIGN, **change})

    assert response.status_code == 422
    body = response.json()
    assert body["code"] == "invalid"
    if field:
        assert ["body", field] in [e["loc"] for e in body["errors"]]
    assert Campaign.objects.count() == 0


def test_campaign_list_shows_only_own_campaigns(api, account, other_account):
    mine = CampaignFactory(account=account)
    CampaignFactory(account=other_account)

    body = api.get("campaigns").json()

    assert body["count"] == 1
    assert [c["id"] for c in body["items"]] == [mine.id]


def test_customer_cannot_list_another_accounts_campaigns_by_filter(api, other_account):
    CampaignFactory(account=other_account)

    response = api.get("campaigns", {"account_id": other_account.id})

    assert response.status_code == 404


def test_another_accounts_campaign_is_404(api, other_account):
    theirs = CampaignFactory(account=other_account)

    assert api.get(f"campaigns/{theirs.id}").status_code == 404
    put = api.put(f"campaigns/{theirs.id}/metrics", {"metrics": [metric()]})
    assert put.status_code == 404
    assert CampaignMetric.objects.count() == 0


def test_staff_with_permission_sees_all_campaigns(db, account, other_account):
    CampaignFactory(account=account)
    CampaignFactory(account=other_account)
    ops = ApiClient(token_for(staff_in("operations")))
    support = ApiClient(token_for(staff_in("support_l1")))
    nobody = ApiClient(token_for(staff_in()))

    assert ops.get("campaigns").json()["count"] == 2
    assert ops.get("campaigns", {"account_id": account.id}).json()["count"] == 1
    assert support.get("campaigns").json()["count"] == 2
    assert nobody.get("campaigns").status_code == 403


def test_list_is_paginated_with_a_maximum_page_size(api, account):
    for _ in range(3):
        CampaignFactory(account=account)

    page = api.get("campaigns", {"limit": 2}).json()
    too_big = api.get("campaigns", {"limit": 500})

    assert len(page["items"]) == 2
    assert page["count"] == 3
    assert too_big.status_code == 422


# --- metrics ------------------------------------------------------------------------------------


@pytest.fixture
def campaign(account):
    return CampaignFactory(
        account=account, starts_on=dt.date(2026, 3, 1), ends_on=dt.date(2026, 3, 31)
    )


def test_metrics_upsert_by_date(api, campaign):
    api.put(
        f"campaigns/{campaign.id}/metrics",
        {"metrics": [metric("2026-03-02"), metric("2026-03-03")]},
    )

    response = api.put(
        f"campaigns/{campaign.id}/metrics",
        {"metrics": [metric("2026-03-03", impressions=5000, clicks=70)]},
    )

    assert response.json() == {"upserted": 1}
    rows = dict(CampaignMetric.objects.filter(campaign=campaign).values_list("date", "impressions"))
    assert rows == {dt.date(2026, 3, 2): 1000, dt.date(2026, 3, 3): 5000}


@pytest.mark.parametrize(
    "row, field",
    [
        (metric(impressions=-1), "impressions"),
        (metric(clicks=1001), "clicks"),
        (metric("2026-02-28"), "date"),
        (metric("2026-04-01"), "date"),
        (metric(revenue="-0.01"), "revenue"),
        (metric(impressions=10**13), "impressions"),
        (metric(spend="abc"), "spend"),
    ],
)
def test_invalid_metrics_answer_422_and_store_nothing(api, campaign, row, field):
    response = api.put(f"campaigns/{campaign.id}/metrics", {"metrics": [metric("2026-03-05"), row]})

    assert response.status_code == 422
    assert ["body", "metrics", 1, field] in [e["loc"] for e in response.json()["errors"]]
    assert CampaignMetric.objects.count() == 0


def test_a_date_twice_in_one_request_is_invalid(api, campaign):
    response = api.put(
        f"campaigns/{campaign.id}/metrics",
        {"metrics": [metric("2026-03-05"), metric("2026-03-05")]},
    )

    assert response.status_code == 422
    assert CampaignMetric.objects.count() == 0


def test_existing_metric_kept_when_upsert_is_rejected(api, campaign):
    CampaignMetricFactory(campaign=campaign, date=dt.date(2026, 3, 5), impressions=42, clicks=1)

    api.put(
        f"campaigns/{campaign.id}/metrics",
        {"metrics": [metric("2026-03-05"), metric("2026-03-06", clicks=5000)]},
    )

    assert CampaignMetric.objects.get().impressions == 42


# --- malformed input ----------------------------------------------------------------------------

MALFORMED = [
    '"AAA"',
    "[]",
    "null",
    "123",
    "{bad json",
    '{"name": "a\\u0000b"}',
    "\x00",
    '{"events": "x"}',
    '{"events": [1, 2]}',
    '{"metrics": [{"date": "2026-13-40"}]}',
    '{"events": [{"type": "x", "occurred_at": "not a date", "idempotency_key": "k"}]}',
    '{"events": [{"type": "x", "occurred_at": "2026-01-01T00:00:00Z", "idempotency_key": "k",'
    ' "properties": {"a": "\\u0000"}}]}',
    '{"name": {"nested": [1]}, "sponsor": true, "starts_on": 5, "ends_on": [], "deal_value": {}}',
    '{"deal_value": "1e999999", "name": "x", "sponsor": "y", "starts_on": "2026-01-01",'
    ' "ends_on": "2026-01-02"}',
    "\udcff" * 3,
]


@pytest.mark.parametrize("body", MALFORMED)
@pytest.mark.parametrize(
    "method, path", [("post", "campaigns"), ("post", "events"), ("put", "campaigns/{id}/metrics")]
)
def test_malformed_bodies_answer_4xx_json_never_500(api, campaign, body, method, path):
    raw = body.encode("utf-8", "surrogateescape")

    response = getattr(api, method)(path.format(id=campaign.id), raw=raw)

    assert 400 <= response.status_code < 500
    assert "detail" in response.json()
    assert "code" in response.json()


def test_ten_megabyte_body_is_refused_with_413(api):
    response = api.post("events", raw=b'{"events": [' + b" " * (10 * 1024 * 1024) + b"]}")

    assert response.status_code == 413
    assert response.json()["code"] == "too_large"


@pytest.mark.parametrize(
    "path", ["campaigns/0", "campaigns/-1", "campaigns/abc", "campaigns/99999999999999999999999"]
)
def test_bad_ids_answer_4xx(api, path):
    response = api.get(path)

    assert response.status_code in (404, 422)


@pytest.mark.parametrize(
    "params",
    [
        {"limit": "x"},
        {"offset": "99999999999999999999"},
        {"status": "nope"},
        {"sponsor": "a\x00"},
        {"account_id": "1e5"},
    ],
)
def test_bad_query_params_answer_422(api, params):
    assert api.get("campaigns", params).status_code == 422


# --- query budgets ------------------------------------------------------------------------------


@pytest.mark.parametrize("rows", [1, 50])
def test_campaign_list_costs_the_same_queries_at_1_and_50_rows(
    api, account, rows, django_assert_num_queries
):
    for _ in range(rows):
        CampaignFactory(account=account)
    api.get("me")  # token last-used stamp is written at most once a minute

    # token lookup (with the account), count, page
    with django_assert_num_queries(3):
        response = api.get("campaigns", {"limit": 50})

    assert len(response.json()["items"]) == rows


def test_other_account_sees_nothing_in_list(other_api, account):
    CampaignFactory(account=account)

    assert other_api.get("campaigns").json() == {"items": [], "count": 0}


def test_staff_without_account_cannot_create_campaigns(staff_api):
    response = staff_api.post("campaigns", CAMPAIGN)

    assert response.status_code == 403
    assert Campaign.objects.count() == 0


def test_openapi_schema_documents_error_responses(client):
    schema = client.get("/api/v1/openapi.json").json()

    op = schema["paths"]["/api/v1/campaigns"]["post"]
    assert {"201", "401", "404", "409", "422"} <= set(op["responses"])
    assert client.get("/api/v1/docs").status_code == 200


def test_second_account_with_same_sponsor_name_gets_its_own_sponsor(api, other_api):
    api.post("campaigns", CAMPAIGN)
    other_api.post("campaigns", CAMPAIGN)

    from opsplatform.models import Sponsor

    assert Sponsor.objects.filter(name="Acme").count() == 2
    assert AccountFactory._meta.model.objects.count() == 2


def test_rate_limit_answers_429_json(api, monkeypatch):
    from opsplatform.api import api as ninja_api

    throttle = ninja_api.throttle[0]
    monkeypatch.setattr(throttle, "num_requests", 3)
    from django.core.cache import cache

    cache.clear()
    statuses = [api.get("me").status_code for _ in range(5)]

    assert statuses[:3] == [200, 200, 200]
    assert statuses[3:] == [429, 429]
    assert api.get("me").json()["code"] == "rate_limited"


def test_empty_name_error_reads_like_a_string_error(api):
    response = api.post("campaigns", {**CAMPAIGN, "name": ""})

    error = next(e for e in response.json()["errors"] if e["loc"] == ["body", "name"])
    assert error["msg"] == "String should have at least 1 character"
