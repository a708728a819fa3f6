"""The scoring API of issue 15: paths, keys, status codes, the 422 keys, and its walls."""

import datetime as dt
from decimal import Decimal

import pytest
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from scoring.metadata import KNOWN_KEYS
from scoring.models import Feature, FeatureScore, Outcome, Roadmap, ScoringModel
from tests.conftest import ApiClient
from tests.factories import staff_in, token_for
from tests.scoring.factories import SEED_EXAMPLE, feature, launched, outcome

pytestmark = pytest.mark.django_db


@pytest.fixture
def ops_api(ops_user):
    return ApiClient(token_for(ops_user))


@pytest.fixture
def reader_api(db):
    return ApiClient(token_for(staff_in("compliance")))  # view permissions only


@pytest.fixture
def bare_staff_api(db):
    return ApiClient(token_for(staff_in()))


def test_post_feature_answers_201_keeping_unknown_keys_as_ignored(ops_api):
    response = ops_api.post(
        "scoring/features",
        {
            "key": "feature_123",
            "name": "Advanced Attribution",
            "metadata": {**SEED_EXAMPLE, "launch_quarter": "Q3"},
        },
    )
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["key"] == "feature_123"
    assert body["status"] == "proposed"
    assert body["ignored_keys"] == ["launch_quarter"]
    assert body["metadata"]["conversion_potential"] == "0.8"
    assert body["metadata"]["launch_quarter"] == "Q3"
    assert body["latest_score"] is None
    assert Feature.objects.get().name == "Advanced Attribution"


def test_a_duplicate_key_answers_409(ops_api):
    feature("dup")
    response = ops_api.post("scoring/features", {"key": "dup", "name": "Again"})
    assert response.status_code == 409
    assert response.json()["code"] == "duplicate_key"
    assert Feature.objects.count() == 1


@pytest.mark.parametrize(
    ("metadata", "key"),
    [
        ({"complexity": 1.5}, "complexity"),
        ({"conversion_potential": "high"}, "conversion_potential"),
        ({"effort_weeks": 0}, "effort_weeks"),
        ({"estimated_revenue_impact": -5}, "estimated_revenue_impact"),
        ({"target_personas": ["pirate"]}, "target_personas"),
        ({"support_tags": "billing"}, "support_tags"),
        ({"reach_accounts": True}, "reach_accounts"),
        ({"time_savings_hours_per_month": None, "ui_complexity": [1]}, "ui_complexity"),
    ],
)
def test_invalid_metadata_answers_422_naming_the_key(ops_api, metadata, key):
    response = ops_api.post("scoring/features", {"key": "f", "name": "F", "metadata": metadata})
    assert response.status_code == 422
    body = response.json()
    assert body["code"] == "invalid"
    assert body["errors"][0]["loc"] == ["body", "metadata", key]
    assert not Feature.objects.exists()


@pytest.mark.parametrize(
    "payload",
    [
        '"just a string"',
        {"key": "Bad Key", "name": "F"},
        {"key": "f", "name": ""},
        {"key": "f", "name": "F\x00"},
        {"key": "f", "name": "F", "metadata": ["not", "an", "object"]},
        {"key": "f", "name": "F", "metadata": {"note": "a\x00b"}},
        {"key": "f", "name": "F", "surprise": 1},
    ],
)
def test_malformed_feature_bodies_answer_422(ops_api, payload):
    response = ops_api.post("scoring/features", payload)
    assert response.status_code == 422
    assert response.json()["code"] == "invalid"
    assert not Feature.objects.exists()


def test_list_features_with_their_latest_score_in_fixed_queries(
    ops_api, django_assert_max_num_queries
):
    feature("one", **SEED_EXAMPLE)
    ops_api.post(f"scoring/features/{Feature.objects.get().pk}/score", {})
    with django_assert_max_num_queries(8) as small:
        response = ops_api.get("scoring/features")
    assert response.status_code == 200
    items = response.json()["items"]
    assert items[0]["latest_score"]["overall_score"] == "53.05"
    for n in range(30):
        feature(f"k{n:02d}")
    with django_assert_max_num_queries(len(small.captured_queries)):
        response = ops_api.get("scoring/features", {"limit": 50})
    assert response.json()["count"] == 31


