"""The studies API: the contract of issue 11 (paths, keys, status codes) and its walls."""

import pytest
from django_q.models import Schedule

from studies import services
from studies.models import Study
from tests.conftest import ApiClient
from tests.factories import staff_in, token_for
from tests.studies.factories import D, account_of_persona, campaign

pytestmark = pytest.mark.django_db

BODY = {"study_type": "revenue_growth", "period_start": "2026-03-01", "period_end": "2026-03-10"}


@pytest.fixture
def ops_api(ops_user):
    return ApiClient(token_for(ops_user))


@pytest.fixture
def reader_api(db):
    return ApiClient(token_for(staff_in("compliance")))  # studies.view_study only


@pytest.fixture
def bare_staff_api(db):
    return ApiClient(token_for(staff_in()))


def test_post_runs_the_study_and_answers_201(ops_api, ops_user):
    a = account_of_persona("solo_podcaster")
    campaign(a, D(2026, 3, 10), D(2026, 3, 12), "100.00")
    response = ops_api.post("studies", BODY)
    assert response.status_code == 201
    body = response.json()
    assert body["study_type"] == "revenue_growth"
    assert body["status"] == "completed"
    assert body["definition_version"] == "2026.11-2"
    assert isinstance(body["duration_ms"], int)
    assert body["persona_segment"] is None
    assert body["requested_by"] == ops_user.username
    assert body["results"]["revenue"] == "33.33"
    assert body["results"]["previous_revenue"] == "0.00"
    assert body["results"]["by_persona"]["solo_podcaster"]["accounts_growing"] == 1
    assert Study.objects.get(pk=body["id"]).status == "completed"


