"""Scoring in admin: features with their latest scores and a bar chart, the buttons (score,
status moves), the comparison page, the roadmap board, models with calibration and the
scatter chart, outcomes; every list in fixed queries; customers and other staff kept out."""

import datetime as dt
import re

import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.urls import reverse
from django.utils import timezone

from scoring import services
from scoring.models import Feature, FeatureScore, Outcome, Roadmap, ScoringModel
from tests.factories import staff_in
from tests.scoring.factories import SEED_EXAMPLE, feature, launched, outcome

pytestmark = pytest.mark.django_db


@pytest.fixture
def ops(client, ops_user):
    client.force_login(ops_user)
    return client


@pytest.mark.parametrize("rows", [1, 50])
def test_feature_changelist_shows_latest_scores_in_fixed_queries(
    ops, django_assert_max_num_queries, rows
):
    for n in range(rows):
        feature(f"f{n:02d}", **SEED_EXAMPLE)
        services.score_feature(f"f{n:02d}")
    with django_assert_max_num_queries(14):
        response = ops.get(reverse("admin:scoring_feature_changelist"))
    assert response.status_code == 200
    page = response.content.decode()
    assert page.count("53.05") == rows
    assert page.count("89.01") == rows


def test_feature_page_shows_the_score_chart_explanation_and_evidence(ops):
    f = feature("attr", **SEED_EXAMPLE, support_tags=["billing"])
    score = services.score_feature("attr")
    response = ops.get(reverse("admin:scoring_feature_change", args=[f.pk]))
    assert response.status_code == 200
    page = response.content.decode()
    assert f"Score {score.pk} by model v1" in page
    bars = re.findall(r'<rect [^>]*data-value="([0-9.]+)"', page)
    assert bars == ["89.01", "20.00", "52.00", "30.00", "53.05"]
    assert "payback = 8.1000" in page
    assert "support tickets" in page and "account health" in page
    assert "no health data" not in page  # no factors were given: it says so instead
    assert "no addresses_health_factors given" in page
    assert "<script" not in page.split('id="scoring-dimensions"')[1].split("</div>")[0]


def test_score_button_asks_first_then_scores(ops):
    f = feature("attr", **SEED_EXAMPLE)
    url = reverse("admin:scoring_feature_score_detail", args=[f.pk])
    assert ops.get(url).status_code == 200
    assert not FeatureScore.objects.exists()
    response = ops.post(url, {"confirm": "yes"})
    assert response.status_code == 302
    assert str(FeatureScore.objects.get().overall_score) == "53.05"


def test_status_buttons_follow_the_table(ops, ops_user):
    f = feature("f")
    ops.post(reverse("admin:scoring_feature_plan_detail", args=[f.pk]), {"confirm": "yes"})
    assert Feature.objects.get(pk=f.pk).status == "planned"
    # planned -> launched is not in the table: an error message, nothing changes.
    response = ops.post(
        reverse("admin:scoring_feature_launch_detail", args=[f.pk]),
        {"confirm": "yes", "launched_on": ""},
        follow=True,
    )
    assert "cannot become launched" in response.content.decode()
    assert Feature.objects.get(pk=f.pk).status == "planned"
    ops.post(reverse("admin:scoring_feature_start_detail", args=[f.pk]), {"confirm": "yes"})
    ops.post(
        reverse("admin:scoring_feature_launch_detail", args=[f.pk]),
        {"confirm": "yes", "launched_on": "2026-01-15"},
    )
    f.refresh_from_db()
    assert (f.status, f.launched_on) == ("launched", dt.date(2026, 1, 15))
    last = Feature.history.filter(id=f.pk).latest("history_date")
    assert last.history_user == ops_user


def test_adding_a_feature_goes_through_the_service_and_validates_metadata(ops, ops_user):
    url = reverse("admin:scoring_feature_add")
    response = ops.post(
        url, {"key": "new", "name": "New", "description": "", "metadata": '{"complexity": 3}'}
    )
    assert response.status_code == 200
    assert "complexity: must be at most 1" in response.content.decode()
    assert not Feature.objects.exists()
    response = ops.post(
        url, {"key": "new", "name": "New", "description": "", "metadata": '{"complexity": 0.3}'}
    )
    assert response.status_code == 302
    created = Feature.objects.get()
    assert created.metadata == {"complexity": "0.3"}
    assert Feature.history.get(id=created.pk).history_user == ops_user


def test_editing_dependencies_refuses_a_cycle(ops):
    a = feature("a")
    b, _ = services.create_feature(key="b", name="B", depends_on=["a"])
    response = ops.post(
        reverse("admin:scoring_feature_change", args=[a.pk]),
        {"name": "A", "description": "", "metadata": "{}", "depends_on": [b.pk]},
    )
    assert response.status_code == 200
    assert "This closes a cycle: a → b → a" in response.content.decode()
    assert list(a.depends_on.all()) == []


