from decimal import Decimal

import pytest

from checkpoints.models import KPIDefinition
from deployments.models import RolloutFreeze
from deployments.services import freeze_rollouts
from tests.checkpoints.conftest import kpi, open_ticket, solo_accounts
from tests.conftest import ApiClient
from tests.factories import staff_in, token_for


@pytest.fixture
def ops_api(db):
    return ApiClient(token_for(staff_in("operations")))


def patch(client: ApiClient, path: str, data: dict):
    return client._call("patch", path, data)


def test_post_runs_a_checkpoint_with_every_field(ops_api):
    kpi(severity="high")
    (account,) = solo_accounts(1)
    open_ticket(account)
    response = ops_api.post("checkpoints", {"checkpoint_name": "API run", "days": 30})
    assert response.status_code == 201
    body = response.json()
    assert body["checkpoint_name"] == "API run"
    assert body["days"] == 30
    # Windows are whole UTC days before today: the ticket opened today is not in this one.
    assert body["status"] == "passed"
    assert set(body) >= {
        "status",
        "summary",
        "persona_results",
        "function_results",
        "journey_results",
        "escalations",
        "backlog_items",
    }
    got = ops_api.get(f"checkpoints/{body['id']}")
    assert got.status_code == 200 and got.json()["summary"] == body["summary"]
    listed = ops_api.get("checkpoints", {"status": "passed"})
    assert [c["id"] for c in listed.json()["items"]] == [body["id"]]


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"checkpoint_name": "x", "days": 0}, "days"),
        ({"checkpoint_name": "x", "days": 3651}, "days"),
        ({"checkpoint_name": "x", "days": "9"}, "days"),
        ({"checkpoint_name": ""}, "checkpoint_name"),
        ({"checkpoint_name": "a\x00b"}, "checkpoint_name"),
        ({"days": 5}, "checkpoint_name"),
    ],
)
def test_bad_input_is_422_naming_the_field(ops_api, payload, field):
    response = ops_api.post("checkpoints", payload)
    assert response.status_code == 422
    assert response.json()["errors"][0]["loc"][-1] == field


def test_status_filter_and_unknown_checkpoint(ops_api):
    assert ops_api.get("checkpoints", {"status": "nope"}).status_code == 422
    assert ops_api.get("checkpoints/999999").status_code == 404


def test_customers_get_403_everywhere(api):
    assert api.post("checkpoints", {"checkpoint_name": "x"}).status_code == 403
    assert api.get("checkpoints").status_code == 403
    assert api.get("checkpoints/1").status_code == 403
    assert api.get("checkpoints/kpis").status_code == 403
    assert api.get("checkpoints/backlog").status_code == 403
    assert api.post("checkpoints/freeze/lift", {"reason": "x"}).status_code == 403
    assert patch(api, "checkpoints/kpis", {"key": "x", "target": "1"}).status_code == 403


def test_anonymous_gets_401(anon_api):
    assert anon_api.get("checkpoints").status_code == 401


def test_staff_without_the_permission_gets_403(db):
    client = ApiClient(token_for(staff_in("support_l1")))
    assert client.post("checkpoints", {"checkpoint_name": "x"}).status_code == 403


def test_kpis_create_list_and_patch(ops_api):
    created = ops_api.post(
        "checkpoints/kpis",
        {
            "key": "agency-roas",
            "name": "Agency ROAS",
            "scope_kind": "persona",
            "scope": "agency",
            "metric": "pooled_roas",
            "comparator": ">=",
            "target": "2.5",
            "warning_band": "0.2",
            "severity": "high",
        },
    )
    assert created.status_code == 201
    assert created.json()["target"] == "2.5000" or Decimal(created.json()["target"]) == Decimal(
        "2.5"
    )
    keys = [k["key"] for k in ops_api.get("checkpoints/kpis", {"limit": 200}).json()["items"]]
    assert "agency-roas" in keys
    changed = patch(ops_api, "checkpoints/kpis", {"key": "agency-roas", "target": "3"})
    assert changed.status_code == 200
    assert Decimal(changed.json()["target"]) == Decimal("3")
    definition = KPIDefinition.objects.get(key="agency-roas")
    assert definition.history.count() == 2
    assert ops_api.post(
        "checkpoints/kpis", created.json() | {"key": "agency-roas"}
    ).status_code in (
        409,
        422,
    )


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"comparator": "=="}, "comparator"),
        ({"severity": "huge"}, "severity"),
        ({"scope_kind": "journey"}, "metric"),
        ({"scope": "nobody"}, "scope"),
        ({"target": "NaN"}, "target"),
        ({"warning_band": "-1"}, "warning_band"),
        ({"window_days": 0}, "window_days"),
        ({"metric": "made_up"}, "metric"),
    ],
)
def test_patch_validates(ops_api, changes, field):
    kpi(key="solo-tickets")
    response = patch(ops_api, "checkpoints/kpis", {"key": "solo-tickets", **changes})
    assert response.status_code == 422
    body = response.json()
    assert body["errors"][0]["loc"][-1] == field


def test_patch_unknown_kpi_is_404(ops_api):
    assert patch(ops_api, "checkpoints/kpis", {"key": "nope", "target": "1"}).status_code == 404


def test_backlog_lists_items(ops_api):
    kpi(severity="low")
    (account,) = solo_accounts(1)
    open_ticket(account)
    from checkpoints.services import run_checkpoint
    from tests.checkpoints.conftest import tomorrow

    run_checkpoint("b", 30, as_of=tomorrow())
    items = ops_api.get("checkpoints/backlog").json()["items"]
    assert [(i["kpi"], i["status"], i["priority"]) for i in items] == [
        ("tickets-solo", "open", "p3")
    ]


def test_lift_freeze_api(ops_api):
    assert ops_api.post("checkpoints/freeze/lift", {"reason": "nothing"}).status_code == 409
    freeze_rollouts(
        reason="r", checkpoint_name="cp", checkpoint_id=3, kpi_key="deployments-success"
    )
    assert ops_api.post("checkpoints/freeze/lift", {}).status_code == 422
    response = ops_api.post("checkpoints/freeze/lift", {"reason": "Fixed the deploy pipeline"})
    assert response.status_code == 200
    assert response.json()[0]["kpi_key"] == "deployments-success"
    assert response.json()[0]["lift_reason"] == "Fixed the deploy pipeline"
    assert not RolloutFreeze.objects.get().active


def test_execute_answers_409_naming_checkpoint_and_kpi(db):
    from deployments.services import create_deployment

    client = ApiClient(token_for(staff_in(is_superuser=True)))
    deployment = create_deployment(version="4.0.0", strategy="all_at_once", rollout_percentage=100)
    freeze_rollouts(reason="r", checkpoint_name="November", checkpoint_id=3, kpi_key="journey-x")
    response = client.post(f"deployments/{deployment.id}/execute", {})
    assert response.status_code == 409
    assert response.json()["code"] == "rollouts_frozen"
    assert "checkpoint 'November' failed KPI journey-x" in response.json()["detail"]
