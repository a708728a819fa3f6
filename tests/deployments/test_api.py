"""The deployments and onboarding API: contract (paths, keys, codes), tenant walls on every
endpoint, and list endpoints at a fixed query count."""

import pytest

from deployments import services
from deployments.bucketing import bucket, is_exposed
from deployments.models import Deployment, OnboardingAssignment, OnboardingVersion
from tests.conftest import ApiClient
from tests.factories import staff_in, token_for

pytestmark = pytest.mark.django_db


@pytest.fixture
def ops_api(db):
    return ApiClient(token_for(staff_in("operations")))


@pytest.fixture
def reader_api(db):
    """Staff who may read deployments but not change them."""
    return ApiClient(token_for(staff_in("support_l3")))


def _pending(version="5.0.0", **kw):
    return services.create_deployment(
        version=version, strategy="rolling", rollout_percentage=kw.pop("pct", 10), **kw
    )


def test_create_answers_201_with_the_keys(ops_api):
    r = ops_api.post(
        "deployments",
        {"version": "5.0.0", "strategy": "rolling", "rollout_percentage": 5, "bake_minutes": 15},
    )
    assert r.status_code == 201, r.content
    body = r.json()
    assert body["status"] == "pending"
    assert body["current_percentage"] == 0
    assert body["stages"] == [5, 25, 50, 100]
    assert body["bake_minutes"] == 15
    assert Deployment.objects.get(pk=body["id"]).release.version == "5.0.0"


@pytest.mark.parametrize(
    "payload",
    [
        {"version": "five", "strategy": "rolling", "rollout_percentage": 5},
        {"version": "5.0.0", "strategy": "sideways", "rollout_percentage": 5},
        {"version": "5.0.0", "strategy": "rolling", "rollout_percentage": 101},
        {"version": "5.0.0", "strategy": "rolling", "rollout_percentage": 5, "stages": [5, 4]},
        {"version": "5.0.0\x00", "strategy": "rolling", "rollout_percentage": 5},
        {"version": "5.0.0", "strategy": "rolling", "rollout_percentage": 5, "extra": 1},
    ],
)
def test_bad_input_is_422_and_writes_nothing(ops_api, payload):
    r = ops_api.post("deployments", payload)
    assert r.status_code == 422
    assert set(r.json()) >= {"detail", "code"}
    assert not Deployment.objects.exists()


def test_dry_run_execute_evaluate_promote_pause_resume_rollback(ops_api, account):
    d = _pending()
    r = ops_api.post(f"deployments/{d.id}/execute", {"dry_run": True})
    assert r.status_code == 200
    assert [s["percentage"] for s in r.json()["stages"]] == [10, 25, 50, 100]
    assert r.json()["dry_run"] is True
    assert Deployment.objects.get(pk=d.pk).status == "pending"
    r = ops_api.post(f"deployments/{d.id}/execute", {"dry_run": False})
    assert (r.status_code, r.json()["status"], r.json()["current_percentage"]) == (
        200,
        "in_progress",
        10,
    )
    r = ops_api.post(f"deployments/{d.id}/evaluate")
    assert r.status_code == 200
    assert r.json()["outcome"] == "waiting"
    assert {g["gate"] for g in r.json()["gates"]} == {"error_rate", "tickets", "health"}
    assert ops_api.post(f"deployments/{d.id}/promote").json()["current_percentage"] == 25
    assert ops_api.post(f"deployments/{d.id}/pause").json()["status"] == "paused"
    assert ops_api.post(f"deployments/{d.id}/pause").status_code == 409
    assert ops_api.post(f"deployments/{d.id}/resume").json()["status"] == "in_progress"
    r = ops_api.post(f"deployments/{d.id}/rollback", {"reason": "errors up"})
    assert (r.json()["status"], r.json()["current_percentage"]) == ("rolled_back", 0)
    r = ops_api.post(f"deployments/{d.id}/rollback", {"reason": "again"})
    assert r.status_code == 409
    assert r.json()["code"] == "invalid_transition"
    detail = ops_api.get(f"deployments/{d.id}").json()
    assert len(detail["evaluations"]) == 1
    assert detail["rollback_reason"] == "errors up"