def test_compare_action_shows_ranks_and_deciding_dimensions(ops):
    feature("a", **SEED_EXAMPLE)
    feature("b", **{**SEED_EXAMPLE, "complexity": 0, "ui_complexity": 0})
    response = ops.post(
        reverse("admin:scoring_feature_changelist"),
        {
            "action": "compare_selected",
            ACTION_CHECKBOX_NAME: list(Feature.objects.values_list("pk", flat=True)),
        },
    )
    assert response.status_code == 200
    page = response.content.decode()
    assert "What decides each pair" in page
    assert "ease_of_use" in page
    assert "53.05 (-9.60)" in page


def test_build_roadmap_then_the_board_shows_the_tiers(ops):
    feature("quick", estimated_revenue_impact=5000, effort_weeks=2)
    feature("huge", estimated_revenue_impact=90000, effort_weeks=30)
    dropped = feature("gone")
    Feature.objects.filter(pk=dropped.pk).update(status="dropped")
    response = ops.post(reverse("admin:scoring_feature_build_roadmap"), {"confirm": "yes"})
    assert response.status_code == 302
    roadmap = Roadmap.objects.get()
    assert [i["feature_id"] for i in roadmap.items] == ["quick", "huge"]
    page = ops.get(reverse("admin:scoring_feature_roadmap_board")).content.decode()
    now = page.split('id="tier-now"')[1].split("</section>")[0]
    later = page.split('id="tier-later"')[1].split("</section>")[0]
    assert 'data-feature="quick"' in now
    assert 'data-feature="huge"' in later
    assert "gone" not in page
    # The roadmap's own page leads to its board.
    response = ops.get(reverse("admin:scoring_roadmap_change", args=[roadmap.pk]))
    assert response.status_code == 302
    assert response["Location"].endswith(f"?roadmap={roadmap.pk}")


def test_model_page_shows_calibration_and_the_scatter_chart(ops):
    for n in range(3):
        launched(f"f{n}", launched_on=timezone.localdate() - dt.timedelta(days=3))
        outcome(f"f{n}", adoption=str(n / 10))
    ops.post(reverse("admin:scoring_scoringmodel_refit"), {"confirm": "yes"})
    model = ScoringModel.objects.get(version=1)
    page = ops.get(reverse("admin:scoring_scoringmodel_change", args=[model.pk])).content.decode()
    assert "Spearman rho (predicted, actual)" in page
    assert page.count('class="scoring-point"') == 3
    assert model.calibration["reason"] in page


def test_a_new_model_version_from_the_add_form(ops):
    current = services.active_model()
    import json

    response = ops.post(
        reverse("admin:scoring_scoringmodel_add"),
        {
            "weights": json.dumps(
                {
                    "roi": "0.25",
                    "workload_impact": "0.25",
                    "ease_of_use": "0.25",
                    "value_creation": "0.25",
                }
            ),
            "persona_weights": json.dumps(current.persona_weights),
            "constants": json.dumps(current.constants),
            "note": "even",
        },
    )
    assert response.status_code == 302
    assert ScoringModel.objects.get(active=True).version == 2
    assert ScoringModel.objects.get(version=1).active is False


def test_outcomes_are_added_through_the_service(ops):
    f = launched("done", launched_on=timezone.localdate() - dt.timedelta(days=3))
    response = ops.post(
        reverse("admin:scoring_outcome_add"),
        {
            "feature": f.pk,
            "measured_on": str(timezone.localdate()),
            "adoption_rate": "0.3",
            "revenue_change": "10",
            "ticket_change": "-2",
            "time_saved_hours": "4",
        },
    )
    assert response.status_code == 302
    assert Outcome.objects.get().ticket_change == -2
    # The same day again replaces it.
    response = ops.post(
        reverse("admin:scoring_outcome_add"),
        {
            "feature": f.pk,
            "measured_on": str(timezone.localdate()),
            "adoption_rate": "0.5",
            "revenue_change": "10",
            "ticket_change": "-4",
            "time_saved_hours": "4",
        },
    )
    assert response.status_code == 302
    assert list(Outcome.objects.values_list("ticket_change", flat=True)) == [-4]


@pytest.mark.parametrize(
    "url_name",
    [
        "admin:scoring_feature_changelist",
        "admin:scoring_feature_roadmap_board",
        "admin:scoring_scoringmodel_changelist",
        "admin:scoring_featurescore_changelist",
        "admin:scoring_outcome_changelist",
        "admin:scoring_roadmap_changelist",
    ],
)
def test_pages_are_staff_only(client, account, url_name):
    client.force_login(account.user)
    response = client.get(reverse(url_name))
    assert response.status_code == 302  # to the admin login
    client.force_login(staff_in())  # staff without the scoring permissions
    assert client.get(reverse(url_name)).status_code == 403


def test_read_only_staff_cannot_score_or_refit(client):
    client.force_login(staff_in("compliance"))
    f = feature("f")
    assert client.get(reverse("admin:scoring_feature_changelist")).status_code == 200
    response = client.post(
        reverse("admin:scoring_feature_score_detail", args=[f.pk]), {"confirm": "yes"}
    )
    assert response.status_code == 403
    response = client.post(reverse("admin:scoring_scoringmodel_refit"), {"confirm": "yes"})
    assert response.status_code == 403
    assert not FeatureScore.objects.exists()