def test_background_answers_202_and_queues(ops_api, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = ops_api.post("studies", {**BODY, "background": True})
    assert response.status_code == 202
    assert response.json()["status"] == "queued"
    assert response.json()["results"] == {}
    assert len(callbacks) == 1


@pytest.mark.parametrize(
    ("change", "loc"),
    [
        ({"period_end": "2026-02-28"}, ["body", "period_end"]),
        ({"period_start": "2016-03-01", "period_end": "2026-03-01"}, ["body", "period_end"]),
        ({"persona_segment": "pirates"}, ["body", "persona_segment"]),
        ({"study_type": "vibes"}, ["body", "study_type"]),
        ({"period_start": "2026-02-30"}, ["body", "period_start"]),
        ({"period_start": "0001-01-01"}, ["body", "period_start"]),
        ({"persona_segment": "agen\u0000cy"}, ["body", "persona_segment"]),
        ({"persona_segment": "x" * 41}, ["body", "persona_segment"]),
    ],
)
def test_bad_input_answers_422_with_the_field_and_writes_nothing(ops_api, change, loc):
    response = ops_api.post("studies", {**BODY, **change})
    assert response.status_code == 422
    assert response.json()["code"] == "invalid"
    assert response.json()["errors"][0]["loc"] == loc
    assert Study.objects.count() == 0


def test_list_filters_and_get(ops_api):
    growth = services.conduct_revenue_growth_study(D(2026, 1, 1), D(2026, 1, 31))
    renewal = services.conduct_renewal_rate_study(D(2026, 2, 1), D(2026, 2, 28), "agency")
    listed = ops_api.get("studies").json()
    assert [s["id"] for s in listed["items"]] == [renewal.pk, growth.pk]
    assert listed["count"] == 2
    by_type = ops_api.get("studies", {"study_type": "revenue_growth"}).json()["items"]
    assert [s["id"] for s in by_type] == [growth.pk]
    by_persona = ops_api.get("studies", {"persona_segment": "agency"}).json()["items"]
    assert [s["id"] for s in by_persona] == [renewal.pk]
    all_accounts = ops_api.get("studies", {"persona_segment": "all"}).json()["items"]
    assert [s["id"] for s in all_accounts] == [growth.pk]
    ranged = ops_api.get("studies", {"period_from": "2026-02-01"}).json()["items"]
    assert [s["id"] for s in ranged] == [renewal.pk]
    one = ops_api.get(f"studies/{renewal.pk}")
    assert one.status_code == 200
    assert one.json()["persona_segment"] == "agency"
    assert one.json()["results"]["total_campaigns"] == 0
    assert ops_api.get("studies/999999").status_code == 404


@pytest.mark.parametrize("rows", [1, 50])
def test_list_costs_a_fixed_number_of_queries(ops_api, django_assert_max_num_queries, rows):
    user = staff_in("operations")
    Study.objects.bulk_create(
        [
            Study(
                study_type="renewal_rate",
                period_start=D(2026, 1, 1),
                period_end=D(2026, 1, 31),
                requested_by=user,
                results={"renewal_rate": 0.5},
                status="completed",
            )
            for _ in range(rows)
        ]
    )
    with django_assert_max_num_queries(6):
        response = ops_api.get("studies", {"limit": 50})
    assert len(response.json()["items"]) == rows


def test_series_oldest_first_with_personas(ops_api):
    a = account_of_persona("solo_podcaster")
    first = campaign(a, D(2025, 12, 1), D(2026, 1, 10))
    campaign(a, D(2026, 1, 11), D(2026, 2, 10), renewed_from=first)
    campaign(a, D(2026, 2, 1), D(2026, 2, 20))
    feb = services.conduct_renewal_rate_study(D(2026, 2, 1), D(2026, 2, 28))
    jan = services.conduct_renewal_rate_study(D(2026, 1, 1), D(2026, 1, 31))
    services.conduct_renewal_rate_study(D(2026, 1, 1), D(2026, 1, 31), "agency")  # not all
    points = ops_api.get(
        "studies/series", {"study_type": "renewal_rate", "metric": "renewal_rate"}
    ).json()
    assert [(p["study_id"], p["period_end"], p["value"]) for p in points] == [
        (jan.pk, "2026-01-31", 1.0),
        (feb.pk, "2026-02-28", 0.0),
    ]
    solo = ops_api.get(
        "studies/series",
        {
            "study_type": "renewal_rate",
            "metric": "total_campaigns",
            "persona_segment": "solo_podcaster",
        },
    ).json()
    assert [p["value"] for p in solo] == [1, 2]
    brand = ops_api.get(
        "studies/series",
        {"study_type": "renewal_rate", "metric": "renewal_rate", "persona_segment": "brand"},
    ).json()
    assert [p["value"] for p in brand] == [None, None]


@pytest.mark.parametrize(
    ("params", "loc"),
    [
        ({"study_type": "renewal_rate", "metric": "nope"}, "metric"),
        ({"study_type": "revenue_cohorts", "metric": "accounts"}, "study_type"),
        ({"study_type": "persona_impact", "metric": "accounts"}, "persona_segment"),
        (
            {"study_type": "renewal_rate", "metric": "renewal_rate", "persona_segment": "x"},
            "persona_segment",
        ),
        (
            {"study_type": "renewal_rate", "metric": "renewal_rate", "persona_segment": "a\x00"},
            "persona_segment",
        ),
        ({"study_type": "renewal_rate", "metric": "renewal\x00rate"}, "metric"),
    ],
)
def test_series_bad_input_answers_422(ops_api, params, loc):
    response = ops_api.get("studies/series", params)
    assert response.status_code == 422
    assert response.json()["errors"][0]["loc"][-1] == loc


def test_schedules_endpoint_upserts(ops_api):
    body = {"study_types": ["renewal_rate", "persona_impact"], "frequency_days": 30}
    first = ops_api.post("studies/schedules", body)
    second = ops_api.post("studies/schedules", body)
    assert first.status_code == second.status_code == 200
    assert [s["name"] for s in first.json()] == [
        "studies.renewal_rate.every_30d",
        "studies.persona_impact.every_30d",
    ]
    assert first.json()[0]["kwargs"] == {"study_type": "renewal_rate", "frequency_days": 30}
    assert first.json()[0]["schedule_type"] == "D"
    assert Schedule.objects.filter(name__startswith="studies.").count() == 2
    bad = ops_api.post("studies/schedules", {"study_types": ["x"], "frequency_days": 30})
    assert bad.status_code == 422


ENDPOINTS = [
    ("post", "studies", BODY),
    ("get", "studies", None),
    ("get", "studies/{id}", None),
    ("get", "studies/series", {"study_type": "renewal_rate", "metric": "renewal_rate"}),
    ("post", "studies/schedules", {"study_types": ["renewal_rate"], "frequency_days": 7}),
]


def _call(client, method, path, data, study_id):
    path = path.format(id=study_id)
    if method == "get":
        return client.get(path, data)
    return client.post(path, data)


@pytest.mark.parametrize(("method", "path", "data"), ENDPOINTS)
def test_customers_and_staff_without_the_permission_get_403(
    api, other_api, bare_staff_api, method, path, data
):
    study = services.conduct_revenue_growth_study(D(2026, 1, 1), D(2026, 1, 31))
    before = Study.objects.count()
    for client in (api, other_api, bare_staff_api):
        response = _call(client, method, path, data, study.pk)
        assert response.status_code == 403
        assert response.json()["code"] == "permission_denied"
        assert "results" not in response.json()
    assert Study.objects.count() == before
    assert not Schedule.objects.filter(name__startswith="studies.").exists()


@pytest.mark.parametrize(("method", "path", "data"), ENDPOINTS)
def test_anonymous_gets_401(anon_api, method, path, data):
    assert _call(anon_api, method, path, data, 1).status_code == 401


@pytest.mark.parametrize(
    ("method", "path", "data", "status"),
    [(m, p, d, 403 if m == "post" else 200) for m, p, d in ENDPOINTS],
)
def test_readers_read_but_do_not_run(reader_api, method, path, data, status):
    study = services.conduct_revenue_growth_study(D(2026, 1, 1), D(2026, 1, 31))
    assert _call(reader_api, method, path, data, study.pk).status_code == status


def test_list_filter_with_a_nul_answers_422(ops_api):
    response = ops_api.get("studies", {"persona_segment": "a\x00"})
    assert response.status_code == 422
    assert response.json()["errors"][0]["loc"][-1] == "persona_segment"