def test_unknown_ids_are_404(ops_api):
    for path in ("deployments/999", "onboarding/versions/999", "onboarding/versions/999/results"):
        assert ops_api.get(path).status_code == 404
    for path in ("execute", "pause", "resume", "promote", "evaluate"):
        r = ops_api.post(
            f"deployments/999/{path}", {"dry_run": False} if path == "execute" else None
        )
        assert r.status_code == 404, path
    assert ops_api.post("deployments/999/rollback", {"reason": "x"}).status_code == 404
    assert ops_api.get("deployments/assignment", {"account_id": 999}).status_code == 404
    assert ops_api.post("onboarding/assignments", {"account_id": 999}).status_code == 404


STAFF_ONLY = [
    ("get", "deployments", None),
    ("post", "deployments", {"version": "9.0.0", "strategy": "canary", "rollout_percentage": 1}),
    ("get", "deployments/{d}", None),
    ("post", "deployments/{d}/execute", {"dry_run": True}),
    ("post", "deployments/{d}/execute", {"dry_run": False}),
    ("post", "deployments/{d}/pause", None),
    ("post", "deployments/{d}/resume", None),
    ("post", "deployments/{d}/promote", None),
    ("post", "deployments/{d}/evaluate", None),
    ("post", "deployments/{d}/rollback", {"reason": "x"}),
    ("get", "onboarding/versions", None),
    ("post", "onboarding/versions", {"name": "n", "rollout_percentage": 5}),
    ("get", "onboarding/versions/{v}", None),
    ("post", "onboarding/versions/{v}/activate", None),
    ("post", "onboarding/versions/{v}/retire", None),
    ("get", "onboarding/versions/{v}/results", None),
]


@pytest.mark.parametrize(("method", "path", "body"), STAFF_ONLY)
def test_customers_and_staff_without_permission_get_403(
    api, reader_api, anon_api, method, path, body
):
    d = _pending()
    v = services.create_onboarding_version(version_name="v", rollout_percentage=10)
    url = path.format(d=d.id, v=v.id)
    callers = [api] if method == "get" else [api, reader_api]
    for client in callers:
        r = client.get(url) if method == "get" else client.post(url, body)
        assert r.status_code == 403, (url, r.content)
        assert r.json()["code"] == "permission_denied"
    r = anon_api.get(url) if method == "get" else anon_api.post(url, body)
    assert r.status_code == 401
    d.refresh_from_db()
    assert (d.status, Deployment.objects.count()) == ("pending", 1)
    assert OnboardingVersion.objects.get().status == "draft"


def test_release_assignment_for_staff_and_the_customers_own(
    ops_api, api, other_api, account, other_account
):
    assert ops_api.get("deployments/assignment", {"account_id": account.id}).json() == {
        "account_id": account.id,
        "release": None,
        "deployment_id": None,
        "exposed": False,
        "bucket": None,
    }
    old = _pending("1.0.0", pct=100)
    services.execute_deployment(deployment_id=old.id)
    services.promote_deployment(deployment_id=old.id)  # one stage: completed
    d = _pending("2.0.0", pct=50, stages=[50, 100])
    services.execute_deployment(deployment_id=d.id)
    mine = api.get("me/release").json()
    exposed = is_exposed(d.salt, account.id, 50)
    assert mine == {
        "account_id": account.id,
        "release": "2.0.0" if exposed else "1.0.0",
        "deployment_id": d.id,
        "exposed": exposed,
        "bucket": pytest.approx(float(bucket(d.salt, account.id))),
    }
    assert ops_api.get("deployments/assignment", {"account_id": account.id}).json() == mine
    # A customer asking for another account through the staff endpoint: 404, not 403.
    r = api.get("deployments/assignment", {"account_id": other_account.id})
    assert r.status_code == 404
    assert api.get("deployments/assignment", {"account_id": account.id}).json() == mine
    # After a rollback nobody is exposed: everyone is back on the completed release.
    services.rollback_deployment(deployment_id=d.id, reason="errors")
    after = api.get("me/release").json()
    assert (after["release"], after["deployment_id"], after["exposed"]) == ("1.0.0", old.id, True)
    # Staff have no account of their own.
    assert ops_api.get("me/release").status_code == 403