def test_score_answers_201_with_the_score_fields(ops_api):
    f = feature("feature_123", **SEED_EXAMPLE)
    response = ops_api.post(f"scoring/features/{f.pk}/score", {})
    assert response.status_code == 201
    body = response.json()
    assert body["feature_id"] == "feature_123"
    assert body["model_version"] == 1
    assert body["roi_score"] == "89.01"
    assert body["workload_impact_score"] == "20.00"
    assert body["ease_of_use_score"] == "52.00"
    assert body["value_creation_score"] == "30.00"
    assert body["overall_score"] == "53.05"
    assert body["persona_scores"]["brand"] == "55.90"
    assert (body["rice"], body["ice"], body["wsjf"]) == ("0.00", "208.00", "5.75")
    assert set(body["explanation"]) >= {
        "roi",
        "workload_impact",
        "ease_of_use",
        "value_creation",
        "overall",
    }
    assert body["evidence"]["health"]["note"] == "no addresses_health_factors given"
    assert isinstance(body["recommendations"], list)


def test_score_with_a_metadata_override_and_with_an_empty_body(ops_api):
    f = feature("f", complexity="1", ui_complexity="1")
    response = ops_api.post(
        f"scoring/features/{f.pk}/score", {"metadata": {"complexity": 0, "ui_complexity": 0}}
    )
    assert response.json()["ease_of_use_score"] == "100.00"
    response = ops_api.post(f"scoring/features/{f.pk}/score", {})
    assert response.status_code == 201
    assert response.json()["ease_of_use_score"] == "0.00"
    response = ops_api.post(f"scoring/features/{f.pk}/score", {"metadata": {"complexity": "2"}})
    assert response.status_code == 422
    assert response.json()["errors"][0]["loc"] == ["body", "metadata", "complexity"]
    assert FeatureScore.objects.count() == 2


def test_score_of_a_missing_feature_answers_404(ops_api):
    assert ops_api.post("scoring/features/999/score", {}).status_code == 404
    assert ops_api.post("scoring/features/0/score", {}).status_code == 422


def test_compare_ranks_the_features(ops_api):
    feature("a", **SEED_EXAMPLE)
    feature("b", **{**SEED_EXAMPLE, "complexity": 0, "ui_complexity": 0})
    response = ops_api.post("scoring/compare", {"feature_ids": ["a", "b"]})
    assert response.status_code == 200
    body = response.json()
    assert body["leader"] == "b"
    assert [f["feature_id"] for f in body["features"]] == ["b", "a"]
    assert body["features"][1]["difference_to_leader"]["overall"] == "-9.60"
    assert body["pairs"] == [
        {
            "higher": "b",
            "lower": "a",
            "overall_difference": "9.60",
            "deciding_dimension": "ease_of_use",
            "contributions": {
                "roi": "0.00",
                "workload_impact": "0.00",
                "ease_of_use": "9.60",
                "value_creation": "0.00",
            },
        }
    ]
    assert ops_api.post("scoring/compare", {"feature_ids": ["a"]}).status_code == 422
    assert ops_api.post("scoring/compare", {"feature_ids": ["a", "zz"]}).status_code == 404


def test_roadmap_answers_201_with_tiers(ops_api):
    response = ops_api.post(
        "scoring/roadmap",
        {
            "items": [
                {"feature_id": "f1", "name": "Feature 1", "metadata": {"effort_weeks": 10}},
                {
                    "feature_id": "f2",
                    "name": "Feature 2",
                    "metadata": {"effort_weeks": 4},
                    "depends_on": ["f1"],
                },
            ],
            "capacity_weeks": 10,
        },
    )
    assert response.status_code == 201, response.content
    body = response.json()
    assert [i["feature_id"] for i in body["items"]] == ["f1", "f2"]
    assert body["tiers"] == {"now": ["f1"], "next": ["f2"], "later": []}
    assert body["capacity_weeks"] == "10.00"
    assert Roadmap.objects.count() == 1


