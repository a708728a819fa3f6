"""Account health API: the staff endpoints (check, account, summary, check-all), input
validation, the tenant walls, and the customer's own health without internal notes."""

import datetime as dt

import pytest

from deployments.health import services
from deployments.health.models import AccountHealthCheck
from tests.conftest import ApiClient
from tests.deployments.health_helpers import event
from tests.factories import AccountFactory, staff_in, token_for

pytestmark = pytest.mark.django_db


@pytest.fixture
def ops_api(db):
    return ApiClient(token_for(staff_in("operations")))


def test_post_check_returns_the_breakdown(ops_api, account, clock):
    response = ops_api.post("health/checks", {"account_id": account.id, "days": 30})
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["account_id"] == account.id
    assert body["score"] == "68.89"  # see test_health_services: 930 / 13.5
    assert body["status"] == "at_risk"
    assert body["delta"] is None
    logins = next(f for f in body["factors"] if f["name"] == "logins")
    assert logins == {
        "name": "logins",
        "label": "Logins in the window",
        "value": 0,
        "display": "0",
        "has_data": True,
        "points": "0.00",
        "weight": "2.00",
        "contribution": "0.00",
        "cost": "14.81",  # 100 * 2 / 13.5
    }
    assert body["recommendations"][0]["factor"] == "logins"
    assert body["triggered_by"].startswith("staff")
    second = ops_api.post("health/checks", {"account_id": account.id}).json()
    assert second["delta"] == "0.00"
    assert second["previous_status"] == "at_risk"


@pytest.mark.parametrize(
    "payload, field",
    [
        ({}, "account_id"),
        ({"account_id": "x"}, "account_id"),
        ({"account_id": 0}, "account_id"),
        ({"account_id": 1, "days": 0}, "days"),
        ({"account_id": 1, "days": 366}, "days"),
        ({"account_id": 1, "days": "\x00"}, "days"),
        ({"account_id": 1, "extra": True}, "extra"),
    ],
)
def test_invalid_check_input_is_422_with_the_field(ops_api, payload, field):
    response = ops_api.post("health/checks", payload)
    assert response.status_code == 422
    body = response.json()
    assert body["code"]
    assert any(field in [str(p) for p in e["loc"]] for e in body["errors"])
    assert not AccountHealthCheck.objects.exists()


def test_a_body_that_is_not_an_object_is_refused(ops_api):
    response = ops_api.post("health/checks", raw='"AAA"')
    assert 400 <= response.status_code < 500


def test_unknown_account_is_404(ops_api):
    response = ops_api.post("health/checks", {"account_id": 987654})
    assert response.status_code == 404
    assert response.json()["code"] == "not_found"


def test_account_health_with_history(ops_api, account, clock):
    services.check_account_health(account=account)
    for i in range(12):
        event(account, "login", clock.now - dt.timedelta(hours=i + 1), f"l{i}")
    clock.advance(days=1)
    services.check_account_health(account=account)
    response = ops_api.get(f"health/accounts/{account.id}")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "healthy"
    assert [p["status"] for p in body["history"]] == ["healthy", "at_risk"]
    assert body["latest"]["score"] == body["history"][0]["score"]
    assert ops_api.get("health/accounts/987654").status_code == 404


def test_summary_counts_by_status_and_persona(ops_api, clock):
    AccountFactory()
    AccountFactory()
    services.check_all_accounts()
    body = ops_api.get("health/summary").json()
    assert body["total"] == 2
    assert body["counts"] == {"healthy": 0, "at_risk": 2, "critical": 0, "no_data": 0}
    solo = next(p for p in body["personas"] if p["persona"] == "solo_podcaster")
    assert solo["counts"]["at_risk"] == 2
    brand = next(p for p in body["personas"] if p["persona"] == "brand")
    assert brand["total"] == 0


def test_check_all_is_queued_with_a_task_id(ops_api, account, clock):
    response = ops_api.post("health/check-all", {"days": 14})
    assert response.status_code == 202
    body = response.json()
    assert body["task_id"] and body["days"] == 14
    # The test cluster runs tasks synchronously: the account has been checked.
    assert AccountHealthCheck.objects.filter(account=account, days=14).count() == 1
    assert ops_api.post("health/check-all", {"batch_size": 0}).status_code == 422


STAFF_ENDPOINTS = [
    ("post", "health/checks", {"account_id": None}),
    ("get", "health/accounts/{id}", None),
    ("get", "health/summary", None),
    ("post", "health/check-all", {}),
]


@pytest.mark.parametrize("method, path, body", STAFF_ENDPOINTS)
def test_customers_get_403_on_staff_endpoints(api, account, method, path, body, clock):
    services.check_account_health(account=account)
    path = path.format(id=account.id)
    if body is not None and "account_id" in body:
        body = {"account_id": account.id}
    response = getattr(api, method)(path, body) if method == "post" else api.get(path)
    assert response.status_code == 403
    assert AccountHealthCheck.objects.count() == 1


@pytest.mark.parametrize("method, path, body", STAFF_ENDPOINTS)
def test_staff_without_the_permission_get_403(method, path, body, account, clock):
    client = ApiClient(token_for(staff_in("support_l1")))
    path = path.format(id=account.id)
    if body is not None and "account_id" in body:
        body = {"account_id": account.id}
    response = getattr(client, method)(path, body) if method == "post" else client.get(path)
    assert response.status_code == 403


def test_support_l3_reads_and_checks_but_l2_only_reads(account, clock):
    l3 = ApiClient(token_for(staff_in("support_l3")))
    assert l3.post("health/checks", {"account_id": account.id}).status_code == 201
    l2 = ApiClient(token_for(staff_in("support_l2")))
    assert l2.get(f"health/accounts/{account.id}").status_code == 200
    assert l2.post("health/checks", {"account_id": account.id}).status_code == 403


def test_anonymous_is_401(anon_api):
    assert anon_api.get("health/summary").status_code == 401
    assert anon_api.get("me/health").status_code == 401


def test_my_health_shows_my_account_only_without_internal_notes(
    api, other_api, account, other_account, clock
):
    assert api.get("me/health").status_code == 404  # not checked yet
    services.check_account_health(account=account)
    for i in range(12):
        event(other_account, "login", clock.now - dt.timedelta(hours=i + 1), f"o{i}")
    services.check_account_health(account=other_account)
    mine = api.get("me/health").json()
    theirs = other_api.get("me/health").json()
    assert (mine["status"], mine["score"]) == ("at_risk", "68.89")
    assert theirs["status"] == "healthy"
    assert set(mine) == {"checked_at", "score", "status", "delta", "factors"}
    assert "recommendations" not in mine and "critical_ticket_id" not in mine
    assert set(mine["factors"][0]) == {
        "name",
        "label",
        "value",
        "display",
        "has_data",
        "points",
        "weight",
    }


def test_staff_have_no_own_health(ops_api):
    assert ops_api.get("me/health").status_code == 403


def test_account_health_costs_the_same_with_1_and_50_checks(
    ops_api, account, clock, django_assert_max_num_queries
):
    services.check_account_health(account=account)
    with django_assert_max_num_queries(20) as one:
        assert ops_api.get(f"health/accounts/{account.id}").status_code == 200
    for day in range(1, 50):
        services.check_account_health(account=account, now=clock.now + dt.timedelta(days=day))
    with django_assert_max_num_queries(len(one.captured_queries)):
        body = ops_api.get(f"health/accounts/{account.id}").json()
    assert len(body["history"]) == 50