def test_onboarding_versions_and_results(ops_api):
    r = ops_api.post(
        "onboarding/versions",
        {
            "name": "guided",
            "rollout_percentage": 40,
            "target_personas": ["agency", "brand"],
            "features": ["checklist", "tour"],
        },
    )
    assert r.status_code == 201, r.content
    v = r.json()
    assert (v["status"], v["target_personas"], v["features"]) == (
        "draft",
        ["agency", "brand"],
        ["checklist", "tour"],
    )
    assert ops_api.post(f"onboarding/versions/{v['id']}/activate").json()["status"] == "active"
    over = ops_api.post("onboarding/versions", {"name": "more", "rollout_percentage": 70}).json()
    r = ops_api.post(f"onboarding/versions/{over['id']}/activate")
    assert r.status_code == 409
    assert r.json()["code"] == "shares_exceed_100"
    results = ops_api.get(f"onboarding/versions/{v['id']}/results").json()
    assert set(results) == {
        "version_id",
        "window_days",
        "arms",
        "lift_abs",
        "lift_abs_ci_low",
        "lift_abs_ci_high",
        "lift_rel",
        "p_value",
        "srm_p_value",
        "srm_flag",
        "verdict",
    }
    assert set(results["arms"][0]) == {
        "version_id",
        "name",
        "assigned",
        "completed",
        "completion_rate",
        "ci_low",
        "ci_high",
    }
    assert results["verdict"] == "not_enough_data"
    assert (
        ops_api.get(f"onboarding/versions/{v['id']}/results?window_days=7").json()["window_days"]
        == 7
    )
    assert ops_api.get(f"onboarding/versions/{v['id']}/results?window_days=0").status_code == 422
    assert ops_api.post(f"onboarding/versions/{v['id']}/retire").json()["status"] == "retired"


def test_onboarding_assignment_walls(ops_api, api, account, other_account):
    v = services.create_onboarding_version(
        version_name="all", rollout_percentage=100, features=["tour"]
    )
    services.activate_version(version_id=v.id)
    r = api.post("onboarding/assignments", {})
    assert r.status_code == 200
    body = r.json()
    assert (body["account_id"], body["version_id"], body["version_name"], body["features"]) == (
        account.id,
        v.id,
        "all",
        ["tour"],
    )
    assert api.post("onboarding/assignments", {}).json() == body  # sticky
    assert api.post("onboarding/assignments", {"account_id": account.id}).json() == body
    r = api.post("onboarding/assignments", {"account_id": other_account.id})
    assert r.status_code == 404
    assert not OnboardingAssignment.objects.filter(account=other_account).exists()
    assert ops_api.post("onboarding/assignments", {}).status_code == 422
    r = ops_api.post("onboarding/assignments", {"account_id": other_account.id})
    assert (r.status_code, r.json()["account_id"]) == (200, other_account.id)
    reader = ApiClient(token_for(staff_in("support_l3")))
    assert reader.post("onboarding/assignments", {"account_id": account.id}).status_code == 403


@pytest.mark.parametrize("path", ["deployments", "onboarding/versions"])
def test_lists_cost_the_same_queries_at_1_and_50_rows(ops_api, path, django_assert_max_num_queries):
    def make(n, start):
        for i in range(start, start + n):
            if path == "deployments":
                services.create_deployment(
                    version=f"7.{i}.0", strategy="canary", rollout_percentage=5
                )
            else:
                v = services.create_onboarding_version(
                    version_name=f"v{i}", rollout_percentage=1, target_personas=["agency"]
                )
                assert v.pk

    make(1, 0)
    with django_assert_max_num_queries(8) as one:
        assert len(ops_api.get(path).json()["items"]) == 1
    make(49, 1)
    with django_assert_max_num_queries(len(one.captured_queries)):
        assert len(ops_api.get(path).json()["items"]) == 50


def test_the_api_literals_match_the_model_choices():
    from typing import get_args

    from deployments import api
    from deployments.models import GateEvaluation

    assert set(get_args(api.StrategyName)) == set(Deployment.Strategy.values)
    assert set(get_args(api.DeploymentStatus)) == set(Deployment.Status.values)
    assert set(get_args(api.VersionStatus)) == set(OnboardingVersion.Status.values)
    assert set(get_args(api.Outcome)) == set(GateEvaluation.Outcome.values)