def test_roadmap_cycle_answers_422_naming_it(ops_api):
    response = ops_api.post(
        "scoring/roadmap",
        {
            "items": [
                {"feature_id": "a", "name": "A", "depends_on": ["b"]},
                {"feature_id": "b", "name": "B", "depends_on": ["a"]},
            ]
        },
    )
    assert response.status_code == 422
    assert response.json()["detail"] == "depends_on has a cycle: a → b → a"
    assert not Feature.objects.exists()


def test_roadmap_item_metadata_errors_point_at_the_item(ops_api):
    response = ops_api.post(
        "scoring/roadmap",
        {
            "items": [
                {"feature_id": "a", "name": "A"},
                {"feature_id": "b", "name": "B", "metadata": {"effort_weeks": -1}},
            ]
        },
    )
    assert response.status_code == 422
    assert response.json()["errors"][0]["loc"] == ["body", "items", 1, "metadata", "effort_weeks"]
    assert not Feature.objects.exists()
    assert not FeatureScore.objects.exists()


@pytest.mark.parametrize(
    "payload",
    [
        {"items": []},
        {"items": [{"feature_id": "a"}], "capacity_weeks": 0},
        {"items": [{"feature_id": "a"}], "capacity_weeks": "1e9"},
        {"items": [{"feature_id": "a", "name": "A"}, {"feature_id": "a", "name": "A"}]},
        {"items": [{"feature_id": "new"}]},  # a new feature needs a name
    ],
)
def test_bad_roadmaps_answer_422(ops_api, payload):
    response = ops_api.post("scoring/roadmap", payload)
    assert response.status_code == 422
    assert not Roadmap.objects.exists()


def test_outcomes_are_recorded_for_launched_features(ops_api):
    launched("done", launched_on=timezone.localdate() - dt.timedelta(days=10))
    feature("open")
    body = {
        "feature_id": "done",
        "measured_on": str(timezone.localdate()),
        "adoption_rate": "0.4",
        "revenue_change": "1200.50",
        "ticket_change": -3,
        "time_saved_hours": "6",
    }
    response = ops_api.post("scoring/outcomes", body)
    assert response.status_code == 201, response.content
    assert response.json()["adoption_rate"] == "0.400000"
    assert response.json()["revenue_change"] == "1200.50"
    assert response.json()["source"] == "manual"
    assert ops_api.post("scoring/outcomes", {**body, "feature_id": "open"}).status_code == 409
    assert ops_api.post("scoring/outcomes", {**body, "adoption_rate": 2}).status_code == 422
    assert ops_api.post("scoring/outcomes", {**body, "compute": True}).status_code == 422
    future = str(timezone.localdate() + dt.timedelta(days=2))
    assert ops_api.post("scoring/outcomes", {**body, "measured_on": future}).status_code == 422
    assert Outcome.objects.count() == 1


def test_computed_outcome_through_the_api(ops_api):
    launched("done", launched_on=timezone.localdate() - dt.timedelta(days=10))
    response = ops_api.post(
        "scoring/outcomes",
        {
            "feature_id": "done",
            "measured_on": str(timezone.localdate()),
            "revenue_change": "0",
            "time_saved_hours": "1",
            "compute": True,
        },
    )
    assert response.status_code == 201
    assert response.json()["source"] == "computed"
    assert response.json()["adoption_rate"] == "0.000000"  # no active accounts


def test_refit_and_list_models(ops_api, django_assert_max_num_queries):
    for n in range(2):
        launched(f"f{n}", launched_on=timezone.localdate() - dt.timedelta(days=5))
        outcome(f"f{n}")
    response = ops_api.post("scoring/models/refit")
    assert response.status_code == 200
    body = response.json()
    assert body["created"] is False
    assert body["n"] == 2
    assert "at least 3" in body["reason"]
    with django_assert_max_num_queries(6):
        response = ops_api.get("scoring/models")
    models = response.json()["items"]
    assert [m["version"] for m in models] == [1]
    assert models[0]["weights"]["roi"] == "0.35"
    assert models[0]["calibration"]["decision"] == "kept"
    assert ScoringModel.objects.count() == 1


# --- walls --------------------------------------------------------------------------------------

ENDPOINTS = [
    ("post", "scoring/features", {"key": "x", "name": "X"}),
    ("get", "scoring/features", None),
    ("get", "scoring/features/{id}", None),
    ("post", "scoring/features/{id}/score", {}),
    ("post", "scoring/compare", {"feature_ids": ["wall", "wall2"]}),
    ("post", "scoring/roadmap", {"items": [{"feature_id": "wall"}]}),
    (
        "post",
        "scoring/outcomes",
        {
            "feature_id": "wall",
            "measured_on": "2026-01-01",
            "adoption_rate": "0.1",
            "revenue_change": "0",
            "ticket_change": 0,
            "time_saved_hours": "0",
        },
    ),
    ("post", "scoring/models/refit", None),
    ("get", "scoring/models", None),
]
READS = {("get", "scoring/features"), ("get", "scoring/features/{id}"), ("get", "scoring/models")}


def _call(client, method, path, body, feature_id):
    path = path.format(id=feature_id)
    return client.get(path) if method == "get" else client.post(path, body)


@pytest.mark.parametrize(("method", "path", "body"), ENDPOINTS)
def test_customers_get_403_and_anonymous_401_on_every_endpoint(api, anon_api, method, path, body):
    f = feature("wall")
    feature("wall2")
    before = (FeatureScore.objects.count(), Feature.objects.count(), Roadmap.objects.count())
    response = _call(api, method, path, body, f.pk)
    assert response.status_code == 403
    assert response.json()["code"] == "permission_denied"
    assert _call(anon_api, method, path, body, f.pk).status_code == 401
    after = (FeatureScore.objects.count(), Feature.objects.count(), Roadmap.objects.count())
    assert after == before


@pytest.mark.parametrize(("method", "path", "body"), ENDPOINTS)
def test_staff_need_the_scoring_permissions(bare_staff_api, reader_api, method, path, body):
    f = feature("wall")
    feature("wall2")
    assert _call(bare_staff_api, method, path, body, f.pk).status_code == 403
    status = _call(reader_api, method, path, body, f.pk).status_code
    assert status == (200 if (method, path) in READS else 403)


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(10**20), 10**20)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=8,
)


@settings(
    max_examples=150, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True
)
@given(
    metadata=st.dictionaries(
        st.sampled_from([*KNOWN_KEYS, "other", "x\x00"]), json_values, max_size=6
    )
)
def test_any_metadata_is_a_201_or_a_422_never_a_500(db, ops_user, metadata):
    client = ApiClient(token_for(ops_user))
    response = client.post(
        "scoring/roadmap", {"items": [{"feature_id": "fz", "name": "F", "metadata": metadata}]}
    )
    assert response.status_code in (201, 422), response.content
    if response.status_code == 201:
        score = response.json()["items"][0]
        assert Decimal(0) <= Decimal(score["overall_score"]) <= Decimal(100)
    Feature.objects.filter(key="fz").delete()


@pytest.mark.parametrize(
    "raw",
    [
        '{"key": "f", "name": "F", "metadata": {"x": NaN}}',
        '{"key": "f", "name": "F", "metadata": {"complexity": Infinity}}',
    ],
)
def test_nan_and_infinity_are_refused(ops_api, raw):
    response = ops_api.post("scoring/features", raw=raw)
    assert response.status_code in (400, 422)
    assert not Feature.objects.exists()
